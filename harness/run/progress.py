"""Live progress of a run and of a suite, on a terminal or in a CI log.

A run goes through phases: loading (data, device), compiling (tinygrad captures and compiles the jitted
step in the first steps, 30-50 s for the CNN on a small CPU), training (steps i/n with the loss) and
evaluating. On a terminal, one line is redrawn in place; its ETA is the median of the steady-state step
times (the steps after the compile, none that contains an evaluation) times the steps left, so a long
compile does not inflate it. When stderr is not a terminal (CI), a line is printed at every phase change
and otherwise at most every `interval` seconds, also while a single long step or compile is running
(a background ticker), so a log never goes quiet for minutes.

`train.train` calls a reporter's `phase(name)` where it has one; any plain `(step, loss)` callable still works.
"""

from __future__ import annotations

import math
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from harness.tg.train import WARMUP_STEPS

DEFAULT_INTERVAL_S = 5.0
LOADING, COMPILING, TRAINING, EVALUATING = "loading", "compiling", "training", "evaluating"


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def rough(seconds: float) -> str:
    """An estimate without false precision: to 5 s under two minutes, else to the minute."""
    if seconds < 117.5:
        return f"{max(5, round(seconds / 5) * 5)}s"
    return f"{round(seconds / 60)}m" if seconds < 3570 else duration(round(seconds / 60) * 60)


class RunProgress:
    """Progress of one run: call it with (step, loss) after every step; `phase()` on every phase change."""

    def __init__(
        self,
        total_steps: int,
        label: str,
        *,
        stream: IO[str] | None = None,
        tty: bool | None = None,
        interval: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        ticker: bool = True,
    ):
        self.total, self.label, self.interval, self.clock = total_steps, label, interval, clock
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.started = self.phase_started = self.last_event = clock()
        self.last_line = -math.inf
        self.current, self.step, self.loss = LOADING, 0, float("nan")
        self.steady: list[float] = []  # durations of steps after the compile with no phase change inside
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick_loop, daemon=True) if ticker else None

    # --- the hooks ---------------------------------------------------------------------------------

    def __enter__(self) -> RunProgress:
        if self._thread:
            self._thread.start()
        self._emit(force=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread and self._thread.is_alive():
            self._thread.join(timeout=1)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def phase(self, name: str) -> None:
        with self._lock:
            if name == self.current:
                return
            self.current, self.phase_started = name, self.clock()
            self.last_event = math.nan  # the next step's time contains the phase change: not steady
        self._emit(force=True)

    def __call__(self, step: int, loss: float) -> None:
        with self._lock:
            now = self.clock()
            if step > WARMUP_STEPS and not math.isnan(self.last_event) and self.current == TRAINING:
                self.steady.append(now - self.last_event)
            self.last_event, self.step, self.loss = now, step, loss
            changed = self.current in (LOADING, COMPILING) and step >= WARMUP_STEPS
            if changed:
                self.current, self.phase_started = TRAINING, now
        self._emit(force=changed)

    def log(self, text: str) -> None:
        """A message (the device notice, the data source) on its own line: on a terminal the progress line is
        cleared first and redrawn below it, so the two never run together."""
        with self._lock:
            self.stream.write(("\r\x1b[K" if self.tty else "") + text + "\n")
            self.stream.flush()
        if self.tty:
            self._emit(force=True)

    def tick(self) -> None:
        """What the background ticker does: a line if none was printed for `interval` seconds."""
        self._emit(force=False)

    # --- the line ----------------------------------------------------------------------------------

    def eta_s(self) -> float | None:
        """Seconds of training left at the median steady-state step time; None before any steady step."""
        if not self.steady:
            return None
        return statistics.median(self.steady) * max(self.total - self.step, 0)

    def line(self) -> str:
        now = self.clock()
        elapsed = f"{duration(now - self.started)} elapsed"
        if self.current == TRAINING or (self.current == EVALUATING and self.step):
            parts = [f"{self.label}: {self.current}", f"step {self.step}/{self.total}", f"loss {self.loss:.4f}"]
            if self.steady:
                parts.append(f"{statistics.median(self.steady):.3g} s/step")
            parts.append(f"ETA {duration(self.eta_s())}" if self.steady else "ETA -")
            if self.current == EVALUATING:
                parts.append(f"evaluating for {duration(now - self.phase_started)}")
            return " | ".join([*parts, elapsed])
        what = {
            LOADING: "loading data and device",
            COMPILING: f"compiling (steps 1-{WARMUP_STEPS} capture and compile the jitted step)",
            EVALUATING: "evaluating on the test set",
        }.get(self.current, self.current)
        return f"{self.label}: {what} for {duration(now - self.phase_started)} | {elapsed}"

    def _emit(self, force: bool) -> None:
        with self._lock:
            now = self.clock()
            if self.tty:
                if force or now - self.last_line >= 0.2:  # redraw at most 5 times a second
                    self.stream.write("\r" + self.line() + "\x1b[K")
                    self.stream.flush()
                    self.last_line = now
                return
            if force or now - self.last_line >= self.interval:
                self.stream.write(self.line() + "\n")
                self.stream.flush()
                self.last_line = now

    def _tick_loop(self) -> None:
        period = min(1.0, self.interval / 5) if not self.tty else 1.0
        while not self._stop.wait(period):
            self.tick()


class SuiteProgress:
    """A suite's runs: a line when each starts and when each ends (with its result and the suite's ETA),
    live progress within. The ETA is the committed measurements' estimate of the runs left
    (`suites.estimates`), scaled by how the finished runs compared with their own estimates (`eta_s`)."""

    def __init__(
        self,
        planned: list,
        *,
        stream: IO[str] | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ):
        from harness.documents import suites

        self.planned, self.kwargs, self.clock = planned, kwargs, clock
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.index, self.run = 0, None
        self.started = self.run_started = clock()
        self.estimates = suites.estimates(planned)
        self.done: list[tuple[str, float, float]] = []  # (model, estimated, actual seconds) of the runs made
        self.summary_line = f"{len(planned)} runs" + (
            f", estimated {rough(sum(e for e in self.estimates if e is not None))}" if any(self.estimates) else ""
        )

    def __enter__(self) -> SuiteProgress:
        self._print(f"suite: {self.summary_line} (`suite show` says where estimates come from)")
        return self

    def eta_s(self) -> float | None:
        """Seconds left for the runs after the current one ends; None when none of them has an estimate.
        Each run left is scaled by how the finished runs of its model compared with their estimates, else
        by how all finished runs did, at most 2x either way (one slow first run says little about the rest)."""
        left = list(zip(self.planned[self.index :], self.estimates[self.index :], strict=True))
        if not any(e is not None for _, e in left):
            return None if left else 0.0
        return sum(e * self._ratio(p.spec.model) for p, e in left if e is not None)

    def _ratio(self, model: str) -> float:
        def ratio(pairs: list[tuple[float, float]]) -> float | None:
            estimated, actual = sum(e for e, _ in pairs), sum(a for _, a in pairs)
            return actual / estimated if estimated > 0 and actual > 0 else None

        same = ratio([(e, a) for m, e, a in self.done if m == model])
        if same is not None:
            return same
        overall = ratio([(e, a) for _, e, a in self.done])
        return 1.0 if overall is None else min(max(overall, 0.5), 2.0)

    def __exit__(self, *exc: Any) -> None:
        self._close_run()

    def _close_run(self) -> None:
        if self.run is not None:
            self.run.__exit__(None, None, None)
            self.run = None

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def start_run(self, planned, reused: bool) -> None:
        self._close_run()
        self.index += 1
        self.run_started = self.clock()
        head = f"[{self.index}/{len(self.planned)}] {planned.key}"
        if reused:
            self._print(f"{head}: reused (--resume)")
            return
        self._print(f"{head}: start ({planned.spec.model}, {planned.spec.steps} steps)")
        self.run = RunProgress(planned.spec.steps, head, stream=self.stream, tty=self.tty, **self.kwargs).__enter__()
        self.run.phase(COMPILING)

    def end_run(self, planned, record: dict[str, Any]) -> None:
        self._close_run()
        estimated = self.estimates[self.index - 1] if 0 < self.index <= len(self.estimates) else None
        if estimated:
            self.done.append((planned.spec.model, estimated, self.clock() - self.run_started))
        m, t = record.get("metrics") or {}, record.get("timings") or {}
        accuracy = "-" if m.get("accuracy") is None else f"{m['accuracy']:.2f}%"
        eta = self.eta_s()
        left = "" if self.index >= len(self.planned) else (f", about {rough(eta)} left" if eta is not None else "")
        self._print(
            f"[{self.index}/{len(self.planned)}] {planned.key}: {record['status']}, accuracy {accuracy}, "
            f"wall {duration(t.get('wall_s'))}; suite {duration(self.clock() - self.started)} so far{left}"
        )

    def phase(self, name: str) -> None:
        if self.run is not None:
            self.run.phase(name)

    def log(self, text: str) -> None:
        """A message between or within runs, never glued to a run's progress line."""
        if self.run is not None:
            self.run.log(text)
        else:
            self._print(text)

    def __call__(self, step: int, loss: float) -> None:
        if self.run is not None:
            self.run(step, loss)

    def step(self, step: int, loss: float) -> None:  # the old SuiteProgress hook's name
        self(step, loss)
