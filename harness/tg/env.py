"""Environment fingerprint: small collect_* functions, one per fact a result depends on."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.base.errors import HarnessError
from harness.tg import kernel_search, pocl

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
    "JITBEAM",
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


# feature flags that decide which instructions compiled code may use (the full list is hashed in cpu_key)
SIMD_FLAG_PREFIXES = ("sse", "ssse", "avx", "fma", "f16c", "amx", "bmi", "neon", "asimd", "sve", "sme")


def cpu_governor() -> str | None:
    """cpufreq's scaling governor of CPU 0 (`performance`, `powersave`, ...), None where unreadable (VMs)."""
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip() or None
    except OSError:
        return None


# A CPU identity to record and key baselines by instead of this machine's: a replay of a hosted fleet on one
# machine gives each job its own. Compiling and the compile caches always use the real CPU.
CPU_MODEL_VAR, CPU_FLAGS_VAR = "MNIST_BENCH_CPU_MODEL", "MNIST_BENCH_CPU_FLAGS"


def cpu_identity() -> tuple[str, list[str]]:
    """(model, feature flags) as records and baseline keys see them: MNIST_BENCH_CPU_MODEL and
    MNIST_BENCH_CPU_FLAGS (space-separated) where set, else this machine's."""
    model = os.environ.get(CPU_MODEL_VAR) or cpu_model()
    flags = os.environ.get(CPU_FLAGS_VAR)
    return model, sorted(set(flags.split())) if flags is not None else cpu_flags()


# x86-64 microarchitecture levels by the SIMD flags that define them (the levels' other flags do not touch
# floating point)
X86_LEVELS = (
    ("x86-64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
    ("x86-64-v3", {"avx", "avx2", "fma"}),
    ("x86-64-v2", {"ssse3", "sse4_1", "sse4_2"}),
)
# Levels that compute the same bits (results/isa/: AVX-512 and AVX2 + FMA give one weights hash on CPU and
# CL; without FMA the hash differs), so they share one numerics class.
SAME_NUMERICS = {"x86-64-v4": "x86-64-v3"}


def isa_level(flags: list[str], machine: str | None = None) -> str:
    """`x86-64-v3`, ...: the ISA level a CPU with these flags offers; other architectures by name."""
    machine = machine or platform.machine()
    if machine not in ("x86_64", "AMD64"):
        return machine.lower()
    have = set(flags)
    return next((level for level, needs in X86_LEVELS if needs <= have), "x86-64")


def numerics_class(isa: str | None) -> str | None:
    """The class of ISA levels that give bit-identical results (None for a record from before levels)."""
    return SAME_NUMERICS.get(isa, isa) if isa else None


def collect_cpu() -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model, flags = cpu_identity()
    return {
        "model": model,
        "cores": os.cpu_count() or 1,
        "usable_cores": affinity or 1,
        "simd_flags": [f for f in flags if f.startswith(SIMD_FLAG_PREFIXES)],
        "isa": isa_level(flags),
        "governor": cpu_governor(),
    }


def load_average() -> list[float] | None:
    """1-, 5- and 15-minute load averages, None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


THREAD_VARS = ("NUM_CPU_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def collect_threads() -> dict[str, Any]:
    """CPUs this process may run on and the thread-count variables set."""
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"affinity": affinity, "env": {k: os.environ[k] for k in THREAD_VARS if k in os.environ}}


def collect_compiler() -> dict[str, str | None]:
    """The C compiler tinygrad's CPU backend calls (CC, default clang) and its version line."""
    cc = os.environ.get("CC", "clang")
    out = _run([cc, "--version"])
    return {"cc": cc, "version": out.splitlines()[0].strip() if out else None}


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
    repo = Path(__file__).resolve().parents[2]
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
    # a --beam option sets BEAM through tinygrad's Context, not os.environ: record the width in force
    live = kernel_search.beam_in_force()
    if live is not None and live != kernel_search.env_beam():
        found.pop("BEAM", None)
        if live:
            found["BEAM"] = str(live)
    if found.get("CACHEDB") is not None and found["CACHEDB"] == _harness_cachedb():
        del found["CACHEDB"]  # the harness's per-CPU cache, not a user's setting
    if "DEV" in found and not dev_adds_settings(found["DEV"]):
        del found["DEV"]
    return found


def user_dev() -> str:
    """The device named by DEV when tinygrad was imported, renderer included (`CPU:LLVM`; '' if none): tinygrad
    parses DEV once, at import, and its own later `os.environ["DEV"] = ...` does not change that parse."""
    from harness.tg import devices

    return devices.dev_name() or ""


def device_choice(requested: str | None) -> dict[str, Any]:
    """How the run's device was chosen: `option` (--device / a suite's device), `DEV` (the environment
    variable) or `default` (the harness's default, `devices.default_device`; see README *Which device runs*)."""
    if requested:
        return {"by": "option", "requested": requested}
    if dev := user_dev():
        return {"by": "DEV", "requested": dev}
    return {"by": "default", "requested": None}


def cpu_flags() -> list[str]:
    """The CPU's feature flags (/proc/cpuinfo), sorted; empty where unreadable."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return sorted(set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return []


def cpu_key() -> str:
    """Short hash of what compiled CPU code depends on: architecture, CPU model and feature flags.
    tinygrad compiles CPU kernels with `-march=native`, so code from one key must not run under another."""
    text = "\n".join([platform.machine(), cpu_model(), " ".join(cpu_flags())])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _cache_base() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def keyed_cache_path() -> Path:
    """tinygrad's cache folder, with a database file per CPU key."""
    return _cache_base() / "tinygrad" / f"mnist-bench-{cpu_key()}.db"


def keyed_pocl_cache() -> Path:
    """PoCL's kernel cache, a folder per CPU key: PoCL compiles its kernels for the host CPU as tinygrad's
    clang does, and a cache copied from another machine must not be used here either."""
    return _cache_base() / "pocl" / f"mnist-bench-{cpu_key()}"


KEYED_MARK = "MNIST_BENCH_KEYED_CACHEDB"  # the CACHEDB the harness set (inherited by child processes)


def _harness_cachedb() -> str | None:
    return os.environ.get(KEYED_MARK)


def use_cpu_keyed_cache() -> str | None:
    """Point tinygrad's compile cache at a database keyed by this CPU (unless the user set CACHEDB), and PoCL's
    kernel cache at a folder keyed the same way (unless POCL_CACHE_DIR is set), so a cache copied from another
    machine (a Docker image, a CI cache) is never used here. Returns the path,
    or None when the user's CACHEDB stands or tinygrad already opened another database."""
    pocl.configure(keyed_pocl_cache())  # read when PoCL opens, after this
    if "CACHEDB" in os.environ and os.environ["CACHEDB"] != _harness_cachedb():
        return None
    path = str(keyed_cache_path())
    helpers = sys.modules.get("tinygrad.helpers")
    if helpers is not None and path != helpers.CACHEDB:
        if getattr(helpers, "_db_connection", None) is not None:
            return None
        helpers.CACHEDB = path
    os.environ["CACHEDB"] = os.environ[KEYED_MARK] = path
    return path


def collect_compile_cache() -> dict[str, Any]:
    """tinygrad's compile/BEAM cache as it is before a run: a warm cache makes the first steps faster."""
    from tinygrad.helpers import CACHEDB, CACHELEVEL

    path = Path(CACHEDB)
    size = path.stat().st_size if path.exists() else 0
    return {
        "path": str(path),
        "enabled": CACHELEVEL.value > 0,
        "bytes": size,
        "warm": size > 0,
        "cpu_key": cpu_key(),
        "keyed": str(path) == _harness_cachedb(),
    }


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
        "threads": collect_threads(),
        "compiler": collect_compiler(),
        "load_avg": {"start": load_average(), "end": None},  # `end` is filled when the run ends
    }


# a run's steady steps usually spread by 10-20% of the median between p10 and p90 on a quiet machine here
# (MLP 42.5-47.2 ms around 44.3, CNN 1.30-1.50 s around 1.34); several times that means other work ran
SPREAD_LIMIT = 0.5
MIN_STEPS_FOR_SPREAD = 5


def stability(environment: dict[str, Any], steady: dict[str, Any] | None) -> dict[str, Any]:
    """Whether the machine was visibly busy during the run (pyperf warns likewise): a 1-minute load average
    above the cores this process may use, at the start or the end, or a step-time spread (p90 - p10 over
    the median) far above its usual. Numbers from a busy run are marked, not dropped."""
    reasons = []
    cores = environment["cpu"]["usable_cores"]
    for when in ("start", "end"):
        load = (environment.get("load_avg") or {}).get(when)
        if load and load[0] > cores:
            reasons.append(f"load average {load[0]:.2f} at the {when} > {cores} usable core(s)")
    if steady and steady["n"] >= MIN_STEPS_FOR_SPREAD and steady["median"] > 0:
        spread = (steady["p90"] - steady["p10"]) / steady["median"]
        if spread > SPREAD_LIMIT:
            reasons.append(f"step-time spread (p90 - p10) is {spread:.0%} of the median (usual: under 20%)")
    return {"busy": bool(reasons), "reasons": reasons}


# --- tinygrad's environment variables ---------------------------------------------------------------------

# tinygrad settings whose value is text; tinygrad reads every other setting the harness records with int(),
# at import or first use, and a non-integer ends in a ValueError from inside tinygrad
TINYGRAD_TEXT_SETTINGS = frozenset({"DEV", "CACHEDB", "DEFAULT_FLOAT", "CC"})


def tinygrad_int_settings() -> tuple[str, ...]:
    return tuple(name for name in TINYGRAD_ENV_VARS if name not in TINYGRAD_TEXT_SETTINGS)


def check_tinygrad_settings(environ: Mapping[str, str] = os.environ) -> None:
    """Refuse an integer tinygrad setting that tinygrad's own `int(value)` would not read (tinygrad
    parses them at import, where the error would be a traceback from inside it). Call before importing it."""
    for name in tinygrad_int_settings():
        if name not in environ:
            continue
        try:
            int(environ[name])
        except ValueError:
            raise HarnessError(
                f"Invalid value for env var {name!r}: {environ[name]!r} is not a valid integer "
                "(tinygrad reads it as one; unset it or give a whole number)"
            ) from None
