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


RESULTS = Path(__file__).parent.parent / "results"


def test_every_committed_result_still_loads_through_the_migrations():
    """Runs of schema 1 and 3, summaries, baselines, cost profiles, perf documents: all valid at this version."""
    checked = 0
    for f in sorted(RESULTS.rglob("*.json")):
        try:
            raw = json.loads(f.read_text())
        except ValueError:
            continue
        if isinstance(raw, dict) and isinstance(raw.get("schema_version"), int) and "kind" in raw:
            assert documents.problems(f) == [], f
            checked += 1
    assert checked > 200


def _committed_run() -> dict:
    """A committed schema-3 record (the MLP's default on CL), migrated to this version."""
    return documents.load(RESULTS / "gate-cl" / "mlp-default__CL__seed0.json", "run")


def test_a_run_record_reads_from_the_top():
    """Did it pass, how accurate, how fast: the first lines; long lists last; the migrated record as written."""
    record = _committed_run()
    text = documents.dumps(record)
    check_golden("run-record.json", text.rstrip("\n"))
    head = text.splitlines()[:40]
    for needle in ('"status": "ok"', '"accuracy": 96.', '"met": true', '"median": 0.03', '"wall_s"'):
        assert any(needle in line for line in head), needle
    assert list(json.loads(text))[:6] == ["schema_version", "kind", "run_id", "model", "status", "target"]
    assert text.index('"environment"') < text.index('"kernels": [') < text.index('"series"')  # long lists last
    assert documents.dumps(json.loads(text)) == text  # the order is the schema's, whatever order it was read in


def test_a_migrated_record_labels_evaluations_and_names_compile_steps_apart():
    record = _committed_run()
    assert record["series"]["evals"][0] == {"step": 50, "accuracy": 93.69, "train_s": pytest.approx(7.142, abs=1e-3)}
    assert record["series"]["loss"][0] == [10, pytest.approx(0.4814, abs=1e-4)]
    assert len(record["series"]["samples"]["step_s"]) == 200 and "loss_curve" not in record["metrics"]
    assert record["timings"]["compile_steps"] == 2 and "warmup_steps" not in record["timings"]
    assert record["config"]["warmup_steps"] == 0  # the learning-rate warm-up keeps its name
    assert record["cost"]["derived"]["gflops_per_s"] > 0 and "gflop_per_s" not in record["cost"]["derived"]


def test_run_summary_matches_the_committed_file():
    record = _committed_run()
    missed = {**record, "status": "target_missed", "target": {"accuracy": 99.0, "met": False}}
    path = Path("results/runs/x.json")
    text = console.run_summary(record, path) + "\n---\n" + console.run_summary(missed, path)
    check_golden("run-summary.txt", text)
    assert "target_missed: accuracy 96." in text and "< target 99% after 200 steps" in text
    assert "--no-assert-target" in text


@pytest.mark.parametrize("device", ["CPU-ClangRenderer-threads2", "CL-OpenCLRenderer"])
def test_one_definition_of_a_steps_cost_in_the_record_and_the_cost_gate(device):
    """The cost gate's train_step counts are the jitted step's, as a run record's are: 54 kernels and
    80,948,660 bytes for the MLP; what GlobalCounters saw over a call adds the batch indices' copy
    (256 int32: one kernel, 1,024 bytes) and is named `counted`."""
    from harness.base.metrics import METRICS

    path = RESULTS / "baselines" / "cost" / f"{device}-tinygrad0.14.0-harness0.1.0" / "mlp-cd7f823077b9.json"
    profile = documents.load(path, "cost")["profiles"][0]
    step = profile["train_step"]
    assert (
        (step["kernels"], step["bytes"])
        == (54, 80_948_660)
        == (len(profile["kernels"]), sum(k["bytes"] for k in profile["kernels"]))
    )
    assert (step["counted"]["kernels"], step["counted"]["bytes"]) == (55, 80_949_684)
    record = documents.load(RESULTS / "gate-cl" / "mlp-default__CL__seed0.json", "run")
    for name in ("kernels_per_step", "bytes_per_step"):
        assert METRICS[name].read(record) == METRICS[name].of_profile(profile)


def test_a_migrated_cl_record_names_the_compiler_that_compiled_its_kernels():
    raw = json.loads((RESULTS / "gate-cl" / "mlp-default__CL__seed0.json").read_text())
    assert raw["device"]["compiler"] == "Compiler"  # version 3: the renderer's pass-through base class
    assert _committed_run()["device"]["compiler"] == "CLCompiler"
