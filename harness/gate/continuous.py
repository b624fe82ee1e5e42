"""Same-runner A/B timing of two sides: `mnist-bench continuous BASE [HEAD]`.

A side is a git revision (its source tree and dependencies) or a package set such as `tinygrad==0.13.0`
(the working tree's code in an environment whose requirements are the tree's with those packages pinned).
A stored baseline from another day or machine drifts by more than any useful rule allows; two sides
timed on the same machine, interleaved in time, share the drift. Each side runs in its own process
(from its own source tree and, when its dependencies differ, its own environment), warms both models
up once, then the two processes take turns: in each round one side times a block of training steps
of every model, then the other, with the order alternating round by round (ABBA) so a trend in the
machine's speed lands on both sides alike. Each block's median step time is one repeat; the sides
are compared with the same noise-aware rules as `compare` (Welch test on logs and a minimum effect).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness.base import atomic, stats
from harness.base.errors import ExitCode, HarnessError
from harness.documents import summary
from harness.gate import compare
from harness.gate.rules import Rule, judge
from harness.run import child
from harness.tg import data, env

SUITE = "continuous"
METRIC = "step_time_s"
DEFAULT_RULES = ("step_time_s:+5%",)
# The default workload: per round and side, a block of MLP and CNN steps after the warm-up steps. It stays
# fixed because the README's false-alarm rate and detectable effect size hold for this workload only.
DEFAULT_ROUNDS = 6
DEFAULT_STEPS = {"mlp": 10, "cnn": 2}
WORKTREE = "working tree"
ENV_FIELDS = ("device", "tinygrad", "numpy")  # what differs between the sides is said in the document


def cache_root() -> Path:
    """Source trees and environments of the sides, next to the dataset cache."""
    return data.cache_dir().parent / "continuous"


@dataclass
class Side:
    """One side of the comparison: where its source is, which Python runs it, how it is launched."""

    label: str  # "base" or "head"
    rev: str  # what the user named: a revision, a package set, or WORKTREE
    commit: str | None  # None: the working tree as it is now
    tree: Path
    python: str
    prefix: list[str] = field(default_factory=list)  # e.g. ["taskset", "-c", "1"]
    pins: list[str] = field(default_factory=list)  # a package set's requirements, e.g. ["tinygrad==0.13.0"]

    def describe(self) -> str:
        if self.commit:
            return f"{self.rev} ({self.commit[:12]})"
        return f"{self.rev} ({WORKTREE} {self.tree})" if self.pins else f"{self.rev} ({self.tree})"


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise HarnessError("git is not installed; continuous checks out revisions with it", ExitCode.ENVIRONMENT) from e
    if done.returncode != 0:
        raise HarnessError(f"git {' '.join(args)}: {done.stderr.strip().splitlines()[-1] if done.stderr else 'failed'}")
    return done.stdout.strip()


def _commit(repo: Path, rev: str) -> str | None:
    """The full commit id of `rev`, None when it names no commit; an error when `repo` is no repository."""
    _git(repo, "rev-parse", "--git-dir")
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except HarnessError:
        return None


def resolve(repo: Path, rev: str) -> str:
    """The full commit id of `rev`; a one-line error for anything that is not a commit."""
    if (commit := _commit(repo, rev)) is None:
        raise HarnessError(f"{rev!r} is not a commit in {repo}")
    return commit


def source_tree(repo: Path, commit: str) -> Path:
    """The commit's files, extracted once into the cache (`git archive`), reused by later comparisons."""
    target = cache_root() / "trees" / commit
    if target.is_dir():
        return target
    atomic.ensure_folder(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{commit[:12]}-", dir=target.parent))
    try:
        archive = subprocess.run(["git", "-C", str(repo), "archive", commit], capture_output=True, check=True).stdout
        with tempfile.TemporaryFile() as f:
            f.write(archive)
            f.seek(0)
            with tarfile.open(fileobj=f) as tar:
                tar.extractall(staging, filter="data")
        staging.rename(target)  # atomic: a half-extracted tree is never seen under the commit's name
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


# A package set names requirements with a version, e.g. "tinygrad==0.13.0,numpy==2.1.3". Spaces around an
# operator are allowed; a comma or space followed by a name starts the next requirement, one followed by an
# operator continues the same one ("numpy>=2,<3").
_OPERATOR = re.compile(r"\s*(===|~=|==|!=|<=|>=|<|>)\s*")
_NEXT_REQUIREMENT = re.compile(r"[\s,]+(?=[A-Za-z0-9])")
COMPLETE = ".complete"  # written last into an environment, so a half-made one is never reused


def parse_package_set(text: str) -> list[Requirement] | None:
    """The pins of a package set, or None when `text` is not one (each piece a PEP 508 requirement with a
    version specifier, no URL or marker)."""
    joined = _OPERATOR.sub(r"\1", text.strip().strip(","))
    try:
        pins = [Requirement(piece) for piece in _NEXT_REQUIREMENT.split(joined) if piece]
    except InvalidRequirement:
        return None
    if not pins or any(not p.specifier or p.url or p.marker for p in pins):
        return None
    names = [canonicalize_name(p.name) for p in pins]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise HarnessError(f"{text!r} pins {', '.join(twice)} more than once")
    return pins


def _name(requirement: str) -> str:
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:  # pip will say what is wrong with it
        return requirement


def pinned(requirements: list[str], pins: list[Requirement]) -> list[str]:
    """`requirements` with each pinned package's entry replaced by its pin (a package they lack is added)."""
    names = {canonicalize_name(p.name) for p in pins}
    return _normalize([r for r in requirements if _name(r) not in names] + [str(p) for p in pins])


def _normalize(requirements: list[str]) -> list[str]:
    return sorted(r.replace(" ", "").lower() for r in requirements)


def dependencies(tree: Path) -> list[str]:
    """The runtime requirements a source tree declares in its pyproject.toml."""
    try:
        project = tomllib.loads((tree / "pyproject.toml").read_text())["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as e:
        raise HarnessError(f"{tree}: no readable [project] table in pyproject.toml ({e})") from e
    return _normalize(project.get("dependencies", []))


def installed_dependencies() -> list[str] | None:
    """The requirements this environment was installed for (extras left out), or None if unknown."""
    try:
        requires = metadata.requires("mnist-bench") or []
    except metadata.PackageNotFoundError:
        return None
    return _normalize([r for r in requires if "extra ==" not in r and "extra==" not in r])


def env_dir(requirements: list[str]) -> Path:
    """Where the environment of a requirement set lives: keyed by the Python version and the sorted set."""
    digest = hashlib.sha256(json.dumps([sys.version_info[:2], requirements]).encode()).hexdigest()[:16]
    return cache_root() / "envs" / digest


def environment(requirements: list[str], log: Callable[[str], None]) -> str:
    """A Python that has `requirements`: this one when they are what it was installed for, else a venv made
    once per requirement set and reused (the side's source tree goes on PYTHONPATH, it is not installed)."""
    if requirements == installed_dependencies():
        return sys.executable
    venv = env_dir(requirements)
    python = str(venv / "bin" / "python")
    if (venv / COMPLETE).exists():
        return python
    atomic.ensure_folder(venv.parent)
    with _locked(venv.with_name(f"{venv.name}.lock")):
        if not (venv / COMPLETE).exists():  # another comparison may have made it while this one waited
            log(f"creating an environment for {', '.join(requirements)} in {venv} (pip, once)")
            make_venv(venv, requirements)
    return python


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path`, so two comparisons never build the same environment at once."""
    import fcntl

    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def make_venv(venv: Path, requirements: list[str]) -> None:
    """`python -m venv`, then `pip install` the requirements, then the completion mark; a failure removes the
    half-made environment and says in one line what pip could not install (its full output stays in a log)."""
    shutil.rmtree(venv, ignore_errors=True)  # left by a run that was killed before its mark
    log_path = venv.with_name(f"{venv.name}.log")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    steps = [("python -m venv", [sys.executable, "-m", "venv", str(venv)]), ("pip install", [*pip, *requirements])]
    try:
        with open(log_path, "w") as out:
            for what, command in steps:
                out.flush()
                done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
                if done.returncode != 0:
                    raise HarnessError(
                        f"could not install {', '.join(requirements)}: {what}: "
                        f"{_failure_line(log_path.read_text(errors='replace'))} (output in {log_path})",
                        ExitCode.ENVIRONMENT,
                    )
    except BaseException:
        shutil.rmtree(venv, ignore_errors=True)
        raise
    (venv / COMPLETE).write_text("\n".join(requirements) + "\n")


def _failure_line(output: str) -> str:
    """pip's last `ERROR:` line (it names the requirement it could not install), else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["no output"])[-1]


def working_tree(repo: Path) -> Path:
    return Path(_git(repo, "rev-parse", "--show-toplevel"))


def classify(repo: Path, text: str) -> list[Requirement] | None:
    """The pins when `text` is a package set, None when it is a git revision; a one-line error when it
    could be either, or is neither."""
    pins, commit = parse_package_set(text), _commit(repo, text)
    if pins and commit:
        spaced = _OPERATOR.sub(r" \1 ", text).strip()
        raise HarnessError(
            f"{text!r} is both a git revision and a package set: give the commit id or full ref (refs/...) "
            f"for the revision, or {spaced!r} for the package set"
        )
    if pins is None and commit is None:
        raise HarnessError(f"{text!r} is not a commit in {repo}, nor a package set such as tinygrad==0.13.0")
    return pins


TRAINERS = ("harness/tg/train.py", "harness/train.py")


def prepare(repo: Path, rev: str | None, label: str, prefix: list[str], log: Callable[[str], None]) -> Side:
    """A side from a revision, a package set or None (the working tree), with its source tree and Python ready.

    A package set runs the working tree's code, so that with two package sets both sides run the same files
    and only the packages differ; its requirements are the tree's with the pinned packages replaced."""
    pins = None if rev is None else classify(repo, rev)
    if rev is None or pins is not None:
        tree = working_tree(repo)
        requirements = dependencies(tree) if pins is None else pinned(dependencies(tree), pins)
        pin_texts = [str(p) for p in pins or []]
        return Side(label, rev or WORKTREE, None, tree, environment(requirements, log), prefix, pin_texts)
    commit = resolve(repo, rev)
    # the trainer's place in the layered layout, and before it (a side may be any earlier revision)
    if not any(_git(repo, "ls-tree", "--name-only", commit, path) for path in TRAINERS):
        raise HarnessError(f"{rev}: no {' or '.join(TRAINERS)} in that revision; nothing to time")
    tree = source_tree(repo, commit)
    return Side(label, rev, commit, tree, environment(dependencies(tree), log), prefix)


class Worker(child.Child):
    """A side's timing process: harness/tg/worker.py (the caller's) under the side's source tree and Python."""

    def __init__(self, side: Side, models: list[str], device: str | None, data_dir: str | None):
        program = [str(Path(__file__).resolve().parents[1] / "tg" / "worker.py"), "--models", ",".join(models)]
        program += (["--device", device] if device else []) + (["--data-dir", data_dir] if data_dir else [])
        label = f"{side.label} side ({side.describe()})"
        super().__init__(label, program, python=side.python, pythonpath=str(side.tree), prefix=side.prefix)
        self.side = side

    def block(self, model: str, steps: int) -> list[float]:
        return self.request({"model": model, "steps": steps})["times"]


@dataclass
class Workload:
    models: list[str]
    rounds: int = DEFAULT_ROUNDS
    steps: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_STEPS))

    def check(self) -> None:
        unknown = sorted(set(self.models) - set(DEFAULT_STEPS))
        if unknown or not self.models:
            raise HarnessError(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from mlp, cnn")
        if self.rounds < 2:
            raise HarnessError(f"rounds must be at least 2 (a test needs two repeats per side), got {self.rounds}")
        if any(self.steps[m] < 1 for m in self.models):
            raise HarnessError("steps per block must be at least 1")


def order_of_round(i: int) -> tuple[int, int]:
    """ABBA: base first in even rounds, head first in odd ones, so a linear drift hits both alike."""
    return (0, 1) if i % 2 == 0 else (1, 0)


def time_sides(
    workers: list[Worker], workload: Workload, log: Callable[[str], None]
) -> list[dict[str, list[list[float]]]]:
    """Per side, per model: the step times of every block, in round order."""
    samples: list[dict[str, list[list[float]]]] = [{m: [] for m in workload.models} for _ in workers]
    for i in range(workload.rounds):
        for s in order_of_round(i):
            for model in workload.models:
                samples[s][model].append(workers[s].block(model, workload.steps[model]))
        log(f"round {i + 1}/{workload.rounds} done")
    return samples


def block_medians(blocks: list[list[float]]) -> list[float]:
    return [statistics.median(b) for b in blocks]


def _machine(side: Side, ready: dict[str, Any]) -> dict[str, Any]:
    return {
        "side": side.label,
        "revision": side.describe(),
        "packages": side.pins,
        "device": ready["device"],
        "tinygrad": ready["tinygrad"],  # the version that ran, from the side's environment
        "numpy": ready.get("numpy"),
        "cpu": env.collect_cpu().get("model", ""),
        "python": side.python,
        "launch_prefix": shlex.join(side.prefix),
    }


def verdict_document(
    sides: list[Side],
    readies: list[dict[str, Any]],
    samples: list[dict[str, list[list[float]]]],
    workload: Workload,
    rules: list[Rule],
    wall_s: float,
) -> dict[str, Any]:
    """The comparison document (head as `current`, base as `baseline`) with the workload and raw samples."""
    rows, problems, untested = [], [], []
    for model in workload.models:
        base, head = (stats.describe(block_medians(s[model])) for s in samples)
        r, p, u = judge(model, {METRIC: base}, {METRIC: head}, rules)
        rows, problems, untested = rows + r, problems + p, untested + u
    machines = [_machine(side, ready) for side, ready in zip(sides, readies, strict=True)]
    env_diff = summary.env_differences([machines[0]], [machines[1]], ("base", "head"), ENV_FIELDS)
    workload_doc = {
        "rounds": workload.rounds,
        "steps_per_block": {m: workload.steps[m] for m in workload.models},
        "order": "ABBA: base first in odd-numbered rounds, head first in even-numbered ones",
        "warmup_s": {side.label: ready["warmup_s"] for side, ready in zip(sides, readies, strict=True)},
        "step_times_s": {side.label: s for side, s in zip(sides, samples, strict=True)},
        "wall_s": wall_s,
    }
    return compare.document(
        SUITE,
        {"path": f"head: {sides[1].describe()}", "machines": [machines[1]]},
        {"path": f"base: {sides[0].describe()}", "machines": [machines[0]]},
        rules,
        env_diff,
        untested,
        rows,
        problems,
        workload=workload_doc,
    )


def run(
    repo: Path,
    base: str,
    head: str | None,
    *,
    workload: Workload,
    rules: list[Rule],
    device: str | None = None,
    data_dir: str | None = None,
    prefixes: tuple[list[str], list[str]] = ([], []),
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Time `head` against `base` on this machine; returns the validated comparison document."""
    workload.check()
    t0 = time.perf_counter()
    data.load(data_dir, log=log)  # fetch and verify once, before two processes race for the cache
    revs = zip((base, head), ("base", "head"), prefixes, strict=True)
    sides = [prepare(repo, rev, label, prefix, log) for rev, label, prefix in revs]
    for side in sides:
        log(f"{side.label}: {side.describe()}, python {side.python}")
    with contextlib.ExitStack() as stack:  # an error or Ctrl-C stops both workers at once
        # both warm up at once (compiling is not timed); from then on only one side runs at a time
        workers = [stack.enter_context(Worker(side, workload.models, device, data_dir)) for side in sides]
        log("warming up both sides (compile + 3 steps per model)")
        readies = [w.ready() for w in workers]
        samples = time_sides(workers, workload, log)
    return verdict_document(sides, readies, samples, workload, rules, time.perf_counter() - t0)
