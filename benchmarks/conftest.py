"""pytest-benchmark benchmarks of the harness library, parametrised over the usable tinygrad devices.

    pytest benchmarks --benchmark-autosave
    pytest benchmarks --benchmark-compare --benchmark-compare-fail=median:10%

With --benchmark-disable (how CI runs them) every benchmark body runs once and the target runs
are shortened, so the benchmarks cannot rot without costing minutes.
"""

from __future__ import annotations

import pytest


def usable_devices() -> list[str]:
    from harness import devices

    return [d.name for d in devices.usable()]


def pytest_configure(config):
    from harness import env

    env.use_cpu_keyed_cache()  # compiled CPU code is only reused on the same CPU model


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", usable_devices(), scope="module")


def pytest_benchmark_update_machine_info(config, machine_info):
    """Device, its details and the tinygrad version go into every saved run, so comparisons
    across devices or machines are visible in `--benchmark-compare` output."""
    from harness import devices, env

    fingerprint = env.fingerprint()
    machine_info["tinygrad"] = fingerprint["packages"]["tinygrad"]
    machine_info["tinygrad_env"] = fingerprint["tinygrad_env"]
    machine_info["cpu_model"] = fingerprint["cpu"]["model"]
    machine_info["gpu"] = fingerprint["gpu"]
    machine_info["devices"] = [d.to_json() for d in devices.usable()]


@pytest.fixture(scope="session")
def quick(request) -> bool:
    """True under --benchmark-disable: bodies run once, target runs are shortened."""
    return bool(request.config.getoption("benchmark_disable"))


@pytest.fixture(scope="session")
def mnist():
    from harness import data

    return data.load()
