"""Suite files: load + validate, expand grids x seeds x devices into planned runs, shard i/n."""

from __future__ import annotations

import functools
import itertools
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import documents
from harness.base import inputs
from harness.base.errors import HarnessError
from harness.documents import schema
from harness.tg.models import DEFAULT_CONFIGS
from harness.tg.spec import TARGETS, RunSpec, run_key

SETTINGS = (
    "lr",
    "batch_size",
    "steps",
    "optimizer",
    "eval_every",
    "log_every",
    "weight_decay",
    "momentum",
    "schedule",
    "warmup_steps",
    "label_smoothing",
    "augment_rotate",
    "augment_scale",
    "augment_translate",
)
MODEL_AXES = ("activation", "hidden", "channels", "kernels", "dropout", "batchnorm")


def suite_dir() -> Path:
    """Shipped suites: `harness/suites` in an installed wheel, else `benchmarks/suites/`."""
    packaged = Path(__file__).resolve().parents[1] / "suites"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "benchmarks" / "suites"


def available() -> dict[str, Path]:
    return {p.stem: p for p in sorted(suite_dir().glob("*.toml"))}


def _parse(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise HarnessError(f"{path}: cannot read ({e.strerror})") from e
    number = functools.partial(inputs.finite, what=str(path))  # a nan or inf budget would never be exceeded
    try:
        if path.suffix == ".json":
            return json.loads(text, parse_float=number, parse_constant=number)
        return tomllib.loads(text, parse_float=number)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise HarnessError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'} ({e})") from e


def resolve_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".toml", ".json") and path.exists():
        return path
    shipped = available()
    if name_or_path not in shipped:
        raise HarnessError(f"unknown suite {name_or_path!r}; shipped suites: {', '.join(shipped)} (or give a path)")
    return shipped[name_or_path]


def load(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A validated suite document, with `include`d suites' runs merged in."""
    path = resolve_path(name_or_path)
    doc = documents.upgrade(_parse(path), str(path))
    schema.check(doc, "suite", str(path))
    if doc["name"] in _seen:
        raise HarnessError(f"{path}: suite include cycle: {' -> '.join((*_seen, doc['name']))}")
    runs = [dict(r, **_inherit(doc, r)) for r in doc.get("runs", [])]
    for included in doc.get("include", []):
        runs += load(_included(path, included), (*_seen, doc["name"]))["runs"]
    names = [r["name"] for r in runs]
    if dups := sorted({n for n in names if names.count(n) > 1}):
        raise HarnessError(f"{path}: duplicate run name(s): {', '.join(dups)}")
    return {**doc, "runs": runs}


def _included(path: Path, name: str) -> str:
    """An included suite: a sibling file of the including one, else a shipped suite."""
    return str(path.parent / f"{name}.toml") if (path.parent / f"{name}.toml").exists() else name


def covered(name_or_path: str) -> set[str]:
    """The suite's name and the names of every suite it includes, transitively: results of any of
    them belong in its summary (explore covers mlp-explore and cnn-explore)."""
    path = resolve_path(name_or_path)
    doc = _parse(path)
    names = {doc["name"]}
    for included in doc.get("include", []):
        if included not in names:
            names |= covered(_included(path, included))
    return names


def _inherit(suite: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """Suite-level defaults, seeds and target policy a run does not set itself."""
    out = {k: v for k, v in suite.get("defaults", {}).items() if k not in run}
    if "seeds" not in run and "repeat" not in run:
        if "seeds" in suite:
            out["seeds"] = suite["seeds"]
        elif "repeat" in suite:
            out["repeat"] = suite["repeat"]
    out.setdefault("assert_target", suite.get("assert_targets", True))
    return out


@dataclass(frozen=True)
class PlannedRun:
    """One run of a suite: a config under a name, with one seed, on one device."""

    suite: str
    name: str
    category: str
    description: str
    spec: RunSpec
    device: str
    target: float
    assert_target: bool
    budget: dict[str, float] = field(default_factory=dict)

    @property
    def config_key(self) -> str:
        return run_key(self.name, self.device)

    @property
    def key(self) -> str:
        return run_key(self.name, self.device, self.spec.seed)

    @property
    def filename(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.=,-]+", "_", f"{self.name}__{self.device}__seed{self.spec.seed}")
        return f"{safe}.json"

    def suite_info(self) -> dict[str, str]:
        return {
            "name": self.suite,
            "run": self.name,
            "category": self.category,
            "description": self.description,
            "assert_target": self.assert_target,
            "budget": dict(self.budget),
        }


def _grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    axes = list(grid)
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*(grid[a] for a in axes))]


def _point_name(point: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return "x".join(map(str, v)) if isinstance(v, list) else str(v)

    return ",".join(f"{k}={fmt(v)}" for k, v in point.items())


def _specs(run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, settings) per grid point of one run entry (one pair when there is no grid)."""
    base = {k: run[k] for k in SETTINGS if k in run}
    base["model_config"] = dict(run.get("model_config", {}))
    if "grid" not in run:
        return [(run["name"], base)]
    out = []
    for point in _grid_points(run["grid"]):
        settings = {**base, "model_config": dict(base["model_config"])}
        for axis, value in point.items():
            if axis in MODEL_AXES:
                if axis not in DEFAULT_CONFIGS[run["model"]]:
                    raise HarnessError(f"run {run['name']!r}: grid axis {axis!r} does not apply to {run['model']}")
                settings["model_config"][axis] = value
            else:
                settings[axis] = value
        out.append((f"{run['name']}/{_point_name(point)}", settings))
    return out


def seeds_of(run: dict[str, Any], override: list[int] | None) -> list[int]:
    if override is not None:
        return override
    if "seeds" in run:
        return list(run["seeds"])
    return list(range(run.get("repeat", 1)))


def expand(suite: dict[str, Any], devices: list[str], seeds: list[int] | None = None) -> list[PlannedRun]:
    """Every (config, seed, device) of the suite, in a stable order: configs, then devices, then seeds."""
    planned = []
    for run in suite["runs"]:
        for name, settings in _specs(run):
            for device in devices:
                for seed in seeds_of(run, seeds):
                    spec = RunSpec.defaults(run["model"], **settings, seed=seed)
                    planned.append(
                        PlannedRun(
                            suite=suite["name"],
                            name=name,
                            category=run.get("category", ""),
                            description=run.get("description", ""),
                            spec=spec,
                            device=device,
                            target=run.get("target", TARGETS[run["model"]]),
                            assert_target=run["assert_target"],
                            budget=dict(run.get("budget", {})),
                        )
                    )
    return planned


def select(
    planned: list[Any], patterns: list[str], *, name: Callable[[Any], str] = lambda p: p.name, where: str = ""
) -> list[Any]:
    """Only the items (planned runs; `compare --only`: summary configs) whose `name` matches one of the glob
    patterns (all of them when there are none); `where` says whose items in the error."""
    import fnmatch

    if not patterns:
        return planned
    chosen = [p for p in planned if any(fnmatch.fnmatchcase(name(p), pat) for pat in patterns)]
    if not chosen:
        names = ", ".join(dict.fromkeys(name(p) for p in planned))
        raise HarnessError(f"--only {' '.join(patterns)} matches no run{where}; runs{where}: {names}")
    return chosen


def parse_shard(text: str) -> tuple[int, int]:
    """`i/n` with 1 <= i <= n."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise HarnessError(f"bad shard {text!r}: expected i/n with 1 <= i <= n, e.g. 1/4")
    return int(match[1]), int(match[2])


def shard(planned: list[PlannedRun], index: int, count: int) -> list[PlannedRun]:
    """Shard `index` of `count` (1-based): every count-th run, so shards get similar mixes of work."""
    return [p for j, p in enumerate(planned) if j % count == index - 1]


def seed_override(repeat: int | None, seeds: list[int] | None) -> list[int] | None:
    """The seeds to run every config with instead of the suite's: 0..repeat-1, or `seeds`; None keeps the suite's."""
    if repeat is not None and seeds is not None:
        raise HarnessError("give --repeat or --seeds, not both")
    if repeat is not None:
        if repeat < 1:
            raise HarnessError(f"--repeat must be at least 1, got {repeat}")
        return list(range(repeat))
    return list(seeds) if seeds is not None else None


def preview(name: str, *, repeat: int | None = None, seeds: list[int] | None = None) -> tuple[dict, list[PlannedRun]]:
    """(suite document, its planned runs on a placeholder device): what `suite show` lists."""
    doc = load(name)
    return doc, expand(doc, ["<device>"], seed_override(repeat, seeds))


ESTIMATE_DEVICE = "CPU"  # the device `suite list` estimates for: the one with the most committed runs


def listing() -> list[dict[str, Any]]:
    """One row per shipped suite: name, number of runs per device, description, estimated time on CPU."""
    rows = []
    for name in available():
        doc = load(name)
        planned = expand(doc, [ESTIMATE_DEVICE])
        rows.append(
            {"name": name, "runs": len(planned), "description": doc["description"], "estimate": estimate(planned)}
        )
    return rows


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as e:
        raise HarnessError(f"bad --seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from e
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise HarnessError(f"bad --seeds {text!r}: expected distinct non-negative integers")
    return seeds


# --- time estimates ---------------------------------------------------------------------------------
# A suite's time, estimated from the runs committed under results/ (harness/documents/timings.py holds
# what they measured, per model and device, on the machine most of them ran on). A run costs its compile
# (the first seed of a config compiles the jitted step; later seeds in the same process mostly reuse the
# kernels), its steps (a fixed part plus a part proportional to the step's multiply-adds) and its
# evaluations (proportional to the forward pass's multiply-adds); a suite adds one data load. Good to
# about a factor of two on that kind of machine; another machine, device or a cold compile cache differs.


TEST_IMAGES = 10_000  # every evaluation runs the whole MNIST test set


def forward_macs(model: str, config: dict[str, Any]) -> int:
    """Multiply-adds of one image's forward pass through the model's layers (convolutions and linears)."""
    from harness.tg.models import IMAGE_SIZE, N_CLASSES, model_config

    config = model_config(model, config)
    if model == "mlp":
        sizes = [IMAGE_SIZE * IMAGE_SIZE, *config["hidden"], N_CLASSES]
        return sum(a * b for a, b in itertools.pairwise(sizes))
    size, c_in, macs = IMAGE_SIZE, 1, 0
    for c, k in zip(config["channels"], config["kernels"], strict=True):
        first, second = size - k + 1, size - 2 * (k - 1)
        macs += c_in * c * k * k * first * first + c * c * k * k * second * second
        size, c_in = second // 2, c
    return macs + c_in * size * size * N_CLASSES


def step_gmacs(spec: RunSpec) -> float:
    """A training step's multiply-adds in billions: forward and backward (about three forwards) per image."""
    return 3 * forward_macs(spec.model, spec.model_config) * spec.batch_size / 1e9


def evaluations(spec: RunSpec) -> int:
    if not spec.eval_every:
        return 1
    return spec.steps // spec.eval_every + (1 if spec.steps % spec.eval_every else 0)


def timing_table(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What committed run records measured, per (model, device), on the CPU model most of them ran on:
    compile time of a config's first and later seeds, step time as fixed + per-GMAC, eval seconds per
    GMAC of test-set forward passes, data load. The source of harness/documents/timings.py."""
    import statistics
    from collections import Counter

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        if r.get("status") == "failed" or not r["timings"].get("step_time_s"):
            continue
        groups.setdefault((r["model"], r["device"]["name"]), []).append(r)
    entries = []
    for (model, device), rs in sorted(groups.items()):
        cpu, _ = Counter(r["environment"]["cpu"]["model"] for r in rs).most_common(1)[0]
        rs = [r for r in rs if r["environment"]["cpu"]["model"] == cpu]
        specs = [RunSpec(**{**r["config"], "model_config": r["config"]["model_config"]}) for r in rs]
        work = [step_gmacs(s) for s in specs]
        steps = [r["timings"]["step_time_s"]["median"] for r in rs]
        fixed, per_gmac = _fit(work, steps)
        first = [r["timings"]["compile_s"] for r, s in zip(rs, specs, strict=True) if s.seed == 0]
        again = [r["timings"]["compile_s"] for r, s in zip(rs, specs, strict=True) if s.seed != 0]
        eval_rate = [
            r["timings"]["eval_s"]
            / (evaluations(s) * forward_macs(s.model, s.model_config) * r["dataset"]["n_test"] / 1e9)
            for r, s in zip(rs, specs, strict=True)
        ]
        entries.append(
            {
                "model": model,
                "device": device,
                "cpu": cpu,
                "cores": statistics.median_low(r["environment"]["cpu"]["usable_cores"] for r in rs),
                "gpu": Counter(", ".join(r["environment"]["gpu"]) for r in rs).most_common(1)[0][0] or None,
                "runs": len(rs),
                "compile_first_s": round(statistics.median(first or again), 2),
                "compile_again_s": round(statistics.median(again or first), 2),
                "step_fixed_s": round(fixed, 5),
                "step_s_per_gmac": round(per_gmac, 5),
                "eval_s_per_gmac": round(statistics.median(eval_rate), 5),
                "data_load_s": round(statistics.median(r["timings"]["data_load_s"] for r in rs), 2),
            }
        )
    return {"records": sum(e["runs"] for e in entries), "entries": entries}


def _fit(work: list[float], seconds: list[float]) -> tuple[float, float]:
    """Least squares `seconds = fixed + per_unit * work` through the median time at each amount of work (so
    the few slow variants of a config, a GELU or SiLU activation, do not pull the line), neither part below
    zero; one amount of work gives no fixed part."""
    import statistics

    by_work: dict[float, list[float]] = {}
    for w, s in zip(work, seconds, strict=True):
        by_work.setdefault(w, []).append(s)
    points = [(w, statistics.median(s)) for w, s in sorted(by_work.items())]
    if len(points) < 2:
        return 0.0, points[0][1] / points[0][0]
    mw, ms = statistics.fmean(w for w, _ in points), statistics.fmean(s for _, s in points)
    slope = sum((w - mw) * (s - ms) for w, s in points) / sum((w - mw) ** 2 for w, _ in points)
    slope = max(slope, 0.0)
    return max(ms - slope * mw, 0.0), slope


def _entry(model: str, device: str) -> dict[str, Any] | None:
    from harness.documents import timings

    return next((e for e in timings.TABLE["entries"] if e["model"] == model and e["device"] == device), None)


def run_estimate_s(planned: PlannedRun, first: bool = True) -> float | None:
    """Seconds a planned run takes on the machine its device's committed runs were measured on (None: no
    committed run of its model on its device); `first`: the first seed of its config (it compiles)."""
    e = _entry(planned.spec.model, planned.device)
    if e is None:
        return None
    spec = planned.spec
    step = e["step_fixed_s"] + e["step_s_per_gmac"] * step_gmacs(spec)
    compile_s = e["compile_first_s"] if first else e["compile_again_s"]
    evals = evaluations(spec) * e["eval_s_per_gmac"] * forward_macs(spec.model, spec.model_config) * TEST_IMAGES / 1e9
    return compile_s + step * max(spec.steps - 2, 0) + evals


def estimates(planned: list[PlannedRun]) -> list[float | None]:
    """Each planned run's estimate, the first seed of each config on each device counted as compiling."""
    seen: set[str] = set()
    out = []
    for p in planned:
        out.append(run_estimate_s(p, first=p.config_key not in seen))
        seen.add(p.config_key)
    return out


def estimate(planned: list[PlannedRun]) -> dict[str, Any]:
    """A suite's estimated seconds (one data load plus every run), the machines the numbers come from,
    and the runs with no committed measurement to go by."""
    each = estimates(planned)
    known = [(p, s) for p, s in zip(planned, each, strict=True) if s is not None]
    machines = sorted({f"{p.device} on {_machine(_entry(p.spec.model, p.device))}" for p, _ in known})
    loads = [_entry(p.spec.model, p.device)["data_load_s"] for p, _ in known]
    return {
        "seconds": (max(loads) + sum(s for _, s in known)) if known else None,
        "machines": machines,
        "unknown": sorted({p.config_key for p, s in zip(planned, each, strict=True) if s is None}),
    }


def device_estimates(doc: dict[str, Any], seeds: list[int] | None = None) -> dict[str, dict[str, Any]]:
    """The suite's `estimate` on every device with committed runs of all its models (CPU, CL, CUDA, ...)."""
    from harness.documents import timings

    models = {r["model"] for r in doc["runs"]}
    devices = dict.fromkeys(e["device"] for e in timings.TABLE["entries"])
    return {d: estimate(expand(doc, [d], seeds)) for d in devices if all(_entry(m, d) is not None for m in models)}


def _machine(entry: dict[str, Any]) -> str:
    """`a 2-core Intel(R) Xeon(R) Processor`, or the GPU with its host for a GPU device."""
    cpu = f"a {entry['cores']}-core {entry['cpu']}"
    return (
        f"{entry['gpu'].split(',')[0]} (host: {cpu})"
        if entry.get("gpu") and entry["device"] not in ("CPU", "CL")
        else cpu
    )


def timings_module(folder: Path) -> str:
    """The text of harness/documents/timings.py: `timing_table` of every run record under `folder`."""
    import pprint

    records = []
    for path in documents.json_files([folder]):
        try:
            doc = documents.load(path)
        except HarnessError:
            continue  # not a harness document (a plot's data, a foreign file): not a measurement
        if doc["kind"] == "run":
            records.append(doc)
    table = pprint.pformat(timing_table(records), width=116, sort_dicts=False)
    return (
        '"""Generated from the run records committed under results/ by `suites.timings_module` (regenerate:\n'
        'MNIST_BENCH_REGEN_GOLDEN=1 pytest tests/test_suites.py -k timings); what suite estimates go by."""\n\n'
        f"TABLE = {table}\n"
    )
