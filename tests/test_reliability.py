"""Bad input, interruptions and concurrency: nothing written is lost, nothing half-written is left."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import equal_ignoring_time_of_writing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import documents
from harness.base import metrics
from harness.base.errors import HarnessError
from harness.cli import cli
from harness.documents import schema, suites
from harness.gate import rules
from harness.tg import data

TINY = str(Path(__file__).parent / "fixtures" / "tiny.toml")
CLI = [sys.executable, "-m", "harness"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


# --- property-based: parsers never fail with anything but a HarnessError -------------------------


@given(st.binary(max_size=64))
def test_idx_parser_accepts_or_explains_any_bytes(blob):
    spec = data.IdxSpec("y", "y", "0" * 64, 2049, (3,))
    try:
        assert data.parse_idx(blob, spec).shape == (3,)
    except HarnessError as e:
        assert "\n" not in e.message


@given(st.lists(st.integers(0, 255), min_size=1, max_size=20))
def test_idx_roundtrip(values):
    spec = data.IdxSpec("y", "y", "0" * 64, 2049, (len(values),))
    blob = (2049).to_bytes(4, "big") + len(values).to_bytes(4, "big") + bytes(values)
    assert data.parse_idx(blob, spec).tolist() == values


@given(st.text(max_size=30))
def test_rule_parser_accepts_or_explains_any_text(text):
    try:
        rules.parse_rule(text)
    except HarnessError as e:
        assert e.message.startswith("bad rule")


@given(
    st.sampled_from(sorted(metrics.METRICS)),
    st.sampled_from("+-"),
    st.decimals(min_value=0, max_value=1000, places=2),
    st.booleans(),
)
def test_generated_rules_parse_to_their_parts(metric, sign, amount, points):
    unit = "pp" if points and metric == "accuracy" else "%"
    rule = rules.parse_rule(f"{metric}:{sign}{amount}{unit}")
    assert rule.metric == metric and rule.amount == float(amount)
    assert rule.bad_sign == (1 if sign == "+" else -1) and rule.unit == unit


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(json_values)
def test_suite_loader_accepts_or_explains_any_json(tmp_path, doc):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    try:
        suites.expand(suites.load(str(path)), ["CPU"])
    except HarnessError as e:
        assert "\n" not in e.message


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(json_values, st.integers(-3, 5))
def test_result_loader_accepts_or_explains_any_json(tmp_path, doc, version):
    if isinstance(doc, dict):
        doc["schema_version"] = version
        doc.setdefault("kind", "run")
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(HarnessError) as e:  # random documents are never valid records
        documents.load(path)
    if isinstance(doc, dict) and version > schema.SCHEMA_VERSION:
        assert "newer than this mnist-bench understands" in e.value.message
    elif isinstance(doc, dict) and version < min(documents.MIGRATIONS):
        assert "too old to migrate" in e.value.message


def test_migration_runs_step_by_step(monkeypatch):
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(
        documents,
        "MIGRATIONS",
        {1: lambda d: {**d, "schema_version": 2, "a": 1}, 2: lambda d: {**d, "schema_version": 3, "b": d["a"] + 1}},
    )
    assert documents.upgrade({"schema_version": 1}, "x") == {"schema_version": 3, "a": 1, "b": 2}


# --- bad input through the CLI: one line, documented code, no traceback -------------------------


def invoke(*args):
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "file is empty"),
        ("{nope", "not valid JSON"),
        ('{"schema_version": 7, "kind": "run"}', "is newer"),
        ('{"schema_version": 1, "kind": "run"}', "$: 'run_id' is a required property"),
    ],
)
def test_bad_result_files(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_text(content)
    result = invoke("validate", str(path))
    assert result.exit_code == 2 and message in result.output


def test_unreadable_inputs(tmp_path):
    folder = tmp_path / "dir.json"
    folder.mkdir()
    assert "cannot read" in invoke("validate", str(folder)).output
    assert invoke("compare", str(tmp_path / "missing.json")).exit_code == 2
    assert invoke("baseline", "show", str(tmp_path / "missing.json")).exit_code == 2


def test_baseline_of_a_run_file_is_refused(smoke_run, tmp_path):
    out, planned, _ = smoke_run
    result = invoke("baseline", "save", str(out / planned[0].filename), "--root", str(tmp_path))
    assert result.exit_code == 2 and "expected a suite summary" in result.output


def test_diverging_run_is_written_as_diverged_with_exit_5(tmp_path):
    # tinygrad's CPU backend named: where PoCL is installed the default is CL, whose first compile is slow
    result = invoke("mlp", "--lr", "1e12", "--steps", "30", "--bs", "32", "--device", "CPU", "--out-dir", str(tmp_path))
    assert result.exit_code == 5
    (path,) = tmp_path.glob("*.json")
    record = documents.load(path, "run")
    assert record["status"] == "diverged" and record["metrics"]["accuracy"] is None


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_loses_nothing(tiny_tmpfs, smoke_run):
    _, _, outcome = smoke_run
    (tiny_tmpfs / "keep.json").write_text(" " * 4000)  # one of the two 4 KiB pages left: records are bigger
    result = invoke("baseline", "save", str(outcome.summary_path), "--root", str(tiny_tmpfs))
    assert result.exit_code == 4 and "No space left on device" in result.output
    assert sorted(p.name for p in tiny_tmpfs.rglob("*") if p.is_file()) == ["keep.json"]
    run = invoke(
        "mlp",
        "--steps",
        "40",
        "--bs",
        "8",
        "--log-every",
        "1",
        "--device",
        "CPU",
        "--out-dir",
        str(tiny_tmpfs),
        "--no-assert-target",
    )
    assert run.exit_code == 4 and sorted(p.name for p in tiny_tmpfs.rglob("*") if p.is_file()) == ["keep.json"]


# --- interruptions ------------------------------------------------------------------------------


def start_suite(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "suite", "run", TINY, "--out-dir", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # A shell starts background jobs with SIGINT ignored, and Python keeps an inherited SIG_IGN, so
        # under `nohup pytest &` the suite would never see the SIGINT this file sends: give it the default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_results(out: Path, n: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while len(list(out.glob("mlp*.json"))) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.05)


def check_folder(out: Path) -> list[dict]:
    """Every JSON in the folder is complete and valid."""
    return [documents.load(p) for p in out.glob("*.json")]


def deterministic_view(doc: dict) -> list:
    return [
        (c["key"], c["seeds"], c["statuses"], c["metrics"]["accuracy"]["values"], c["metrics"]["final_loss"]["values"])
        for c in doc["configs"]
    ]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    done = subprocess.run([*CLI, "suite", "run", TINY, "--out-dir", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "tiny.summary.json").read_text())


# 4 seeds (16 runs): after the first 2 results, 14 runs remain, so the suite cannot finish in the moment
# between the poll that sees them and the signal (with 8 runs it once did, on a loaded CI machine).
LONG = ("--repeat", "4")


@pytest.fixture(scope="module")
def uninterrupted_long(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted_long")
    done = subprocess.run([*CLI, "suite", "run", TINY, "--out-dir", str(out), *LONG], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "tiny.summary.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_and_resume_completes(tmp_path, sig, uninterrupted_long):
    proc = start_suite(tmp_path, *LONG)
    wait_for_results(tmp_path, 2, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted; finished results are kept" in stderr
    assert "Traceback" not in stderr
    check_folder(tmp_path)  # every file there is complete and valid
    assert 2 <= len(list(tmp_path.glob("mlp*.json"))) < 16  # interrupted part-way
    resumed = subprocess.run(
        [*CLI, "suite", "run", TINY, "--out-dir", str(tmp_path), "--resume", *LONG], capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads((tmp_path / "tiny.summary.json").read_text())
    assert deterministic_view(doc) == deterministic_view(uninterrupted_long)


@pytest.mark.slow
def test_interrupting_an_isolated_suite_stops_the_run_process_too(tmp_path):
    proc = start_suite(tmp_path, *LONG, "--isolate")
    wait_for_results(tmp_path, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    check_folder(tmp_path)
    assert group_ends(proc.pid, within_s=30)  # the run's process (and multiprocessing's helper) are gone


def group_ends(pgid: int, within_s: float) -> bool:
    deadline = time.time() + within_s
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_kill_9_at_random_moments_never_leaves_a_bad_file(tmp_path, uninterrupted):
    rng = random.Random(1234)
    kills = 0
    for _ in range(20):
        proc = start_suite(tmp_path, "--resume")
        time.sleep(rng.uniform(0.2, 6.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.communicate()
        check_folder(tmp_path)  # every .json present is complete and schema-valid
        if proc.returncode == 0:  # it finished first: drop half the results, so the next try has work to kill
            done = sorted(p for p in tmp_path.glob("*.json") if not p.name.endswith(".summary.json"))
            for path in rng.sample(done, len(done) // 2):
                path.unlink()
    print(f"kill -9 at {kills} random moments (of 20 tries)")
    assert kills >= 15
    final = subprocess.run(
        [*CLI, "suite", "run", TINY, "--out-dir", str(tmp_path), "--resume"], capture_output=True, text=True
    )
    assert final.returncode == 0, final.stderr
    assert not list(tmp_path.glob(".*.tmp"))  # leftovers of killed writers were cleaned up
    doc = json.loads((tmp_path / "tiny.summary.json").read_text())
    assert deterministic_view(doc) == deterministic_view(uninterrupted)


# --- concurrency --------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_suite_runs_into_one_folder_keep_all_results(tmp_path):
    a = start_suite(tmp_path, "--seeds", "0,1")
    b = start_suite(tmp_path, "--seeds", "2,3")
    for proc in (a, b):
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr
    records = [r for r in check_folder(tmp_path) if r["kind"] == "run"]
    assert len(records) == 16 and len({r["run_id"] for r in records}) == 16
    doc = json.loads((tmp_path / "tiny.summary.json").read_text())
    assert doc["n_runs"] == 16 and all(c["seeds"] == [0, 1, 2, 3] for c in doc["configs"])


@pytest.mark.slow
def test_two_processes_filling_the_data_cache(tmp_path):
    env = {**os.environ, "MNIST_BENCH_CACHE": str(tmp_path / "cache")}
    procs = [
        subprocess.Popen([*CLI, "data", "fetch"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr
    verify = subprocess.run([*CLI, "data", "verify"], env=env, capture_output=True, text=True)
    assert verify.returncode == 0 and verify.stdout.count(": ok") == 4
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(s.name for s in data.SPECS)


def test_summary_equality_ignores_only_the_time_of_writing(smoke_run):
    doc = smoke_run[2].summary
    assert equal_ignoring_time_of_writing(doc, {**doc, "created_at": "x"})
    assert not equal_ignoring_time_of_writing(doc, {**doc, "n_runs": 99})
