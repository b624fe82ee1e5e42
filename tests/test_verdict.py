"""The combined pull-request verdict: rows, overall verdict, exit codes, Markdown with the sticky marker."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import documents
from harness.base.errors import HarnessError
from harness.cli import cli
from harness.documents import schema
from harness.gate import cost, history, verdict

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
COST_BASE = next(Path("results/baselines/cost").glob("*threads4*/mlp-*.json"))


def _cost_comparison(tmp_path: Path, extra_flops: int = 0) -> Path:
    base = documents.load(COST_BASE, "cost")
    current = copy.deepcopy(base)
    current["profiles"][0]["train_step"]["flops"] += extra_flops
    doc = cost.compare(current, [cost.load_profile(COST_BASE, "mlp")])
    return documents.write(tmp_path / f"cost{extra_flops}.json", doc, "cost_comparison")


def _comparison(tmp_path: Path, name: str, **changes) -> Path:
    doc = json.loads((GOLDEN / name).read_text())
    doc.update(changes)
    return documents.write(tmp_path / f"x-{name}", doc, "comparison")


def _ab(tmp_path: Path, regression: bool = False) -> Path:
    from tests.test_continuous import _document, _samples

    head = [0.096, 0.097, 0.095] if regression else [0.0805, 0.0795, 0.081]
    doc = _document(_samples([0.080, 0.081, 0.079], head))
    return documents.write(tmp_path / f"ab{regression}.json", doc, "comparison")


def _passing_gate(tmp_path: Path) -> Path:
    return _comparison(tmp_path, "compare.json", problems=[], verdict="pass")


def test_all_pass(tmp_path):
    doc = verdict.combine(
        {"cost": _cost_comparison(tmp_path), "ab": _ab(tmp_path), "gate": _passing_gate(tmp_path)}, {"head": "abc"}
    )
    assert doc["verdict"] == "pass" and doc["exit_code"] == 0
    assert [s["status"] for s in doc["sections"]] == ["pass", "pass", "pass"]
    assert schema.errors(doc, "verdict") == []
    md = documents.render(doc, "markdown")
    assert md.startswith(verdict.MARKER + "\n") and "**PASS**" in md and "head `abc`" in md
    assert "8 of 8 gated counts unchanged" in md and "mlp step time" in md


def test_regression_in_any_check_fails(tmp_path):
    doc = verdict.combine({"cost": _cost_comparison(tmp_path, 1000), "ab": _ab(tmp_path, regression=True)})
    assert doc["verdict"] == "regression" and doc["exit_code"] == 1
    assert [s["status"] for s in doc["sections"]] == ["regression", "regression"]
    assert any(p.startswith("cost: mlp flops_per_step") for p in doc["problems"])
    assert any(p.startswith("ab: mlp step_time_s: 20.0% worse") for p in doc["problems"])
    assert ":x: REGRESSION" in documents.render(doc, "markdown")


def test_no_baseline_warns_and_passes(tmp_path):
    gate = _comparison(tmp_path, "compare-no-baseline.json")
    doc = verdict.combine({"gate": gate})
    assert doc["sections"][0]["status"] == "no_baseline"
    assert doc["verdict"] == ("regression" if doc["sections"][0]["problems"] else "pass")
    assert "no baseline" in documents.render(doc, "markdown")


def test_a_missing_document_makes_the_verdict_incomplete(tmp_path):
    doc = verdict.combine({"cost": _cost_comparison(tmp_path), "ab": tmp_path / "nope.json"})
    assert doc["verdict"] == "incomplete" and doc["exit_code"] == 1
    assert doc["sections"][1]["status"] == "missing"
    assert "INCOMPLETE" in documents.render(doc, "text")


def test_wrong_documents_are_refused(tmp_path):
    with pytest.raises(HarnessError, match="continuous"):
        verdict.combine({"ab": _passing_gate(tmp_path)})
    with pytest.raises(HarnessError, match="continuous"):
        verdict.combine({"gate": _ab(tmp_path)})
    with pytest.raises(HarnessError, match="nothing to combine"):
        verdict.combine({})


def test_cli_writes_the_comment_and_exits_with_the_verdict(tmp_path):
    out = tmp_path / "verdict.json"
    args = ["verdict", "--cost", str(_cost_comparison(tmp_path)), "--format", "markdown", "-o", str(out)]
    result = CliRunner().invoke(cli, [*args, "--context", "base=0123456789abcdef"])
    assert result.exit_code == 0, result.output
    assert "base `0123456789ab`" in result.output and json.loads(out.read_text())["verdict"] == "pass"
    bad = CliRunner().invoke(cli, ["verdict", "--cost", str(_cost_comparison(tmp_path, 5)), "--format", "json"])
    assert bad.exit_code == 1 and json.loads(bad.output)["verdict"] == "regression"


def test_history_entries_are_smaller_is_better(tmp_path):
    summary = json.loads((GOLDEN / "gate.summary.json").read_text())
    entries = history.entries(summary, documents.load(COST_BASE, "cost"))
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names))
    error = next(e for e in entries if e["name"].endswith(" accuracy"))
    assert error["unit"] == "% error"
    acc = next(c for c in summary["configs"] if error["name"].startswith(f"{summary['suite']}/{c['name']} "))
    assert error["value"] == pytest.approx(100 - acc["metrics"]["accuracy"]["mean"])
    assert any(e["name"] == "cost/mlp flops_per_step" for e in entries)
    out = tmp_path / "h.json"
    result = CliRunner().invoke(cli, ["history", "--cost", str(COST_BASE), "-o", str(out)])
    assert result.exit_code == 0 and len(json.loads(out.read_text())) == 3


def test_the_pr_comment_matches_its_golden_file_and_names_each_problem_once(tmp_path):
    """The comment CI posts, for a pull request that fails all three checks (`verdict --format markdown`).
    Regenerate with MNIST_BENCH_REGEN_GOLDEN=1 (tests/test_golden.py) and review the diff."""
    from tests.test_golden import check_golden

    paths = {
        "cost": _cost_comparison(tmp_path, extra_flops=1000),
        "ab": _ab(tmp_path, regression=True),
        "gate": _comparison(tmp_path, "compare.json"),
    }
    context = {"head": "0123456789abcdef", "base": "fedcba9876543210", "runner": "ubuntu-24.04"}
    result = CliRunner().invoke(
        cli,
        ["verdict", *(f"--{k}={v}" for k, v in paths.items()), "--format", "markdown"]
        + [f"--context={k}={v}" for k, v in context.items()],
    )
    assert result.exit_code == 1, result.output
    comment = result.output.replace(str(tmp_path), "TMP").rstrip("\n")
    check_golden("verdict.md", comment)
    problems = [line for line in comment.splitlines() if line.startswith("- :x: ")]
    assert len(problems) >= 3 and len(problems) == len(set(problems))
    for p in problems:
        assert comment.count(p.removeprefix("- :x: ").split(": ", 1)[1]) == 1, p
