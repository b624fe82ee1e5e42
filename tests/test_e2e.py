"""Real end-to-end runs with the default settings: they prove the accuracy targets (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import documents
from harness.documents import schema


@pytest.mark.slow
@pytest.mark.parametrize("model, target", [("mlp", 95.0), ("cnn", 98.0)])
def test_default_run_meets_its_target(model, target, tmp_path):
    exe = Path(sys.executable).parent / "mnist-bench"  # the console script next to this interpreter
    assert exe.exists(), "mnist-bench console script not installed"
    done = subprocess.run(
        [str(exe), model, "--out-dir", str(tmp_path), "--format", "json"], capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout)
    assert record["metrics"]["accuracy"] >= target and record["dataset"]["n_test"] == 10000
    assert record["status"] == "ok" and record["target"]["met"]
    (path,) = tmp_path.glob("*.json")
    assert schema.errors(documents.load(path, "run"), "run") == []
    print(
        f"{model}: {record['metrics']['accuracy']:.2f}% in {record['timings']['wall_s']:.1f} s wall, "
        f"step {record['timings']['step_time_s']['median'] * 1e3:.1f} ms"
    )
