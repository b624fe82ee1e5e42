"""Fill tinygrad's compile cache, and with a BEAM width its kernel search cache, before timed runs, so
the first timed run pays for neither: a few steps of each model's defaults on each device."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.run import bench, runner
from harness.tg.models import MODELS
from harness.tg.spec import RunSpec

STEPS = 3  # enough for the jitted step to be captured and its kernels compiled; the last step's eval too


@dataclass(frozen=True)
class Warmed:
    model: str
    device: str
    compile_s: float
    cache_was_warm: bool
    cache_path: str | None
    kernel_search: dict[str, Any]  # the record's environment.kernel_search: beam, searched, cached, search_s
    wall_s: float


def run(
    devices: list[str] | tuple[str, ...] = (),
    data_dir: str | Path | None = None,
    *,
    models: list[str] | tuple[str, ...] = MODELS,
    beam: int | None = None,
    log: Callable[[str], None] | None = None,
    on_done: Callable[[Warmed], None] | None = None,
) -> list[Warmed]:
    """Warm each model's default run on each device (default: tinygrad's) with BEAM=`beam` (None: the BEAM
    variable's); nothing is written. `on_done` hears of each model as it finishes (a CNN search is long)."""
    out = []
    for device in runner.resolve_devices(list(devices)):
        for model in models:
            spec = RunSpec.defaults(model, steps=STEPS, eval_every=0)
            request = bench.RunRequest(spec, device=device, out_dir=None, data_dir=data_dir, beam=beam)
            record, _ = bench.run(request, log=log)
            cache = record["environment"]["compile_cache"]
            warmed = Warmed(
                model,
                device,
                record["timings"]["compile_s"],
                cache["warm"],
                cache["path"],
                record["environment"]["kernel_search"],
                record["timings"]["wall_s"],
            )
            if on_done:
                on_done(warmed)
            out.append(warmed)
    return out
