"""The harness's MLP and CNN in PyTorch, as a speed and accuracy reference (`pip install 'mnist-bench[reference]'`).

Same architectures, same Adam, same batch sizes; used by benchmarks/perf.py (speed), never by the harness.
Run as a script, it trains the hyperparameter study's three reference recipes (Adam LR 0.001, BS 128:
MLP 100 and 1000 steps, CNN 100 steps) over 3 seeds and prints their test accuracy next to the original
study's and this harness's (results/explore):

    python benchmarks/torch_reference.py [--seeds 0,1,2] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def build(model: str):
    import torch
    from torch import nn

    if model == "mlp":
        return nn.Sequential(
            nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
        )
    return nn.Sequential(
        nn.Conv2d(1, 32, 5),
        nn.ReLU(),
        nn.Conv2d(32, 32, 5),
        nn.ReLU(),
        nn.BatchNorm2d(32),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3),
        nn.ReLU(),
        nn.BatchNorm2d(64),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(576, 10),
    ).to(memory_format=torch.contiguous_format)


def step_times(
    model: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    batch_size: int,
    steps: int,
    warmup: int = 3,
    seed: int = 0,
    device: str = "cpu",
) -> list[float]:
    """Seconds per training step (data already on `device`, normalisation inside the step); `loss.item()`
    waits for the device, so each time covers the whole step."""
    import torch

    torch.manual_seed(seed)
    net = build(model).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    # a writable copy: the cache arrays are read-only
    x = torch.from_numpy(x_train.reshape(-1, 1, 28, 28).copy()).to(device)
    y = torch.from_numpy(y_train.astype(np.int64)).to(device)
    rng = np.random.default_rng(seed)
    times = []
    for i in range(warmup + steps):
        idx = torch.from_numpy(rng.integers(0, len(y), batch_size)).to(device)
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net((x[idx].float() / 255 - 0.1307) / 0.3081), y[idx])
        loss.backward()
        opt.step()
        loss.item()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def eval_times(
    model: str, x_test: np.ndarray, y_test: np.ndarray, reps: int, batch: int = 1000, device: str = "cpu"
) -> list[float]:
    """Seconds per pass over the whole test set (eval mode, no gradients, batches of `batch` like the
    harness's eval), after one untimed pass; the weights are the seeded initial ones (the time does not
    depend on them)."""
    import torch

    if reps < 1:
        return []
    torch.manual_seed(0)
    net = build(model).to(device).eval()
    x = torch.from_numpy(x_test.reshape(-1, 1, 28, 28).copy()).to(device)
    y = torch.from_numpy(y_test.astype(np.int64)).to(device)

    def one_pass() -> int:
        with torch.no_grad():
            return sum(
                int((net((x[i : i + batch].float() / 255 - 0.1307) / 0.3081).argmax(1) == y[i : i + batch]).sum())
                for i in range(0, len(y), batch)
            )

    one_pass()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        one_pass()  # int() of each batch's count waits for the device
        times.append(time.perf_counter() - t0)
    return times


def set_threads(threads: int) -> None:
    """Intra-op threads for PyTorch: 1 by default in perf.py, because tinygrad's CPU backend runs each
    kernel on one core (measured: ~95% CPU for one process), so 1 thread compares like with like."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return f"{torch.__version__} ({torch.get_num_threads()} threads)"


# the recipes compared, with the original study's single-run accuracy (its report, configs 1 and 6 of the
# MLP table and 1 of the CNN table) and the explore suite's run of the same config
RECIPES = (
    {"model": "mlp", "steps": 100, "original": 94.54, "explore": "mlp-01-baseline"},
    {"model": "mlp", "steps": 1000, "original": 98.78, "explore": "mlp-06-steps-1000"},
    {"model": "cnn", "steps": 100, "original": 98.40, "explore": "cnn-01-baseline"},
)
EXPLORE_SUMMARY = Path(__file__).resolve().parent.parent / "results/explore/runs/explore.summary.json"


def train_and_test(model: str, data, steps: int, seed: int, batch_size: int = 128, lr: float = 1e-3) -> float:
    """Test accuracy (%) after `steps` Adam steps on batches sampled with replacement (seeded)."""
    import torch

    torch.manual_seed(seed)
    net = build(model)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x = torch.from_numpy(data.x_train.reshape(-1, 1, 28, 28).copy())
    y = torch.from_numpy(data.y_train.astype(np.int64))
    rng = np.random.default_rng(seed)
    net.train()
    for _ in range(steps):
        idx = torch.from_numpy(rng.integers(0, len(y), batch_size))
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net((x[idx].float() / 255 - 0.1307) / 0.3081), y[idx])
        loss.backward()
        opt.step()
    net.eval()
    xt = torch.from_numpy(data.x_test.reshape(-1, 1, 28, 28).copy())
    with torch.no_grad():
        pred = net((xt.float() / 255 - 0.1307) / 0.3081).argmax(1).numpy()
    return float(100.0 * (pred == data.y_test).mean())


def harness_accuracies(summary_path: Path = EXPLORE_SUMMARY) -> dict[str, list[float]]:
    """Per-seed accuracy of each explore config from the committed summary (read as plain JSON)."""
    if not summary_path.exists():
        return {}
    doc = json.loads(summary_path.read_text())
    return {c["name"]: c["metrics"]["accuracy"]["values"] for c in doc["configs"] if c["metrics"]["accuracy"]}


def _mean_std(values: list[float]) -> str:
    if not values:
        return "n/a"
    arr = np.asarray(values)
    std = arr.std(ddof=1) if len(arr) > 1 else 0.0
    return f"{arr.mean():.2f} ± {std:.2f} (n={len(arr)}; {', '.join(f'{v:.2f}' for v in values)})"


def side_by_side(torch_results: dict[str, list[float]], harness: dict[str, list[float]]) -> str:
    rows = [
        "| recipe (Adam LR 0.001, BS 128) | original study (1 run) | mnist-bench, tinygrad | PyTorch |",
        "|---|---|---|---|",
    ]
    for r in RECIPES:
        name = f"{r['model'].upper()} {r['steps']} steps"
        rows.append(
            f"| {name} | {r['original']:.2f} | {_mean_std(harness.get(r['explore'], []))} "
            f"| {_mean_std(torch_results[name])} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1, help="PyTorch intra-op threads [default: 1]")
    parser.add_argument("--json", type=Path, help="Also write the accuracies here.")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout: harness.tg.data
    from harness.tg import data as mnist_data

    set_threads(args.threads)
    mnist = mnist_data.load()
    results: dict[str, list[float]] = {}
    for r in RECIPES:
        name = f"{r['model'].upper()} {r['steps']} steps"
        for seed in args.seeds:
            t0 = time.perf_counter()
            acc = train_and_test(r["model"], mnist, r["steps"], seed)
            results.setdefault(name, []).append(acc)
            print(f"{name} seed {seed}: {acc:.2f}% ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"torch": version(), "accuracy": results}, indent=2, sort_keys=True) + "\n")
    print(f"PyTorch {version()}")
    print(side_by_side(results, harness_accuracies()))


if __name__ == "__main__":
    main()
