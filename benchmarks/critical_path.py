"""How long a pull request waits for its `verdict`: bench.yml's pull_request run replayed here at the workflow's
real settings (its own `env`, nothing shrunk), each job on a fresh runner (tests/workflow_replay.py: its own
clone, its own empty home, so every compile cache starts cold), the jobs one after another on this machine.

    python benchmarks/critical_path.py [--machine NAME] [--out results/critical-path/NAME.json]

It writes each job's wall time, the longest chain of `needs`, the load average before and after, and the
estimate for a hosted runner by the rule below.

    python benchmarks/critical_path.py --from /tmp/critical-path-XXXX/run

finishes a replay that was stopped part-way (kept with --keep; e.g. when a busy machine would take an hour for
three shards that each hold the same work, one MLP and one CNN run): the jobs it finished are timed by their
folders (each job's workspace is made as it starts, and jobs run one after another, so a job lasted from its
start to the next one's), the unfinished last one is dropped, and the PR's remaining jobs that need no more
shards (gate-compare, verdict) run now on its artifacts. A matrix job's time is its slowest entry that ran.

The rule, fixed before the first measurement (DERIVATION, copied into the result):
- On GitHub every job gets its own runner and jobs without a `needs` between them run at the same time, so
  the PR's time is the longest chain of `needs`: max(cost, ab, slowest gate shard + gate-compare) + verdict,
  over the jobs' measured seconds.
- Each job in that chain also pays the runner's own work, which the replay does not do: a runner picked up,
  checkout, setup-python, the .venv and compile caches restored, `.ci/setup`'s apt installs (clang, PoCL,
  libLLVM 19), artifacts up and down, cache saves. Estimated, not measured here: SETUP_S = 90 s a job.
- CPU speed: a 4-vCPU hosted runner is 2 physical cores with SMT, at least this 2-core VM's capacity; PoCL's
  CL kernels use every core, tinygrad's CPU backend (the A/B) about one. Central estimate: scale 1.0. Upper
  estimate: scale 1.5, for a runner slower per core (the AMD EPYC 7763 runs AVX2 where this CPU has
  AVX-512) and noisy neighbours. The goal (at most 10 minutes) is judged on the upper estimate.
- Compile caches cold in every job: the worst case (a first run, or a new CPU model); warm caches save
  about 45 s per CNN process (results/cl-warmup/).
- Jobs here ran one after another on a machine that other work may share: its load average is recorded, and
  any load beyond this replay only makes the measured seconds (and the estimate) larger.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.tg import env as harness_env  # noqa: E402
from tests.workflow_replay import Replay, git, load_workflow, pr_event, project_copy, pull_request_merge  # noqa: E402

PR_JOBS = ["cost", "ab", "gate-shard", "gate-compare", "verdict"]
SETUP_S = 90.0
SCALES = {"central": 1.0, "upper": 1.5}
GOAL_S = 600.0
DERIVATION = (
    "PR time = the longest chain of `needs` over the measured job seconds x scale, plus SETUP_S per job in that "
    "chain (runner start, checkout, setup-python, cache restores, .ci/setup's apt installs, artifacts, cache "
    f"saves; estimated, not measured: {SETUP_S:g} s). Scale 1.0 central (a 4-vCPU runner has at least this "
    "2-core VM's capacity), 1.5 upper (slower cores, AVX2 instead of AVX-512, neighbours). Caches cold. "
    "Goal: upper estimate <= 600 s."
)


def chain(workflow: dict, seconds: dict[str, float], jobs: list[str]) -> tuple[float, list[str]]:
    """The longest path through `needs` among `jobs`, a matrix job counted by its slowest entry."""

    def job_s(name: str) -> float:
        return max(s for label, s in seconds.items() if label == name or re.fullmatch(rf"{name}-\d+", label))

    best: dict[str, tuple[float, list[str]]] = {}
    for name in jobs:  # `jobs` is in `needs` order
        needs = workflow["jobs"][name].get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        before = max((best[n] for n in needs if n in best), default=(0.0, []))
        best[name] = (before[0] + job_s(name), [*before[1], name])
    return max(best.values())


def estimate(workflow: dict, seconds: dict[str, float], jobs: list[str]) -> dict:
    measured_s, path = chain(workflow, seconds, jobs)
    out = {"chain": path, "chain_measured_s": round(measured_s, 1), "setup_s_per_job": SETUP_S}
    for name, scale in SCALES.items():
        out[f"{name}_s"] = round(measured_s * scale + SETUP_S * len(path), 1)
    out["goal_s"] = GOAL_S
    out["goal_met"] = out["upper_s"] <= GOAL_S
    return out


def birth(path: Path) -> float:
    """When a folder was made (its birth time; Python 3.11's os.stat has none on Linux)."""
    text = subprocess.run(["stat", "-c", "%w", str(path)], capture_output=True, text=True, check=True).stdout.strip()
    stamp = datetime.strptime(text[:26] + text[29:], "%Y-%m-%d %H:%M:%S.%f %z")  # nanoseconds cut to micro
    return stamp.timestamp()


def seconds_from_folders(run: Path) -> dict[str, float]:
    """Each finished job's seconds, from one job's workspace being made to the next one's; the last is dropped."""
    starts = sorted((birth(p), p.name) for p in (run / "jobs").iterdir())
    return {label: nxt - start for (start, label), (nxt, _) in itertools.pairwise(starts)}


def machine_name() -> str:
    model = harness_env.cpu_model()
    return re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-") + f"-{os.cpu_count()}cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--machine", default=None, help="name of this machine in the result (default: CPU model)")
    parser.add_argument("--out", type=Path, default=None, help="result file (default results/critical-path/NAME.json)")
    parser.add_argument("--keep", action="store_true", help="keep the replay's folder and print where it is")
    parser.add_argument("--from", dest="stopped", type=Path, help="finish this stopped replay's run folder")
    args = parser.parse_args()
    machine = args.machine or machine_name()
    out = args.out or ROOT / "results" / "critical-path" / f"{machine}.json"

    workflow = load_workflow()
    if args.stopped:
        work, earlier = args.stopped.parent, seconds_from_folders(args.stopped)
        project = work / "project"
        merge = git(project, "rev-parse", "HEAD")
        base, head = git(project, "rev-parse", "HEAD^1"), git(project, "rev-parse", "HEAD^2")
        remaining = ["gate-compare", "verdict"]
    else:
        work, earlier, remaining = Path(tempfile.mkdtemp(prefix="critical-path-")), {}, PR_JOBS
        project, base = project_copy(work / "project")
        _moved, head, merge = pull_request_merge(
            project, base, ("NOTES.md", "a change that changes nothing measured\n")
        )
    replay = Replay(workflow, project, merge, work / "run", "pull_request", pr_event(base, head))
    load_before, started = os.getloadavg(), time.time()
    replay.run(only=remaining)
    load_after = os.getloadavg()
    replay.seconds = {**earlier, **replay.seconds}
    jobs = replay.order(PR_JOBS)
    failed = [(r.job, r.name, r.log[-1500:]) for r in replay.results if r.outcome == "failure"]
    result = {
        "machine": machine,
        "cpu": harness_env.cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tinygrad": version("tinygrad"),
        "event": "pull_request",
        "settings": {k: str(v) for k, v in workflow["env"].items()},
        "caches": "cold: every job its own empty home",
        "jobs_run": "one after another on this machine"
        + (
            f"; finished from a stopped replay ({args.stopped}), its jobs timed by their folders"
            if args.stopped
            else ""
        ),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "total_s": round(time.time() - started, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "job_seconds": {label: round(s, 1) for label, s in replay.seconds.items()},
        "job_results": replay.job_results,
        "failed_steps": failed,
        "derivation": DERIVATION,
        "estimate": estimate(workflow, replay.seconds, jobs),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: result[k] for k in ("job_seconds", "estimate", "load_average_before", "load_average_after")}))
    print(f"written {out}" + (f"; replay in {work}" if args.keep else ""))
    if not args.keep and not args.stopped:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
