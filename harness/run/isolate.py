"""One run in a fresh interpreter, so that every run of a suite starts from the same process state.

On a GPU a training step is short and launch-bound, so whatever tinygrad keeps from earlier runs in the
same process (caches, allocations, JIT state) shows up in later runs' step times; a fresh process removes
that drift. On the CPU a step is long enough that it does not show, while a fresh process has to reload
its kernels from the disk cache, so there runs share a process unless asked (the README has the numbers).

The run goes to `python -P -m harness.run.isolate` through harness.run.child: the request as one JSON line, the
path of the record it wrote as the reply.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from harness import documents
from harness.base.errors import ExitCode, HarnessError
from harness.run import bench, child
from harness.tg import data as mnist_data
from harness.tg.spec import RunSpec


def wanted(devices: list[str], choice: bool | None) -> bool:
    """Isolate when asked; by default only when some device is not the CPU."""
    return choice if choice is not None else any(d.split(":")[0] != "CPU" for d in devices)


def run(request: bench.RunRequest, data_dir: str | None) -> dict[str, Any]:
    """bench.run(request) in a fresh interpreter; returns the record it wrote. Ctrl-C stops the child too."""
    if request.out_dir is None or request.filename is None:
        raise HarnessError("an isolated run needs an output folder and file name")
    path = Path(request.out_dir) / request.filename
    before = path.stat().st_mtime_ns if path.exists() else None
    pythonpath = os.pathsep.join(filter(None, [child.source_root(), os.environ.get("PYTHONPATH")]))
    # the child's log lines and warnings reach the terminal as they did in the parent
    with child.Child(request.filename, ["-m", "harness.run.isolate"], pythonpath=pythonpath, capture_stderr=False) as c:
        c.ready()
        c.request({"request": encode(request), "data_dir": data_dir})
    if not path.exists() or path.stat().st_mtime_ns == before:
        raise HarnessError(f"{request.filename}: its process exited with code 0, no result", ExitCode.ENVIRONMENT)
    return documents.read_json(path)  # the child validated it before writing


def encode(request: bench.RunRequest) -> dict[str, Any]:
    """The request as JSON (paths as text)."""
    doc = dataclasses.asdict(request)
    doc["out_dir"] = None if request.out_dir is None else str(request.out_dir)
    return doc


def decode(doc: dict[str, Any]) -> bench.RunRequest:
    """The request `encode` wrote."""
    out_dir = None if doc["out_dir"] is None else Path(doc["out_dir"])
    return bench.RunRequest(**{**doc, "spec": RunSpec(**doc["spec"]), "out_dir": out_dir})


def _handle(message: dict[str, Any]) -> dict[str, Any]:
    _, path = bench.run(decode(message["request"]), mnist=mnist_data.load(message["data_dir"]))
    return {"path": str(path)}


if __name__ == "__main__":
    sys.exit(child.serve(_handle))
