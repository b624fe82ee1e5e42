"""The cost gate: deterministic counts, exact comparison, baselines by key, the `cost` command."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from harness import documents
from harness.cli import cli
from harness.documents import schema
from harness.gate import cost
from harness.tg import counters, env
from harness.tg.spec import RunSpec

TINY = {"model": "mlp", "lr": 0.01, "batch_size": 16, "steps": 10, "model_config": {"hidden": [16]}}


def tiny_spec(seed: int = 0) -> RunSpec:
    return RunSpec(**TINY, seed=seed)


class ExtraWork:
    """A test-only model: the real one plus work that cannot fuse into it (a materialised copy of the input and a
    reduction over it, added to the logits). A bare `.contiguous()` on the logits is no good example: it stops
    tinygrad recomputing the forward pass inside the backward kernels, so the train step does less work."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, x):
        return self.inner(x) + (x.flatten(1) * 1.5).contiguous().sum(1, keepdim=True) * 1e-30


@pytest.fixture(scope="module")
def tiny_data(small):
    return small


@pytest.fixture(scope="module")
def profiles(tiny_data):
    """Two tiny-MLP profiles with different seeds, 3 measured steps each."""
    return [cost.measure(tiny_spec(seed), tiny_data, "CPU", steps=3) for seed in (0, 1)]


@pytest.fixture
def extra_work(monkeypatch):
    from harness.tg import train

    real = train.build
    monkeypatch.setattr(train, "build", lambda model, config: ExtraWork(real(model, config)))


def test_counts_are_identical_over_steps_and_seeds(profiles):
    a, b = profiles
    for phase in ("train_step", "eval_pass"):
        assert a[phase]["counted"]["identical"] and len(a[phase]["counted"]["samples"]) >= 2
        assert [a[phase][k] for k in ("kernels", "flops", "bytes")] == [
            b[phase][k] for k in ("kernels", "flops", "bytes")
        ]
    assert a["kernels"] == b["kernels"] and a["spec_digest"] == b["spec_digest"]
    assert a["memory"]["jit_buffers_bytes"] == b["memory"]["jit_buffers_bytes"] > 0
    assert a["memory"]["peak_bytes"] > 0
    assert a["compile"]["kernels_compiled"] == b["compile"]["kernels_compiled"] >= a["train_step"]["kernels"]
    assert a["train_step"]["kernels"] == len(a["kernels"])
    assert not any("\x1b" in k["name"] for k in a["kernels"])
    assert a["train_step"]["flops"] > 0 and a["train_step"]["intensity"] > 0


def test_the_seed_is_not_in_the_spec_digest():
    assert cost.spec_digest(tiny_spec(0)) == cost.spec_digest(tiny_spec(7))
    assert cost.spec_digest(tiny_spec()) != cost.spec_digest(RunSpec(**{**TINY, "batch_size": 32}))


def test_derived_speed(profiles):
    p = profiles[0]
    d = counters.derived(p, 0.5)
    assert d["gflops_per_s"] == pytest.approx(p["train_step"]["flops"] / 0.5 / 1e9)
    assert d["gb_per_s"] == pytest.approx(p["train_step"]["bytes"] / 0.5 / 1e9)
    assert counters.derived(p, None) is None and p["derived"]["step_time_s"] > 0


def test_document_validates_and_saves_by_key(profiles, tmp_path):
    doc = cost.document(profiles[:1], "CPU")
    assert schema.errors(doc, "cost") == []
    assert doc["key"].startswith("CPU-") and "tinygrad" in doc["key"] and "harness" in doc["key"]
    assert doc["key_fields"]["cpu_threads"] >= 1
    assert env.cpu_model() not in json.dumps(doc["key_fields"])  # the CPU model is not in the key
    (path,) = cost.save(doc, tmp_path)
    assert path.parent.name == doc["key"] and path.name.startswith("mlp-")
    found = cost.find(doc, profiles[0], tmp_path)
    assert found["kernels"] == profiles[0]["kernels"]
    bad = copy.deepcopy(doc)
    bad["profiles"][0]["train_step"]["flops"] = -1
    assert any("flops" in e for e in schema.errors(bad, "cost"))


def test_unchanged_profile_passes(profiles):
    doc = cost.document(profiles[1:], "CPU")
    result = cost.compare(doc, [profiles[0]])
    assert result["verdict"] == "pass" and result["problems"] == [] and result["changes"] == []
    assert schema.errors(result, "cost_comparison") == []
    assert {r["verdict"] for r in result["rows"]} == {"pass"} and {r["delta"] for r in result["rows"]} == {0}


def test_missing_baseline_names_the_key_and_what_exists(profiles, tmp_path):
    (tmp_path / "CPU-Other-key").mkdir()
    (tmp_path / "CPU-Other-key" / "mlp-0.json").write_text("{}")
    doc = cost.document(profiles[:1], "CPU")
    with pytest.raises(cost.HarnessError) as e:
        cost.find(doc, profiles[0], tmp_path)
    assert doc["key"] in e.value.message and "CPU-Other-key" in e.value.message and "\n" not in e.value.message
    assert e.value.code == 2


def synthetic(flops: int = 1000, kernels: int = 3) -> dict:
    names = ["E_16_4", "r_16_4", *[f"E_{i}" for i in range(kernels - 2)]]
    phase = {"kernels": kernels, "flops": flops, "bytes": 400, "intensity": flops / 400}
    return {
        "model": "mlp",
        "spec_digest": "0" * 64,
        "train_step": phase,
        "eval_pass": {**phase, "kernels": 2},
        "memory": {"jit_buffers_bytes": 4096},
        "compile": {"kernels_compiled": 7},
        "kernels": [{"name": n, "ops": 1, "bytes": 1} for n in names],
    }


def test_comparison_rules_and_tolerance():
    base, cur = synthetic(), synthetic(flops=1010, kernels=4)
    rows = {r["metric"]: r for r in cost.compare_profiles(base, cur)}
    assert rows["flops_per_step"]["verdict"] == "regression" and rows["flops_per_step"]["delta"] == 10
    assert rows["kernels_per_step"]["verdict"] == "regression"
    assert rows["bytes_per_step"]["verdict"] == "pass" and "identical" in rows["bytes_per_step"]["reason"]
    within = {r["metric"]: r for r in cost.compare_profiles(base, cur, 1.0)}["flops_per_step"]
    assert within["verdict"] == "pass" and "changed" in within["reason"]
    assert {r["metric"]: r["verdict"] for r in cost.compare_profiles(cur, base)}["flops_per_step"] == "improvement"
    assert cost.kernel_diff(base["kernels"], cur["kernels"]) == {"added": ["E_1"], "removed": [], "count_changed": []}
    twice = base["kernels"] + base["kernels"][:1]
    assert cost.kernel_diff(base["kernels"], twice)["count_changed"] == [["E_16_4", 1, 2]]


GOLDEN_TEXT = """\
cost key: KEY  tolerance: 0%
model  metric            baseline  current  delta        verdict
mlp    kernels_per_step  3         4        +1 (+33.3%)  REGRESSION
mlp    flops_per_step    1,000     1,010    +10 (+1%)    REGRESSION
mlp    bytes_per_step    400       400      0            PASS
mlp    eval_kernels      2         2        0            PASS
mlp    eval_flops        1,000     1,010    +10 (+1%)    REGRESSION
mlp    eval_bytes        400       400      0            PASS
mlp    buffer_bytes      4,096     4,096    0            PASS
mlp    kernels_compiled  7         7        0            PASS
mlp: kernel added: E_1
FAIL mlp kernels_per_step: 3 -> 4, +1 (+33.3%) > tolerance 0%
FAIL mlp flops_per_step: 1,000 -> 1,010, +10 (+1%) > tolerance 0%
FAIL mlp eval_flops: 1,000 -> 1,010, +10 (+1%) > tolerance 0%
verdict: REGRESSION"""


def test_text_rendering_golden():
    current = {"key": "KEY", "profiles": [synthetic(flops=1010, kernels=4)]}
    doc = cost.compare(current, [synthetic()])
    assert documents.render(doc, "text") == GOLDEN_TEXT
    markdown = documents.render(doc, "markdown")
    assert "**REGRESSION**" in markdown and "| mlp | flops_per_step | 1,000 | 1,010 |" in markdown
    assert "- mlp: kernel added: E_1" in markdown
    assert json.loads(documents.render(doc, "json"))["verdict"] == "regression"


def test_an_unfusable_op_is_caught(profiles, tiny_data, extra_work):
    worse = cost.measure(tiny_spec(), tiny_data, "CPU")
    doc = cost.compare(cost.document([worse], "CPU"), [profiles[0]])
    assert doc["verdict"] == "regression"
    failed = {r["metric"] for r in doc["rows"] if r["verdict"] == "regression"}
    assert {"kernels_per_step", "flops_per_step", "bytes_per_step"} <= failed
    assert any(p.startswith("mlp kernels_per_step: ") and "->" in p for p in doc["problems"])
    assert doc["models"][0]["kernel_diff"] != {"added": [], "removed": [], "count_changed": []}


@pytest.fixture
def tiny_cli(monkeypatch, tiny_data):
    from harness.tg import data as mnist_data

    monkeypatch.setattr(cost, "default_spec", lambda model: tiny_spec())
    monkeypatch.setattr(mnist_data, "load", lambda *a, **k: tiny_data)
    return CliRunner()


def test_cli_gate_end_to_end(tiny_cli, tmp_path, monkeypatch):
    root = str(tmp_path / "cost")
    missing = tiny_cli.invoke(cli, ["cost", "mlp", "--device", "CPU", "--root", root])
    assert missing.exit_code == 2 and "no cost baseline for key CPU-" in missing.output
    assert "Traceback" not in missing.output

    saved = tiny_cli.invoke(cli, ["cost", "mlp", "--device", "CPU", "--root", root, "--save"])
    assert saved.exit_code == 0, saved.output
    assert "saved cost baseline" in saved.output

    same = tiny_cli.invoke(cli, ["cost", "mlp", "--device", "CPU", "--root", root, "--format", "markdown"])
    assert same.exit_code == 0, same.output
    assert "**PASS**" in same.output

    from harness.tg import train

    real = train.build
    monkeypatch.setattr(train, "build", lambda model, config: ExtraWork(real(model, config)))
    out = tmp_path / "verdict.json"
    worse = tiny_cli.invoke(cli, ["cost", "mlp", "--device", "CPU", "--root", root, "--format", "json", "-o", str(out)])
    assert worse.exit_code == 1, worse.output
    verdict = json.loads(out.read_text())
    assert verdict["verdict"] == "regression"
    assert any(p.startswith("mlp flops_per_step: ") for p in verdict["problems"])


def test_cli_bad_input_is_one_line(tiny_cli, tmp_path):
    bad = tiny_cli.invoke(cli, ["cost", "mlp", "--tolerance", "-1"])
    assert bad.exit_code == 2 and "--tolerance must be >= 0" in bad.output
    missing = tiny_cli.invoke(cli, ["cost", "mlp", "--baseline", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_trainer_profile_after_training_matches_the_jit_totals(profiles, tiny_data):
    from harness.tg.train import Trainer, batch_order

    spec = tiny_spec()
    trainer = Trainer(spec, tiny_data, "CPU")
    for indices in batch_order(spec.seed, len(tiny_data.y_train), spec.batch_size, 3):
        trainer.step(indices)
    trainer.accuracy(), trainer.accuracy()  # one eval batch here: the JIT captures on the second call
    doc = cost.trainer_profile(trainer, step_time_s=0.01)
    measured = profiles[0]
    for phase in ("train_step", "eval_pass"):  # one definition: the record's numbers are the cost gate's
        assert {k: doc[phase][k] for k in ("kernels", "flops", "bytes")} == {
            k: measured[phase][k] for k in ("kernels", "flops", "bytes")
        }
    assert doc["memory"]["jit_buffers_bytes"] == measured["memory"]["jit_buffers_bytes"]
    assert doc["kernels"] == measured["kernels"] and doc["derived"]["gflops_per_s"] > 0


def test_counted_is_the_jitted_step_plus_the_copies_of_its_inputs(profiles):
    """GlobalCounters over a call sees one more kernel than the jitted step: the batch indices (batch_size int32)
    copied onto the device outside the jit; the constant learning rate of TINY is never copied."""
    step = profiles[0]["train_step"]
    counted = step["counted"]
    assert counted["kernels"] - step["kernels"] == 1
    assert counted["bytes"] - step["bytes"] == TINY["batch_size"] * 4 and counted["flops"] == step["flops"]
    assert profiles[0]["eval_pass"]["counted"]["kernels"] == profiles[0]["eval_pass"]["kernels"]  # inputs on device
    assert "1 input copy" in cost.transfers_text(step)


def test_a_harness_error_keeps_its_exit_code_across_processes():
    import pickle

    from harness.base.errors import ExitCode, HarnessError

    error = pickle.loads(pickle.dumps(HarnessError("no clang", ExitCode.ENVIRONMENT)))
    assert (error.message, error.code) == ("no clang", ExitCode.ENVIRONMENT)
