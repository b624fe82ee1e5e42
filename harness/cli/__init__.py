"""The `mnist-bench` command line: the group and its shared options (`app`), and one module per group of
commands, each a thin layer over the library. Importing this package registers every command."""

from harness.cli import gates, reports, run, suites  # noqa: F401  (registers their commands on `cli`)
from harness.cli.app import FiniteFloat, cli, main

__all__ = ["FiniteFloat", "cli", "main"]
