"""Live progress lines: phases, throttling without a terminal, an ETA from steady-state steps (fake clock)."""

from __future__ import annotations

import io

import pytest

from harness.run.progress import RunProgress, SuiteProgress, duration, rough


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run(tty: bool = False):
    clock, out = Clock(), io.StringIO()
    bar = RunProgress(30, "cnn", stream=out, tty=tty, interval=5.0, clock=clock, ticker=False)
    return bar, clock, out


def test_without_a_terminal_a_line_per_phase_change_and_per_interval():
    bar, clock, out = _run()
    with bar:
        clock.now = 2.0
        bar.phase("compiling")
        for t in (10.0, 20.0, 44.0):  # a 45 s compile: the ticker keeps the log alive
            clock.now = t
            bar.tick()
        bar(1, 2.3)
        clock.now = 45.0
        bar(2, 2.2)  # the jitted step is captured: training from here
        for step in range(3, 31):
            clock.now += 1.0
            bar(step, 1.0 / step)
        bar.phase("evaluating")
        clock.now += 6.0
        bar.tick()
    lines = out.getvalue().splitlines()
    assert lines[0] == "cnn: loading data and device for 0s | 0s elapsed"
    assert lines[1].startswith("cnn: compiling (steps 1-2 capture and compile the jitted step) for 0s")
    assert [line.split(" | ")[-1] for line in lines[2:4]] == ["10s elapsed", "20s elapsed"]
    training = [line for line in lines if ": training " in line]
    assert training[0].startswith("cnn: training | step 2/30 | loss 2.2000 | ETA -")
    assert any("step 7/30" in line and "1 s/step | ETA 23s" in line for line in training)
    assert len(lines) < 20  # throttled: not a line per step
    assert "evaluating for 6s" in lines[-1] and "step 30/30" in lines[-1]


def test_eta_ignores_the_compile_and_steps_around_an_evaluation():
    bar, clock, _ = _run()
    with bar:
        bar.phase("compiling")
        clock.now = 40.0
        bar(1, 2.0)
        clock.now = 41.0
        bar(2, 2.0)
        for step in range(3, 11):
            clock.now += 2.0
            bar(step, 1.0)
        bar.phase("evaluating")
        clock.now += 30.0  # a slow first evaluation
        bar.phase("training")
        clock.now += 2.5
        bar(11, 1.0)
    assert bar.steady == [2.0] * 8
    assert bar.eta_s() == 2.0 * 19


def test_on_a_terminal_one_redrawn_line_naming_the_phase():
    bar, clock, out = _run(tty=True)
    with bar:
        bar.phase("compiling")
        clock.now = 1.0
        bar(1, 2.0)
    text = out.getvalue()
    assert text.startswith("\rcnn: loading") and "\rcnn: compiling" in text and "loss nan" not in text
    assert text.endswith("\n") and text.count("\n") == 1


def _planned(suite: str = "smoke"):
    from harness.documents import suites

    return suites.expand(suites.load(suite), ["CPU"])


def test_suite_prints_each_runs_start_and_result():
    out = io.StringIO()
    planned = _planned()[:2]  # mlp-tiny, seeds 0 and 1
    with SuiteProgress(planned, stream=out, tty=False, ticker=False) as suite:
        suite.start_run(planned[0], reused=False)
        suite(1, 2.0)
        suite.end_run(planned[0], {"status": "ok", "metrics": {"accuracy": 31.25}, "timings": {"wall_s": 4.2}})
        suite.start_run(planned[1], reused=True)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("suite: 2 runs, estimated ")
    assert lines[1] == "[1/2] mlp-tiny@CPU#seed0: start (mlp, 3 steps)"
    assert any(line.startswith("[1/2] mlp-tiny@CPU#seed0: compiling") for line in lines)
    assert "[1/2] mlp-tiny@CPU#seed0: ok, accuracy 31.25%, wall 4s" in lines[-2] and "left" in lines[-2]
    assert lines[-1] == "[2/2] mlp-tiny@CPU#seed1: reused (--resume)"


def test_the_suite_eta_scales_the_estimates_by_how_the_finished_runs_went():
    clock, out = Clock(), io.StringIO()
    planned = _planned("gate")[:3]  # mlp-default, seeds 0-2: the first compiles, the others reuse its kernels
    suite = SuiteProgress(planned, stream=out, tty=False, ticker=False, clock=clock)
    first, later = suite.estimates[0], suite.estimates[1]
    assert first > later > 0 and suite.eta_s() == first + 2 * later
    suite.start_run(planned[0], reused=False)
    clock.now = 2 * first  # twice as slow as estimated: so will the rest be
    suite.end_run(planned[0], {"status": "ok", "metrics": {}, "timings": {}})
    assert suite.eta_s() == pytest.approx(2 * 2 * later)
    assert f"about {rough(4 * later)} left" in out.getvalue()


def test_a_message_during_a_run_gets_its_own_line_on_a_terminal():
    """The device notice was glued to the progress line (`... 0s elapseddevice: CL`): now the line is cleared,
    the message printed on its own, and the progress line drawn again below it."""
    bar, _, out = _run(tty=True)
    with bar:
        bar.log("device: CL (the default)")
    text = out.getvalue()
    assert "elapseddevice" not in text and "\r\x1b[Kdevice: CL (the default)\n" in text
    assert text.index("device: CL") < text.rindex("\rcnn: loading")


def test_durations_and_rough_estimates():
    assert [duration(s) for s in (5.4, 65, 3 * 3600 + 125)] == ["5s", "1m05s", "3h02m"]
    assert [rough(s) for s in (1, 37, 119, 1446, 19931)] == ["5s", "35s", "2m", "24m", "5h32m"]


def test_a_slow_run_of_one_model_scales_the_others_at_most_twofold():
    clock, out = Clock(), io.StringIO()
    planned = _planned()  # mlp-tiny seeds 0, 1, then cnn-tiny seeds 0, 1
    suite = SuiteProgress(planned, stream=out, tty=False, ticker=False, clock=clock)
    mlp0, mlp1, cnn0, cnn1 = suite.estimates
    suite.start_run(planned[0], reused=False)
    clock.now = 5 * mlp0  # the first run of the process: five times its estimate
    suite.end_run(planned[0], {"status": "ok", "metrics": {}, "timings": {}})
    assert suite.eta_s() == pytest.approx(5 * mlp1 + 2 * (cnn0 + cnn1))
