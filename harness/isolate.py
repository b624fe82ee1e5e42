"""One run in a fresh interpreter, so that every run of a suite starts from the same process state.

On a GPU a training step is short and launch-bound, so whatever tinygrad keeps from earlier runs in the
same process (caches, allocations, JIT state) shows up in later runs' step times; a fresh process removes
that drift. On the CPU a step is long enough that it does not show, while a fresh process has to reload
its kernels from the disk cache, so there runs share a process unless asked (the README has the numbers).
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path
from typing import Any

from harness import bench, documents
from harness import data as mnist_data
from harness.errors import ExitCode, HarnessError


def wanted(devices: list[str], choice: bool | None) -> bool:
    """Isolate when asked; by default only when some device is not the CPU."""
    return choice if choice is not None else any(d.split(":")[0] != "CPU" for d in devices)


def run(request: bench.RunRequest, data_dir: str | None) -> dict[str, Any]:
    """bench.run(request) in a spawned child; returns the record it wrote. Ctrl-C stops the child too."""
    if request.out_dir is None or request.filename is None:
        raise HarnessError("an isolated run needs an output folder and file name")
    path = Path(request.out_dir) / request.filename
    before = path.stat().st_mtime_ns if path.exists() else None
    child = multiprocessing.get_context("spawn").Process(target=_child, args=(request, data_dir), daemon=True)
    child.start()
    try:
        child.join()
    except BaseException:  # KeyboardInterrupt (or SIGTERM turned into one): stop the child, then stop
        child.terminate()
        child.join()
        raise
    if child.exitcode != 0 or not path.exists() or path.stat().st_mtime_ns == before:
        code = ExitCode(child.exitcode) if child.exitcode in set(ExitCode) else ExitCode.ENVIRONMENT
        raise HarnessError(f"{request.filename}: its process exited with code {child.exitcode}, no result", code)
    return documents.read_json(path)  # the child validated it before writing


def _child(request: bench.RunRequest, data_dir: str | None) -> None:
    try:
        bench.run(request, mnist=mnist_data.load(data_dir))
    except HarnessError as e:
        print(f"mnist-bench: error: {e}", file=sys.stderr)
        sys.exit(int(e.code))
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
