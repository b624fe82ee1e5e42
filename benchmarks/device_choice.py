"""Which device should `mnist-bench cnn` use on a machine without a GPU? A measurement, not a guess.

The rule, fixed before the first trial ran:

- Paths: tinygrad's `CPU` backend (clang) and `CL` (OpenCL on PoCL, which runs on the CPU).
- Work: each model's default run (`mnist-bench mlp` / `mnist-bench cnn`, the gate's per-seed work),
  seeds 0, 1, 2, each in a fresh process, after `mnist-bench warmup` has filled the caches for both
  devices (the documented warm-up). Paths alternate within a seed, the first path alternating by seed.
- Metric: wall time of the whole process as a user waits for it (start-up, compile, training, every
  evaluation, writing the record), measured outside the process. Time to target with evaluation is
  recorded beside it.
- Decision: the CNN decides (it is the main job). The default is the path with the lower median wall
  time over the 3 seeds, provided every seed of that path reaches the target. Within 5% of each other,
  CPU stays the default (fewer moving parts). The MLP result is reported, not decisive.

    python benchmarks/device_choice.py --out results/device-choice
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness.tg.spec import TARGETS

PATHS = ("CPU", "CL")
MODELS = ("mlp", "cnn")
SEEDS = (0, 1, 2)
TIE = 0.05


def mnist_bench(*args: str, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=capture, text=True, check=False)


def one_run(model: str, device: str, seed: int, out: Path) -> dict:
    run_dir = out / "runs" / f"{model}-{device}-seed{seed}"
    t0 = time.perf_counter()
    done = mnist_bench(model, "--device", device, "--seed", str(seed), "--out-dir", str(run_dir), "--format", "json")
    wall = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise SystemExit(f"{model} on {device} seed {seed} failed (exit {done.returncode}): {done.stderr[-400:]}")
    record = json.loads(done.stdout)
    metrics = record["metrics"]
    return {
        "model": model,
        "device": device,
        "seed": seed,
        "process_wall_s": round(wall, 2),
        "accuracy": metrics["accuracy"],
        "time_to_target_with_eval_s": metrics.get("time_to_target_with_eval_s"),
        "compile_s": round(record["timings"]["compile_s"], 2),
        "eval_s": round(record["timings"]["eval_s"], 2),
        "step_median_s": record["timings"]["step_time_s"]["median"],
        "weights_sha256": metrics["weights_sha256"],
    }


def decide(rows: list[dict], model: str = "cnn") -> dict:
    walls = {p: [r["process_wall_s"] for r in rows if r["model"] == model and r["device"] == p] for p in PATHS}
    hits = {
        p: all(r["accuracy"] >= TARGETS[model] for r in rows if r["device"] == p and r["model"] == model) for p in PATHS
    }
    medians = {p: statistics.median(w) for p, w in walls.items() if w}
    fastest = min((p for p in medians if hits[p]), key=medians.get, default=None)
    if fastest and fastest != "CPU" and hits["CPU"] and medians[fastest] > (1 - TIE) * medians["CPU"]:
        fastest = "CPU"
    return {"model": model, "median_wall_s": medians, "all_seeds_reach_target": hits, "default": fastest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    warm = mnist_bench("warmup", *(a for p in PATHS for a in ("--device", p)))
    if warm.returncode:
        raise SystemExit(f"warm-up failed: {warm.stderr[-400:]}")
    rows = []
    for seed in SEEDS:
        order = PATHS if seed % 2 == 0 else PATHS[::-1]
        for model in MODELS:
            for device in order:
                rows.append(one_run(model, device, seed, args.out))
                print(json.dumps(rows[-1]), flush=True)
                (args.out / "trial.json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    verdict = {m: decide(rows, m) for m in MODELS}
    (args.out / "trial.json").write_text(json.dumps({"rows": rows, "decision": verdict}, indent=1) + "\n")
    print(json.dumps(verdict, indent=1))


if __name__ == "__main__":
    main()
