"""A suite's time budget (budget.wall_s) fails `suite run`, `merge` and `compare` where the user runs them, and
only warns under `--budgets warn` / MNIST_BENCH_BUDGETS=warn, which bench.yml sets on hosted runners: a slow VM
must never turn main red, while missed targets and failed runs still do. On the committed CL gate records,
with the budget they were run under lowered below their wall time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import documents
from harness.cli import cli
from harness.cli.app import BUDGETS_VAR

ROOT = Path(__file__).resolve().parents[1]
RECORDS = sorted((ROOT / "results" / "gate-cl").glob("*-default__CL__seed*.json"))  # MLP and CNN, 3 seeds
OVER = "mlp-default@CL: seed 0: wall_s"


def shard(tmp_path: Path, budget_s: float, accuracy: float | None = None) -> Path:
    """The six committed CL gate records, re-budgeted (and, given `accuracy`, MLP seed 0 below its target)."""
    folder = tmp_path / "shard"
    folder.mkdir()
    for src in RECORDS:
        doc = json.loads(src.read_text())
        doc["suite"]["budget"] = {"wall_s": budget_s}
        if accuracy is not None and doc["config"]["seed"] == 0 and doc["model"] == "mlp":
            doc["metrics"]["accuracy"] = accuracy
            doc["target"]["met"] = accuracy >= doc["target"]["accuracy"]
        (folder / src.name).write_text(json.dumps(doc))
    return folder


def merge(folder: Path, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["merge", str(folder), *args], env=env or {})


def test_the_committed_records_are_what_the_tests_assume():
    assert len(RECORDS) == 6
    assert all(json.loads(p.read_text())["timings"]["wall_s"] > 10 for p in RECORDS)


def test_a_budget_overrun_fails_by_default_and_only_warns_when_asked(tmp_path):
    folder = shard(tmp_path, budget_s=10)
    failed = merge(folder, env={BUDGETS_VAR: ""})
    assert failed.exit_code == 1
    assert f"FAIL {OVER}" in failed.output and "> budget 10 s" in failed.output
    for args, env in ((["--budgets", "warn"], None), ([], {BUDGETS_VAR: "warn"})):
        warned = merge(folder, *args, env=env)
        assert warned.exit_code == 0, warned.output
        assert f"WARN over budget (not gated: --budgets warn): {OVER}" in warned.output
        assert "FAIL" not in warned.output
    # the flag wins over the variable, so a workflow's default can be overridden per step
    assert merge(folder, "--budgets", "fail", env={BUDGETS_VAR: "warn"}).exit_code == 1


def test_under_warn_a_missed_target_still_fails(tmp_path):
    folder = shard(tmp_path, budget_s=10, accuracy=90.0)
    result = merge(folder, "--budgets", "warn")
    assert result.exit_code == 1
    assert "FAIL mlp-default@CL: target 95% met by 2 of 3 seed(s)" in result.output
    assert "WARN over budget" in result.output


def test_within_budget_nothing_is_said(tmp_path):
    result = merge(shard(tmp_path, budget_s=1000), "--budgets", "warn")
    assert result.exit_code == 0 and "budget" not in result.output


def test_compare_under_warn_passes_with_the_overrun_as_a_warning(tmp_path):
    folder = shard(tmp_path, budget_s=10)
    assert merge(folder, "-o", str(tmp_path / "s.json"), "--budgets", "warn").exit_code == 0
    args = ["compare", str(tmp_path / "s.json"), "--root", str(tmp_path / "none"), "--allow-missing"]
    failed = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "fail.json")], env={BUDGETS_VAR: ""})
    assert failed.exit_code == 1
    assert any(p.startswith("mlp-default: seed 0: wall_s") for p in documents.load(tmp_path / "fail.json")["problems"])
    warned = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "warn.json")], env={BUDGETS_VAR: "warn"})
    assert warned.exit_code == 0, warned.output
    doc = documents.load(tmp_path / "warn.json", "comparison")
    assert doc["verdict"] == "pass" and doc["problems"] == []
    assert doc["warnings"][0].startswith("no baseline at")  # what the workflow and the verdict read first
    assert [w for w in doc["warnings"] if w.startswith("over budget (not gated): mlp-default: seed 0: wall_s")]


def test_help_documents_the_flag_and_its_variable():
    for command in ("merge", "compare"):
        text = CliRunner().invoke(cli, [command, "--help"], terminal_width=200).output
        assert "--budgets [fail|warn]" in text and "MNIST_BENCH_BUDGETS" in text, command


@pytest.mark.parametrize("value, code", [("warn", 0), ("fail", 1)])
def test_the_installed_command_reads_the_variable(tmp_path, value, code):
    """A real process, as the workflow's steps run it."""
    folder = shard(tmp_path, budget_s=10)
    env = {**os.environ, BUDGETS_VAR: value, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "merge", str(folder)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == code, done.stderr


def test_a_bad_value_is_one_line(tmp_path):
    folder = shard(tmp_path, budget_s=10)
    result = merge(folder, "--budgets", "sometimes")
    assert result.exit_code == 2 and "Invalid value for '--budgets'" in result.output
    shutil.rmtree(folder)
