#!/usr/bin/env python3
"""Writes the generated parts of README.md and docs/ from their sources, so that they cannot drift.

    python .ci/docs.py            # rewrite every generated part that is out of date
    python .ci/docs.py --check    # change nothing; exit 1 naming each part that is out of date

A generated part sits between two marker comments in a Markdown file:

    <!-- generated: NAME (python .ci/docs.py) -->
    ...
    <!-- end generated: NAME -->

Everything outside the markers is written by hand. The parts and their sources:

- `commands`, `commands-table`, `exit-codes`, `rule-metrics`: the click command group behind the `mnist-bench` console
  script (its help texts, exactly as `mnist-bench COMMAND --help` prints them at 100 columns);
- `pr-comment`, `pr-comment-full`: the PR comment's golden file (tests/fixtures/golden/verdict.md;
  until that exists, the gate check's own golden comment, compare.md);
- `results-format`, `rule-metrics`: the JSON Schemas in schemas/;
- `defaults`: the committed trial in results/device-choice/ (its run records and trial.json);
- `cpu-paths`: the committed perf documents results/perf/cpu-paths-{mlp,cnn}.json.

It lives in .ci/ with the other scripts CI runs (it is no part of the installed package) and reads only
what survives a refactor of harness/: the console script's entry point, schemas/, results/ and the
golden files. tests/test_docs.py runs `--check`.
"""

from __future__ import annotations

import argparse
import html
import importlib
import json
import re
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parent.parent
WIDTH = 100  # help text columns: fixed, so the page does not depend on the terminal that ran this
GOLDEN = REPO / "tests" / "fixtures" / "golden"
BEGIN = "<!-- generated: {name} (python .ci/docs.py) -->"
END = "<!-- end generated: {name} -->"

# --- the command group ------------------------------------------------------------------------------


def command_group():
    """The click group that the `mnist-bench` console script runs, found from its entry point."""
    import click

    sys.path.insert(0, str(REPO))  # this tree's harness, also when another checkout is installed
    try:
        (ep,) = [e for e in metadata.entry_points(group="console_scripts") if e.name == "mnist-bench"]
        module_name = ep.value.split(":")[0]
    except ValueError:  # not installed: the name pyproject.toml gives
        module_name = "harness.cli"
    module = importlib.import_module(module_name)
    groups = [v for v in vars(module).values() if isinstance(v, click.Group)]
    nested = {id(c) for g in groups for c in g.commands.values()}
    top = [g for g in groups if id(g) not in nested]
    if len(top) != 1:
        raise SystemExit(f"docs: expected one top-level click group in {module_name}, found {len(top)}")
    return top[0]


def walk(group):
    """(path, command, context) for every command and group, depth first, in click's listing order."""
    import click

    def visit(cmd, ctx):
        yield ctx.command_path, cmd, ctx
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    yield from visit(sub, click.Context(sub, info_name=name, parent=ctx))

    root = click.Context(group, info_name="mnist-bench", terminal_width=WIDTH, max_content_width=WIDTH)
    yield from visit(group, root)


def usage(cmd, ctx) -> str:
    """`mnist-bench suite run NAME`: the command path and its arguments, without `[OPTIONS]`."""
    pieces = [p for p in cmd.collect_usage_pieces(ctx) if p != "[OPTIONS]"]
    return " ".join([ctx.command_path, *pieces])


def code(text: str) -> str:
    """Inline code for a table cell. A `|` inside backticks ends the cell on GitHub unless escaped, and the
    escape shows on the mkdocs site, so such text becomes an HTML code element with the pipe as an entity."""
    if "|" not in text:
        return f"`{text}`"
    return f"<code>{html.escape(text).replace('|', '&#124;')}</code>"


def first_sentence(cmd) -> str:
    text = " ".join((cmd.help or cmd.short_help or "").split("\n\n")[0].split())
    return text.split(". ")[0].rstrip(".").replace("|", "\\|")


def anchor(path: str) -> str:
    return path.lower().replace(" ", "-")


def leaves():
    import click

    return [(p, c, x) for p, c, x in walk(command_group()) if not isinstance(c, click.Group)]


def commands_page() -> str:
    lines = ["| command | what it does |", "|---|---|"]
    lines += [f"| [{code(usage(c, x))}](#{anchor(p)}) | {first_sentence(c)} |" for p, c, x in leaves()]
    for path, cmd, ctx in walk(command_group()):
        lines += ["", f"## {path}", "", "```text", cmd.get_help(ctx).rstrip(), "```"]
    return "\n".join(lines)


def sections() -> dict[str, list[str]]:
    """The README table's groups: the top-level `--help`'s sections (the group's `sections`), in its order."""
    return {title: list(names) for title, names in getattr(command_group(), "sections", {}).items()}


def commands_table() -> str:
    """Every command by section; a command in no section still appears, last, under "other", so a new command
    can never be left out of the table."""
    groups = sections()
    order = {name: (i, j) for i, names in enumerate(groups.values()) for j, name in enumerate(names)}
    section_of = {name: title for title, names in groups.items() for name in names}

    def top(path: str) -> str:
        return path.removeprefix("mnist-bench ").split(" ")[0]

    rows = sorted(enumerate(leaves()), key=lambda row: (order.get(top(row[1][0]), (len(groups), 0)), row[0]))
    lines = ["| for | command | what it does |", "|---|---|---|"]
    for _, (path, cmd, ctx) in rows:
        link = f"[{code(usage(cmd, ctx))}](docs/commands.md#{anchor(path)})"
        lines.append(f"| {section_of.get(top(path), 'other')} | {link} | {first_sentence(cmd)} |")
    return "\n".join(lines)


def exit_codes() -> str:
    """The exit codes as the top-level `--help` states them."""
    help_text = command_group().help or ""
    para = next((p for p in help_text.split("\n\n") if "Exit codes:" in p), "")
    words = " ".join(para.replace("\b", "").split())
    if not words:
        raise SystemExit("docs: the top-level --help no longer states the exit codes")
    return f"{words.rstrip('.')}; [one run](docs/runs.md#exit-codes) lists each case."


def rule_metrics() -> str:
    """The metrics a rule can name (the summary schema's) and the default rules (`compare --rule`'s)."""
    summary = json.loads((REPO / "schemas" / "summary.schema.json").read_text(encoding="utf-8"))
    names = list(summary["$defs"]["config"]["properties"]["metrics"]["properties"])
    compare = command_group().commands["compare"]
    (rule,) = [p for p in compare.params if p.name in ("rule", "rules", "rule_texts")]
    shown = rule.show_default if isinstance(rule.show_default, str) else " ".join(rule.default or ())
    defaults = re.findall(r"[a-z0-9_]+:[+-][0-9.]+(?:pp|%)", shown)
    if not defaults:
        raise SystemExit("docs: `compare --rule` no longer shows its default rules")
    return "\n".join(
        [
            "Default rules (`mnist-bench compare --help`): " + ", ".join(f"`{r}`" for r in defaults) + ".",
            "",
            "Metrics a rule can name (`schemas/summary.schema.json`): " + ", ".join(f"`{n}`" for n in names) + ".",
        ]
    )


# --- the PR comment ------------------------------------------------------------------------------------


def comment_source() -> Path:
    verdict = GOLDEN / "verdict.md"
    return verdict if verdict.exists() else GOLDEN / "compare.md"


def comment_lines() -> list[str]:
    return comment_source().read_text(encoding="utf-8").rstrip("\n").splitlines()


def quoted(lines: list[str]) -> list[str]:
    return [f"> {line}".rstrip() for line in lines]


EXCERPT_LINES = 20


def pr_comment_excerpt() -> str:
    """The comment up to its first folded section: what a reviewer sees without clicking."""
    lines = comment_lines()
    cut = next((i for i, line in enumerate(lines) if line.startswith("<details")), len(lines))
    body = lines[:cut]
    while body and not body[-1].strip():
        body.pop()
    if len(body) > EXCERPT_LINES:  # the README shows the top of a long comment; docs/gates.md all of it
        body = [*body[:EXCERPT_LINES], "", "..."]
    cut_short = cut < len(lines) or body[-1] == "..."
    note = source_note(
        ", cut short; all of it is in [the gates](docs/gates.md#what-a-pull-request-sees)" if cut_short else ""
    )
    return "\n".join([*quoted(body), "", note])


def source_note(tail: str = "") -> str:
    source = comment_source()
    rel = source.relative_to(REPO)
    what = (
        "the golden file of the PR comment"
        if source.name == "verdict.md"
        else ("the golden file of the accuracy and step-time check, one section of the PR comment")
    )
    return f"*From `{rel}`, {what}{tail}.*"


def pr_comment_full() -> str:
    return "\n".join(["````markdown", *comment_lines(), "````", "", source_note()])


# --- the results format -------------------------------------------------------------------------------

SCHEMA_ORDER = ["result", "suite", "summary", "baseline", "comparison", "cost", "cost_comparison", "verdict", "perf"]


def _resolve(node: dict, defs: dict) -> tuple[dict, str | None]:
    """A node with its `$ref` replaced by the definition, and that definition's name."""
    ref = node.get("$ref", "")
    if ref.startswith("#/$defs/"):
        name = ref.split("/")[-1]
        return {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}, name
    return node, None


def _type(node: dict, defs: dict) -> str:
    ref = node.get("$ref", "")
    if ref.endswith(".schema.json"):  # another schema: the document it describes, listed on its own
        other = ref.removesuffix(".schema.json").split("/")[-1]
        return f"a [`{other}`](#{other.replace('_', '-')}) document"
    node, _ = _resolve(node, defs)
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    if "oneOf" in node or "anyOf" in node:
        return " or ".join(_type(n, defs) for n in node.get("oneOf", node.get("anyOf")))
    kind = node.get("type", "")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if not kind and "properties" in node:
        kind = "object"
    bounds = []
    for key, sym in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in node:
            bounds.append(f"{sym} {node[key]}")
    if kind == "array" and isinstance(node.get("items"), dict):
        kind = f"array of {_type(node['items'], defs)}"
    return " ".join([kind, *bounds]).strip() or "any"


def _inner(node: dict, defs: dict) -> tuple[dict, str | None, bool]:
    """The object whose fields are listed under a field (itself, its one object alternative of a `null or
    object`, or its array's items), the definition it came from, and whether it is an array's item."""
    name = None
    alternatives = node.get("oneOf", node.get("anyOf"))
    if alternatives:
        found = [_resolve(a, defs) for a in alternatives]
        found = [(o, n) for o, n in found if "properties" in o or o.get("type") == "array"]
        if len(found) == 1:
            node, name = found[0]
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        items, name = _resolve(node["items"], defs)
        return items, name, True
    return node, name, False


def _rows(node: dict, defs: dict, prefix: str, required: bool, shown: dict[str, str], depth: int) -> list[str]:
    """A table row per field, depth first; a definition used again points at its first listing."""
    node, name = _resolve(node, defs)
    inner, inner_name, is_array = _inner(node, defs)
    name = name or inner_name
    desc = " ".join(node.get("description", "").split()).replace("|", "\\|")
    if name in shown and prefix:
        desc = " ".join([desc, f"fields as `{shown[name]}`"]).strip()
    rows = [f"| `{prefix}` | {_type(node, defs)} | {'yes' if required else ''} | {desc} |"] if prefix else []
    if (name in shown and prefix) or depth >= 6:
        return rows
    if name and prefix:
        shown[name] = prefix
    prefix = f"{prefix}[]" if is_array else prefix
    need = set(inner.get("required", []))
    for key, sub in inner.get("properties", {}).items():
        rows += _rows(sub, defs, f"{prefix}.{key}" if prefix else key, key in need, shown, depth + 1)
    extra = inner.get("additionalProperties")
    if isinstance(extra, dict) and prefix:
        rows += _rows(extra, defs, f"{prefix}.*", False, shown, depth + 1)
    return rows


def results_format() -> str:
    files = {p.name.removesuffix(".schema.json"): p for p in sorted((REPO / "schemas").glob("*.schema.json"))}
    names = [n for n in SCHEMA_ORDER if n in files] + [n for n in files if n not in SCHEMA_ORDER]
    out = ["| file kind | schema | what it holds |", "|---|---|---|"]
    docs = {n: json.loads(files[n].read_text(encoding="utf-8")) for n in names}
    for n in names:
        d = docs[n]
        kind = d.get("properties", {}).get("kind", {}).get("const", n)
        out.append(f"| [`{kind}`](#{n.replace('_', '-')}) | `schemas/{files[n].name}` | {d.get('description', '')} |")
    for n in names:
        d = docs[n]
        version = d.get("properties", {}).get("schema_version", {})
        version = version.get("const", version.get("maximum", "?"))
        out += [
            "",
            f"## {n.replace('_', '-')}",
            "",
            f"**{d.get('title', n)}** (`schemas/{files[n].name}`, "
            f"`schema_version` {version}). {d.get('description', '')}",
            "",
        ]
        out += ["| field | type | required | description |", "|---|---|---|---|"]
        out += _rows(d, d.get("$defs", {}), "", True, {}, 0)
    return "\n".join(out)


# --- the defaults table -------------------------------------------------------------------------------

TRIAL = REPO / "results" / "device-choice"
OPTIMIZERS = {
    "adam": "Adam",
    "adamw": "AdamW",
    "sgd": "SGD",
    "nesterov": "Nesterov",
    "lamb": "LAMB",
    "rmsprop": "RMSprop",
}
MODELS = {"mlp": "MLP", "cnn": "CNN"}


def _span(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def _recipe(config: dict) -> str:
    schedule = "" if config["schedule"] == "constant" else f" {config['schedule']}"
    hidden = config["model_config"].get("hidden")
    arch = f" {'-'.join(map(str, [784, *hidden, 10]))}" if hidden else ""
    return (
        f"{arch.strip() or 'beautiful_mnist'}: {OPTIMIZERS.get(config['optimizer'], config['optimizer'])}, "
        f"LR {config['lr']:g}{schedule}, BS {config['batch_size']}, {config['steps']} steps"
    )


def defaults_table() -> str:
    rows = json.loads((TRIAL / "trial.json").read_text(encoding="utf-8"))["rows"]
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((TRIAL / "runs").glob("*/*.json"))]
    out = [
        "| model | defaults | device | test accuracy (3 seeds) | step time (median) | time to target | "
        "wall time of the process |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in ("mlp", "cnn"):
        config = next(r["config"] for r in records if r["config"]["model"] == model)
        target = next(r["target"]["accuracy"] for r in records if r["config"]["model"] == model)
        for device in ("CL", "CPU"):
            mine = [r for r in rows if r["model"] == model and r["device"] == device]
            acc = [r["accuracy"] for r in mine]
            met = sum(a >= target for a in acc)
            step = median(r["step_median_s"] for r in mine)
            step_text = f"{step * 1000:.0f} ms" if step < 1 else f"{step:.2f} s"
            out.append(
                f"| {MODELS[model]} | {_recipe(config)} | `{device}` | {_span(acc, '{:.2f}')}% "
                f"({met}/{len(acc)} >= {target:g}%) | {step_text} | "
                f"{_span([r['time_to_target_with_eval_s'] for r in mine], '{:.1f}')} s | "
                f"{_span([r['process_wall_s'] for r in mine], '{:.1f}')} s |"
            )
    rec = records[0]
    env = rec["environment"]
    cpu = env["cpu"]
    isa = "AVX-512" if "avx512f" in cpu["simd_flags"] else "AVX2" if "avx2" in cpu["simd_flags"] else "no AVX2"
    out += [
        "",
        f"Measured on a {cpu['cores']}-core {cpu['model']} machine ({isa}, no GPU), Python "
        f"{env['python']['version']}, tinygrad {env['packages']['tinygrad']}, {rec['started_at'][:10]}: seeds 0, "
        "1 and 2, each a fresh process with warm compile caches; time to target includes the evaluations "
        "(source: `results/device-choice/`, made by `benchmarks/device_choice.py`).",
    ]
    return "\n".join(out)


# --- the CPU paths table ------------------------------------------------------------------------------

PERF = [REPO / "results" / "perf" / "cpu-paths-mlp.json", REPO / "results" / "perf" / "cpu-paths-cnn.json"]


def _path_label(path: str, doc: dict) -> str:
    labels = {"CPU": "CPU (clang)", "CL": "**CL (PoCL)**", "torch": "PyTorch"}
    if path.endswith("+BEAM"):
        return f"{path.removesuffix('+BEAM')} + cached BEAM={doc['settings']['beam']}"
    return labels.get(path, path)


def cpu_paths() -> str:
    out = [
        "| model | BS | path | step ms (median, p10-p90) | GFLOP/s | vs PyTorch | eval of 10,000 images, ms |",
        "|---|---|---|---|---|---|---|",
    ]
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in PERF]
    for doc in docs:
        torch = {(r["model"], r["batch_size"]): r["step_s"]["median"] for r in doc["rows"] if r["path"] == "torch"}
        for r in doc["rows"]:
            st = r["step_s"]
            ms = f"{st['median'] * 1000:.1f} ({st['p10'] * 1000:.1f}-{st['p90'] * 1000:.1f})"
            base = torch.get((r["model"], r["batch_size"]))
            ratio = "-" if r["path"] == "torch" or not base else f"{st['median'] / base:.1f}x"
            ev = doc["eval"][r["model"]].get(r["path"], {}).get("median")
            bold = r["path"] == "CL"
            out.append(
                f"| {MODELS[r['model']]} | {r['batch_size']} | {_path_label(r['path'], doc)} | "
                f"{f'**{ms}**' if bold else ms} | {r['gflops']:.1f} | {ratio} | "
                f"{'-' if ev is None else f'{ev * 1000:,.0f}'} |"
            )
    env = docs[0]["environment"]
    cpu = env["cpu"]
    isa = "AVX-512" if "avx512f" in cpu["simd_flags"] else "AVX2"
    llvm = docs[0]["paths"].get("CPU:LLVM", {}).get("description", "")
    llvm = llvm[llvm.find("libLLVM") :].rstrip(")") if "libLLVM" in llvm else "no libLLVM"
    settings = [d["settings"] for d in docs]
    out += [
        "",
        f"Measured on a {cpu['cores']}-core {cpu['model']} machine ({isa}), {docs[0]['created_at'][:10]}: tinygrad "
        f"{env['packages']['tinygrad']}, {env['compiler']['version']}, {llvm}, torch "
        f"{(docs[0]['torch_version'] or '').split(' (')[0]} on {settings[0]['torch_threads']} thread; "
        + "; ".join(
            f"{MODELS[d['rows'][0]['model']]} {d['settings']['steps']} timed steps x {d['settings']['rounds']} rounds"
            for d in docs
        )
        + ", each path a fresh process per round, the paths' order rotating (source: "
        + ", ".join(f"`{p.relative_to(REPO)}`" for p in PERF)
        + ").",
    ]
    return "\n".join(out)


# --- the parts, and where each one goes ---------------------------------------------------------------

PARTS: dict[str, tuple[str, Callable[[], str]]] = {
    "commands-table": ("README.md", commands_table),
    "exit-codes": ("README.md", exit_codes),
    "pr-comment": ("README.md", pr_comment_excerpt),
    "defaults": ("README.md", defaults_table),
    "commands": ("docs/commands.md", commands_page),
    "rule-metrics": ("docs/gates.md", rule_metrics),
    "pr-comment-full": ("docs/gates.md", pr_comment_full),
    "results-format": ("docs/results-format.md", results_format),
    "cpu-paths": ("docs/performance.md", cpu_paths),
}


def splice(text: str, name: str, body: str, where: str) -> str:
    begin, end = BEGIN.format(name=name), END.format(name=name)
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    if len(pattern.findall(text)) != 1:
        raise SystemExit(f"docs: {where} needs exactly one pair of markers for `{name}`:\n  {begin}\n  {end}")
    return pattern.sub(lambda _: f"{begin}\n{body.rstrip()}\n{end}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a part is out of date")
    parser.add_argument("--root", type=Path, default=REPO, help="where README.md and docs/ are (default: here)")
    args = parser.parse_args(argv)
    stale = []
    for target in dict.fromkeys(t for t, _ in PARTS.values()):
        path = args.root / target
        old = path.read_text(encoding="utf-8")
        new = old
        for name, (where, make) in PARTS.items():
            if where == target:
                before = new
                new = splice(new, name, make(), target)
                if new != before:
                    stale.append(f"{target}: `{name}`")
        if new != old and not args.check:
            path.write_text(new, encoding="utf-8")
    if stale and args.check:
        print("docs: out of date (run: python .ci/docs.py):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    print(f"docs: {'rewrote ' + ', '.join(stale) if stale else 'every generated part is up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
