"""Which tinygrad backends are usable here, what each one is, and which one runs by default.

A harness device name is a tinygrad device, optionally with a renderer: `CPU` (clang), `CPU:LLVM`
(tinygrad's CPU backend with the LLVM renderer), `CL`, `CUDA`, `CUDA:1` (a device index). tinygrad 0.14
picks a renderer from the `DEV` setting, not from the device name (`Device["CPU:LLVM"]` opens a second CPU
device that still renders with clang), so a name with a renderer runs as the tinygrad device `CPU` under
`Context(DEV="CPU:LLVM")`: see `tinygrad_device` and `context_dev`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from harness.base.errors import ExitCode, HarnessError
from harness.tg import pocl

# The harness's default device on a machine where no GPU backend opens, chosen by measurement (the trial and
# its rule: benchmarks/device_choice.py; its results: results/device-choice/). CPU when this one does not open.
CPU_ONLY_DEFAULT = "CL"
CPU_ONLY_FALLBACK = "CPU"

# tinygrad's LLVM renderer binds the newest libLLVM it finds; with Debian's LLVM 14 or 15 it fails
MIN_LLVM_MAJOR = 16

# backends whose devices are GPUs (CL is whatever its OpenCL device is; CPU is the CPU)
GPU_BACKENDS = ("METAL", "AMD", "NV", "CUDA", "QCOM", "WEBGPU")


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    renderer: str
    compiler: str | None
    arch: str | None
    description: str | None = None  # what it is: the OpenCL platform and device, the CPU renderer and its LLVM
    runs_on: str | None = None  # `cpu`, `gpu` or another OpenCL device type; None where unknown

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


# --- names ------------------------------------------------------------------------------------------


def canonical(name: str) -> str:
    """`cpu:llvm` -> `CPU:LLVM`, `cuda:0` -> `CUDA`: device and renderer upper case, as tinygrad parses DEV."""
    parts = name.split(":")
    parts[0] = parts[0].upper()
    if len(parts) > 1 and not parts[1].isdigit():
        parts[1] = parts[1].upper()
    if parts[1:] == ["0"]:
        parts = parts[:1]
    return ":".join(parts)


def _renderer_part(name: str) -> str | None:
    parts = name.split(":")
    return parts[1] if len(parts) > 1 and not parts[1].isdigit() else None


def tinygrad_device(name: str) -> str:
    """The tinygrad device that holds the tensors: `CPU:LLVM` -> `CPU`, `CUDA:1` -> `CUDA:1`."""
    return name.split(":")[0] if _renderer_part(name) else name


def context_dev(name: str) -> str:
    """The DEV value to run `name` under: it makes the device tinygrad's default and picks the renderer.
    A device index is not a renderer to DEV, so it is left out (`CUDA:1` -> `CUDA`)."""
    return name if _renderer_part(name) else name.split(":")[0]


@contextlib.contextmanager
def running_on(name: str) -> Iterator[None]:
    """tinygrad's layers, optimizers and random numbers use the default device, and kernels compile with
    the renderer DEV names when they are realized: both must be `name`'s for every step, capture and eval."""
    from tinygrad import Context

    if name.split(":")[0].upper() == "CL":
        pocl.guard()  # PoCL's kernel cache is not safe for concurrent processes without it
    with Context(DEV=context_dev(name)):
        yield


# --- what a device is -------------------------------------------------------------------------------


def _cl_string(get, handle, param) -> str:
    size = ctypes.c_size_t()
    get(handle, param, 0, None, ctypes.byref(size))
    buf = ctypes.create_string_buffer(size.value)
    get(handle, param, size.value, buf, None)
    return buf.value.decode(errors="replace").strip()


def _cl_facts(dev) -> tuple[str, str]:
    """(description, runs_on) of an open tinygrad CL device, from the OpenCL driver. tinygrad opens the first
    platform's devices (GPUs first), so the platform asked about is that first one too."""
    from tinygrad.runtime.autogen import opencl as cl

    count = ctypes.c_uint32()
    cl.clGetPlatformIDs(0, None, ctypes.byref(count))
    platforms = (cl.cl_platform_id * count.value)()
    cl.clGetPlatformIDs(count.value, platforms, None)
    kind = cl.cl_device_type()
    cl.clGetDeviceInfo(dev.cl_dev, cl.CL_DEVICE_TYPE, ctypes.sizeof(kind), ctypes.byref(kind), None)
    types = {cl.CL_DEVICE_TYPE_CPU: "cpu", cl.CL_DEVICE_TYPE_GPU: "gpu", cl.CL_DEVICE_TYPE_ACCELERATOR: "accelerator"}
    runs_on = next((word for bit, word in types.items() if kind.value & bit), "other")
    platform_name = _cl_string(cl.clGetPlatformInfo, platforms[0], cl.CL_PLATFORM_NAME)
    text = f"OpenCL: {platform_name}, device {dev.device_name} ({runs_on.upper()}), driver {dev.driver_version}"
    return text, runs_on


def llvm_version() -> str | None:
    """The version of the libLLVM tinygrad loads (`19.1.7`), None when none loads. LLVMGetVersion exists
    from LLVM 16 on, so an older library reads as its file name."""
    try:
        from tinygrad.runtime.autogen import llvm

        major, minor, patch = ctypes.c_uint32(), ctypes.c_uint32(), ctypes.c_uint32()
        llvm.LLVMGetVersion(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(patch))
        return f"{major.value}.{minor.value}.{patch.value}"
    except Exception:  # no libLLVM, or one without LLVMGetVersion (tinygrad raises on the first call)
        return None


def _cpu_description(renderer: object) -> str:
    kind = type(renderer).__name__
    if "LLVM" in kind:
        return f"tinygrad CPU backend, LLVM renderer (libLLVM {llvm_version() or 'unknown'})"
    if "Clang" in kind:
        return f"tinygrad CPU backend, clang renderer ({os.environ.get('CC', 'clang')})"
    return f"tinygrad CPU backend, {kind}"


def _check_llvm(name: str) -> None:
    version = llvm_version()
    if version is None or int(version.split(".")[0]) < MIN_LLVM_MAJOR:
        found = version or f"none, or one older than {MIN_LLVM_MAJOR}"
        raise RuntimeError(f"{name} needs libLLVM {MIN_LLVM_MAJOR} or newer (found {found}); install e.g. libllvm19")


def _compiler(dev, renderer) -> str | None:
    """The class of the compiler that turns the device's kernels into code. A renderer whose compiler is
    tinygrad's base `Compiler` only hands its source on (OpenCL's): the device compiles it with a compiler
    of its own (`CLCompiler`, through the OpenCL driver), which is the one named."""
    from tinygrad.device import Compiler

    own = getattr(renderer, "compiler", None)
    if own is not None and type(own) is not Compiler:
        return type(own).__name__
    found = [type(v).__name__ for v in vars(dev).values() if isinstance(v, Compiler) and type(v) is not Compiler]
    return found[0] if found else None


def describe(name: str) -> DeviceInfo:
    """Open `name` and say what it is; raises whatever tinygrad raises when it does not open."""
    from tinygrad import Device

    name = canonical(name)
    base = name.split(":")[0]
    with running_on(name):
        dev = Device[tinygrad_device(name)]
        renderer = dev.renderer  # chosen by DEV's renderer, so read inside the context
        if _renderer_part(name) == "LLVM":
            _check_llvm(name)
        compiler = _compiler(dev, renderer)
        target = getattr(renderer, "target", None)
        description, runs_on = None, None
        if base == "CL":
            description, runs_on = _cl_facts(dev)
        elif base == "CPU":
            description, runs_on = _cpu_description(renderer), "cpu"
        elif base in GPU_BACKENDS:
            runs_on = "gpu"
    return DeviceInfo(
        name=name,
        renderer=type(renderer).__name__,
        compiler=compiler,
        arch=str(target) if target is not None else None,
        description=description,
        runs_on=runs_on,
    )


def opens(name: str) -> DeviceInfo | None:
    """`describe(name)`, or None when it does not open here (for CPU: also when clang is missing)."""
    if name.split(":")[0].upper() == "CPU" and clang_problem():
        return None
    try:
        return describe(name)
    except Exception:  # tinygrad raises many types when a backend cannot open
        return None


# renderers of tinygrad's CPU backend the harness lists besides its default (clang)
CPU_RENDERERS = ("CPU:LLVM",)


def usable() -> list[DeviceInfo]:
    """Backends that open here, in tinygrad's order, with CPU:LLVM after CPU when libLLVM 16+ loads."""
    from tinygrad.device import ALL_DEVICES

    names = [n for base in ALL_DEVICES for n in ([base, *CPU_RENDERERS] if base == "CPU" else [base])]
    return [info for n in names if (info := opens(n)) is not None]


# --- the default ------------------------------------------------------------------------------------


def tinygrad_default() -> str | None:
    """tinygrad's own pick, the first backend that opens in its order; None when none opens. Found without
    `Device.DEFAULT`, which would write `DEV=<device>` into os.environ for child processes to take as a
    user's choice."""
    from tinygrad import Device

    return next(Device.get_available_devices(), None)


def dev_name() -> str | None:
    """The device the DEV environment variable named when tinygrad was imported (`CPU:LLVM`), or None."""
    from tinygrad.helpers import DEV

    target = DEV.value[0]
    if not target.device:
        return None
    return ":".join(p for p in (target.device, target.renderer, target.arch) if p) if target.renderer else target.device


def default_device() -> str:
    """The device a run uses when none is named: DEV's when set; tinygrad's pick where it is a GPU; on a
    machine without one, CPU_ONLY_DEFAULT (CPU_ONLY_FALLBACK when that does not open)."""
    if named := dev_name():
        return canonical(named)
    picked = tinygrad_default()
    if picked is not None and (info := opens(picked)) is not None and info.runs_on not in ("cpu", None):
        return picked
    for name in (CPU_ONLY_DEFAULT, CPU_ONLY_FALLBACK):
        if (info := opens(name)) is not None and info.runs_on == "cpu":
            return info.name
    return picked or CPU_ONLY_FALLBACK


def resolve(name: str | None) -> DeviceInfo:
    """The DeviceInfo for `name` (default: `default_device()`), or a clear error."""
    canonical_name = canonical(name) if name else default_device()
    if canonical_name.split(":")[0] == "CPU" and (problem := clang_problem()):
        raise HarnessError(problem, ExitCode.ENVIRONMENT)
    try:
        return describe(canonical_name)
    except Exception as e:  # tinygrad raises many types when a backend cannot open
        names = ", ".join(d.name for d in usable()) or "none"
        if isinstance(e, ModuleNotFoundError):  # no tinygrad runtime of that name
            raise HarnessError(f"unknown device {name!r}; usable devices: {names}") from e
        why = f"{e.__class__.__name__}: {e}".splitlines()[0][:300]
        raise HarnessError(
            f"device {canonical_name!r} is not usable here ({why}); usable devices: {names}", ExitCode.ENVIRONMENT
        ) from e


def choice_text(name: str, choice: dict, runs_on: str | None = None) -> str:
    """One line, printed before training, saying which device runs and why."""
    how = {
        "option": "named by --device or the suite plan",
        "DEV": "chosen by the DEV environment variable",
        "default": default_reason(name, runs_on),
    }[choice["by"]]
    return f"device: {name} ({how})"


def default_reason(name: str, runs_on: str | None = None) -> str:
    """Why `name` is the default here, in words (`runs_on` as DeviceInfo has it)."""
    if runs_on not in ("cpu", None):
        return "tinygrad's default device: the first GPU backend that opens here"
    if name == CPU_ONLY_DEFAULT == "CL":
        return (
            "the harness's default on a machine without a GPU: OpenCL on the CPU (PoCL), chosen by measurement, "
            "see results/device-choice/; --device CPU for tinygrad's clang backend"
        )
    if name == CPU_ONLY_DEFAULT:
        return "the harness's default on a machine without a GPU, chosen by measurement, see results/device-choice/"
    if name == CPU_ONLY_FALLBACK:
        return f"the harness's default on a machine without a GPU, {CPU_ONLY_DEFAULT} not opening here"
    return "the harness's default device here"
