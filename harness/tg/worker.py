"""The timing worker of `mnist-bench continuous`: one side's training steps, timed in blocks on request.

Run as a script (`python -P worker.py ...`, by harness.run.child.Child) with PYTHONPATH pointing at the side's
source tree, so the `harness` it imports (trainer, models, data) is that side's, not the caller's. It speaks
harness.run.child's JSON lines: one ready line after warm-up, then one reply per request read from stdin:
`{"model": "cnn", "steps": 2}` -> `{"model": "cnn", "times": [...]}`; `{"quit": true}` ends it.
Kept to the API every revision of the trainer has had (RunSpec.defaults, Trainer, batch_order), and free of
imports from the caller's package, because it runs against older source trees: the caller's child.py and
pocl.py are loaded by path from beside this file.
"""

from __future__ import annotations

import argparse
import sys
import time

WARMUP_STEPS = 3  # TinyJit runs the first call eagerly, captures on the second; the third is the first replay
MAX_BATCHES = 64  # a cycle of distinct batches; the step's cost does not depend on which samples it sees


def _side(name: str):
    """The side's module `name`: under harness/tg/ since the layered layout, at the top of harness/ before."""
    import importlib

    try:
        return importlib.import_module(f"harness.tg.{name}")
    except ModuleNotFoundError:
        return importlib.import_module(f"harness.{name}")


def _run_spec():
    try:
        return _side("spec").RunSpec
    except ImportError:  # source trees from before the spec had its own module
        return _side("train").RunSpec


class Model:
    """One model's trainer, warmed up, stepping through a fixed cycle of batches."""

    def __init__(self, name: str, mnist, device: str):
        train = _side("train")
        Trainer, batch_order = train.Trainer, train.batch_order

        spec = _run_spec().defaults(name, seed=0)
        t0 = time.perf_counter()
        self.trainer = Trainer(spec, mnist, device)
        self.order = batch_order(0, len(mnist.y_train), spec.batch_size, MAX_BATCHES)
        self.i = 0
        self.steps(WARMUP_STEPS)
        self.warmup_s = time.perf_counter() - t0

    def steps(self, n: int) -> list[float]:
        times = []
        for _ in range(n):
            idx = self.order[self.i % len(self.order)]
            self.i += 1
            t0 = time.perf_counter()
            self.trainer.step(idx)  # returns the loss with .item(): the device is synchronised
            times.append(time.perf_counter() - t0)
        return times


def _beside(name: str):
    """The caller's module `name` (a file beside this one), loaded by path: the side's source tree may
    predate it, and must not be the one to decide how the caller and this worker talk or lock."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / {"pocl": "tg", "child": "run"}[name] / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"mnist_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _guard_pocl(device: str) -> None:
    """The caller's PoCL cache lock: a source tree from before the lock has none, and its worker would crash
    beside the other side's when both fill a cold cache at once."""
    if device.split(":")[0].upper() == "CL":
        _beside("pocl").guard()


def _default_device(Device) -> str:
    """The side's own default device: its harness's choice where it makes one, else tinygrad's."""
    try:
        return _side("devices").default_device()
    except (ImportError, AttributeError):  # source trees from before the harness chose the device
        return Device.DEFAULT


def _version(package: str, module) -> str | None:
    """The installed distribution's version: tinygrad (0.13, 0.14) has no `__version__` attribute."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:  # imported from a source checkout on PYTHONPATH
        return getattr(module, "__version__", None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", required=True, help="comma-separated: mlp,cnn")
    parser.add_argument("--device", default=None)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    models: dict[str, Model] = {}

    def ready() -> dict:
        import numpy
        import tinygrad
        from tinygrad import Device

        data = _side("data")

        device = args.device or _default_device(Device)
        _guard_pocl(device)
        mnist = data.load(args.data_dir)
        models.update({name: Model(name, mnist, device) for name in args.models.split(",")})
        return {
            "device": device,
            "tinygrad": _version("tinygrad", tinygrad),
            "numpy": _version("numpy", numpy),
            "warmup_s": {name: m.warmup_s for name, m in models.items()},
        }

    def block(request: dict) -> dict:
        return {"model": request["model"], "times": models[request["model"]].steps(int(request["steps"]))}

    return _beside("child").serve(block, ready)


if __name__ == "__main__":
    sys.exit(main())
