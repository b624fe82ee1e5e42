"""Where a fresh process's warm-up goes on OpenCL/PoCL: tinygrad's cache vs PoCL's kernel cache.

tinygrad caches each kernel's compiled program (for CL: the binary PoCL hands back) in its cache
database; PoCL compiles a kernel's work-group function for the CPU when the kernel is first launched
and keeps that in its own kernel cache. Each case runs the model's first steps (`mnist-bench MODEL
--steps 3`, so the jitted step is captured and the test set evaluated once) in a fresh process with
each cache either empty (a new folder) or filled by the run before, and reports the record's compile
time (the first two steps) and the process's wall time.

    python benchmarks/cl_warmup.py --model cnn -o results/cl-warmup/cnn.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = (  # (tinygrad cache, PoCL cache)
    ("empty", "empty"),
    ("warm", "warm"),
    ("warm", "empty"),
    ("empty", "warm"),
)


def run(model: str, device: str, tinygrad_db: Path, pocl_dir: Path, out: Path) -> dict:
    env = os.environ | {"CACHEDB": str(tinygrad_db), "POCL_CACHE_DIR": str(pocl_dir)}
    cmd = [sys.executable, "-m", "harness", model, "--device", device, "--steps", "3", "--eval-every", "0"]
    cmd += ["--no-assert-target", "--out-dir", str(out), "--format", "json"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise SystemExit(f"run failed ({done.returncode}): {done.stderr[-400:]}")
    record = json.loads(done.stdout)
    return {
        "process_wall_s": round(wall, 2),
        "compile_s": round(record["timings"]["compile_s"], 2),
        "first_eval_s": round(record["timings"]["eval_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--device", default="CL")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cl-warmup-") as tmp:
        root = Path(tmp)
        warm_db, warm_pocl = root / "warm.db", root / "warm-pocl"
        for i, (tg, pocl) in enumerate(CASES):
            # the first case starts from empty caches and fills the "warm" ones the later cases reuse
            db = warm_db if tg == "warm" or i == 0 else root / f"empty-{i}.db"
            pocl_dir = warm_pocl if pocl == "warm" or i == 0 else root / f"empty-pocl-{i}"
            row = {"tinygrad_cache": tg, "pocl_cache": pocl} | run(args.model, args.device, db, pocl_dir, root / "out")
            rows.append(row)
            print(json.dumps(row), flush=True)
    doc = {"model": args.model, "device": args.device, "steps": 3, "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
