"""bench.yml, replayed: its steps in order on a copy of this project (tests/workflow_replay.py does the replaying;
tiny workloads through the workflow's env). Slow: a pull request with no baseline, a pass and a cost regression;
three gate shards on three CPU identities (bit-identical, then a 1 pp drop caught); each job kind caching its own
kernels with GitHub's cache semantics; the refresh flow. Fast: the PR comment across runs under node (a rerun, a
person's marker comment, a crashed verdict, a fork, a superseded run cancelled mid-way), budgets on a slow VM, the
cache store's rules, and the workflow's shape: what runs on a cancelled run, which base the A/B times against,
what main gates, the pinned actions and runner image, the per-job compile caches, the refresh job's inputs."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import pytest

from harness.gate import rules, verdict
from harness.tg.env import cpu_key
from tests.workflow_replay import (
    EXPR,
    NODE_MODULES,
    CacheStore,
    Replay,
    StepResult,
    commit,
    load_workflow,
    pr_event,
    project_copy,
    pull_request_merge,
)

yaml = pytest.importorskip("yaml")  # in the dev extras

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
BENCH = WORKFLOWS / "bench.yml"
SETUP_ACTION = ROOT / ".github" / "actions" / "setup" / "action.yml"
# The majors pinned, each checked to declare `runs.using: node24` (hosted runners dropped Node 20 on
# 2026-09-16); README "Gating in CI" says how. upload-artifact v5 and download-artifact v5/v6 still run on node20.
NODE24_MAJORS = {
    "actions/checkout": "v7",
    "actions/setup-python": "v7",
    "actions/setup-node": "v7",
    "actions/cache": "v5",
    "actions/upload-artifact": "v7",
    "actions/download-artifact": "v8",
    "actions/github-script": "v8",
    "peter-evans/create-pull-request": "v8",
    "benchmark-action/github-action-benchmark": "v1",
}
# the workload, shrunk: the smoke suite's MLP over 3 seeds (one run per shard, no CNN to compile), MLP cost
# only, a two-round MLP A/B with a rule loose enough that two rounds of noise never fail it (the A/B's real
# rule and workload are tested in test_continuous.py)
TINY = {
    "GATE_SUITE": "smoke",
    "GATE_ARGS": "--only mlp-* --seeds 0,1,2",
    "COST_MODELS": "mlp",
    "AB_ARGS": "--model mlp --rounds 2 --mlp-steps 2 --rule step_time_s:+300%",
}
# more work in every MLP step, too little to change a 3-step accuracy
MORE_WORK = (
    "harness/tg/models.py",
    "        return x.sequential(self.layers)\n",
    "        return x.sequential(self.layers) + x.flatten(1).square().mean(axis=1, keepdim=True) * 1e-30\n",
)


def all_steps() -> list[tuple[str, dict]]:
    """(where, step) for every step of both workflows and of the setup action."""
    out = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name, job in load_workflow(path)["jobs"].items():
            out += [(f"{path.name}:{name}", step) for step in job.get("steps", [])]
    return out + [("setup action", step) for step in yaml.safe_load(SETUP_ACTION.read_text())["runs"]["steps"]]


# --- fast: the workflow's shape -------------------------------------------------------------------


def test_run_steps_take_their_inputs_from_env_only():
    """`${{ }}` inside a `run:` is a script-injection risk and cannot be replayed; env: blocks carry them."""
    for name, job in load_workflow()["jobs"].items():
        for step in job["steps"]:
            assert "run" not in step or not EXPR.search(step["run"]), f"{name}: {step.get('name')}"


def test_a_cancelled_run_runs_nothing_more():
    """`always()` runs on a cancelled run too: a superseded run would edit the PR comment to INCOMPLETE."""
    wf = load_workflow()
    conditions = [str(x.get("if", "")) for j in wf["jobs"].values() for x in (j, *j["steps"])]
    assert not [c for c in conditions if "always()" in c]
    for name in ("gate-compare", "verdict", "history"):
        assert "!cancelled()" in wf["jobs"][name]["if"], name
    assert wf["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_main_gates_accuracy_and_exact_counts_never_wall_clock():
    """Every hosted job is another VM: the gate compares accuracy only, whatever the event."""
    wf = load_workflow()
    assert wf["env"]["GATE_RULES"] == "accuracy:-0.3pp"
    compare = next(
        s for s in wf["jobs"]["gate-compare"]["steps"] if s.get("name") == "Compare with the committed baseline"
    )
    assert "GATE_RULES" not in compare.get("env", {})  # no per-event override
    # a given rule only replaces its metric's default: without --only-rules the step-time default would
    # compare wall-clock across VMs again
    assert "--only-rules" in compare["run"]
    assert "history" in wf["jobs"] and wf["jobs"]["history"]["needs"] == ["cost", "gate-compare"]


def test_every_action_is_pinned_to_its_node24_major():
    for where, step in all_steps():
        uses = step.get("uses")
        if not uses or uses.startswith("./"):
            continue
        action, _, major = uses.partition("@")
        assert NODE24_MAJORS.get(action) == major, f"{where}: {uses}"


def test_hosted_jobs_run_on_the_ubuntu_the_baselines_were_made_on():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name, job in load_workflow(path)["jobs"].items():
            if name != "gate-gpu":
                assert job["runs-on"] == "ubuntu-24.04", f"{path.name}:{name}"


def test_each_job_kind_has_its_own_compile_caches():
    """Cache entries are immutable: jobs sharing a key would keep only the first finisher's kernels."""
    declared = set(yaml.safe_load(SETUP_ACTION.read_text())["inputs"])
    kinds = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name, job in load_workflow(path)["jobs"].items():
            for step in job["steps"]:
                if step.get("uses") == "./.github/actions/setup":
                    with_ = step.get("with", {})
                    assert set(with_) <= declared, f"{name}: {with_}"
                    if with_.get("cache"):
                        shards = job.get("strategy", {}).get("matrix", {}).get("shard", [None])
                        kinds += [with_["cache"].replace("${{ matrix.shard }}", str(s)) for s in shards]
    assert len(kinds) == len(set(kinds)), kinds
    assert {"cost", "ab", "gate-shard-1", "gate-shard-2", "gate-shard-3"} <= set(kinds)
    keys = [s["with"]["key"] for _, s in all_steps() if s.get("uses", "").startswith("actions/cache@")]
    for cache in ("tinygrad-", "pocl-"):
        key = next(k for k in keys if k.startswith(cache))
        for part in ("steps.keys.outputs.key", "inputs.device", "steps.keys.outputs.tinygrad", "inputs.cache"):
            assert part in key, (cache, part)
        assert "hashFiles('harness/**/*.py')" in key


def test_refresh_needs_the_shards_not_the_timing_comparison_and_can_use_a_token_that_starts_checks():
    job = load_workflow()["jobs"]["refresh-baselines"]
    assert job["needs"] == "gate-shard"
    pr = next(s for s in job["steps"] if s.get("uses", "").startswith("peter-evans/create-pull-request@"))
    assert pr["with"]["token"] == "${{ secrets.BASELINE_PR_TOKEN || github.token }}"


def test_history_tolerates_missing_artifacts():
    for step in load_workflow()["jobs"]["history"]["steps"]:
        if step.get("uses", "").startswith("actions/download-artifact@"):
            assert step.get("continue-on-error") is True, step


def _merge_base_step(tmp_path, head_of: str) -> tuple[Replay, str, str, str]:
    project, base = project_copy(tmp_path / "project")
    moved, head, merge = pull_request_merge(project, base, ("NOTES.md", "docs\n"))
    replay = Replay(
        load_workflow(),
        project,
        merge if head_of == "merge" else head,
        tmp_path / "run",
        "pull_request",
        pr_event(base, head),
    )
    job = replay.workflow["jobs"]["ab"]
    job["steps"] = [
        s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@") or s.get("id") == "base"
    ]
    replay.run(only=["ab"])
    return replay, base, moved, head


def test_the_ab_base_is_the_merge_commits_first_parent(tmp_path):
    """The event's base.sha lags when main moves on; the merge commit's first parent is what the PR merges into."""
    replay, stale, moved, _ = _merge_base_step(tmp_path, "merge")
    step = replay.step("ab", "The merge commit's base")
    assert step.outcome == "success", step.log
    assert step.outputs == {"sha": moved}
    assert f"the event's base.sha {stale[:12]} is older" in step.log


def test_the_ab_refuses_a_head_that_is_not_a_merge_commit(tmp_path):
    replay, *_ = _merge_base_step(tmp_path, "head")
    step = replay.step("ab", "The merge commit's base")
    assert step.outcome == "failure" and "is not a merge commit" in step.log


def test_history_charts_what_there_is_and_a_missing_artifact_fails_nothing(tmp_path):
    project, head = project_copy(tmp_path / "project")
    push = {"ref": "refs/heads/main"}
    # nothing uploaded (both jobs failed early): a warning, no chart, no failure
    empty = Replay(load_workflow(), project, head, tmp_path / "empty", "push", push).run(only=["history"])
    assert empty.job_results["history"] == "success"
    assert (
        "nothing to chart" in empty.step("history", "Our JSON -> github-action-benchmark's customSmallerIsBetter").log
    )
    # only the gate's results (the cost job uploaded nothing): charted from those
    only_gate = Replay(load_workflow(), project, head, tmp_path / "gate", "push", push)
    dest = only_gate.artifacts / "gate-results"
    dest.mkdir(parents=True)
    shutil.copy2(ROOT / "tests" / "fixtures" / "golden" / "gate.summary.json", dest / "gate-summary.json")
    only_gate.run(only=["history"])
    assert only_gate.job_results["history"] == "success", [r.log for r in only_gate.results]
    assert json.loads(only_gate.file("history", "history.json").read_text())


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
    assert replay.condition("${{ !cancelled() && github.event_name == 'pull_request' }}", ctx)
    assert replay.template("${{ env.BENCH_DEVICE }}", ctx) == "CL"
    assert replay.template("${{ secrets.BASELINE_PR_TOKEN || github.token }}", ctx) == "ghs_replay"


# --- slow: the replay -----------------------------------------------------------------------------


def _comment(replay: Replay) -> str:
    return replay.file("verdict", "comment.md").read_text()


def _verdict_exit(replay: Replay) -> int:
    return replay.step("verdict", "Fail on a regression or a check without a result").returncode


@pytest.mark.slow
def test_replay_pull_request_no_baseline_pass_and_regression(tmp_path):
    project, base = project_copy(tmp_path / "project")
    # a docs-only PR opened on `base`, merged (as GitHub's merge ref is) into a main that has moved on
    moved, head, merge = pull_request_merge(project, base, ("NOTES.md", "a change that changes nothing measured\n"))
    wf = load_workflow()

    # 1. no gate baseline for this CPU and the smoke suite: every job runs; the verdict warns and passes
    first = Replay(wf, project, merge, tmp_path / "run1", "pull_request", pr_event(base, head), env=TINY).run()
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
    # the A/B timed main as the merge saw it, not the event's older base.sha
    assert f"base `{moved[:12]}`" in comment and _verdict_exit(first) == 0
    assert moved[:12] in json.loads(first.file("ab", "checks/ab.json").read_text())["baseline"]["path"]
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
    assert re.search(r"- :x: cost: mlp flops_per_step: [\d,]+ -> [\d,]+", comment), comment
    assert _verdict_exit(third) == 1 and third.job_results["verdict"] == "failure"


# GitHub's hosted runners as of late 2026: three CPU models, all with AVX2 + FMA, two with AVX-512
AVX512 = "avx512f avx512bw avx512cd avx512dq avx512vl"
FLEET = {
    "gate-shard-1": ("AMD EPYC 7763 64-Core Processor", "sse4_1 sse4_2 ssse3 avx avx2 fma bmi1 bmi2 f16c"),
    "gate-shard-2": ("AMD EPYC 9V74 80-Core Processor", "sse4_2 ssse3 sse4_1 avx avx2 fma " + AVX512),
    "gate-shard-3": ("Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz", "sse4_2 ssse3 sse4_1 avx avx2 fma " + AVX512),
}


def _fleet(tmp_path: Path) -> dict[str, dict[str, str]]:
    """Each shard its own runner: a CPU identity (records and keys only; compiling uses the real CPU); the
    replay gives every job its own empty home, so compile caches start empty as on a fresh hosted VM."""
    return {
        label: {"MNIST_BENCH_CPU_MODEL": model, "MNIST_BENCH_CPU_FLAGS": flags}
        for label, (model, flags) in FLEET.items()
    }


@pytest.mark.slow
def test_replay_gate_shards_on_three_cpu_models_cold_bit_identical_then_a_drop_caught(tmp_path):
    project, base = project_copy(tmp_path / "project")
    _moved, head, merge = pull_request_merge(project, base, ("NOTES.md", "nothing measured\n"))
    wf, fleet = load_workflow(), _fleet(tmp_path)
    only = ["gate-shard", "gate-compare"]

    # 1. three CPU models, cold caches: the shards merge into one summary and one proposed baseline key
    first = Replay(wf, project, merge, tmp_path / "run1", "pull_request", pr_event(base, head), env=TINY)
    first.job_env = fleet
    first.run(only=only)
    assert first.job_results == {"gate-shard": "success", "gate-compare": "success"}, first.results[-1].log[-3000:]
    merged = json.loads(first.file("gate-compare", "gate-summary.json").read_text())
    assert sorted(m["cpu"] for m in merged["machines"]) == sorted(model for model, _ in FLEET.values())
    assert {m["isa"] for m in merged["machines"]} == {"x86-64-v3"}
    proposed = list((first.artifacts / "gate-results" / "proposed-baselines").glob("*/smoke.json"))
    assert [p.parent.name for p in proposed] == ["CL-cpu"]

    # 2. that baseline committed; the same code on the fleet again: accuracy is bit-identical, clocks not gated
    dest = project / "results" / "baselines" / "CL-cpu"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(proposed[0], dest / "smoke.json")
    same = commit(project, "smoke baseline from the fleet")
    second = Replay(wf, project, same, tmp_path / "run2", "pull_request", pr_event(base, same), env=TINY)
    second.job_env = fleet
    second.run(only=only)
    gate = json.loads(second.file("gate-compare", "checks/gate.json").read_text())
    assert gate["verdict"] == "pass" and gate["baseline"] is not None
    assert gate["numerics"] == [f"mlp-tiny: {rules.BIT_IDENTICAL}"]

    # 3. a change that trains worse: caught as an accuracy regression, whatever CPUs ran the shards
    suite = project / "benchmarks" / "suites" / "smoke.toml"
    suite.write_text(suite.read_text().replace("batch_size = 32\nsteps = 3", "batch_size = 32\nsteps = 1", 1))
    worse = commit(project, "fewer MLP steps")
    third = Replay(wf, project, worse, tmp_path / "run3", "pull_request", pr_event(base, worse), env=TINY)
    third.job_env = fleet
    third.run(only=only)
    gate = json.loads(third.file("gate-compare", "checks/gate.json").read_text())
    assert gate["verdict"] == "regression", gate
    assert any(p.startswith("mlp-tiny accuracy:") for p in gate["problems"]), gate["problems"]
    # the config itself changed (steps 3 -> 1): different weights say nothing about numerics, so no numerics
    # note; the setting that differs is named instead
    assert gate["numerics"] == []
    assert any("steps" in w for w in gate["warnings"]), gate["warnings"]


@pytest.mark.parametrize("accuracy, outcome", [(None, "success"), (90.0, "failure")], ids=["slow-vm", "missed-target"])
def test_the_hosted_gate_warns_on_a_budget_overrun_and_fails_a_missed_target(tmp_path, accuracy, outcome):
    """A push to main whose shards ran past their budget on a slow VM: an annotation, not a red main; a seed below
    its accuracy target still fails the job (the committed CL gate records, re-budgeted; merge and compare only)."""
    from tests.test_budgets import shard

    project, head = project_copy(tmp_path / "project")
    replay = Replay(load_workflow(), project, head, tmp_path / "run", "push", {"ref": "refs/heads/main"})
    shutil.copytree(shard(tmp_path, budget_s=10, accuracy=accuracy), replay.artifacts / "gate-shard-1")
    replay.run(only=["gate-compare"])
    assert replay.job_results["gate-compare"] == outcome, [r.log[-1500:] for r in replay.results]
    log = replay.step("gate-compare", "Compare with the committed baseline").log
    assert "::warning title=Time budget (not gated on hosted runners)::over budget (not gated): mlp-default" in log
    gate = json.loads(replay.file("gate-compare", "checks/gate.json").read_text())
    assert gate["baseline"] is not None  # the committed CL-cpu baseline: accuracy was compared
    if accuracy is None:
        assert gate["verdict"] == "pass" and replay.step("gate-compare", "Merge shards").outcome == "success"
    else:
        assert gate["verdict"] == "regression"
        assert "mlp-default: target 95% met by 2 of 3 seed(s)" in gate["problems"]
        assert replay.step("gate-compare", "Merge shards").returncode == 1  # continue-on-error: compare ran
        assert replay.step("gate-compare", "Compare with the committed baseline").returncode == 1


def test_budgets_fail_only_where_the_runner_is_the_same_machine_run_to_run():
    wf = load_workflow()
    assert wf["env"]["MNIST_BENCH_BUDGETS"] == "warn"
    assert wf["jobs"]["gate-gpu"]["env"]["MNIST_BENCH_BUDGETS"] == "fail"


# --- GitHub's cache, replayed -----------------------------------------------------------------------------


def _files(root: Path, text: str) -> list[tuple[str, Path, Path]]:
    db = root / ".cache" / "tinygrad" / "mnist-bench-k.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_text(text)
    return [("home", root, db)]


def test_the_cache_store_restores_by_key_then_prefix_and_keeps_the_first_writers_entry(tmp_path):
    store = CacheStore(tmp_path / "store")
    main, pr1, pr2 = "refs/heads/main", "refs/pull/1/merge", "refs/pull/2/merge"
    first = store.save("tinygrad-cpu1-cost-h1", main, "1", "cost", _files(tmp_path / "a", "cost's kernels"))
    assert first is not None
    # a second save under the same key (another job that finished later) changes nothing
    assert store.save("tinygrad-cpu1-cost-h1", main, "1", "gate-shard", _files(tmp_path / "b", "shard's")) is None
    assert (first.folder / "home/.cache/tinygrad/mnist-bench-k.db").read_text() == "cost's kernels"
    assert len(store.entries) == 1
    # exact key: a hit; a new harness hash: the newest entry of a restore-key prefix, not a hit
    assert store.restore("tinygrad-cpu1-cost-h1", [], main, "2", set()) == (first, True)
    assert store.restore("tinygrad-cpu1-cost-h2", ["tinygrad-cpu1-cost-"], main, "2", set()) == (first, False)
    assert store.restore("tinygrad-cpu2-cost-h1", ["tinygrad-cpu2-"], main, "2", set()) == (None, False)
    # a PR's entry is its own; main's serve every PR
    own = store.save("tinygrad-cpu1-cost-h3", pr1, "3", "cost", _files(tmp_path / "c", "pr 1's"))
    assert store.restore("tinygrad-cpu1-cost-h3", [], pr1, "4", set()) == (own, True)
    assert store.restore("tinygrad-cpu1-cost-h3", ["tinygrad-cpu1-cost-"], pr2, "5", set()) == (first, False)
    assert store.restore("tinygrad-cpu1-cost-h3", [], main, "5", set()) == (None, False)
    # within one run a job sees what the jobs it needs saved, not what its parallel siblings saved
    shard = store.save("tinygrad-cpu1-gate-shard-1-h1", main, "6", "gate-shard", _files(tmp_path / "d", "s"))
    assert store.restore("tinygrad-cpu1-gate-shard-1-h1", [], main, "6", {"cost"}) == (None, False)
    assert store.restore("tinygrad-cpu1-gate-shard-1-h1", [], main, "6", {"gate-shard"}) == (shard, True)


def _kernels(entry) -> dict[str, bytes]:
    return {str(p.relative_to(entry.folder)): p.read_bytes() for p in sorted(entry.folder.rglob("*")) if p.is_file()}


def _entry(store: CacheStore, cache: str, kind: str):
    found = [e for e in store.entries if e.key.startswith(f"{cache}-") and f"-{kind}-" in e.key]
    assert len(found) == 1, [e.key for e in store.entries]
    return found[0]


def _compile_cache_of_the_run(replay: Replay) -> dict:
    record = next(p for p in replay.file("gate-shard-1", "shards/1").rglob("*.json") if "__" in p.name)
    return json.loads(record.read_text())["environment"]["compile_cache"]


@pytest.mark.slow
def test_replay_each_job_kind_caches_its_own_kernels_and_a_second_writer_changes_nothing(tmp_path):
    project, head = project_copy(tmp_path / "project")
    wf = load_workflow()
    wf["jobs"]["gate-shard"]["strategy"]["matrix"]["shard"] = [1]  # one shard is enough to show it
    push = {"ref": "refs/heads/main"}
    store = CacheStore(tmp_path / "cache")

    # 1. main's run, cold: the cost job and the gate shard each save their own tinygrad and PoCL kernels
    first = Replay(wf, project, head, tmp_path / "run1", "push", push, env=TINY, caches=store, run_id="1")
    first.run(only=["cost", "gate-shard"])
    assert first.job_results == {"cost": "success", "gate-shard": "success"}, [r.log[-800:] for r in first.results]
    for cache in ("tinygrad", "pocl"):
        for kind in ("cost", "gate-shard-1"):
            assert _kernels(_entry(store, cache, kind)), (cache, kind)
    assert _entry(store, "tinygrad", "gate-shard-1").key.split("-")[3:5] == [cpu_key(), "CL"]
    assert not _compile_cache_of_the_run(first)["warm"]

    # 2. the next run: the shard restores its own entry (a hit, so it saves nothing) and compiles warm
    saved = _kernels(_entry(store, "tinygrad", "gate-shard-1"))
    second = Replay(wf, project, head, tmp_path / "run2", "push", push, env=TINY, caches=store, run_id="2")
    second.run(only=["gate-shard"])
    restore = second.step("gate-shard-1", "Cache tinygrad's compile cache")
    assert restore.log.startswith("hit tinygrad-") and restore.outputs["cache-hit"] == "true"
    assert not [r for r in second.results if r.name.startswith("Post cache tinygrad-")]
    assert _compile_cache_of_the_run(second)["warm"]
    assert _kernels(_entry(store, "tinygrad", "gate-shard-1")) == saved

    # 3. the bug per-kind keys fix: cost and the gate on one key; cost ends first, the shard's kernels are lost
    shared = copy.deepcopy(wf)
    setup = next(s for s in shared["jobs"]["cost"]["steps"] if s.get("uses") == "./.github/actions/setup")
    setup["with"]["cache"] = "gate-shard-1"
    one_key = CacheStore(tmp_path / "one-key")
    third = Replay(shared, project, head, tmp_path / "run3", "push", push, env=TINY, caches=one_key, run_id="1")
    third.run(only=["cost", "gate-shard"])
    entry = _entry(one_key, "tinygrad", "gate-shard-1")
    assert entry.job == "cost"
    lost = [r for r in third.results if r.job == "gate-shard-1" and r.name.startswith("Post cache tinygrad-")]
    assert lost and "already exists: not saved" in lost[0].log


# --- the PR comment across runs: the real comment.js under node against a fake GitHub ------------------------

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_MODULES / "@actions" / "github").is_dir(),
    reason="node and @actions/github in .ci/.node are needed (.ci/run installs them)",
)
BOT = {"login": "github-actions[bot]", "type": "Bot"}
# the checks a verdict job downloads: a gate without baseline (pass) and an A/B (a committed trial); no cost
# result, so every verdict here is INCOMPLETE: these scenarios are about which comment changes, not what it says
CHECKS = {
    "check-gate/gate.json": ROOT / "tests" / "fixtures" / "golden" / "compare-no-baseline.json",
    "check-ab/ab.json": ROOT / "results" / "continuous-trials" / "aa" / "trial-01.json",
}


class PullRequest:
    """A project with a pull request and a fake GitHub whose state (the PR's comments) lives across runs."""

    def __init__(self, tmp_path: Path, comments: list[dict] | None = None):
        self.tmp = tmp_path
        self.project, self.base = project_copy(tmp_path / "project")
        self.github = tmp_path / "github.json"
        self.github.write_text(json.dumps({"identity": None, "comments": comments or []}))
        self.runs = 0

    def push(self, text: str) -> str:
        (self.project / "NOTES.md").write_text(text)
        return commit(self.project, text)

    def replay(self, head: str, checks: dict[str, Path] | None = CHECKS, run_id: str | None = None, **kwargs) -> Replay:
        self.runs += 1
        event = kwargs.pop("event", None) or pr_event(self.base, head)
        work = self.tmp / f"run{self.runs}"
        replay = Replay(
            kwargs.pop("workflow", None) or load_workflow(), self.project, head, work, "pull_request", event
        )
        replay.run_id, replay.github_api = run_id or str(self.runs), self.github
        for name, value in kwargs.items():
            setattr(replay, name, value)
        for dest, src in (checks or {}).items():
            (replay.artifacts / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, replay.artifacts / dest)
        return replay

    def comments(self) -> list[dict]:
        return json.loads(self.github.read_text())["comments"]


def _comment_step(replay: Replay) -> StepResult:
    return replay.step("verdict", "Post or update the PR comment")


@needs_node
def test_replay_a_rerun_edits_the_one_comment_and_never_adds_a_second(tmp_path):
    pr = PullRequest(tmp_path)
    head = pr.push("first push")
    first = pr.replay(head, run_id="7").run(only=["verdict"])
    assert _comment_step(first).log.startswith("created"), _comment_step(first).log
    [posted] = pr.comments()
    assert posted["user"] == BOT and f"head `{head[:12]}`" in posted["body"]
    # "Re-run all jobs": the same run id, the same head: the bot's comment is edited in place
    again = pr.replay(head, run_id="7").run(only=["verdict"])
    assert _comment_step(again).log.startswith("updated")
    assert [c["id"] for c in pr.comments()] == [posted["id"]]


@needs_node
def test_replay_a_humans_comment_that_starts_with_the_marker_is_left_alone(tmp_path):
    quoted = verdict.MARKER + "\nI pasted the bot's comment to discuss it\n"
    pr = PullRequest(tmp_path, [{"id": 5, "issue": 1, "user": {"login": "alice", "type": "User"}, "body": quoted}])
    head = pr.push("a push")
    for _ in range(2):  # a first run creates the bot's own comment, the second edits that one
        pr.replay(head).run(only=["verdict"])
    comments = pr.comments()
    assert comments[0] == {"id": 5, "issue": 1, "user": {"login": "alice", "type": "User"}, "body": quoted}
    assert len(comments) == 2 and comments[1]["user"] == BOT


@needs_node
def test_replay_a_crashed_verdict_posts_no_empty_comment(tmp_path):
    pr = PullRequest(tmp_path)
    good = pr.replay(pr.push("a good run")).run(only=["verdict"])
    [before] = pr.comments()
    bad = tmp_path / "cost.json"
    bad.write_text("{not json")  # the verdict step fails on it and writes nothing to comment.md
    crashed = pr.replay(pr.push("a run whose verdict fails"), checks={**CHECKS, "check-cost/cost.json": bad})
    crashed.run(only=["verdict"])
    assert crashed.step("verdict", "Combine the checks").outputs["exit_code"] == "2"
    assert crashed.file("verdict", "comment.md").read_text() == ""
    step = _comment_step(crashed)
    assert step.outcome == "failure" and "comment.md is empty" in step.log
    assert pr.comments() == [before]  # the last good verdict stays
    assert (
        crashed.job_results["verdict"] == "failure" and good.job_results["verdict"] == "failure"
    )  # no cost: INCOMPLETE


@needs_node
def test_replay_a_forks_pull_request_gets_the_job_summary_only(tmp_path):
    pr = PullRequest(tmp_path)
    head = pr.push("from a fork")
    fork = pr.replay(head, event=pr_event(pr.base, head, head_repo="mallory/mnist-bench")).run(only=["verdict"])
    assert _comment_step(fork).outcome == "success" and _comment_step(fork).log.startswith("summary")
    assert pr.comments() == []
    summary = fork.summary("verdict")
    assert summary.startswith(verdict.MARKER) and "a fork's token cannot comment" in summary


@needs_node
@pytest.mark.parametrize("condition", ["${{ !cancelled() }}", "${{ always() }}"], ids=["workflow", "always"])
def test_replay_a_superseded_run_cancelled_mid_way_leaves_the_newer_verdict(tmp_path, condition):
    """Push A, then push B: the concurrency group cancels A while its shards run. B's run posts its verdict;
    A's gate-compare and verdict never start, so the comment stays B's. With `always()` (the old workflow)
    they do start after the cancel and overwrite B's comment with A's incomplete verdict: the control."""
    wf = load_workflow()
    for job in ("gate-compare", "verdict"):
        wf["jobs"][job]["if"] = condition
    pr = PullRequest(tmp_path)
    older, newer = pr.push("push A"), pr.push("push B")
    a = pr.replay(older, checks=None, workflow=wf, cancel_at=("gate-shard-1", "Run shard"), env=TINY)
    b = pr.replay(newer, workflow=wf).run(only=["verdict"])
    assert _comment_step(b).log.startswith("created")
    a.run(only=["gate-shard", "gate-compare", "verdict"])  # what is left of A runs after B's verdict
    assert a.job_results["gate-shard"] == "cancelled"
    assert a.step("gate-shard-1", "Run shard").outcome == "skipped"
    assert not a.file("gate-shard-2", ".").exists()  # the shards not started when A was cancelled never start
    [comment] = pr.comments()
    if condition == "${{ !cancelled() }}":
        assert a.job_results == {"gate-shard": "cancelled", "gate-compare": "cancelled", "verdict": "cancelled"}
        assert f"head `{newer[:12]}`" in comment["body"]
    else:
        assert _comment_step(a).log.startswith("updated")  # A's verdict ran after the cancel
        assert f"head `{older[:12]}`" in comment["body"]


# --- the refresh flow ------------------------------------------------------------------------------------

DISPATCH = {"refresh_baselines": True, "gpu": False, "gpu_runs_on": "[]"}


def _pr_warning(replay: Replay) -> str:
    return replay.step("refresh-baselines", "Say when the PR's checks will not start by themselves").log


@pytest.mark.slow
def test_replay_the_refresh_flow_opens_a_pr_with_the_new_baselines(tmp_path):
    """Run workflow with refresh_baselines: the shards run, refresh-baselines merges them and saves the gate and
    cost baselines, and create-pull-request (recorded, not sent) gets those files, its branch and the PAT."""
    project, head = project_copy(tmp_path / "project")
    replay = Replay(load_workflow(), project, head, tmp_path / "run", "workflow_dispatch", {"ref": "refs/heads/main"})
    replay.env, replay.inputs, replay.run_id = TINY, DISPATCH, "77"
    replay.secrets = {"BASELINE_PR_TOKEN": "github_pat_replay"}
    replay.run(only=["gate-shard", "refresh-baselines"])
    assert replay.job_results == {"gate-shard": "success", "refresh-baselines": "success"}, [
        r.log[-1500:] for r in replay.results if r.outcome == "failure"
    ]
    [pr] = replay.pull_requests
    assert pr["token"] == "github_pat_replay" and pr["branch"] == "baseline-refresh/77"
    assert pr["add-paths"] == "results/baselines" and "(run 77)" in pr["commit-message"]
    assert "results/baselines/CL-cpu/smoke.json" in pr["files"]
    assert all(f.startswith("results/baselines/") for f in pr["files"])
    # the cost baselines the refresh measured: CL, and CPU at 2 and 4 threads (MLP only in this workload)
    cost = [f for f in pr["files"] if f.startswith("results/baselines/cost/")]
    for key in ("CL-OpenCLRenderer-", "CPU-ClangRenderer-threads2-", "CPU-ClangRenderer-threads4-"):
        assert [f for f in cost if f.startswith(f"results/baselines/cost/{key}") and "mlp" in f], (key, cost)
    saved = json.loads(replay.file("refresh-baselines", "results/baselines/CL-cpu/smoke.json").read_text())
    assert saved["note"] == "refreshed by https://github.invalid/replay/mnist-bench/actions/runs/77"
    assert "::warning" not in _pr_warning(replay)  # a PAT's PR starts its checks


def test_a_refresh_pr_opened_with_the_workflows_token_says_its_checks_will_not_start(tmp_path):
    """Without BASELINE_PR_TOKEN the PR is opened with GITHUB_TOKEN, whose PRs start no workflow: a warning says so."""
    wf = load_workflow()
    job = wf["jobs"]["refresh-baselines"]
    job["needs"] = []
    measure = next(s for s in job["steps"] if s.get("name", "").startswith("New gate baseline"))
    measure["run"] = "mkdir -p results/baselines/CL-cpu && echo '{}' > results/baselines/CL-cpu/gate.json"  # fast
    project, head = project_copy(tmp_path / "project")
    replay = Replay(wf, project, head, tmp_path / "run", "workflow_dispatch", {"ref": "refs/heads/main"})
    replay.inputs = DISPATCH
    replay.run(only=["refresh-baselines"])
    [pr] = replay.pull_requests
    assert pr["token"] == "ghs_replay" and pr["files"] == ["results/baselines/CL-cpu/gate.json"]
    assert f"::warning title=Baseline PR without checks::{pr['url']} was opened with GITHUB_TOKEN" in _pr_warning(
        replay
    )
