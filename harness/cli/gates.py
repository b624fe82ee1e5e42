"""`mnist-bench baseline`, `compare`, `continuous`, `cost`, `verdict` and `history`: the gates."""

from __future__ import annotations

from pathlib import Path

import click

from harness import documents
from harness.base import inputs
from harness.base.errors import HarnessError
from harness.cli.app import (
    FILE,
    FINITE_FLOAT,
    FOLDER,
    HiddenArgument,
    ModelChoice,
    budgets_option,
    cli,
    cost_root,
    data_dir_option,
    echo_err,
    every_model,
    exit_for,
    format_option,
    models_option,
    output_option,
    quiet_option,
    root_option,
    show,
    write_output,
)
from harness.gate.rules import DEFAULT_RULES
from harness.report import console

# --- baselines and comparisons ------------------------------------------------------------------


@cli.group()
def baseline() -> None:
    """Save, list and show stored baselines."""


@baseline.command("save")
@click.argument("summary_path", metavar="SUMMARY", type=click.Path(path_type=Path))
@click.option("--name", show_default="the suite's name", help="Baseline name.")
@click.option("--note", show_default="none", help="A note stored with the baseline.")
@root_option
def baseline_save(summary_path: Path, name: str | None, note: str | None, root: Path) -> None:
    """Store SUMMARY (a summary file or a folder of run results) as a baseline."""
    from harness.documents import baselines

    path = baselines.save_from(summary_path, root=root, name=name, note=note)
    click.echo(f"saved baseline {path}")


@baseline.command("list")
@root_option
@format_option("the list")
def baseline_list(root: Path, fmt: str) -> None:
    """Every stored baseline: device key, suite, configs, when saved."""
    from harness.documents import baselines

    rows = baselines.listing(root)
    if fmt == "json":
        click.echo(console.to_json(rows))
        return
    if fmt == "markdown":
        cells = [
            tuple(
                "" if r[k] is None else str(r[k]) for k in ("path", "suite", "configs", "runs", "saved_at", "problem")
            )
            for r in rows
        ]
        click.echo(documents.table(("baseline", "suite", "configs", "runs", "saved", "problem"), cells, "markdown"))
        return
    if not rows:
        click.echo(f"no baselines under {root}; create one with `mnist-bench baseline save SUMMARY`")
    for r in rows:
        if r["problem"]:
            show(f"{r['path']}: INVALID {r['problem']}")
        else:
            click.echo(
                f"{r['path']}: suite {r['suite']}, {r['configs']} configs, {r['runs']} runs, saved {r['saved_at']}"
            )


@baseline.command("show")
@click.argument("baseline_spec", metavar="BASELINE")
@root_option
@format_option("the baseline")
def baseline_show(baseline_spec: str, root: Path, fmt: str) -> None:
    """The statistics stored in BASELINE: a file, or a name as `baseline list` shows it (gate, CPU/gate)."""
    from harness.documents import baselines

    doc = documents.load(baselines.resolve(baseline_spec, root), "baseline")
    show(documents.render(doc, fmt), fmt)


@cli.command()
@click.argument("current_path", metavar="CURRENT", type=click.Path(path_type=Path))
@click.argument("baseline_arg", metavar="[BASELINE]", required=False)
@click.option(
    "--baseline",
    "baseline_spec",
    default="auto",
    help="What to compare with (as BASELINE), or `auto` for <root>/<device-key>/<suite>.json.",
)
@click.option(
    "--rule",
    "rule_texts",
    multiple=True,
    show_default=", ".join(DEFAULT_RULES),
    help="Regression rule METRIC:+N% or METRIC:-Npp, repeatable; it replaces its metric's default rule, "
    "the other defaults still apply.",
)
@click.option("--only-rules", is_flag=True, help="Check the --rule rules only, none of the defaults.")
@click.option(
    "--only",
    "only",
    multiple=True,
    show_default="every config",
    help="Only configs whose name matches this glob (repeatable), as `suite run --only`.",
)
@click.option("--strict-env", is_flag=True, help="A different device, CPU/GPU or tinygrad is an error (exit 2).")
@format_option("the comparison")
@click.option(
    "--allow-missing",
    is_flag=True,
    help="No baseline yet is no error: the document has `baseline: null` and only the summary's own problems fail.",
)
@output_option("Also write the comparison JSON here.")
@root_option
@budgets_option
def compare(
    current_path,
    baseline_arg,
    baseline_spec,
    rule_texts,
    only_rules,
    only,
    strict_env,
    fmt,
    allow_missing,
    output,
    root,
    budgets,
) -> None:
    """Compare CURRENT with BASELINE (default: the stored baseline of CURRENT's suite).

    Each is a run file, a folder of run results (any suites and single runs: configs are grouped by name,
    single runs named by their settings, e.g. mlp-steps=20), a summary or a stored baseline. Configs are
    matched by name (two sides of one config each are paired whatever their names); a config on one side
    only is a warning. Where each side has one value (one run; for accuracy, one seed), the difference is
    shown plainly, not tested against noise.

    Exit 0 pass, 1 regression or target missed, 2 bad input (or --strict-env mismatch).
    """
    from harness.gate import compare as cmp

    if baseline_arg is not None and baseline_spec != "auto":
        raise HarnessError("give the baseline once: as BASELINE or as --baseline")
    doc = cmp.from_paths(
        current_path,
        baseline=baseline_arg or baseline_spec,
        rules=rule_texts,
        only_rules=only_rules,
        only=only,
        root=root,
        strict_env=strict_env,
        allow_missing=allow_missing,
        budgets=budgets == "fail",
    )
    sources = [("CURRENT", current_path), ("BASELINE", Path(doc["baseline"]["path"]) if doc["baseline"] else None)]
    write_output(output, doc, sources)
    show(documents.render(doc, fmt), fmt)
    exit_for(doc["verdict"])


@cli.command()
@click.argument("base")
@click.argument("head", required=False)
@models_option("A model to time.")
@click.option("--rounds", type=click.IntRange(min=2), default=6, help="Timed blocks per side.")
@click.option("--mlp-steps", type=click.IntRange(min=1), default=10, help="MLP steps per block.")
@click.option("--cnn-steps", type=click.IntRange(min=1), default=2, help="CNN steps per block.")
@click.option(
    "--rule",
    "rule_texts",
    multiple=True,
    show_default="step_time_s:+5%",
    help="Regression rule, repeatable; it replaces its metric's default rule.",
)
@click.option("--device", show_default="each side's own default", help="Device for both sides, e.g. CPU or CL.")
@click.option(
    "--base-prefix",
    default="",
    show_default="none",
    help="Command prefix for the base side's process, e.g. 'taskset -c 1'.",
)
@click.option("--head-prefix", default="", show_default="none", help="Command prefix for the head side's process.")
@click.option(
    "--repo",
    type=FOLDER,
    default=Path("."),
    help="The git repository: its revisions, and the working tree a package set runs.",
)
@format_option("the comparison")
@output_option("Also write the comparison JSON here.")
@data_dir_option
@quiet_option
def continuous(
    base,
    head,
    models,
    rounds,
    mlp_steps,
    cnn_steps,
    rule_texts,
    device,
    base_prefix,
    head_prefix,
    repo,
    fmt,
    output,
    data_dir,
) -> None:
    """Time HEAD against BASE on this machine.

    HEAD defaults to the working tree. Each side is a git revision or a package set: pins such as
    tinygrad==0.13.0 (several: comma- or space-separated) run the working tree's code in an environment
    made once for those pins. Both sides run alternately in their own processes; no stored baseline is needed.
    Exit 0 pass, 1 regression, 2 bad input, 4 a side could not be set up or crashed.
    """
    from harness.gate import continuous as ab
    from harness.gate.rules import resolve

    rules = resolve(rule_texts, ab.DEFAULT_RULES)  # a given rule replaces its metric's default, as in `compare`
    prefixes = (inputs.split_command(base_prefix, "--base-prefix"), inputs.split_command(head_prefix, "--head-prefix"))
    workload = ab.Workload(list(models), rounds, {"mlp": mlp_steps, "cnn": cnn_steps})
    doc = ab.run(
        repo,
        base,
        head,
        workload=workload,
        rules=rules,
        device=device,
        data_dir=str(data_dir) if data_dir else None,
        prefixes=prefixes,
        log=lambda m: echo_err(f"continuous: {m}"),
    )
    write_output(output, doc)
    show(documents.render(doc, fmt), fmt)
    exit_for(doc["verdict"])


# --- cost gate ------------------------------------------------------------------------------------


@cli.command()
@models_option("A model to measure.")
# `cost all` / `cost mlp`, the old spelling (bench.yml's COST_MODELS), still taken; unlisted
@click.argument("old_model", required=False, type=ModelChoice(), metavar="MODEL", cls=HiddenArgument)
@click.option("--device", show_default="the harness's", help="tinygrad device.")
@click.option(
    "--baseline",
    "baseline_path",
    type=FILE,
    show_default="<root>/<key>/<model>-<spec>.json",
    help="Cost baseline file.",
)
@click.option("--save", "save_baseline", is_flag=True, help="Write (or refresh) the baseline for this key.")
@click.option("--tolerance", type=FINITE_FLOAT, default=0.0, show_default=True, help="Allowed increase in %.")
@format_option("the comparison")
@output_option("Also write the comparison JSON here.")
@click.option("--profile-output", type=FILE, show_default="not written", help="Write the measured cost JSON here.")
@click.option("--root", type=FOLDER, default=cost_root(), show_default=True, help="Cost baselines folder.")
@data_dir_option
@quiet_option
def cost(
    models, old_model, device, baseline_path, save_baseline, tolerance, fmt, output, profile_output, root, data_dir
) -> None:
    """Gate on tinygrad's exact cost counts (kernels, FLOPs, bytes).

    Measures a few steps of each model's default run. Exit 0 pass, 1 a count rose above --tolerance,
    2 bad input or no baseline for this key.
    """
    from harness.gate import cost as cst

    inputs.check_distinct([("--baseline", baseline_path)], [("-o", output), ("--profile-output", profile_output)])
    doc, comparison, saved = cst.gate(
        every_model([old_model]) if old_model else models,
        data_dir,
        device,
        baseline=baseline_path,
        root=root,
        tolerance_pct=tolerance,
        save_baseline=save_baseline,
    )
    write_output(profile_output, doc)
    for profile in doc["profiles"]:
        echo_err(cst.profile_summary(profile))
    if comparison:
        write_output(output, comparison)
    show(documents.render(comparison, fmt) if comparison else f"cost key: {doc['key']} (nothing to compare)", fmt)
    for path in saved:
        echo_err(f"saved cost baseline {path}")
    regression = comparison is not None and comparison["verdict"] == "regression" and not save_baseline
    exit_for("regression" if regression else "pass")


# --- pull-request verdict and history (CI) ----------------------------------------------------------


@cli.command()
@click.option("--cost", "cost_path", type=FILE, show_default="not checked", help="`cost -o` JSON.")
@click.option("--ab", "ab_path", type=FILE, show_default="not checked", help="`continuous -o` JSON.")
@click.option("--gate", "gate_path", type=FILE, show_default="not checked", help="`compare -o` JSON.")
@click.option(
    "--context", "context", multiple=True, show_default="none", help="KEY=VALUE shown under the headline (head, base)."
)
@format_option("the verdict")
@output_option("Also write the verdict JSON here.")
def verdict(cost_path, ab_path, gate_path, context, fmt, output) -> None:
    """Combine one pull request's checks into one verdict.

    With --format markdown, the PR comment. A given path that does not exist is a check that produced
    nothing: the verdict is then incomplete.
    Exit 0 pass (a missing baseline only warns), 1 regression or incomplete, 2 bad input.
    """
    from harness.gate import verdict as vd

    paths = {k: v for k, v in (("cost", cost_path), ("ab", ab_path), ("gate", gate_path)) if v is not None}
    inputs.check_distinct([(f"--{k}", v) for k, v in paths.items()], [("-o", output)])
    pairs = [c.split("=", 1) for c in context]
    if any(len(p) != 2 for p in pairs):
        raise HarnessError("--context takes KEY=VALUE")
    doc = vd.combine(paths, dict(pairs))
    write_output(output, doc)
    show(documents.render(doc, fmt), fmt)
    exit_for(doc["verdict"])


@cli.command()
@click.option("--summary", "summary_path", type=FILE, show_default="none", help="Suite summary.")
@click.option("--cost", "cost_path", type=FILE, show_default="none", help="`cost --profile-output` JSON.")
@click.option("-o", "--output", type=FILE, required=True, help="JSON to write.")
def history(summary_path, cost_path, output) -> None:
    """Write the history charts' data (github-action-benchmark JSON).

    `customSmallerIsBetter` entries from a summary and/or a cost document.
    """
    from harness.gate import history as hist

    if summary_path is None and cost_path is None:
        raise HarnessError("give --summary, --cost or both")
    inputs.check_distinct([("--summary", summary_path), ("--cost", cost_path)], [("-o", output)])
    entries = hist.entries(
        documents.load(summary_path, "summary") if summary_path else None,
        documents.load(cost_path, "cost") if cost_path else None,
    )
    documents.write_json_atomic(output, entries)
    click.echo(f"{len(entries)} entries: {output}")
