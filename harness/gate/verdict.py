"""One verdict for one pull request: the cost gate, the same-runner A/B timing and the accuracy gate together.

Each check writes its own document (a `cost_comparison`, a `comparison` with `suite: continuous`, a
`comparison` of the gate suite); `combine` reads whichever exist into one `verdict` document: a row per
check (pass, regression, no baseline, or missing when the step that should have written it did not), the
problems of all of them, and one overall verdict and exit code. Its views give the Markdown that CI posts
as a single pull-request comment (found again by its first line, `MARKER`, and edited on the next push),
plain text, or the JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import documents
from harness.base.errors import HarnessError
from harness.base.metrics import format_stat, metric_of
from harness.documents import schema
from harness.gate import compare, cost

MARKER = "<!-- mnist-bench-verdict -->"
CHECKS = ("cost", "ab", "gate")  # the order of the rows
TITLES = {
    "cost": "Cost counts (kernels, FLOPs, bytes; exact)",
    "ab": "Step time, base vs head on the same runner",
    "gate": "Accuracy and targets (gate suite)",
}
KIND_OF = {"cost": "cost_comparison", "ab": "comparison", "gate": "comparison"}
ICONS = {
    "pass": ":white_check_mark:",
    "regression": ":x:",
    "no_baseline": ":warning:",
    "missing": ":grey_question:",
}
WORDS = {"pass": "pass", "regression": "REGRESSION", "no_baseline": "no baseline", "missing": "no result"}
FAILING = ("regression", "missing")


# --- one row per check ------------------------------------------------------------------------------


def _cost_summary(doc: dict[str, Any]) -> str:
    models = ", ".join(m["model"] for m in doc["models"])
    same = sum(not r["delta"] for r in doc["rows"])
    changed = [f"{r['model']} {r['metric']} {cost.describe_delta(r)}" for r in doc["rows"] if r["delta"]]
    head = f"{models}: {same} of {len(doc['rows'])} gated counts unchanged (key `{doc['key']}`)"
    return "; ".join([head, *changed[:4]]) + ("; ..." if len(changed) > 4 else "")


def _row_change(row: dict[str, Any]) -> str:
    """`mlp step time 32.1 ms -> 33.0 ms (+2.8%, p=0.31)`: a comparison row in a few words."""
    metric = metric_of(row["metric"])
    if row["baseline"] is None or row["current"] is None:
        return f"{row['config']} {metric.label}: not tested"
    fmt = lambda v: format_stat(v, row["metric"], n=False).split(" ± ")[0] + metric.unit  # noqa: E731
    delta = compare.delta_text(row)
    p = f", p={row['p_value']:.2g}" if row["p_value"] is not None else ""
    return f"{row['config']} {metric.label} {fmt(row['baseline'])} -> {fmt(row['current'])} ({delta}{p})"


def _comparison_summary(doc: dict[str, Any]) -> str:
    parts = [_row_change(r) for r in doc["rows"]]
    if doc["baseline"] is None:
        parts.insert(0, (doc.get("warnings") or ["no baseline"])[0])
    if doc["suite"] == "continuous" and "workload" in doc:
        w = doc["workload"]
        steps = ", ".join(f"{n} {m}" for m, n in w["steps_per_block"].items())
        parts.append(f"{w['rounds']} rounds of {steps} steps per side")
    elif doc["suite"] != "continuous":
        parts.insert(0, f"suite `{doc['suite']}`")
    return "; ".join(parts)


def _status(doc: dict[str, Any]) -> str:
    if doc["verdict"] == "regression":
        return "regression"
    return "no_baseline" if doc.get("baseline", True) is None else "pass"


def _details(check: str, doc: dict[str, Any]) -> str:
    """A check's own report, without its problems: the verdict lists every problem once, above."""
    return (cost.markdown if check == "cost" else compare.markdown)(doc, problems=False)


def section(check: str, path: Path | None) -> dict[str, Any]:
    """The row of one check from its document at `path`; a path that does not exist gives a `missing` row."""
    if check not in CHECKS:
        raise HarnessError(f"unknown check {check!r}; known: {', '.join(CHECKS)}")
    base = {"check": check, "title": TITLES[check], "path": str(path) if path else None}
    if path is None or not Path(path).exists():
        why = f"no {KIND_OF[check]} document at {path}" if path else "not given"
        return {
            **base,
            "status": "missing",
            "summary": f"{why}: the step that writes it did not finish (see its log)",
            "problems": [f"{check}: {why}"],
            "warnings": [],
            "details": None,
        }
    doc = documents.load(Path(path), KIND_OF[check])
    if check == "ab" and doc["suite"] != "continuous":
        raise HarnessError(f"{path}: is a comparison of suite {doc['suite']!r}; --ab takes `continuous` output")
    if check == "gate" and doc["suite"] == "continuous":
        raise HarnessError(f"{path}: is `continuous` output; --gate takes a suite comparison (`compare -o`)")
    text = _cost_summary(doc) if check == "cost" else _comparison_summary(doc)
    return {
        **base,
        "status": _status(doc),
        "summary": text,
        "problems": [f"{check}: {p}" for p in doc["problems"]],
        "warnings": [f"{check}: {w}" for w in doc.get("warnings", [])]
        + [f"{check}: environment differs: {d}" for d in doc.get("env_differences", [])],
        "details": _details(check, doc),
    }


# --- the document -----------------------------------------------------------------------------------


def combine(paths: dict[str, Path | None], context: dict[str, str] | None = None) -> dict[str, Any]:
    """The verdict document of the checks named in `paths` (check -> document path; a path that does not
    exist is a check that produced nothing, which fails the verdict like a regression)."""
    if not paths:
        raise HarnessError("nothing to combine: give at least one of --cost, --ab, --gate")
    sections = [section(c, paths[c]) for c in CHECKS if c in paths]
    statuses = {s["status"] for s in sections}
    verdict = "regression" if "regression" in statuses else "incomplete" if "missing" in statuses else "pass"
    doc = {
        **documents.header("verdict"),
        "context": {k: v for k, v in (context or {}).items() if v},
        "sections": sections,
        "problems": [p for s in sections for p in s["problems"]],
        "warnings": [w for s in sections for w in s["warnings"]],
        "verdict": verdict,
        "exit_code": int(documents.exit_code(verdict)),
    }
    schema.check(doc, "verdict")
    return doc


# --- rendering --------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


HEADLINES = {"pass": "PASS", "regression": "REGRESSION", "incomplete": "INCOMPLETE (a check produced no result)"}


def _context_line(context: dict[str, str]) -> str:
    parts = []
    if context.get("head"):
        parts.append(f"head `{context['head'][:12]}`")
    if context.get("base"):
        parts.append(f"base `{context['base'][:12]}`")
    if context.get("runner"):
        parts.append(context["runner"])
    if context.get("run_url"):
        parts.append(f"[workflow run]({context['run_url']})")
    return " · ".join(parts)


def markdown(doc: dict[str, Any]) -> str:
    icon = ICONS["pass"] if doc["verdict"] == "pass" else ICONS["regression"]
    lines = [MARKER, f"## {icon} mnist-bench: **{HEADLINES[doc['verdict']]}**", ""]
    if context := _context_line(doc["context"]):
        lines += [context, ""]
    lines += ["| check | verdict | summary |", "|---|---|---|"]
    for s in doc["sections"]:
        lines.append(f"| {s['title']} | {ICONS[s['status']]} {WORDS[s['status']]} | {_cell(s['summary'])} |")
    if doc["problems"]:
        lines += ["", "**Problems**", ""] + [f"- :x: {_cell(p)}" for p in doc["problems"]]
    if doc["warnings"]:
        lines += ["", "<details><summary>Warnings</summary>", ""]
        lines += [f"- :warning: {_cell(w)}" for w in doc["warnings"]] + ["", "</details>"]
    for s in doc["sections"]:
        if s["details"]:
            lines += ["", f"<details><summary>{s['title']}: details</summary>", "", s["details"], "", "</details>"]
    return "\n".join(lines) + "\n"


def text(doc: dict[str, Any]) -> str:
    width = max(len(s["title"]) for s in doc["sections"])
    lines = [f"{s['title']:<{width}}  {WORDS[s['status']]:<11}  {s['summary']}" for s in doc["sections"]]
    lines += [f"WARNING {w}" for w in doc["warnings"]] + [f"FAIL {p}" for p in doc["problems"]]
    return "\n".join([*lines, f"verdict: {HEADLINES[doc['verdict']]}"]) + "\n"


documents.views("verdict", text=text, markdown=markdown)
