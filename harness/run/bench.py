"""One benchmark run end to end: device, data, train, record, validate, write."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import documents
from harness.documents import results, schema
from harness.tg import data as mnist_data
from harness.tg import devices, env, kernel_search
from harness.tg.spec import TARGETS, RunSpec
from harness.tg.train import WARMUP_STEPS, train


@dataclass
class RunRequest:
    spec: RunSpec
    device: str | None = None
    out_dir: Path | None = results.DEFAULT_OUT
    data_dir: str | None = None
    target: float | None = None
    suite: dict[str, Any] | None = None
    filename: str | None = None  # default: <run_id>.json
    record_failures: bool = False  # write a `failed` record instead of raising
    beam: int | None = None  # BEAM width for this run only (None: tinygrad's, from the BEAM variable)

    def target_accuracy(self) -> float:
        return self.target if self.target is not None else TARGETS[self.spec.model]


def dataset_info(mnist: mnist_data.Mnist) -> dict[str, Any]:
    return {
        "name": mnist_data.DATASET_NAME,
        "source": mnist.source,
        "sha256": dict(mnist.sha256),
        "n_train": len(mnist.y_train),
        "n_test": len(mnist.y_test),
    }


def _write(request: RunRequest, record: dict[str, Any]) -> Path | None:
    if request.out_dir is None:
        schema.check(record, "run")
        return None
    name = request.filename or f"{record['run_id']}.json"
    return documents.write(Path(request.out_dir) / name, record, "run")


def run(
    request: RunRequest,
    *,
    mnist: mnist_data.Mnist | None = None,
    progress: Callable[[int, float], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Path | None]:
    """Train once and write the validated record; returns (record, path or None)."""
    env.use_cpu_keyed_cache()  # before tinygrad opens its cache database
    with kernel_search.applied(request.beam) as searched:
        return _run(request, searched, mnist=mnist, progress=progress, log=log)


def _run(
    request: RunRequest,
    searched: kernel_search.SearchCount,
    *,
    mnist: mnist_data.Mnist | None,
    progress: Callable[[int, float], None] | None,
    log: Callable[[str], None] | None,
) -> tuple[dict[str, Any], Path | None]:
    t_start, started_at = time.perf_counter(), documents.utc_now()
    device = devices.resolve(request.device)
    choice = env.device_choice(request.device)
    if log and request.suite is None:  # a suite prints its planned devices itself
        log(devices.choice_text(device.name, choice, device.runs_on))
    if request.out_dir is not None:
        results.check_writable(Path(request.out_dir))
    if mnist is None:
        mnist = mnist_data.load(request.data_dir, log=log)
    common = {
        "run_id": results.new_run_id(request.spec.model),
        "spec_json": request.spec.to_json(),
        "device": device.to_json(),
        "environment": env.fingerprint(request.device),
        "dataset": dataset_info(mnist),
        "started_at": started_at,
        "data_load_s": mnist.load_s,
        "suite": request.suite,
    }
    try:
        output = train(request.spec, mnist, device.name, request.target_accuracy(), progress=progress)
    except Exception as e:  # a run that raises inside a suite is recorded, and the suite goes on
        common["environment"]["kernel_search"] = searched.to_json()
        if not request.record_failures:
            raise
        error = f"{e.__class__.__name__}: {e}".splitlines()[0][:500]
        record = results.failed_record(
            **common, error=error, target=request.target_accuracy(), wall_s=time.perf_counter() - t_start
        )
        return record, _write(request, record)
    common["environment"]["kernel_search"] = searched.to_json()
    record = results.make_record(
        **common, output=output, wall_s=time.perf_counter() - t_start, compile_steps=WARMUP_STEPS
    )
    return record, _write(request, record)
