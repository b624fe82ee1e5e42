"""The unexplored-hyperparameter axes: each works, is seeded, and at its default changes nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.base.errors import HarnessError
from harness.tg import augment, models, optim, train
from harness.tg.spec import DEFAULTS, RunSpec

TINY_MLP = {"hidden": [32]}
BASE = {"steps": 6, "batch_size": 16, "log_every": 1}


def run(small, model="mlp", model_config=None, **overrides):
    spec = RunSpec.defaults(
        model,
        model_config=model_config or (TINY_MLP if model == "mlp" else {"channels": [4, 8]}),
        **{**BASE, **overrides},
    )
    return train.train(spec, small, "CPU", target=50.0)


def reference_core_loop(small, seed: int) -> list[float]:
    """The core path as first written (tinygrad Adam, no axes), to prove the defaults change nothing. On CPU,
    as `run` trains: tinygrad's own default is CL where PoCL is installed."""
    from tinygrad import Context

    with Context(DEV="CPU"):
        return _core_loop(small, seed)


def _core_loop(small, seed: int) -> list[float]:
    from tinygrad import Context, Tensor, TinyJit, nn

    Tensor.manual_seed(seed)
    net = models.build("mlp", TINY_MLP)
    opt = nn.optim.Adam(nn.state.get_parameters(net), lr=DEFAULTS["mlp"]["lr"])
    x, y = Tensor(small.x_train.reshape(-1, 1, 28, 28)), Tensor(small.y_train.astype(np.int32))

    @TinyJit
    def step(idx):
        with Context(TRAINING=1):
            opt.zero_grad()
            loss = net(train.normalize(x[idx])).sparse_categorical_crossentropy(y[idx]).backward()
            opt.step()
            return loss.realize()

    order = train.batch_order(seed, len(small.y_train), BASE["batch_size"], BASE["steps"])
    return [step(Tensor(i)).item() for i in order]


def test_every_axis_at_its_default_gives_the_core_results(small):
    explicit = run(
        small,
        optimizer="adam",
        weight_decay=0.0,
        schedule="constant",
        warmup_steps=0,
        label_smoothing=0.0,
        augment_rotate=0.0,
        augment_scale=0.0,
        augment_translate=0.0,
        model_config={**TINY_MLP, "dropout": 0.0, "batchnorm": False, "activation": "relu"},
    )
    assert [v for _, v in explicit.loss_curve] == reference_core_loop(small, 0)
    assert explicit.weights_sha256 == run(small).weights_sha256


@pytest.mark.parametrize(
    "overrides",
    [
        {"optimizer": "adamw", "weight_decay": 0.05},
        {"optimizer": "sgd", "lr": 0.05},
        {"optimizer": "nesterov", "lr": 0.05},
        {"optimizer": "lamb"},
        {"optimizer": "rmsprop", "lr": 0.001},
        {"schedule": "cosine"},
        {"schedule": "onecycle"},
        {"schedule": "step", "warmup_steps": 2},
        {"label_smoothing": 0.1},
        {"augment_rotate": 15.0},
        {"augment_scale": 0.1, "augment_translate": 2.0},
        {"model_config": {**TINY_MLP, "dropout": 0.2}},
        {"model_config": {**TINY_MLP, "batchnorm": True}},
        {"model_config": {**TINY_MLP, "activation": "gelu"}},
    ],
    ids=str,
)
def test_each_axis_trains_changes_the_result_and_is_seeded(small, overrides):
    a, b = run(small, **overrides), run(small, **overrides)
    assert a.loss_curve == b.loss_curve and a.weights_sha256 == b.weights_sha256  # seeded
    assert all(math.isfinite(v) for _, v in a.loss_curve)
    assert a.weights_sha256 != run(small).weights_sha256  # the axis really changes the computation


def test_cnn_without_batchnorm_and_with_dropout(small):
    out = run(small, model="cnn", model_config={"channels": [4, 8], "batchnorm": False, "dropout": 0.3}, steps=3)
    assert out.accuracy is not None and all(math.isfinite(v) for _, v in out.loss_curve)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"optimizer": "adam", "weight_decay": 0.1}, 'use optimizer = "adamw"'),
        ({"optimizer": "adagrad"}, "unknown optimizer"),
        ({"schedule": "linear"}, "unknown schedule"),
        ({"warmup_steps": 500, "steps": 10}, "warmup_steps must be between"),
        ({"label_smoothing": 0.9}, "label_smoothing"),
        ({"augment_rotate": -1}, "augment_rotate"),
    ],
)
def test_bad_axis_values(overrides, message):
    with pytest.raises(HarnessError, match=message):
        RunSpec.defaults("mlp", **overrides)


def test_schedules_have_the_documented_shape():
    def lrs(schedule, warmup=0):
        return [optim.lr_at(i, lr=1.0, steps=100, schedule=schedule, warmup_steps=warmup) for i in range(100)]

    assert set(lrs("constant")) == {1.0}
    assert lrs("constant", warmup=10)[:3] == [0.1, 0.2, pytest.approx(0.3)] and lrs("constant", 10)[10] == 1.0
    step = lrs("step")
    assert step[49] == 1.0 and step[50] == pytest.approx(0.1) and step[75] == pytest.approx(0.01)
    cosine = lrs("cosine")
    assert cosine[0] == 1.0 and cosine[50] == pytest.approx(0.5) and cosine[99] < 0.001
    cycle = lrs("onecycle")
    assert cycle[0] == pytest.approx(0.04) and max(cycle) == pytest.approx(1.0, abs=0.02) and cycle[99] < 0.001


# On tinygrad's CPU backend named: its own default is CL where PoCL is installed (slow first compile, and its
# copy-in refuses the dataset's read-only arrays).
def test_rmsprop_matches_the_textbook_update():
    from tinygrad import Context, Tensor

    with Context(DEV="CPU"):
        w = Tensor([1.0, -2.0]).is_param_()
        opt = optim.make("rmsprop", [w], lr=0.1, weight_decay=0.0, momentum=0.0)
        with Context(TRAINING=1):
            opt.zero_grad()
            (w * w).sum().backward()  # gradient 2w
            opt.step()
        got = w.numpy()
    g = np.array([2.0, -4.0])
    expected = np.array([1.0, -2.0]) - 0.1 * g / (np.sqrt(0.01 * g * g) + 1e-8)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_augmentation_keeps_images_and_is_near_identity_for_tiny_ranges(small):
    from tinygrad import Context, Tensor

    with Context(DEV="CPU"):
        Tensor.manual_seed(0)
        x = Tensor(small.x_train[:8].reshape(-1, 1, 28, 28)).float() / 255
        same = augment.affine(x, rotate_deg=1e-4, scale=0.0, translate_px=0.0).numpy()
        np.testing.assert_allclose(same, x.numpy(), atol=1e-3)
        moved = augment.affine(x, rotate_deg=30.0, scale=0.2, translate_px=3.0).numpy()
        assert moved.shape == (8, 1, 28, 28) and moved.min() >= 0 and moved.max() <= 1.0 + 1e-6
        assert np.abs(moved - x.numpy()).mean() > 0.01
        assert augment.affine(Tensor.zeros(2, 1, 28, 28), 30.0, 0.2, 3.0).numpy().max() == 0
