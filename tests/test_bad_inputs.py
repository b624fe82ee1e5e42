"""Bad input by class: each class of problem a battery of bad inputs found, checked at every place the class
occurs (parametrized), so that a new option, renderer or writer of the same kind is covered by the same test.
Every refusal is one line, a documented exit code, no traceback, and nothing already written is lost."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from harness import documents, report
from harness.base import inputs, metrics
from harness.base.errors import ExitCode, HarnessError
from harness.cli import FiniteFloat, cli
from harness.documents import baselines, schema, suites
from harness.gate import compare, continuous, cost, history, rules, verdict
from harness.tg import env

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "fixtures" / "golden"
RUNS = ROOT / "results" / "gate" / "runs"
RUN = RUNS / "mlp-default__CPU__seed0.json"
COST_BASE = next((ROOT / "results" / "baselines" / "cost").glob("*threads4*/mlp-*.json"))


def invoke(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(cli, list(args), env=env)
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def refused(result, code: ExitCode, *words: str) -> None:
    """One line, the documented exit code, the words that say why."""
    assert result.exit_code == int(code), result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnist-bench: error: "), result.output
    for word in words:
        assert word in lines[0], lines[0]


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def options(accept: Callable[[click.Parameter], bool]) -> list[tuple[tuple[str, ...], str]]:
    """(command path, option name) of every option of every command that `accept`s."""
    return [
        (path, max(p.opts, key=len))
        for path, command in commands()
        for p in command.params
        if isinstance(p, click.Option) and not p.hidden and accept(p)
    ]


# --- 1. a number that disables a check ----------------------------------------------------------------

FLOAT_OPTIONS = options(lambda p: isinstance(p.type, click.types.FloatParamType))
NOT_FINITE = ["nan", "inf", "-inf", "1e999"]


def test_the_float_options_are_found():
    found = {(" ".join(path), name) for path, name in FLOAT_OPTIONS}
    assert {("mlp", "--lr"), ("cnn", "--target"), ("cost", "--tolerance"), ("repro", "--tolerance")} <= found


@pytest.mark.parametrize("path, option", FLOAT_OPTIONS, ids=lambda x: " ".join(x) if isinstance(x, tuple) else x)
def test_every_float_option_takes_the_finite_type(path, option):
    command = cli
    for name in path:
        command = command.commands[name]
    param = next(p for p in command.params if option in p.opts)
    assert isinstance(param.type, FiniteFloat)


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize("path, option", FLOAT_OPTIONS, ids=lambda x: " ".join(x) if isinstance(x, tuple) else x)
def test_every_float_option_refuses_nan_and_infinities(path, option, value):
    refused(invoke(*path, option, value), ExitCode.USAGE, option, "is not a finite number")


def test_a_float_option_from_the_environment_is_checked_too(tmp_path):
    refused(invoke("mlp", "--out-dir", str(tmp_path), env={"LR": "nan"}), ExitCode.USAGE, "LR", "finite")


HUGE = "9" * 400  # digits only, as a rule's number must be, but a float of it is inf
RULE_OPTIONS = options(lambda p: p.name == "rule_texts")
# what a command needs besides --rule to reach its rule parser (which comes before anything else it does)
RULE_ARGS = {("compare",): ["no-such-summary.json"], ("continuous",): ["HEAD"]}


@pytest.mark.parametrize(
    "rule", [f"step_time_s:+{HUGE}%", f"accuracy:-{HUGE}pp", "step_time_s:+nan%", "step_time_s:+inf%"]
)
@pytest.mark.parametrize("path, option", RULE_OPTIONS, ids=lambda x: " ".join(x) if isinstance(x, tuple) else x)
def test_every_rule_option_refuses_a_number_that_is_not_finite(path, option, rule):
    assert set(RULE_ARGS) == {p for p, _ in RULE_OPTIONS}
    refused(invoke(*path, option, rule, *RULE_ARGS[path]), ExitCode.USAGE, "bad rule")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_the_cost_tolerance_is_checked_in_the_library(value):
    base = documents.load(COST_BASE, "cost")
    with pytest.raises(HarnessError, match="--tolerance must be >= 0"):
        cost.compare(base, [cost.load_profile(COST_BASE, "mlp")], value)


def _summary_with(literal: str) -> str:
    doc = json.loads((GOLDEN / "gate.summary.json").read_text())
    doc["configs"][0]["metrics"]["accuracy"]["mean"] = 12345.678
    return documents.dumps(doc).replace("12345.678", literal)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize(
    "reader",
    [
        lambda f: invoke("validate", str(f)),
        lambda f: invoke("compare", str(f), "--baseline", str(GOLDEN / "gate.baseline.json")),
        lambda f: invoke("history", "--summary", str(f), "-o", str(f.with_name("h.json"))),
    ],
    ids=["validate", "compare", "history"],
)
def test_a_json_document_with_a_number_that_is_not_finite_is_refused(tmp_path, literal, reader):
    path = tmp_path / "summary.json"
    path.write_text(_summary_with(literal))
    result = reader(path)
    assert result.exit_code == 2 and "is not a finite number" in result.output, result.output


@pytest.mark.parametrize(
    "suffix, text",
    [
        (".toml", 'name = "x"\ndescription = ""\n[budget]\nwall_s = nan\n'),
        (".toml", 'name = "x"\ndescription = ""\n[budget]\nwall_s = inf\n'),
        (".json", '{"name": "x", "budget": {"wall_s": Infinity}}'),
    ],
)
def test_a_suite_file_with_a_number_that_is_not_finite_is_refused(tmp_path, suffix, text):
    path = tmp_path / f"s{suffix}"
    path.write_text(text)
    refused(invoke("suite", "show", str(path)), ExitCode.USAGE, "is not a finite number")
    with pytest.raises(HarnessError, match="is not a finite number"):
        suites.load(str(path))


# --- 2. documents that are valid, but not what the code assumed ---------------------------------------------


def _continuous() -> dict[str, Any]:
    from tests.test_continuous import _document, _samples

    return _document(_samples([0.080, 0.081, 0.079], [0.0805, 0.0795, 0.081]))


def _cost_comparison() -> dict[str, Any]:
    return cost.compare(documents.load(COST_BASE, "cost"), [cost.load_profile(COST_BASE, "mlp")])


def _through_verdict(check: str, doc: dict[str, Any], folder: Path) -> None:
    path = folder / f"{check}.json"
    path.write_text(documents.dumps(doc))
    combined = verdict.combine({check: path})
    for fmt in documents.FORMATS:
        documents.render(combined, fmt)


def _render_comparison(doc: dict[str, Any], folder: Path) -> None:
    for fmt in documents.FORMATS:
        documents.render(doc, fmt)
        if doc["suite"] == continuous.SUITE:
            documents.render(doc, fmt)
    _through_verdict("ab" if doc["suite"] == continuous.SUITE else "gate", doc, folder)


def _render_cost_comparison(doc: dict[str, Any], folder: Path) -> None:
    for fmt in documents.FORMATS:
        documents.render(doc, fmt)
    _through_verdict("cost", doc, folder)


def _render_summary(doc: dict[str, Any], folder: Path) -> None:
    for fmt in documents.FORMATS:
        documents.render(doc, fmt)
    history.from_summary(doc)
    parsed = [rules.parse_rule(r) for r in rules.DEFAULT_RULES]
    for fmt in documents.FORMATS:
        documents.render(compare.compare(doc, doc, parsed, current_path="a", baseline_path="b"), fmt)


def _render_baseline(doc: dict[str, Any], folder: Path) -> None:
    path = folder / "root" / "KEY" / "gate.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(documents.dumps(doc))
    for fmt in documents.FORMATS:
        result = invoke("baseline", "show", str(path), "--format", fmt)
        assert result.exit_code == 0, result.output
    baselines.listing(folder / "root")


def _render_cost(doc: dict[str, Any], folder: Path) -> None:
    history.from_cost(doc)
    profile = {**doc["profiles"][0], "_key": doc["key"], "_path": "x"}
    for fmt in documents.FORMATS:
        documents.render(cost.compare(doc, [profile]), fmt)


def _render_run(doc: dict[str, Any], folder: Path) -> None:
    path = folder / "runs" / "run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(documents.dumps(doc))
    report.write([path.parent], folder / "report.md")


# (kind, the document, everything that renders a loaded document of that kind)
DOCUMENTS: dict[str, tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any], Path], None]]] = {
    "gate comparison": ("comparison", lambda: documents.load(GOLDEN / "compare.json"), _render_comparison),
    "comparison with no baseline": (
        "comparison",
        lambda: documents.load(GOLDEN / "compare-no-baseline.json"),
        _render_comparison,
    ),
    "continuous comparison": ("comparison", _continuous, _render_comparison),
    "cost comparison": ("cost_comparison", _cost_comparison, _render_cost_comparison),
    "summary": ("summary", lambda: documents.load(GOLDEN / "gate.summary.json"), _render_summary),
    "baseline": ("baseline", lambda: documents.load(GOLDEN / "gate.baseline.json"), _render_baseline),
    "cost": ("cost", lambda: documents.load(COST_BASE), _render_cost),
    "run": ("run", lambda: documents.load(RUN), _render_run),
}

UNKNOWN = "metric_from_a_newer_harness"


def _key_paths(doc: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key's path (within lists, the first item's only: items share a schema)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from _key_paths(value, (*prefix, key))
    elif isinstance(doc, list) and doc:
        yield from _key_paths(doc[0], (*prefix, 0))


def _changed(doc: dict[str, Any], path: tuple, change: Callable[[Any, Any], None]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    change(node, path[-1])
    return out


def _rename_metrics(node: Any) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("metric"), str):
            node["metric"] = UNKNOWN
        for value in node.values():
            _rename_metrics(value)
    elif isinstance(node, list):
        for value in node:
            _rename_metrics(value)


def variants(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The document with each field dropped in turn, each list emptied, each field null, and every metric
    named by a name this version does not know; the caller keeps those its schema still accepts."""
    for path in _key_paths(doc):
        yield f"without {path}", _changed(doc, path, lambda node, key: node.pop(key))
        yield f"{path} null", _changed(doc, path, lambda node, key: node.__setitem__(key, None))
        yield f"{path} empty", _changed(doc, path, lambda node, key: node.__setitem__(key, type(node[key])()))
    renamed = copy.deepcopy(doc)
    _rename_metrics(renamed)
    yield "unknown metric", renamed


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_schema_valid_document_renders(name, tmp_path):
    kind, make, render = DOCUMENTS[name]
    doc = make()
    render(doc, tmp_path)
    tried, failures = 0, []
    for label, variant in variants(doc):
        if schema.errors(variant, kind):
            continue
        tried += 1
        try:
            render(variant, tmp_path)
        except Exception as e:
            failures.append(f"{label}: {e.__class__.__name__}: {e}")
    assert tried and not failures, "\n".join(failures)


def test_an_unknown_metric_is_shown_by_its_name():
    doc = documents.load(GOLDEN / "compare.json")
    _rename_metrics(doc)
    assert UNKNOWN in documents.render(doc, "text")
    assert metrics.metric_of(UNKNOWN).label == UNKNOWN


def test_verdict_of_a_gate_comparison_without_warnings(tmp_path):
    doc = documents.load(GOLDEN / "compare.json")
    del doc["warnings"]
    path = tmp_path / "gate.json"
    path.write_text(documents.dumps(doc))
    result = invoke("verdict", "--gate", str(path), "--format", "markdown")
    assert result.exit_code == 1 and "REGRESSION" in result.output


# --- 3. tinygrad's own environment variables -------------------------------------------------------------


def test_the_integer_settings_are_those_tinygrad_reads_with_int():
    from tinygrad import helpers

    kinds = {v.key: type(v.value) for v in vars(helpers).values() if isinstance(v, helpers.ContextVar)}
    int_settings = env.tinygrad_int_settings()
    for name in env.TINYGRAD_ENV_VARS:
        if name in kinds:
            assert (name in int_settings) == (kinds[name] is int), name
    assert {"BEAM", "DEBUG", "NUM_CPU_THREADS", "JITBEAM"} <= set(int_settings)


@pytest.mark.parametrize("name", env.tinygrad_int_settings())
def test_every_integer_setting_is_checked(name):
    with pytest.raises(HarnessError, match=f"env var '{name}': 'abc' is not a valid integer"):
        env.check_tinygrad_settings({name: "abc"})
    env.check_tinygrad_settings({name: " 2 "})  # tinygrad's int() reads this


def test_text_settings_are_left_to_tinygrad():
    env.check_tinygrad_settings({name: "abc" for name in env.TINYGRAD_TEXT_SETTINGS})


def _harness(*args: str, environ: dict[str, str], **kwargs) -> subprocess.Popen:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **environ}
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
        cwd=ROOT,
        **kwargs,
    )


@pytest.mark.parametrize("setting", ["BEAM=abc", "DEBUG=abc", "NUM_CPU_THREADS=abc", "JIT="])
def test_a_bad_tinygrad_setting_is_one_line_before_tinygrad_loads(setting):
    name, value = setting.split("=", 1)
    proc = _harness("mlp", "--help", environ={name: value})
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2 and not stdout, stdout
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith(f"mnist-bench: error: Invalid value for env var '{name}': {value!r}"), stderr


# --- 4. user text parsed without catching the parser's error; a folder written without checking --------------


@pytest.mark.parametrize(
    "args",
    [
        ["continuous", "HEAD", "--base-prefix", 'taskset "1'],
        ["continuous", "HEAD", "--head-prefix", "nice -n 'x"],
        ["continuous", "HEAD", "--base-prefix", "trailing\\"],
        ["suite", "show", "mlp-explore", "--seeds", "0,one"],
        ["suite", "run", "smoke", "--shard", "one/4"],
        ["mlp", "--bs", "many"],
        ["--no-such-option"],
        ["no-such-command"],
        ["suite", "run"],
    ],
    ids=lambda a: " ".join(a[:3]),
)
def test_malformed_text_is_one_line(args):
    refused(invoke(*args), ExitCode.USAGE)


@pytest.mark.parametrize(
    "suffix, text", [(".toml", "name = "), (".json", '{"name": '), (".json", "")], ids=["toml", "json", "empty"]
)
def test_a_malformed_suite_file_is_one_line(tmp_path, suffix, text):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    refused(invoke("suite", "show", str(path)), ExitCode.USAGE, str(path))


# every command that writes a file or folder the user names, with what it needs to get as far as writing
WRITERS = {
    "report -o": lambda d: ["report", str(RUN), "-o", f"{d}/report.md"],
    "report --plots": lambda d: ["report", str(RUN), "-o", "{tmp}/report.md", "--plots", f"{d}/plots"],
    "history -o": lambda d: ["history", "--summary", str(GOLDEN / "gate.summary.json"), "-o", f"{d}/h.json"],
    "merge -o": lambda d: ["merge", str(RUNS), "-o", f"{d}/s.json"],
    "compare -o": lambda d: [
        "compare",
        str(GOLDEN / "gate.summary.json"),
        "--baseline",
        str(GOLDEN / "gate.baseline.json"),
        "-o",
        f"{d}/c.json",
    ],
    "verdict -o": lambda d: ["verdict", "--gate", str(GOLDEN / "compare.json"), "-o", f"{d}/v.json"],
    "baseline save --root": lambda d: ["baseline", "save", str(GOLDEN / "gate.summary.json"), "--root", f"{d}/root"],
}


@pytest.mark.parametrize("writer", WRITERS)
def test_an_unwritable_output_folder_is_one_line(tmp_path, writer):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in WRITERS[writer](blocker / "sub")]
    refused(invoke(*args), ExitCode.ENVIRONMENT, "not writable")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # and nothing else was written


# --- 5. output onto input ---------------------------------------------------------------------------------


SUMMARY, BASELINE, GATE = (GOLDEN / name for name in ("gate.summary.json", "gate.baseline.json", "compare.json"))


def copy_of(source: Path) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(source, folder / source.name))

    return make


def written(make_doc: Callable[[], dict[str, Any]], kind: str) -> Callable[[Path], Path]:
    return lambda folder: documents.write(folder / f"{kind}.json", make_doc(), kind)


def stored_baseline(folder: Path) -> Path:
    """The golden baseline where `baseline save --root {root}` of its summary writes: saving it again names it."""
    key = baselines.summary_device_key(documents.load(SUMMARY))
    return copy_of(BASELINE)(folder / "root" / key).rename(folder / "root" / key / "gate.json")


# every command that reads files and writes files: its command line, with {in} for a file it reads or writes
# and {out} for an output path that names that same file ({root}: the folder of its files), and how {in} is made
CLASHES: dict[str, tuple[list[str], Callable[[Path], Path]]] = {
    "history --summary": (["history", "--summary", "{in}", "-o", "{out}"], copy_of(SUMMARY)),
    "history --cost": (["history", "--cost", "{in}", "-o", "{out}"], copy_of(COST_BASE)),
    "cost --baseline": (["cost", "mlp", "--baseline", "{in}", "-o", "{out}"], copy_of(COST_BASE)),
    "cost -o --profile-output": (["cost", "mlp", "-o", "{in}", "--profile-output", "{out}"], copy_of(COST_BASE)),
    "verdict --gate": (["verdict", "--gate", "{in}", "-o", "{out}"], copy_of(GATE)),
    "verdict --cost": (["verdict", "--cost", "{in}", "-o", "{out}"], written(_cost_comparison, "cost_comparison")),
    "verdict --ab": (["verdict", "--ab", "{in}", "-o", "{out}"], written(_continuous, "comparison")),
    "compare CURRENT": (["compare", "{in}", "--baseline", str(BASELINE), "-o", "{out}"], copy_of(SUMMARY)),
    "compare --baseline": (["compare", str(SUMMARY), "--baseline", "{in}", "-o", "{out}"], copy_of(BASELINE)),
    "merge": (["merge", "{in}", "-o", "{out}"], copy_of(RUN)),
    "report": (["report", "{in}", "-o", "{out}"], copy_of(RUN)),
    "baseline save": (["baseline", "save", "{out}", "--root", "{root}"], stored_baseline),
}


def _same_file_by(how: str, path: Path) -> Path:
    """Another name for `path`: itself, spelled with `..`, a symlink, or a hard link."""
    if how == "same path":
        return path
    if how == "dotted path":
        return path.parent / ".." / path.parent.name / path.name
    other = path.with_name(f"other-{path.name}")
    (os.symlink if how == "symlink" else os.link)(path, other)
    return other


@pytest.mark.parametrize("how", ["same path", "dotted path", "symlink", "hard link"])
@pytest.mark.parametrize("clash", CLASHES)
def test_an_output_onto_an_input_is_refused(tmp_path, clash, how):
    template, make = CLASHES[clash]
    target = make(tmp_path)
    before = target.read_bytes()
    names = {"{in}": str(target), "{out}": str(_same_file_by(how, target)), "{root}": str(tmp_path / "root")}
    args = [names.get(a, a) for a in template]
    refused(invoke(*args), ExitCode.USAGE, "name the same file")
    assert target.read_bytes() == before


def test_outputs_and_inputs_that_differ_pass(tmp_path):
    inputs.check_distinct([("--summary", GOLDEN / "gate.summary.json"), ("--cost", None)], [("-o", tmp_path / "x")])
    with pytest.raises(HarnessError, match="-o and --profile-output name the same file"):
        inputs.check_distinct([], [("--profile-output", tmp_path / "x"), ("-o", tmp_path / "x")])


# --- 6. SIGTERM ------------------------------------------------------------------------------------------


def _stop_while(phase: str, tmp_path: Path) -> tuple[int, str, list[Path]]:
    """Start a run, wait for `phase` in its progress, SIGTERM it: (exit code, stderr, files in its out dir)."""
    out = tmp_path / "out"
    proc = _harness("mlp", "--steps", "200", "--no-assert-target", "--device", "CPU", "--out-dir", str(out), environ={})
    seen = []
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if f"mlp: {phase}" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=120)
    assert f"mlp: {phase}" in seen[-1], "".join(seen)
    return proc.returncode, "".join(seen) + rest, sorted(out.rglob("*")) if out.exists() else []


def _assert_stopped_cleanly(code: int, stderr: str, files: list[Path]) -> None:
    assert code == int(ExitCode.INTERRUPTED), stderr
    assert "Traceback" not in stderr and stderr.rstrip().endswith("interrupted; finished results are kept"), stderr
    assert files == []  # no result, and no temp file of one


def test_sigterm_while_compiling_is_an_interrupt(tmp_path):
    _assert_stopped_cleanly(*_stop_while("compiling", tmp_path))


@pytest.mark.slow  # the first steps compile: 5-15 s on a 2-core CPU before training starts
def test_sigterm_while_training_is_an_interrupt(tmp_path):
    _assert_stopped_cleanly(*_stop_while("training", tmp_path))
