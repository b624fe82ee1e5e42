from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import documents
from harness.base import stats
from harness.base.errors import HarnessError
from harness.base.metrics import METRICS, format_stat
from harness.cli import cli
from harness.documents import baselines, schema
from harness.documents import summary as summary_mod
from harness.gate import compare, rules

MACHINE = {"cpu": "Test CPU 9000", "gpu": [], "device": "CPU", "tinygrad": "0.14.0", "tinygrad_env": {}}


def config_entry(name, accuracy, step_time, model="mlp", target=95.0):
    metrics = {
        m: None
        for m in (
            "final_loss",
            "steps_to_target",
            "time_to_target_s",
            "samples_per_s",
            "compile_s",
            "train_s",
            "eval_s",
            "wall_s",
        )
    }
    # the fixture's fastest-decile step times are its medians less 10%
    p10 = [0.9 * t for t in step_time]
    metrics.update(
        accuracy=stats.describe(accuracy), step_time_s=stats.describe(step_time), step_time_p10_s=stats.describe(p10)
    )
    seeds = list(range(len(accuracy)))
    return {
        "key": f"{name}@CPU",
        "name": name,
        "device": "CPU",
        "model": model,
        "category": "gate",
        "description": "",
        "config": {},
        "target": target,
        "seeds": seeds,
        "statuses": {"ok": len(seeds)},
        "targets_met": sum(a >= target for a in accuracy),
        "metrics": metrics,
        "assert_target": True,
        "budget": {},
        "budget_violations": [],
        "failures": [],
        "runs": [f"r{i}" for i in seeds],
    }


def summary(configs, machine=MACHINE, suite="gate"):
    doc = {
        "schema_version": schema.SCHEMA_VERSION,
        "kind": "summary",
        "suite": suite,
        "created_at": "2026-11-26T00:00:00Z",
        "machines": [machine],
        "n_runs": sum(len(c["seeds"]) for c in configs),
        "n_expected": sum(len(c["seeds"]) for c in configs),
        "n_failed": 0,
        "configs": configs,
    }
    assert schema.errors(doc, "summary") == []
    return doc


BASE = summary(
    [
        config_entry("mlp", [97.1, 97.3, 97.2], [0.0300, 0.0310, 0.0305]),
        config_entry("cnn", [98.6, 98.7, 98.5], [0.200, 0.204, 0.198], model="cnn", target=98.0),
    ]
)
RULES = [rules.parse_rule(r) for r in rules.DEFAULT_RULES]


def run(current, baseline=BASE, rules=RULES, **kw):
    return compare.compare(current, baseline, rules, current_path="cur", baseline_path="base", **kw)


def verdicts(doc):
    return {(r["config"], r["metric"]): r["verdict"] for r in doc["rows"]}


def test_identical_results_pass():
    doc = run(copy.deepcopy(BASE))
    assert doc["verdict"] == "pass" and set(verdicts(doc).values()) == {"pass"}
    assert schema.errors(doc, "comparison") == []


def test_noise_of_a_few_percent_passes():
    noisy = summary(
        [
            config_entry("mlp", [97.2, 97.1, 97.3], [0.0312, 0.0301, 0.0318]),
            config_entry("cnn", [98.7, 98.5, 98.6], [0.206, 0.199, 0.203], model="cnn", target=98.0),
        ]
    )
    assert run(noisy)["verdict"] == "pass"


def test_a_20_percent_slowdown_is_caught():
    slow = summary([config_entry("mlp", [97.1, 97.3, 97.2], [0.0360, 0.0372, 0.0366]), BASE["configs"][1]])
    doc = run(slow)
    assert verdicts(doc)[("mlp", "step_time_p10_s")] == "regression" and doc["verdict"] == "regression"
    assert "20.0% worse > 10% and significant" in " ".join(doc["problems"])


def test_a_large_but_noisy_slowdown_is_not_significant():
    noisy = summary([config_entry("mlp", [97.1, 97.3, 97.2], [0.030, 0.060, 0.031]), BASE["configs"][1]])
    row = next(r for r in run(noisy)["rows"] if r["metric"] == "step_time_p10_s" and r["config"] == "mlp")
    assert row["verdict"] == "pass" and "not significant" in row["reason"]


def test_a_one_point_accuracy_drop_is_caught():
    worse = summary(
        [BASE["configs"][0], config_entry("cnn", [99.0, 99.0, 99.1], [0.2, 0.204, 0.198], model="cnn", target=98.0)]
    )
    worse["configs"][0] = config_entry("mlp", [96.1, 96.3, 96.2], [0.0300, 0.0310, 0.0305])
    doc = run(worse)
    assert verdicts(doc)[("mlp", "accuracy")] == "regression"
    assert verdicts(doc)[("cnn", "accuracy")] == "improvement"


def test_missed_target_fails_even_without_a_drop():
    low = summary([config_entry("mlp", [94.0, 94.1, 94.2], [0.03, 0.031, 0.0305])])
    doc = run(low, baseline=summary([config_entry("mlp", [94.0, 94.1, 94.2], [0.03, 0.031, 0.0305])]))
    assert doc["verdict"] == "regression" and "target 95% met by 0 of 3" in doc["problems"][0]


def test_other_machine_is_reported_and_can_be_fatal():
    other = copy.deepcopy(BASE)
    other["machines"] = [{**MACHINE, "cpu": "Other CPU"}]
    assert any("cpu" in d for d in run(other)["env_differences"])
    with pytest.raises(HarnessError, match="environment differs"):
        run(other, strict_env=True)


@pytest.mark.parametrize(
    "text, message",
    [
        ("step_time_s:+10", "expected METRIC"),
        ("speed:+10%", "unknown metric 'speed'"),
        ("step_time_s:-1pp", "points \\(pp\\) apply to accuracy only"),
        ("accuracy", "expected METRIC"),
    ],
)
def test_malformed_rules(text, message):
    with pytest.raises(HarnessError, match=message):
        rules.parse_rule(text)


def test_rule_parsing():
    rule = rules.parse_rule(" accuracy : -0.3pp ")
    assert (rule.metric, rule.bad_sign, rule.amount, rule.unit) == ("accuracy", -1, 0.3, "pp")


def test_cli_compare_formats_and_exit_codes(tmp_path):
    root = tmp_path / "baselines"
    base_path = tmp_path / "base.json"
    base_path.write_text(json.dumps(BASE))
    runner = CliRunner()
    missing = runner.invoke(cli, ["compare", str(base_path), "--root", str(root)])
    assert missing.exit_code == 2 and "no baseline at" in missing.output and "baseline save" in missing.output
    allowed = runner.invoke(cli, ["compare", str(base_path), "--root", str(root), "--allow-missing"])
    assert allowed.exit_code == 0
    saved = runner.invoke(cli, ["baseline", "save", str(base_path), "--root", str(root)])
    assert saved.exit_code == 0 and (root / baselines.device_key(MACHINE) / "gate.json").exists()
    ok = runner.invoke(
        cli, ["compare", str(base_path), "--root", str(root), "--format", "json", "-o", str(tmp_path / "c.json")]
    )
    assert ok.exit_code == 0 and json.loads(ok.output)["verdict"] == "pass"
    assert schema.errors(json.loads((tmp_path / "c.json").read_text()), "comparison") == []
    slow = copy.deepcopy(BASE)
    slow["configs"][0] = config_entry("mlp", [97.1, 97.3, 97.2], [0.0360, 0.0372, 0.0366])
    (tmp_path / "slow.json").write_text(json.dumps(slow))
    md = runner.invoke(cli, ["compare", str(tmp_path / "slow.json"), "--root", str(root), "--format", "markdown"])
    assert md.exit_code == 1 and "**REGRESSION**" in md.output and "| mlp | step_time_p10_s |" in md.output
    (tmp_path / "newer.json").write_text(json.dumps({**BASE, "schema_version": schema.SCHEMA_VERSION + 1}))
    newer = runner.invoke(cli, ["compare", str(tmp_path / "newer.json"), "--root", str(root)])
    assert newer.exit_code == 2 and "newer than this mnist-bench understands" in newer.output
    listing = runner.invoke(cli, ["baseline", "list", "--root", str(root)])
    assert "suite gate, 2 configs, 6 runs" in listing.output


def test_fewer_seeds_than_the_baseline_is_said_not_hidden():
    partial = summary([config_entry("mlp", [97.1, 97.3], [0.0300, 0.0310]), BASE["configs"][1]])
    doc = run(partial)
    assert doc["warnings"] == [
        "mlp: seeds [0, 1] vs the baseline's [0, 1, 2]; rerun the same seeds for a like-for-like comparison"
    ]
    assert schema.errors(doc, "comparison") == []
    assert "WARNING: mlp: seeds [0, 1]" in documents.render(doc, "text")
    assert "> :warning: mlp: seeds [0, 1]" in documents.render(doc, "markdown")
    assert run(copy.deepcopy(BASE))["warnings"] == []


def test_a_single_seed_borrows_the_baselines_spread_and_its_timing_is_flagged_untested():
    # one seed 0.6 points below a baseline whose seeds spread by 0.38: noise, not a regression
    base = summary([config_entry("mlp", [96.69, 95.95, 96.13], [0.081, 0.082, 0.080])])
    one = summary([config_entry("mlp", [95.66], [0.30])])
    doc = run(one, baseline=base)
    assert verdicts(doc)[("mlp", "accuracy")] == "pass"
    assert verdicts(doc)[("mlp", "step_time_p10_s")] == "info"
    assert any("mlp step_time_p10_s not tested: +" in w and "needs >= 2 repeats" in w for w in doc["warnings"])
    far = run(summary([config_entry("mlp", [94.9], [0.081])]), baseline=base)
    assert verdicts(far)[("mlp", "accuracy")] == "regression"


def test_environment_differences_are_one_line_each():
    other = copy.deepcopy(BASE)
    other["machines"] = [{**MACHINE, "tinygrad_env": {"BEAM": "2", "NOOPT": "1"}}]
    (line,) = run(other)["env_differences"]
    assert line == 'tinygrad_env: baseline {} vs current {"BEAM": "2", "NOOPT": "1"}'


def test_allow_missing_still_checks_targets_and_failures(tmp_path):
    low = summary([config_entry("mlp", [94.0, 94.1, 94.2], [0.03, 0.031, 0.0305])])
    (tmp_path / "low.json").write_text(json.dumps(low))
    args = ["compare", str(tmp_path / "low.json"), "--root", str(tmp_path / "none"), "--allow-missing"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "FAIL mlp: target 95% met by 0 of 3 seed(s)" in result.output and "verdict: REGRESSION" in result.output


def test_one_config_on_two_devices_is_refused_not_half_compared():
    on_two = copy.deepcopy(BASE)
    second = {**copy.deepcopy(BASE["configs"][0]), "device": "CUDA:1", "key": "mlp@CUDA:1"}
    on_two["configs"].append(second)
    with pytest.raises(HarnessError, match=r"the current has mlp on more than one device \(CPU, CUDA:1\)"):
        run(on_two)


def test_values_read_as_plain_numbers():
    v = {"mean": 1.4308907, "std": 0.068005, "n": 3}
    assert format_stat(v, "step_time_s") == "1431 ± 68 ms (n=3)"
    mlp = {"mean": 0.0814795, "std": 0.0023475, "n": 3}
    assert format_stat(mlp, "step_time_s") == "81.5 ± 2.3 ms (n=3)"
    assert format_stat({"mean": 98.65, "std": 0.044, "n": 3}, "accuracy") == "98.65 ± 0.04% (n=3)"


def _counts(*values: float) -> dict:
    return stats.describe(list(values))


@pytest.mark.parametrize(
    ("base", "cur", "verdict", "words"),
    [
        ((1.0e9, 1.0e9), (1.0e9, 1.0e9), "pass", "identical (1,000,000,000)"),
        ((1.0e9, 1.0e9), (1.0e9 + 4,), "regression", "1,000,000,000 -> 1,000,000,004"),
        ((55.0,), (54.0, 54.0), "improvement", "55 -> 54 (-1.82%)"),
        ((55.0, 56.0), (55.0,), "info", "not deterministic"),
    ],
)
def test_a_percent_rule_on_a_cost_count_is_exact(base, cur, verdict, words):
    """No significance test on deterministic counts: one added FLOP is a regression under +0%."""
    rule = rules.parse_rule("flops_per_step:+0%")
    got, reason, p = rule.check(_counts(*base), _counts(*cur))
    assert (got, p) == (verdict, None)
    assert words in reason


def test_a_cost_count_within_its_tolerance_passes_but_is_named():
    got, reason, _ = rules.parse_rule("kernels_per_step:+5%").check(_counts(100.0), _counts(104.0))
    assert got == "pass" and "100 -> 104 (+4%): changed" in reason


def test_cost_counts_the_baseline_did_not_record_make_no_row_but_a_count_gone_missing_is_named():
    rule = [rules.parse_rule("flops_per_step:+0%")]
    assert rules.judge("cfg", {}, {}, rule) == ([], [], [])
    assert rules.judge("cfg", {}, {"flops_per_step": _counts(1.0)}, rule) == ([], [], [])  # a baseline made before
    rows, _, untested = rules.judge("cfg", {"flops_per_step": _counts(1.0)}, {}, rule)
    assert rows[0]["verdict"] == "info" and untested


def test_intervals_of_positive_quantities_stay_above_zero():
    wide = stats.describe([2.0, 3.0, 40.0], positive=True)
    assert wide["ci95"][0] > 0 and wide["ci95"][0] < wide["mean"] < wide["ci95"][1]
    assert stats.describe([2.0, 3.0, 40.0])["ci95"][0] < 0  # the plain t-interval would

    assert {name for name, m in METRICS.items() if not m.positive} == {"accuracy"}


# --- a hosted fleet: mixed CPUs, numerics by hash ----------------------------------------------------------

FLEET = [  # what GitHub's hosted runners report; all three have AVX2 + FMA (numerics class x86-64-v3)
    {**MACHINE, "device": "CL", "cpu": "AMD EPYC 7763 64-Core Processor", "isa": "x86-64-v3"},
    {**MACHINE, "device": "CL", "cpu": "AMD EPYC 9V74 80-Core Processor", "isa": "x86-64-v3"},
    {**MACHINE, "device": "CL", "cpu": "Intel(R) Xeon(R) Platinum 8370C CPU @ 2.80GHz", "isa": "x86-64-v3"},
]


def _with_weights(doc, machines, weights=("a", "b", "c")):
    doc = copy.deepcopy(doc)
    doc["machines"] = machines
    for c in doc["configs"]:
        c["weights"] = {str(s): f"{weights[s]}-{c['name']}" for s in c["seeds"]}
    return doc


def test_shards_on_three_cpu_models_share_one_baseline_key_and_gate_accuracy_not_clocks():
    base = _with_weights(BASE, [FLEET[0]])
    current = _with_weights(BASE, FLEET)
    assert baselines.summary_device_key(current) == baselines.summary_device_key(base) == "CL-cpu"
    doc = run(current, baseline=base)
    assert doc["verdict"] == "pass"
    assert verdicts(doc)[("mlp", "step_time_p10_s")] == "info"  # shown, never gated across chips
    assert any("wall-clock not gated" in w for w in doc["warnings"])
    worse = copy.deepcopy(current)
    worse["configs"][0] = _with_weights(
        summary([config_entry("mlp", [96.1, 96.3, 96.2], [9.0, 9.1, 9.2])]), FLEET, ("x", "y", "z")
    )["configs"][0]
    doc = run(worse, baseline=base)
    assert verdicts(doc)[("mlp", "accuracy")] == "regression" and doc["verdict"] == "regression"
    assert verdicts(doc)[("mlp", "step_time_p10_s")] == "info"  # a 300x slower step on other chips: not a verdict
    assert "mlp: numerics changed: final weights differ from the baseline's" in doc["numerics"]


def test_the_same_bits_as_the_baseline_pass_as_bit_identical_without_statistics():
    base = _with_weights(BASE, [FLEET[1]])
    noisy = _with_weights(  # a one-point drop that only a broken hash check could pass
        summary([config_entry("mlp", [96.1, 96.3, 96.2], [0.03, 0.031, 0.0305]), BASE["configs"][1]]), FLEET
    )
    doc = run(noisy, baseline=base)
    row = next(r for r in doc["rows"] if r["metric"] == "accuracy" and r["config"] == "mlp")
    assert row["verdict"] == "pass" and "bit-identical" in row["reason"]
    assert doc["numerics"] == [f"{name}: {rules.BIT_IDENTICAL}" for name in ("cnn", "mlp")]
    assert "numerics: mlp: bit-identical" in documents.render(doc, "text")


@pytest.mark.parametrize(
    "change",
    [
        {"isa": "x86-64-v2"},  # no FMA: other bits are expected, so a hash says nothing
        {"tinygrad": "0.13.0"},
        {"tinygrad_env": {"BEAM": "1"}},
        {"isa": None},  # a run from before ISA classes were recorded
    ],
)
def test_hashes_are_not_compared_where_the_numerics_may_legitimately_differ(change):
    base = _with_weights(BASE, [FLEET[0]])
    current = _with_weights(BASE, [{**FLEET[1], **change}], ("x", "y", "z"))
    doc = run(current, baseline=base)
    assert doc["numerics"] == [] and doc["verdict"] == "pass"


def test_one_chip_on_both_sides_gates_the_clock():
    base = _with_weights(BASE, [FLEET[2]])
    slow = _with_weights(
        summary([config_entry("mlp", [97.1, 97.3, 97.2], [0.0360, 0.0372, 0.0366]), BASE["configs"][1]]), [FLEET[2]]
    )
    assert verdicts(run(slow, baseline=base))[("mlp", "step_time_p10_s")] == "regression"


# --- any two sources, rules that add to the defaults, partial suites (issue 29) ---------------------------

REPO = Path(__file__).resolve().parent.parent
GATE_RUNS = REPO / "results" / "gate" / "runs"


def gate_record(model="mlp", seed=0, **changes):
    """A committed gate run record, as a single run (`mnist-bench mlp`) unless `suite` is given."""
    record = json.loads((GATE_RUNS / f"{model}-default__CPU__seed{seed}.json").read_text())
    record = {k: v for k, v in record.items() if k != "suite"}
    return {**record, **changes}


def write(folder, name, doc):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(doc))
    return folder / name


def test_given_rules_replace_their_metrics_defaults_and_keep_the_others():
    parsed = rules.resolve(["accuracy:-1pp"])
    assert [r.text for r in parsed] == ["accuracy:-1pp", *rules.DEFAULT_RULES[1:]]
    extra = rules.resolve(["step_time_s:+5%"])
    assert [r.text for r in extra] == [*rules.DEFAULT_RULES, "step_time_s:+5%"]
    assert [r.text for r in rules.resolve(["accuracy:-1pp"], only=True)] == ["accuracy:-1pp"]
    with pytest.raises(HarnessError, match="--only-rules needs at least one --rule"):
        rules.resolve([], only=True)


def test_cli_rule_keeps_the_default_step_time_and_count_rows(tmp_path):
    path = write(tmp_path, "base.json", BASE)
    args = ["compare", str(path), str(path), "--format", "json"]
    given = json.loads(CliRunner().invoke(cli, [*args, "--rule", "accuracy:-1pp"]).output)
    assert given["rules"][:2] == ["accuracy:-1pp", "step_time_p10_s:+10%"]
    assert {r["metric"] for r in given["rows"]} == {"accuracy", "step_time_p10_s"}
    only = json.loads(CliRunner().invoke(cli, [*args, "--rule", "accuracy:-1pp", "--only-rules"]).output)
    assert only["rules"] == ["accuracy:-1pp"] and {r["metric"] for r in only["rows"]} == {"accuracy"}


def test_a_config_on_one_side_only_is_a_warning_and_no_common_config_an_error():
    doc = run(summary([BASE["configs"][0]]))
    assert doc["verdict"] == "pass" and {r["config"] for r in doc["rows"]} == {"mlp"}
    assert "cnn: only in the baseline, not compared" in doc["warnings"]
    other = summary([config_entry("other", [97.1, 97.3], [0.03, 0.031])])
    with pytest.raises(HarnessError, match="no config in common: the current results have other; the baseline has"):
        run(other)


def test_other_suites_are_compared_by_config_name_with_a_warning():
    doc = run(summary(BASE["configs"], suite="smoke"))
    assert doc["verdict"] == "pass"
    assert doc["warnings"][0] == "the current results are of smoke, the baseline of gate: configs are matched by name"


def test_only_compares_the_matching_configs_of_both_sides(tmp_path):
    path = write(tmp_path, "base.json", BASE)
    result = CliRunner().invoke(cli, ["compare", str(path), str(path), "--only", "ml*", "--format", "json"])
    doc = json.loads(result.output)
    assert result.exit_code == 0 and {r["config"] for r in doc["rows"]} == {"mlp"} and doc["warnings"] == []
    none = CliRunner().invoke(cli, ["compare", str(path), str(path), "--only", "x*"])
    assert none.exit_code == 2 and "--only x* matches no run in the current results; runs in the current" in (
        none.output
    )


def test_two_single_runs_compare_as_a_plain_difference(tmp_path):
    a = write(tmp_path, "a.json", gate_record(seed=0))
    b = write(tmp_path, "b.json", gate_record(seed=1, run_id="other"))
    result = CliRunner().invoke(cli, ["compare", str(a), str(b)])
    assert result.exit_code == 0, result.output
    assert f"current {a} against baseline {b}" in result.output
    doc = compare.from_paths(a, baseline=str(b))
    assert doc["suite"] == summary_mod.SINGLE_RUNS and {r["config"] for r in doc["rows"]} == {"mlp"}
    accuracy, p10 = (next(r for r in doc["rows"] if r["metric"] == m) for m in ("accuracy", "step_time_p10_s"))
    assert accuracy["verdict"] == p10["verdict"] == "info"
    assert rules.PLAIN in accuracy["reason"] and accuracy["reason"].startswith("accuracy:-0.3pp: +0.74 pp")
    assert not [w for w in doc["warnings"] if "not tested" in w]  # one warning says why, not one per row
    assert any("plain difference` have one value on each side" in w for w in doc["warnings"])


def test_single_runs_that_differ_in_a_setting_are_paired_and_the_difference_named(tmp_path):
    a = write(tmp_path, "a.json", gate_record(seed=0))
    steps = gate_record(seed=0, run_id="b")
    steps["config"] = {**steps["config"], "steps": 20}
    b = write(tmp_path, "b.json", steps)
    doc = compare.from_paths(a, baseline=str(b))
    assert "mlp: compared with the baseline's mlp-steps=20" in doc["warnings"]
    assert "mlp: settings differ from the baseline's: steps 20 -> 200" in doc["warnings"]
    assert doc["numerics"] == []  # other settings compute other bits: no "numerics changed"


def test_a_folder_of_single_and_suite_runs_is_one_side(tmp_path):
    """results/runs holds both: configs are grouped by name, single runs named by their settings."""
    folder = tmp_path / "runs"
    write(folder, "single.json", gate_record(seed=0))
    suite_run = json.loads((GATE_RUNS / "cnn-default__CPU__seed0.json").read_text())
    write(folder, "suite.json", suite_run)
    side = baselines.load_side(folder)
    assert side["suite"] == "gate + single-runs"
    assert [c["name"] for c in side["configs"]] == ["cnn-default", "mlp"]
    with pytest.raises(HarnessError, match=r"`auto` finds one suite's baseline; .*`mnist-bench compare A B`"):
        compare.from_paths(folder)


def test_repeats_of_a_seed_are_one_seed_for_accuracy_and_every_run_for_the_clock(tmp_path):
    folder = tmp_path / "repeats"
    for i, p10 in enumerate((0.075, 0.076, 0.077)):
        record = gate_record(seed=0, run_id=f"r{i}")
        record["timings"] = {**record["timings"], "step_time_s": {**record["timings"]["step_time_s"], "p10": p10}}
        write(folder, f"r{i}.json", record)
    (config,) = baselines.load_side(folder)["configs"]
    assert config["seeds"] == [0, 0, 0] and summary_mod.repeats(config) == "3 runs of 1 seed: repeats, not seeds"
    assert config["metrics"]["accuracy"]["n"] == 1 and config["metrics"]["step_time_p10_s"]["n"] == 3
    assert config["weights"] == {"0": gate_record()["metrics"]["weights_sha256"]}
    doc = compare.from_paths(folder, baseline=str(folder))
    assert (
        "mlp: the current has 3 runs of 1 seed: repeats, not seeds (accuracy is over seeds, times over runs)"
        in (doc["warnings"])
    )
    p10 = next(r for r in doc["rows"] if r["metric"] == "step_time_p10_s")
    assert p10["verdict"] == "pass" and p10["p_value"] is not None  # tested: three timings on each side


def test_repeats_whose_weights_differ_keep_no_hash():
    a, b = gate_record(seed=0, run_id="a"), gate_record(seed=0, run_id="b")
    b["metrics"] = {**b["metrics"], "weights_sha256": "other", "accuracy": 96.0}
    (config,) = summary_mod.of_runs([a, b], "none")["configs"]
    assert config["weights"] == {"0": None}
    assert config["metrics"]["accuracy"]["values"] == [pytest.approx((96.69 + 96.0) / 2)]


def test_one_name_with_two_settings_is_refused_not_pooled():
    a = gate_record(seed=0, suite={**json.loads((GATE_RUNS / "mlp-default__CPU__seed0.json").read_text())["suite"]})
    b = {**a, "run_id": "b", "config": {**a["config"], "seed": 1, "steps": 20}}
    with pytest.raises(HarnessError, match=r"mlp-default@CPU: runs with different settings share this name \(steps"):
        summary_mod.of_runs([a, b], "none")


def test_one_run_read_twice_is_one_run_not_a_repeat(tmp_path):
    folder = tmp_path / "copies"
    write(folder, "a.json", gate_record(seed=0))
    write(folder / "again", "a.json", gate_record(seed=0))
    (config,) = baselines.load_side(folder)["configs"]
    assert config["seeds"] == [0] and summary_mod.repeats(config) is None


def test_the_baseline_is_given_once(tmp_path):
    path = write(tmp_path, "base.json", BASE)
    both = CliRunner().invoke(cli, ["compare", str(path), str(path), "--baseline", str(path)])
    assert both.exit_code == 2 and "give the baseline once: as BASELINE or as --baseline" in both.output
    option = CliRunner().invoke(cli, ["compare", str(path), "--baseline", str(path)])
    assert option.exit_code == 0 and f"current {path} against baseline {path}" in option.output
    missing = CliRunner().invoke(cli, ["compare", str(path), str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "nope.json: no such file or folder" in missing.output
