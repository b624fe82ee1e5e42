"""What the PoCL cache lock (harness/tg/pocl.py) costs on a warm cache, where it has nothing to protect.

Rule, fixed before the first trial: the lock stays if, on warm caches, (1) the median wall time of a lone
default `mnist-bench mlp` process with the lock is within 2% of the median without it, and (2) the median
wall time of two such processes started together (the later one's end) is within 5% of the same without it.
Otherwise the next design to try is a private cache per process, published into the shared one.

Workload: the default MLP run on CL (200 steps, 4 evals of the 10,000 test images), each in a fresh process,
after one run that fills both caches; lone runs alternate lock / no lock for --rounds rounds, then pairs do.
"Without the lock" is the same CLI with `harness.tg.pocl.guard` made a no-op, which is safe only on a warm
cache. A locked process also reports how long it held and waited for the lock.

    python benchmarks/pocl_lock.py --rounds 5 -o results/pocl-lock/warm.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the CLI, with the guard off when asked, and the lock's counters on stderr's last line at exit
CHILD = """
import atexit, json, sys
from harness.tg import pocl
if sys.argv.pop(1) == "off":
    pocl.guard = lambda: None
def report():
    lock = pocl._lock
    counts = {"held_s": lock.held_s, "waited_s": lock.waited_s, "acquisitions": lock.acquisitions} if lock else {}
    print("POCL_LOCK " + json.dumps(counts), file=sys.stderr)
atexit.register(report)
from harness.cli import main
main()
"""


def start(mode: str, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-c", CHILD, mode, "mlp", "--device", "CL", "--out-dir", str(out), "--format", "json"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def finish(proc: subprocess.Popen, t0: float) -> dict:
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}): {stderr[-400:]}")
    lk = json.loads(stderr.rsplit("POCL_LOCK ", 1)[1])
    record = json.loads(stdout)
    metrics = record["metrics"]
    return {"wall_s": round(wall, 3), "accuracy": metrics["accuracy"], "weights": metrics["weights_sha256"], "lock": lk}


def lone(mode: str, out: Path) -> dict:
    t0 = time.perf_counter()
    return {"mode": mode, "kind": "lone"} | finish(start(mode, out), t0)


def pair(mode: str, out: Path) -> dict:
    t0 = time.perf_counter()
    procs = [start(mode, out / str(i)) for i in range(2)]
    runs = [finish(p, t0) for p in procs]
    return {"mode": mode, "kind": "pair", "wall_s": max(r["wall_s"] for r in runs), "runs": runs}


def verdict(rows: list[dict]) -> dict:
    def median(kind: str, mode: str) -> float:
        return statistics.median(r["wall_s"] for r in rows if r["kind"] == kind and r["mode"] == mode)

    lone_rise = median("lone", "on") / median("lone", "off") - 1
    pair_rise = median("pair", "on") / median("pair", "off") - 1
    return {
        "lone_rise": round(lone_rise, 4),
        "pair_rise": round(pair_rise, 4),
        "keep_lock": lone_rise <= 0.02 and pair_rise <= 0.05,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pocl-lock-") as tmp:
        out = Path(tmp)
        lone("on", out)  # fills tinygrad's and PoCL's caches; not counted
        for kind in (lone, pair):
            for i in range(args.rounds):
                for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                    rows.append(kind(mode, out))
                    print(json.dumps(rows[-1]), flush=True)
    doc = {"workload": "mnist-bench mlp --device CL (defaults), warm caches", "rows": rows} | verdict(rows)
    print(json.dumps(verdict(rows)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
