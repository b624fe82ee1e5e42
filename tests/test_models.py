from __future__ import annotations

import pytest

from harness.base.errors import HarnessError
from harness.tg import models


def test_defaults_are_the_documented_architectures():
    assert models.model_config("mlp") == {
        "hidden": [512, 512],
        "activation": "relu",
        "dropout": 0.0,
        "batchnorm": False,
    }
    assert models.model_config("cnn") == {
        "channels": [32, 64],
        "kernels": [5, 3],
        "activation": "relu",
        "dropout": 0.0,
        "batchnorm": True,
    }


@pytest.mark.parametrize(
    "model, overrides, message",
    [
        ("rnn", {}, "unknown model 'rnn'"),
        ("mlp", {"width": 3}, "unknown mlp config key"),
        ("mlp", {"activation": "sigmoid"}, "unknown activation"),
        ("mlp", {"hidden": []}, "non-empty list"),
        ("cnn", {"channels": [8], "kernels": [5, 3]}, "one per block"),
        ("cnn", {"kernels": [9, 9]}, "shrink a 28x28 image to nothing"),
    ],
)
def test_bad_configs_are_refused(model, overrides, message):
    with pytest.raises(HarnessError, match=message):
        models.model_config(model, overrides)


@pytest.mark.parametrize(
    "model, config",
    [
        ("mlp", {}),
        ("mlp", {"hidden": [64], "activation": "gelu"}),
        ("cnn", {}),
        ("cnn", {"channels": [8, 16], "kernels": [3, 3], "activation": "silu"}),
    ],
)
def test_forward_gives_ten_logits(model, config):
    from tinygrad import Tensor

    Tensor.manual_seed(0)
    net = models.build(model, config)
    assert net(Tensor.zeros(4, 1, 28, 28)).shape == (4, 10)


def test_flop_counts():
    assert models.forward_flops("mlp", {}) == 2 * (784 * 512 + 512 * 512 + 512 * 10)
    # conv 1->32 k5 (24x24), 32->32 k5 (20x20), pool, 32->64 k3 (8x8), 64->64 k3 (6x6), pool, linear 576->10
    expected = 2 * (24 * 24 * 32 * 25 + 20 * 20 * 32 * 32 * 25 + 8 * 8 * 64 * 32 * 9 + 6 * 6 * 64 * 64 * 9 + 576 * 10)
    assert models.forward_flops("cnn", {}) == expected
