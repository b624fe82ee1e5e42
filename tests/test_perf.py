"""benchmarks/perf.py without timing anything: its paths, its rounds over fresh processes (stubbed), its
document against schemas/perf.schema.json, and --rewrite of the committed perf files."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from benchmarks import perf
from harness import documents
from harness.documents import schema

REPO = Path(__file__).resolve().parent.parent


def test_a_path_names_its_dev_device_and_beam():
    llvm, beam, torch, gpu = (perf.PerfPath(n) for n in ("CPU:LLVM", "CL+BEAM", "torch", "CUDA:1"))
    assert (llvm.dev, llvm.device, llvm.beam, llvm.engine) == ("CPU:LLVM", "CPU:LLVM", False, "tinygrad")
    assert (beam.dev, beam.device, beam.beam) == ("CL", "CL", True)
    assert torch.engine == "torch" and gpu.device == "CUDA:1"


def test_default_paths_are_every_usable_one(monkeypatch):
    class D:
        def __init__(self, name):
            self.name = name

    monkeypatch.setattr(perf.devices, "usable", lambda: [D("CPU"), D("CL")])
    assert perf.default_paths(None, torch=True) == ["CPU", "CPU:LLVM", "CL", "torch"]
    assert perf.default_paths(1, torch=False) == ["CPU", "CPU:LLVM", "CL", "CPU+BEAM", "CL+BEAM"]
    with pytest.raises(SystemExit, match="need --beam"):
        perf.parse_paths("CPU,CPU+BEAM", None, torch=True)
    assert [p.name for p in perf.parse_paths("CL, CPU,CL", None, torch=True)] == ["CL", "CPU"]


def _args(**kw) -> argparse.Namespace:
    values = {
        "models": ["mlp"],
        "batch_sizes": [128],
        "steps": 5,
        "rounds": 2,
        "eval_reps": 1,
        "beam": 1,
        "torch_threads": 1,
        "torch_device": "cpu",
    }
    return argparse.Namespace(**{**values, **kw})


def fake_spawn(calls):
    """Each path's process, stubbed: CPU:LLVM does not open, CL+BEAM lacks a cached kernel."""

    def spawn(path, work, args, steps):
        calls.append((path.name, [tuple(w) for w in work], steps))
        if path.name == "CPU:LLVM":
            return {"skipped": "CPU does not open: RuntimeError: no libLLVM"}
        rows = []
        for model, bs in work:
            if path.beam:
                rows.append({"model": model, "batch_size": bs, "skipped": "BEAM=1 would search a kernel"})
                continue
            step = 0.01 if path.name == "torch" else 0.05
            rows.append(
                {
                    "model": model,
                    "batch_size": bs,
                    "compile_s": None if path.name == "torch" else 7.0,
                    "step_times": [step] * steps,
                    "eval_times": [0.5],
                }
            )
        info = {"engine": path.engine, "dev": path.dev, "name": path.device, "renderer": "ClangRenderer"}
        if path.engine == "torch":
            return {"info": info, "rows": rows, "matmul_gflops": None, "kernel_search": None}
        ks = {"beam": 1 if path.beam else 0, "searched": 0, "cached": 2, "search_s": 0.0}
        return {"info": info, "rows": rows, "matmul_gflops": None if path.beam else 7.0, "kernel_search": ks}

    return spawn


def test_rounds_rotate_the_paths_and_pool_every_step(monkeypatch):
    calls = []
    monkeypatch.setattr(perf, "spawn", fake_spawn(calls))
    paths = perf.parse_paths("CPU,CPU:LLVM,CL+BEAM,torch", 1, torch=True)
    doc = perf.measure_paths(paths, _args())
    info, rows, matmul = doc["paths"], doc["rows"], doc["tinygrad_matmul_gflops"]
    # round 1 in the given order; round 2 starts one later and skips what round 1 found unusable
    assert [c[0] for c in calls] == ["CPU", "CPU:LLVM", "CL+BEAM", "torch", "torch", "CPU"]
    assert all(c[2] == 3 for c in calls)  # 5 steps over 2 rounds: 3 each
    by_path = {r["path"]: r for r in rows}
    assert set(by_path) == {"CPU", "torch"} and by_path["CPU"]["step_s"]["n"] == 6
    assert doc["eval"]["mlp"]["CPU"]["n"] == 2 and by_path["torch"]["compile_s"] is None
    assert info["CPU:LLVM"]["skipped"].startswith("CPU does not open")
    assert info["CL+BEAM"]["skipped_rows"] == {"mlp BS 128": "BEAM=1 would search a kernel"}
    assert info["CPU"]["kernel_search"]["cached"] == 4 and matmul == {"CPU": 7.0}


def test_the_document_is_schema_valid_and_renders(monkeypatch, tmp_path):
    monkeypatch.setattr(perf, "spawn", fake_spawn([]))
    monkeypatch.setattr(perf, "numpy_matmul_peak", lambda: 100.0)
    args = _args(paths="CPU,CPU:LLVM,CL+BEAM,torch", no_torch=False, no_cold=True, no_target=True)
    doc = perf.run(args)
    assert schema.errors(doc, "perf") == []
    perf.save(tmp_path / "perf.json", doc)
    text = perf.markdown(doc)
    assert "| mlp | 128 | CPU | 50.0 (50.0-50.0) |" in text and "| 5.0x |" in text
    assert "| mlp | CPU | 500.0 (500.0-500.0) | 1.0x |" in text
    assert "CPU:LLVM: tinygrad DEV=CPU:LLVM; skipped: CPU does not open" in text
    assert "mlp BS 128 skipped: BEAM=1 would search" in text


def test_rewrite_keeps_the_committed_perf_files_valid(tmp_path):
    for f in sorted((REPO / "results" / "perf").glob("*.json")):
        shutil.copy(f, tmp_path / f.name)
    perf.rewrite(sorted(tmp_path.glob("*.json")))
    for f in tmp_path.glob("*.json"):
        assert documents.load(f, "perf")["schema_version"] == schema.SCHEMA_VERSION


def test_the_eval_is_timed_once_per_model_not_per_batch_size():
    work = [["mlp", 128], ["mlp", 256], ["cnn", 128], ["cnn", 512]]
    assert [perf._first_of_model(work, i) for i in range(4)] == [True, False, True, False]


def test_a_path_runs_in_a_real_child_process(tmp_path, monkeypatch):
    """`python -P -m benchmarks.perf --child` through harness.run.child, started from another folder: a path that
    does not open here comes back skipped with the child's reason; one over its time limit is stopped."""
    monkeypatch.chdir(tmp_path)
    args = _args(eval_reps=0)
    reply = perf.spawn(perf.PerfPath("NOSUCHDEV"), [["mlp", 128]], args, 1)
    assert reply["skipped"].startswith("NOSUCHDEV does not open: ")
    monkeypatch.setattr(perf, "CHILD_TIMEOUT_S", 0.05)  # importing tinygrad alone takes longer
    reply = perf.spawn(perf.PerfPath("NOSUCHDEV"), [["mlp", 128]], args, 1)
    assert reply == {"skipped": "NOSUCHDEV: its process gave no reply within 0.05 s and was stopped"}
