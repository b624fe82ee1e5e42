"""The run record: build it from a training run (or a failure), with its status and timings."""

from __future__ import annotations

import math
import os
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import documents
from harness.base import atomic
from harness.base.errors import ExitCode, HarnessError

DEFAULT_OUT = Path("results/runs")
OUT_ENV = "MNIST_BENCH_OUT"  # where every command writes results unless told otherwise (the Docker volume)


def out_root() -> Path:
    """The results folder: $MNIST_BENCH_OUT, else results/runs."""
    return Path(os.environ.get(OUT_ENV) or DEFAULT_OUT)


def new_run_id(model: str) -> str:
    """Unique across processes and machines: time, model and random bits."""
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{model}-{secrets.token_hex(4)}"


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def check_writable(folder: Path) -> None:
    """Fail before a long run, not after it, when results could not be written."""
    atomic.ensure_folder(folder)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as e:
        raise HarnessError(f"{folder}: output folder is not writable ({e.strerror})", ExitCode.ENVIRONMENT) from e


def status_of(accuracy: float | None, target: float, diverged: bool) -> str:
    if diverged:
        return "diverged"
    return "ok" if accuracy is not None and accuracy >= target else "target_missed"


def _record(
    common: dict[str, Any],
    metrics: dict[str, Any],
    timings: dict[str, Any],
    series: dict[str, Any],
    target: dict[str, Any],
    status: str,
) -> dict[str, Any]:
    """The fields every run record has; `common` holds run_id, spec_json, device, environment, dataset,
    started_at and suite (None outside a suite)."""
    record = {
        **documents.header("run", dated=False),
        "run_id": common["run_id"],
        "started_at": common["started_at"],
        "finished_at": documents.utc_now(),
        "model": common["spec_json"]["model"],
        "config": common["spec_json"],
        "device": common["device"],
        "environment": common["environment"],
        "dataset": common["dataset"],
        "metrics": metrics,
        "timings": timings,
        "series": series,
        "target": target,
        "status": status,
    }
    if common.get("suite") is not None:
        record["suite"] = common["suite"]
    return record


SAMPLE_DECIMALS = 6  # raw samples are kept to the microsecond: compact, and finer than the clock's noise


def samples(values: list[float]) -> list[float]:
    return [round(float(v), SAMPLE_DECIMALS) for v in values]


def make_record(output, *, data_load_s: float, wall_s: float, compile_steps: int, **common: Any) -> dict[str, Any]:
    """The versioned run record from a `train.RunOutput`."""
    from harness.base import stats
    from harness.tg import env

    steady = stats.percentiles(output.step_times[compile_steps:])
    reached = output.first_eval_reaching(output.target)
    environment = common["environment"]
    common["environment"] = {**environment, "load_avg": {**environment["load_avg"], "end": env.load_average()}}
    metrics = {
        "accuracy": output.accuracy,
        "final_loss": finite_or_none(output.final_loss),
        "steps_done": output.steps_done,
        "steps_to_target": int(reached[0]) if reached else None,
        "time_to_target_s": reached[2] if reached else None,
        "time_to_target_with_eval_s": output.time_to_target_with_eval(output.target),
        "weights_sha256": output.weights_sha256,
    }
    timings = {
        "data_load_s": data_load_s,
        "compile_s": output.compile_s,
        "compile_steps": compile_steps,
        "step_time_s": steady,
        "samples_per_s": common["spec_json"]["batch_size"] / steady["median"] if steady else None,
        "eval_s": output.eval_s,
        "train_s": output.train_s,
        "wall_s": wall_s,
    }
    series = {
        "evals": [{"step": int(s), "accuracy": a, "train_s": t} for s, a, t in output.evals],
        "loss": [[int(s), finite_or_none(v)] for s, v in output.loss_curve],
        "samples": {"step_s": samples(output.step_times), "eval_s": samples(output.eval_times)},
    }
    timings["stability"] = env.stability(common["environment"], steady)
    met = output.accuracy is not None and output.accuracy >= output.target
    record = _record(
        common,
        metrics,
        timings,
        series,
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
        "steps_done": 0,
        "steps_to_target": None,
        "time_to_target_s": None,
        "time_to_target_with_eval_s": None,
        "weights_sha256": None,
    }
    timings = {
        "data_load_s": data_load_s,
        "compile_s": 0.0,
        "compile_steps": 0,
        "step_time_s": None,
        "samples_per_s": None,
        "eval_s": 0.0,
        "train_s": 0.0,
        "wall_s": wall_s,
        "stability": None,
    }
    series = {"evals": [], "loss": [], "samples": None}
    record = _record(common, metrics, timings, series, {"accuracy": target, "met": False}, "failed")
    record["error"] = error
    return record
