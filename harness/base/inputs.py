"""Checks on what a user hands the harness as text: numbers, command prefixes
and which paths a command reads and writes. Each kind of input has one check here, used
wherever that kind is read, so a bad value is refused in one line (a HarnessError, exit 2) before it can
switch a check off, end in a traceback, or overwrite an input.

(tinygrad's own settings are checked in `tg.env`, which records them.)
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Iterable
from pathlib import Path

from harness.base.errors import HarnessError

# --- numbers ------------------------------------------------------------------------------------------


def finite(text: str | float, what: str = "") -> float:
    """`text` as a float; NaN and infinities are refused: NaN compares false with every threshold and an
    infinite one is never exceeded, so either would pass every check it is used in."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value):
        prefix = f"{what}: " if what else ""
        raise HarnessError(f"{prefix}{text!r} is not {'a number' if value is None else 'a finite number'}")
    return value


# --- command prefixes -------------------------------------------------------------------------------------


def split_command(text: str, what: str) -> list[str]:
    """A shell-quoted command line as its words."""
    try:
        return shlex.split(text)
    except ValueError as e:  # an unbalanced quote, or a backslash at the end
        raise HarnessError(f"{what}: cannot split {text!r} into words ({e})") from e


# --- paths -----------------------------------------------------------------------------------------------


def _identity(path: Path) -> tuple:
    """What makes two paths one file: device and inode where it exists (symlinks and hard links alike),
    else the absolute path with every existing symlink resolved."""
    try:
        st = os.stat(path)
    except OSError:
        return ("path", str(Path(path).resolve()))
    return ("inode", st.st_dev, st.st_ino)


def check_distinct(inputs: Iterable[tuple[str, Path | None]], outputs: Iterable[tuple[str, Path | None]]) -> None:
    """Refuse an output that is one of the command's input files or another of its outputs (by any name),
    before anything is read or written. Each entry is (how the user named it, path or None if not given)."""
    seen: dict[tuple, tuple[str, Path]] = {}
    for label, path in inputs:
        if path is not None:
            seen.setdefault(_identity(Path(path)), (label, Path(path)))
    for label, path in outputs:
        if path is None:
            continue
        key = _identity(Path(path))
        if key in seen:
            other, other_path = seen[key]
            same = f"{path}" if Path(path) == other_path else f"{path} (as {other_path})"
            raise HarnessError(
                f"{label} and {other} name the same file, {same}: give {label} a path of its own, "
                "or one document would replace the other"
            )
        seen[key] = (label, Path(path))


# --- names --------------------------------------------------------------------------------------------


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'mlp'?` for a mistyped name (empty when nothing is close)."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
