"""What a run computes: `RunSpec`, each model's defaults and accuracy target, the spec checks, and a
run's identity. Suites, reports and plots read these without importing the trainer."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.base.errors import HarnessError
from harness.tg import optim
from harness.tg.models import model_config

TARGETS = {"mlp": 95.0, "cnn": 98.0}
DEFAULTS: dict[str, dict[str, Any]] = {
    # mlp: reaches the target on every seed well before its last step, in seconds of CPU time
    "mlp": {"lr": 0.002, "batch_size": 256, "steps": 200, "eval_every": 50},
    # cnn: a one-cycle schedule anneals the late-step noise that leaves a constant LR near the target
    "cnn": {"lr": 0.002, "batch_size": 128, "steps": 200, "eval_every": 50, "schedule": "onecycle"},
}


def run_key(name: str, device: str, seed: int | None = None) -> str:
    """A run's identity, `name@device#seedN`; without a seed, its config's identity `name@device`."""
    key = f"{name}@{device}"
    return key if seed is None else f"{key}#seed{seed}"


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides what a run computes (device aside, not how fast)."""

    model: str
    lr: float
    batch_size: int
    steps: int
    seed: int = 0
    optimizer: str = "adam"
    model_config: dict[str, Any] = field(default_factory=dict)
    eval_every: int = 0  # 0: only at the end
    log_every: int = 10
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd, nesterov and rmsprop only
    schedule: str = "constant"
    warmup_steps: int = 0
    label_smoothing: float = 0.0
    augment_rotate: float = 0.0  # degrees, uniform in [-a, a]
    augment_scale: float = 0.0  # fraction, zoom uniform in [1-s, 1+s]
    augment_translate: float = 0.0  # pixels, uniform in [-t, t] on each axis

    @property
    def augments(self) -> bool:
        return bool(self.augment_rotate or self.augment_scale or self.augment_translate)

    def __post_init__(self) -> None:
        check_spec(self)

    @classmethod
    def defaults(cls, model: str, **overrides: Any) -> RunSpec:
        """The model's default spec, with any non-None override applied."""
        if model not in DEFAULTS:
            model_config(model)  # raises the unknown-model error
        values = {**DEFAULTS[model], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(model=model, **values)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["model_config"] = model_config(self.model, self.model_config)
        return out


RANGES = {
    "weight_decay": (0, 1),
    "momentum": (0, 0.999),
    "label_smoothing": (0, 0.5),
    "augment_rotate": (0, 180),
    "augment_scale": (0, 0.5),
    "augment_translate": (0, 14),
}


def check_spec(spec: RunSpec) -> None:
    model_config(spec.model, spec.model_config)
    if not (isinstance(spec.lr, int | float) and math.isfinite(spec.lr) and spec.lr > 0):
        raise HarnessError(f"learning rate must be a positive finite number, got {spec.lr}")
    if not 1 <= spec.batch_size <= 60000:
        raise HarnessError(f"batch size must be between 1 and 60000, got {spec.batch_size}")
    if spec.steps < 1:
        raise HarnessError(f"steps must be at least 1, got {spec.steps}")
    if spec.eval_every < 0 or spec.log_every < 1:
        raise HarnessError("eval_every must be >= 0 and log_every >= 1")
    if spec.seed < 0:
        raise HarnessError(f"seed must be >= 0, got {spec.seed}")
    optim.check(spec.optimizer, spec.weight_decay)
    if spec.schedule not in optim.SCHEDULES:
        raise HarnessError(f"unknown schedule {spec.schedule!r}; choose one of: {', '.join(optim.SCHEDULES)}")
    if not 0 <= spec.warmup_steps <= spec.steps:
        raise HarnessError(f"warmup_steps must be between 0 and steps ({spec.steps}), got {spec.warmup_steps}")
    for name, (low, high) in RANGES.items():
        value = getattr(spec, name)
        if not (isinstance(value, int | float) and low <= value <= high):
            raise HarnessError(f"{name} must be between {low} and {high}, got {value}")
