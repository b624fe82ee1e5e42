"""Same-runner A/B timing: revisions, environments, the interleaving, and real runs on real git commits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import documents
from harness.base.errors import ExitCode, HarnessError
from harness.cli import cli
from harness.documents import schema
from harness.gate import compare, continuous, rules

ROOT = Path(__file__).resolve().parent.parent


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A git repository holding this project's package, one commit; source trees cached under tmp_path."""
    monkeypatch.setattr(continuous, "cache_root", lambda: tmp_path / "cache")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(ROOT / "harness", repo / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "empty")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "the project")
    return repo


def commit_change(repo: Path, path: str, old: str, new: str) -> str:
    file = repo / path
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", f"change {path}")
    return git(repo, "rev-parse", "HEAD")


def test_rounds_alternate_abba():
    assert [continuous.order_of_round(i) for i in range(4)] == [(0, 1), (1, 0), (0, 1), (1, 0)]


def test_block_medians():
    assert continuous.block_medians([[3.0, 1.0, 2.0], [1.0, 4.0]]) == [2.0, 2.5]


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        (continuous.Workload(["rnn"]), "unknown model"),
        (continuous.Workload([]), "unknown model"),
        (continuous.Workload(["mlp"], rounds=1), "at least 2"),
        (continuous.Workload(["mlp"], steps={"mlp": 0, "cnn": 1}), "at least 1"),
    ],
)
def test_bad_workloads_are_refused(workload, message):
    with pytest.raises(HarnessError, match=message):
        workload.check()


def test_unknown_revision_is_a_usage_error(project):
    with pytest.raises(HarnessError, match="'no-such-rev' is not a commit") as e:
        continuous.resolve(project, "no-such-rev")
    assert e.value.code == ExitCode.USAGE


def test_not_a_repository(tmp_path):
    with pytest.raises(HarnessError, match="git rev-parse"):
        continuous.resolve(tmp_path, "HEAD")


def test_revision_without_the_trainer_is_refused(project):
    with pytest.raises(HarnessError, match=r"no harness/tg/train\.py or harness/train\.py"):
        continuous.prepare(project, "HEAD~1", "base", [], print)


def test_source_tree_is_the_commit_and_is_reused(project):
    sha = continuous.resolve(project, "HEAD")
    (project / "harness" / "uncommitted.py").write_text("x = 1\n")
    tree = continuous.source_tree(project, sha)
    assert (tree / "harness" / "tg" / "train.py").read_text() == (project / "harness" / "tg" / "train.py").read_text()
    assert not (tree / "harness" / "uncommitted.py").exists()
    assert continuous.source_tree(project, sha) == tree


def test_same_dependencies_reuse_this_environment(project):
    side = continuous.prepare(project, "HEAD", "base", [], print)
    assert side.python == sys.executable
    assert continuous.dependencies(side.tree) == continuous.installed_dependencies()


def fake_installer(monkeypatch, fail_on: str | None = None, output: str = "") -> list[list[str]]:
    """Stands in for `python -m venv` and `pip install` (a minute, network): records the commands, makes the
    venv folder, and fails the pip step (printing `output`) when its requirements include `fail_on`."""
    made: list[list[str]] = []

    def fake_run(cmd, stdout=None, **kw):
        made.append(cmd)
        if "venv" in cmd:
            Path(cmd[-1], "bin").mkdir(parents=True)
            return subprocess.CompletedProcess(cmd, 0)
        failed = fail_on in cmd
        if failed and stdout is not None:
            stdout.write(output)
            stdout.flush()
        return subprocess.CompletedProcess(cmd, 1 if failed else 0)

    monkeypatch.setattr(continuous.subprocess, "run", fake_run)
    return made


def test_other_dependencies_get_their_own_environment(project, monkeypatch):
    made = fake_installer(monkeypatch)
    python = continuous.environment(["tinygrad==0.13.0"], print)
    assert python != sys.executable and python.startswith(str(continuous.cache_root() / "envs"))
    assert made[0][1:3] == ["-m", "venv"] and made[1][-1] == "tinygrad==0.13.0"
    assert made[1][1:4] == ["-m", "pip", "install"]
    assert (continuous.env_dir(["tinygrad==0.13.0"]) / continuous.COMPLETE).read_text() == "tinygrad==0.13.0\n"
    assert continuous.environment(["tinygrad==0.13.0"], print) == python  # reused: nothing installed again
    assert len(made) == 2


PIP_FAILURE = """ERROR: Could not find a version that satisfies the requirement tinygrad==0.0.1 (from versions: 0.13.0)
ERROR: No matching distribution found for tinygrad==0.0.1
"""


def test_a_failed_install_is_one_line_and_leaves_no_environment(project, monkeypatch):
    made = fake_installer(monkeypatch, fail_on="tinygrad==0.0.1", output=PIP_FAILURE)
    requirements = ["numpy>=1.26", "tinygrad==0.0.1"]
    with pytest.raises(HarnessError) as e:
        continuous.environment(requirements, print)
    assert e.value.code == ExitCode.ENVIRONMENT and "\n" not in e.value.message
    assert "pip install: No matching distribution found for tinygrad==0.0.1" in e.value.message
    venv = continuous.env_dir(requirements)
    assert not venv.exists()  # nothing half-made is left, let alone marked complete
    assert "No matching distribution" in venv.with_name(f"{venv.name}.log").read_text()
    with pytest.raises(HarnessError):
        continuous.environment(requirements, print)
    assert len(made) == 4  # the second try built it again rather than reusing the failed one


def test_an_interrupted_install_leaves_no_environment(project, monkeypatch):
    def interrupted(cmd, **kw):
        if "venv" in cmd:
            Path(cmd[-1], "bin").mkdir(parents=True)
            return subprocess.CompletedProcess(cmd, 0)
        raise KeyboardInterrupt

    monkeypatch.setattr(continuous.subprocess, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        continuous.environment(["tinygrad==0.13.0"], print)
    assert not continuous.env_dir(["tinygrad==0.13.0"]).exists()


def test_environments_are_keyed_by_the_requirement_set():
    a = continuous.env_dir(["numpy>=1.26", "tinygrad==0.13.0"])
    assert a == continuous.env_dir(["numpy>=1.26", "tinygrad==0.13.0"])
    assert a != continuous.env_dir(["numpy>=1.26", "tinygrad==0.14.0"])
    assert a != continuous.env_dir(["tinygrad==0.13.0"])


@pytest.mark.parametrize(
    ("text", "pins"),
    [
        ("tinygrad==0.13.0", ["tinygrad==0.13.0"]),
        ("tinygrad==0.13.0,numpy==2.1.3", ["tinygrad==0.13.0", "numpy==2.1.3"]),
        ("tinygrad==0.13.0 numpy==2.1.3", ["tinygrad==0.13.0", "numpy==2.1.3"]),
        ("tinygrad == 0.13.0, numpy == 2.1.3", ["tinygrad==0.13.0", "numpy==2.1.3"]),
        ("numpy>=2,<3", ["numpy<3,>=2"]),
        ("tinygrad~=0.13.0,numpy>=2,<3", ["tinygrad~=0.13.0", "numpy<3,>=2"]),
    ],
)
def test_package_sets_parse(text, pins):
    parsed = continuous.parse_package_set(text)
    assert parsed is not None and [str(p) for p in parsed] == pins


@pytest.mark.parametrize(
    "text", ["main", "HEAD~1", "HEAD^", "v0.1.0", "2e8ff1f", "tinygrad", "tinygrad==", "origin/main", "a..b", ""]
)
def test_revisions_are_not_package_sets(text):
    assert continuous.parse_package_set(text) is None


def test_a_package_pinned_twice_is_refused():
    with pytest.raises(HarnessError, match="pins tinygrad more than once"):
        continuous.parse_package_set("tinygrad==0.13.0,TinyGrad==0.14.0")


def test_pins_replace_the_trees_requirement_of_that_package():
    tree = ["click>=8.1", "numpy>=1.26", "tinygrad==0.14.0"]
    pins = continuous.parse_package_set("TinyGrad==0.13.0,llvmlite==0.44.0")
    assert continuous.pinned(tree, pins) == ["click>=8.1", "llvmlite==0.44.0", "numpy>=1.26", "tinygrad==0.13.0"]


def test_a_package_set_is_told_from_a_revision(project):
    assert [str(p) for p in continuous.classify(project, "tinygrad==0.13.0")] == ["tinygrad==0.13.0"]
    assert continuous.classify(project, "HEAD") is None
    with pytest.raises(HarnessError, match=r"'tinygrad' is not a commit in .*, nor a package set"):
        continuous.classify(project, "tinygrad")


def test_a_branch_that_reads_as_a_package_set_is_ambiguous(project):
    git(project, "branch", "tinygrad==0.13.0")
    with pytest.raises(HarnessError, match="both a git revision and a package set") as e:
        continuous.classify(project, "tinygrad==0.13.0")
    assert "'tinygrad == 0.13.0'" in e.value.message and e.value.code == ExitCode.USAGE
    assert continuous.classify(project, "refs/heads/tinygrad==0.13.0") is None
    assert continuous.classify(project, "tinygrad == 0.13.0") is not None


def test_a_package_set_side_runs_the_working_tree_with_its_pins(project, monkeypatch):
    asked = []
    monkeypatch.setattr(continuous, "environment", lambda reqs, log: asked.append(reqs) or "/envs/x/bin/python")
    (project / "harness" / "uncommitted.py").write_text("x = 1\n")
    side = continuous.prepare(project, "tinygrad==0.13.0,numpy==2.1.3", "base", [], print)
    assert side.tree == project and side.commit is None and side.python == "/envs/x/bin/python"
    assert side.pins == ["tinygrad==0.13.0", "numpy==2.1.3"]
    assert side.describe() == f"tinygrad==0.13.0,numpy==2.1.3 (working tree {project})"
    tree_reqs = continuous.dependencies(project)
    assert "tinygrad==0.13.0" in asked[0] and "numpy==2.1.3" in asked[0] and "tinygrad==0.14.0" not in asked[0]
    assert len(asked[0]) == len(tree_reqs)  # replaced, not added


def test_a_package_set_equal_to_this_environment_uses_it(project):
    assert "tinygrad==0.14.0" in continuous.installed_dependencies()
    assert continuous.prepare(project, "tinygrad==0.14.0", "head", [], print).python == sys.executable


def _samples(base: list[float], head: list[float]) -> list[dict[str, list[list[float]]]]:
    return [{"mlp": [[v, v] for v in side]} for side in (base, head)]


def _document(samples, sides=None, versions=("0.14.0", "0.14.0")):
    sides = sides or [
        continuous.Side("base", "main", "a" * 40, Path("/t"), sys.executable),
        continuous.Side("head", "working tree", None, Path("/t"), sys.executable),
    ]
    readies = [{"device": "CPU", "tinygrad": v, "numpy": "2.4.6", "warmup_s": {"mlp": 1.0}} for v in versions]
    parsed = [rules.parse_rule(r) for r in continuous.DEFAULT_RULES]
    workload = continuous.Workload(["mlp"], rounds=3)
    return continuous.verdict_document(sides, readies, samples, workload, parsed, 10.0)


def test_verdict_document_passes_on_noise_and_fails_on_a_slowdown():
    same = _document(_samples([0.080, 0.081, 0.079], [0.0805, 0.0795, 0.081]))
    assert same["verdict"] == "pass" and same["suite"] == "continuous"
    assert schema.errors(same, "comparison") == []
    slow = _document(_samples([0.080, 0.081, 0.079], [0.096, 0.097, 0.095]))
    assert slow["verdict"] == "regression"
    assert slow["problems"][0].startswith("mlp step_time_s: 20.0% worse")
    assert slow["workload"]["step_times_s"]["head"]["mlp"][0] == [0.096, 0.096]
    assert "REGRESSION" in documents.render(slow, "text") and "**REGRESSION**" in documents.render(slow, "markdown")


def test_package_set_sides_say_which_tinygrad_ran():
    sides = [
        continuous.Side("base", "tinygrad==0.13.0", None, Path("/t"), "/e/bin/python", [], ["tinygrad==0.13.0"]),
        continuous.Side("head", "tinygrad==0.14.0", None, Path("/t"), sys.executable, [], ["tinygrad==0.14.0"]),
    ]
    doc = _document(_samples([0.080, 0.081, 0.079], [0.0805, 0.0795, 0.081]), sides, ("0.13.0", "0.14.0"))
    assert schema.errors(doc, "comparison") == []
    base, head = doc["baseline"]["machines"][0], doc["current"]["machines"][0]
    assert (base["tinygrad"], base["packages"], base["python"]) == ("0.13.0", ["tinygrad==0.13.0"], "/e/bin/python")
    assert (head["tinygrad"], head["revision"]) == ("0.14.0", "tinygrad==0.14.0 (working tree /t)")
    assert doc["env_differences"] == ['tinygrad: base "0.13.0" vs head "0.14.0"']
    text = documents.render(doc, "text").splitlines()
    assert text[:2] == [
        "base: tinygrad==0.13.0 (working tree /t): tinygrad 0.13.0 on CPU",
        "head: tinygrad==0.14.0 (working tree /t): tinygrad 0.14.0 on CPU",
    ]
    markdown = documents.render(doc, "markdown").splitlines()
    assert (
        markdown[0].startswith("### ")
        and markdown[2] == "- base: tinygrad==0.13.0 (working tree /t): tinygrad 0.13.0 on CPU"
    )
    assert json.loads(documents.render(doc, "json")) == json.loads(documents.render(doc, "json"))


def test_an_unknown_tinygrad_version_is_said():
    doc = _document(_samples([0.08, 0.08], [0.08, 0.08]), versions=(None, "0.14.0"))
    assert compare.side_lines(doc)[0].endswith("tinygrad unknown on CPU")


def test_worker_reports_the_installed_tinygrad_version():
    from types import SimpleNamespace

    from harness.tg import worker

    assert worker._version("tinygrad", SimpleNamespace()) == metadata.version("tinygrad")
    assert worker._version("no-such-dist", SimpleNamespace(__version__="1.2")) == "1.2"


OLD_TRAIN = """
class RunSpec:  # before harness/tg/spec.py: the spec lived in train.py
    batch_size = 4

    @classmethod
    def defaults(cls, name, seed=0):
        return cls()


class Trainer:
    def __init__(self, spec, mnist, device):
        if mnist.broken:
            raise RuntimeError("this old trainer fails")

    def step(self, indices):
        return 0.0


def batch_order(seed, n, batch_size, max_batches):
    return [[0]] * max_batches
"""

OLD_DATA = """
class Mnist:
    y_train = [0] * 8


def load(data_dir):
    mnist = Mnist()
    mnist.broken = data_dir == "broken"
    return mnist
"""


def test_the_worker_runs_against_a_tree_without_child_or_errors_modules(tmp_path):
    """A side's source tree from before harness/run/child.py and harness/base/errors.py (a stand-in trainer, no
    training): the worker loads the caller's child.py by path, so the protocol, its error line and the
    exit codes are the caller's."""
    (tmp_path / "harness").mkdir()
    for name, text in (("__init__", ""), ("train", OLD_TRAIN), ("data", OLD_DATA)):
        (tmp_path / "harness" / f"{name}.py").write_text(text)
    side = continuous.Side("base", "old", None, tmp_path, sys.executable)
    with continuous.Worker(side, ["mlp"], "CPU", None) as worker:
        assert worker.ready()["device"] == "CPU"
        assert len(worker.block("mlp", 2)) == 2
    assert worker.proc.returncode == 0
    with pytest.raises(HarnessError) as e, continuous.Worker(side, ["mlp"], "CPU", "broken") as worker:
        worker.ready()
    assert e.value.code == ExitCode.ENVIRONMENT
    assert e.value.message == (
        f"base side (old ({tmp_path})): its process exited with code 1, no result: RuntimeError: this old trainer fails"
    )


def test_cli_bad_revision_exits_2(project):
    result = CliRunner().invoke(cli, ["continuous", "nope", "--repo", str(project)])
    assert result.exit_code == 2
    assert "'nope' is not a commit" in result.output


def test_cli_ambiguous_side_exits_2(project):
    git(project, "tag", "tinygrad==0.13.0")
    result = CliRunner().invoke(cli, ["continuous", "tinygrad==0.13.0", "--repo", str(project)])
    assert result.exit_code == 2
    assert "both a git revision and a package set" in result.output


@pytest.mark.slow
def test_real_revisions_same_code_passes_and_more_work_is_caught(project, tmp_path):
    """Three real commits timed against each other in real worker processes (MLP only, short blocks)."""
    base = git(project, "rev-parse", "HEAD")
    wider = commit_change(project, "harness/tg/models.py", '"hidden": [512, 512]', '"hidden": [2048, 2048]')
    args = ["continuous", "--repo", str(project), "--model", "mlp", "--rounds", "3", "--mlp-steps", "3"]
    out = tmp_path / "same.json"
    same = CliRunner().invoke(cli, [*args, base, base, "--format", "json", "-o", str(out)])
    assert same.exit_code == 0, same.output
    doc = json.loads(out.read_text())
    assert doc["verdict"] == "pass" and len(doc["workload"]["step_times_s"]["base"]["mlp"]) == 3
    slower = CliRunner().invoke(cli, [*args, base, wider, "--format", "markdown"])
    assert slower.exit_code == 1, slower.output
    assert "**REGRESSION**" in slower.output and "mlp step_time_s" in slower.output


@pytest.mark.slow
def test_a_side_that_crashes_is_an_environment_error(project):
    base = git(project, "rev-parse", "HEAD")
    broken = commit_change(project, "harness/tg/train.py", "class Trainer:", "class Trainer(NoSuchBase):")
    result = CliRunner().invoke(cli, ["continuous", base, broken, "--repo", str(project), "--model", "mlp"])
    assert result.exit_code == int(ExitCode.ENVIRONMENT)
    assert "head side" in result.output and "NameError" in result.output


@pytest.mark.slow
def test_worker_protocol_survives_tinygrad_debug_output():
    """DEBUG=2 makes tinygrad print a line per kernel on stdout; the replies must still parse."""
    import os

    worker = ROOT / "harness" / "tg" / "worker.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DEBUG": "2"}
    done = subprocess.run(
        [sys.executable, "-P", str(worker), "--models", "mlp"],
        input='{"model": "mlp", "steps": 2}\n{"quit": true}\n',
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert replies[0]["ready"] and len(replies[1]["times"]) == 2
    assert "GFLOPS" in done.stderr  # tinygrad's DEBUG lines went to stderr


@pytest.mark.slow
def test_a_real_package_set_environment_is_made_once_and_runs_the_worker(project):
    """The real venv path, once: pip installs the tree's requirements with tinygrad==0.13.0 (needs the
    package index; about a minute), the environment is reused, and a worker in it times a short MLP block
    and reports the tinygrad that ran."""
    messages: list[str] = []
    side = continuous.prepare(project, "tinygrad==0.13.0", "base", [], messages.append)
    assert side.python.startswith(str(continuous.cache_root() / "envs"))
    again = continuous.prepare(project, "tinygrad==0.13.0", "base", [], messages.append)
    assert again.python == side.python and sum(m.startswith("creating") for m in messages) == 1
    worker = continuous.Worker(side, ["mlp"], "CPU", None)
    try:
        ready = worker.ready()
        assert (ready["tinygrad"], ready["device"]) == ("0.13.0", "CPU")
        assert len(worker.block("mlp", 2)) == 2
    finally:
        worker.close()


@pytest.mark.slow
def test_a_real_failed_install_names_the_requirement(project):
    requirements = ["tinygrad==999.0"]
    with pytest.raises(HarnessError, match=r"pip install: .*tinygrad==999\.0") as e:
        continuous.environment(requirements, print)
    assert e.value.code == ExitCode.ENVIRONMENT and "\n" not in e.value.message
    assert not continuous.env_dir(requirements).exists()


def test_a_given_rule_replaces_its_metrics_default_and_keeps_the_others():
    from harness.gate.rules import resolve

    assert [r.text for r in resolve(("step_time_s:+20%",), continuous.DEFAULT_RULES)] == ["step_time_s:+20%"]
    both = resolve(("accuracy:-1pp",), continuous.DEFAULT_RULES)
    assert [r.text for r in both] == [*continuous.DEFAULT_RULES, "accuracy:-1pp"]
