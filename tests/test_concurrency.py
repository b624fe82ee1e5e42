"""Several processes on one machine, from empty caches: PoCL's kernel cache lock, and what it protects.

The stress test starts N `mnist-bench mlp` processes on CL together, on an empty PoCL and tinygrad cache,
for R rounds. CI runs the small size (3 processes, 1 round) so every CI run proves the cold path; the full
size is `MNIST_BENCH_STRESS_PROCS=4 MNIST_BENCH_STRESS_ROUNDS=10 pytest tests/test_concurrency.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.base.errors import ExitCode, HarnessError
from harness.tg import data as mnist_data
from harness.tg import devices, env, pocl

PROCS = int(os.environ.get("MNIST_BENCH_STRESS_PROCS", "3"))
ROUNDS = int(os.environ.get("MNIST_BENCH_STRESS_ROUNDS", "1"))
CL_OPENS = devices.opens("CL") is not None
needs_cl = pytest.mark.skipif(not CL_OPENS, reason="no OpenCL driver (PoCL) here")

# what PoCL 3.1 printed when two processes filled one cache (and its compiler's chatter)
CRASH_SIGNS = ("Assertion", "Final linking", "Segmentation", "warning generated", "Traceback")


def _try_flock(path: Path) -> bool:
    """Whether another process could take the lock right now (a child, so flock sees two processes)."""
    code = (
        "import fcntl, os, sys\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(1)\n"
    )
    return subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_cache_lock_excludes_other_processes_and_is_reentrant(tmp_path):
    lock = pocl.CacheLock(tmp_path / "kcache.lock")
    with lock.held():
        with lock.held():  # a program's load compiles it first: both under the lock, no self-deadlock
            assert not _try_flock(lock.path)
        assert not _try_flock(lock.path)
    assert _try_flock(lock.path)
    assert lock.acquisitions == 1 and lock.held_s > 0


def test_a_lock_never_freed_ends_in_one_clear_error_not_a_hang(monkeypatch, tmp_path):
    path = tmp_path / "kcache.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import fcntl, os, sys, time\nfd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(pocl, "WAIT_LIMIT_S", 0.3)
        lock = pocl.CacheLock(path)
        with pytest.raises(HarnessError, match="waited 0 s for PoCL's cache lock") as caught, lock.held():
            pass
        assert caught.value.code == ExitCode.ENVIRONMENT and lock.acquisitions == 0
    finally:
        holder.kill()
        holder.wait()
    with lock.held():  # freed by the holder's end: usable again
        assert lock.acquisitions == 1


def test_lock_sits_beside_the_cache_folder_it_guards(monkeypatch, tmp_path):
    monkeypatch.setenv("POCL_CACHE_DIR", str(tmp_path / "pocl" / "mnist-bench-abc"))
    assert pocl.lock().path == tmp_path / "pocl" / "mnist-bench-abc.lock"
    monkeypatch.delenv("POCL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pocl.lock().path == tmp_path / "xdg" / "pocl" / "kcache.lock"  # PoCL's own default folder


def test_configure_keeps_the_users_settings(monkeypatch, tmp_path):
    monkeypatch.delenv("POCL_CACHE_DIR", raising=False)
    monkeypatch.delenv("POCL_EXTRA_BUILD_FLAGS", raising=False)
    pocl.configure(tmp_path / "k")
    assert os.environ["POCL_CACHE_DIR"] == str(tmp_path / "k") and os.environ["POCL_EXTRA_BUILD_FLAGS"] == "-w"
    monkeypatch.setenv("POCL_CACHE_DIR", "/mine")
    monkeypatch.setenv("POCL_EXTRA_BUILD_FLAGS", "-O1")
    pocl.configure(tmp_path / "k")
    assert os.environ["POCL_CACHE_DIR"] == "/mine" and os.environ["POCL_EXTRA_BUILD_FLAGS"] == "-O1"


@needs_cl
def test_every_cl_build_and_first_launch_holds_the_lock():
    """A kernel's load and first launch take the lock (its compile too, where tinygrad's cache misses); a
    second launch does not, so a warm step never touches the lock."""
    from tinygrad import Tensor

    with devices.running_on("CL"):
        lock = pocl.lock()
        before = lock.acquisitions
        x = Tensor([float(os.getpid() % 997), 3.0], device="CL")
        expected = (os.getpid() % 997 + 3.0) * 7.25 + 1.0
        assert (x * 7.25 + 0.5).sum().item() == pytest.approx(expected)
        after_first = lock.acquisitions
        assert after_first > before
        assert (x * 7.25 + 0.5).sum().item() == pytest.approx(expected)
    assert lock.acquisitions == after_first


def _cold_env(cache: Path) -> dict[str, str]:
    """The machine's environment with every cache setting the harness or conftest made removed, and an
    empty cache folder: what a fresh machine gives each process."""
    dropped = ("CACHEDB", "POCL_CACHE_DIR", "POCL_EXTRA_BUILD_FLAGS", env.KEYED_MARK, "DEV")
    environ = {k: v for k, v in os.environ.items() if k not in dropped}
    return environ | {"XDG_CACHE_HOME": str(cache), "MNIST_BENCH_DATA": str(mnist_data.cache_dir())}


def _start(out: Path, environ: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "harness", "mlp", "--device", "CL", "--steps", "3", "--eval-every", "0"]
    cmd += ["--no-assert-target", "--out-dir", str(out), "--format", "json"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)


@pytest.mark.slow
@needs_cl
def test_processes_started_together_on_empty_caches_never_crash(tmp_path, mnist):
    weights = set()
    for round_ in range(ROUNDS):
        root = tmp_path / f"round{round_}"
        environ = _cold_env(root / "cache")
        procs = [_start(root / f"out{i}", environ) for i in range(PROCS)]
        for i, proc in enumerate(procs):
            stdout, stderr = proc.communicate(timeout=900)
            assert proc.returncode == 0, f"round {round_}, process {i}: exit {proc.returncode}\n{stderr[-2000:]}"
            assert not [sign for sign in CRASH_SIGNS if sign in stderr], stderr[-2000:]
            weights.add(json.loads(stdout)["metrics"]["weights_sha256"])
        assert list((root / "cache" / "pocl").glob("mnist-bench-*/*")), "PoCL's cache stayed empty"
        assert list((root / "cache" / "tinygrad").glob("mnist-bench-*.db"))
    assert len(weights) == 1  # every process, every round: the same bits, so no cache entry was corrupted


@needs_cl
def test_a_second_copy_of_the_lock_module_does_not_wrap_again(tmp_path):
    """`continuous` workers load the caller's pocl.py by path beside a side's own harness.tg.pocl: both guard, one
    wraps, and a kernel still runs (two wrappings would flock one file twice and hang)."""
    code = (
        "import importlib.util, json\n"
        "from harness.tg import devices, pocl\n"
        "spec = importlib.util.spec_from_file_location('copy', pocl.__file__)\n"
        "copy = importlib.util.module_from_spec(spec); spec.loader.exec_module(copy); copy.guard()\n"
        "from tinygrad import Tensor\n"
        "with devices.running_on('CL'):\n"
        "    value = (Tensor([1.0, 2.0], device='CL') * 3.5).sum().item()\n"
        "print(json.dumps([value, copy._lock is not None, pocl._lock is None]))\n"
    )
    environ = _cold_env(tmp_path / "cache")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [10.5, True, True]
