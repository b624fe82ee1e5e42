"""The tinygrad APIs that differ between the releases the harness runs on, in one place.

The harness is written for tinygrad 0.14 (pyproject pins it). `mnist-bench continuous tinygrad==0.13.0 ...`
runs the same code on 0.13 too; each shim here covers one API that 0.13 spelt differently (checked by
running the continuous worker under 0.13.0), and can go once 0.13 no longer needs to run.
"""

from __future__ import annotations

import contextlib
from typing import Any


def training(**settings: Any) -> contextlib.AbstractContextManager:
    """`Context(TRAINING=1, **settings)`. tinygrad 0.14 keeps training mode (dropout, batch-norm statistics,
    the optimizer's check) in the TRAINING context variable; 0.13 has no such variable, so the Context raises
    KeyError there, and keeps the mode in `Tensor.training` (set by `Tensor.train()`)."""
    import tinygrad.helpers
    from tinygrad import Context, Tensor

    if hasattr(tinygrad.helpers, "TRAINING"):
        return Context(TRAINING=1, **settings)
    stack = contextlib.ExitStack()
    stack.enter_context(Context(**settings))
    stack.enter_context(Tensor.train())
    return stack


def cpu_threads_setting():
    """The context variable with the CPU backend's thread count: NUM_CPU_THREADS in 0.14, CPU_COUNT in 0.13."""
    import tinygrad.helpers

    setting = getattr(tinygrad.helpers, "NUM_CPU_THREADS", None)  # not `or`: a ContextVar's truth is its value
    return tinygrad.helpers.CPU_COUNT if setting is None else setting
