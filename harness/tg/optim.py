"""Optimizers and learning-rate schedules, by name, for the `optimizer` and `schedule` axes.

tinygrad ships Adam, AdamW, SGD (momentum, Nesterov) and LAMB; RMSprop is written here as a small
tinygrad optimizer. Schedules are host-side functions of the step: the new rate is assigned to the
optimizer's `lr` tensor before the jitted step reads it, so a constant schedule never touches it.
"""

from __future__ import annotations

import math
from typing import Any

from harness.base.errors import HarnessError

OPTIMIZERS = ("adam", "adamw", "sgd", "nesterov", "lamb", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "onecycle")


def _rmsprop_class():
    from tinygrad import Tensor
    from tinygrad.nn.optim import Optimizer

    class RMSprop(Optimizer):
        """RMSprop (Hinton's lecture 6e), with optional momentum and L2 weight decay."""

        def __init__(
            self,
            params: list[Tensor],
            lr: float,
            alpha: float = 0.99,
            eps: float = 1e-8,
            momentum: float = 0.0,
            weight_decay: float = 0.0,
        ):
            super().__init__(params, lr)
            self.alpha, self.eps, self.momentum, self.wd = alpha, eps, momentum, weight_decay
            self.square_avg = self._new_optim_param()
            self.buf = self._new_optim_param() if momentum else []

        def _step(self, params: list[Tensor], grads: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
            updates = []
            for i, (t, g) in enumerate(zip(params, grads, strict=True)):
                if self.wd:
                    g = g + self.wd * t.detach()
                self.square_avg[i].assign(self.alpha * self.square_avg[i] + (1 - self.alpha) * g * g)
                step = g / (self.square_avg[i].sqrt() + self.eps)
                if self.momentum:
                    self.buf[i].assign(self.momentum * self.buf[i] + step)
                    step = self.buf[i]
                updates.append((self.lr * step).cast(t.dtype))
            return updates, self.square_avg + self.buf

    return RMSprop


def check(name: str, weight_decay: float) -> None:
    """Refuse an unknown optimizer, and weight decay on plain Adam (tinygrad's Adam has none)."""
    if name not in OPTIMIZERS:
        raise HarnessError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if name == "adam" and weight_decay:
        raise HarnessError('adam has no weight decay here; use optimizer = "adamw" for decoupled decay')


def make(name: str, params: list, lr: float, weight_decay: float, momentum: float) -> Any:
    """A tinygrad optimizer by name; `adam` with no weight decay is exactly tinygrad's Adam."""
    from tinygrad import nn

    check(name, weight_decay)
    if name == "adam":
        return nn.optim.Adam(params, lr=lr)
    if name == "adamw":
        return nn.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name in ("sgd", "nesterov"):
        return nn.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=name == "nesterov")
    if name == "lamb":
        return nn.optim.LAMB(params, lr=lr, weight_decay=weight_decay)
    return _rmsprop_class()(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def lr_at(step: int, *, lr: float, steps: int, schedule: str, warmup_steps: int) -> float:
    """The learning rate for 0-based `step` of `steps`: linear warm-up, then the schedule's shape."""
    if warmup_steps and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(1, steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    if schedule == "constant":
        return lr
    if schedule == "step":  # x0.1 at 50% and again at 75% of the post-warm-up steps
        return lr * (0.1 ** (int(progress >= 0.5) + int(progress >= 0.75)))
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "onecycle":  # up from lr/25 to lr over the first 30%, cosine down to lr/1e4
        peak = 0.3
        if progress < peak:
            return lr / 25 + (lr - lr / 25) * progress / peak
        return lr / 1e4 + (lr - lr / 1e4) * 0.5 * (1 + math.cos(math.pi * (progress - peak) / (1 - peak)))
    raise HarnessError(f"unknown schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")
