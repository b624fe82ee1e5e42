"""The MLP and the CNN, each built from a small config so suites can sweep their shape.

The CNN's default is the architecture of tinygrad's `examples/beautiful_mnist.py`, so its numbers
compare with tinygrad's own CI.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from harness.base.errors import HarnessError

MODELS = ("mlp", "cnn")
ACTIVATIONS = ("relu", "tanh", "leaky_relu", "gelu", "silu")
DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": [512, 512], "activation": "relu", "dropout": 0.0, "batchnorm": False},
    "cnn": {"channels": [32, 64], "kernels": [5, 3], "activation": "relu", "dropout": 0.0, "batchnorm": True},
}
IMAGE_SIZE, N_CLASSES = 28, 10


def model_config(model: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model's default config with `overrides` applied; unknown keys and bad values are refused."""
    if model not in DEFAULT_CONFIGS:
        raise HarnessError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    config = {**DEFAULT_CONFIGS[model], **(overrides or {})}
    unknown = set(config) - set(DEFAULT_CONFIGS[model])
    if unknown:
        raise HarnessError(f"unknown {model} config key(s): {', '.join(sorted(unknown))}")
    if config["activation"] not in ACTIVATIONS:
        raise HarnessError(f"unknown activation {config['activation']!r}; choose one of: {', '.join(ACTIVATIONS)}")
    if not (isinstance(config["dropout"], int | float) and 0 <= config["dropout"] < 1):
        raise HarnessError(f"dropout must be in [0, 1), got {config['dropout']}")
    if model == "cnn":
        _check_cnn_shape(config["channels"], config["kernels"])
    elif not config["hidden"] or min(config["hidden"]) < 1:
        raise HarnessError("mlp hidden sizes must be a non-empty list of positive integers")
    return config


def _check_cnn_shape(channels: list[int], kernels: list[int]) -> None:
    if len(channels) != len(kernels) or not channels or min(channels) < 1 or min(kernels) < 1:
        raise HarnessError("cnn channels and kernels must be non-empty lists of positive integers, one per block")
    if _cnn_output_size(kernels) < 1:
        raise HarnessError(f"cnn kernels {kernels} shrink a 28x28 image to nothing")


def _cnn_output_size(kernels: list[int]) -> int:
    size = IMAGE_SIZE
    for k in kernels:  # each block: two valid convolutions, then a 2x2 max-pool
        size = (size - 2 * (k - 1)) // 2
    return size


def activation_fn(name: str) -> Callable:
    from tinygrad import Tensor

    return {
        "relu": Tensor.relu,
        "tanh": Tensor.tanh,
        "leaky_relu": Tensor.leaky_relu,
        "gelu": Tensor.gelu,
        "silu": Tensor.silu,
    }[name]


def _dropout(p: float) -> list[Callable]:
    return [lambda x: x.dropout(p)] if p else []


class MLP:
    """Flatten, then Linear (+ batch-norm) + activation (+ dropout) per hidden size, then a 10-way Linear."""

    def __init__(self, hidden: list[int], activation: str, dropout: float = 0.0, batchnorm: bool = False):
        from tinygrad import nn

        sizes = [IMAGE_SIZE * IMAGE_SIZE, *hidden]
        self.layers: list[Callable] = [lambda x: x.flatten(1)]
        for n_in, n_out in itertools.pairwise(sizes):
            self.layers += [
                nn.Linear(n_in, n_out),
                *([nn.BatchNorm(n_out)] if batchnorm else []),
                activation_fn(activation),
                *_dropout(dropout),
            ]
        self.layers.append(nn.Linear(sizes[-1], N_CLASSES))

    def __call__(self, x):
        return x.sequential(self.layers)


class CNN:
    """Blocks of (conv, act, conv, act, batch-norm, 2x2 max-pool), then (dropout and) a 10-way Linear."""

    def __init__(
        self, channels: list[int], kernels: list[int], activation: str, dropout: float = 0.0, batchnorm: bool = True
    ):
        from tinygrad import Tensor, nn

        act = activation_fn(activation)
        self.layers: list[Callable] = []
        c_in = 1
        for c, k in zip(channels, kernels, strict=True):
            norm = [nn.BatchNorm(c)] if batchnorm else []
            self.layers += [nn.Conv2d(c_in, c, k), act, nn.Conv2d(c, c, k), act, *norm, Tensor.max_pool2d]
            c_in = c
        flat = c_in * _cnn_output_size(kernels) ** 2
        self.layers += [lambda x: x.flatten(1), *_dropout(dropout), nn.Linear(flat, N_CLASSES)]

    def __call__(self, x):
        return x.sequential(self.layers)


def build(model: str, config: dict[str, Any]):
    """A fresh model with weights drawn from tinygrad's (seeded) RNG."""
    config = model_config(model, config)
    if model == "mlp":
        return MLP(config["hidden"], config["activation"], config["dropout"], config["batchnorm"])
    return CNN(config["channels"], config["kernels"], config["activation"], config["dropout"], config["batchnorm"])


def forward_flops(model: str, config: dict[str, Any]) -> int:
    """Multiply-adds x 2 of one forward pass for one image (convolutions and linear layers only)."""
    config = model_config(model, config)
    if model == "mlp":
        sizes = [IMAGE_SIZE * IMAGE_SIZE, *config["hidden"], N_CLASSES]
        return sum(2 * a * b for a, b in itertools.pairwise(sizes))
    flops, size, c_in = 0, IMAGE_SIZE, 1
    for c, k in zip(config["channels"], config["kernels"], strict=True):
        for cin in (c_in, c):
            size -= k - 1
            flops += 2 * size * size * c * cin * k * k
        size //= 2
        c_in = c
    return flops + 2 * c_in * size * size * N_CLASSES
