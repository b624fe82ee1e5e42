"""Bad input by class: each class of problem a battery of bad inputs found, checked at every place the class
occurs (parametrized), so that a new option, renderer or writer of the same kind is covered by the same test.
Every refusal is one line, a documented exit code, no traceback, and nothing already written is lost."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from harness import (
    cost,
    results,
    suites,
)
from harness.cli import FiniteFloat, cli
from harness.errors import ExitCode, HarnessError

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


@pytest.mark.parametrize("rule", [f"step_time:+{HUGE}%", f"accuracy:-{HUGE}pp", "step_time:+nan%", "step_time:+inf%"])
@pytest.mark.parametrize("path, option", RULE_OPTIONS, ids=lambda x: " ".join(x) if isinstance(x, tuple) else x)
def test_every_rule_option_refuses_a_number_that_is_not_finite(path, option, rule):
    assert set(RULE_ARGS) == {p for p, _ in RULE_OPTIONS}
    refused(invoke(*path, option, rule, *RULE_ARGS[path]), ExitCode.USAGE, "bad rule")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_the_cost_tolerance_is_checked_in_the_library(value):
    base = results.load(COST_BASE, "cost")
    with pytest.raises(HarnessError, match="--tolerance must be >= 0"):
        cost.compare(base, [cost.load_profile(COST_BASE, "mlp")], value)


def _summary_with(literal: str) -> str:
    doc = json.loads((GOLDEN / "gate.summary.json").read_text())
    doc["configs"][0]["metrics"]["accuracy"]["mean"] = 12345.678
    return results.dumps(doc).replace("12345.678", literal)


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
