"""Checks on what a user hands the harness as text: numbers, command prefixes, tinygrad's environment
variables, and which paths a command reads and writes. Each kind of input has one check here, used
wherever that kind is read, so a bad value is refused in one line (a HarnessError, exit 2) before it can
switch a check off, end in a traceback, or overwrite an input.

(Kept apart from `env`, which records the environment, and `spec`, which says what a run computes.)
"""

from __future__ import annotations

import math

from harness.errors import HarnessError

# --- numbers ------------------------------------------------------------------------------------------


def finite(text: str | float, what: str = "") -> float:
    """`text` as a float; NaN and infinities are refused: NaN compares false with every threshold and an
    infinite one is never exceeded, so either would pass every check it is used in."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value):
        prefix = f"{what}: " if what else ""
        raise HarnessError(f"{prefix}{text!r} is not {'a number' if value is None else 'a finite number'}")
    return value
