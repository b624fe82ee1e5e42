"""The package's shape: layers that show the pipeline, imported in one direction only (base -> tg ->
documents -> run -> gate -> report -> cli, each layer importing only the ones before it), tinygrad imported
only by `tg`, no import cycle (imports inside functions count too: a lazy import hides a cycle or an
upward import from Python, not from the reader), and one metric registry the schema follows."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import harness
from harness.base import metrics
from harness.documents import schema
from harness.gate import rules

PACKAGE = Path(harness.__file__).parent
LAYERS = ("base", "tg", "documents", "run", "gate", "report", "cli")
# entry points beside the layers: `python -m harness.container` must switch users before importing the harness
ENTRY_POINTS = {"container": "cli"}


def module_name(path: Path) -> str:
    """`documents.summary` for harness/documents/summary.py, `documents` for its __init__.py."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if module_name(p) not in ("", "__main__")}


def _resolve(dotted: str, known: set[str]) -> str | None:
    """The longest known module that `dotted` (without the `harness.` prefix) names or lies in."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    return None


def imports_of(path: Path, known: set[str], name: str | None = None) -> tuple[set[str], bool]:
    """(the harness modules `path` imports anywhere in its body, whether it imports tinygrad)."""
    out, tinygrad = set(), False
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from harness.gate import rules` imports the module gate.rules; `from harness.gate.rules import Rule`
            # imports from gate.rules
            inner = node.module.removeprefix("harness").lstrip(".")
            sub = [f"{inner}.{a.name}".lstrip(".") for a in node.names]
            names = [f"harness.{m}" if m in known else node.module for m in sub]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            tinygrad |= name == "tinygrad" or name.startswith("tinygrad.")
            if name.startswith("harness.") and (found := _resolve(name.removeprefix("harness."), known)):
                out.add(found)
    return out - {name or module_name(path)}, tinygrad


def import_graph() -> dict[str, set[str]]:
    known = set(modules())
    return {name: imports_of(path, known)[0] for name, path in modules().items()}


def layer(module: str) -> str:
    return ENTRY_POINTS.get(module, module.split(".")[0])


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


def test_every_module_lives_in_a_layer():
    assert {layer(m) for m in modules()} == set(LAYERS)


def test_layers_import_only_the_layers_before_them():
    upward = [
        f"{m} imports {d}"
        for m, deps in import_graph().items()
        for d in deps
        if LAYERS.index(layer(d)) > LAYERS.index(layer(m))
    ]
    assert upward == []


def test_only_tg_imports_tinygrad():
    known = set(modules())
    outside = [m for m, path in modules().items() if imports_of(path, known)[1] and layer(m) != "tg"]
    assert outside == []


def test_the_layer_checks_can_fail(tmp_path):
    fake = tmp_path / "errors.py"
    fake.write_text("from harness.gate.rules import Rule\nfrom harness import documents\nimport tinygrad.nn\n")
    deps, tinygrad = imports_of(fake, {"base.errors", "gate.rules", "documents"}, "base.errors")
    assert deps == {"gate.rules", "documents"} and tinygrad
    assert LAYERS.index(layer("gate.rules")) > LAYERS.index(layer("base.errors"))


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
