"""The one user-facing error type, and the exit codes the CLI maps it to.

The library raises `HarnessError`; only the CLI turns it into a message and an exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes (documented in README.md)."""

    OK = 0
    TARGET_MISSED = 1  # a run missed its accuracy target, or a comparison found a regression
    USAGE = 2  # bad option, bad or unreadable input file, schema-invalid JSON
    DATA = 3  # MNIST missing, unfetchable, corrupt or failing its SHA-256 check
    ENVIRONMENT = 4  # missing clang, unusable device, unwritable output folder
    DIVERGED = 5  # the training loss became NaN or infinite
    INTERRUPTED = 130  # Ctrl-C / SIGTERM; finished results are kept


class HarnessError(Exception):
    """A problem the user can fix; carries a one-line message and an exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE):
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # keeps the exit code when the error crosses a process boundary
        return (HarnessError, (self.message, self.code))
