"""One benchmark run end to end: device, data, train, record, validate, write."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import data as mnist_data
from harness import devices, env, results
from harness.train import TARGETS, WARMUP_STEPS, RunSpec, train


@dataclass
class RunRequest:
    spec: RunSpec
    device: str | None = None
    out_dir: Path | None = results.DEFAULT_OUT
    data_dir: str | None = None
    target: float | None = None
    suite: dict[str, str] | None = None


def dataset_info(mnist: mnist_data.Mnist) -> dict[str, Any]:
    return {
        "name": mnist_data.DATASET_NAME,
        "source": mnist.source,
        "sha256": dict(mnist.sha256),
        "n_train": len(mnist.y_train),
        "n_test": len(mnist.y_test),
    }


def run(
    request: RunRequest,
    *,
    mnist: mnist_data.Mnist | None = None,
    progress: Callable[[int, float], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Path | None]:
    """Train once and write the validated record; returns (record, path or None)."""
    t_start, started_at = time.perf_counter(), results.utc_now()
    device = devices.resolve(request.device)
    if request.out_dir is not None:
        results.check_writable(Path(request.out_dir))
    if mnist is None:
        mnist = mnist_data.load(request.data_dir, log=log)
    target = request.target if request.target is not None else TARGETS[request.spec.model]
    output = train(request.spec, mnist, device.name, target, progress=progress)
    record = results.make_record(
        run_id=results.new_run_id(request.spec.model),
        spec_json=request.spec.to_json(),
        output=output,
        device=device.to_json(),
        environment=env.fingerprint(),
        dataset=dataset_info(mnist),
        started_at=started_at,
        data_load_s=mnist.load_s,
        wall_s=time.perf_counter() - t_start,
        warmup_steps=WARMUP_STEPS,
        suite=request.suite,
    )
    path = None
    if request.out_dir is not None:
        path = results.write_validated(Path(request.out_dir) / f"{record['run_id']}.json", record, "run")
    else:
        from harness import schema

        schema.check(record, "run")
    return record, path
