from __future__ import annotations

import json

import pytest

from harness import atomic, results, schema
from harness.errors import HarnessError


@pytest.fixture(scope="module")
def record(small):
    from harness import bench
    from harness.spec import RunSpec

    spec = RunSpec.defaults("mlp", steps=4, batch_size=16, eval_every=2)
    rec, _ = bench.run(bench.RunRequest(spec, device="CPU", out_dir=None), mnist=small)
    return rec


def test_record_is_schema_valid_and_complete(record):
    assert schema.errors(record, "run") == []
    assert record["schema_version"] == schema.SCHEMA_VERSION and record["status"] == "target_missed"
    assert record["dataset"]["n_test"] == 500 and len(record["dataset"]["sha256"]) == 4
    assert record["timings"]["step_time_s"]["n"] == 2
    assert record["environment"]["packages"]["tinygrad"] == "0.14.0"


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
    path = results.write_validated(tmp_path / "r.json", record, "run")
    text = path.read_text()
    assert text.endswith("\n") and text == results.dumps(json.loads(text))
    assert results.load(path, "run") == record
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_failed_write_keeps_the_old_file(tmp_path, record, monkeypatch):
    path = tmp_path / "r.json"
    path.write_text("old\n")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(HarnessError, match="No space left on device"):
        results.write_json_atomic(path, record)
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_invalid_record_is_never_written(tmp_path, record):
    bad = {**record, "status": "great"}
    with pytest.raises(HarnessError, match=r"invalid run JSON: \$.status"):
        results.write_validated(tmp_path / "r.json", bad, "run")
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
        results.load(path)
    assert "\n" not in e.value.message


def test_load_checks_the_expected_kind(tmp_path, record):
    path = results.write_validated(tmp_path / "r.json", record, "run")
    with pytest.raises(HarnessError, match="is a run file, expected a baseline file"):
        results.load(path, "baseline")


def test_record_says_whether_the_compile_cache_was_warm(record):
    cache = record["environment"]["compile_cache"]
    assert cache["path"].endswith(".db") and cache["bytes"] >= 0 and cache["warm"] == (cache["bytes"] > 0)
