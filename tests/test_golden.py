"""Rendered output against committed files (pyperf's model): a small summary + baseline pair under
tests/fixtures/golden/, and the expected compare text, Markdown and JSON, console summary table and
report body. After an intended output change, regenerate with
`MNIST_BENCH_REGEN_GOLDEN=1 pytest tests/test_golden.py` and review the diff."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import documents, report
from harness.cli import cli
from harness.documents import schema
from harness.gate import compare, rules
from harness.report import console

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
REGEN = os.environ.get("MNIST_BENCH_REGEN_GOLDEN") == "1"
WRITTEN_AT = "2026-11-27T00:00:00Z"
RULES = [rules.parse_rule(r) for r in rules.DEFAULT_RULES]


def current() -> dict:
    return documents.load(GOLDEN / "gate.summary.json", "summary")


def baseline() -> dict:
    return documents.load(GOLDEN / "gate.baseline.json", "baseline")["summary"]


def comparison(with_baseline: bool) -> dict:
    doc = compare.compare(
        current(),
        baseline() if with_baseline else None,
        RULES,
        current_path="gate.summary.json",
        baseline_path="gate.baseline.json" if with_baseline else "results/baselines/CPU-test-cpu-9000/gate.json",
    )
    return {**doc, "created_at": WRITTEN_AT}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == path.read_text(encoding="utf-8"), f"{name} changed; see the module docstring"


@pytest.mark.parametrize("fmt, suffix", [("text", "txt"), ("markdown", "md"), ("json", "json")])
@pytest.mark.parametrize("with_baseline, stem", [(True, "compare"), (False, "compare-no-baseline")])
def test_compare_output_matches_the_committed_file(fmt, suffix, with_baseline, stem):
    check_golden(f"{stem}.{suffix}", documents.render(comparison(with_baseline), fmt))


def test_the_golden_documents_are_schema_valid():
    for with_baseline in (True, False):
        assert schema.errors(comparison(with_baseline), "comparison") == []
    assert comparison(True)["verdict"] == "regression"
    assert comparison(False)["verdict"] == "pass" and comparison(False)["baseline"] is None


def test_allow_missing_writes_a_schema_valid_document_with_no_baseline(tmp_path):
    out = tmp_path / "comparison.json"
    args = ["compare", str(GOLDEN / "gate.summary.json"), "--root", str(tmp_path / "none"), "--allow-missing"]
    result = CliRunner().invoke(cli, [*args, "--format", "json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = documents.load(out, "comparison")
    assert doc["baseline"] is None and doc["verdict"] == "pass" and doc["rows"] == []
    assert json.loads(result.output) == doc
    assert doc["warnings"][0].startswith(f"no baseline at {tmp_path / 'none'}")


def _with(doc: dict, **config_changes) -> dict:
    return {**doc, "configs": [{**doc["configs"][0], **config_changes}, *doc["configs"][1:]]}


@pytest.mark.parametrize("with_baseline", [True, False])
def test_budget_overruns_and_missing_runs_fail_compare_as_they_fail_merge(with_baseline):
    from harness.documents import summary

    over = _with(current(), budget={"wall_s": 1.0}, budget_violations=["seed 0: wall_s 2 s > budget 1 s"])
    missing = {**current(), "n_expected": current()["n_runs"] + 1}
    base = baseline() if with_baseline else None
    for doc in (over, missing):
        verdict = compare.compare(doc, base, RULES, current_path="c", baseline_path="b")
        assert verdict["verdict"] == "regression"
        assert set(summary.problems(doc, label="name")) <= set(verdict["problems"])
    assert (
        "mlp: seed 0: wall_s 2 s > budget 1 s"
        in compare.compare(over, base, RULES, current_path="c", baseline_path="b")["problems"]
    )


def test_committed_results_still_validate_through_the_migrations():
    files = sorted((Path(__file__).parent.parent / "results" / "baselines").rglob("*.json"))
    assert files and all(documents.problems(f) == [] for f in files)


def test_committed_perf_results_are_versioned_perf_documents():
    files = sorted((Path(__file__).parent.parent / "results" / "perf").glob("*.json"))
    assert files
    for f in files:
        assert documents.problems(f) == [], f
        assert documents.load(f)["kind"] == "perf"


def test_console_summary_table_matches_the_committed_file():
    check_golden("summary-table.txt", console.summary_table(current()))
    check_golden("baseline-summary-table.txt", console.summary_table(baseline()))


def test_report_body_matches_the_committed_file():
    configs = current()["configs"] + [{**c, "name": f"{c['name']}-baseline"} for c in baseline()["configs"]]
    by_model = {m: [c for c in configs if c["model"] == m] for m in ("mlp", "cnn")}
    check_golden("report-body.md", "\n".join(report.study_sections(by_model)).rstrip())
