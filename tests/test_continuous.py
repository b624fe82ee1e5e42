"""Same-runner A/B timing: revisions, environments, the interleaving, and real runs on real git commits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import compare, continuous, schema
from harness.cli import cli
from harness.errors import ExitCode, HarnessError

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
    with pytest.raises(HarnessError, match=r"no harness/train\.py"):
        continuous.prepare(project, "HEAD~1", "base", [], print)


def test_source_tree_is_the_commit_and_is_reused(project):
    sha = continuous.resolve(project, "HEAD")
    (project / "harness" / "uncommitted.py").write_text("x = 1\n")
    tree = continuous.source_tree(project, sha)
    assert (tree / "harness" / "train.py").read_text() == (project / "harness" / "train.py").read_text()
    assert not (tree / "harness" / "uncommitted.py").exists()
    assert continuous.source_tree(project, sha) == tree


def test_same_dependencies_reuse_this_environment(project):
    side = continuous.prepare(project, "HEAD", "base", [], print)
    assert side.python == sys.executable
    assert continuous.dependencies(side.tree) == continuous.installed_dependencies()


def test_other_dependencies_get_their_own_environment(project, monkeypatch):
    made = []

    def fake_run(cmd, **kw):  # stands in for `python -m venv` and `pip install` (minutes, network)
        made.append(cmd)
        if "venv" in cmd:
            Path(cmd[-1]).mkdir(parents=True)

    monkeypatch.setattr(continuous.subprocess, "run", fake_run)
    python = continuous.environment(["tinygrad==0.13.0"], print)
    assert python != sys.executable and python.startswith(str(continuous.cache_root() / "envs"))
    assert made[-1][-1] == "tinygrad==0.13.0"
    assert continuous.environment(["tinygrad==0.13.0"], print) == python  # reused: nothing installed again
    assert len(made) == 2


def _samples(base: list[float], head: list[float]) -> list[dict[str, list[list[float]]]]:
    return [{"mlp": [[v, v] for v in side]} for side in (base, head)]


def _document(samples):
    sides = [
        continuous.Side("base", "main", "a" * 40, Path("/t"), sys.executable),
        continuous.Side("head", "working tree", None, Path("/t"), sys.executable),
    ]
    ready = {"device": "CPU", "tinygrad": "0.14.0", "warmup_s": {"mlp": 1.0}}
    rules = [compare.parse_rule(r) for r in continuous.DEFAULT_RULES]
    workload = continuous.Workload(["mlp"], rounds=3)
    return continuous.verdict_document(sides, [ready, ready], samples, workload, rules, 10.0)


def test_verdict_document_passes_on_noise_and_fails_on_a_slowdown():
    same = _document(_samples([0.080, 0.081, 0.079], [0.0805, 0.0795, 0.081]))
    assert same["verdict"] == "pass" and same["suite"] == "continuous"
    assert schema.errors(same, "comparison") == []
    slow = _document(_samples([0.080, 0.081, 0.079], [0.096, 0.097, 0.095]))
    assert slow["verdict"] == "regression"
    assert slow["problems"][0].startswith("mlp step_time_s: 20.0% worse")
    assert slow["workload"]["step_times_s"]["head"]["mlp"][0] == [0.096, 0.096]
    assert "REGRESSION" in compare.render(slow, "text") and "**REGRESSION**" in compare.render(slow, "markdown")


def test_cli_bad_revision_exits_2(project):
    result = CliRunner().invoke(cli, ["continuous", "nope", "--repo", str(project)])
    assert result.exit_code == 2
    assert "'nope' is not a commit" in result.output


@pytest.mark.slow
def test_real_revisions_same_code_passes_and_more_work_is_caught(project, tmp_path):
    """Three real commits timed against each other in real worker processes (MLP only, short blocks)."""
    base = git(project, "rev-parse", "HEAD")
    wider = commit_change(project, "harness/models.py", '"hidden": [512, 512]', '"hidden": [2048, 2048]')
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
    broken = commit_change(project, "harness/train.py", "class Trainer:", "class Trainer(NoSuchBase):")
    result = CliRunner().invoke(cli, ["continuous", base, broken, "--repo", str(project), "--model", "mlp"])
    assert result.exit_code == int(ExitCode.ENVIRONMENT)
    assert "head side" in result.output and "NameError" in result.output


@pytest.mark.slow
def test_worker_protocol_survives_tinygrad_debug_output():
    """DEBUG=2 makes tinygrad print a line per kernel on stdout; the replies must still parse."""
    import os

    worker = ROOT / "harness" / "worker.py"
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
