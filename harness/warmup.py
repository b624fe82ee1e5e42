"""Fill tinygrad's compile cache (and its BEAM cache, when BEAM is set) before timed runs, so the first
timed run does not pay for compiling: a few steps of each model's defaults on each device."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import bench, runner
from harness.spec import RunSpec

STEPS = 3  # enough for the jitted step to be captured and its kernels compiled
MODELS = ("mlp", "cnn")


@dataclass(frozen=True)
class Warmed:
    model: str
    device: str
    compile_s: float
    cache_was_warm: bool
    cache_path: str | None


def run(
    devices: list[str] | tuple[str, ...] = (),
    data_dir: str | Path | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> list[Warmed]:
    """Warm both models on each device (default: tinygrad's); nothing is written."""
    out = []
    for device in runner.resolve_devices(list(devices)):
        for model in MODELS:
            spec = RunSpec.defaults(model, steps=STEPS, eval_every=0)
            request = bench.RunRequest(spec, device=device, out_dir=None, data_dir=data_dir)
            record, _ = bench.run(request, log=log)
            cache = record["environment"]["compile_cache"]
            out.append(Warmed(model, device, record["timings"]["compile_s"], cache["warm"], cache["path"]))
    return out
