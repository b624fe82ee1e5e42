from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from harness.base import metrics
from harness.base.errors import HarnessError
from harness.tg import train
from harness.tg.spec import RunSpec


def test_batch_order_is_seeded_and_covers_each_epoch_once():
    a = train.batch_order(3, 100, 10, 25)
    assert a.shape == (25, 10)
    assert np.array_equal(a, train.batch_order(3, 100, 10, 25))
    assert not np.array_equal(a, train.batch_order(4, 100, 10, 25))
    for epoch in range(2):
        assert sorted(a[epoch * 10 : (epoch + 1) * 10].ravel()) == list(range(100))


def test_eval_batch_size_divides_the_test_set():
    assert train.eval_batch_size(10000) == 1000
    assert train.eval_batch_size(500) == 500
    assert train.eval_batch_size(1234) == 617


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lr": float("nan")}, "learning rate"),
        ({"lr": 0}, "learning rate"),
        ({"lr": -1e-3}, "learning rate"),
        ({"batch_size": 0}, "batch size"),
        ({"batch_size": 60001}, "batch size"),
        ({"steps": 0}, "steps"),
        ({"seed": -1}, "seed"),
        ({"eval_every": -1}, "eval_every"),
    ],
)
def test_bad_specs_are_refused(overrides, message):
    with pytest.raises(HarnessError, match=message):
        RunSpec.defaults("mlp", **overrides)


def test_short_run_measures_everything(small):
    spec = RunSpec.defaults("mlp", steps=12, batch_size=32, eval_every=5, log_every=4)
    out = train.train(spec, small, "CPU", target=50.0)
    assert [e[0] for e in out.evals] == [5, 10, 12]
    assert [s for s, _ in out.loss_curve] == [4, 8, 12]
    assert out.accuracy == out.evals[-1][1] and 50.0 < out.accuracy <= 100.0
    assert out.loss_curve[-1][1] < out.loss_curve[0][1]
    assert len(out.step_times) == 12 and out.compile_s > 0 and len(out.weights_sha256) == 64
    assert out.evals[0][2] < out.evals[1][2]  # cumulative training time grows


def test_same_seed_same_process_is_bit_identical(small):
    spec = RunSpec.defaults("cnn", steps=3, batch_size=16, model_config={"channels": [4, 8]})
    a = train.train(spec, small, "CPU", target=98.0)
    b = train.train(spec, small, "CPU", target=98.0)
    assert a.loss_curve == b.loss_curve and a.weights_sha256 == b.weights_sha256 and a.accuracy == b.accuracy


def test_huge_learning_rate_diverges_without_crashing(small):
    spec = RunSpec.defaults("mlp", steps=30, batch_size=32, lr=1e12, log_every=100)
    out = train.train(spec, small, "CPU", target=95.0)
    assert out.diverged and out.accuracy is None and out.steps_done < 30
    assert not math.isfinite(out.loss_curve[-1][1])


def test_trainer_hands_tinygrad_writable_buffers(small, monkeypatch):
    """The dataset's arrays are read-only views of the cache; tinygrad's CUDA backend refuses to copy in
    from those ("underlying buffer is not writable", seen on an H100), so the trainer must pass writable ones."""
    import dataclasses

    import tinygrad

    frozen = {}
    for name in ("x_train", "y_train", "x_test", "y_test"):
        frozen[name] = getattr(small, name).copy()
        frozen[name].setflags(write=False)
    given = []

    class Spy(tinygrad.Tensor):
        def __init__(self, data, *args, **kwargs):
            if isinstance(data, np.ndarray):
                given.append(data.flags.writeable and data.flags.c_contiguous)
            super().__init__(data, *args, **kwargs)

    monkeypatch.setattr(tinygrad, "Tensor", Spy)
    trainer = train.Trainer(RunSpec.defaults("mlp", steps=1), dataclasses.replace(small, **frozen), "CPU")
    assert len(given) >= 4 and all(given)
    assert trainer.x_train.shape == (len(small.y_train), 1, 28, 28)


def test_every_run_records_what_tinygrad_says_its_step_costs(small):
    """The captured step's counts, the same for another seed; the summary's cost metrics read them."""

    spec = RunSpec.defaults("mlp", steps=4, batch_size=32, eval_every=0, model_config={"hidden": [64]})
    a = train.train(spec, small, "CPU", target=50.0).cost
    b = train.train(dataclasses.replace(spec, seed=1), small, "CPU", target=50.0).cost
    assert a["train_step"]["kernels"] == len(a["kernels"]) > 0
    assert a["train_step"]["flops"] == sum(k["ops"] for k in a["kernels"]) > 0
    assert a["derived"]["gflops_per_s"] > 0
    assert a["eval_pass"] is None  # one 500-image eval batch: the eval step is never captured by the JIT
    assert (a["train_step"], a["kernels"]) == (b["train_step"], b["kernels"])
    assert a["memory"]["jit_buffers_bytes"] == b["memory"]["jit_buffers_bytes"]  # in_use_bytes is the process's
    record = {"cost": a}
    assert metrics.METRICS["flops_per_step"].read(record) == a["train_step"]["flops"]
    assert metrics.METRICS["eval_flops"].read(record) is None


def test_a_run_too_short_to_capture_records_no_cost(small):
    assert train.train(RunSpec.defaults("mlp", steps=1, batch_size=32), small, "CPU", target=50.0).cost is None
