"""Crash-safe file writing: temp file + fsync + rename, stale temp clean-up, and a folder lock.

A temp file is named `.<target>.<pid>.<random>.tmp`, so a later process can tell the leftovers of a
killed writer (its pid is gone) from the work of a live one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from harness.base.errors import ExitCode, HarnessError

LOCK_NAME = ".mnist-bench.lock"


def ensure_folder(folder: Path) -> Path:
    """`folder`, created with its parents if needed; a one-line error where it cannot be (a file in the way,
    no permission, a read-only disk). Every folder the harness writes into is made here."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HarnessError(f"{folder}: folder is not writable ({e.strerror})", ExitCode.ENVIRONMENT) from e
    return folder


def _temp_path(path: Path) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    ensure_folder(path.parent)
    try:
        tmp = _temp_path(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        raise HarnessError(f"{path.parent}: cannot write here ({e.strerror})", ExitCode.ENVIRONMENT) from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise HarnessError(f"{path}: write failed ({e.strerror}); nothing was changed", ExitCode.ENVIRONMENT) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temp_files(folder: Path) -> list[Path]:
    """Remove temp files left by writers that no longer run (e.g. after kill -9); returns them."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        parts = tmp.name.rsplit(".", 3)  # [.target, pid, random, tmp]
        if len(parts) == 4 and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock on `folder` (for read-modify-write of a shared file)."""
    ensure_folder(folder)
    try:
        handle = open(folder / LOCK_NAME, "a")  # noqa: SIM115 (closed below, after the lock is released)
    except OSError as e:
        raise HarnessError(f"{folder}: cannot write here ({e.strerror})", ExitCode.ENVIRONMENT) from e
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
