"""The JSON Schemas in `schemas/`: find them (source tree or installed package) and validate."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

SCHEMA_VERSION = 1  # of every JSON file the harness writes; separate from the package version
KINDS = ("run", "suite", "summary", "baseline", "comparison")


def schema_dir() -> Path:
    """`harness/schemas` in an installed wheel, else the repository's top-level `schemas/`."""
    packaged = Path(__file__).parent / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "schemas"


@functools.cache
def validator(kind: str):
    from jsonschema import Draft202012Validator

    name = "result" if kind == "run" else kind
    schema = json.loads((schema_dir() / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _where(error) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def errors(doc: Any, kind: str) -> list[str]:
    """Every schema violation as `$.json.path: message`, sorted by path."""
    found = sorted(validator(kind).iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_where(e)}: {e.message}" for e in found]


def check(doc: Any, kind: str, origin: str = "") -> None:
    """Raise a one-line HarnessError naming the first violation (and how many more there are)."""
    problems = errors(doc, kind)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        prefix = f"{origin}: " if origin else ""
        raise HarnessError(f"{prefix}invalid {kind} JSON: {problems[0]}{more}")
