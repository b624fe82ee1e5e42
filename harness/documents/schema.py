"""The JSON Schemas in `schemas/`: find them (source tree or installed package) and validate."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from harness.base.errors import HarnessError

# Of every JSON file the harness writes (and of suite files); separate from the package version.
# Format history (each step has a migration in documents.MIGRATIONS):
#   1: first format.
#   2: a comparison's `baseline` may be null (compared with no baseline); other kinds unchanged.
#   3: runs record how the device was chosen (`environment.device_choice`), keep a plain `DEV=<device>` out
#      of `tinygrad_env` (tinygrad writes it itself), keep their raw per-step and per-eval times
#      (`timings.samples`), time to target with evaluation, and more of the machine's state; summaries
#      and baselines follow (`machines[].tinygrad_env` without a plain DEV).
#      Added within version 3, optional, so no migration: a run's `device.description` and `device.runs_on`
#      (what the device is and whether it runs on the CPU: CL on PoCL does).
#      New kinds at version 2, carried on unchanged: `cost` and `cost_comparison` (tinygrad's deterministic
#      cost counts), `perf` (benchmarks/perf.py), `verdict` (the checks of one pull request combined).
SCHEMA_VERSION = 3
KINDS = ("run", "suite", "summary", "baseline", "comparison", "cost", "cost_comparison", "perf", "verdict")


def schema_dir() -> Path:
    """`harness/schemas` in an installed wheel, else the repository's top-level `schemas/`."""
    packaged = Path(__file__).resolve().parents[1] / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "schemas"


def _file(kind: str) -> str:
    return f"{'result' if kind == 'run' else kind}.schema.json"


@functools.cache
def _registry():
    """All schemas by file name, so one can `$ref` another (a baseline embeds a summary)."""
    from referencing import Registry, Resource

    resources = []
    for kind in KINDS:
        doc = json.loads((schema_dir() / _file(kind)).read_text())
        resources.append((_file(kind), Resource.from_contents(doc)))
        resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources)


@functools.cache
def validator(kind: str):
    from jsonschema import Draft202012Validator

    schema = _registry().contents(_file(kind))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())


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
