"""Safe use of PoCL's kernel cache by several processes at once, and a quiet compiler.

PoCL 3.1 (Debian bookworm's) writes its kernel cache without guarding against other processes: two processes
that build or first launch the same kernel against one cache folder read each other's half-written files and
abort (`pocl_binary.c: Assertion 'len > 0'`, "Final linking of kernel ... failed"). Later PoCL releases fix
this; until every platform ships one, every process that uses CL takes one lock per cache folder around the
three moments PoCL touches the cache:

- a build from source (`CLCompiler.compile`, which also reads the binary back),
- loading a built binary (`CLProgram.__init__`),
- a kernel's first launch, through its completion: PoCL compiles the work-group function for the launch's
  sizes then, and links it into the cache.

A warm cache makes each of these a few file reads, so the lock is held for milliseconds and warm runs do not
queue behind each other; only cold compiles, which would corrupt each other, are serialised.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

# clang's warnings on tinygrad's generated OpenCL ("1 warning generated.") say nothing a user can act on;
# errors still fail the build and reach the user through tinygrad's CompileError with PoCL's build log
QUIET_BUILD_FLAGS = "-w"


def configure(cache_dir: Path) -> None:
    """Before PoCL loads: its kernel cache in `cache_dir` (unless POCL_CACHE_DIR is set) and no compiler
    warnings on the terminal (unless POCL_EXTRA_BUILD_FLAGS is set)."""
    os.environ.setdefault("POCL_CACHE_DIR", str(cache_dir))
    os.environ.setdefault("POCL_EXTRA_BUILD_FLAGS", QUIET_BUILD_FLAGS)


def cache_dir() -> Path:
    """The folder PoCL caches kernels in: POCL_CACHE_DIR, else PoCL's own default under the XDG cache."""
    if configured := os.environ.get("POCL_CACHE_DIR"):
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pocl" / "kcache"


# One hold is one kernel's build, load or first launch (seconds at most, cold); ten minutes of waiting means
# the holder hangs, or this process holds the lock through a second copy of this module
WAIT_LIMIT_S = 600.0


def _timeout(path: Path) -> Exception:
    message = f"waited {WAIT_LIMIT_S:.0f} s for PoCL's cache lock {path}; a process holding it seems hung"
    try:  # loaded by path into an older source tree (`continuous`), the harness there may differ
        from harness.base.errors import ExitCode, HarnessError

        return HarnessError(message, ExitCode.ENVIRONMENT)
    except ImportError:
        return RuntimeError(message)


class CacheLock:
    """An exclusive lock on one cache folder, shared by every process (flock) and reentrant within one
    (a program's load compiles it first, both under the lock). Counts how long it was waited for and held."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self.waited_s = 0.0
        self.held_s = 0.0
        self.acquisitions = 0
        self._since = 0.0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._local:
            if self._depth == 0:
                self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    def _acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        pause = 0.001
        while True:  # polled, so that a lock never freed (a hung process) ends in an error, not a hang
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.perf_counter() - start > WAIT_LIMIT_S:
                    os.close(self._fd)
                    self._fd = None
                    raise _timeout(self.path) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
        self._since = time.perf_counter()
        self.waited_s += self._since - start
        self.acquisitions += 1

    def _release(self) -> None:
        assert self._fd is not None
        self.held_s += time.perf_counter() - self._since
        os.close(self._fd)  # closing drops the flock
        self._fd = None


_lock: CacheLock | None = None


def lock() -> CacheLock:
    """This process's lock on its PoCL cache folder (`<folder>.lock` beside it, so clearing the cache keeps it)."""
    global _lock
    folder = cache_dir()
    if _lock is None or _lock.path != folder.with_name(folder.name + ".lock"):
        _lock = CacheLock(folder.with_name(folder.name + ".lock"))
    return _lock


_installed = False
# set on the wrapped classes: a second copy of this module (the `continuous` worker loads the caller's by
# path) must not wrap them again, or the two copies' locks on one file would deadlock the process
GUARDED = "_mnist_bench_pocl_guarded"


def guard() -> None:
    """Wrap tinygrad's CL compiler and programs so that each cache-touching call holds `lock()`. Idempotent;
    cheap to call before every use of a CL device."""
    global _installed
    if _installed:
        return
    from tinygrad.runtime import ops_cl

    if not getattr(ops_cl.CLProgram, GUARDED, False):
        _wrap_compile(ops_cl.CLCompiler)
        _wrap_program(ops_cl.CLProgram, ops_cl.cl)
        setattr(ops_cl.CLProgram, GUARDED, True)
    _installed = True


def _wrap_compile(compiler_cls) -> None:
    build = compiler_cls.compile

    def compile(self, src: str) -> bytes:
        with lock().held():
            return build(self, src)

    compiler_cls.compile = compile


def _wrap_program(program_cls, cl) -> None:
    load, launch = program_cls.__init__, program_cls.__call__

    def __init__(self, *args, **kwargs) -> None:
        with lock().held():
            load(self, *args, **kwargs)
        self._pocl_launched = False

    def __call__(self, *args, **kwargs):
        if self._pocl_launched:
            return launch(self, *args, **kwargs)
        with lock().held():
            result = launch(self, *args, **kwargs)
            cl.clFinish(self.dev.queue)  # PoCL builds the launch's work-group function when the command runs
        self._pocl_launched = True
        return result

    program_cls.__init__, program_cls.__call__ = __init__, __call__
