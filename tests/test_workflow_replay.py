"""bench.yml, replayed: its `run:` steps in order on a copy of this project, for a pass, a regression and a
missing baseline (tests/workflow_replay.py does the replaying; tiny workloads through the workflow's env)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.workflow_replay import EXPR, Replay

yaml = pytest.importorskip("yaml")  # in the dev extras

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".github" / "workflows" / "bench.yml"
# the workload, shrunk: the smoke suite's MLP over 3 seeds (one run per shard, no CNN to compile), MLP cost
# only, a two-round MLP A/B with a rule loose enough that two rounds of noise never fail it (the A/B's real
# rule and workload are tested in test_continuous.py)
TINY = {
    "GATE_SUITE": "smoke",
    "GATE_ARGS": "--only mlp-* --seeds 0,1,2",
    "COST_MODELS": "mlp",
    "AB_ARGS": "--model mlp --rounds 2 --mlp-steps 2 --rule step_time:+300%",
}
# more work in every MLP step, too little to change a 3-step accuracy
MORE_WORK = (
    "harness/models.py",
    "        return x.sequential(self.layers)\n",
    "        return x.sequential(self.layers) + x.flatten(1).square().mean(axis=1, keepdim=True) * 1e-30\n",
)


def load_workflow() -> dict:
    doc = yaml.safe_load(BENCH.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def project_copy(dest: Path) -> tuple[Path, str]:
    """This working tree (tracked and untracked, not ignored) as a fresh repository with one commit."""
    files = git(ROOT, "ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    git(dest, "init", "-q", "-b", "main")
    return dest, commit(dest, "base")


def pr_event(base: str, head: str) -> dict:
    return {"pull_request": {"number": 1, "base": {"sha": base}, "head": {"sha": head, "repo": {"fork": False}}}}


# --- fast: the workflow's shape -------------------------------------------------------------------


def test_run_steps_take_their_inputs_from_env_only():
    """`${{ }}` inside a `run:` is a script-injection risk and cannot be replayed; env: blocks carry them."""
    for name, job in load_workflow()["jobs"].items():
        for step in job["steps"]:
            assert "run" not in step or not EXPR.search(step["run"]), f"{name}: {step.get('name')}"


def test_only_the_comment_and_publishing_jobs_can_write():
    wf = load_workflow()
    assert wf["permissions"] == {"contents": "read"}
    writers = {n for n, j in wf["jobs"].items() if any(v == "write" for v in j.get("permissions", {}).values())}
    assert writers == {"verdict", "history", "refresh-baselines"}
    assert wf["jobs"]["verdict"]["permissions"]["pull-requests"] == "write"
    assert "cancel-in-progress" in wf["concurrency"]


def test_expressions_evaluate_like_github(tmp_path):
    replay = Replay(load_workflow(), tmp_path, "h", tmp_path, "pull_request", pr_event("b", "h"))
    ctx = replay.context(tmp_path, {"shard": 2}, {"merge": {"outcome": "failure"}}, "success")
    assert replay.template("${{ github.event_name == 'pull_request' && 'accuracy:-0.3pp' || '' }}", ctx) == (
        "accuracy:-0.3pp"
    )
    assert replay.template("${{ github.event.pull_request.head.sha || github.sha }}", ctx) == "h"
    assert replay.template("shards/${{ matrix.shard }}", ctx) == "shards/2"
    assert replay.condition("github.event_name == 'pull_request' && !github.event.pull_request.head.repo.fork", ctx)
    assert replay.condition("steps.merge.outcome == 'failure'", ctx)
    assert not replay.condition("github.event_name == 'workflow_dispatch' && inputs.refresh_baselines", ctx)
    assert replay.condition("always() && hashFiles('nope.json') == ''", ctx)


# --- slow: the replay -----------------------------------------------------------------------------


def _comment(replay: Replay) -> str:
    return replay.file("verdict", "comment.md").read_text()


def _verdict_exit(replay: Replay) -> int:
    return replay.step("verdict", "Fail on a regression or a check without a result").returncode


@pytest.mark.slow
def test_replay_pull_request_no_baseline_pass_and_regression(tmp_path):
    project, base = project_copy(tmp_path / "project")
    (project / "NOTES.md").write_text("a change that changes nothing measured\n")
    head = commit(project, "head: docs only")
    wf = load_workflow()

    # 1. no gate baseline for this CPU and the smoke suite: every job runs; the verdict warns and passes
    first = Replay(wf, project, head, tmp_path / "run1", "pull_request", pr_event(base, head), env=TINY).run()
    failed = [(r.job, r.name, r.log[-2000:]) for r in first.results if r.outcome == "failure"]
    assert not failed, failed
    assert first.job_results == {
        "cost": "success",
        "ab": "success",
        "gate-shard": "success",
        "gate-compare": "success",
        "verdict": "success",
        "history": "skipped",
        "refresh-baselines": "skipped",
        "gate-gpu": "skipped",
    }
    comment = _comment(first)
    assert comment.startswith("<!-- mnist-bench-verdict -->\n") and "**PASS**" in comment
    assert ":warning: no baseline" in comment and "suite `smoke`" in comment
    assert ":white_check_mark: pass | mlp: 8 of 8 gated counts unchanged" in comment
    assert f"base `{base[:12]}`" in comment and _verdict_exit(first) == 0
    assert comment in first.summary("verdict")
    assert "mnist-bench compare: `smoke`" in first.summary("gate-compare")
    proposed = list((first.artifacts / "gate-results" / "proposed-baselines").glob("*/smoke.json"))
    assert len(proposed) == 1

    # 2. that proposed baseline committed: the same results now compare and pass (shards reused as artifacts)
    dest = project / "results" / "baselines" / proposed[0].parent.name
    dest.mkdir(parents=True, exist_ok=True)  # the committed baselines may already hold this key
    shutil.copy2(proposed[0], dest / "smoke.json")
    with_baseline = commit(project, "smoke baseline for this CPU")
    second = Replay(wf, project, with_baseline, tmp_path / "run1", "pull_request", pr_event(base, with_baseline))
    second.env = TINY
    second.run(only=["gate-compare", "verdict"])
    comment = _comment(second)
    assert "**PASS**" in comment and "no baseline" not in comment, comment
    assert re.search(
        r"Accuracy and targets \(gate suite\) \| :white_check_mark: pass \| suite `smoke`; mlp-tiny", comment
    )
    assert json.loads(second.file("gate-compare", "checks/gate.json").read_text())["rules"] == ["accuracy:-0.3pp"]
    assert _verdict_exit(second) == 0

    # 3. a head that does more work per MLP step: the cost job fails, the verdict says so and fails
    path, old, new = MORE_WORK
    (project / path).write_text((project / path).read_text().replace(old, new))
    slower = commit(project, "more work")
    third = Replay(wf, project, slower, tmp_path / "run1", "pull_request", pr_event(base, slower), env=TINY)
    third.run(only=["cost", "gate-compare", "verdict"])
    assert third.job_results["cost"] == "failure"
    assert third.step("cost", "Cost counts against the committed baseline").returncode == 1
    comment = _comment(third)
    assert "**REGRESSION**" in comment and ":x: REGRESSION" in comment
    assert re.search(r"- :x: cost: mlp train_step\.flops: [\d,]+ -> [\d,]+", comment), comment
    assert _verdict_exit(third) == 1 and third.job_results["verdict"] == "failure"
