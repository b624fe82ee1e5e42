"""pytest-benchmark benchmarks of the harness library, on the harness's default device (or the devices
named with --mnist-device, repeatable; `all` for every usable one).

    pytest benchmarks --benchmark-autosave
    pytest benchmarks --benchmark-compare --benchmark-compare-fail=median:10%
    pytest benchmarks --mnist-device CPU --mnist-device CL --benchmark-autosave

With --benchmark-disable (how CI runs them) every benchmark body runs once and the target runs
are shortened, so the benchmarks cannot rot without costing minutes.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--mnist-device",
        action="append",
        default=[],
        help="tinygrad device to benchmark (repeatable; `all`: every usable one; default: the harness's default)",
    )


def bench_devices(config) -> list[str]:
    from harness.run import runner

    return runner.resolve_devices(config.getoption("mnist_device"))


def pytest_configure(config):
    from harness.tg import env

    env.use_cpu_keyed_cache()  # compiled CPU code is only reused on the same CPU model


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", bench_devices(metafunc.config), scope="module")


def pytest_benchmark_update_machine_info(config, machine_info):
    """Device, its details and the tinygrad version go into every saved run, so comparisons
    across devices or machines are visible in `--benchmark-compare` output."""
    from harness.tg import devices, env

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
    from harness.tg import data

    return data.load()
