"""bench.yml's PR-comment step, run under node as actions/github-script@v8 runs it: the step's own `script:`
(which loads .github/scripts/comment.js) with a real Octokit from @actions/github whose fetch is a fake
GitHub (tests/comment_step_harness.js), so every request the step makes is seen and none leaves the machine.
.ci/run installs @actions/github and @actions/core into .ci/.node; without node or them the tests skip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.gate.verdict import MARKER

yaml = pytest.importorskip("yaml")  # in the dev extras

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".github" / "workflows" / "bench.yml"
SCRIPT = ROOT / ".github" / "scripts" / "comment.js"
HARNESS = ROOT / "tests" / "comment_step_harness.js"
NODE_MODULES = ROOT / ".ci" / ".node" / "node_modules"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (.ci/run's CI has it)"),
    pytest.mark.skipif(
        not (NODE_MODULES / "@actions" / "github").is_dir() or not (NODE_MODULES / "@actions" / "core").is_dir(),
        reason="@actions/github and @actions/core are not in .ci/.node (.ci/run installs them)",
    ),
]

REPO = "octo/mnist-bench"
PR = 7
BOT = {"login": "github-actions[bot]", "type": "Bot"}
HUMAN = {"login": "alice", "type": "User"}
BODY = f"{MARKER}\n## :white_check_mark: mnist-bench: **PASS**\n\n| check | verdict |\n"


def step_script() -> str:
    """The `script:` of bench.yml's github-script step."""
    doc = yaml.safe_load(BENCH.read_text())
    steps = [s for s in doc["jobs"]["verdict"]["steps"] if s.get("uses", "").startswith("actions/github-script@")]
    assert len(steps) == 1
    return steps[0]["with"]["script"]


def comment(id_: int, user: dict, body: str) -> dict:
    return {"id": id_, "issue": PR, "user": user, "body": body}


class Step:
    """One run of the step: the requests it made, its exit code, its log, the summary and the comments after."""

    def __init__(self, tmp: Path, fake: dict, body: str | None, head_repo: str | None = REPO):
        ws = tmp / "workspace"
        (ws / ".github" / "scripts").mkdir(parents=True, exist_ok=True)
        shutil.copy2(SCRIPT, ws / ".github" / "scripts" / "comment.js")
        (ws / "comment.md").unlink(missing_ok=True)
        if body is not None:
            (ws / "comment.md").write_text(body)
        head = {"repo": {"full_name": head_repo, "fork": head_repo != REPO}} if head_repo else {"repo": None}
        event = {"pull_request": {"number": PR, "head": head, "base": {"repo": {"full_name": REPO}}}}
        files = {name: tmp / name for name in ("event.json", "script.js", "fake.json", "result.json", "summary.md")}
        files["event.json"].write_text(json.dumps(event))
        files["script.js"].write_text(step_script())
        files["fake.json"].write_text(json.dumps(fake))
        files["summary.md"].write_text("")
        files["result.json"].unlink(missing_ok=True)
        env = {  # only what a runner sets; none of this machine's GITHUB_* (CI runs this test inside Actions)
            "PATH": os.environ["PATH"],
            "HOME": str(tmp),
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(files["event.json"]),
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_SERVER_URL": "https://github.invalid",
            "GITHUB_API_URL": "https://api.github.invalid",
            "GITHUB_RUN_ID": "42",
            "GITHUB_STEP_SUMMARY": str(files["summary.md"]),
            "ACTIONS_NODE_MODULES": str(NODE_MODULES),
            "STEP_SCRIPT": str(files["script.js"]),
            "FAKE_GITHUB": str(files["fake.json"]),
            "RESULT": str(files["result.json"]),
        }
        done = subprocess.run(
            [NODE, str(HARNESS)], cwd=ws, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        self.returncode, self.log = done.returncode, done.stdout + done.stderr
        assert files["result.json"].exists(), self.log
        out = json.loads(files["result.json"].read_text())
        self.requests, self.result, self.error, self.comments = (
            out["requests"],
            out["result"],
            out["error"],
            out["comments"],
        )
        self.summary = files["summary.md"].read_text()

    def writes(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests if r["method"] != "GET"]


def test_the_script_and_the_harness_agree_on_the_marker():
    assert f'const MARKER = "{MARKER}";' in SCRIPT.read_text()
    assert 'require("./.github/scripts/comment.js")' in step_script()


def test_no_comment_yet_creates_one(tmp_path):
    step = Step(tmp_path, {"identity": None, "comments": []}, BODY)
    assert step.returncode == 0, step.log
    assert step.result == "created"
    assert step.writes() == [("POST", f"/repos/{REPO}/issues/{PR}/comments")]
    assert [c["body"] for c in step.comments] == [BODY]


def test_a_rerun_edits_the_bots_own_comment_and_never_adds_a_second(tmp_path):
    fake = {"identity": None, "comments": [comment(11, BOT, MARKER + "\nold verdict\n")]}
    first = Step(tmp_path, fake, BODY)
    assert first.returncode == 0, first.log
    assert first.writes() == [("PATCH", f"/repos/{REPO}/issues/comments/11")]
    newer = BODY.replace("PASS", "REGRESSION")
    second = Step(tmp_path, {"identity": None, "comments": first.comments}, newer)
    assert second.writes() == [("PATCH", f"/repos/{REPO}/issues/comments/11")]
    assert [(c["id"], c["body"]) for c in second.comments] == [(11, newer)]


def test_a_humans_comment_starting_with_the_marker_is_never_edited(tmp_path):
    quoted = MARKER + "\nI pasted the bot's comment here\n"
    other_bot = comment(12, {"login": "someone-else[bot]", "type": "Bot"}, MARKER + "\nnot ours\n")
    fake = {"identity": None, "comments": [comment(10, HUMAN, quoted), other_bot]}
    step = Step(tmp_path, fake, BODY)
    assert step.returncode == 0, step.log
    assert step.writes() == [("POST", f"/repos/{REPO}/issues/{PR}/comments")]
    assert step.comments[0]["body"] == quoted and step.comments[1]["body"] == other_bot["body"]
    # and the run after that edits the bot's new comment, still not the human's
    again = Step(tmp_path, {"identity": None, "comments": step.comments}, BODY)
    assert again.writes() == [("PATCH", f"/repos/{REPO}/issues/comments/{step.comments[2]['id']}")]


def test_a_tokens_own_identity_decides_which_comment_is_its_own(tmp_path):
    """A token that can read /user (a PAT) edits its own comment, not github-actions[bot]'s."""
    me = {"login": "bench-bot", "type": "User"}
    fake = {"identity": me, "comments": [comment(20, BOT, MARKER + "\nx\n"), comment(21, me, MARKER + "\ny\n")]}
    step = Step(tmp_path, fake, BODY)
    assert step.writes() == [("PATCH", f"/repos/{REPO}/issues/comments/21")]


def test_the_bots_comment_is_found_on_a_later_page(tmp_path):
    chatter = [comment(100 + i, HUMAN, f"comment {i}") for i in range(5)]
    fake = {"identity": None, "comments": [*chatter, comment(200, BOT, MARKER + "\nold\n")], "page_size": 2}
    step = Step(tmp_path, fake, BODY)
    assert step.writes() == [("PATCH", f"/repos/{REPO}/issues/comments/200")]
    assert len([r for r in step.requests if r["path"].endswith(f"/issues/{PR}/comments")]) == 3


@pytest.mark.parametrize("body", [None, "", "  \n"], ids=["missing", "empty", "blank"])
def test_an_empty_or_missing_body_posts_nothing_and_fails(tmp_path, body):
    fake = {"identity": None, "comments": [comment(11, BOT, MARKER + "\nlast good verdict\n")]}
    step = Step(tmp_path, fake, body)
    assert step.returncode == 1
    assert step.requests == [] and step.result == "failed"
    assert "::error::comment.md is" in step.log and "nothing posted" in step.log
    assert step.comments[0]["body"] == MARKER + "\nlast good verdict\n"


def test_a_body_that_is_not_a_verdict_posts_nothing_and_fails(tmp_path):
    step = Step(tmp_path, {"identity": None, "comments": []}, "Traceback (most recent call last):\n")
    assert step.returncode == 1 and step.requests == []


@pytest.mark.parametrize("head_repo", ["mallory/mnist-bench", None], ids=["fork", "deleted-fork"])
def test_a_fork_writes_only_the_job_summary(tmp_path, head_repo):
    step = Step(tmp_path, {"identity": None, "comments": []}, BODY, head_repo=head_repo)
    assert step.returncode == 0, step.log
    assert step.requests == [] and step.result == "summary"
    assert "a fork's token cannot comment" in step.summary
    assert "::notice title=mnist-bench verdict::" in step.log


def test_a_token_that_may_not_write_leaves_the_summary_and_does_not_fail(tmp_path):
    """e.g. a Dependabot PR: its GITHUB_TOKEN is read-only."""
    step = Step(tmp_path, {"identity": None, "comments": [], "write_status": 403}, BODY)
    assert step.returncode == 0, step.log
    assert step.result == "summary" and "may not comment" in step.summary
    assert "::warning::" in step.log


def test_a_body_over_githubs_limit_is_cut_with_a_pointer_to_the_summary(tmp_path):
    long = BODY + "x" * 70000
    step = Step(tmp_path, {"identity": None, "comments": []}, long)
    posted = step.comments[0]["body"]
    assert len(posted) <= 65536 and posted.startswith(MARKER)
    assert "https://github.invalid/octo/mnist-bench/actions/runs/42" in posted
