"""The study as a Markdown report (and plots), computed from result files.

Every statement about a difference comes from the numbers: two configs that differ in one setting
are compared with a Welch t-test over seeds, and overlapping 95% intervals read "no significant
difference" rather than a ranking of noise.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from harness import documents
from harness.base import inputs
from harness.base.errors import HarnessError
from harness.base.metrics import format_stat
from harness.documents import results, summary
from harness.report.analysis import (
    AXIS_TITLES,
    accuracy_of,
    accuracy_per_time,
    best,
    changes_from,
    compare_accuracy,
    fixed_settings,
    flat_config,
    one_factor_pairs,
    reference_config,
    settings_text,
    summaries,
    varying_axes,
    within_noise,
)
from harness.tg.models import MODELS
from harness.tg.spec import TARGETS

# --- inputs ---------------------------------------------------------------------------------------


def gather(paths: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(run records, pytest-benchmark documents, skipped-file notes) from files and folders."""
    files = documents.json_files(paths)
    records, pybench, skipped, versions = [], [], [], set()
    for f in files:
        try:
            raw = documents.read_json(f)
        except HarnessError as e:
            skipped.append(e.message)
            continue
        if isinstance(raw, dict) and "benchmarks" in raw and "machine_info" in raw:
            pybench.append({**raw, "_path": str(f)})
            continue
        if isinstance(raw, dict) and isinstance(raw.get("schema_version"), int):
            versions.add(raw["schema_version"])
        try:
            doc = documents.load(f)
        except HarnessError as e:
            skipped.append(e.message)
            continue
        if doc["kind"] == "run":
            records.append(summary.with_suite(doc))
        elif doc["kind"] not in ("summary", "baseline", "comparison"):
            skipped.append(f"{f}: a {doc['kind']} file")
    if len(versions) > 1:
        skipped.append(f"note: inputs had schema versions {sorted(versions)}; older ones were migrated")
    if not records and not pybench:
        raise HarnessError(
            "no run results found in "
            + ", ".join(map(str, paths))
            + " (summaries and baselines hold statistics only: point at the run folders)"
        )
    return records, pybench, skipped


# --- numbers into words ---------------------------------------------------------------------------


def _stat(s: dict[str, Any] | None, metric: str = "accuracy") -> str:
    """format_stat as the report shows it: no unit (headers and prose carry it), the count
    only for a single seed, `n/a` for nothing measured."""
    return format_stat(s, metric, n=None, unit=False, missing="n/a")


# --- the Markdown -----------------------------------------------------------------------------------


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def config_table(configs: list[dict[str, Any]]) -> list[str]:
    head = [
        "#",
        "config",
        "category",
        "description",
        "LR",
        "BS",
        "steps",
        "seeds",
        "accuracy % (mean ± std)",
        "95% CI",
        "target met",
        "train time s",
        "step ms (median)",
        "step ms (p10, gated)",
        "samples/s",
        "time to target s (training)",
        "time to target s (with eval)",
    ]
    lines = [_row(head), "|" + "---|" * len(head)]
    for i, c in enumerate(configs, 1):
        m, cfg = c["metrics"], c["config"]
        acc = m["accuracy"]
        ci = "n/a" if acc is None or acc["n"] < 2 else f"[{acc['ci95'][0]:.2f}, {acc['ci95'][1]:.2f}]"
        ttt = _stat(m["time_to_target_s"], "time_to_target_s") if m["time_to_target_s"] else "not reached"
        with_eval = m.get("time_to_target_with_eval_s")
        ttt_eval = (
            _stat(with_eval, "time_to_target_with_eval_s")
            if with_eval
            else ("not reached" if not m["time_to_target_s"] else "n/a")
        )
        busy = f" (busy: seed {', '.join(map(str, c['busy_seeds']))})" if c.get("busy_seeds") else ""
        lines.append(
            _row(
                [
                    str(i),
                    f"`{c['name']}`{busy}",
                    c["category"],
                    c["description"] or "",
                    f"{cfg['lr']:g}",
                    str(cfg["batch_size"]),
                    str(cfg["steps"]),
                    _seeds(c),
                    _stat(m["accuracy"]),
                    ci,
                    f"{c['targets_met']}/{len(c['seeds'])}",
                    _stat(m["train_s"], "train_s"),
                    _stat(m["step_time_s"], "step_time_s"),
                    _stat(m.get("step_time_p10_s"), "step_time_p10_s"),
                    _stat(m["samples_per_s"], "samples_per_s"),
                    ttt,
                    ttt_eval,
                ]
            )
        )
    return lines


def _seeds(c: dict[str, Any]) -> str:
    """Distinct seeds, and the runs where a seed ran more than once."""
    n_seeds, n_runs = len(set(c["seeds"])), len(c["seeds"])
    return str(n_seeds) if n_runs == n_seeds else f"{n_seeds} ({n_runs} runs)"


def repeat_notes(configs: list[dict[str, Any]]) -> list[str]:
    """A line per config that ran a seed more than once: what its numbers are over."""
    lines = []
    for c in configs:
        if note := summary.repeats(c):
            copies = _copies(c)
            lines.append(
                f"- `{c['name']}`: {note}. Accuracy and the other results of the numerics are one value per seed "
                f"(the mean of its runs{copies}); times are over all {len(c['seeds'])} runs."
            )
    return [*lines, ""] if lines else []


def _copies(c: dict[str, Any]) -> str:
    """Whether the repeats computed the same final weights (exact copies) or not, where hashes were recorded."""
    hashes = c.get("weights") or {}
    repeated = {str(s) for s in c["seeds"] if c["seeds"].count(s) > 1}
    if repeated and all(hashes.get(s) for s in repeated):
        return ", which computed identical weights: exact copies"
    return ""


def impact_section(configs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for axis in varying_axes(configs):
        pairs = one_factor_pairs(configs, axis)
        if not pairs:
            continue
        title = AXIS_TITLES.get(axis, axis.replace("model.", "model: "))
        lines += [f"#### Impact of {title}", ""]
        for a, b in pairs:
            words, _ = compare_accuracy(a, b)
            ta, tb = a["metrics"]["train_s"], b["metrics"]["train_s"]
            time_note = "" if not (ta and tb) else f"; training time {ta['mean']:.1f} s -> {tb['mean']:.1f} s"
            lines.append(
                f"- {axis} {flat_config(a)[axis]} -> {flat_config(b)[axis]} (with {fixed_settings(a, axis)}): "
                f"accuracy {_stat(a['metrics']['accuracy'])} -> {_stat(b['metrics']['accuracy'])} %, "
                f"{words}{time_note}"
            )
        lines.append("")
    return lines or ["No pair of configs differs in a single setting, so no effect can be isolated.", ""]


def multi_change_section(configs: list[dict[str, Any]]) -> list[str]:
    """Configs that change several settings at once (augmentation, an optimizer at its own LR) have no
    one-factor pair; read each against the default config, naming every setting it changes."""
    ref = reference_config(configs)
    if ref is None:
        return []
    rows = [(c, ch) for c in configs if len(ch := changes_from(ref, c)) > 1]
    if not rows:
        return []
    lines = ["#### Against the defaults (several settings changed at once)", ""]
    for c, ch in rows:
        words, _ = compare_accuracy(ref, c)
        changed = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in ch.items())
        lines.append(
            f"- {c['name']} ({changed}): accuracy {_stat(ref['metrics']['accuracy'])} -> "
            f"{_stat(c['metrics']['accuracy'])} %, {words}"
        )
    return [*lines, ""]


def best_section(model: str, configs: list[dict[str, Any]]) -> list[str]:
    target = TARGETS[model]
    top = best(configs, accuracy_of)
    fast = best(configs, accuracy_per_time)
    lines = []
    if top:
        s = top["metrics"]["accuracy"]
        reached = "target reached" if s["mean"] >= target else "target NOT reached"
        lines.append(
            f"- **Best accuracy:** {top['description'] or top['name']} ({settings_text(top)}): "
            f"{_stat(s)} % over {s['n']} seed(s), {reached} (>= {target:g}%)."
        )
        rivals = [
            c
            for c in configs
            if c is not top
            and c["metrics"]["accuracy"] is not None
            and within_noise(s, c["metrics"]["accuracy"])
            and s["n"] > 1
        ]
        if rivals:
            lines.append(
                f"  Not significantly better than: {', '.join(c['name'] for c in rivals)} (within 2 x seed SE)."
            )
    if fast:
        t = fast["metrics"]["time_to_target_s"]
        lines.append(
            f"- **Best accuracy per time:** {fast['description'] or fast['name']} ({settings_text(fast)}): "
            f"reaches {target:g}% after {_stat(t, 'time_to_target_s')} s of training on every seed, final accuracy "
            f"{_stat(fast['metrics']['accuracy'])} %."
        )
    else:
        lines.append(f"- No config reached {target:g}% on every seed, so none is fastest to the target.")
    return lines


def model_section(model: str, configs: list[dict[str, Any]], plots: dict[str, str]) -> list[str]:
    lines = [f"## {model.upper()}", "", "### Configurations tested", ""]
    lines += [*config_table(configs), "", *repeat_notes(configs)]
    lines += ["### Analysis", "", *impact_section(configs), *multi_change_section(configs)]
    lines += ["### Best configurations", "", *best_section(model, configs), ""]
    for kind in ("loss", "effects"):
        if f"{model}-{kind}" in plots:
            lines += [f"![{model} {kind}]({plots[f'{model}-{kind}']})", ""]
    return lines


def side_by_side(by_model: dict[str, list[dict[str, Any]]]) -> list[str]:
    head = ["model", "best config", "accuracy %", "target", "reached", "fastest to target", "time to target s"]
    lines = [_row(head), "|" + "---|" * len(head)]
    for model, configs in by_model.items():
        top, fast = best(configs, accuracy_of), best(configs, accuracy_per_time)
        if top is None:
            continue
        s = top["metrics"]["accuracy"]
        lines.append(
            _row(
                [
                    model.upper(),
                    settings_text(top),
                    _stat(s),
                    f">= {TARGETS[model]:g}%",
                    "yes" if s["mean"] >= TARGETS[model] else "no",
                    settings_text(fast) if fast else "none",
                    _stat(fast["metrics"]["time_to_target_s"], "time_to_target_s") if fast else "n/a",
                ]
            )
        )
    return lines


def environment_section(docs: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[str]:
    machines = {documents.dumps(m): m for d in docs for m in d["machines"]}
    lines = ["## Environment", ""]
    for m in machines.values():
        env_vars = ", ".join(f"{k}={v}" for k, v in m["tinygrad_env"].items()) or "defaults"
        lines.append(
            f"- device {m['device']} on {m['cpu']}{' / ' + ', '.join(m['gpu']) if m['gpu'] else ''}; "
            f"tinygrad {m['tinygrad']} ({env_vars})"
        )
    first = records[0]["environment"]
    commits = sorted({r["environment"]["git"]["commit"] or "unknown" for r in records})
    lines += [
        f"- Python {first['python']['version']}, numpy {first['packages']['numpy']}, "
        f"{first['os']['system']} {first['os']['release']}, {first['cpu']['cores']} cores",
        f"- mnist-bench commit(s): {', '.join(c[:12] for c in commits)}",
        f"- dataset: MNIST, {records[0]['dataset']['n_train']} training / {records[0]['dataset']['n_test']} "
        "test images, SHA-256 verified",
        f"- runs: {len(records)}, from {min(r['started_at'] for r in records)} to "
        f"{max(r['finished_at'] for r in records)}",
        "",
    ]
    return lines


def method_section() -> list[str]:
    return [
        "## Method",
        "",
        "- Each config ran once per seed; the seed fixes weight init and batch order. Accuracy is on the full "
        "test set after the last step; mean ± std and the 95% t-interval are over seeds. Runs of a seed that "
        "was already run are repeats, not seeds: accuracy, loss, steps and counts take one value per seed (the "
        "mean of its runs, which are exact copies where their final weights match), while times take every "
        "run, since each process's timing noise is its own.",
        "- Step time: every step is timed with the device synchronised, and each run keeps every step's time "
        "(`series.samples`). The tables show two readings over the steps after the 2 warm-up (compile) "
        "steps: the median, and the 10th percentile (the fastest tenth of the steps, least moved by other "
        "processes). The regression gate (`mnist-bench compare`, rule `step_time_p10_s:+10%`) judges the "
        "10th percentile.",
        "- Time to target, two readings: *training* is the training time (steps, compile included) at the "
        "first evaluation (every `eval_every` steps) at or above the target, evaluation excluded; *with eval* "
        "adds every evaluation up to and including that one, as MLPerf's time-to-train does.",
        "- Intervals of times, rates and counts are computed on their logarithms, so they never go below zero.",
        "- A run is marked busy when the load average exceeded the usable cores at its start or end, or its "
        "step times spread far more than usual; such configs are marked in the tables.",
        "- A difference is called significant only when the 95% intervals do not overlap and a Welch t-test "
        'gives p < 0.05; otherwise the report says "no significant difference".',
        "",
    ]


def pytest_benchmark_section(pybench: list[dict[str, Any]]) -> list[str]:
    if not pybench:
        return []
    lines = ["## pytest-benchmark results", ""]
    head = ["file", "benchmark", "median ms", "IQR ms", "rounds", "device", "extra"]
    lines += [_row(head), "|" + "---|" * len(head)]
    for doc in pybench:
        for b in doc["benchmarks"]:
            s = b["stats"]
            extra = ", ".join(f"{k}={v}" for k, v in sorted(b.get("extra_info", {}).items()) if k != "device")
            lines.append(
                _row(
                    [
                        Path(doc["_path"]).name,
                        b["name"],
                        f"{s['median'] * 1e3:.2f}",
                        f"{s['iqr'] * 1e3:.2f}",
                        str(s["rounds"]),
                        b.get("extra_info", {}).get("device", ""),
                        extra,
                    ]
                )
            )
    machine = pybench[0]["machine_info"]
    lines += [
        "",
        f"Machine: {machine.get('cpu_model', machine.get('processor', '?'))}, tinygrad {machine.get('tinygrad', '?')}.",
        "",
    ]
    return lines


def executive_summary(by_model: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = ["## Executive summary", ""]
    for model, configs in by_model.items():
        top = best(configs, accuracy_of)
        if top is None:
            lines.append(f"- **{model.upper()}:** every run failed or diverged.")
            continue
        s = top["metrics"]["accuracy"]
        met = sum(c["targets_met"] == len(c["seeds"]) for c in configs)
        lines.append(
            f"- **{model.upper()}:** best {_stat(s)} % ({settings_text(top)}; "
            f"target >= {TARGETS[model]:g}% {'reached' if s['mean'] >= TARGETS[model] else 'missed'}); "
            f"{met} of {len(configs)} configs reach the target on every seed."
        )
    return [*lines, ""]


def study_sections(by_model: dict[str, list[dict[str, Any]]], plots: dict[str, str] | None = None) -> list[str]:
    """The report's body from summary configs by model: everything but the title, environment and
    pytest-benchmark parts, so it depends on statistics only (tests compare it with a committed file)."""
    plots = plots or {}
    lines = executive_summary(by_model) + method_section()
    for model, cs in by_model.items():
        lines += model_section(model, cs, plots)
    lines += ["## MLP vs CNN", "", *side_by_side(by_model), ""]
    if "pareto" in plots:
        lines += [f"![accuracy against training time]({plots['pareto']})", ""]
    return lines


def render(
    records: list[dict[str, Any]],
    pybench: list[dict[str, Any]],
    *,
    title: str = "MNIST training study",
    plots: dict[str, str] | None = None,
    notes: list[str] | None = None,
) -> str:
    plots = plots or {}
    docs = summaries(records) if records else []
    configs = [c for d in docs for c in d["configs"]]
    by_model = {m: [c for c in configs if c["model"] == m] for m in MODELS}
    by_model = {m: cs for m, cs in by_model.items() if cs}
    lines = [
        f"# {title}",
        "",
        f"Generated by `mnist-bench report` at {documents.utc_now()} from {len(records)} runs "
        f"({', '.join(d['suite'] for d in docs) or 'no suites'}).",
        "",
    ]
    if by_model:
        lines += study_sections(by_model, plots) + environment_section(docs, records)
    lines += pytest_benchmark_section(pybench)
    lines += [f"- {n}" for n in notes or []]
    return "\n".join(lines).rstrip() + "\n"


# --- files ----------------------------------------------------------------------------------------


def make_plots(records: list[dict[str, Any]], folder: Path, link_base: Path) -> dict[str, str]:
    """Draw every figure into `folder`; returns {figure key: path relative to the report}."""
    import os

    from harness.report import plots

    docs = summaries(records)
    configs = [c for d in docs for c in d["configs"]]
    made = {"pareto": plots.accuracy_vs_time(configs, folder)}
    for model in MODELS:
        model_configs = [c for c in configs if c["model"] == model]
        if not model_configs:
            continue
        by_config: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            if r["model"] == model and r["status"] != "failed":
                by_config[r["suite"]["run"]].append(r)
        made[f"{model}-loss"] = plots.loss_curves(model, by_config, folder)
        pairs = {axis: one_factor_pairs(model_configs, axis) for axis in varying_axes(model_configs)}
        if effect := plots.effects(model, model_configs, pairs, folder):
            made[f"{model}-effects"] = effect
    rel = os.path.relpath(folder, link_base)
    return {k: f"{rel}/{v}" for k, v in made.items()}


def write(
    paths: list[Path], out: Path, *, plots_dir: Path | None = None, title: str = "MNIST training study"
) -> tuple[Path, list[str]]:
    """Write the report for the results under `paths`; returns (path, notes for the user)."""
    from harness.report import plots

    inputs.check_distinct([("PATHS", p) for p in paths], [("-o", out)])
    if plots_dir is not None and plots.available():
        results.check_writable(plots_dir)  # before the figures are drawn, not after; no folder when none are
    records, pybench, skipped = gather(paths)
    notes = [f"skipped {s}" for s in skipped]
    figures: dict[str, str] = {}
    if plots_dir is not None and records:
        if plots.available():
            figures = make_plots(records, plots_dir, out.parent)
        else:
            notes.append("plots skipped: matplotlib is not installed (pip install 'mnist-bench[plots]')")
    text = render(
        records, pybench, title=title, plots=figures, notes=[n for n in notes if n.startswith("plots skipped")]
    )
    return documents.write_text_atomic(out, text), notes
