"""The run record: build it, validate it, write it atomically, load it back (versions checked)."""

from __future__ import annotations

import functools
import json
import math
import os
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import atomic, inputs, schema
from harness.errors import ExitCode, HarnessError
from harness.metrics import metric_of

DEFAULT_OUT = Path("results/runs")
OUT_ENV = "MNIST_BENCH_OUT"  # where every command writes results unless told otherwise (the Docker volume)


def out_root() -> Path:
    """The results folder: $MNIST_BENCH_OUT, else results/runs."""
    return Path(os.environ.get(OUT_ENV) or DEFAULT_OUT)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_run_id(model: str) -> str:
    """Unique across processes and machines: time, model and random bits."""
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{model}-{secrets.token_hex(4)}"


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def dumps(doc: Any) -> str:
    """Deterministic JSON: sorted keys, 2-space indent, UTF-8, trailing newline, no NaN."""
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_text_atomic(path: Path, text: str) -> Path:
    return atomic.write_text(path, text)


def write_json_atomic(path: Path, doc: Any) -> Path:
    return atomic.write_text(path, dumps(doc))


def check_writable(folder: Path) -> None:
    """Fail before a long run, not after it, when results could not be written."""
    atomic.ensure_folder(folder)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as e:
        raise HarnessError(f"{folder}: output folder is not writable ({e.strerror})", ExitCode.ENVIRONMENT) from e


def write_validated(path: Path, doc: dict[str, Any], kind: str) -> Path:
    schema.check(doc, kind, str(path))
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
    from harness.env import dev_adds_settings

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

    from harness import stats

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


# MIGRATIONS[v] turns a version-v document into version v+1
MIGRATIONS: dict[int, Any] = {1: _v1_to_v2, 2: _v2_to_v3}


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


def status_of(accuracy: float | None, target: float, diverged: bool) -> str:
    if diverged:
        return "diverged"
    return "ok" if accuracy is not None and accuracy >= target else "target_missed"


def _record(
    common: dict[str, Any], metrics: dict[str, Any], timings: dict[str, Any], target: dict[str, Any], status: str
) -> dict[str, Any]:
    """The fields every run record has; `common` holds run_id, spec_json, device, environment, dataset,
    started_at and suite (None outside a suite)."""
    record = {
        "schema_version": schema.SCHEMA_VERSION,
        "kind": "run",
        "run_id": common["run_id"],
        "started_at": common["started_at"],
        "finished_at": utc_now(),
        "model": common["spec_json"]["model"],
        "config": common["spec_json"],
        "device": common["device"],
        "environment": common["environment"],
        "dataset": common["dataset"],
        "metrics": metrics,
        "timings": timings,
        "target": target,
        "status": status,
    }
    if common.get("suite") is not None:
        record["suite"] = common["suite"]
    return record


SAMPLE_DECIMALS = 6  # raw samples are kept to the microsecond: compact, and finer than the clock's noise


def samples(values: list[float]) -> list[float]:
    return [round(float(v), SAMPLE_DECIMALS) for v in values]


def make_record(output, *, data_load_s: float, wall_s: float, warmup_steps: int, **common: Any) -> dict[str, Any]:
    """The versioned run record from a `train.RunOutput`."""
    from harness import env, stats

    steady = stats.percentiles(output.step_times[warmup_steps:])
    reached = output.first_eval_reaching(output.target)
    environment = common["environment"]
    common["environment"] = {**environment, "load_avg": {**environment["load_avg"], "end": env.load_average()}}
    metrics = {
        "accuracy": output.accuracy,
        "final_loss": finite_or_none(output.final_loss),
        "loss_curve": [[int(s), finite_or_none(v)] for s, v in output.loss_curve],
        "evals": [[int(s), a, t] for s, a, t in output.evals],
        "steps_done": output.steps_done,
        "steps_to_target": int(reached[0]) if reached else None,
        "time_to_target_s": reached[2] if reached else None,
        "time_to_target_with_eval_s": output.time_to_target_with_eval(output.target),
        "weights_sha256": output.weights_sha256,
    }
    timings = {
        "data_load_s": data_load_s,
        "compile_s": output.compile_s,
        "warmup_steps": warmup_steps,
        "step_time_s": steady,
        "samples_per_s": common["spec_json"]["batch_size"] / steady["median"] if steady else None,
        "eval_s": output.eval_s,
        "train_s": output.train_s,
        "wall_s": wall_s,
        "samples": {"step_s": samples(output.step_times), "eval_s": samples(output.eval_times)},
    }
    timings["stability"] = env.stability(common["environment"], steady)
    met = output.accuracy is not None and output.accuracy >= output.target
    record = _record(
        common,
        metrics,
        timings,
        {"accuracy": output.target, "met": met},
        status_of(output.accuracy, output.target, output.diverged),
    )
    if output.cost is not None:
        record["cost"] = output.cost
    return record


def failed_record(*, error: str, target: float, data_load_s: float, wall_s: float, **common: Any) -> dict[str, Any]:
    """The record of a run that raised: nothing measured, the reason kept."""
    metrics = {
        "accuracy": None,
        "final_loss": None,
        "loss_curve": [],
        "evals": [],
        "steps_done": 0,
        "steps_to_target": None,
        "time_to_target_s": None,
        "time_to_target_with_eval_s": None,
        "weights_sha256": None,
    }
    timings = {
        "data_load_s": data_load_s,
        "compile_s": 0.0,
        "warmup_steps": 0,
        "step_time_s": None,
        "samples_per_s": None,
        "eval_s": 0.0,
        "train_s": 0.0,
        "wall_s": wall_s,
        "samples": None,
        "stability": None,
    }
    record = _record(common, metrics, timings, {"accuracy": target, "met": False}, "failed")
    record["error"] = error
    return record


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


def exit_code(record: dict[str, Any], *, assert_target: bool = True) -> ExitCode:
    if record["status"] == "diverged":
        return ExitCode.DIVERGED
    if record["status"] == "target_missed" and assert_target:
        return ExitCode.TARGET_MISSED
    return ExitCode.OK
