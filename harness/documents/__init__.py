"""The document model: every JSON file the harness writes or reads (a run record, a summary, a baseline,
a comparison, a cost profile or comparison, a verdict, ...) is a document of a `kind` with an integer
`schema_version`. This module owns what all kinds share: the header, deterministic JSON, atomic writing,
reading with version checks and step-by-step migration, validation against schemas/, rendering as
text / Markdown / JSON through each kind's registered renderer and one table renderer, and the one
mapping from a document's outcome to the command's exit code.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.base import atomic, inputs
from harness.base.errors import ExitCode, HarnessError
from harness.base.metrics import metric_of
from harness.documents import schema

FORMATS = ("text", "markdown", "json")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def header(kind: str, *, dated: bool = True) -> dict[str, Any]:
    """The fields every document starts with; `dated` False for kinds that carry their own times (a run's
    start and finish, a baseline's `saved_at`)."""
    head = {"schema_version": schema.SCHEMA_VERSION, "kind": kind}
    return {**head, "created_at": utc_now()} if dated else head


def dumps(doc: Any) -> str:
    """Deterministic JSON: sorted keys, 2-space indent, UTF-8, trailing newline, no NaN. A run record keeps
    its schema's key order instead (schema.SCHEMA_ORDERED), so that its first lines say whether it passed,
    how accurate and how fast it was, rather than starting with the alphabet's first long list."""
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind in schema.SCHEMA_ORDERED:
        doc = schema.ordered(doc, kind)
    return (
        json.dumps(doc, sort_keys=kind not in schema.SCHEMA_ORDERED, indent=2, ensure_ascii=False, allow_nan=False)
        + "\n"
    )


def write_text_atomic(path: Path, text: str) -> Path:
    return atomic.write_text(path, text)


def write_json_atomic(path: Path, doc: Any) -> Path:
    return atomic.write_text(path, dumps(doc))


def write(path: Path, doc: dict[str, Any], kind: str | None = None) -> Path:
    """Validate the document against its kind's schema, then write it atomically (never half a file)."""
    schema.check(doc, kind or doc["kind"], str(path))
    return write_json_atomic(path, doc)


def read_json(path: Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise HarnessError(f"{path}: no such file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise HarnessError(f"{path}: cannot read ({e.__class__.__name__})") from e
    if not text.strip():
        raise HarnessError(f"{path}: file is empty")
    number = functools.partial(inputs.finite, what=str(path))
    try:
        # NaN, Infinity and numbers beyond a float's range are read as non-finite floats by default; refused,
        # since they pass every threshold compared with them and cannot be written back (dumps refuses them)
        return json.loads(text, parse_float=number, parse_constant=number)
    except json.JSONDecodeError as e:
        raise HarnessError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from e


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 2 only widened the comparison schema, so a version-1 document (and the summary a baseline
    embeds) needs only its new number."""
    out = {**doc, "schema_version": 2}
    if isinstance(doc.get("summary"), dict) and doc.get("kind") == "baseline":
        out["summary"] = {**doc["summary"], "schema_version": 2}
    return out


def _without_plain_dev(tinygrad_env: dict[str, str]) -> dict[str, str]:
    """A version-2 `tinygrad_env` held the `DEV=<device>` tinygrad writes itself when it picks its default
    device, so the same set-up recorded `{}` or `{"DEV": "CPU"}`; version 3 keeps DEV only where it says
    more than the device (`CPU:LLVM`)."""
    from harness.tg.env import dev_adds_settings

    return {k: v for k, v in tinygrad_env.items() if k != "DEV" or dev_adds_settings(v)}


def _run_v2_to_v3(doc: dict[str, Any]) -> dict[str, Any]:
    environment = dict(doc.get("environment") or {})
    if isinstance(environment.get("tinygrad_env"), dict):
        environment["tinygrad_env"] = _without_plain_dev(environment["tinygrad_env"])
    environment.setdefault("device_choice", {"by": "unknown", "requested": None})
    metrics = {"time_to_target_with_eval_s": None, **(doc.get("metrics") or {})}
    timings = {"samples": None, "stability": None, **(doc.get("timings") or {})}
    return {**doc, "environment": environment, "metrics": metrics, "timings": timings}


def _positive_intervals(config: dict[str, Any]) -> dict[str, Any]:
    """Version 3 computes the 95% interval of a positive metric on the logs (never below zero); a stored
    summary keeps its values, so the interval is recomputed from them."""
    import numpy as np

    from harness.base import stats

    metrics = dict(config.get("metrics") or {})
    for name, s in metrics.items():
        if metric_of(name).positive and isinstance(s, dict) and s.get("values"):
            metrics[name] = {**s, "ci95": stats.interval(np.asarray(s["values"], dtype=float), positive=True)}
    return {**config, "metrics": metrics}


def _summary_v2_to_v3(doc: dict[str, Any]) -> dict[str, Any]:
    configs = [_positive_intervals(c) if isinstance(c, dict) else c for c in doc.get("configs") or []]
    machines = [
        {**m, "tinygrad_env": _without_plain_dev(m["tinygrad_env"])}
        if isinstance(m, dict) and isinstance(m.get("tinygrad_env"), dict)
        else m
        for m in doc.get("machines") or []
    ]
    return {**doc, "machines": machines, "configs": configs, "schema_version": 3}


def _v2_to_v3(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 3 changed what runs record (see schema.py); summaries and baselines drop a plain DEV."""
    out = {**doc, "schema_version": 3}
    kind = doc.get("kind")
    if kind == "run":
        out = _run_v2_to_v3(out)
    elif kind == "summary":
        out = _summary_v2_to_v3(out)
    elif kind == "baseline" and isinstance(doc.get("summary"), dict):
        out["summary"] = _summary_v2_to_v3(doc["summary"])
    return out


def _run_v3_to_v4(doc: dict[str, Any]) -> dict[str, Any]:
    """The series (loss curve, evaluations, raw times) move to `series`, evaluations labelled; renames
    (compile_steps, gflops_per_s); the values are unchanged."""
    timings = {("compile_steps" if k == "warmup_steps" else k): v for k, v in (doc.get("timings") or {}).items()}
    metrics = dict(doc.get("metrics") or {})
    evals = [
        {"step": e[0], "accuracy": e[1], "train_s": e[2]} if isinstance(e, list) and len(e) == 3 else e
        for e in metrics.pop("evals", None) or []
    ]
    series = {"evals": evals, "loss": metrics.pop("loss_curve", None) or [], "samples": timings.pop("samples", None)}
    out = {**doc, "timings": timings, "metrics": metrics, "series": series}
    device = doc.get("device")
    if isinstance(device, dict) and device.get("compiler") == "Compiler" and str(device.get("name")).startswith("CL"):
        # version 3 named the OpenCL renderer's pass-through base class; the kernels were compiled by CLCompiler
        out["device"] = {**device, "compiler": "CLCompiler"}
    if isinstance(doc.get("cost"), dict):
        out["cost"] = {**doc["cost"], "derived": _derived_v4(doc["cost"].get("derived"))}
    return out


def _derived_v4(derived: Any, step: dict[str, Any] | None = None) -> Any:
    """`gflop_per_s` -> `gflops_per_s`; with `step`, both rates recomputed from the step's (new) totals."""
    if not isinstance(derived, dict):
        return derived
    out = {("gflops_per_s" if k == "gflop_per_s" else k): v for k, v in derived.items()}
    if step is not None and out.get("step_time_s"):
        out["gflops_per_s"] = step["flops"] / out["step_time_s"] / 1e9
        out["gb_per_s"] = step["bytes"] / out["step_time_s"] / 1e9
    return out


def _phase_v4(phase: Any) -> Any:
    """A version-3 cost phase counted what GlobalCounters saw over a call (input copies included) and kept
    the jitted step's totals, per call, under `jit`: version 4 makes the jitted step's the phase's counts."""
    if not isinstance(phase, dict) or not isinstance(phase.get("jit"), dict):
        return phase
    scale = phase.get("batches", 1)
    jit = {k: phase["jit"][k] * scale for k in ("kernels", "flops", "bytes")}
    out = {**jit, "intensity": jit["flops"] / jit["bytes"] if jit["bytes"] else None}
    if "batches" in phase:
        out["batches"] = phase["batches"]
    out["counted"] = {k: phase[k] for k in ("kernels", "flops", "bytes", "samples", "identical")}
    return out


def _cost_profile_v3_to_v4(profile: Any) -> Any:
    if not isinstance(profile, dict):
        return profile
    out = {
        **profile,
        "train_step": _phase_v4(profile.get("train_step")),
        "eval_pass": _phase_v4(profile.get("eval_pass")),
    }
    if "derived" in profile:
        step = out["train_step"] if isinstance(out["train_step"], dict) else None
        out["derived"] = _derived_v4(profile["derived"], step)
    return out


def _v3_to_v4(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 4 changed runs and cost profiles (see schema.py); every other kind takes the number only."""
    out = {**doc, "schema_version": 4}
    kind = doc.get("kind")
    if kind == "run":
        out = _run_v3_to_v4(out)
    elif kind == "cost":
        out["profiles"] = [_cost_profile_v3_to_v4(p) for p in doc.get("profiles") or []]
    elif kind == "baseline" and isinstance(doc.get("summary"), dict):
        out["summary"] = {**doc["summary"], "schema_version": 4}
    return out


# MIGRATIONS[v] turns a version-v document into version v+1
MIGRATIONS: dict[int, Any] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}


def upgrade(doc: Any, origin: str) -> Any:
    """Reject newer documents; migrate older ones one version at a time."""
    if not isinstance(doc, dict) or not isinstance(doc.get("schema_version"), int):
        raise HarnessError(f"{origin}: not an mnist-bench document (no integer schema_version)")
    version = doc["schema_version"]
    if version > schema.SCHEMA_VERSION:
        raise HarnessError(
            f"{origin}: schema_version {version} is newer than this mnist-bench understands "
            f"({schema.SCHEMA_VERSION}); upgrade mnist-bench"
        )
    while version < schema.SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise HarnessError(f"{origin}: schema_version {version} is too old to migrate")
        doc = MIGRATIONS[version](doc)
        version = doc["schema_version"]
    return doc


def load(path: Path, kind: str | None = None) -> dict[str, Any]:
    """Read, version-check and validate a harness JSON file; `kind` None accepts any kind."""
    doc = upgrade(read_json(path), str(path))
    actual = doc.get("kind")
    if actual not in schema.KINDS:
        raise HarnessError(f"{path}: unknown document kind {actual!r}")
    if kind is not None and actual != kind:
        raise HarnessError(f"{path}: is a {actual} file, expected a {kind} file")
    schema.check(doc, actual, str(path))
    return doc


def json_files(paths: list[Path]) -> list[Path]:
    """The given files, and every *.json below the given folders (sorted); a missing path is an error."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(p.rglob("*.json"))
        elif p.exists():
            files.append(p)
        else:
            raise HarnessError(f"{p}: no such file or folder")
    return files


def problems(path: Path) -> list[str]:
    """Everything wrong with a harness JSON file (empty when it is valid), for `mnist-bench validate`."""
    try:
        doc = upgrade(read_json(path), str(path))
    except HarnessError as e:
        return [e.message]
    kind = doc.get("kind")
    if kind not in schema.KINDS:
        return [f"$.kind: unknown document kind {kind!r}; expected one of {', '.join(schema.KINDS)}"]
    return schema.errors(doc, kind)


# --- rendering ------------------------------------------------------------------------------------

Renderer = Callable[[dict[str, Any]], str]
_VIEWS: dict[str, dict[str, Renderer]] = {}


def views(kind: str, **renderers: Renderer) -> None:
    """Declare a kind's text and Markdown views (its owner module does, once); JSON is the document."""
    _VIEWS[kind] = {**_VIEWS.get(kind, {}), **renderers}


def render(doc: dict[str, Any], fmt: str) -> str:
    """The document as `fmt` (FORMATS), without a trailing newline."""
    if fmt == "json":
        return dumps(doc).rstrip("\n")
    view = _VIEWS.get(doc.get("kind", ""), {}).get(fmt)
    if view is None:
        raise HarnessError(f"no {fmt} view of a {doc.get('kind')} document; choose from {', '.join(FORMATS)}")
    return view(doc).rstrip("\n")


def table(head: tuple[str, ...], rows: list[tuple[str, ...]], fmt: str = "text") -> str:
    """The one table of every view: aligned columns (text) or a pipe table (Markdown, cells escaped)."""
    if fmt == "markdown":
        cell = lambda c: str(c).replace("|", "\\|").replace("\n", " ")  # noqa: E731
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows])
    every = [head, *rows]
    widths = [max(len(str(r[i])) for r in every) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in every)


# --- outcomes -------------------------------------------------------------------------------------

# Every command's outcome word -> its exit code (README, "Exit codes"): a run's status, a comparison's or
# verdict's `verdict`, a summary's or check's pass/fail.
EXIT_CODES = {
    "ok": ExitCode.OK,
    "pass": ExitCode.OK,
    "target_missed": ExitCode.TARGET_MISSED,
    "regression": ExitCode.TARGET_MISSED,
    "incomplete": ExitCode.TARGET_MISSED,
    "fail": ExitCode.TARGET_MISSED,
    "failed": ExitCode.TARGET_MISSED,
    "diverged": ExitCode.DIVERGED,
}


def exit_code(outcome: str) -> ExitCode:
    return EXIT_CODES[outcome]


def outcome(doc: dict[str, Any], *, assert_target: bool = True) -> str:
    """A document's outcome word: a run's status (a missed target passes when not asserted), else its verdict."""
    if doc.get("kind") == "run":
        return "ok" if doc["status"] == "target_missed" and not assert_target else doc["status"]
    return doc["verdict"]
