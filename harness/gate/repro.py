"""Reproducibility checks: rerun a result's exact config and seed, say which fields differ."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import documents
from harness.base import inputs
from harness.base.errors import HarnessError
from harness.documents import summary
from harness.run import bench
from harness.tg import kernel_search
from harness.tg.models import MODELS
from harness.tg.spec import RunSpec

# fields that must be bit-identical on the same device and software
EXACT_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "series.loss": lambda r: r["series"]["loss"],
    "metrics.accuracy": lambda r: r["metrics"]["accuracy"],
    "metrics.final_loss": lambda r: r["metrics"]["final_loss"],
    "series.evals (step, accuracy)": lambda r: [[e["step"], e["accuracy"]] for e in r["series"]["evals"]],
    "metrics.steps_to_target": lambda r: r["metrics"]["steps_to_target"],
    "metrics.weights_sha256": lambda r: r["metrics"]["weights_sha256"],
}


def software_key(record: dict[str, Any]) -> dict[str, Any]:
    """What must match for bit-identical results to be expected."""
    env = record["environment"]
    return {
        "device": record["device"]["name"],
        "cpu": env["cpu"]["model"],
        "gpu": env["gpu"],
        "tinygrad": env["packages"]["tinygrad"],
        "numpy": env["packages"]["numpy"],
        "tinygrad_env": env["tinygrad_env"],
    }


def differing_fields(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return [name for name, get in EXACT_FIELDS.items() if get(a) != get(b)]


@dataclass
class Verdict:
    reference: dict[str, Any]
    reruns: list[dict[str, Any]]
    tolerance_pp: float
    env_differences: list[str] = field(default_factory=list)

    @property
    def exact_expected(self) -> bool:
        return not self.env_differences and self.reference["environment"]["determinism"]["known_deterministic"]

    def rerun_report(self, rerun: dict[str, Any]) -> tuple[bool, str]:
        diffs = differing_fields(self.reference, rerun)
        if self.exact_expected:
            return not diffs, "bit-identical" if not diffs else "differs in: " + ", ".join(diffs)
        delta = (rerun["metrics"]["accuracy"] or 0.0) - (self.reference["metrics"]["accuracy"] or 0.0)
        ok = abs(delta) <= self.tolerance_pp
        return ok, f"accuracy delta {delta:+.2f} pp (tolerance {self.tolerance_pp:g} pp)" + (
            "; bit-identical anyway" if not diffs else f"; differs in: {', '.join(diffs)}"
        )

    @property
    def passed(self) -> bool:
        return all(self.rerun_report(r)[0] for r in self.reruns)


def spec_of(record: dict[str, Any]) -> RunSpec:
    return RunSpec(**record["config"])


def check(
    reference: dict[str, Any] | None,
    spec: RunSpec,
    *,
    runs: int,
    device: str | None,
    target: float | None,
    tolerance_pp: float,
    data_dir: str | None = None,
    log: Callable[[str], None] | None = None,
    beam: int | None = None,
) -> Verdict:
    """Rerun `spec` `runs` times; compare each with the reference (or, without one, with the first rerun)."""
    reruns = []
    for _ in range(runs):
        request = bench.RunRequest(spec, device=device, out_dir=None, data_dir=data_dir, target=target, beam=beam)
        record, _ = bench.run(request, log=log)
        reruns.append(record)
    if reference is None:
        reference, reruns = reruns[0], reruns[1:]
    if not reruns:
        return Verdict(reference, reruns, tolerance_pp)
    a, b = software_key(reference), software_key(reruns[0])
    return Verdict(reference, reruns, tolerance_pp, summary.env_differences([a], [b], ("reference", "rerun"), tuple(a)))


def load_reference(path: Path) -> dict[str, Any]:
    return documents.load(path, "run")


def check_source(
    source: str,
    *,
    runs: int = 1,
    device: str | None = None,
    tolerance_pp: float = 0.5,
    steps: int | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    log: Callable[[str], None] | None = None,
) -> Verdict:
    """`source` a result file: rerun its config `runs` times against it (on its device unless told);
    `source` a model name (mlp, cnn): `runs` + 1 runs of its defaults, each checked against the first."""
    if source in MODELS:
        spec = RunSpec.defaults(source, steps=steps, seed=seed)
        return check(
            None, spec, runs=runs + 1, device=device, target=None, tolerance_pp=tolerance_pp, data_dir=data_dir, log=log
        )
    if not Path(source).exists():
        raise HarnessError(
            f"{source}: not a result file nor a model ({', '.join(MODELS)}){inputs.did_you_mean(source, MODELS)}"
        )
    reference = load_reference(Path(source))
    return check(
        reference,
        spec_of(reference),
        runs=runs,
        device=device or reference["device"]["name"],
        target=reference["target"]["accuracy"],
        tolerance_pp=tolerance_pp,
        data_dir=data_dir,
        log=log,
        beam=kernel_search.record_beam(reference),  # the reference's kernels: searched ones if it used BEAM
    )
