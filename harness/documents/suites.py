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


def listing() -> list[dict[str, Any]]:
    """One row per shipped suite: name, number of runs per device, description."""
    rows = []
    for name in available():
        doc = load(name)
        rows.append({"name": name, "runs": len(expand(doc, ["-"])), "description": doc["description"]})
    return rows


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as e:
        raise HarnessError(f"bad --seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from e
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise HarnessError(f"bad --seeds {text!r}: expected distinct non-negative integers")
    return seeds
