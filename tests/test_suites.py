from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import equal_ignoring_time_of_writing

from harness.base.errors import HarnessError
from harness.documents import suites, summary
from harness.run import runner

REPO = Path(__file__).resolve().parent.parent

SEED_MLP = [  # (lr, bs, steps, category) from exploration-report.md, in order
    (0.001, 128, 100, "baseline"),
    (0.003, 128, 100, "learning_rate"),
    (0.0005, 128, 100, "learning_rate"),
    (0.001, 256, 100, "batch_size"),
    (0.001, 64, 100, "batch_size"),
    (0.001, 128, 1000, "training_duration"),
    (0.002, 256, 500, "combo"),
    (0.0008, 128, 500, "combo"),
    (0.0008, 128, 1000, "combo"),
    (0.0005, 128, 1000, "combo"),
    (0.0005, 128, 500, "combo"),
]
SEED_CNN = [
    (0.001, 128, 100, "baseline"),
    (0.0005, 128, 100, "learning_rate"),
    (0.002, 128, 100, "learning_rate"),
    (0.001, 64, 100, "batch_size"),
    (0.001, 256, 100, "batch_size"),
    (0.001, 128, 1000, "training_duration"),
    (0.001, 32, 500, "combo"),
    (0.0008, 64, 500, "combo"),
    (0.001, 256, 500, "combo"),
]


def write_suite(tmp_path, text: str, name="custom.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


HEADER = 'schema_version = 1\nkind = "suite"\nname = "custom"\ndescription = "d"\n'


def test_every_shipped_suite_loads_and_expands():
    for name in suites.available():
        assert suites.expand(suites.load(name), ["CPU"])


@pytest.mark.parametrize("name, expected", [("mlp-explore", SEED_MLP), ("cnn-explore", SEED_CNN)])
def test_explore_suites_are_exactly_the_seed_study(name, expected):
    runs = suites.load(name)["runs"]
    assert [(r["lr"], r["batch_size"], r["steps"], r["category"]) for r in runs] == expected


def test_explore_is_both_studies_with_at_least_three_seeds():
    planned = suites.expand(suites.load("explore"), ["CPU"])
    assert len({p.name for p in planned}) == 20
    assert all(len([q for q in planned if q.name == p.name]) >= 3 for p in planned if p.spec.steps <= 500)


def test_grid_expands_axes_times_seeds_times_devices(tmp_path):
    path = write_suite(
        tmp_path,
        HEADER + 'repeat = 2\n[[runs]]\nname = "g"\nmodel = "cnn"\n'
        "grid = { lr = [0.001, 0.002], kernels = [[5, 3], [3, 3]] }\n",
    )
    planned = suites.expand(suites.load(path), ["CPU", "CUDA"])
    assert len(planned) == 2 * 2 * 2 * 2
    assert planned[0].name == "g/lr=0.001,kernels=5x3" and planned[0].spec.model_config == {"kernels": [5, 3]}
    assert len({p.key for p in planned}) == len(planned) and len({p.filename for p in planned}) == len(planned)


@pytest.mark.parametrize(
    "body, message",
    [
        ('[[runs]]\nname = "a"\nmodel = "mlp"\nsize = 3\n', r"\$.runs\[0\]: Additional properties are not allowed"),
        ('[[runs]]\nname = "a"\nmodel = "mlp"\nlr = "fast"\n', r"\$.runs\[0\].lr: 'fast' is not of type 'number'"),
        (
            '[[runs]]\nname = "a"\nmodel = "mlp"\ngrid = { lr = [] }\n',
            r"\$.runs\[0\].grid.lr: \[\] should be non-empty",
        ),
        ('[[runs]]\nname = "a"\nmodel = "mlp"\n[[runs]]\nname = "a"\nmodel = "cnn"\n', "duplicate run name"),
        ('[[runs]]\nname = "a"\nmodel = "mlp"\ngrid = { channels = [[4, 8]] }\n', "does not apply to mlp"),
        ("runs = [\n", "not valid TOML"),
    ],
)
def test_bad_suites_point_at_the_problem(tmp_path, body, message):
    path = write_suite(tmp_path, HEADER + body)
    with pytest.raises(HarnessError, match=message):
        suites.expand(suites.load(path), ["CPU"])


@pytest.mark.parametrize("text", ["0/4", "3/2", "1", "a/b", "-1/2"])
def test_bad_shards_are_refused(text):
    with pytest.raises(HarnessError, match="bad shard"):
        suites.parse_shard(text)


def test_shards_partition_the_runs():
    planned = suites.expand(suites.load("explore"), ["CPU"])
    parts = [suites.shard(planned, i, 3) for i in (1, 2, 3)]
    keys = [p.key for part in parts for p in part]
    assert sorted(keys) == sorted(p.key for p in planned) and len(set(keys)) == len(keys)


def test_suite_run_writes_each_result_and_a_valid_summary(smoke_run):
    out, planned, outcome = smoke_run
    assert sorted(p.name for p in out.glob("*.json")) == sorted([p.filename for p in planned] + ["smoke.summary.json"])
    doc = outcome.summary
    assert doc["n_runs"] == 4 and [c["key"] for c in doc["configs"]] == ["cnn-tiny@CPU", "mlp-tiny@CPU"]
    acc = doc["configs"][1]["metrics"]["accuracy"]
    assert acc["n"] == 2 and acc["min"] <= acc["mean"] <= acc["max"] and acc["ci95"][0] <= acc["mean"]
    assert outcome.problems == []  # smoke does not assert targets


def test_resume_skips_valid_results_and_reruns_broken_ones(smoke_run, tmp_path):
    out, planned, outcome = smoke_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / planned[0].filename).write_text("{ half a file")
    again = runner.run_suite("smoke", planned, copy, resume=True)
    assert again.ran == [planned[0].key] and len(again.skipped) == 3
    untouched = [c for c in outcome.summary["configs"] if c["key"] != planned[0].config_key]
    assert untouched == [c for c in again.summary["configs"] if c["key"] != planned[0].config_key]
    rerun = next(c for c in again.summary["configs"] if c["key"] == planned[0].config_key)
    assert (
        rerun["metrics"]["accuracy"]["values"]
        == next(  # a rerun of the same seed: same numbers
            c for c in outcome.summary["configs"] if c["key"] == planned[0].config_key
        )["metrics"]["accuracy"]["values"]
    )


def test_merge_of_shard_folders_equals_the_unsharded_summary(smoke_run, tmp_path):
    out, planned, outcome = smoke_run
    for i in (1, 2):
        shard_dir = tmp_path / f"shard{i}"
        shard_dir.mkdir()
        for p in suites.shard(planned, i, 2):
            shutil.copy(out / p.filename, shard_dir / p.filename)
    merged, skipped = summary.merge([tmp_path / "shard1", tmp_path / "shard2"])
    assert equal_ignoring_time_of_writing(merged, outcome.summary)
    assert skipped == []


def test_merge_refuses_duplicates_and_skips_unrelated_files(smoke_run, tmp_path):
    out, _, _ = smoke_run
    (tmp_path / "notes.json").write_text(json.dumps({"hello": 1}))
    _, skipped = summary.merge([out, tmp_path / "notes.json"])
    assert any("summary file, not a run result" in s for s in skipped)
    assert any("notes.json" in s and "schema_version" in s for s in skipped)
    with pytest.raises(HarnessError, match="appears more than once"):
        summary.merge([out, out / "mlp-tiny__CPU__seed0.json"])


def test_failed_run_is_recorded_and_the_suite_goes_on(tmp_path, monkeypatch, small):
    from harness.run import bench
    from harness.tg import train

    calls = []
    real_train = train.train

    def flaky(spec, *args, **kwargs):
        calls.append(spec.seed)
        if spec.seed == 0:
            raise RuntimeError("kernel exploded")
        return real_train(spec, *args, **kwargs)

    monkeypatch.setattr(bench, "train", flaky)
    monkeypatch.setattr(runner.mnist_data, "load", lambda *a, **k: small)
    planned = [p for p in suites.expand(suites.load("smoke"), ["CPU"]) if p.name == "mlp-tiny"]
    outcome = runner.run_suite("smoke", planned, tmp_path)
    assert calls == [0, 1]
    failed = json.loads((tmp_path / planned[0].filename).read_text())
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: kernel exploded"
    assert outcome.problems == ["mlp-tiny@CPU: 1 of 2 run(s) failed (seed 0: RuntimeError: kernel exploded)"]


def test_only_selects_runs_by_glob():
    planned = suites.expand(suites.load("explore"), ["CPU"])
    assert {p.name for p in suites.select(planned, ["cnn-0[12]-*"])} == {"cnn-01-baseline", "cnn-02-lr-low"}
    assert suites.select(planned, []) == planned
    with pytest.raises(HarnessError, match="matches no run"):
        suites.select(planned, ["nope*"])


def test_a_suite_covers_what_it_includes_and_merge_combines_their_results(smoke_run, tmp_path):
    assert suites.covered("explore") == {"explore", "mlp-explore", "cnn-explore"}
    assert suites.covered("gate") == {"gate"}
    out, _, _ = smoke_run
    record = json.loads((out / "mlp-tiny__CPU__seed0.json").read_text())
    for suite_name, seed in (("mlp-explore", 0), ("explore", 1)):
        doc = {**record, "suite": {**record["suite"], "name": suite_name}, "run_id": f"{record['run_id']}-{seed}"}
        doc["config"] = {**record["config"], "seed": seed}
        (tmp_path / f"{suite_name}.json").write_text(json.dumps(doc))
    merged, _ = summary.merge([tmp_path])
    assert merged["suite"] == "explore" and merged["n_runs"] == 2
    other = {**record, "suite": {**record["suite"], "name": "gate"}}
    (tmp_path / "gate.json").write_text(json.dumps(other))
    with pytest.raises(HarnessError, match="none includes the others"):
        summary.merge([tmp_path])


def test_merging_single_runs_says_they_belong_to_no_suite(tmp_path):
    record = json.loads((REPO / "results/gate/runs/mlp-default__CPU__seed0.json").read_text())
    (tmp_path / "mlp.json").write_text(json.dumps({k: v for k, v in record.items() if k != "suite"}))
    with pytest.raises(HarnessError, match=r"single runs \(`mnist-bench mlp`/`cnn`\), not a suite"):
        summary.merge([tmp_path])


def test_forward_multiply_adds_of_the_default_models():
    assert suites.forward_macs("mlp", {}) == 784 * 512 + 512 * 512 + 512 * 10
    # conv 1->32 5x5 at 24x24, 32->32 5x5 at 20x20, pool to 10; 32->64 3x3 at 8x8, 64->64 3x3 at 6x6, pool to 3
    cnn = 1 * 32 * 25 * 24 * 24 + 32 * 32 * 25 * 20 * 20 + 32 * 64 * 9 * 8 * 8 + 64 * 64 * 9 * 6 * 6 + 64 * 9 * 10
    assert suites.forward_macs("cnn", {}) == cnn


def test_the_committed_timing_table_is_what_the_committed_results_measured():
    """harness/documents/timings.py is generated from results/; regenerate with MNIST_BENCH_REGEN_GOLDEN=1
    (then `ruff format` it)."""
    import ast
    import os

    from harness.documents import timings

    root = Path(__file__).parent.parent
    text = suites.timings_module(root / "results")
    if os.environ.get("MNIST_BENCH_REGEN_GOLDEN") == "1":
        (root / "harness" / "documents" / "timings.py").write_text(text, encoding="utf-8")
    assert ast.literal_eval(text.split("TABLE = ", 1)[1]) == timings.TABLE


def test_suite_estimates_come_from_the_committed_measurements():
    gate = suites.expand(suites.load("gate"), ["CPU"])
    each = suites.estimates(gate)
    assert all(e is not None and e > 0 for e in each)
    by_model = {p.spec.model: [] for p in gate}
    for p, e in zip(gate, each, strict=True):
        by_model[p.spec.model].append(e)
    # measured on a 2-core CPU: a default MLP run about half a minute, a CNN run some minutes
    assert 10 < by_model["mlp"][0] < 60 and 150 < by_model["cnn"][0] < 900
    assert by_model["cnn"][0] > by_model["cnn"][1]  # the first seed compiles
    est = suites.estimate(suites.expand(suites.load("smoke"), ["CPU"]))
    assert 20 < est["seconds"] < 120 and est["machines"] and not est["unknown"]  # smoke took 50 s
    assert suites.estimate(suites.expand(suites.load("smoke"), ["METAL"]))["seconds"] is None


def test_suite_list_and_show_say_how_long_and_where_that_comes_from():
    from click.testing import CliRunner

    from harness.cli import cli

    listed = CliRunner().invoke(cli, ["suite", "list"])
    assert listed.exit_code == 0, listed.output
    smoke = next(line for line in listed.output.splitlines() if line.startswith("smoke "))
    assert "runs" in smoke and "~" in smoke
    assert "estimated for CPU on a 2-core" in listed.output and "committed under results/" in listed.output
    shown = CliRunner().invoke(cli, ["suite", "show", "gate"])
    assert "time on CPU: about " in shown.output and "time on CL: about " in shown.output
