from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import report
from harness.base import stats
from harness.base.errors import HarnessError
from harness.report import analysis, plots

REPO = Path(__file__).resolve().parent.parent


def cfg(name, lr, bs, steps, accuracy, model="mlp"):
    metrics = {
        k: None
        for k in (
            "final_loss",
            "steps_to_target",
            "time_to_target_s",
            "step_time_s",
            "samples_per_s",
            "compile_s",
            "eval_s",
            "wall_s",
        )
    }
    metrics.update(accuracy=stats.describe(accuracy), train_s=stats.describe([10.0] * len(accuracy)))
    return {
        "name": name,
        "model": model,
        "category": "c",
        "description": name,
        "seeds": list(range(len(accuracy))),
        "targets_met": 0,
        "config": {
            "lr": lr,
            "batch_size": bs,
            "steps": steps,
            "seed": 0,
            "optimizer": "adam",
            "eval_every": 50,
            "log_every": 10,
            "model_config": {"activation": "relu"},
        },
        "metrics": metrics,
    }


def test_overlapping_intervals_read_no_significant_difference():
    a, b = cfg("a", 1e-3, 128, 100, [94.5, 94.7, 94.6]), cfg("b", 3e-3, 128, 100, [94.6, 94.4, 94.8])
    words, verdict = analysis.compare_accuracy(a, b)
    assert words.startswith("no significant difference") and verdict == "pass"


def test_a_clear_difference_is_named_with_its_size():
    a, b = cfg("a", 1e-3, 128, 100, [94.5, 94.6, 94.55]), cfg("b", 1e-3, 128, 1000, [98.7, 98.8, 98.75])
    words, verdict = analysis.compare_accuracy(a, b)
    assert words.startswith("better by 4.20 pp") and verdict == "improvement"


def test_one_factor_pairs_find_single_setting_changes():
    configs = [
        cfg("base", 1e-3, 128, 100, [1]),
        cfg("lr", 3e-3, 128, 100, [1]),
        cfg("bs", 1e-3, 64, 100, [1]),
        cfg("combo", 2e-3, 256, 500, [1]),
    ]
    assert analysis.varying_axes(configs) == ["batch_size", "lr", "steps"]
    assert [(a["name"], b["name"]) for a, b in analysis.one_factor_pairs(configs, "lr")] == [("base", "lr")]
    assert [(a["name"], b["name"]) for a, b in analysis.one_factor_pairs(configs, "batch_size")] == [("bs", "base")]
    assert analysis.one_factor_pairs(configs, "steps") == []


def test_pareto_front():
    assert plots.pareto_front([(1, 90), (2, 95), (3, 94), (4, 99), (0.5, 80)]) == [4, 0, 1, 3]


def test_labels_of_a_crowded_cluster_overlap_nothing_and_stay_inside():
    anchors = [(100 + 3 * i, 200 + (i % 3)) for i in range(8)] + [(395, 50), (5, 50)]
    widths, height, edges = [40.0] * len(anchors), 10.0, (0.0, 400.0)
    spots = plots.place_labels(anchors, widths, height, edges)
    boxes = [(x, y, x + w, y + height) for (x, y), w in zip(spots, widths, strict=True)]
    markers = [(x - height / 2, y - height / 2, x + height / 2, y + height / 2) for x, y in anchors]
    for i, a in enumerate(boxes):
        assert edges[0] <= a[0] and a[2] <= edges[1]
        for b in boxes[i + 1 :] + markers:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_plain_log_ticks_sit_on_the_values_run():
    plt = plots._pyplot()
    fig, ax = plt.subplots()
    ax.plot([64, 128, 256], [1, 2, 3])
    ax.set_xscale("log")
    plots._plain_log_ticks(ax.xaxis, [64, 128, 256])
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["64", "128", "256"]
    plt.close(fig)


def test_report_from_real_results_with_plots(smoke_run, tmp_path):
    out_dir, _, _ = smoke_run
    (tmp_path / "unrelated.json").write_text(json.dumps({"hello": "world"}))
    path, notes = report.write(
        [out_dir, tmp_path / "unrelated.json"], tmp_path / "r" / "report.md", plots_dir=tmp_path / "r" / "plots"
    )
    text = path.read_text()
    for heading in (
        "## Executive summary",
        "## MLP",
        "## CNN",
        "### Configurations tested",
        "## MLP vs CNN",
        "## Environment",
        "![mlp loss](plots/mlp-loss.png)",
    ):
        assert heading in text
    assert "MLP, 3 steps of 32" in text and "n/a" not in text.split("## MLP vs CNN")[0].split("## MLP")[1]
    assert any("unrelated.json" in n for n in notes)
    for stem in ("pareto", "mlp-loss", "cnn-loss"):
        assert (tmp_path / "r" / "plots" / f"{stem}.png").stat().st_size > 10_000
        assert (tmp_path / "r" / "plots" / f"{stem}.svg").exists()
    report.write([out_dir], tmp_path / "again" / "report.md", plots_dir=tmp_path / "again" / "plots")
    svg = (tmp_path / "r" / "plots" / "pareto.svg").read_text()
    assert svg == (tmp_path / "again" / "plots" / "pareto.svg").read_text() and "<dc:date>" not in svg


def test_report_without_matplotlib_says_plots_were_skipped(smoke_run, tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "available", lambda: False)
    path, notes = report.write([smoke_run[0]], tmp_path / "report.md", plots_dir=tmp_path / "plots")
    assert "plots skipped" in path.read_text() and not (tmp_path / "plots").exists()
    assert any("plots skipped" in n for n in notes)


def test_pytest_benchmark_json_is_shown(tmp_path):
    doc = {
        "machine_info": {"cpu_model": "X", "tinygrad": "0.14.0"},
        "benchmarks": [
            {
                "name": "test_train_step[CPU-mlp]",
                "extra_info": {"device": "CPU", "model": "mlp"},
                "stats": {"median": 0.031, "iqr": 0.002, "rounds": 40},
            }
        ],
    }
    (tmp_path / "0001_x.json").write_text(json.dumps(doc))
    path, _ = report.write([tmp_path / "0001_x.json"], tmp_path / "report.md")
    assert "| 0001_x.json | test_train_step[CPU-mlp] | 31.00 | 2.00 | 40 | CPU | model=mlp |" in path.read_text()


def test_nothing_to_report_is_a_clear_error(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(HarnessError, match="no run results found"):
        report.write([tmp_path], tmp_path / "report.md")
    with pytest.raises(HarnessError, match="no such file or folder"):
        report.write([tmp_path / "missing"], tmp_path / "report.md")


def test_identical_configs_make_no_one_factor_pair_and_multi_changes_are_read_against_the_default():
    base = cfg("default", 1e-3, 128, 100, [96.0, 96.2])
    base["category"] = "default"
    twin = cfg("twin", 1e-3, 128, 100, [96.1, 96.3])  # same settings under another name
    bigger = cfg("bs", 1e-3, 256, 100, [96.5, 96.6])
    both = cfg("both", 3e-3, 256, 100, [95.0, 95.1])
    configs = [base, twin, bigger, both]
    assert analysis.one_factor_pairs(configs, "lr") == [(bigger, both)]
    assert [(a["name"], b["name"]) for a, b in analysis.one_factor_pairs(configs, "batch_size")] == [
        ("default", "bs"),
        ("twin", "bs"),
    ]
    lines = report.multi_change_section(configs)
    assert len([line for line in lines if line.startswith("- ")]) == 1
    assert "both (batch_size 128 -> 256, lr 0.001 -> 0.003)" in lines[2]


def test_settings_name_every_change_from_the_model_defaults():
    plain = cfg("plain", 2e-3, 256, 200, [96.0])
    assert report.settings_text(plain) == "LR=0.002, BS=256, steps=200"
    smoothed = cfg("smooth", 2e-3, 256, 200, [97.4])
    smoothed["config"].update(label_smoothing=0.1, optimizer="lamb", momentum=0.9)
    smoothed["config"]["model_config"] = {"activation": "relu", "hidden": [1024, 1024]}
    assert (
        report.settings_text(smoothed)
        == "LR=0.002, BS=256, steps=200, optimizer=lamb, label_smoothing=0.1, hidden=1024x1024"
    )
    cnn = cfg("cnn", 2e-3, 128, 200, [98.7], model="cnn")
    cnn["config"].update(schedule="onecycle", momentum=0.0)
    assert report.settings_text(cnn) == "LR=0.002, BS=128, steps=200, momentum=0"  # onecycle is the CNN's default


def test_config_table_names_each_config():
    lines = report.config_table([cfg("mlp-activation/activation=gelu", 2e-3, 256, 200, [96.0, 95.9])])
    assert lines[0].startswith("| # | config | category |")
    assert lines[2].startswith("| 1 | `mlp-activation/activation=gelu` | c |")


def test_repeats_of_one_seed_are_counted_as_one_seed_and_said_so(tmp_path):
    """Three default `mlp` runs, all seed 0: one seed, not three; no interval from copies."""
    record = json.loads((REPO / "results/gate/runs/mlp-default__CPU__seed0.json").read_text())
    record = {k: v for k, v in record.items() if k != "suite"}
    for i in range(3):
        (tmp_path / f"r{i}.json").write_text(json.dumps({**record, "run_id": f"r{i}"}))
    text = report.write([tmp_path], tmp_path / "out" / "report.md")[0].read_text()
    row = next(line for line in text.splitlines() if line.startswith("| 1 | `mlp` |"))
    assert "| 1 (3 runs) | 96.69 | n/a |" in row and "3/3" in row
    assert (
        "- `mlp`: 3 runs of 1 seed: repeats, not seeds. Accuracy and the other results of the numerics are one "
        "value per seed (the mean of its runs, which computed identical weights: exact copies); times are over "
        "all 3 runs."
    ) in text
