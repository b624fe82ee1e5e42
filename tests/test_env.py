"""Environment capture: the device choice, DEV, and the machine facts that explain a timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.tg import devices, env

REPO = Path(__file__).resolve().parent.parent


HARNESS_SET = ("DEV", "CACHEDB", "POCL_CACHE_DIR", env.KEYED_MARK)  # set in this process by conftest or tinygrad


def _in_fresh_process(code: str, **extra_env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k not in HARNESS_SET} | extra_env
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=environ, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


FINGERPRINT_AFTER = """
import json
from harness.tg import devices, env
d = devices.resolve({name!r})
print(json.dumps({{"device": d.name, "env": env.collect_tinygrad_env(), "choice": env.device_choice({name!r}),
                  "line": devices.choice_text(d.name, env.device_choice({name!r}), d.runs_on)}}))
"""


def test_plain_dev_is_not_a_setting_but_a_renderer_is(monkeypatch):
    monkeypatch.setenv("DEV", "CPU")
    monkeypatch.delenv("BEAM", raising=False)  # BEAM is read from tinygrad's ContextVar (tests/test_kernel_search.py)
    monkeypatch.setenv("NOOPT", "1")
    assert env.collect_tinygrad_env() == {"NOOPT": "1"}
    monkeypatch.setenv("DEV", "CPU:LLVM")
    assert env.collect_tinygrad_env()["DEV"] == "CPU:LLVM"
    assert not env.dev_adds_settings("CUDA:1") and not env.dev_adds_settings("CL")


def test_device_choice_words(monkeypatch):
    assert env.device_choice("CPU") == {"by": "option", "requested": "CPU"}
    default = {"by": "default", "requested": None}
    monkeypatch.setattr(devices, "CPU_ONLY_DEFAULT", "CL")
    line = devices.choice_text("CL", default, "cpu")
    assert "\n" not in line and "OpenCL" in line and "measurement" in line and "--device CPU" in line
    assert "CL not opening" in devices.choice_text("CPU", default, "cpu")
    assert "GPU backend" in devices.choice_text("CUDA", default, "gpu")
    monkeypatch.setattr(devices, "CPU_ONLY_DEFAULT", "CPU")
    assert "measurement" in devices.choice_text("CPU", default, "cpu")
    assert "DEV environment variable" in devices.choice_text("CPU:LLVM", {"by": "DEV", "requested": "CPU:LLVM"})


def test_flag_and_default_record_the_same_tinygrad_env():
    """tinygrad writes DEV=<device> into os.environ when it picks its default: the record must not differ."""
    default = _in_fresh_process(FINGERPRINT_AFTER.format(name=None))
    named = _in_fresh_process(FINGERPRINT_AFTER.format(name=default["device"]))
    assert default["env"] == named["env"] and "DEV" not in default["env"]
    assert default["choice"] == {"by": "default", "requested": None}
    assert named["choice"]["by"] == "option"
    by_dev = _in_fresh_process(FINGERPRINT_AFTER.format(name=None), DEV=default["device"])
    assert by_dev["env"] == default["env"] and by_dev["choice"] == {"by": "DEV", "requested": default["device"]}


def opencl_driver() -> str | None:
    """Why there is no OpenCL driver here, or None when one is installed."""
    vendors = Path("/etc/OpenCL/vendors")
    if not vendors.is_dir() or not any(vendors.glob("*.icd")):
        return "no OpenCL driver installed (apt-get install pocl-opencl-icd to run this test)"
    return None


@pytest.mark.skipif(opencl_driver() is not None, reason=opencl_driver() or "")
@pytest.mark.skipif(bool(env.collect_gpu()), reason="a GPU is the default where one opens")
def test_with_an_opencl_driver_the_default_is_the_measured_choice_and_said_so():
    """With PoCL installed tinygrad's own pick is CL; the harness's is devices.CPU_ONLY_DEFAULT, whatever the
    trial set it to, and the line printed before training says so."""
    default = _in_fresh_process(FINGERPRINT_AFTER.format(name=None))
    assert default["device"] == devices.CPU_ONLY_DEFAULT
    assert default["choice"] == {"by": "default", "requested": None} and "measurement" in default["line"]
    named = _in_fresh_process(FINGERPRINT_AFTER.format(name="CPU"))
    assert named["device"] == "CPU" and named["env"] == default["env"] and "DEV" not in named["env"]


@pytest.mark.slow
def test_pytest_benchmark_autosave_then_compare_has_the_same_machine_info(tmp_path):
    """The saved machine_info (written after the benchmarks ran, when tinygrad has set DEV) equals the one a
    later --benchmark-compare computes, so no `Benchmark machine_info is different` warning."""
    environ = {k: v for k, v in os.environ.items() if k != "DEV"}
    base = [sys.executable, "-m", "pytest", "benchmarks/test_benchmarks.py", "-q", "-p", "no:cacheprovider"]
    # a tinygrad benchmark (the MLP's eval pass: tinygrad picks its default device on the way) and a cheap one
    base += ["-k", "data_load or (eval_pass and mlp)", "--benchmark-max-time=0.5"]
    storage = f"--benchmark-storage=file://{tmp_path}"
    kw = dict(cwd=REPO, env=environ, capture_output=True, text=True, timeout=300)
    saved = subprocess.run([*base, storage, "--benchmark-autosave"], **kw)
    assert saved.returncode == 0, saved.stdout[-2000:]
    compared = subprocess.run([*base, storage, "--benchmark-compare"], **kw)
    assert compared.returncode == 0, compared.stdout[-2000:]
    assert "machine_info is different" not in compared.stdout + compared.stderr


KEYED = """
import json, os
from harness.tg import env
path = env.use_cpu_keyed_cache()
from tinygrad.helpers import CACHEDB
found = {"env": env.collect_tinygrad_env(), "cache": env.collect_compile_cache()}
print(json.dumps({"path": path, "tinygrad": CACHEDB, "pocl": os.environ.get("POCL_CACHE_DIR"), **found}))
"""


def test_compile_cache_is_keyed_by_cpu(tmp_path):
    """tinygrad compiles CPU code with -march=native: a cache from another CPU (a Docker image, a CI cache)
    must never be used, so the harness points CACHEDB at a database named after this CPU's key."""
    got = _in_fresh_process(KEYED, XDG_CACHE_HOME=str(tmp_path))
    key = env.cpu_key()
    assert got["path"] == got["tinygrad"] == str(tmp_path / "tinygrad" / f"mnist-bench-{key}.db")
    assert got["cache"]["keyed"] and got["cache"]["cpu_key"] == key
    assert "CACHEDB" not in got["env"]  # the harness's choice, not a user setting
    assert got["pocl"] == str(tmp_path / "pocl" / f"mnist-bench-{key}")  # PoCL compiles for this CPU too
    mine = _in_fresh_process(KEYED, CACHEDB=str(tmp_path / "mine.db"), POCL_CACHE_DIR=str(tmp_path / "p"))
    assert mine["pocl"] == str(tmp_path / "p")
    assert mine["path"] is None and mine["tinygrad"] == str(tmp_path / "mine.db")
    assert mine["env"]["CACHEDB"] == str(tmp_path / "mine.db") and not mine["cache"]["keyed"]


def test_cpu_key_changes_with_the_flags(monkeypatch):
    key = env.cpu_key()
    monkeypatch.setattr(env, "cpu_flags", lambda: ["sse2"])
    assert env.cpu_key() != key


def test_busy_machine_is_marked():
    environment = {"cpu": {"usable_cores": 2}, "load_avg": {"start": [0.5, 0, 0], "end": [3.1, 0, 0]}}
    steady = {"median": 1.0, "p10": 0.9, "p90": 1.1, "n": 20}
    verdict = env.stability(environment, steady)
    assert verdict["busy"] and "3.10 at the end > 2" in verdict["reasons"][0]
    quiet = {"cpu": {"usable_cores": 2}, "load_avg": {"start": [0.5, 0, 0], "end": [1.2, 0, 0]}}
    assert env.stability(quiet, steady) == {"busy": False, "reasons": []}
    spread = env.stability(quiet, {**steady, "p90": 2.0})
    assert spread["busy"] and "spread" in spread["reasons"][0]


def test_environment_explains_a_timing():
    e = env.fingerprint()
    assert {"simd_flags", "governor"} <= set(e["cpu"])
    assert e["load_avg"]["start"] is None or len(e["load_avg"]["start"]) == 3
    assert e["compiler"]["cc"] and "affinity" in e["threads"]


@pytest.mark.parametrize(
    ("flags", "level"),
    [
        ("avx avx2 fma avx512f avx512bw avx512cd avx512dq avx512vl sse4_2", "x86-64-v4"),  # Xeon 8370C, EPYC 9V74
        ("sse4_1 sse4_2 ssse3 avx avx2 fma", "x86-64-v3"),  # EPYC 7763
        ("sse4_1 sse4_2 ssse3 avx", "x86-64-v2"),
        ("sse sse2", "x86-64"),
    ],
)
def test_isa_levels_from_flags_and_their_numerics_class(flags, level):
    assert env.isa_level(flags.split(), "x86_64") == level
    same = {"x86-64-v4": "x86-64-v3"}.get(level, level)  # AVX-512 computes AVX2 + FMA's bits (results/isa)
    assert env.numerics_class(level) == same
    assert env.isa_level(flags.split(), "aarch64") == "aarch64"


def test_a_cpu_identity_override_changes_records_never_the_compile_cache(monkeypatch):
    real_key = env.cpu_key()
    monkeypatch.setenv(env.CPU_MODEL_VAR, "AMD EPYC 7763 64-Core Processor")
    monkeypatch.setenv(env.CPU_FLAGS_VAR, "sse4_1 sse4_2 ssse3 avx avx2 fma bmi2")
    cpu = env.collect_cpu()
    assert cpu["model"] == "AMD EPYC 7763 64-Core Processor" and cpu["isa"] == "x86-64-v3"
    assert "avx512f" not in cpu["simd_flags"]
    assert env.cpu_key() == real_key  # compiled code is keyed by the CPU that runs it
