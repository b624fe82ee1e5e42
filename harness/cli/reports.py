"""`mnist-bench report` and `validate`: reading results."""

from __future__ import annotations

from pathlib import Path

import click

from harness import documents
from harness.base.errors import HarnessError
from harness.cli.app import (
    FOLDER,
    cli,
    echo_err,
    format_option,
    output_option,
    quiet_option,
    show,
)
from harness.report import console


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@format_option("the verdicts")
def validate(files: tuple[Path, ...], fmt: str) -> None:
    """Check result, summary and other JSON files against the schemas.

    Any document the harness writes: results, suites, summaries, baselines, comparisons, verdicts.
    """
    checked = [(path, documents.problems(path)) for path in files]
    if fmt == "json":
        click.echo(console.to_json([{"path": str(p), "valid": not pr, "problems": pr} for p, pr in checked]))
    elif fmt == "markdown":
        rows = [(str(p), "ok" if not pr else "INVALID", "; ".join(pr)) for p, pr in checked]
        click.echo(documents.table(("file", "verdict", "problems"), rows, "markdown"))
    else:
        for path, problems in checked:
            show(f"{path}: {'ok' if not problems else 'INVALID'}")
            for problem in problems:
                click.echo(f"  {problem}")
    if bad := sum(bool(pr) for _, pr in checked):
        raise HarnessError(f"{bad} of {len(files)} file(s) invalid")


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
@quiet_option
def report(paths: tuple[Path, ...], output: Path, plots_dir: Path | None, title: str) -> None:
    """Write a Markdown report from run results, folders of them, or pytest-benchmark JSON files."""
    from harness import report as rp

    path, notes = rp.write(list(paths), output, plots_dir=plots_dir, title=title)
    for note in notes:
        echo_err(note)
    click.echo(f"report: {path}")
