"""The package's shape: no import cycle in harness/ (imports inside functions count too: a lazy
import hides a cycle from Python, not from the reader), and one metric registry the schema follows."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from harness import metrics, rules, schema, summary

PACKAGE = Path(summary.__file__).parent


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The harness modules that `path` imports anywhere in its body."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "harness":
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("harness.")}
    return out - {path.stem}


def import_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return {p.stem: imports_of(p, modules) for p in PACKAGE.glob("*.py")}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*trail[trail.index(nxt) :], nxt] if nxt in trail else [*trail, node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*trail, nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_no_import_cycle_in_harness():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_summary_schema_lists_exactly_the_registered_metrics():
    doc = json.loads((schema.schema_dir() / "summary.schema.json").read_text())
    properties = doc["$defs"]["config"]["properties"]["metrics"]["properties"]
    assert set(properties) == set(metrics.METRICS)
    assert set(doc["$defs"]["config"]["properties"]["metrics"]["required"]) <= set(metrics.METRICS)


def test_every_registered_metric_has_a_unique_name_and_valid_default_rule():
    assert len(metrics._REGISTRY) == len(metrics.METRICS)
    for m in metrics.METRICS.values():
        assert set(m.rule_kinds) <= set(rules.RULE_KINDS) and m.worse in (1, -1)
        if m.default_rule:
            assert rules.parse_rule(f"{m.name}:{m.default_rule}").metric == m.name


def test_every_schema_file_is_a_registered_kind():
    files = {p.name for p in schema.schema_dir().glob("*.schema.json")}
    assert files == {schema._file(kind) for kind in schema.KINDS}
    for kind in schema.KINDS:
        schema.validator(kind)  # each one is a valid JSON Schema
