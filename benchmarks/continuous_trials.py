"""False-alarm rate and power of `mnist-bench continuous`, measured with repeated trials on this machine.

Each trial is one `mnist-bench continuous REV REV` (the same commit on both sides, default workload and
rule). Every process of the trial runs on CPU 1; while the trials run, a sweeper moves every other
thread on the machine to CPU 0, so other work (on a shared machine) competes for the memory system but
not for the core. With `--quota Q`, the head side's process runs in a cgroup (v1 `cpu` controller)
that may use only Q of the core (CFS bandwidth, 10 ms period): a real slowdown of every head step,
made by the kernel's scheduler, not by our code. Q = 0.833 makes each step about 20% slower, Q = 0.909
about 10%. Needs root and a writable /sys/fs/cgroup/cpu.

    python benchmarks/continuous_trials.py --trials 20 --out results/continuous-trials/aa
    python benchmarks/continuous_trials.py --trials 10 --quota 0.833 --out results/continuous-trials/slow20
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

TRIAL_CPU, OTHER_CPU = 1, 0
CGROUP = Path("/sys/fs/cgroup/cpu/mnist-bench-head")
PERIOD_US = 10_000


def sweep_others(stop: threading.Event) -> None:
    """Move every thread not already confined to the trial CPU onto the other CPU, once a second."""
    both = {OTHER_CPU, TRIAL_CPU}
    while not stop.wait(1.0):
        for task in Path("/proc").glob("[0-9]*/task/[0-9]*"):
            try:
                tid = int(task.name)
                if os.sched_getaffinity(tid) == both:
                    os.sched_setaffinity(tid, {OTHER_CPU})
            except (OSError, ValueError):
                pass  # gone, or a kernel thread that cannot move


def head_prefix(quota: float | None) -> str:
    if quota is None:
        return ""
    CGROUP.mkdir(exist_ok=True)
    (CGROUP / "cpu.cfs_period_us").write_text(str(PERIOD_US))
    (CGROUP / "cpu.cfs_quota_us").write_text(str(round(quota * PERIOD_US)))
    return shlex.join(["sh", "-c", f'echo $$ > {CGROUP}/cgroup.procs && exec "$@"', "sh"])


def trial(repo: Path, rev: str, out: Path, quota: float | None) -> dict:
    cmd = [sys.executable, "-m", "harness", "continuous", rev, rev, "--repo", str(repo), "--format", "json"]
    cmd += ["-o", str(out)]
    cmd += ["--head-prefix", head_prefix(quota)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"trial failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return json.loads(out.read_text())


def row(i: int, doc: dict) -> str:
    cells = [str(i), doc["verdict"].upper()]
    for r in doc["rows"]:
        p = "-" if r["p_value"] is None else f"{r['p_value']:.2g}"
        cells.append(f"{r['config']} {r['delta_pct']:+.1f}% (p={p})")
    cells.append(f"{doc['workload']['wall_s']:.0f} s")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--quota", type=float, help="share of the core the head side may use (default: all)")
    parser.add_argument("--rev", default="HEAD", help="the commit on both sides")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the git repository (default: here)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    git = ["git", "-C", str(args.repo), "rev-parse", args.rev]
    rev = subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()
    args.out.mkdir(parents=True, exist_ok=True)
    os.sched_setaffinity(0, {TRIAL_CPU})  # inherited by every process of the trial
    stop = threading.Event()
    threading.Thread(target=sweep_others, args=(stop,), daemon=True).start()
    lines = ["| trial | verdict | mlp | cnn | wall |", "|---|---|---|---|---|"]
    flagged = 0
    started = time.time()
    for i in range(1, args.trials + 1):
        doc = trial(args.repo, rev, args.out / f"trial-{i:02d}.json", args.quota)
        flagged += doc["verdict"] == "regression"
        lines.append(row(i, doc))
        print(lines[-1], flush=True)
    stop.set()
    arrangement = "A/A" if args.quota is None else f"head limited to {args.quota:g} of the core"
    lines += [
        "",
        f"{flagged} of {args.trials} trials flagged a regression ({arrangement}; commit {rev[:12]}; "
        f"{(time.time() - started) / 60:.1f} min)",
    ]
    (args.out / "trials.md").write_text("\n".join(lines) + "\n")
    print(lines[-1])


if __name__ == "__main__":
    main()
