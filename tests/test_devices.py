"""Device names, what each device is, the harness's default device, and CPU:LLVM kept apart from CPU."""

from __future__ import annotations

import pytest

from harness.documents import baselines, schema
from harness.tg import devices
from harness.tg.devices import DeviceInfo
from harness.tg.spec import run_key


def llvm_missing() -> str | None:
    version = devices.llvm_version()
    if version is None or int(version.split(".")[0]) < devices.MIN_LLVM_MAJOR:
        return f"no libLLVM {devices.MIN_LLVM_MAJOR}+ here (apt-get install libllvm19 to run this test)"
    return None


def test_names_split_into_tinygrad_device_and_dev_value():
    assert devices.canonical("cpu:llvm") == "CPU:LLVM" and devices.canonical("cuda:0") == "CUDA"
    assert devices.tinygrad_device("CPU:LLVM") == "CPU" and devices.context_dev("CPU:LLVM") == "CPU:LLVM"
    assert devices.tinygrad_device("CUDA:1") == "CUDA:1" and devices.context_dev("CUDA:1") == "CUDA"
    assert devices.tinygrad_device("CL") == devices.context_dev("CL") == "CL"


def test_cpu_says_it_is_clang_on_the_cpu():
    info = devices.describe("CPU")
    assert info.name == "CPU" and info.renderer == "ClangRenderer" and info.runs_on == "cpu"
    assert "clang renderer" in (info.description or "")


def fake(name: str, runs_on: str) -> DeviceInfo:
    return DeviceInfo(name, "R", None, None, None, runs_on)


@pytest.mark.parametrize(
    "tinygrad_pick, open_here, expected",
    [
        ("CL", {"CL": "cpu", "CPU": "cpu"}, "CL"),  # PoCL: the measured CPU-only default
        ("CPU", {"CPU": "cpu"}, "CPU"),  # no OpenCL driver: the fallback
        ("CUDA", {"CUDA": "gpu", "CL": "cpu", "CPU": "cpu"}, "CUDA"),  # a GPU: tinygrad's pick stands
        ("CL", {"CL": "gpu", "CPU": "cpu"}, "CL"),  # OpenCL on a GPU is a GPU
    ],
)
def test_default_device_is_the_measured_choice_without_a_gpu(monkeypatch, tinygrad_pick, open_here, expected):
    monkeypatch.setattr(devices, "CPU_ONLY_DEFAULT", "CL")
    monkeypatch.setattr(devices, "dev_name", lambda: None)
    monkeypatch.setattr(devices, "tinygrad_default", lambda: tinygrad_pick)
    monkeypatch.setattr(devices, "opens", lambda n: fake(n, open_here[n]) if n in open_here else None)
    assert devices.default_device() == expected


def test_dev_still_chooses(monkeypatch):
    monkeypatch.setattr(devices, "dev_name", lambda: "cpu:llvm")
    assert devices.default_device() == "CPU:LLVM"


def test_keys_keep_a_renderer_apart():
    machine = {"cpu": "Test CPU 9000", "gpu": [], "tinygrad": "0.14.0", "tinygrad_env": {}}
    clang, llvm = ({**machine, "device": d} for d in ("CPU", "CPU:LLVM"))
    assert baselines.device_key(clang) == "CPU"
    assert baselines.device_key(llvm) == "CPU-LLVM"
    assert baselines.device_key({**machine, "device": "CL"}) == "CL-cpu"
    assert baselines.device_key({**machine, "device": "CUDA:1", "gpu": ["H100, 80 GiB"]}) == "CUDA-h100"
    other_cpu = {**machine, "cpu": "AMD EPYC 7763 64-Core Processor"}
    assert baselines.device_key({**other_cpu, "device": "CL"}) == "CL-cpu"  # the CPU model is never in the key
    assert run_key("mlp", "CPU") != run_key("mlp", "CPU:LLVM")


@pytest.mark.skipif(llvm_missing() is not None, reason=llvm_missing() or "")
def test_cpu_llvm_is_listed_and_described():
    info = devices.resolve("cpu:llvm")
    assert info.name == "CPU:LLVM" and info.renderer == "CPULLVMRenderer" and info.runs_on == "cpu"
    assert f"libLLVM {devices.llvm_version()}" in (info.description or "")
    assert "CPU:LLVM" in [d.name for d in devices.usable()]


@pytest.mark.skipif(llvm_missing() is not None, reason=llvm_missing() or "")
def test_cpu_llvm_trains_with_llvm_only_and_records_apart_from_cpu(small):
    """Every kernel the run compiles (steps, eval, the weights' hash) is for the LLVM renderer, none for clang:
    tinygrad picks the renderer from DEV when a kernel is first realized, so all of it must run under the
    device's DEV. tinygrad keys its in-process program cache by renderer type, so the new keys say which."""
    from tinygrad.codegen import to_program_cache

    from harness.gate import cost
    from harness.run import bench
    from harness.tg.spec import RunSpec

    devices.describe("CPU")  # opened first: opening the CPU device compiles its helper programs with clang
    before = set(to_program_cache)
    spec = RunSpec.defaults("mlp", steps=3, batch_size=16, eval_every=0, seed=11)
    record, _ = bench.run(bench.RunRequest(spec, device="CPU:LLVM", out_dir=None), mnist=small)
    assert record["device"]["name"] == "CPU:LLVM" and record["device"]["renderer"] == "CPULLVMRenderer"
    renderers = {key[1].__name__ for key in set(to_program_cache) - before}
    assert renderers == {"CPULLVMRenderer"}, renderers
    assert schema.errors(record, "run") == []
    assert cost.key_of(cost.key_fields("CPU:LLVM")) != cost.key_of(cost.key_fields("CPU"))


@pytest.mark.skipif(devices.opens("CL") is None, reason="no OpenCL device here (apt-get install pocl-opencl-icd)")
def test_cl_says_which_platform_device_and_driver():
    info = devices.describe("CL")
    assert info.description and info.description.startswith("OpenCL: ") and "driver " in info.description
    assert info.runs_on in ("cpu", "gpu", "accelerator", "other")


def test_the_recorded_compiler_is_the_one_that_compiles():
    """OpenCL's renderer hands its source on through tinygrad's base `Compiler`: the record named that
    ("Compiler"); the device's own compiler (CLCompiler, through the driver) is named instead."""
    from types import SimpleNamespace

    from tinygrad.device import Compiler

    from harness.tg.devices import _compiler

    class CLCompiler(Compiler):
        pass

    class ClangCompiler(Compiler):
        pass

    cl = SimpleNamespace(cl_compiler=CLCompiler(), other=1)
    assert _compiler(cl, SimpleNamespace(compiler=Compiler())) == "CLCompiler"
    assert _compiler(SimpleNamespace(), SimpleNamespace(compiler=ClangCompiler())) == "ClangCompiler"
    assert _compiler(SimpleNamespace(), SimpleNamespace(compiler=Compiler())) is None
