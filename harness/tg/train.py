"""One fixed-seed training run: seeded init and batch order, a jitted step, evaluation, timings.

The seed fixes the weight init (tinygrad's RNG) and the batch order (NumPy's PCG64 over epoch
permutations), so the same spec on the same device and software gives bit-identical results.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.tg import augment, compat, counters, devices, optim
from harness.tg.data import Mnist
from harness.tg.models import build
from harness.tg.spec import RunSpec

MEAN, STD = 0.1307, 0.3081
WARMUP_STEPS = 2  # TinyJit runs the first call eagerly and captures on the second


@dataclass
class RunOutput:
    """What a run measured; `results.make_record` turns it into the versioned JSON record."""

    accuracy: float | None
    final_loss: float | None
    diverged: bool
    loss_curve: list[list[float]]
    evals: list[list[float]]  # [step, accuracy %, cumulative training seconds]
    step_times: list[float]
    eval_times: list[float]  # seconds of each evaluation, in the order of `evals`
    compile_s: float
    eval_s: float
    train_s: float
    weights_sha256: str | None
    target: float
    steps_done: int
    cost: dict[str, Any] | None = None  # counters.trainer_profile of the captured steps (None: never captured)

    def first_eval_reaching(self, target: float) -> list[float] | None:
        return next((e for e in self.evals if e[1] >= target), None)

    def time_to_target_with_eval(self, target: float) -> float | None:
        """MLPerf's time-to-train reading: training time plus every evaluation up to and including the first
        one at or above the target (training-only time is the eval's third field)."""
        i = next((i for i, e in enumerate(self.evals) if e[1] >= target), None)
        return None if i is None else self.evals[i][2] + sum(self.eval_times[: i + 1])


def batch_order(seed: int, n_train: int, batch_size: int, steps: int) -> np.ndarray:
    """steps x batch_size indices: consecutive seeded permutations of the training set."""
    rng = np.random.Generator(np.random.PCG64(seed))
    need = steps * batch_size
    epochs = -(-need // n_train)
    order = np.concatenate([rng.permutation(n_train) for _ in range(epochs)])[:need]
    return order.astype(np.int32).reshape(steps, batch_size)


def normalize(x):
    return (x.float() / 255.0 - MEAN) / STD


def eval_batch_size(n_test: int, cap: int = 1000) -> int:
    """The largest divisor of n_test up to cap, so every eval batch has one shape (one JIT)."""
    return next(b for b in range(min(cap, n_test), 0, -1) if n_test % b == 0)


def weights_sha256(model) -> str:
    from tinygrad.nn.state import get_state_dict

    digest = hashlib.sha256()
    for name, tensor in sorted(get_state_dict(model).items()):
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def host_buffer(array: np.ndarray, dtype: type | None = None) -> np.ndarray:
    """`array` as a C-contiguous, writable host array: tinygrad's CUDA backend copies in only from writable
    buffers (it fails with "underlying buffer is not writable"), and the dataset arrays are read-only views."""
    return np.require(array, dtype=dtype, requirements=["C", "W"])


class Trainer:
    """Data on the device, the model, a jitted train step and a jitted eval step."""

    def __init__(self, spec: RunSpec, data: Mnist, device: str):
        from tinygrad import TinyJit

        # `device` is the harness's name (`CPU:LLVM`); tensors live on tinygrad's device (`CPU`), and every
        # build, step and eval runs under devices.running_on(device), which also picks the renderer
        self.spec, self.name, self.device = spec, device, devices.tinygrad_device(device)
        with devices.running_on(device):
            self._build(data)
        self.train_step = TinyJit(self._train_step)
        self.correct = TinyJit(self._correct)

    def _build(self, data: Mnist) -> None:
        from tinygrad import Tensor, nn

        spec, device = self.spec, self.device
        Tensor.manual_seed(spec.seed)
        self.model = build(spec.model, spec.model_config)

        def on_device(array: np.ndarray, dtype: type | None = None) -> Tensor:
            return Tensor(host_buffer(array, dtype), device=device).realize()

        self.x_train = on_device(data.x_train.reshape(-1, 1, 28, 28))
        self.y_train = on_device(data.y_train, np.int32)
        b = eval_batch_size(len(data.y_test))
        self.test_batches = [
            (on_device(data.x_test[i : i + b].reshape(-1, 1, 28, 28)), on_device(data.y_test[i : i + b], np.int32))
            for i in range(0, len(data.y_test), b)
        ]
        self.n_test = len(data.y_test)
        self.optimizer = optim.make(
            spec.optimizer, nn.state.get_parameters(self.model), spec.lr, spec.weight_decay, spec.momentum
        )

    def _train_step(self, idx):
        spec = self.spec
        with devices.running_on(self.name), compat.training():  # augmentation: random numbers, default device
            self.optimizer.zero_grad()
            x = normalize(self.x_train[idx])
            if spec.augments:
                x = augment.affine(x, spec.augment_rotate, spec.augment_scale, spec.augment_translate)
            logits = self.model(x)
            loss = logits.sparse_categorical_crossentropy(self.y_train[idx], label_smoothing=spec.label_smoothing)
            loss = loss.backward()
            self.optimizer.step()
            return loss.realize()

    def _correct(self, x, y):
        with devices.running_on(self.name):  # here, so every caller's eval compiles with DEV's renderer
            return (self.model(normalize(x)).argmax(axis=1) == y).sum().realize()

    def step(self, indices: np.ndarray, lr: float | None = None) -> float:
        """One training step on these sample indices; `lr` (if given) is set first."""
        from tinygrad import Tensor

        with devices.running_on(self.name):
            if lr is not None:
                self.optimizer.lr.assign(Tensor([lr], device=self.device, dtype=self.optimizer.lr.dtype)).realize()
            return self.train_step(Tensor(indices, device=self.device)).item()

    def weights_sha256(self) -> str:
        with devices.running_on(self.name):  # reading a parameter may run a copy kernel
            return weights_sha256(self.model)

    def accuracy(self) -> float:
        correct = sum(int(self.correct(x, y).item()) for x, y in self.test_batches)
        return 100.0 * correct / self.n_test


def _phase(progress: object, name: str) -> None:
    """Tell a progress reporter (harness.run.progress) that the run entered a phase; a plain callable has no `phase`."""
    if callable(hook := getattr(progress, "phase", None)):
        hook(name)


def step_lr(spec: RunSpec, step: int) -> float | None:
    """The LR to set before step `step` (1-based); None for a constant schedule, which sets none (no assign kernel)."""
    if spec.schedule == "constant" and not spec.warmup_steps:
        return None
    return optim.lr_at(step - 1, lr=spec.lr, steps=spec.steps, schedule=spec.schedule, warmup_steps=spec.warmup_steps)


def train(
    spec: RunSpec, data: Mnist, device: str, target: float, progress: Callable[[int, float], None] | None = None
) -> RunOutput:
    """Run `spec` on `device`; stops early (diverged) if the loss stops being finite."""
    _phase(progress, "compiling")
    trainer = Trainer(spec, data, device)
    order = batch_order(spec.seed, len(data.y_train), spec.batch_size, spec.steps)
    step_times: list[float] = []
    loss_curve: list[list[float]] = []
    evals: list[list[float]] = []
    eval_times: list[float] = []
    loss = float("nan")
    for step in range(1, spec.steps + 1):
        t0 = time.perf_counter()
        loss = trainer.step(order[step - 1], step_lr(spec, step))  # .item() synchronises the device
        step_times.append(time.perf_counter() - t0)
        if step % spec.log_every == 0 or step == spec.steps or not math.isfinite(loss):
            loss_curve.append([step, loss])
        if progress:
            progress(step, loss)
        if not math.isfinite(loss):
            break
        if step == spec.steps or (spec.eval_every and step % spec.eval_every == 0):
            _phase(progress, "evaluating")
            t0 = time.perf_counter()
            evals.append([step, trainer.accuracy(), sum(step_times)])
            eval_times.append(time.perf_counter() - t0)
            if step < spec.steps:
                _phase(progress, "training")
    diverged = not math.isfinite(loss)
    steady = step_times[WARMUP_STEPS:]
    cost = (
        counters.trainer_profile(trainer, float(np.median(steady)) if steady else None)
        if trainer.train_step.captured is not None
        else None
    )
    return RunOutput(
        accuracy=None if diverged else evals[-1][1],
        final_loss=loss if not diverged else None,
        diverged=diverged,
        loss_curve=loss_curve,
        evals=evals,
        step_times=step_times,
        eval_times=eval_times,
        compile_s=sum(step_times[:WARMUP_STEPS]),
        eval_s=sum(eval_times),
        train_s=sum(step_times),
        weights_sha256=None if diverged else trainer.weights_sha256(),
        target=target,
        steps_done=len(step_times),
        cost=cost,
    )
