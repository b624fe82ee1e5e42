"""Test-only helpers shared by several test modules (kept out of the library)."""

from __future__ import annotations

from typing import Any


def equal_ignoring_time_of_writing(a: dict[str, Any], b: dict[str, Any]) -> bool:
    strip = {"created_at"}
    return {k: v for k, v in a.items() if k not in strip} == {k: v for k, v in b.items() if k not in strip}
