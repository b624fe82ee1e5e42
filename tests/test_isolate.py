from __future__ import annotations

import json

import pytest

from harness.base.errors import ExitCode, HarnessError
from harness.run import bench, isolate, runner


@pytest.mark.parametrize(
    "devices, choice, expected",
    [
        (["CPU"], None, False),
        (["CUDA"], None, True),
        (["CPU", "NV:1"], None, True),
        (["CUDA"], False, False),
        (["CPU"], True, True),
    ],
)
def test_isolation_by_default_only_off_the_cpu(devices, choice, expected):
    assert isolate.wanted(devices, choice) is expected


def test_isolated_runs_give_the_in_process_results(smoke_run, tmp_path):
    """Each run in a fresh interpreter: same seeds, same trained weights and accuracy as in one process."""
    folder, planned, _ = smoke_run
    mlp = [p for p in planned if p.name == "mlp-tiny"]
    outcome = runner.run_suite("smoke", mlp, tmp_path, isolated=True)
    assert sorted(outcome.ran) == sorted(p.key for p in mlp) and not outcome.problems
    for p in mlp:
        alone, together = (json.loads((f / p.filename).read_text()) for f in (tmp_path, folder))
        assert alone["metrics"]["weights_sha256"] == together["metrics"]["weights_sha256"]
        assert alone["metrics"]["accuracy"] == together["metrics"]["accuracy"]
    assert outcome.summary["n_runs"] == len(mlp)


def test_a_run_whose_process_fails_is_a_clear_error(smoke_run, tmp_path):
    plan = next(p for p in smoke_run[1] if p.name == "mlp-tiny")
    request = bench.RunRequest(plan.spec, device="CPU", out_dir=tmp_path, target=plan.target, filename=plan.filename)
    with pytest.raises(HarnessError, match="exited with code 3, no result") as caught:
        isolate.run(request, str(tmp_path / "no-such-mnist"))
    assert caught.value.code == ExitCode.DATA and not (tmp_path / plan.filename).exists()
