"""tinygrad's BEAM kernel search for one run: apply a BEAM width, and count how many of the run's kernels
were searched and how many took their choice from the search cache, for the run's record."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness.base.errors import HarnessError

CACHE_TABLE = "beam_search"  # tinygrad's diskcache table of searched kernels (codegen/opt/search.py)
MAX_BEAM = 16  # widths above a few take hours per model on a CPU; a typo like 100 should not start one


@dataclass
class SearchCount:
    """What BEAM did during a run. `searched`/`cached` are None when the counting hooks could not be set
    (a tinygrad whose search module changed): unknown, rather than a wrong zero."""

    beam: int
    searched: int | None = 0
    cached: int | None = 0
    search_s: float | None = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"beam": self.beam, "searched": self.searched, "cached": self.cached, "search_s": self.search_s}


class SearchNeeded(HarnessError):
    """A kernel's BEAM choice is not in the search cache, where the caller allowed cached choices only."""


def check_beam(beam: int | None) -> None:
    if beam is not None and not 0 <= beam <= MAX_BEAM:
        raise HarnessError(f"BEAM width must be between 0 and {MAX_BEAM}, got {beam}")


def env_beam() -> int:
    """The BEAM environment variable as tinygrad reads it at import (0 when unset or not a number)."""
    try:
        return int(os.environ.get("BEAM") or 0)
    except ValueError:
        return 0


def beam_in_force() -> int | None:
    """The BEAM width tinygrad uses now, from its ContextVar (a `Context(BEAM=n)` sets it); None when
    tinygrad is not imported yet (then the BEAM variable decides, once it is)."""
    helpers = sys.modules.get("tinygrad.helpers")
    return int(helpers.BEAM.value) if helpers is not None else None


@contextlib.contextmanager
def applied(beam: int | None, *, cache_only: bool = False) -> Iterator[SearchCount]:
    """Run the body with BEAM=`beam` (None: tinygrad's own setting, from the BEAM variable) and count its
    kernel searches. BEAM goes through tinygrad's Context, so it ends with the body and is not inherited
    by later runs in the process or by child processes. `cache_only`: raise SearchNeeded instead of
    starting a search (a timing that must not pay for one: minutes per model on a CPU)."""
    check_beam(beam)
    from tinygrad import Context

    with Context(BEAM=beam) if beam is not None else contextlib.nullcontext():
        count = SearchCount(beam_in_force() or 0)
        with _counting(count, cache_only):
            yield count


@contextlib.contextmanager
def _counting(count: SearchCount, cache_only: bool = False) -> Iterator[None]:
    """Count by wrapping tinygrad's `beam_search` and the cache lookup it makes, for the body's duration.

    Why not the size of the cache table before and after: the database is shared (suite shards, a perf
    run, another user's process write to it at the same time), a table's size cannot tell a cache hit
    from a kernel that never reached the search, and a re-search that replaces a row adds none. The
    wrappers see exactly this process's searches. tinygrad searches in the parent process (its worker
    pool only compiles candidates), and looks `beam_search` up in its module at each call, so the
    wrappers are what it calls."""
    try:
        from tinygrad.codegen.opt import search
        from tinygrad.helpers import CACHELEVEL, IGNORE_BEAM_CACHE

        original_search, original_get = search.beam_search, search.diskcache_get
    except (ImportError, AttributeError):
        if cache_only and count.beam:
            raise SearchNeeded("cannot tell cached BEAM choices from searches in this tinygrad") from None
        count.searched = count.cached = count.search_s = None
        yield
        return
    hits: list[bool] = []

    def cache_get(table: str, key: Any) -> Any:
        value = original_get(table, key)
        if table == CACHE_TABLE and value is not None:
            hits.append(True)
        elif table == CACHE_TABLE and cache_only:
            raise SearchNeeded(
                f"BEAM={count.beam} would search a kernel its cache lacks; fill the cache first "
                f"(`mnist-bench warmup --beam {count.beam}` covers each model's default run)"
            )
        return value

    def beam_search(*args: Any, **kwargs: Any) -> Any:
        if cache_only and (CACHELEVEL.value < 1 or IGNORE_BEAM_CACHE.value):
            raise SearchNeeded("BEAM's search cache is off (CACHELEVEL=0 or IGNORE_BEAM_CACHE=1)")
        hits.clear()
        t0 = time.perf_counter()
        result = original_search(*args, **kwargs)
        if hits:
            count.cached += 1
        else:
            count.searched += 1
            count.search_s += time.perf_counter() - t0
        return result

    search.beam_search, search.diskcache_get = beam_search, cache_get
    try:
        yield
    finally:
        search.beam_search, search.diskcache_get = original_search, original_get


def record_beam(record: dict[str, Any]) -> int:
    """The BEAM width a run record's kernels were chosen with: its `kernel_search`, else (older records)
    the BEAM variable it recorded."""
    environment = record.get("environment") or {}
    if isinstance(found := environment.get("kernel_search"), dict):
        return int(found.get("beam") or 0)
    try:
        return int((environment.get("tinygrad_env") or {}).get("BEAM") or 0)
    except ValueError:
        return 0
