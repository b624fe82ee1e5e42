from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.tg import data as mnist_data
from harness.tg import env


def pytest_configure(config):
    env.use_cpu_keyed_cache()  # compiled CPU code is only reused on the same CPU model


@pytest.fixture(scope="session")
def mnist() -> mnist_data.Mnist:
    """The real, verified dataset (fetched into the cache on first use)."""
    return mnist_data.load()


@pytest.fixture(scope="session")
def small(mnist) -> mnist_data.Mnist:
    """A slice small enough for few-step training tests."""
    return mnist.subset(2048, 500)


@pytest.fixture
def data_copy(tmp_path, mnist) -> Path:
    """A private copy of the four raw IDX files, safe to corrupt."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    source = mnist_data.cache_dir()
    for spec in mnist_data.SPECS:
        shutil.copyfile(mnist_data.find_file(source, spec), folder / spec.name)
    return folder


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The shipped smoke suite, run once for the session: (folder, planned runs, outcome)."""
    from harness.documents import suites
    from harness.run import runner

    out = tmp_path_factory.mktemp("smoke")
    planned = suites.expand(suites.load("smoke"), ["CPU"])
    return out, planned, runner.run_suite("smoke", planned, out)
