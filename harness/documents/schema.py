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
#   4: a run record reads from the top: written in its schema's key order, not alphabetically (status,
#      target, metrics, timings first), with its series last in `series` (`metrics.loss_curve` ->
#      `series.loss`, `metrics.evals` -> `series.evals`, evaluations as objects {step, accuracy, train_s};
#      `timings.samples` -> `series.samples`). `timings.warmup_steps` (the compile steps) is
#      `timings.compile_steps`, apart from the learning-rate warm-up `config.warmup_steps`;
#      `cost.derived.gflop_per_s` is `gflops_per_s` (the metric's name); `device.compiler` names the compiler
#      that builds the kernels (a CL record's "Compiler", the renderer's pass-through base class, becomes
#      "CLCompiler"). A cost profile's train_step / eval_pass counts are the captured jitted step's (the one
#      definition a record's cost shares; they were `jit`), and what GlobalCounters saw over a call, the input
#      copies outside the jit included, is `counted` (it was the phase's own counts). Other kinds: the number.
SCHEMA_VERSION = 4
KINDS = ("run", "suite", "summary", "baseline", "comparison", "cost", "cost_comparison", "perf", "verdict")
# kinds written with their keys in their schema's order (documents.dumps); every other kind sorts its keys
SCHEMA_ORDERED = ("run",)


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


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """A subschema with its local `$ref` followed and its object branches (oneOf/allOf/anyOf) merged."""
    if "$ref" in node and node["$ref"].startswith("#/"):
        target: Any = root
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    merged = dict(node)
    for key in ("allOf", "oneOf", "anyOf"):
        for branch in node.get(key, []):
            branch = _resolve(branch, root)
            merged["properties"] = {**branch.get("properties", {}), **merged.get("properties", {})}
            for part in ("items", "additionalProperties"):
                if isinstance(branch.get(part), dict):
                    merged.setdefault(part, branch[part])
    return merged


def _ordered(value: Any, node: dict[str, Any], root: dict[str, Any]) -> Any:
    node = _resolve(node, root)
    if isinstance(value, list):
        items = node.get("items") if isinstance(node.get("items"), dict) else {}
        return [_ordered(v, items, root) for v in value]
    if not isinstance(value, dict):
        return value
    props = node.get("properties", {})
    rest = node.get("additionalProperties") if isinstance(node.get("additionalProperties"), dict) else {}
    keys = [k for k in props if k in value] + sorted(k for k in value if k not in props)
    return {k: _ordered(value[k], props.get(k, rest), root) for k in keys}


def ordered(doc: Any, kind: str) -> Any:
    """The document with every object's keys in its schema's property order, keys the schema does not name
    sorted after them: deterministic whatever order the document was built in."""
    root = _registry().contents(_file(kind))
    return _ordered(doc, root, root)


def check(doc: Any, kind: str, origin: str = "") -> None:
    """Raise a one-line HarnessError naming the first violation (and how many more there are)."""
    problems = errors(doc, kind)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        prefix = f"{origin}: " if origin else ""
        raise HarnessError(f"{prefix}invalid {kind} JSON: {problems[0]}{more}")
