"""The study's analysis, computed from suite summaries: which configs differ in one setting, how their
accuracies differ against seed noise, the best configs, and the settings in words. The report writes
it as Markdown and the plots draw it; neither decides anything itself."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from harness import documents
from harness.documents import summary
from harness.gate import rules

AXES = ("lr", "batch_size", "steps", "optimizer")
AXIS_TITLES = {"lr": "learning rate", "batch_size": "batch size", "steps": "training duration (steps)"}


def summaries(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_suite[r["suite"]["name"]].append(r)
    return [summary.build(name, rs) for name, rs in sorted(by_suite.items())]


# Any accuracy change beyond the seed noise: the gate's points rule with no minimum effect, so the report
# and the gate never disagree about the same two sets of seeds.
ACCURACY_RULE = rules.parse_rule("accuracy:-0pp")


def compare_accuracy(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, str]:
    """How config b's accuracy differs from a's, in words, and the rules engine's verdict (b against a)."""
    sa, sb = a["metrics"]["accuracy"], b["metrics"]["accuracy"]
    if sa is None or sb is None:
        return "not comparable (a run diverged or failed)", "info"
    delta = sb["mean"] - sa["mean"]
    verdict = ACCURACY_RULE.check(sa, sb)[0]
    if verdict == "info":  # one seed each: a plain difference
        return f"{delta:+.2f} pp (one seed each: no seed noise to test against)", verdict
    noise = f"{rules.NOISE_Z:g} x seed SE {rules.seed_noise(sa, sb) / rules.NOISE_Z:.2f} pp"
    if verdict == "pass":
        return f"no significant difference ({delta:+.2f} pp, within {noise})", verdict
    return f"{'better' if delta > 0 else 'worse'} by {abs(delta):.2f} pp (beyond {noise})", verdict


def within_noise(best: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether `other`'s accuracy is not significantly below `best`'s (the same rule as compare_accuracy)."""
    return ACCURACY_RULE.check(best, other)[0] != "regression"


def flat_config(c: dict[str, Any]) -> dict[str, Any]:
    """A config's settings with model_config keys as `model.<key>`, without logging cadence."""
    cfg = {k: v for k, v in c["config"].items() if k not in ("model_config", "eval_every", "log_every")}
    cfg.update({f"model.{k}": v for k, v in c["config"]["model_config"].items()})
    return cfg


def varying_axes(configs: list[dict[str, Any]]) -> list[str]:
    """Settings that take more than one value among these configs, training axes first."""
    keys = sorted({k for c in configs for k in flat_config(c)}, key=lambda k: (k not in AXES, k))
    return [k for k in keys if len({documents.dumps(flat_config(c).get(k)) for c in configs}) > 1]


def _order_key(value: Any) -> tuple:
    """Numbers in numeric order, then everything else by its JSON text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, documents.dumps(value))


def one_factor_pairs(configs: list[dict[str, Any]], axis: str) -> list[tuple[dict, dict]]:
    """Pairs of configs that differ in `axis` only (everything else equal), lower value first."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in configs:
        groups[documents.dumps({k: v for k, v in flat_config(c).items() if k != axis})].append(c)
    pairs = []
    for members in groups.values():
        members = sorted(members, key=lambda c: _order_key(flat_config(c).get(axis)))
        pairs += [
            (a, b)
            for a, b in itertools.combinations(members, 2)
            if documents.dumps(flat_config(a).get(axis)) != documents.dumps(flat_config(b).get(axis))
        ]
    return pairs


def best(configs: list[dict[str, Any]], key) -> dict[str, Any] | None:
    candidates = [c for c in configs if key(c) is not None]
    return max(candidates, key=key) if candidates else None


def accuracy_of(c: dict[str, Any]) -> float | None:
    s = c["metrics"]["accuracy"]
    return None if s is None else s["mean"]


def accuracy_per_time(c: dict[str, Any]) -> float | None:
    """Among configs that reach the target: the fastest to it (negated seconds, so max is best)."""
    t = c["metrics"]["time_to_target_s"]
    if t is None or c["targets_met"] < len(c["seeds"]):
        return None
    return -t["mean"]


def settings_text(c: dict[str, Any]) -> str:
    """LR, batch size and steps, then every other setting that differs from the model's harness default."""
    cfg = c["config"]
    changed = summary.non_defaults(c["model"], cfg)
    extra = [f"{k}={summary.plain(v)}" for k, v in changed.items() if k not in _NOT_LISTED]
    return ", ".join([f"LR={cfg['lr']:g}, BS={cfg['batch_size']}, steps={cfg['steps']}", *extra])


_NOT_LISTED = {"lr", "batch_size", "steps", "eval_every", "log_every"}


def reference_config(configs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The config the others are read against: the one in category `default`, if the suite has one."""
    return next((c for c in configs if c.get("category") == "default"), None)


def changes_from(ref: dict[str, Any], c: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    a, b = flat_config(ref), flat_config(c)
    keys = sorted(set(a) | set(b))
    return {k: (a.get(k), b.get(k)) for k in keys if documents.dumps(a.get(k)) != documents.dumps(b.get(k))}


def fixed_settings(c: dict[str, Any], axis: str) -> str:
    """The training settings other than `axis`, as `lr=..., batch_size=..., steps=...`."""
    cfg = flat_config(c)
    return ", ".join(f"{k}={cfg[k]}" for k in ("lr", "batch_size", "steps") if k != axis)
