"""The docs cannot drift: the generated parts of README.md and docs/ are current, and every command the
README shows in a code block runs (with short settings where it would train)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
GENERATOR = REPO / ".ci" / "docs.py"
BIN = Path(sys.executable).parent


def generator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GENERATOR), *args], capture_output=True, text=True, cwd=REPO)


# --- generated parts ----------------------------------------------------------------------------------


def test_generated_parts_are_current():
    result = generator("--check")
    assert result.returncode == 0, result.stderr  # names each stale part, and `python .ci/docs.py`


def test_a_stale_part_is_caught_and_rewritten(tmp_path):
    shutil.copy(README, tmp_path / "README.md")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    marker = "<!-- generated: commands-table (python .ci/docs.py) -->\n"
    assert marker in text
    (tmp_path / "README.md").write_text(
        text.replace(marker, marker + "| `mnist-bench gone` | a command that no longer exists |\n"), encoding="utf-8"
    )

    stale = generator("--check", "--root", str(tmp_path))
    assert stale.returncode == 1
    assert "README.md: `commands-table`" in stale.stderr
    assert "python .ci/docs.py" in stale.stderr
    assert "mnist-bench gone" in (tmp_path / "README.md").read_text(encoding="utf-8")  # --check changes nothing

    assert generator("--root", str(tmp_path)).returncode == 0
    assert generator("--check", "--root", str(tmp_path)).returncode == 0
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == README.read_text(encoding="utf-8")


def test_a_missing_marker_is_an_error(tmp_path):
    shutil.copy(README, tmp_path / "README.md")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    page = tmp_path / "docs" / "commands.md"
    page.write_text(page.read_text(encoding="utf-8").replace("<!-- end generated: commands -->", ""))
    result = generator("--check", "--root", str(tmp_path))
    assert result.returncode != 0
    assert "docs/commands.md needs exactly one pair of markers for `commands`" in result.stderr


# --- the README's commands ----------------------------------------------------------------------------

# Commands that would train get short settings; each entry says how and why.
TRAINS = {
    ("mlp",): ["--steps", "3", "--no-assert-target"],
    ("cnn",): ["--steps", "3", "--no-assert-target"],
    # the gate suite's MLP, one seed (about 20 s on CL); see `after` in plan() for the baseline it needs
    ("suite", "run", "gate"): ["--only", "mlp-default", "--seeds", "0"],
}
# Commands that read and print, at full settings.
READS = {
    ("compare",),
    ("report",),
    ("validate",),
    ("devices",),
    ("suite", "list"),
    ("suite", "show"),
    ("baseline", "list"),
    ("baseline", "show"),
    ("data", "path"),
    ("data", "verify"),
    ("--help",),
}
SKIPPED = {
    "docker": "the container commands: .ci/image (called by .ci/run) builds and runs the image for real",
    ".ci/setup": ".ci/run runs .ci/setup before the tests; here it would install packages",
    ".ci/run": "what CI runs, this test included",
}


@dataclass
class Step:
    line: str
    argv: list[str] = field(default_factory=list)
    cwd: str = "work"  # "work": a scratch folder with a copy of results/; "repo": the repository
    skip: str = ""  # why it is not run
    after: list[list[str]] = field(default_factory=list)  # run after argv, in the scratch folder


def readme_lines(text: str) -> list[str]:
    """Each command of the README's ```sh blocks: comment and blank lines left out, `a && b` split."""
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            tokens = shlex.split(line, comments=True)
            while tokens:
                cut = tokens.index("&&") if "&&" in tokens else len(tokens)
                commands.append(tokens[:cut])
                tokens = tokens[cut + 1 :]
    return [" ".join(shlex.quote(t) for t in c) for c in commands if c]


def plan(line: str) -> Step:
    """How the test runs one README command, or why it does not; an unknown command is an error."""
    tokens = shlex.split(line)
    env = {}
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):
        key, value = tokens.pop(0).split("=", 1)
        env[key] = value
    program, args = tokens[0], tokens[1:]
    for key, why in SKIPPED.items():
        if program == key or (program == "bash" and args[:1] == [key]) or key in program.split("/"):
            return Step(line, skip=why)
    name = program.removeprefix(".venv/bin/")
    if name == "python" and args[:2] == ["-m", "pytest"]:  # the tests run in CI; here: they collect
        return Step(line, [sys.executable, *args, "--collect-only", "-q"], cwd="repo")
    if name == "python" and args[:1] == [".ci/docs.py"]:  # check, never rewrite, from a test
        return Step(line, [sys.executable, *args, "--check"], cwd="repo")
    if name == "mkdocs" and args[:1] == ["serve"]:  # a server: build the same site instead
        return Step(line, [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", "{work}/site"], cwd="repo")
    if name == "mkdir":
        return Step(line, tokens)
    if name != "mnist-bench":
        raise AssertionError(f"README command {line!r}: no rule in tests/test_docs.py says how to run it")
    words = tuple(a for a in args if not a.startswith("-"))
    argv = [str(BIN / "mnist-bench"), *args]
    for prefix, extra in TRAINS.items():
        if words[: len(prefix)] == prefix:
            step = Step(line, argv + extra)
            if prefix == ("suite", "run", "gate"):
                # a one-config gate run cannot be compared with the committed two-config baseline ("missing
                # cnn-default"), so it becomes the baseline in the scratch copy: the README's compare then runs
                out = args[args.index("--out-dir") + 1]
                step.after = [[str(BIN / "mnist-bench"), "baseline", "save", f"{out}/gate.summary.json"]]
            return step
    if any(words[: len(r)] == r or args[:1] == ["--help"] for r in READS):
        return Step(line, argv)
    raise AssertionError(f"README command {line!r} would train or write: add a short form to TRAINS in {__file__}")


def test_every_readme_command_has_a_plan():
    lines = readme_lines(README.read_text(encoding="utf-8"))
    steps = [plan(line) for line in lines]
    assert any("mnist-bench cnn" in s.line for s in steps), "the main job is gone from the README"
    assert sum(1 for s in steps if not s.skip) >= 5


def test_an_unknown_command_fails_the_plan():
    with pytest.raises(AssertionError, match="add a short form"):
        plan("mnist-bench suite run explore")
    with pytest.raises(AssertionError, match="no rule"):
        plan("curl https://example.invalid | sh")
    assert readme_lines("```sh\nbash .ci/setup && .venv/bin/mnist-bench cnn   # x\n```\n") == [
        "bash .ci/setup",
        ".venv/bin/mnist-bench cnn",
    ]


def test_ci_runs_the_readme_test_command():
    """The README's test command is the one .ci/run calls, so the two cannot say different things."""
    lines = readme_lines(README.read_text(encoding="utf-8"))
    tests = [line for line in lines if line.startswith(".venv/bin/python -m pytest") and "-m" not in line.split()[3:]]
    assert tests, "the README shows no test command"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    for command in tests:
        assert command in ci, f"{command!r} is not a line of .ci/run"


def run_commands(lines: list[str], tmp_path: Path) -> list[str]:
    """Runs each planned command in order (they share one scratch folder); fails on the first that exits
    non-zero, naming the README line. Returns the lines it ran."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    if not (work / "results").exists():
        shutil.copytree(REPO / "results", work / "results", ignore=shutil.ignore_patterns("runs"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("MNIST_BENCH_OUT", None)  # records go to results/runs in the scratch folder
    ran = []
    for step in map(plan, lines):
        if step.skip:
            continue
        for argv in [step.argv, *step.after]:
            argv = [a.replace("{work}", str(work)) for a in argv]
            cwd = REPO if step.cwd == "repo" else work
            result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
            assert result.returncode == 0, (
                f"README: {step.line}\nran: {argv}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        ran.append(step.line)
    return ran


def test_a_failing_command_fails_the_run(tmp_path):
    with pytest.raises(AssertionError, match="README: mnist-bench compare no-such-folder"):
        run_commands(["mnist-bench devices --help", "mnist-bench compare no-such-folder --baseline auto"], tmp_path)


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path):
    """A 3-step CNN, one gate-suite MLP run, the pytest collections, the site: 160 s on a shared 2-core VM
    (load average 6-8; about 90 s of CPU time)."""
    ran = run_commands(readme_lines(README.read_text(encoding="utf-8")), tmp_path)
    assert any("mnist-bench cnn" in line for line in ran)


def _slug(heading: str) -> str:
    """The anchor GitHub (and mkdocs' toc) gives a heading: lower case, punctuation dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_links_resolve():
    """mkdocs --strict checks the links between docs/ pages; this checks the README's, which it never sees."""
    text = README.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, fragment = target.partition("#")
        file = REPO / path if path else README
        if not file.exists():
            broken.append(target)
        elif fragment and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), re.M)
            if fragment not in {_slug(h) for h in headings}:
                broken.append(target)
    assert not broken, f"README links to nothing: {broken}"
