"""Replay a GitHub Actions workflow's `run:` steps locally, in order, the way a runner would run them.

Jobs run in `needs` order, a matrix as a loop; each job gets a fresh clone of the project (its checkout)
at the head commit; `run:` steps run with `bash --noprofile --norc -eo pipefail` like a hosted runner,
with `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY` as files and `${{ }}` expressions (only allowed in
`env:`, `with:` and `if:`) evaluated against a given event. Artifacts are folders. The project's setup
action becomes a `.venv` whose `python` and `mnist-bench` run this interpreter on the job's clone (its
`cache:` is recorded, not replayed); any other `uses:` step (actions/github-script, benchmark-action, ...)
is recorded as skipped. `job_env` adds environment variables per job (by job id, or by a matrix entry's
label such as `gate-shard-2`), e.g. to give each runner of a simulated fleet its own CPU identity and
empty cache folder.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import data as mnist_data

# Where this machine keeps compile caches and the like: a runner has none of them set
MACHINE_CACHE_VARS = ("XDG_CACHE_HOME", "CACHEDB", "MNIST_BENCH_KEYED_CACHEDB", "POCL_CACHE_DIR", "MNIST_BENCH_CACHE")
EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)
STATUS_FUNCS = ("always()", "success()", "failure()", "cancelled()")


class Null:
    """GitHub's null: any property of it is null, it is falsy and equals '' (loose equality)."""

    def __getattr__(self, name: str) -> Null:
        return self

    def __bool__(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return other is None or other == "" or isinstance(other, Null)

    def __hash__(self) -> int:
        return 0

    def __str__(self) -> str:
        return ""


NULL = Null()


def wrap(value: Any) -> Any:
    return Ctx(value) if isinstance(value, dict) else NULL if value is None else value


class Ctx:
    def __init__(self, data: dict[str, Any]):
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return wrap(self._data.get(name.replace("__", "-")))

    def __bool__(self) -> bool:
        return True


def _python(expr: str) -> str:
    """A GitHub expression as Python: && || ! and dashes in property names (steps.my-id)."""
    out, i = [], 0
    for m in re.finditer(r"'(?:[^']|'')*'", expr):  # leave string literals alone
        out.append(_ops(expr[i : m.start()]))
        out.append(repr(m.group(0)[1:-1].replace("''", "'")))
        i = m.end()
    out.append(_ops(expr[i:]))
    return "".join(out)


def _ops(code: str) -> str:
    code = code.replace("&&", " and ").replace("||", " or ")
    code = re.sub(r"!(?!=)", " not ", code)
    code = re.sub(r"(?<=[A-Za-z0-9_])-(?=[A-Za-z_])", "__", code)
    return re.sub(r"\b(true|false|null)\b", lambda m: {"true": "True", "false": "False", "null": "None"}[m[1]], code)


@dataclass
class StepResult:
    job: str
    name: str
    outcome: str  # success, failure, skipped
    returncode: int | None = None
    log: str = ""
    outputs: dict[str, str] = field(default_factory=dict)  # what a `run:` step wrote to $GITHUB_OUTPUT


@dataclass
class Replay:
    workflow: dict[str, Any]
    project: Path  # a git repository; each job clones it
    head: str  # the commit jobs check out
    work: Path  # job folders, artifacts
    event_name: str
    event: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)  # overrides of the workflow's env (the workload)
    inputs: dict[str, Any] = field(default_factory=dict)
    job_env: dict[str, dict[str, str]] = field(default_factory=dict)  # extra env per job id, over the workflow's
    results: list[StepResult] = field(default_factory=list)
    job_results: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each job (a matrix entry by its label)

    @property
    def artifacts(self) -> Path:
        return self.work / "artifacts"

    def context(
        self,
        job_dir: Path,
        matrix: dict[str, Any],
        steps: dict[str, Any],
        status: str,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        def hash_files(*patterns: str) -> str:
            return "x" if any(list(job_dir.glob(p)) for p in patterns) else ""

        github = {
            "event_name": self.event_name,
            "event": self.event,
            "sha": self.head,
            "ref": self.event.get("ref", "refs/pull/1/merge"),
            "ref_name": "replay",
            "repository": "replay/mnist-bench",
            "server_url": "https://github.invalid",
            "run_id": "1",
            "token": "",
        }
        return {
            "github": wrap(github),
            "inputs": wrap(self.inputs),
            "matrix": wrap(matrix),
            "steps": wrap(steps),
            "env": wrap(env if env is not None else self.workflow_env()),
            "runner": wrap({"os": "Linux", "arch": "X64"}),
            "secrets": wrap({}),
            "needs": wrap({}),
            "always": lambda: True,
            "success": lambda: status == "success",
            "failure": lambda: status == "failure",
            "cancelled": lambda: False,
            "hashFiles": hash_files,
            "fromJSON": __import__("json").loads,
            "True": True,
            "False": False,
            "None": NULL,
        }

    def workflow_env(self, job: str | None = None, label: str | None = None) -> dict[str, str]:
        """The workflow's env with this replay's overrides, and the job's own extra env when given: by its
        label (`gate-shard-2`, one matrix entry) where `job_env` has one, else by its id."""
        env = {k: str(v) for k, v in self.workflow.get("env", {}).items()}
        extra = self.job_env.get(label or "", self.job_env.get(job, {})) if job else {}
        return {**env, **self.env, **extra}

    def evaluate(self, expr: str, ctx: dict[str, Any]) -> Any:
        return eval(_python(expr.strip()), {"__builtins__": {}}, ctx)  # our own workflow file

    def template(self, value: Any, ctx: dict[str, Any]) -> str:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if text.strip().startswith("${{") and text.strip().endswith("}}") and text.count("${{") == 1:
            result = self.evaluate(EXPR.search(text).group(1), ctx)
            return "" if isinstance(result, Null) else str(result).lower() if isinstance(result, bool) else str(result)
        return EXPR.sub(lambda m: str(self.evaluate(m.group(1), ctx)), text)

    def condition(self, expr: Any, ctx: dict[str, Any]) -> bool:
        if expr is None:
            return ctx["success"]()
        if isinstance(expr, bool):
            return expr
        text = EXPR.sub(lambda m: m.group(1), str(expr))
        if not any(f in text for f in STATUS_FUNCS):
            text = f"success() && ({text})"
        return bool(self.evaluate(text, ctx))

    # --- jobs -------------------------------------------------------------------------------------

    def order(self, only: list[str] | None) -> list[str]:
        jobs = self.workflow["jobs"]
        done: list[str] = []
        while len(done) < len(jobs):
            for name, job in jobs.items():
                needs = job.get("needs", [])
                needs = [needs] if isinstance(needs, str) else needs
                if name not in done and all(n in done for n in needs):
                    done.append(name)
        return [j for j in done if only is None or j in only]

    def run(self, only: list[str] | None = None) -> Replay:
        for name in self.order(only):
            self.run_job(name)
        return self

    def run_job(self, name: str) -> None:
        job = self.workflow["jobs"][name]
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        needs_ok = all(self.job_results.get(n, "success") == "success" for n in needs)
        ctx = self.context(self.work, {}, {}, "success" if needs_ok else "failure")
        if not self.condition(job.get("if"), ctx):
            self.job_results[name] = "skipped"
            return
        matrix = job.get("strategy", {}).get("matrix", {})
        keys = [k for k in matrix if k not in ("include", "exclude")]
        outcomes = []
        for values in itertools.product(*(matrix[k] for k in keys)):
            combo = dict(zip(keys, values, strict=True))
            label = name + "".join(f"-{v}" for v in values)
            start = time.monotonic()
            outcomes.append(self.run_steps(name, label, job, combo))
            self.seconds[label] = time.monotonic() - start
        self.job_results[name] = "success" if all(outcomes) else "failure"

    def run_steps(self, name: str, label: str, job: dict[str, Any], matrix: dict[str, Any]) -> bool:
        job_dir = self.work / "jobs" / label
        for folder in (job_dir, self.home(label)):  # a fresh VM: an empty workspace and home
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        summary = self.work / "summaries" / f"{label}.md"
        summary.parent.mkdir(exist_ok=True)
        summary.write_text("")
        steps: dict[str, Any] = {}
        status = "success"
        job_env = self.workflow_env(name, label)
        job_ctx = self.context(job_dir, matrix, {}, status, job_env)
        job_env.update({k: self.template(v, job_ctx) for k, v in job.get("env", {}).items()})
        for i, step in enumerate(job["steps"]):
            ctx = self.context(job_dir, matrix, steps, status, job_env)
            step_name = step.get("name") or step.get("uses") or f"step {i}"
            if not self.condition(step.get("if"), ctx):
                self.results.append(StepResult(label, step_name, "skipped"))
                continue
            env = {**self.machine_env(label), **job_env}
            env.update({k: self.template(v, ctx) for k, v in step.get("env", {}).items()})
            if "run" in step:
                ok, outputs = self.run_script(label, step_name, step["run"], job_dir, env, summary, i)
            else:
                ok, outputs = self.use(label, step_name, step, job_dir, ctx), {}
            if step.get("id"):
                steps[step["id"]] = {"outcome": "success" if ok else "failure", "outputs": outputs}
            if not ok and not step.get("continue-on-error"):
                status = "failure"
        return status == "success"

    def home(self, label: str) -> Path:
        return self.work / "homes" / label

    def machine_env(self, label: str) -> dict[str, str]:
        """This process's environment as a fresh runner VM's: the job's own empty HOME (so ~/.cache, tinygrad's
        and PoCL's compile caches and the paths the setup action caches, start empty), none of this machine's
        cache settings, and the MNIST files from this machine's cache (the workflow restores them from its
        `mnist-idx-v1` entry; nothing here may download them)."""
        env = {k: v for k, v in os.environ.items() if k not in MACHINE_CACHE_VARS}
        return {**env, "HOME": str(self.home(label)), "MNIST_BENCH_CACHE": str(mnist_data.cache_dir())}

    def run_script(self, label, step_name, script, job_dir, env, summary, i) -> tuple[bool, dict[str, str]]:
        output = job_dir.parent.parent / "outputs" / f"{label}-{i}"
        output.parent.mkdir(exist_ok=True)
        output.write_text("")
        env = {**env, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), "CI": "true"}
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=job_dir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        outcome = "success" if done.returncode == 0 else "failure"
        self.results.append(StepResult(label, step_name, outcome, done.returncode, done.stdout + done.stderr, outputs))
        return done.returncode == 0, outputs

    # --- uses: steps ------------------------------------------------------------------------------

    def use(self, label: str, step_name: str, step: dict[str, Any], job_dir: Path, ctx: dict[str, Any]) -> bool:
        action = step["uses"]
        with_ = {k: self.template(v, ctx) for k, v in step.get("with", {}).items()}
        ok, note = True, "done"
        if action.startswith("actions/checkout@"):
            subprocess.run(["git", "clone", "-q", str(self.project), str(job_dir)], check=True)
            subprocess.run(["git", "-C", str(job_dir), "checkout", "-q", self.head], check=True)
        elif action == "./.github/actions/setup":
            self.fake_venv(job_dir)
            note = f"fake .venv; compile caches of job kind {with_.get('cache') or '(none)'}"
        elif action.startswith("actions/upload-artifact@"):
            ok, note = self.upload(job_dir, with_)
        elif action.startswith("actions/download-artifact@"):
            ok, note = self.download(job_dir, with_)
        else:
            note = "skipped: not replayed"
        self.results.append(StepResult(label, step_name, "success" if ok else "failure", None, note))
        return ok

    @staticmethod
    def fake_venv(job_dir: Path) -> None:
        """`.venv/bin/python` and `.venv/bin/mnist-bench`: this interpreter (and its packages) on the clone's code."""
        bin_dir = job_dir / ".venv" / "bin"
        bin_dir.mkdir(parents=True)
        for name, args in (("python", ""), ("mnist-bench", " -m harness")):
            script = bin_dir / name
            script.write_text(f'#!/bin/sh\nPYTHONPATH="{job_dir}" exec "{sys.executable}"{args} "$@"\n')
            script.chmod(0o755)

    def upload(self, job_dir: Path, with_: dict[str, str]) -> tuple[bool, str]:
        paths = [job_dir / p.strip() for p in with_["path"].splitlines() if p.strip()]
        found = [p for p in paths if p.exists()]
        if not found:
            ok = with_.get("if-no-files-found", "warn") != "error"
            return ok, "no files found"
        root = Path(os.path.commonpath(found)) if len(found) > 1 else found[0]
        root = root if root.is_dir() else root.parent  # the least common ancestor of the search paths
        dest = self.artifacts / with_["name"]
        for p in found:
            target = dest / p.relative_to(root) if p != root else dest
            if p.is_dir():
                shutil.copytree(p, target, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, target)
        return True, f"uploaded {with_['name']}"

    def download(self, job_dir: Path, with_: dict[str, str]) -> tuple[bool, str]:
        dest = job_dir / with_.get("path", ".")
        if "name" in with_:
            source = self.artifacts / with_["name"]
            if not source.is_dir():
                return False, f"artifact {with_['name']} not found"
            shutil.copytree(source, dest, dirs_exist_ok=True)
            return True, f"downloaded {with_['name']}"
        names = [p.name for p in sorted(self.artifacts.glob("*")) if fnmatch.fnmatch(p.name, with_["pattern"])]
        merge = with_.get("merge-multiple", "false") == "true"
        for n in names:
            shutil.copytree(self.artifacts / n, dest if merge else dest / n, dirs_exist_ok=True)
        return True, f"downloaded {', '.join(names) or 'nothing'}"

    # --- reading the results ----------------------------------------------------------------------

    def step(self, label: str, name: str) -> StepResult:
        return next(r for r in self.results if r.job == label and r.name == name)

    def summary(self, label: str) -> str:
        return (self.work / "summaries" / f"{label}.md").read_text()

    def file(self, label: str, path: str) -> Path:
        return self.work / "jobs" / label / path


# --- projects, events and the workflow file ----------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".github" / "workflows" / "bench.yml"


def load_workflow(path: Path = BENCH) -> dict[str, Any]:
    import yaml  # in the dev extras

    doc = yaml.safe_load(path.read_text())
    if True in doc:
        doc["on"] = doc.pop(True)  # YAML 1.1 reads the key `on` as true
    return doc


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def project_copy(dest: Path, root: Path = ROOT) -> tuple[Path, str]:
    """The working tree at `root` (tracked and untracked, not ignored) as a fresh repository with one commit."""
    files = git(root, "ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for name in filter(None, files):
        if (root / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, dest / name)
    git(dest, "init", "-q", "-b", "main")
    return dest, commit(dest, "base")


def pr_event(base: str, head: str, head_repo: str = "replay/mnist-bench", number: int = 1) -> dict[str, Any]:
    """A pull_request event's payload; another `head_repo` than the base's is a fork's PR."""
    base_repo = {"fork": False, "full_name": "replay/mnist-bench"}
    fork = {"fork": head_repo != base_repo["full_name"], "full_name": head_repo}
    return {
        "pull_request": {
            "number": number,
            "base": {"sha": base, "repo": base_repo},
            "head": {"sha": head, "repo": fork},
        }
    }


def pull_request_merge(project: Path, base: str, change: tuple[str, str]) -> tuple[str, str, str]:
    """A PR branched from `base` while main moved on, and the merge commit GitHub checks out for it:
    (main's newer commit, the PR's head, the merge commit)."""
    git(project, "checkout", "-q", "-b", "pr", base)
    (project / change[0]).write_text(change[1])
    head = commit(project, "head: " + change[0])
    git(project, "checkout", "-q", "main")
    (project / "MAIN.md").write_text("main moved on after the PR was opened\n")
    moved = commit(project, "main moves on")
    git(project, "-c", "user.name=t", "-c", "user.email=t@t", "merge", "-q", "--no-ff", "-m", "merge pr", "pr")
    return moved, head, git(project, "rev-parse", "HEAD")
