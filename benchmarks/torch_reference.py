"""The harness's MLP and CNN in PyTorch, as a speed reference (`pip install 'mnist-bench[reference]'`).

Same architectures, same Adam, same batch sizes; used only by benchmarks/perf.py, never by the harness.
"""

from __future__ import annotations

import time

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
