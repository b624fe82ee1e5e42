"""Deterministic cost metrics: the work tinygrad says a jitted step does, and a gate on it.

tinygrad counts, for every kernel it runs, an estimate of its operations and of the bytes it moves
(`tinygrad.helpers.GlobalCounters`). The estimates are computed from the linearized UOps of each kernel
(`Estimates.from_uops`, before the C compiler sees the code), so on a jitted step they are the same on
every step, seed and process. This module measures them per model config (`measure`), profiles a
trainer after a training run (`trainer_profile`, for embedding as a run record's `cost` object), keys
and stores cost baselines, and compares two profiles with exact rules (`compare`).

A step's cost has one definition, here and in every run record: the kernels of the captured jitted step
(their static estimates, the sums of the kernel list). GlobalCounters over a whole call also counts the
copies of the step's inputs onto the device, made outside the jit (the batch indices; a scheduled
learning rate): one kernel and their bytes each. `measure` keeps that reading apart, as `counted`.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__, documents
from harness.base.errors import ExitCode, HarnessError
from harness.base.metrics import COUNTS
from harness.documents import schema
from harness.gate import rules
from harness.tg import counters, devices
from harness.tg.data import Mnist
from harness.tg.models import MODELS
from harness.tg.spec import RunSpec
from harness.tg.train import WARMUP_STEPS, Trainer, batch_order, step_lr

DEFAULT_ROOT = Path("results/baselines/cost")
STEPS = 2  # measured train steps after the warm-up
EVAL_STEPS = 2  # measured eval batches after the eval warm-up
# spec fields that change no step's work: left out of the spec digest (seeds verified, the rest by reading train.py)
NOT_IN_DIGEST = ("seed", "steps", "eval_every", "log_every")
# tinygrad settings that never change the kernels or their estimates; every other set tinygrad variable goes in the key
ENV_NOT_IN_KEY = ("DEV", "DEBUG", "CACHEDB", "CACHELEVEL", "CCACHE", "NUM_CPU_THREADS", "CC")
GATED = (
    ("train_step", "kernels"),
    ("train_step", "flops"),
    ("train_step", "bytes"),
    ("eval_pass", "kernels"),
    ("eval_pass", "flops"),
    ("eval_pass", "bytes"),
    ("memory", "jit_buffers_bytes"),
    ("compile", "kernels_compiled"),
)


def _phase(samples: list[tuple[int, int, int]], static: dict[str, int], scale: int = 1) -> dict[str, Any]:
    """One phase's counts, `scale` calls of it (the eval pass is `batches` calls of the eval step).

    Its kernels, FLOP and bytes are the captured jitted step's (`static`, the sums of the kernel list): the
    one definition a run record's `cost` and every metric share. `counted` is what GlobalCounters saw over
    one call as the harness makes it: the jitted kernels plus the copies of the step's inputs onto the
    device outside the jit (the batch indices; the learning rate when it is scheduled), one kernel each;
    the measured calls must agree (`identical`)."""
    kernels, flops, nbytes = (static[k] * scale for k in ("kernels", "flops", "bytes"))
    counted = dict(zip(("kernels", "flops", "bytes"), (x * scale for x in samples[0]), strict=True))
    return {
        "kernels": kernels,
        "flops": flops,
        "bytes": nbytes,
        "intensity": counters.intensity(flops, nbytes),
        "counted": {**counted, "samples": [list(s) for s in samples], "identical": len(set(samples)) == 1},
    }


# --- measuring ------------------------------------------------------------------------------------


def spec_digest(spec: RunSpec) -> str:
    """sha256 of the spec fields that decide a step's work (not seed, steps, eval_every, log_every)."""
    fields = {k: v for k, v in spec.to_json().items() if k not in NOT_IN_DIGEST}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def measure(
    spec: RunSpec,
    data: Mnist,
    device: str,
    *,
    steps: int = STEPS,
    eval_steps: int = EVAL_STEPS,
    strict: bool = True,
) -> dict[str, Any]:
    """The cost profile of one model config: warm-up, then `steps` jitted train steps and `eval_steps` jitted
    eval batches with the counters reset before and read after each (`.item()` synchronises).

    Every measured step must give the same counts: `strict` raises a HarnessError if not, else the phase
    records `identical: false`.
    """
    if steps < 1 or eval_steps < 1:
        raise HarnessError(f"cost needs at least 1 measured step and eval batch, got {steps} and {eval_steps}")
    gc.collect()
    mem_before = counters.mem_used()
    # the eval calls below compile their kernels on first use: under the device's DEV, as Trainer.accuracy does
    with counters.CompileCount() as compiled, devices.running_on(device):
        trainer = Trainer(spec, data, device)
        order = batch_order(spec.seed, len(data.y_train), spec.batch_size, WARMUP_STEPS + steps)
        peak = counters.mem_used()
        t0 = time.perf_counter()
        for step in range(1, WARMUP_STEPS + 1):
            trainer.step(order[step - 1], step_lr(spec, step))
            peak = max(peak, counters.mem_used())
        warmup_s = time.perf_counter() - t0
        train_samples, step_times = [], []
        for step in range(WARMUP_STEPS + 1, WARMUP_STEPS + steps + 1):
            lr = step_lr(spec, step)
            counters.reset()
            t0 = time.perf_counter()
            trainer.step(order[step - 1], lr)
            step_times.append(time.perf_counter() - t0)
            train_samples.append(counters.read())
            peak = max(peak, counters.mem_used())
        batches = trainer.test_batches
        t0 = time.perf_counter()
        for i in range(WARMUP_STEPS):
            x, y = batches[i % len(batches)]
            trainer.correct(x, y).item()
        eval_warmup_s = time.perf_counter() - t0
        eval_samples = []
        for i in range(eval_steps):
            x, y = batches[(WARMUP_STEPS + i) % len(batches)]
            counters.reset()
            trainer.correct(x, y).item()
            eval_samples.append(counters.read())
            peak = max(peak, counters.mem_used())
        n_compiled = compiled.count()
    profile = _profile(spec, trainer, train_samples, eval_samples, len(batches))
    profile["memory"] = {
        **counters.jit_buffers(trainer.train_step, trainer.correct),
        "peak_bytes": peak - mem_before,
        "note": "peak_bytes: GlobalCounters.mem_used after every call, less its value before; for information",
    }
    profile["compile"] = {"kernels_compiled": n_compiled, "warmup_s": warmup_s, "eval_warmup_s": eval_warmup_s}
    profile["derived"] = counters.derived(profile, float(np.median(step_times)))
    _check_identical(profile, spec.model, strict)
    return profile


def _profile(spec, trainer, train_samples, eval_samples, n_batches) -> dict[str, Any]:
    kernels = counters.kernel_list(trainer.train_step)
    train = _phase(train_samples, counters.totals(kernels))
    ev = _phase(eval_samples, counters.totals(counters.kernel_list(trainer.correct)), n_batches)
    ev["batches"] = n_batches
    return {
        "model": spec.model,
        "spec_digest": spec_digest(spec),
        "spec": spec.to_json(),
        "train_step": train,
        "eval_pass": ev,
        "kernels": kernels,
    }


def _check_identical(profile: dict[str, Any], model: str, strict: bool) -> None:
    for phase in ("train_step", "eval_pass"):
        counted = profile[phase]["counted"]
        if not counted["identical"] and strict:
            raise HarnessError(
                f"{model}: the {phase.replace('_', ' ')} counts differ between jitted calls "
                f"({counted['samples']}); cost metrics need a deterministic step",
                ExitCode.ENVIRONMENT,
            )


def trainer_profile(trainer: Trainer, step_time_s: float | None = None) -> dict[str, Any]:
    """`counters.trainer_profile` with the digest of the trainer's spec, as `measure` keys its profiles."""
    return {**counters.trainer_profile(trainer, step_time_s), "spec_digest": spec_digest(trainer.spec)}


# --- the document and its key ---------------------------------------------------------------------


def key_fields(device: str) -> dict[str, Any]:
    """What the counts depend on: device type, renderer, CPU threads (CPU only), tinygrad and harness versions,
    and any set tinygrad setting that can change the kernels. Not the CPU model (see README, "Cost gate")."""
    from harness.tg import env

    info = devices.resolve(device)
    settings = {k: v for k, v in env.collect_tinygrad_env().items() if k not in ENV_NOT_IN_KEY}
    return {
        "device_type": info.name.split(":")[0],
        "renderer": info.renderer,
        "cpu_threads": counters.cpu_threads() if info.name.split(":")[0] == "CPU" else None,
        "tinygrad": env.collect_packages()["tinygrad"] or "unknown",
        "harness": __version__,
        "tinygrad_settings": settings,
    }


def key_of(fields: dict[str, Any]) -> str:
    """The folder name of a key, e.g. CPU-ClangRenderer-threads2-tinygrad0.14.0-harness0.1.0."""
    parts = [fields["device_type"], fields["renderer"]]
    if fields.get("cpu_threads") is not None:
        parts.append(f"threads{fields['cpu_threads']}")
    parts += [f"tinygrad{fields['tinygrad']}", f"harness{fields['harness']}"]
    if fields.get("tinygrad_settings"):
        blob = json.dumps(fields["tinygrad_settings"], sort_keys=True).encode()
        parts.append(f"env{hashlib.sha256(blob).hexdigest()[:8]}")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts))


def machine_info(device: str) -> dict[str, Any]:
    """For information only: none of this is in the key."""
    from harness.tg import env

    return {
        "device": devices.resolve(device).to_json(),
        "cpu": env.collect_cpu(),
        "os": env.collect_os(),
        "python": env.collect_python()["version"],
        "git": env.collect_git(),
        "tinygrad_env": env.collect_tinygrad_env(),
        "compile_cache": env.collect_compile_cache(),
    }


def document(profiles: list[dict[str, Any]], device: str, *, wall_s: float | None = None) -> dict[str, Any]:
    fields = key_fields(device)
    doc = {
        **documents.header("cost"),
        "key": key_of(fields),
        "key_fields": fields,
        "machine": machine_info(device),
        "profiles": profiles,
    }
    if wall_s is not None:
        doc["wall_s"] = wall_s
    schema.check(doc, "cost")
    return doc


def run(
    models: list[str], data: Mnist, device: str | None = None, *, steps: int = STEPS, eval_steps: int = EVAL_STEPS
) -> dict[str, Any]:
    """Measure every model's default spec on `device`, one after the other, and return the cost document.

    (Measuring the two models at once in two processes was tried on a 2-core machine: no faster, since
    the CNN's compile dominates and the two processes share the memory system.)"""
    t0 = time.perf_counter()
    name = devices.resolve(device).name
    profiles = [measure(default_spec(m), data, name, steps=steps, eval_steps=eval_steps) for m in models]
    return document(profiles, name, wall_s=time.perf_counter() - t0)


def default_spec(model: str) -> RunSpec:
    """The spec a model's cost is measured and keyed for: the model's default run."""
    return RunSpec.defaults(model)


def models_for(choice: str | Sequence[str]) -> list[str]:
    """`all`, one model's name, or several names (`cost --model mlp --model cnn`)."""
    if not isinstance(choice, str):
        return [m for name in choice for m in models_for(name)]
    if choice == "all":
        return list(MODELS)
    if choice not in MODELS:
        raise HarnessError(f"unknown model {choice!r}; choose one of: {', '.join(MODELS)}, all")
    return [choice]


def gate(
    choice: str | Sequence[str],
    data_dir: str | None = None,
    device: str | None = None,
    *,
    baseline: Path | None = None,
    root: Path = DEFAULT_ROOT,
    tolerance_pct: float = 0.0,
    save_baseline: bool = False,
    data: Mnist | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None, list[Path]]:
    """`mnist-bench cost`: (cost document, comparison or None, baseline files written).

    The baselines are found before anything is measured, so a missing one fails in a second. With
    `save_baseline` a missing baseline is no error: the measurement becomes the baseline."""
    from harness.tg import data as mnist_data

    check_tolerance(tolerance_pct)
    models = models_for(choice)
    name = devices.resolve(device).name
    key = key_of(key_fields(name))
    wanted = [{"model": m, "spec_digest": spec_digest(default_spec(m))} for m in models]
    if baseline is not None:
        bases = [load_profile(Path(baseline), m) for m in models]
    else:
        probe = {"key": key}
        found = [baseline_path(root, key, w).exists() for w in wanted]
        if not save_baseline:
            bases = [find(probe, w, root) for w in wanted]  # raises, naming the key and the keys that exist
        else:
            bases = [find(probe, w, root) if ok else None for w, ok in zip(wanted, found, strict=True)]
    doc = run(models, data or mnist_data.load(data_dir), name)
    pairs = [(p, b) for p, b in zip(doc["profiles"], bases, strict=True) if b is not None]
    comparison = None
    if pairs:
        comparison = compare({**doc, "profiles": [p for p, _ in pairs]}, [b for _, b in pairs], tolerance_pct)
    paths = save(doc, root) if save_baseline else []
    return doc, comparison, paths


# --- baselines ------------------------------------------------------------------------------------


def baseline_path(root: Path, key: str, profile: dict[str, Any]) -> Path:
    return Path(root) / key / f"{profile['model']}-{profile['spec_digest'][:12]}.json"


def save(doc: dict[str, Any], root: Path = DEFAULT_ROOT) -> list[Path]:
    """One baseline file per profile: <root>/<key>/<model>-<spec digest>.json (a cost document each)."""
    paths = []
    for profile in doc["profiles"]:
        single = {**doc, "profiles": [profile]}
        single.pop("wall_s", None)
        paths.append(documents.write(baseline_path(root, doc["key"], profile), single, "cost"))
    return paths


def available_keys(root: Path = DEFAULT_ROOT) -> list[str]:
    return sorted(p.name for p in Path(root).glob("*") if p.is_dir() and any(p.glob("*.json")))


def find(doc: dict[str, Any], profile: dict[str, Any], root: Path = DEFAULT_ROOT) -> dict[str, Any]:
    """The stored baseline profile for this document's key and this profile's spec, or a one-line error."""
    path = baseline_path(root, doc["key"], profile)
    if not path.exists():
        keys = available_keys(root)
        files = sorted(p.name for p in (Path(root) / doc["key"]).glob("*.json"))
        have = f"files under that key: {', '.join(files)}" if files else f"keys that exist: {', '.join(keys) or 'none'}"
        raise HarnessError(
            f"no cost baseline for key {doc['key']} and {profile['model']} spec {profile['spec_digest'][:12]} "
            f"(looked for {path}); {have}; create one with `mnist-bench cost {profile['model']} --save`"
        )
    return load_profile(path, profile["model"])


def load_profile(path: Path, model: str) -> dict[str, Any]:
    doc = documents.load(path, "cost")
    found = [p for p in doc["profiles"] if p["model"] == model]
    if not found:
        models = ", ".join(p["model"] for p in doc["profiles"])
        raise HarnessError(f"{path}: has no {model} profile (it has: {models})")
    return {**found[0], "_key": doc["key"], "_path": str(path)}


# --- comparison -----------------------------------------------------------------------------------


def kernel_diff(base: list[dict[str, Any]], cur: list[dict[str, Any]]) -> dict[str, Any]:
    """Kernels by name (a multiset): names added / removed, and names whose count changed."""
    a, b = Counter(k["name"] for k in base), Counter(k["name"] for k in cur)
    return {
        "added": sorted(n for n in b if n not in a),
        "removed": sorted(n for n in a if n not in b),
        "count_changed": sorted([n, a[n], b[n]] for n in a.keys() & b.keys() if a[n] != b[n]),
    }


def check_tolerance(tolerance_pct: float) -> None:
    """A NaN tolerance would turn every rise into `changed` (no comparison with NaN is true): refused too."""
    if not (math.isfinite(tolerance_pct) and tolerance_pct >= 0):
        raise HarnessError(f"--tolerance must be >= 0 (a finite percentage), got {tolerance_pct}")


def compare_profiles(base: dict[str, Any], cur: dict[str, Any], tolerance_pct: float = 0.0) -> list[dict[str, Any]]:
    """One row per gated count (metrics.COUNTS), judged by the rules engine's exact check: a rise beyond
    `tolerance_pct` % is a regression, a fall an improvement, anything else passes (named when it changed)."""
    rows = []
    for m in COUNTS:
        b, c = m.of_profile(base), m.of_profile(cur)
        if b is None or c is None:
            continue  # a count one side's harness did not measure yet
        verdict, reason, _ = rules.exact_rule(m, tolerance_pct).check(rules.stat(b), rules.stat(c))
        delta = c - b
        rows.append(
            {
                "model": cur["model"],
                "metric": m.name,
                "baseline": b,
                "current": c,
                "delta": delta,
                "delta_pct": 100 * delta / b if b else (0.0 if not delta else None),
                "verdict": verdict,
                "reason": reason,
            }
        )
    return rows


def compare(current: dict[str, Any], baselines: list[dict[str, Any]], tolerance_pct: float = 0.0) -> dict[str, Any]:
    """The cost comparison document: `current` (a cost document) against one baseline profile per profile."""
    check_tolerance(tolerance_pct)
    models, rows, problems, changes, warnings = [], [], [], [], []
    for cur, base in zip(current["profiles"], baselines, strict=True):
        if base.get("_key", current["key"]) != current["key"]:
            warnings.append(f"{cur['model']}: baseline key {base['_key']} is not the current key {current['key']}")
        if base["spec_digest"] != cur["spec_digest"]:
            warnings.append(f"{cur['model']}: the baseline was measured for another spec ({base['spec_digest'][:12]})")
        model_rows = compare_profiles(base, cur, tolerance_pct)
        diff = kernel_diff(base["kernels"], cur["kernels"])
        rows += model_rows
        for r in model_rows:
            if r["delta"]:
                changes.append(f"{r['model']} {r['metric']}: {describe_delta(r)}")
            if r["verdict"] == "regression":
                problems.append(f"{r['model']} {r['metric']}: {describe_delta(r)} > tolerance {tolerance_pct:g}%")
        models.append({"model": cur["model"], "baseline": base.get("_path", ""), "kernel_diff": diff})
    doc = {
        **documents.header("cost_comparison"),
        "key": current["key"],
        "tolerance_pct": tolerance_pct,
        "models": models,
        "rows": rows,
        "changes": changes,
        "warnings": warnings,
        "problems": problems,
        "verdict": "regression" if problems else "pass",
    }
    schema.check(doc, "cost_comparison")
    return doc


def _num(x: int | float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:,.4g}"


def describe_delta(row: dict[str, Any]) -> str:
    pct = "" if row["delta_pct"] is None else f" ({row['delta_pct']:+.3g}%)"
    sign = "+" if row["delta"] > 0 else ""
    return f"{_num(row['baseline'])} -> {_num(row['current'])}, {sign}{_num(row['delta'])}{pct}"


def _diff_lines(diff: dict[str, Any]) -> list[str]:
    lines = [f"kernel added: {n}" for n in diff["added"]] + [f"kernel removed: {n}" for n in diff["removed"]]
    return lines + [f"kernel count changed: {n} {a} -> {b}" for n, a, b in diff["count_changed"]]


HEAD = ("model", "metric", "baseline", "current", "delta", "verdict")


def _cells(doc: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            r["model"],
            r["metric"],
            _num(r["baseline"]),
            _num(r["current"]),
            "0" if not r["delta"] else describe_delta(r).split(", ", 1)[1],
            r["verdict"].upper(),
        )
        for r in doc["rows"]
    ]


def _word(doc: dict[str, Any]) -> str:
    return "PASS" if doc["verdict"] == "pass" else "REGRESSION"


def _diffs(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["model"], line) for m in doc["models"] for line in _diff_lines(m["kernel_diff"])]


def markdown(doc: dict[str, Any], *, problems: bool = True) -> str:
    """The comparison in Markdown; `problems` False leaves the list of problems to an enclosing view."""
    lines = [f"### mnist-bench cost `{doc['key']}` (tolerance {doc['tolerance_pct']:g}%): **{_word(doc)}**", ""]
    lines += [f"> :warning: {w}" for w in doc["warnings"]] + ([""] if doc["warnings"] else [])
    lines += [documents.table(HEAD, _cells(doc), "markdown"), ""]
    lines += [f"- {model}: {line}" for model, line in _diffs(doc)]
    return "\n".join(lines + [f"- :x: {p}" for p in doc["problems"] if problems]).rstrip("\n")


def text(doc: dict[str, Any]) -> str:
    lines = [f"cost key: {doc['key']}  tolerance: {doc['tolerance_pct']:g}%"]
    lines += [f"WARNING: {w}" for w in doc["warnings"]]
    lines += [documents.table(HEAD, _cells(doc))]
    lines += [f"{model}: {line}" for model, line in _diffs(doc)]
    return "\n".join([*lines, *(f"FAIL {p}" for p in doc["problems"]), f"verdict: {_word(doc)}"])


documents.views("cost_comparison", text=text, markdown=markdown)


def transfers_text(phase: dict[str, Any]) -> str:
    """What GlobalCounters counted beyond the jitted step, in words: the copies of the step's inputs."""
    c = phase.get("counted")
    if not c:
        return "the jitted step"
    extra_k, extra_b = c["kernels"] - phase["kernels"], c["bytes"] - phase["bytes"]
    return (
        f"the jitted step; as called, {c['kernels']} kernels and {_num(c['bytes'])} B with "
        f"{extra_k} input cop{'y' if extra_k == 1 else 'ies'} ({_num(extra_b)} B) outside the jit"
    )


def profile_summary(profile: dict[str, Any]) -> str:
    """One line per phase for the terminal, e.g. after `--save`."""
    t, e, d = profile["train_step"], profile["eval_pass"], profile.get("derived")
    speed = (
        f"; {d['gflops_per_s']:.1f} GFLOP/s, {d['gb_per_s']:.2f} GB/s at {d['step_time_s'] * 1e3:.0f} ms" if d else ""
    )
    peak = _num(profile["memory"]["peak_bytes"])
    return (
        f"{profile['model']}: step {t['kernels']} kernels, {_num(t['flops'])} FLOP, {_num(t['bytes'])} B{speed} "
        f"({transfers_text(t)}); "
        f"eval pass {e['kernels']} kernels, {_num(e['flops'])} FLOP; peak mem {peak} B; "
        f"{profile['compile']['kernels_compiled']} kernels compiled"
    )
