"""BEAM kernel search: the width applied per run, the searched/cached counts in the record, warm-up, and
summaries that refuse to pool searched with unsearched runs. tinygrad's search itself is stubbed here,
except in the one real search of a tiny kernel at the end."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import documents
from harness.base.errors import HarnessError
from harness.cli import cli
from harness.documents import schema, summary
from harness.report import console
from harness.run import warmup
from harness.tg import env, kernel_search

REPO = Path(__file__).resolve().parent.parent
GATE_RUN = REPO / "results" / "gate" / "runs" / "mlp-default__CPU__seed0.json"


@pytest.fixture
def fake_search(monkeypatch):
    """tinygrad's search module with a stand-in `beam_search` that, like the real one, asks the cache first
    (through the module's `diskcache_get`) and stores its choice after searching."""
    from tinygrad.codegen.opt import search

    stored: dict[str, str] = {}

    def beam_search(key: str) -> str:
        if (found := search.diskcache_get("beam_search", key)) is not None:
            return found
        stored[key] = f"opts-{key}"
        return stored[key]

    def diskcache_get(table: str, key: str):
        return stored.get(key) if table == "beam_search" else "something else cached"

    monkeypatch.setattr(search, "beam_search", beam_search)
    monkeypatch.setattr(search, "diskcache_get", diskcache_get)
    return search


def test_searches_and_cache_hits_are_counted_apart(fake_search):
    with kernel_search.applied(1) as count:
        fake_search.diskcache_get("compile_clang", "x")  # another table's hit is not a search-cache hit
        for key in ("a", "b", "a", "c", "b"):
            fake_search.beam_search(key)
    assert (count.beam, count.searched, count.cached) == (1, 3, 2)
    assert count.search_s >= 0 and set(count.to_json()) == {"beam", "searched", "cached", "search_s"}


def test_the_hooks_are_removed_after_the_run(fake_search):
    before = fake_search.beam_search, fake_search.diskcache_get
    with kernel_search.applied(1):
        assert fake_search.beam_search is not before[0]
    assert (fake_search.beam_search, fake_search.diskcache_get) == before


def test_beam_applies_inside_the_run_only_and_is_recorded_as_a_setting(monkeypatch):
    from tinygrad.helpers import BEAM

    monkeypatch.delenv("BEAM", raising=False)
    with kernel_search.applied(2) as count:
        assert BEAM.value == 2 and count.beam == 2
        assert env.collect_tinygrad_env()["BEAM"] == "2"
        assert not env.determinism(env.collect_tinygrad_env())["known_deterministic"]
    assert BEAM.value == 0 and "BEAM" not in env.collect_tinygrad_env()
    with kernel_search.applied(None) as count:
        assert count.beam == 0 and count.to_json() == {"beam": 0, "searched": 0, "cached": 0, "search_s": 0.0}


def test_an_explicit_zero_overrides_the_beam_variable(monkeypatch):
    monkeypatch.setenv("BEAM", "3")  # set after tinygrad's import: what matters is the ContextVar
    with kernel_search.applied(0):
        assert "BEAM" not in env.collect_tinygrad_env()


def test_unknown_search_module_gives_unknown_counts_not_zero(monkeypatch):
    from tinygrad.codegen.opt import search

    monkeypatch.delattr(search, "beam_search")
    with kernel_search.applied(1) as count:
        pass
    assert count.to_json() == {"beam": 1, "searched": None, "cached": None, "search_s": None}
    assert "not counted" in console.kernel_search_text(count.to_json())


def test_tinygrad_still_has_what_the_counting_wraps():
    """The counting relies on these names; a tinygrad upgrade that moves them shows here first."""
    import inspect

    from tinygrad.codegen.opt import postrange, search

    assert callable(search.beam_search) and callable(search.diskcache_get)
    assert 'diskcache_get("beam_search"' in inspect.getsource(search.beam_search)
    # imported inside the function, so a wrapper set on the module is what runs
    assert "from tinygrad.codegen.opt.search import beam_search" in inspect.getsource(postrange.apply_opts)


def test_width_is_checked():
    with pytest.raises(HarnessError, match="between 0 and 16"):
        kernel_search.check_beam(99)
    result = CliRunner().invoke(cli, ["mlp", "--beam", "99"])
    assert result.exit_code == 2 and "--beam" in result.output


def _record(beam: int | None, seed: int = 0) -> dict:
    record = copy.deepcopy(documents.load(GATE_RUN, "run"))
    record["config"]["seed"] = seed
    record["run_id"] = f"run-{beam}-{seed}"
    if beam is not None:
        record["environment"]["kernel_search"] = {"beam": beam, "searched": 0, "cached": 38, "search_s": 0.0}
        if beam:
            record["environment"]["tinygrad_env"] = {"BEAM": str(beam)}
    return record


def test_a_record_with_kernel_search_is_schema_valid_and_older_ones_read_as_unsearched():
    assert schema.errors(_record(1), "run") == []
    assert kernel_search.record_beam(_record(None)) == 0 and kernel_search.record_beam(_record(2)) == 2
    old_with_variable = _record(None)
    old_with_variable["environment"]["tinygrad_env"] = {"BEAM": "1"}
    assert kernel_search.record_beam(old_with_variable) == 1


def test_summary_refuses_to_pool_searched_and_unsearched_seeds():
    with pytest.raises(HarnessError, match=r"different BEAM widths \(0, 1; 0 = no kernel search\)"):
        summary.build("gate", [_record(0, 0), _record(1, 1)])
    doc = summary.build("gate", [_record(1, 0), _record(1, 1)])
    assert doc["machines"][0]["tinygrad_env"] == {"BEAM": "1"}


def test_compare_warns_when_one_side_searched():
    searched = summary.build("gate", [_record(1, 0)])
    plain = summary.build("gate", [_record(0, 0)])
    (line,) = summary.env_differences(plain["machines"], searched["machines"])
    assert line == 'tinygrad_env: baseline {} vs current {"BEAM": "1"}'


def test_a_suite_folder_pools_only_runs_of_the_same_width(tmp_path):
    plain, searched = _record(0, 1), _record(1, 0)
    documents.write_json_atomic(tmp_path / "plain.json", plain)
    doc, _ = summary.write_for_suite("gate", {summary.record_key(searched)}, [searched], tmp_path)
    assert doc["n_runs"] == 1 and doc["configs"][0]["seeds"] == [0]


def test_resume_reruns_a_result_of_another_width(tmp_path, monkeypatch):
    from harness.documents import suites
    from harness.run import runner

    monkeypatch.delenv("BEAM", raising=False)
    (planned,) = [p for p in suites.expand(suites.load("gate"), ["CPU"]) if p.key == "mlp-default@CPU#seed0"]
    record = _record(None)
    record["config"] = planned.spec.to_json()
    path = tmp_path / planned.filename
    documents.write_json_atomic(path, record)
    assert runner.existing_result(path, planned) is not None
    assert runner.existing_result(path, planned, beam=0) is not None
    assert runner.existing_result(path, planned, beam=1) is None


def test_warmup_passes_the_width_and_reports_searches(monkeypatch):
    from harness.run import bench

    seen = []

    def fake_run(request, log=None):
        seen.append((request.spec.model, request.device, request.beam, request.out_dir))
        ks = {"beam": request.beam or 0, "searched": 12, "cached": 3, "search_s": 41.5}
        return {
            "environment": {"compile_cache": {"warm": True, "path": "/c.db"}, "kernel_search": ks},
            "timings": {"compile_s": 44.0, "wall_s": 50.2},
        }, None

    monkeypatch.setattr(bench, "run", fake_run)
    monkeypatch.setattr(warmup.runner, "resolve_devices", lambda names: list(names) or ["CPU"])
    lines = []
    done = warmup.run(["CPU", "CL"], models=("mlp",), beam=1, on_done=lambda w: lines.append(console.warmed_line(w)))
    assert seen == [("mlp", "CPU", 1, None), ("mlp", "CL", 1, None)]
    assert [w.device for w in done] == ["CPU", "CL"]
    assert lines[0] == (
        "mlp on CPU: first steps 44.0 s (compile cache was warm); BEAM=1: 12 kernel(s) searched in 41.5 s, "
        "3 from the search cache; 50.2 s in all; cache /c.db"
    )


def test_cli_warmup_and_run_take_beam(monkeypatch):
    from harness.run import warmup as warm

    calls = {}

    def fake_warm(devices, data_dir, *, models, beam, log, on_done):
        calls.update(devices=devices, models=models, beam=beam)
        return []

    monkeypatch.setattr(warm, "run", fake_warm)
    result = CliRunner().invoke(cli, ["warmup", "--model", "mlp", "--beam", "1", "--device", "CPU"])
    assert result.exit_code == 0, result.output
    assert calls == {"devices": ("CPU",), "models": ("mlp",), "beam": 1}
    for command in (["warmup"], ["mlp"], ["cnn"], ["suite", "run"]):
        help_text = CliRunner().invoke(cli, [*command, "--help"]).output
        assert "--beam" in help_text and "default: the BEAM variable" in " ".join(help_text.split())


SEARCH_A_TINY_KERNEL = """
import json
from harness.tg import env, kernel_search
env.use_cpu_keyed_cache()
from tinygrad import Tensor
x = Tensor([float(i) for i in range(64)], device="CPU").realize()
with kernel_search.applied(1) as count:
    (x * 2 + 1).realize()
print(json.dumps(count.to_json()))
"""


def test_a_real_search_is_counted_then_served_from_the_cache(tmp_path):
    """Two processes on one fresh cache database: the first searches the tiny kernel (about 2 s here), the
    second reuses it; the one real BEAM search of the fast tests."""
    environ = {k: v for k, v in os.environ.items() if k not in ("BEAM", "DEV", env.KEYED_MARK)}
    environ["CACHEDB"] = str(tmp_path / "cache.db")

    def once() -> dict:
        done = subprocess.run(
            [sys.executable, "-c", SEARCH_A_TINY_KERNEL],
            cwd=REPO,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return json.loads(done.stdout.splitlines()[-1])

    first, second = once(), once()
    assert first["beam"] == 1 and first["searched"] >= 1 and first["cached"] == 0 and first["search_s"] > 0
    assert second["searched"] == 0 and second["cached"] == first["searched"]


def test_cache_only_refuses_to_search_but_serves_cached_choices(fake_search):
    with kernel_search.applied(1) as count:
        fake_search.beam_search("a")  # searched and cached
    with kernel_search.applied(1, cache_only=True) as count:
        assert fake_search.beam_search("a") == "opts-a"
        with pytest.raises(kernel_search.SearchNeeded, match="warmup --beam 1"):
            fake_search.beam_search("new")
    assert (count.searched, count.cached) == (0, 1)


def test_a_searched_run_says_so_in_its_summary_lines():
    text = console.run_summary(_record(1), None)
    assert "kernel search" in text and "BEAM=1: 0 kernel(s) searched in 0.0 s, 38 from the search cache" in text
    assert "kernel search" not in console.run_summary(_record(0), None)
