"""The `mnist-bench` group, its shared options, and how every command ends (`write_output`, `exit_for`):
parse options, call one library function, print. No logic in any command module.

Heavy imports (tinygrad, jsonschema) happen inside commands so `--help` stays fast. Every
option shows its default in `--help` (the group sets show_default; options whose default is
computed at run time say in words what it is, shown as `[default: WORDS]` like any other default).
The top-level help lists the commands in SECTIONS, each with its whole first sentence.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import NoReturn

import click

from harness import __version__, documents
from harness.base import inputs
from harness.base.errors import ExitCode, HarnessError
from harness.report import console


def _error_line(message: str) -> str:
    return f"mnist-bench: error: {message}"


def _usage_error(ctx: click.Context, e: click.UsageError) -> NoReturn:
    """click's own report of a bad option is usage, hint and error on four lines; the README promises one."""
    where = e.ctx.command_path if e.ctx is not None else ctx.command_path
    click.echo(_error_line(f"{e.format_message().rstrip('.')} (see `{where} --help`)"), err=True)
    ctx.exit(e.exit_code)


class HarnessOption(click.Option):
    """An option whose default given in words (`show_default="the suite's"`) shows as `[default: the
    suite's]`, the way a value shows (`[default: 0]`); click would print `[default: (the suite's)]`."""

    def get_help_extra(self, ctx: click.Context):
        extra = super().get_help_extra(ctx)
        if isinstance(self.show_default, str):
            extra["default"] = self.show_default
        return extra


class HiddenArgument(click.Argument):
    """An argument left out of the usage line: an old spelling kept working for scripts."""

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return []


class HarnessCommand(click.Command):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # every option of every command shows its default one way, without each declaration naming a class
        # (a decorator builds the option before the command exists)
        for param in self.params:
            if type(param) is click.Option:
                param.__class__ = HarnessOption


class HarnessSubgroup(click.Group):
    command_class = HarnessCommand


# The top-level help's sections, in the order a newcomer meets them (.ci/docs.py groups the README's table
# by them too); tests/test_cli.py checks that every command is in one.
SECTIONS: dict[str, tuple[str, ...]] = {
    "Run": ("mlp", "cnn", "suite", "repro"),
    "Compare and gate": ("compare", "baseline", "cost", "continuous"),
    "Read results": ("report", "validate"),
    "Setup": ("devices", "data", "warmup"),
    "CI plumbing": ("merge", "verdict", "history"),
}


def section_of(name: str) -> str:
    return next((section for section, names in SECTIONS.items() if name in names), "Other")


class HarnessGroup(click.Group):
    """Turns HarnessError, a bad option and Ctrl-C (or SIGTERM, see `main`) into one clean line and a
    documented exit code; lists its commands by SECTIONS."""

    command_class = HarnessCommand
    group_class = HarnessSubgroup
    sections = SECTIONS

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each section's commands with their whole first sentence (click cuts it to the width with `...`;
        a long one wraps here instead)."""
        rows: dict[str, list[tuple[str, str]]] = {}
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.setdefault(section_of(name), []).append((name, command.get_short_help_str(limit=sys.maxsize)))
        order = {name: i for names in SECTIONS.values() for i, name in enumerate(names)}
        for section in [*SECTIONS, "Other"]:
            if section in rows:
                with formatter.section(section):
                    formatter.write_dl(sorted(rows[section], key=lambda row: order.get(row[0], len(order))))

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

    Start with `mnist-bench mlp` (one run), then `mnist-bench suite run smoke` (a few short runs),
    then `mnist-bench COMMAND --help`.

    \b
    Exit codes: 0 ok, 1 target missed or regression, 2 usage or input error,
    3 dataset error, 4 environment error (clang, device, output folder),
    5 training diverged, 130 interrupted.
    """


# --- what a command prints -------------------------------------------------------------------------

QUIET = "mnist_bench.quiet"  # the click context's meta key that `--quiet` sets


def _set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[QUIET] = True


quiet_option = click.option(
    "-q",
    "--quiet",
    is_flag=True,
    expose_value=False,
    callback=_set_quiet,
    help="No progress or notices: only results and errors.",
)


def quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(QUIET))


def echo_err(message: str) -> None:
    """A notice (which device, a fetched file, a skipped result): stderr, and nothing under --quiet."""
    if not quiet():
        click.echo(message, err=True)


def live(display):
    """A progress display as a context manager, or None in its place under --quiet."""
    return contextlib.nullcontext() if quiet() else display


def show(text: str, fmt: str = "text", *, err: bool = False) -> None:
    """A result: in text, its PASS / FAIL / REGRESSION words in colour on a terminal (console.coloured)."""
    click.echo(console.coloured(text) if fmt == "text" else text, err=err)


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
    from harness.tg.kernel_search import MAX_BEAM

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
        type=click.Choice(documents.FORMATS),
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


class ModelChoice(click.Choice):
    """A model name of tg.models.MODELS; `all`, the old spelling of every model, is still taken (unlisted)."""

    def __init__(self):
        from harness.tg.models import MODELS

        super().__init__(MODELS)

    def convert(self, value, param, ctx):
        return "all" if value == "all" else super().convert(value, param, ctx)


def every_model(chosen) -> tuple[str, ...]:
    """Model names (`all` among them, or none: every model) in MODELS' order."""
    from harness.tg.models import MODELS

    chosen = set(chosen or ())
    return tuple(m for m in MODELS if not chosen or "all" in chosen or m in chosen)


def models_option(help: str):
    """`--model NAME`, repeatable, every model by default: how every command but `mlp`/`cnn` picks models."""
    from harness.tg.models import MODELS

    return click.option(
        "--model",
        "models",
        multiple=True,
        type=ModelChoice(),
        callback=lambda ctx, param, value: every_model(value),
        show_default=", ".join(MODELS),
        help=f"{help} Repeatable.",
    )


def root_option(f):
    return click.option("--root", type=FOLDER, default=baselines_root(), show_default=True, help="Baselines folder.")(f)


def baselines_root() -> Path:
    from harness.documents.baselines import DEFAULT_ROOT

    return DEFAULT_ROOT


def cost_root() -> Path:
    from harness.gate.cost import DEFAULT_ROOT

    return DEFAULT_ROOT


def write_output(output: Path | None, doc: dict, sources: list[tuple[str, Path | None]] = ()) -> Path | None:
    """`-o`: every command writes its document here, and only here (never onto one of its inputs)."""
    if output is None:
        return None
    inputs.check_distinct(list(sources), [("-o", output)])
    return documents.write(output, doc)


def exit_for(outcome: str) -> NoReturn:
    """Every command ends here: its outcome word (documents.EXIT_CODES) decides the exit code."""
    sys.exit(int(documents.exit_code(outcome)))


def finish(problems: list[str]) -> None:
    for problem in problems:
        show(f"FAIL {problem}", err=True)
    exit_for("fail" if problems else "pass")


BUDGETS_VAR = "MNIST_BENCH_BUDGETS"
budgets_option = click.option(
    "--budgets",
    type=click.Choice(["fail", "warn"]),
    default="fail",
    envvar=BUDGETS_VAR,
    show_envvar=True,
    help="A run over its suite's time budget (budget.wall_s) fails (exit 1), or only warns: for shared CI "
    "runners, whose speed is the VM's, not the code's (bench.yml sets MNIST_BENCH_BUDGETS=warn on hosted "
    "runners). Missed accuracy targets, failed runs and missing runs fail either way.",
)


def finish_summary(doc: dict, budgets: str) -> None:
    """Exit for a suite summary's problems; under `--budgets warn` its budget overruns are printed, not failed."""
    from harness.documents import summary

    if budgets == "warn":
        for overrun in summary.budget_overruns(doc):
            show(f"WARN over budget (not gated: --budgets warn): {overrun}", err=True)
    finish(summary.problems(doc, budgets=budgets == "fail"))


def main() -> None:
    from harness.tg import env

    # SIGTERM (docker stop, a CI cancel) takes Ctrl-C's path in every command: HarnessGroup's one line and
    # exit 130, finished results kept, atomic writes never half done
    with console.terminate_as_interrupt():
        try:
            env.check_tinygrad_settings()  # tinygrad would fail on them at import, with a traceback
        except HarnessError as e:
            click.echo(_error_line(e.message), err=True)
            sys.exit(int(e.code))
        env.use_cpu_keyed_cache()  # before tinygrad is imported: compiled code never crosses CPU models
        cli(prog_name="mnist-bench")
