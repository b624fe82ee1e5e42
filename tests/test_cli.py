from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from harness.cli import cli

# tinygrad's CPU backend named: these tests are about the CLI, and where PoCL is installed the default device
# is CL, whose first compile is slow (tests/test_devices.py covers the default)
TINY = ["--steps", "3", "--bs", "16", "--log-every", "1", "--device", "CPU"]


def invoke(*args, env=None):
    result = CliRunner().invoke(cli, list(args), env=env)
    assert "Traceback" not in result.output
    return result


def test_help_lists_commands_and_exit_codes():
    result = invoke("--help")
    assert result.exit_code == 0
    for word in ("cnn", "mlp", "data", "devices", "validate", "130 interrupted"):
        assert word in result.output


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--lr", "nan"], 2, "'nan' is not a finite number"),
        (["--lr", "-0.1"], 2, "learning rate"),
        (["--bs", "0"], 2, "batch size must be between 1 and 60000"),
        (["--bs", "60001"], 2, "batch size"),
        (["--steps", "0"], 2, "steps must be at least 1"),
        (["--device", "NOPE"], 2, "unknown device 'NOPE'; usable devices: "),
        (["--bs", "many"], 2, "Invalid value for '--bs'"),
    ],
)
def test_bad_options_give_one_line_and_exit_code(args, code, message, tmp_path):
    result = invoke("mlp", *args, "--out-dir", str(tmp_path))
    assert result.exit_code == code, result.output
    assert message in result.output
    assert not list(tmp_path.iterdir())


def test_env_vars_are_read_and_options_win(tmp_path):
    result = invoke("mlp", "--steps", "0", "--out-dir", str(tmp_path), env={"STEPS": "5", "BS": "0"})
    assert "batch size" in result.output  # BS from the environment was used
    result = invoke("mlp", "--bs", "16", "--steps", "0", "--out-dir", str(tmp_path), env={"BS": "0"})
    assert "steps must be at least 1" in result.output  # --bs won over BS


def test_missing_clang_is_said_plainly(tmp_path):
    result = invoke("cnn", "--device", "CPU", "--out-dir", str(tmp_path), env={"CC": "no-such-clang"})
    assert result.exit_code == 4
    assert "`no-such-clang` is not on PATH" in result.output and "install it" in result.output


def test_unwritable_out_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke("mlp", *TINY, "--out-dir", str(blocker / "sub"))
    assert result.exit_code == 4 and "not writable" in result.output


def test_corrupt_data_is_refused(data_copy, tmp_path):
    path = data_copy / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    result = invoke("mlp", *TINY, "--data-dir", str(data_copy), "--out-dir", str(tmp_path / "out"))
    assert result.exit_code == 3 and "SHA-256 mismatch" in result.output
    verify = invoke("data", "verify", "--data-dir", str(data_copy))
    assert verify.exit_code == 3 and "t10k-labels-idx1-ubyte: SHA-256 mismatch" in verify.output


def test_tiny_run_writes_a_valid_result_and_exit_codes(tmp_path):
    out = tmp_path / "runs"
    missed = invoke("mlp", *TINY, "--out-dir", str(out))
    assert missed.exit_code == 1 and "target_missed" in missed.output
    ok = invoke("mlp", *TINY, "--out-dir", str(out), "--format", "json", "--no-assert-target")
    assert ok.exit_code == 0
    record = json.loads(ok.stdout)
    assert record["config"]["steps"] == 3 and record["metrics"]["steps_done"] == 3
    files = sorted(out.glob("*.json"))
    assert len(files) == 2
    valid = invoke("validate", *map(str, files))
    assert valid.exit_code == 0 and valid.output.count(": ok") == 2
    files[0].write_text(files[0].read_text().replace('"status": "target_missed"', '"status": "meh"'))
    invalid = invoke("validate", str(files[0]))
    assert invalid.exit_code == 2 and "$.status: 'meh' is not one of" in invalid.output


def test_data_path_and_devices():
    assert invoke("data", "path", "--data-dir", "/x/y").output.strip() == "/x/y"
    devices = invoke("devices", "--format", "json")
    listed = json.loads(devices.output)
    assert devices.exit_code == 0 and "CPU" in [d["name"] for d in listed]
    cpu = next(d for d in listed if d["name"] == "CPU")
    assert sum(d["default"] for d in listed) == 1 and cpu["runs_on"] == "cpu" and "clang" in cpu["description"]
    text = invoke("devices").output
    assert "* default: " in text and "clang renderer" in text


def _cli_run(out, *extra):
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "mlp",
        *TINY,
        "--seed",
        "7",
        "--out-dir",
        str(out),
        "--format",
        "json",
        "--no-assert-target",
        *extra,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def test_same_seed_in_two_processes_is_bit_identical(tmp_path):
    a, b = _cli_run(tmp_path / "a"), _cli_run(tmp_path / "b")
    for key in ("accuracy", "weights_sha256"):
        assert a["metrics"][key] == b["metrics"][key]
    assert a["series"]["loss"] == b["series"]["loss"]
    # train_s is a time
    assert [(e["step"], e["accuracy"]) for e in a["series"]["evals"]] == [
        (e["step"], e["accuracy"]) for e in b["series"]["evals"]
    ]
    assert a["run_id"] != b["run_id"]


def test_repro_passes_on_a_real_result_and_names_differing_fields(tmp_path):
    out = tmp_path / "runs"
    assert invoke("mlp", *TINY, "--out-dir", str(out), "--no-assert-target").exit_code == 0
    (path,) = out.glob("*.json")
    same = invoke("repro", str(path))
    assert same.exit_code == 0 and "rerun 1: PASS bit-identical" in same.output
    doc = json.loads(path.read_text())
    doc["metrics"]["weights_sha256"] = "0" * 64
    doc["series"]["loss"][0][1] += 1e-6
    path.write_text(json.dumps(doc))
    changed = invoke("repro", str(path))
    assert changed.exit_code == 1
    assert "differs in: series.loss, metrics.weights_sha256" in changed.output


def test_suite_commands_in_process(tmp_path):
    listing = invoke("suite", "list")
    assert listing.exit_code == 0 and "explore" in listing.output and "gate" in listing.output
    shown = invoke("suite", "show", "cnn-explore", "--repeat", "2")
    assert "Mini-batch - fine-grained updates" in shown.output and "18 runs" in shown.output
    assert invoke("suite", "run", "smoke", "--shard", "0/4", "--out-dir", str(tmp_path)).exit_code == 2
    bad_device = invoke("suite", "run", "smoke", "--device", "NOPE", "--out-dir", str(tmp_path))
    assert bad_device.exit_code == 2 and "unknown device" in bad_device.output
    both = invoke("suite", "run", "smoke", "--repeat", "2", "--seeds", "1", "--out-dir", str(tmp_path))
    assert both.exit_code == 2 and "not both" in both.output
    assert not list(tmp_path.iterdir())  # nothing ran


def _commands(group, prefix=()):
    import click

    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_option_shows_its_default_in_help():
    import click

    for path, command in _commands(cli):
        ctx = click.Context(command, info_name=path[-1], show_default=True)
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden or param.required:
                continue  # a required option has no default to show
            if param.is_flag and not param.secondary_opts:
                continue
            _, text = param.get_help_record(ctx)
            assert "default:" in text, f"{' '.join(path)} {param.opts[0]} shows no default"


def test_one_meaning_per_option_name():
    import click

    folders, files = set(), set()
    for _, command in _commands(cli):
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.type, click.Path):
                (folders if not param.type.file_okay else files if not param.type.dir_okay else set()).update(
                    param.opts
                )
    assert not folders & files
    assert "--out" not in files and "-o" not in folders


def test_out_is_still_the_folder_of_a_run(tmp_path):
    result = invoke("mlp", *TINY, "--out", str(tmp_path / "old"), "--no-assert-target")
    assert result.exit_code == 0 and len(list((tmp_path / "old").glob("*.json"))) == 1


@pytest.mark.parametrize("args", [("suite", "list"), ("devices",), ("baseline", "list")])
def test_format_json_and_markdown_on_listings(args):
    as_json = invoke(*args, "--format", "json")
    assert as_json.exit_code == 0 and isinstance(json.loads(as_json.output), list)
    markdown = invoke(*args, "--format", "markdown")
    assert markdown.exit_code == 0 and markdown.output.startswith("| ")


def test_validate_formats(tmp_path):
    from pathlib import Path

    golden = Path(__file__).parent / "fixtures" / "golden" / "gate.summary.json"
    doc = json.loads(invoke("validate", str(golden), "--format", "json").output)
    assert doc == [{"path": str(golden), "valid": True, "problems": []}]
    assert "| file | verdict | problems |" in invoke("validate", str(golden), "--format", "markdown").output


def test_suite_plan_is_a_library_call():
    from harness.documents import results
    from harness.run import runner
    from harness.tg import devices

    plan = runner.plan("smoke", seeds=[3], only=["mlp*"], shard=(1, 1))
    assert plan.out_dir == results.DEFAULT_OUT / "smoke" and plan.devices == [devices.default_device()]
    assert plan.runs and all(p.spec.seed == 3 and p.name.startswith("mlp") for p in plan.runs)


def test_suite_run_writes_under_mnist_bench_out(tmp_path):
    """MNIST_BENCH_OUT (the Docker image sets /results, its volume) is where `suite run` writes without --out."""
    done = CliRunner().invoke(
        cli,
        ["suite", "run", "smoke", "--only", "mlp-tiny", "--seeds", "0", "--device", "CPU", "--quiet"],
        env={"MNIST_BENCH_OUT": str(tmp_path)},
    )
    assert done.exit_code == 0, done.output
    assert done.stderr == "" and "mlp-tiny" in done.stdout  # --quiet: the summary table, no progress
    assert (tmp_path / "smoke" / "smoke.summary.json").exists()
    assert list((tmp_path / "smoke").glob("mlp-tiny*seed0.json"))


# --- the top-level help, defaults, one spelling per choice (issue 29, items 8 and 9) -----------------------

GOLDEN = os.path.join(os.path.dirname(__file__), "fixtures", "golden")


def test_top_level_help_matches_the_committed_file():
    """Sections, a line on where to start, every first sentence whole (80 columns, as a default terminal).
    After an intended change: MNIST_BENCH_REGEN_GOLDEN=1 pytest tests/test_cli.py -k committed_file, review the diff."""
    result = CliRunner().invoke(cli, ["--help"], prog_name="mnist-bench", terminal_width=80)
    path = os.path.join(GOLDEN, "help.txt")
    if os.environ.get("MNIST_BENCH_REGEN_GOLDEN") == "1":
        with open(path, "w", encoding="utf-8") as f:
            f.write(result.output)
    with open(path, encoding="utf-8") as f:
        assert result.output == f.read(), "help.txt changed; see the test's docstring"


def test_every_command_is_in_one_section_and_none_is_cut_off():
    from harness.cli.app import SECTIONS

    listed = [name for names in SECTIONS.values() for name in names]
    assert sorted(listed) == sorted(cli.commands)  # each command once; a new one must be given a section
    text = invoke("--help").output
    assert "..." not in text[text.index("Run:") :] and "Start with `mnist-bench mlp`" in text
    assert text.index("CI plumbing:") < text.index("  history ") and "Other:" not in text


def test_every_default_shows_the_same_way():
    import click

    for path, command in _commands(cli):
        ctx = click.Context(command, info_name=path[-1], show_default=True)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                _, text = param.get_help_record(ctx)
                assert "default: (" not in text, f"{' '.join(path)} {param.opts[0]}: {text}"
    from harness.tg.spec import DEFAULTS

    lr = next(p for p in cli.commands["mlp"].params if p.name == "lr")  # its default given as text, like --seed's 0
    assert lr.get_help_record(click.Context(cli.commands["mlp"]))[1].endswith(f"default: {DEFAULTS['mlp']['lr']:g}]")


def _captured(monkeypatch, target: str, *args):
    """The keyword and positional arguments `args` hand to the library function `target` (which then stops)."""
    import importlib

    from harness.base.errors import HarnessError

    module, name = target.rsplit(".", 1)
    seen = {}

    def fake(*a, **k):
        seen.update(k, args=a)
        raise HarnessError("stopped here")

    monkeypatch.setattr(importlib.import_module(module), name, fake)
    result = invoke(*args)
    assert result.exit_code == 2 and "stopped here" in result.output, result.output
    return seen


@pytest.mark.parametrize(
    "args, models",
    [
        ([], ("mlp", "cnn")),
        (["--model", "cnn"], ("cnn",)),
        (["--model", "cnn", "--model", "mlp"], ("mlp", "cnn")),
        (["--model", "all"], ("mlp", "cnn")),  # warmup's old spelling
    ],
)
def test_models_are_chosen_by_one_option_everywhere(monkeypatch, args, models):
    assert _captured(monkeypatch, "harness.run.warmup.run", "warmup", *args)["models"] == models
    assert _captured(monkeypatch, "harness.gate.cost.gate", "cost", *args)["args"][0] == models
    workload = _captured(monkeypatch, "harness.gate.continuous.run", "continuous", "HEAD", *args)["workload"]
    assert tuple(workload.models) == models


@pytest.mark.parametrize("old, models", [("all", ("mlp", "cnn")), ("mlp", ("mlp",)), ("cnn", ("cnn",))])
def test_cost_still_takes_its_old_positional_spelling(monkeypatch, old, models):
    """`cost all` (.github/workflows/bench.yml, COST_MODELS) works, and is no longer shown."""
    assert _captured(monkeypatch, "harness.gate.cost.gate", "cost", old)["args"][0] == models
    usage = invoke("cost", "--help").output.splitlines()[0]
    assert usage == "Usage: cli cost [OPTIONS]"


def test_a_misspelt_model_names_the_models():
    for args in (["warmup", "--model", "mpl"], ["cost", "--model", "mpl"], ["continuous", "HEAD", "--model", "x"]):
        result = invoke(*args)
        assert result.exit_code == 2 and "'mlp', 'cnn'" in result.output and "all" not in result.output


def test_repro_of_neither_a_file_nor_a_model_names_the_models():
    result = invoke("repro", "mpl")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "mnist-bench: error: mpl: not a result file nor a model (mlp, cnn); did you mean 'mlp'?"
    )


def _baseline_root(tmp_path, *keys):
    import shutil

    for key in keys:
        (tmp_path / key).mkdir(parents=True)
        shutil.copy(os.path.join(GOLDEN, "gate.baseline.json"), tmp_path / key / "gate.json")
    return str(tmp_path)


def test_baseline_show_takes_a_name_as_baseline_list_shows_it(tmp_path, monkeypatch):
    from harness.documents import baselines

    root = _baseline_root(tmp_path, "KEY")
    shown = invoke("baseline", "show", "gate", "--root", root)
    assert shown.exit_code == 0 and shown.output.startswith("gate: suite gate on ")
    assert invoke("baseline", "show", "KEY/gate", "--root", root).output == shown.output
    typo = invoke("baseline", "show", "gat", "--root", root)
    assert typo.exit_code == 2 and "no such file nor baseline" in typo.output and "did you mean 'gate'?" in typo.output

    root = _baseline_root(tmp_path / "two", "A", "B")
    monkeypatch.setattr(baselines, "this_device_key", lambda: "B")
    assert invoke("baseline", "show", "gate", "--root", root).exit_code == 0
    monkeypatch.setattr(baselines, "this_device_key", lambda: "C")
    several = invoke("baseline", "show", "gate", "--root", root)
    assert several.exit_code == 2 and "device key C; give one of: A/gate, B/gate" in several.output


@pytest.mark.parametrize(
    "args",
    [
        ("suite", "show", "smoke"),
        ("baseline", "show", os.path.join(GOLDEN, "gate.baseline.json")),
        ("merge", os.path.join(os.path.dirname(GOLDEN), "..", "..", "results", "gate", "runs")),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_format_on_show_and_merge(args):
    as_json = invoke(*args, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    assert isinstance(json.loads(as_json.stdout), dict)
    markdown = invoke(*args, "--format", "markdown")
    assert markdown.exit_code == 0 and "\n|---|" in markdown.stdout


def test_quiet_leaves_only_the_result(tmp_path):
    loud = invoke("mlp", *TINY, "--out-dir", str(tmp_path), "--no-assert-target")
    quiet = invoke("mlp", *TINY, "--out-dir", str(tmp_path), "--no-assert-target", "-q")
    assert loud.exit_code == quiet.exit_code == 0
    assert "mlp: " in loud.stderr  # the progress line
    assert quiet.stderr == "" and "test accuracy" in quiet.stdout


def test_verdict_words_are_coloured_on_a_terminal_only():
    compare = ["compare", os.path.join(GOLDEN, "gate.summary.json"), "--baseline"]
    compare.append(os.path.join(GOLDEN, "gate.baseline.json"))
    ansi = "\x1b["
    terminal = CliRunner().invoke(cli, compare, color=True)
    assert terminal.exit_code == 1 and f"{ansi}" in terminal.stdout and "REGRESSION" in terminal.stdout
    assert ansi not in CliRunner().invoke(cli, compare).stdout  # not a terminal: click drops it
    assert ansi not in CliRunner().invoke(cli, compare, color=True, env={"NO_COLOR": "1"}).stdout
    assert ansi not in CliRunner().invoke(cli, [*compare, "--format", "markdown"], color=True).stdout
