"""Do tinygrad's cost counts depend on the seed, the process, the compile cache or the CPU threads?

Runs `harness.gate.cost.measure` for each model's default spec in fresh processes under each condition and
prints one table row per measurement, then per model whether every gated count and the kernel list
matched the first row. Usage (from the repository root):

    python benchmarks/cost_determinism.py [--models mlp,cnn] [--out results/cost]

Conditions: seeds 0, 1, 2 in each of two processes; a cold compile cache (an empty CACHEDB); one CPU
visible (`taskset -c 0`, which tinygrad reads as NUM_CPU_THREADS=1); NUM_CPU_THREADS=4 (a 4-core runner).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's harness, not an installed one

from harness.base.metrics import COUNTS

GATED = tuple(m.name for m in COUNTS)  # the cost gate's counts, by the registry's names
EXTRA = ("kernel_list", "peak_bytes")


def worker(model: str, seeds: list[int]) -> None:
    from harness.gate import cost
    from harness.tg import counters
    from harness.tg import data as mnist_data
    from harness.tg.spec import RunSpec

    data = mnist_data.load()
    for seed in seeds:
        p = cost.measure(RunSpec.defaults(model, seed=seed), data, "CPU")
        names = json.dumps([[k["name"], k["ops"], k["bytes"]] for k in p["kernels"]]).encode()
        row = {
            "model": model,
            "seed": seed,
            "threads": counters.cpu_threads(),
            **{m.name: m.of_profile(p) for m in COUNTS},
            "peak_bytes": p["memory"]["peak_bytes"],
            "kernel_list": hashlib.sha256(names).hexdigest()[:12],
            "warmup_s": round(p["compile"]["warmup_s"], 1),
        }
        print("ROW " + json.dumps(row), flush=True)


def spawn(condition: str, model: str, seeds: list[int], env: dict[str, str], prefix: list[str]) -> list[dict]:
    cmd = [*prefix, sys.executable, __file__, "--worker", model, ",".join(map(str, seeds))]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{condition} {model}: exit {out.returncode}\n{out.stderr[-2000:]}")
    rows = [json.loads(line[4:]) for line in out.stdout.splitlines() if line.startswith("ROW ")]
    for row in rows:
        row["condition"], row["process_s"] = condition, round(time.perf_counter() - t0, 1)
    return rows


def conditions(tmp: Path) -> list[tuple[str, list[int], dict[str, str], list[str]]]:
    taskset = ["taskset", "-c", "0"] if shutil.which("taskset") else None
    out = [
        ("process 1", [0, 1, 2], {}, []),
        ("process 2", [0, 1, 2], {}, []),
        ("cold cache", [0], {"CACHEDB": str(tmp / "empty.db")}, []),
        ("NUM_CPU_THREADS=4", [0], {"NUM_CPU_THREADS": "4"}, []),
    ]
    if taskset:
        out.append(("taskset -c 0", [0], {}, taskset))
    return out


def table(rows: list[dict]) -> str:
    cols = ("model", "condition", "seed", "threads", *GATED, *EXTRA, "warmup_s")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += [
        "| " + " | ".join(f"{r[c]:,}" if isinstance(r[c], int) and c != "seed" else str(r[c]) for c in cols) + " |"
        for r in rows
    ]
    return "\n".join(lines)


def verdicts(rows: list[dict]) -> list[str]:
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        ref = mine[0]
        for r in mine[1:]:
            diff = [c for c in (*GATED, *EXTRA) if r[c] != ref[c]]
            if diff:
                out.append(
                    f"{model} {r['condition']} seed {r['seed']} (threads {r['threads']}): differs in "
                    + ", ".join(f"{c} {ref[c]} -> {r[c]}" for c in diff)
                )
        if not any(line.startswith(f"{model} ") for line in out):
            out.append(f"{model}: all {len(mine)} measurements identical")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "SEEDS"), help=argparse.SUPPRESS)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--out", type=Path, help="Folder for determinism.json and determinism.md.")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], [int(s) for s in args.worker[1].split(",")])
        return
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            for name, seeds, env, prefix in conditions(Path(tmp)):
                rows += spawn(name, model, seeds, env, prefix)
                print(f"{model} {name}: {len(seeds)} measurement(s), {rows[-1]['process_s']} s", file=sys.stderr)
    text = table(rows) + "\n\n" + "\n".join(f"- {v}" for v in verdicts(rows)) + "\n"
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "determinism.json").write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")
        (args.out / "determinism.md").write_text(text)


if __name__ == "__main__":
    main()
