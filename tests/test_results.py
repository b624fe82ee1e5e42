from __future__ import annotations

import json

import pytest

from harness import documents
from harness.base import atomic
from harness.base.errors import HarnessError
from harness.documents import schema


@pytest.fixture(scope="module")
def record(small):
    from harness.run import bench
    from harness.tg.spec import RunSpec

    spec = RunSpec.defaults("mlp", steps=4, batch_size=16, eval_every=2)
    rec, _ = bench.run(bench.RunRequest(spec, device="CPU", out_dir=None), mnist=small)
    return rec


def test_record_is_schema_valid_and_complete(record):
    assert schema.errors(record, "run") == []
    assert record["cost"]["train_step"]["kernels"] > 0 and record["cost"]["model"] == "mlp"
    assert record["schema_version"] == schema.SCHEMA_VERSION and record["status"] == "target_missed"
    assert record["dataset"]["n_test"] == 500 and len(record["dataset"]["sha256"]) == 4
    assert record["timings"]["step_time_s"]["n"] == 2
    assert record["environment"]["packages"]["tinygrad"] == "0.14.0"


def test_device_says_what_it_is_and_records_without_it_stay_valid(record):
    assert record["device"]["runs_on"] == "cpu" and "clang" in record["device"]["description"]
    older = json.loads(json.dumps(record))
    del older["device"]["description"], older["device"]["runs_on"]
    assert schema.errors(older, "run") == []


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda r: r.pop("metrics"), "$: 'metrics' is a required property"),
        (lambda r: r.update(extra=1), "Additional properties are not allowed"),
        (lambda r: r["config"].update(batch_size=0), "$.config.batch_size"),
        (lambda r: r["metrics"].update(accuracy=101), "$.metrics.accuracy"),
        (lambda r: r.update(status="great"), "$.status"),
    ],
)
def test_schema_rejects_bad_records(record, mutate, where):
    bad = json.loads(json.dumps(record))
    mutate(bad)
    assert any(where in problem for problem in schema.errors(bad, "run"))


def test_atomic_write_roundtrip_and_deterministic_bytes(tmp_path, record):
    path = documents.write(tmp_path / "r.json", record, "run")
    text = path.read_text()
    assert text.endswith("\n") and text == documents.dumps(json.loads(text))
    assert documents.load(path, "run") == record
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_failed_write_keeps_the_old_file(tmp_path, record, monkeypatch):
    path = tmp_path / "r.json"
    path.write_text("old\n")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(HarnessError, match="No space left on device"):
        documents.write_json_atomic(path, record)
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_invalid_record_is_never_written(tmp_path, record):
    bad = {**record, "status": "great"}
    with pytest.raises(HarnessError, match=r"invalid run JSON: \$.status"):
        documents.write(tmp_path / "r.json", bad, "run")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "file is empty"),
        ("{", "not valid JSON"),
        ("[]", "no integer schema_version"),
        ('{"schema_version": 99, "kind": "run"}', "schema_version 99 is newer"),
        ('{"schema_version": 1, "kind": "poem"}', "unknown document kind 'poem'"),
    ],
)
def test_load_rejects_bad_files_with_one_line(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(HarnessError, match=message) as e:
        documents.load(path)
    assert "\n" not in e.value.message


def test_load_checks_the_expected_kind(tmp_path, record):
    path = documents.write(tmp_path / "r.json", record, "run")
    with pytest.raises(HarnessError, match="is a run file, expected a baseline file"):
        documents.load(path, "baseline")


def test_record_says_its_kernels_were_not_searched(record):
    assert record["environment"]["kernel_search"] == {"beam": 0, "searched": 0, "cached": 0, "search_s": 0.0}


def test_record_says_whether_the_compile_cache_was_warm(record):
    cache = record["environment"]["compile_cache"]
    assert cache["path"].endswith(".db") and cache["bytes"] >= 0 and cache["warm"] == (cache["bytes"] > 0)


def test_record_keeps_raw_samples_and_both_times_to_target(record):
    t, m, samples = record["timings"], record["metrics"], record["series"]["samples"]
    assert len(samples["step_s"]) == m["steps_done"] == 4 and len(samples["eval_s"]) == 2
    assert all(round(x, 6) == x for x in samples["step_s"])  # microseconds: compact
    assert abs(sum(samples["step_s"]) - t["train_s"]) < 1e-4
    assert abs(sum(samples["eval_s"]) - t["eval_s"]) < 1e-4
    assert set(t["stability"]) == {"busy", "reasons"}
    assert record["environment"]["load_avg"]["end"] is not None


def test_time_to_target_with_eval_adds_the_evaluations_up_to_the_target():
    from harness.tg.train import RunOutput

    out = RunOutput(
        accuracy=97.0, final_loss=0.1, diverged=False, loss_curve=[], evals=[[50, 90.0, 5.0], [100, 96.0, 10.0],
        [150, 97.0, 15.0]], step_times=[], eval_times=[1.0, 2.0, 4.0], compile_s=0, eval_s=7.0, train_s=15.0,
        weights_sha256=None, target=95.0, steps_done=150,
    )  # fmt: skip
    assert out.first_eval_reaching(95.0)[2] == 10.0  # training only
    assert out.time_to_target_with_eval(95.0) == 13.0  # MLPerf: evaluations until the target included
    assert out.time_to_target_with_eval(99.0) is None


def test_committed_older_records_migrate(tmp_path):
    """A record older than version 3 held tinygrad's own DEV=CPU; version 3 drops it and marks what it cannot know."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "results/gate/runs/mlp-default__CPU__seed0.json"
    raw = json.loads(path.read_text())
    assert raw["schema_version"] < 3 and raw["environment"]["tinygrad_env"] == {"DEV": "CPU"}
    doc = documents.load(path, "run")
    assert doc["environment"]["tinygrad_env"] == {} and doc["environment"]["device_choice"]["by"] == "unknown"
    assert doc["series"]["samples"] is None and doc["metrics"]["time_to_target_with_eval_s"] is None
    renderer = {**raw, "environment": {**raw["environment"], "tinygrad_env": {"DEV": "CPU:LLVM", "BEAM": "1"}}}
    (tmp_path / "r.json").write_text(json.dumps(renderer))
    assert documents.load(tmp_path / "r.json")["environment"]["tinygrad_env"] == {"DEV": "CPU:LLVM", "BEAM": "1"}


def test_a_fresh_record_reads_from_the_top_with_labelled_fields(record):
    text = documents.dumps(record)
    keys = list(json.loads(text))
    assert keys[:6] == ["schema_version", "kind", "run_id", "model", "status", "target"]
    assert keys.index("metrics") < keys.index("timings") < keys.index("environment") < keys.index("cost")
    assert keys[-1] == "series"  # the long lists last
    head = "\n".join(text.splitlines()[:12])
    assert '"status": "target_missed"' in head and '"accuracy"' in head
    assert [e["step"] for e in record["series"]["evals"]] == [2, 4]
    assert set(record["series"]["evals"][0]) == {"step", "accuracy", "train_s"}
    assert record["timings"]["compile_steps"] == 2 and "warmup_steps" not in record["timings"]
    assert record["device"]["compiler"] == "ClangCompiler"


def test_the_summary_says_why_a_target_was_missed(record):
    from harness.report import console

    status = console.run_summary(record, None).splitlines()[0]
    accuracy = record["metrics"]["accuracy"]
    assert status.startswith(f"status             target_missed: accuracy {accuracy:.2f}% < target 95% after 4 steps")
    assert "--no-assert-target" in status
