"""What one evaluation of the full 10,000-image test set costs, per device and eval batch size, and
whether a batch size changes any prediction.

A model is trained for a few steps (fixed seed), then the test set is evaluated with each batch size:
once to compile, then timed `--repeats` times. Each batch size's 10,000 predictions are compared with
the first batch size's, image by image: a batch size is a safe change only if no prediction moves.

    python benchmarks/eval_cost.py --devices CPU,CL --batch-sizes 1000,2000,5000,10000 -o results/eval-cost/cl.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from harness.tg import data, env
from harness.tg.spec import RunSpec
from harness.tg.train import Trainer, batch_order, host_buffer, normalize


def predictor(trainer: Trainer, mnist, batch_size: int):
    """A function returning the predicted class of every test image, evaluated in batches of `batch_size` (each
    its own realized buffer, as the trainer holds them) through one jitted step, so repeats replay the capture."""
    from tinygrad import Context, Tensor, TinyJit

    with Context(DEV=trainer.device):
        batches = [
            Tensor(host_buffer(x.reshape(-1, 1, 28, 28)), device=trainer.device).realize()
            for x in np.split(mnist.x_test, trainer.n_test // batch_size)
        ]

    @TinyJit
    def predict(x: Tensor) -> Tensor:
        return trainer.model(normalize(x)).argmax(axis=1).realize()

    return lambda: np.concatenate([predict(x).numpy() for x in batches])


def measure(model: str, device: str, batch_sizes: list[int], steps: int, repeats: int, mnist) -> list[dict]:
    spec = RunSpec.defaults(model, steps=steps, eval_every=0)
    trainer = Trainer(spec, mnist, device)
    for idx in batch_order(spec.seed, len(mnist.y_train), spec.batch_size, steps):
        trainer.step(idx)
    rows, reference = [], None
    for b in batch_sizes:
        predictions = predictor(trainer, mnist, b)
        t0 = time.perf_counter()
        first = predictions()
        compile_s = time.perf_counter() - t0
        predictions()  # TinyJit captures on its second call: one batch of 10,000 only now
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            again = predictions()
            times.append(time.perf_counter() - t0)
            assert np.array_equal(again, first), "predictions changed between two evaluations"
        reference = first if reference is None else reference
        rows.append(
            {
                "model": model,
                "device": device,
                "eval_batch_size": b,
                "first_eval_s": round(compile_s, 3),
                "eval_s_median": round(statistics.median(times), 3),
                "eval_s_min": round(min(times), 3),
                "eval_s_max": round(max(times), 3),
                "correct": int((first == mnist.y_test).sum()),
                "predictions_differing_from_first_batch_size": int((first != reference).sum()),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="CPU,CL")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--batch-sizes", default="1000,2000,5000,10000")
    parser.add_argument("--steps", type=int, default=50, help="training steps before evaluating")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    mnist = data.load()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    rows = [
        row
        for model in args.models.split(",")
        for device in args.devices.split(",")
        for row in measure(model, device, sizes, args.steps, args.repeats, mnist)
    ]
    doc = {"settings": vars(args) | {"output": str(args.output)}, "cpu": env.collect_cpu(), "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
