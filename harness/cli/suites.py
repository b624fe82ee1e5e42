"""`mnist-bench suite`, `merge` and `repro`: suites of runs, their shards, reproducibility."""

from __future__ import annotations

from pathlib import Path

import click

from harness import documents
from harness.base import inputs
from harness.cli.app import (
    FiniteFloat,
    beam_option,
    budgets_option,
    cli,
    data_dir_option,
    echo_err,
    finish,
    finish_summary,
    format_option,
    live,
    out_dir_option,
    output_option,
    quiet_option,
    show,
    write_output,
)
from harness.documents import results
from harness.report import console

# --- suites ---------------------------------------------------------------------------------------


def _parse_seeds(ctx, param, value: str | None) -> list[int] | None:
    from harness.documents import suites

    return None if value is None else suites.parse_seeds(value)


def _parse_shard(ctx, param, value: str | None) -> tuple[int, int] | None:
    from harness.documents import suites

    return None if value is None else suites.parse_shard(value)


repeat_option = click.option("--repeat", type=int, show_default="the suite's", help="Seeds 0..N-1 for every run.")
seeds_option = click.option(
    "--seeds",
    callback=_parse_seeds,
    show_default="the suite's",
    help="Comma-separated seeds for every run, e.g. 0,1,2.",
)


@cli.group()
def suite() -> None:
    """List, show and run benchmark suites (benchmarks/suites/*.toml)."""


@suite.command("list")
@format_option("the list")
def suite_list(fmt: str) -> None:
    """The shipped suites (runs per device)."""
    from harness.documents import suites

    rows = suites.listing()
    if fmt == "json":
        click.echo(console.to_json(rows))
        return
    cells = [(r["name"], str(r["runs"]), console.estimate_short(r["estimate"]), r["description"]) for r in rows]
    if fmt == "markdown":
        click.echo(documents.table(("suite", "runs", "time", "description"), cells, "markdown"))
    else:
        for name, runs, time, description in cells:
            click.echo(f"{name:18} {runs:>4} runs  {time:>8}  {description}")
    click.echo(f"\n{console.estimate_note(rows)}")


@suite.command("show")
@click.argument("name")
@repeat_option
@seeds_option
@format_option("the runs")
def suite_show(name: str, repeat: int | None, seeds: list[int] | None, fmt: str) -> None:
    """The runs NAME (a shipped suite or a path) expands to."""
    from harness.documents import suites

    doc, planned = suites.preview(name, repeat=repeat, seeds=seeds)
    if fmt == "json":
        click.echo(console.to_json(console.planned_json(doc, planned)))
        return
    name = f"**{doc['name']}**" if fmt == "markdown" else doc["name"]
    click.echo(f"{name}: {doc['description']}" + ("\n" if fmt == "markdown" else ""))
    click.echo(console.planned_table(planned, fmt))
    override = suites.seed_override(repeat, seeds)
    for device, est in suites.device_estimates(doc, override).items():
        click.echo(f"time on {device}: {console.estimate_text(est)}")


@suite.command("run")
@click.argument("name")
@click.option(
    "--device",
    "device_names",
    multiple=True,
    show_default="the harness's",
    help="tinygrad device; repeatable; `all` for every usable.",
)
@repeat_option
@seeds_option
@click.option(
    "--only",
    multiple=True,
    show_default="every run",
    help="Only runs whose name matches this glob (repeatable), e.g. 'mlp-*'.",
)
@click.option(
    "--shard",
    callback=_parse_shard,
    show_default="all runs",
    help="Run only shard i of n (i/n, 1-based), e.g. for a CI matrix.",
)
@out_dir_option(
    None,
    "Folder for the results and the summary.",
    show_default=f"$MNIST_BENCH_OUT/<suite>, else {results.DEFAULT_OUT}/<suite>",
)
@click.option("--resume", is_flag=True, help="Skip runs whose valid result is already in --out-dir.")
@click.option(
    "--isolate/--in-process",
    default=None,
    show_default="isolate on GPUs, where runs in one process slow later ones",
    help="Each run in a fresh process.",
)
@beam_option("Every run with BEAM-searched kernels (warm them first: `mnist-bench warmup --beam N`).")
@data_dir_option
@quiet_option
@budgets_option
def suite_run(
    name, device_names, repeat, seeds, only, shard, out_dir, resume, isolate, beam, data_dir, budgets
) -> None:
    """Run suite NAME's configs over its seeds and devices; write results and a summary."""
    from harness.run import progress, runner

    plan = runner.plan(name, devices=device_names, repeat=repeat, seeds=seeds, only=only, shard=shard, out_dir=out_dir)
    with live(progress.SuiteProgress(plan.runs)) as bar:
        outcome = runner.run_plan(
            plan,
            resume=resume,
            isolated=isolate,
            data_dir=data_dir,
            before_run=bar and bar.start_run,
            after_run=bar and bar.end_run,
            progress=bar,
            log=bar.log if bar else echo_err,
            beam=beam,
        )
    show(console.summary_table(outcome.summary))
    click.echo(f"ran {len(outcome.ran)}, reused {len(outcome.skipped)}; summary: {outcome.summary_path}")
    finish_summary(outcome.summary, budgets)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_option("Write the summary JSON here.")
@format_option("the summary")
@quiet_option
@budgets_option
def merge(paths: tuple[Path, ...], output: Path | None, fmt: str, budgets: str) -> None:
    """Merge shard folders PATHS of run results into one summary."""
    from harness.documents import summary

    inputs.check_distinct([("PATHS", p) for p in paths], [("-o", output)])
    doc, skipped = summary.merge(list(paths))
    path = write_output(output, doc)
    for line in skipped:
        echo_err(f"skipped {line}")
    show(documents.render(doc, fmt), fmt)
    if path and fmt == "text":
        click.echo(f"summary: {path}")
    finish_summary(doc, budgets)


@cli.command()
@click.argument("source")
@click.option("--runs", type=click.IntRange(min=1), default=1, help="How many reruns.")
@click.option("--device", show_default="the result's; with a model name, the harness's", help="Rerun on this device.")
@click.option(
    "--tolerance",
    type=FiniteFloat(min=0),
    default=0.5,
    help="Accuracy tolerance in percentage points when bit-identity is not expected (other device/software).",
)
@click.option("--steps", type=int, show_default="the model's", help="With a model name: training steps.")
@click.option("--seed", type=int, default=0, help="With a model name: the seed.")
@data_dir_option
@quiet_option
def repro(source, runs, device, tolerance, steps, seed, data_dir) -> None:
    """Rerun SOURCE (result file, mlp or cnn); check it is bit-identical.

    With a result file, each rerun is compared with it; with a model name, --runs + 1 runs are
    made and compared with the first.
    """
    from harness.gate import repro as rp

    verdict = rp.check_source(
        source,
        runs=runs,
        device=device,
        tolerance_pp=tolerance,
        steps=steps,
        seed=seed,
        data_dir=data_dir,
        log=echo_err,
    )
    for difference in verdict.env_differences:
        click.echo(f"environment differs: {difference}")
    determinism = verdict.reference["environment"]["determinism"]
    if not determinism["known_deterministic"]:
        click.echo("settings not known to be deterministic: " + "; ".join(determinism["reasons"]))
    click.echo(f"reference: {verdict.reference['run_id']} accuracy {verdict.reference['metrics']['accuracy']}")
    for i, rerun in enumerate(verdict.reruns, 1):
        ok, text = verdict.rerun_report(rerun)
        show(f"rerun {i}: {'PASS' if ok else 'FAIL'} {text}")
    finish([] if verdict.passed else ["results are not reproducible"])
