"""Replay a GitHub Actions workflow's `run:` steps locally, in order, the way a runner would run them.

Jobs run in `needs` order, a matrix as a loop; each job is a fresh runner: a fresh clone of the project (its
checkout) at the head commit and its own empty home (so every compile cache starts empty); `run:` steps run with
`bash --noprofile --norc -eo pipefail` like a hosted runner, with `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY`
as files and `${{ }}` expressions (only allowed in `env:`, `with:` and `if:`) evaluated against a given event.
Artifacts are folders. The project's setup action is replayed step by step: its `bash .ci/setup` becomes a
`.venv` whose `python` and `mnist-bench` run this interpreter on the job's clone, its other `run:` steps run,
and its `actions/cache` steps use a `CacheStore` with GitHub's semantics when the replay has one (else nothing
is restored or saved). `actions/github-script` runs its script under node against a fake GitHub
(tests/comment_step_harness.js) when the replay has one; `peter-evans/create-pull-request` records what it
would open. Any other `uses:` step (benchmark-action, ...) is recorded as skipped. `job_env` adds environment
variables per job (by job id, or by a matrix entry's label such as `gate-shard-2`), e.g. to give each runner of
a simulated fleet its own CPU identity. `cancel_at` cancels the run as a given step is about to start, as a
newer push to the same pull request does.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.tg import data as mnist_data

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".github" / "workflows" / "bench.yml"
NODE_MODULES = ROOT / ".ci" / ".node" / "node_modules"  # @actions/github and @actions/core (.ci/run installs them)
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


DEFAULT_REF = "refs/heads/main"
REPOSITORY = "replay/mnist-bench"
SERVER_URL = "https://github.invalid"
GITHUB_TOKEN = "ghs_replay"  # the run's own GITHUB_TOKEN (github.token)


@dataclass
class Job:
    """One job (a matrix entry) while it runs: its workspace, summary file and post steps (cache saves)."""

    name: str
    label: str
    dir: Path
    summary: Path
    post: list[Any]


@dataclass
class CacheEntry:
    key: str
    scope: str  # the ref whose run saved it
    run: str
    job: str
    folder: Path  # home/... and workspace/..., the saved paths


class CacheStore:
    """GitHub's Actions cache, shared by the jobs of a replayed run and by later runs given the same store.

    - An entry is immutable: saving under a key that already exists in that ref's scope is a no-op (the first
      writer wins), so two jobs that share a key keep only the first finisher's files.
    - A restore looks in the run's own ref, then in the default branch: the exact key (a cache hit, after which
      the job saves nothing), then an entry whose key starts with the key, then each restore key in order as a
      prefix, the newest entry first.
    - A pull request's entries are its own; main's serve every branch.
    - Jobs of one run that do not need each other run at the same time on GitHub: a job sees none of its
      siblings' entries, only those of earlier runs and of the jobs it needs.
    """

    def __init__(self, root: Path):
        self.root = root
        self.entries: list[CacheEntry] = []

    def restore(
        self, key: str, restore_keys: list[str], scope: str, run: str, needs: set[str]
    ) -> tuple[CacheEntry | None, bool]:
        seen = [e for e in self.entries if e.run != run or e.job in needs]
        for ref in dict.fromkeys((scope, DEFAULT_REF)):
            here = [e for e in reversed(seen) if e.scope == ref]  # newest first
            exact = [e for e in here if e.key == key]
            if exact:
                return exact[0], True
            for prefix in (key, *restore_keys):
                hits = [e for e in here if e.key.startswith(prefix)]
                if hits:
                    return hits[0], False
        return None, False

    def save(self, key: str, scope: str, run: str, job: str, files: list[tuple[str, Path, Path]]) -> CacheEntry | None:
        """`files`: (root name, root, path under it). None when the key exists in this scope (nothing saved)."""
        if any(e.key == key and e.scope == scope for e in self.entries):
            return None
        entry = CacheEntry(key, scope, run, job, self.root / str(len(self.entries)))
        for root_name, root, path in files:
            target = entry.folder / root_name / path.relative_to(root)
            if path.is_dir():
                shutil.copytree(path, target, symlinks=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        entry.folder.mkdir(parents=True, exist_ok=True)
        self.entries.append(entry)
        return entry

    def find(self, key: str, scope: str = DEFAULT_REF) -> CacheEntry | None:
        return next((e for e in self.entries if e.key == key and e.scope == scope), None)


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
    secrets: dict[str, str] = field(default_factory=dict)
    run_id: str = "1"
    caches: CacheStore | None = None  # GitHub's cache; None: nothing restored, nothing saved
    github_api: Path | None = None  # the fake GitHub's state (JSON) for github-script steps; None: not replayed
    cancel_at: tuple[str, str] | None = None  # (job label, step name): the run is cancelled as that step starts
    cancelled: bool = False
    pull_requests: list[dict[str, Any]] = field(default_factory=list)  # what create-pull-request steps would open

    @property
    def artifacts(self) -> Path:
        return self.work / "artifacts"

    @property
    def ref(self) -> str:
        pr = self.event.get("pull_request")
        return f"refs/pull/{pr['number']}/merge" if pr else self.event.get("ref", DEFAULT_REF)

    def context(
        self,
        job_dir: Path,
        matrix: dict[str, Any],
        steps: dict[str, Any],
        status: str,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        def hash_files(*patterns: str) -> str:
            files = sorted({f for p in patterns for f in job_dir.glob(p) if f.is_file()})
            digest = hashlib.sha256()
            for f in files:
                digest.update(hashlib.sha256(f.read_bytes()).digest())
            return digest.hexdigest() if files else ""

        github = {
            "event_name": self.event_name,
            "event": self.event,
            "sha": self.head,
            "ref": self.ref,
            "ref_name": "replay",
            "repository": REPOSITORY,
            "server_url": SERVER_URL,
            "run_id": self.run_id,
            "token": GITHUB_TOKEN,
        }
        return {
            "github": wrap(github),
            "inputs": wrap(self.inputs),
            "matrix": wrap(matrix),
            "steps": wrap(steps),
            "env": wrap(env if env is not None else self.workflow_env()),
            "runner": wrap({"os": "Linux", "arch": "X64"}),
            "secrets": wrap(self.secrets),
            "needs": wrap({}),
            "always": lambda: True,
            "success": lambda: status == "success",
            "failure": lambda: status == "failure",
            "cancelled": lambda: self.cancelled,
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
        ctx = self.context(self.work, {}, {}, "success" if needs_ok and not self.cancelled else "failure")
        if not self.condition(job.get("if"), ctx):
            self.job_results[name] = "cancelled" if self.cancelled else "skipped"
            return
        matrix = job.get("strategy", {}).get("matrix", {})
        keys = [k for k in matrix if k not in ("include", "exclude")]
        outcomes, started_cancelled = [], self.cancelled  # `always()` starts a job on a cancelled run
        for values in itertools.product(*(matrix[k] for k in keys)):
            combo = dict(zip(keys, values, strict=True))
            label = name + "".join(f"-{v}" for v in values)
            if self.cancelled and not started_cancelled:  # an entry not started when the run was cancelled
                outcomes.append("cancelled")
                continue
            start = time.monotonic()
            outcomes.append(self.run_steps(name, label, job, combo))
            self.seconds[label] = time.monotonic() - start
        self.job_results[name] = next((o for o in ("cancelled", "failure") if o in outcomes), "success")

    def needs_of(self, name: str) -> set[str]:
        """Every job `name` waits for, directly or through others."""
        needs = self.workflow["jobs"][name].get("needs", [])
        needs = {needs} if isinstance(needs, str) else set(needs)
        return needs.union(*(self.needs_of(n) for n in needs))

    def run_steps(self, name: str, label: str, job: dict[str, Any], matrix: dict[str, Any]) -> str:
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
        run = Job(name, label, job_dir, summary, [])
        for i, step in enumerate(job["steps"]):
            step_name = step.get("name") or step.get("uses") or f"step {i}"
            if self.cancel_at == (label, step_name):
                self.cancelled, status = True, "cancelled"
            ctx = self.context(job_dir, matrix, steps, status, job_env)
            if not self.condition(step.get("if"), ctx):
                self.results.append(StepResult(label, step_name, "skipped"))
                continue
            env = {**self.machine_env(label), **job_env}
            env.update({k: self.template(v, ctx) for k, v in step.get("env", {}).items()})
            if "run" in step:
                ok, outputs = self.run_script(label, step_name, step["run"], job_dir, env, summary, i)
            else:
                ok, outputs = self.use(run, step_name, step, ctx, env)
            if step.get("id"):
                steps[step["id"]] = {"outcome": "success" if ok else "failure", "outputs": outputs}
            if not ok and not step.get("continue-on-error") and status == "success":
                status = "failure"
        for post in reversed(run.post):  # post steps, last first, as a runner runs them
            post(status)
        return status

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

    def use(
        self, job: Job, step_name: str, step: dict[str, Any], ctx: dict[str, Any], env: dict[str, str]
    ) -> tuple[bool, dict[str, str]]:
        action = step["uses"]
        with_ = {k: self.template(v, ctx) for k, v in step.get("with", {}).items()}
        ok, note, outputs = True, "done", {}
        if action.startswith("actions/checkout@"):
            subprocess.run(["git", "clone", "-q", str(self.project), str(job.dir)], check=True)
            subprocess.run(["git", "-C", str(job.dir), "checkout", "-q", self.head], check=True)
        elif action == "./.github/actions/setup":
            ok = self.composite(job, job.dir / ".github" / "actions" / "setup" / "action.yml", with_, env)
            note = f"replayed; compile caches of job kind {with_.get('cache') or '(none)'}"
        elif action.startswith("actions/setup-python@"):
            outputs = {"python-version": ".".join(map(str, sys.version_info[:3]))}
            note = "skipped: this interpreter"
        elif action.startswith("actions/cache@"):
            ok, note, outputs = self.cache(job, with_, env)
        elif action.startswith("actions/upload-artifact@"):
            ok, note = self.upload(job.dir, with_)
        elif action.startswith("actions/download-artifact@"):
            ok, note = self.download(job.dir, with_)
        elif action.startswith("actions/github-script@") and self.github_api is not None:
            ok, note = self.github_script(job, with_["script"], env)
        elif action.startswith("peter-evans/create-pull-request@"):
            ok, note, outputs = self.create_pull_request(job, with_)
        else:
            note = "skipped: not replayed"
        self.results.append(StepResult(job.label, step_name, "success" if ok else "failure", None, note, outputs))
        return ok, outputs

    def composite(self, job: Job, action_file: Path, with_: dict[str, str], env: dict[str, str]) -> bool:
        """A local composite action's steps, with its inputs (defaults filled in) as `inputs`; `bash .ci/setup`
        (apt installs, the real .venv) is the fake .venv here."""
        import yaml  # in the dev extras

        action = yaml.safe_load(action_file.read_text())
        inputs = {k: with_.get(k, str(v.get("default", ""))) for k, v in action.get("inputs", {}).items()}
        steps: dict[str, Any] = {}
        for i, step in enumerate(action["runs"]["steps"]):
            ctx = {**self.context(job.dir, {}, steps, "success", env), "inputs": wrap(inputs)}
            name = step.get("name") or step.get("uses") or f"setup step {i}"
            if not self.condition(step.get("if"), ctx):
                self.results.append(StepResult(job.label, name, "skipped"))
                continue
            step_env = {**env, **{k: self.template(v, ctx) for k, v in step.get("env", {}).items()}}
            if step.get("run", "").strip() == "bash .ci/setup":
                self.fake_venv(job.dir)
                ok, outputs = True, {}
                self.results.append(StepResult(job.label, name, "success", None, "fake .venv"))
            elif "run" in step:
                ok, outputs = self.run_script(job.label, name, step["run"], job.dir, step_env, job.summary, 1000 + i)
            else:
                ok, outputs = self.use(job, name, step, ctx, step_env)
            if step.get("id"):
                steps[step["id"]] = {"outcome": "success" if ok else "failure", "outputs": outputs}
            if not ok:
                return False
        return True

    @staticmethod
    def cache_roots(job: Job, paths: str, env: dict[str, str]) -> list[tuple[str, Path, str]]:
        """(root name, root, glob under it) for each line of a cache step's `path`: `~` is the job's home."""
        out = []
        for line in filter(None, (p.strip() for p in paths.splitlines())):
            if line.startswith("~/"):
                out.append(("home", Path(env["HOME"]), line[2:]))
            else:
                out.append(("workspace", job.dir, line))
        return out

    def cache(self, job: Job, with_: dict[str, str], env: dict[str, str]) -> tuple[bool, str, dict[str, str]]:
        """actions/cache: restore now (exact key, else a prefix), save at the job's end unless the key hit."""
        if self.caches is None:
            return True, "skipped: no cache store in this replay", {}
        store = self.caches
        key, restore_keys = with_["key"], [k.strip() for k in with_.get("restore-keys", "").splitlines() if k.strip()]
        roots = self.cache_roots(job, with_["path"], env)
        entry, hit = store.restore(key, restore_keys, self.ref, self.run_id, self.needs_of(job.name))
        if entry is not None:
            for root_name, root, _ in roots:
                if (entry.folder / root_name).is_dir():
                    shutil.copytree(entry.folder / root_name, root, dirs_exist_ok=True, symlinks=True)

        def save(status: str) -> None:
            if status != "success" or hit:  # actions/cache: post-if success(); an exact hit is not saved again
                return
            files = [(name, root, f) for name, root, pattern in roots for f in sorted(root.glob(pattern))]
            if not files:
                note = f"no files at {with_['path'].strip()}: nothing saved"
            elif store.save(key, self.ref, self.run_id, job.name, files) is None:
                note = f"{key} already exists: not saved (entries are immutable; the first writer won)"
            else:
                note = f"saved {key}"
            self.results.append(StepResult(job.label, f"Post cache {key}", "success", None, note))

        job.post.append(save)
        note = "no entry" if entry is None else f"{'hit' if hit else 'restored'} {entry.key} (saved by {entry.job})"
        return True, note, {"cache-hit": str(hit).lower(), "cache-matched-key": entry.key if entry else ""}

    def github_script(self, job: Job, script: str, env: dict[str, str]) -> tuple[bool, str]:
        """The step's script under node, as actions/github-script runs it, against the fake GitHub in
        `github_api` (its comments are kept there for the next run)."""
        folder = self.work / "github-script"
        folder.mkdir(exist_ok=True)
        files = {n: folder / f"{job.label}-{n}.json" for n in ("event", "script", "result")}
        files["event"].write_text(json.dumps(self.event))
        files["script"].write_text(script)
        node_env = {
            "PATH": env["PATH"],
            "HOME": env["HOME"],
            "GITHUB_EVENT_NAME": self.event_name,
            "GITHUB_EVENT_PATH": str(files["event"]),
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_SERVER_URL": SERVER_URL,
            "GITHUB_API_URL": "https://api.github.invalid",
            "GITHUB_RUN_ID": self.run_id,
            "GITHUB_STEP_SUMMARY": str(job.summary),
            "ACTIONS_NODE_MODULES": str(NODE_MODULES),
            "STEP_SCRIPT": str(files["script"]),
            "FAKE_GITHUB": str(self.github_api),
            "RESULT": str(files["result"]),
        }
        done = subprocess.run(
            ["node", str(ROOT / "tests" / "comment_step_harness.js")],
            cwd=job.dir,
            env=node_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        result = json.loads(files["result"].read_text())
        state = json.loads(self.github_api.read_text())
        self.github_api.write_text(json.dumps({**state, "comments": result["comments"]}))
        return done.returncode == 0, f"{result['result']}: {done.stdout + done.stderr}"

    def create_pull_request(self, job: Job, with_: dict[str, str]) -> tuple[bool, str, dict[str, str]]:
        """What peter-evans/create-pull-request would commit and open: the changed files under `add-paths`."""
        paths = [p.strip() for p in with_.get("add-paths", "").replace(",", "\n").splitlines() if p.strip()]
        changed = sorted(set(git(job.dir, "ls-files", "-mo", "--exclude-standard", "--", *paths).splitlines()))
        if not changed:
            return True, "would open nothing (no changes)", {}
        number = len(self.pull_requests) + 2
        url = f"{SERVER_URL}/{REPOSITORY}/pull/{number}"
        self.pull_requests.append({**with_, "files": changed, "job": job.label, "url": url})
        return True, f"would open {url}", {"pull-request-number": str(number), "pull-request-url": url}

    @staticmethod
    def fake_venv(job_dir: Path) -> None:
        """`.venv/bin/python` and `.venv/bin/mnist-bench`: this interpreter (and its packages) on the clone's code."""
        bin_dir = job_dir / ".venv" / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)  # a .venv restored from a cache is set up again
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
