"""Environment fingerprint: small collect_* functions, one per fact a result depends on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# tinygrad settings that change numerics or speed; recorded whenever they are set. DEV is special:
# tinygrad writes `DEV=<device>` into os.environ itself when it picks its default device, and the device
# is recorded on its own (`device`, `environment.device_choice`), so DEV is recorded only when it says
# more than the device's name (a renderer or target, e.g. `DEV=CPU:LLVM`). See `collect_tinygrad_env`.
TINYGRAD_ENV_VARS = (
    "DEV",
    "JIT",
    "BEAM",
    "NOOPT",
    "CACHELEVEL",
    "CACHEDB",
    "IGNORE_BEAM_CACHE",
    "CCACHE",
    "NUM_CPU_THREADS",
    "WINO",
    "FUSE_OPTIM",
    "SPLIT_REDUCEOP",
    "DEFAULT_FLOAT",
    "TC",
    "TRANSCENDENTAL",
    "CC",
    "DEBUG",
    "FLOAT16",
    "IMAGE",
)
# settings under which two runs of the same spec are not known to give bit-identical numbers
NONDETERMINISTIC_IF_SET = {"BEAM": "BEAM picks kernels by timing, so the float rounding can differ run to run"}


def collect_python() -> dict[str, str]:
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def collect_packages() -> dict[str, str | None]:
    return {name: _version(name) for name in ("mnist-bench", "tinygrad", "numpy")}


def collect_os() -> dict[str, str]:
    return {"system": platform.system(), "release": platform.release(), "machine": platform.machine()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect_cpu() -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": cpu_model(), "cores": os.cpu_count() or 1, "usable_cores": affinity or 1}


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def collect_gpu() -> list[str]:
    """GPU names from nvidia-smi when present (empty list otherwise)."""
    out = _run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"])
    return [line.strip() for line in out.splitlines() if line.strip()] if out else []


def collect_git() -> dict[str, Any]:
    """The commit of the harness's own checkout (or $MNIST_BENCH_GIT_COMMIT in an image)."""
    if commit := os.environ.get("MNIST_BENCH_GIT_COMMIT"):
        return {"commit": commit, "dirty": False}
    repo = Path(__file__).resolve().parent.parent
    commit = _run(["git", "rev-parse", "HEAD"], cwd=repo)
    if not commit:
        return {"commit": None, "dirty": None}
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo)
    return {"commit": commit, "dirty": bool(status)}


def dev_adds_settings(value: str) -> bool:
    """Whether a DEV value says more than which device: `CPU:LLVM` (a renderer) does; `CPU`, `CL`, `CUDA:1`
    (what tinygrad writes itself, or a plain device choice) do not."""
    return any(not part.split(":", 1)[1].isdigit() for part in value.split(";") if ":" in part)


def collect_tinygrad_env() -> dict[str, str]:
    """tinygrad settings in force, the same whichever way the device was chosen: a plain `DEV=<device>`
    (which tinygrad writes itself after picking its default) is left out, the device being recorded apart."""
    found = {name: os.environ[name] for name in TINYGRAD_ENV_VARS if name in os.environ}
    if "DEV" in found and not dev_adds_settings(found["DEV"]):
        del found["DEV"]
    return found


def user_dev() -> str:
    """The device named by DEV when tinygrad was imported ('' if none): tinygrad parses DEV once, at import,
    and its own later `os.environ["DEV"] = ...` does not change that parse."""
    from tinygrad.helpers import DEV

    return DEV.device or ""


def device_choice(requested: str | None) -> dict[str, Any]:
    """How the run's device was chosen: `option` (--device / a suite's device), `DEV` (the environment
    variable) or `default` (tinygrad's own pick: the first backend that opens, see README *Devices*)."""
    if requested:
        return {"by": "option", "requested": requested}
    if dev := user_dev():
        return {"by": "DEV", "requested": dev}
    return {"by": "default", "requested": None}


def collect_compile_cache() -> dict[str, Any]:
    """tinygrad's compile/BEAM cache as it is before a run: a warm cache makes the first steps faster."""
    from tinygrad.helpers import CACHEDB, CACHELEVEL

    path = Path(CACHEDB)
    size = path.stat().st_size if path.exists() else 0
    return {"path": str(path), "enabled": CACHELEVEL.value > 0, "bytes": size, "warm": size > 0}


def determinism(tinygrad_env: dict[str, str]) -> dict[str, Any]:
    reasons = [why for name, why in NONDETERMINISTIC_IF_SET.items() if tinygrad_env.get(name, "0") not in ("", "0")]
    return {"known_deterministic": not reasons, "reasons": reasons}


def fingerprint(requested_device: str | None = None) -> dict[str, Any]:
    tinygrad_env = collect_tinygrad_env()
    return {
        "device_choice": device_choice(requested_device),
        "python": collect_python(),
        "packages": collect_packages(),
        "os": collect_os(),
        "cpu": collect_cpu(),
        "gpu": collect_gpu(),
        "git": collect_git(),
        "tinygrad_env": tinygrad_env,
        "determinism": determinism(tinygrad_env),
        "compile_cache": collect_compile_cache(),
    }
