"""Speed benchmark: step time, samples/s, achieved GFLOP/s against the machine's matmul peak,
compile time cold and warm, time to target from a cold process, and PyTorch as a reference.

    python benchmarks/perf.py                       # everything, all usable devices
    python benchmarks/perf.py --models mlp --batch-sizes 128 --steps 20 --no-cold
    python benchmarks/perf.py -o results/perf/cpu.json --markdown
    python benchmarks/perf.py --rewrite results/perf/*.json   # bring stored files to the current schema

The JSON is a `perf` document (schemas/perf.schema.json, validated on write), versioned with the
harness's `schema_version` like every other file it writes.

Numbers are medians over the timed steps after warm-up (p10-p90 shown); the device is synchronised
before every clock read. Not part of the test suite: timings belong in benchmarks, not in tests.
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

import numpy as np

from harness import data, devices, env, models, results, schema, stats, train
from harness.spec import DEFAULTS, RunSpec

HARNESS = [sys.executable, "-m", "harness"]
KIND = "perf"
LEGACY_SCHEMA = "mnist-bench-perf/1"  # the tag files carried before they had a schema_version
TRAIN_FLOPS_FACTOR = 3  # forward + backward (input and weight gradients) ~ 3x the forward pass


def numpy_matmul_peak(n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of a float32 n x n matmul in NumPy's BLAS: the machine's practical peak."""
    a, b = np.random.rand(n, n).astype(np.float32), np.random.rand(n, n).astype(np.float32)
    a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / float(np.median(times)) / 1e9


def tinygrad_matmul_peak(device: str, n: int = 1024, reps: int = 10) -> float:
    from tinygrad import Tensor, TinyJit

    with devices.running_on(device):  # a renderer in the name (CPU:LLVM) is picked through DEV
        on = devices.tinygrad_device(device)
        a, b = Tensor.rand(n, n, device=on).realize(), Tensor.rand(n, n, device=on).realize()
        mm = TinyJit(lambda: (a @ b).realize())
        for _ in range(3):
            mm()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            mm().numpy()
            times.append(time.perf_counter() - t0)
    return 2 * n**3 / float(np.median(times)) / 1e9


def tinygrad_steps(model: str, mnist, device: str, batch_size: int, steps: int) -> dict:
    spec = RunSpec.defaults(model, batch_size=batch_size, steps=train.WARMUP_STEPS + steps)
    trainer = train.Trainer(spec, mnist, device)
    order = train.batch_order(0, len(mnist.y_train), batch_size, spec.steps)
    times = []
    for indices in order:
        t0 = time.perf_counter()
        trainer.step(indices)
        times.append(time.perf_counter() - t0)
    return {"compile_s": sum(times[: train.WARMUP_STEPS]), "step_s": stats.percentiles(times[train.WARMUP_STEPS :])}


def cli_run(model: str, extra: list[str], env_vars: dict[str, str]) -> tuple[dict, float]:
    """A fresh `mnist-bench` process; returns (its result record, process wall seconds)."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        done = subprocess.run(
            [*HARNESS, model, "--out-dir", out, "--format", "json", "--no-assert-target", *extra],
            capture_output=True,
            text=True,
            env={**os.environ, **env_vars},
            check=False,
        )
        wall = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout), wall


def compile_cold_warm(model: str, batch_size: int) -> dict:
    """First-steps time with an empty tinygrad cache, then again with the cache it filled."""
    with tempfile.TemporaryDirectory() as cache:
        env_vars = {"CACHEDB": str(Path(cache) / "cache.db")}
        args = ["--steps", "3", "--bs", str(batch_size), "--eval-every", "0"]
        cold, _ = cli_run(model, args, env_vars)
        warm, _ = cli_run(model, args, env_vars)
    return {"cold_s": cold["timings"]["compile_s"], "warm_s": warm["timings"]["compile_s"]}


def to_target_cold_process(model: str) -> dict:
    record, wall = cli_run(model, [], {})
    return {
        "process_wall_s": wall,
        "time_to_target_s": record["metrics"]["time_to_target_s"],
        "steps_to_target": record["metrics"]["steps_to_target"],
        "accuracy": record["metrics"]["accuracy"],
        "config": {k: record["config"][k] for k in ("lr", "batch_size", "steps")},
    }


def run(args: argparse.Namespace) -> dict:
    import torch_reference

    torch_reference.set_threads(args.torch_threads)
    mnist = data.load()
    device_names = args.device or [d.name for d in devices.usable()]
    out = {
        "schema_version": schema.SCHEMA_VERSION,
        "kind": KIND,
        "created_at": results.utc_now(),
        "environment": env.fingerprint(),
        "settings": {"steps": args.steps, "batch_sizes": args.batch_sizes},
        "numpy_matmul_gflops": numpy_matmul_peak(),
        "torch_version": torch_reference.version(),
        "rows": [],
        "compile": {},
        "to_target": {},
    }
    for device in device_names:
        out.setdefault("tinygrad_matmul_gflops", {})[device] = tinygrad_matmul_peak(device)
        for model in args.models:
            flops = models.forward_flops(model, {}) * TRAIN_FLOPS_FACTOR
            for bs in args.batch_sizes:
                row = {
                    "device": device,
                    "model": model,
                    "batch_size": bs,
                    "engine": "tinygrad",
                    **tinygrad_steps(model, mnist, device, bs, args.steps),
                }
                out["rows"].append(_derived(row, flops))
                print(json.dumps(out["rows"][-1]), file=sys.stderr)
    if out["torch_version"] and not args.no_torch:
        for model in args.models:
            flops = models.forward_flops(model, {}) * TRAIN_FLOPS_FACTOR
            for bs in args.batch_sizes:
                times = torch_reference.step_times(
                    model, mnist.x_train, mnist.y_train, bs, args.steps, device=args.torch_device
                )
                out["rows"].append(
                    _derived(
                        {
                            "device": args.torch_device.upper(),
                            "model": model,
                            "batch_size": bs,
                            "engine": "torch",
                            "compile_s": None,
                            "step_s": stats.percentiles(times),
                        },
                        flops,
                    )
                )
                print(json.dumps(out["rows"][-1]), file=sys.stderr)
    if not args.no_cold:
        for model in args.models:
            default_bs = DEFAULTS[model]["batch_size"]
            out["compile"][model] = compile_cold_warm(model, default_bs)
            if not args.no_target:
                out["to_target"][model] = to_target_cold_process(model)
            print(json.dumps({model: [out["compile"][model], out["to_target"].get(model)]}), file=sys.stderr)
    return out


def _derived(row: dict, train_flops_per_sample: int) -> dict:
    median = row["step_s"]["median"]
    row["samples_per_s"] = row["batch_size"] / median
    row["gflops"] = train_flops_per_sample * row["batch_size"] / median / 1e9
    return row


def markdown(out: dict) -> str:
    rows = out["rows"]
    peak = out["numpy_matmul_gflops"]
    lines = [
        "| model | BS | engine | step ms (median, p10-p90) | samples/s | GFLOP/s | % of matmul peak | vs torch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    torch_median = {(r["model"], r["batch_size"]): r["step_s"]["median"] for r in rows if r["engine"] == "torch"}
    for r in rows:
        s = r["step_s"]
        ref = torch_median.get((r["model"], r["batch_size"]))
        ratio = f"{s['median'] / ref:.1f}x" if ref and r["engine"] != "torch" else "-"
        lines.append(
            f"| {r['model']} | {r['batch_size']} | {r['engine']} {r['device']} | {s['median'] * 1e3:.1f} "
            f"({s['p10'] * 1e3:.1f}-{s['p90'] * 1e3:.1f}) | {r['samples_per_s']:.0f} | {r['gflops']:.1f} "
            f"| {100 * r['gflops'] / peak:.0f}% | {ratio} |"
        )
    lines.append("")
    lines.append(
        f"Matmul peak (NumPy float32 2048^3): {peak:.0f} GFLOP/s; tinygrad 1024^3: "
        + ", ".join(f"{d} {g:.0f} GFLOP/s" for d, g in out.get("tinygrad_matmul_gflops", {}).items())
    )
    for model, c in out["compile"].items():
        t = out["to_target"][model]
        lines.append(
            f"- {model}: compile + warm-up {c['cold_s']:.1f} s cold, {c['warm_s']:.1f} s with a warm cache; "
            f"defaults ({t['config']}) reach the target at step {t['steps_to_target']} after "
            f"{t['time_to_target_s'] or float('nan'):.1f} s of training; whole process "
            f"{t['process_wall_s']:.1f} s, final accuracy {t['accuracy']:.2f}%"
        )
    env_ = out["environment"]
    lines.append(
        f"- machine: {env_['cpu']['model']}, {env_['cpu']['cores']} cores; tinygrad "
        f"{env_['packages']['tinygrad']} {env_['tinygrad_env'] or '(default settings)'}; "
        f"torch {out['torch_version']}"
    )
    return "\n".join(lines)


def save(path: Path, doc: dict) -> Path:
    """Validate against schemas/perf.schema.json and write atomically (sorted keys, trailing newline)."""
    return results.write_validated(path, doc, KIND)


def upgrade(doc: dict, origin: str) -> dict:
    """A stored perf document at the current schema_version: a file from before perf documents were
    versioned (tagged `schema: mnist-bench-perf/1`) becomes version 2 (the same fields, kind `perf`);
    anything else goes through the harness's migrations."""
    if doc.get("schema") == LEGACY_SCHEMA and "schema_version" not in doc:
        doc = {k: v for k, v in doc.items() if k != "schema"}
        doc.update(schema_version=2, kind=KIND)
    return results.upgrade(doc, origin)


def rewrite(paths: list[Path]) -> None:
    """Read stored perf files, bring them to the current schema and write them back through save()."""
    for path in paths:
        save(path, upgrade(results.read_json(path), str(path)))
        print(f"{path}: ok", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=lambda s: s.split(","), default=["mlp", "cnn"])
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[128, 256, 512])
    parser.add_argument("--steps", type=int, default=20, help="timed steps after warm-up")
    parser.add_argument("--device", action="append", help="tinygrad device (repeatable; default: all usable)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    parser.add_argument("--torch-threads", type=int, default=1, help="PyTorch intra-op threads (default 1)")
    parser.add_argument("--torch-device", default="cpu", help="PyTorch device for the reference, e.g. cuda")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-process compile and target runs")
    parser.add_argument("--no-target", action="store_true", help="skip the cold-process runs to the target")
    parser.add_argument("-o", "--output", "--json", dest="output", type=Path, help="write the perf JSON here")
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    parser.add_argument("--rewrite", nargs="+", type=Path, metavar="FILE", help="upgrade stored perf JSON files")
    args = parser.parse_args()
    if args.rewrite:
        rewrite(args.rewrite)
        return
    out = run(args)
    if args.output:
        save(args.output, out)
    print(markdown(out) if args.markdown else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
