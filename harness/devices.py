"""Which tinygrad backends are usable here, and what each one is."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass

from harness.errors import ExitCode, HarnessError


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    renderer: str
    compiler: str | None
    arch: str | None

    def to_json(self) -> dict[str, str | None]:
        return asdict(self)


def clang_problem() -> str | None:
    """Why tinygrad's CPU backend cannot compile here, or None."""
    cc = os.environ.get("CC", "clang")
    if shutil.which(cc) is None:
        return (
            f"`{cc}` is not on PATH: tinygrad's CPU backend compiles its kernels with clang; "
            "install it (e.g. `apt-get install clang`) or point CC at a clang binary"
        )
    return None


def describe(name: str) -> DeviceInfo:
    from tinygrad import Device

    dev = Device[name]
    renderer = getattr(dev, "renderer", None)
    compiler = getattr(dev, "compiler", None)
    target = getattr(renderer, "target", None)
    return DeviceInfo(
        name=dev.device,
        renderer=type(renderer).__name__,
        compiler=type(compiler).__name__ if compiler is not None else None,
        arch=str(target) if target is not None else None,
    )


def usable() -> list[DeviceInfo]:
    """Backends that open here (CPU only when clang is present)."""
    from tinygrad import Device

    names = [n for n in Device.get_available_devices() if not (n == "CPU" and clang_problem())]
    return [describe(n) for n in names]


def default_device() -> str:
    from tinygrad import Device

    return Device.canonicalize(None)


def resolve(name: str | None) -> DeviceInfo:
    """The DeviceInfo for `name` (default: tinygrad's default device), or a clear error."""
    from tinygrad import Device

    canonical = Device.canonicalize(name) if name else default_device()
    if canonical.split(":")[0] == "CPU" and (problem := clang_problem()):
        raise HarnessError(problem, ExitCode.ENVIRONMENT)
    try:
        return describe(canonical)
    except Exception as e:  # tinygrad raises many types when a backend cannot open
        names = ", ".join(d.name for d in usable()) or "none"
        if isinstance(e, ModuleNotFoundError):  # no tinygrad runtime of that name
            raise HarnessError(f"unknown device {name!r}; usable devices: {names}") from e
        raise HarnessError(
            f"device {name!r} is not usable here ({e.__class__.__name__}); usable devices: {names}",
            ExitCode.ENVIRONMENT,
        ) from e


# Devices that are tinygrad's default on a CPU-only machine only because a driver for them is installed:
# they run on the CPU too, through another, slower compiler stack (PoCL for OpenCL).
CPU_ALTERNATIVES = {"CL": "an OpenCL driver is installed (on a CPU-only machine: PoCL, which runs on the CPU)"}


def choice_text(name: str, choice: dict) -> str:
    """One line, printed before training, saying which device runs and why."""
    how = {
        "option": "named by --device or the suite plan",
        "DEV": "chosen by the DEV environment variable",
        "default": "tinygrad's default device: the first backend that opens here",
    }[choice["by"]]
    line = f"device: {name} ({how})"
    if choice["by"] == "default" and (why := CPU_ALTERNATIVES.get(name.split(":")[0])):
        line += f"; it is {name}, not CPU, because {why}; pass --device CPU for tinygrad's CPU backend"
    return line
