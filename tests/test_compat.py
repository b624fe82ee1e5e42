"""The tinygrad 0.13 shims: each takes the 0.14 API where it exists and the 0.13 spelling where it does not
(0.13 is simulated here by removing the 0.14 name; the real 0.13 run is continuous's slow test)."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import tinygrad.helpers
from tinygrad import Tensor

from harness.tg import compat, counters


def test_training_sets_the_context_variable_on_0_14():
    with compat.training(DEV="CPU"):
        assert tinygrad.helpers.TRAINING.value == 1 and tinygrad.helpers.DEV.device == "CPU"
    assert tinygrad.helpers.TRAINING.value == 0


def test_training_uses_tensor_train_where_there_is_no_context_variable(monkeypatch):
    entered: list[bool] = []

    @contextlib.contextmanager
    def train(mode: bool = True):
        entered.append(mode)
        yield

    monkeypatch.delattr(tinygrad.helpers, "TRAINING")
    monkeypatch.setattr(Tensor, "train", train, raising=False)
    with compat.training(DEV="CPU"):
        assert entered == [True] and tinygrad.helpers.DEV.device == "CPU"


def test_cpu_threads_reads_cpu_count_where_there_is_no_num_cpu_threads(monkeypatch):
    assert counters.cpu_threads() == tinygrad.helpers.NUM_CPU_THREADS.value
    monkeypatch.delattr(tinygrad.helpers, "NUM_CPU_THREADS")
    monkeypatch.setattr(tinygrad.helpers, "CPU_COUNT", SimpleNamespace(value=3), raising=False)
    assert counters.cpu_threads() == 3
