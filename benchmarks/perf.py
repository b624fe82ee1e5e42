"""Speed benchmark: step time, samples/s, achieved GFLOP/s against the machine's matmul peak, the time of
one pass over the whole 10,000-image test set, compile time cold and warm, time to target from a cold
process, on every path this machine offers, with PyTorch as a reference in the same run.

    python benchmarks/perf.py                       # every usable path, both models, BS 128/256/512
    python benchmarks/perf.py --beam 1              # also CPU+BEAM, CL+BEAM (BEAM=1 choices from the cache)
    python benchmarks/perf.py --models mlp --batch-sizes 128 --steps 5 --no-cold --paths CPU,CL
    python benchmarks/perf.py -o results/perf/cpu.json --markdown
    python benchmarks/perf.py --rewrite results/perf/*.json   # bring stored files to the current schema

Paths: a tinygrad `DEV` value (`CPU`: clang, `CPU:LLVM`: LLVM, `CL`: OpenCL, here PoCL on the CPU,
`CUDA`, ...), that value with `+BEAM` (kernels BEAM-searched at width --beam, taken from tinygrad's
search cache only: a path or row whose kernels are not cached is skipped and says so, never searched
here; `mnist-bench warmup --beam N` fills the cache for each model's default batch size), and `torch`.
Each path runs in its own fresh process; with --rounds R each path runs R times, the paths' order
rotating every round, so a slow spell of the machine falls on every path alike. Step times are every
timed step after warm-up over all rounds (median, p10-p90). The eval time is one pass over the whole test
set (the harness's eval: batches of 1000), per path and model (it does not depend on the training batch
size), --eval-reps passes per round after the eval's own warm-up on one batch.

The JSON is a `perf` document (schemas/perf.schema.json, validated on write), versioned with the
harness's `schema_version` like every other file it writes. Not part of the test suite: timings belong
in benchmarks, not in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/perf.py`: this checkout's harness and benchmarks
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from harness import documents
from harness.base import stats
from harness.base.errors import HarnessError
from harness.documents import schema
from harness.run import child
from harness.tg import data, devices, env, kernel_search, models, train
from harness.tg.spec import DEFAULTS, RunSpec

ROOT = Path(__file__).resolve().parent.parent
HARNESS = [sys.executable, "-m", "harness"]
KIND = "perf"
LEGACY_SCHEMA = "mnist-bench-perf/1"  # the tag files carried before they had a schema_version
TRAIN_FLOPS_FACTOR = 3  # forward + backward (input and weight gradients) ~ 3x the forward pass
TORCH = "torch"
BEAM_SUFFIX = "+BEAM"
CHILD_TIMEOUT_S = 3600  # one path's process: a few minutes normally; a hang should not stall the others


def numpy_matmul_peak(n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of a float32 n x n matmul in NumPy's BLAS: the machine's practical peak."""
    a, b = np.random.rand(n, n).astype(np.float32), np.random.rand(n, n).astype(np.float32)
    a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / float(np.median(times)) / 1e9


def tinygrad_matmul_peak(device: str, n: int = 1024, reps: int = 10) -> float:
    from tinygrad import Tensor, TinyJit

    with devices.running_on(device):  # a renderer in the name (CPU:LLVM) is picked through DEV
        on = devices.tinygrad_device(device)
        a, b = Tensor.rand(n, n, device=on).realize(), Tensor.rand(n, n, device=on).realize()
        mm = TinyJit(lambda: (a @ b).realize())
        for _ in range(3):
            mm()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            mm().numpy()
            times.append(time.perf_counter() - t0)
    return 2 * n**3 / float(np.median(times)) / 1e9


@dataclass(frozen=True)
class PerfPath:
    """One way of running the models: `CPU`, `CPU:LLVM`, `CL`, `CPU+BEAM`, `torch`, ..."""

    name: str

    @property
    def engine(self) -> str:
        return TORCH if self.name == TORCH else "tinygrad"

    @property
    def dev(self) -> str:
        """The DEV value its process gets (device, and renderer where one is named)."""
        return self.name.removesuffix(BEAM_SUFFIX)

    @property
    def device(self) -> str:
        """The harness's device name (`CPU:LLVM`: the CPU device with the LLVM renderer), which the harness runs
        under DEV so the renderer holds for every step, capture and eval (harness.tg.devices.running_on)."""
        return self.dev

    @property
    def beam(self) -> bool:
        return self.name.endswith(BEAM_SUFFIX)


def default_paths(beam: int | None, torch: bool) -> list[str]:
    """Every usable path: each usable tinygrad device (the CPU with clang and with LLVM), with --beam also
    each device with its cached BEAM kernels, and PyTorch. A path that fails to open is skipped, not fatal."""
    names: list[str] = []
    for d in devices.usable():
        names += [d.name, f"{d.name}:LLVM"] if d.name == "CPU" else [d.name]
    if beam is not None:
        names += [f"{n}{BEAM_SUFFIX}" for n in names if ":" not in n or n.split(":")[1].isdigit()]
    return names + ([TORCH] if torch else [])


def parse_paths(text: str | None, beam: int | None, torch: bool) -> list[PerfPath]:
    names = [n.strip() for n in text.split(",") if n.strip()] if text else default_paths(beam, torch)
    paths = [PerfPath(n) for n in dict.fromkeys(names)]
    if beam is None and (needing := [p.name for p in paths if p.beam]):
        raise SystemExit(f"perf.py: {', '.join(needing)} need --beam N (the BEAM width whose cache to use)")
    return paths


# --- one path, in its own process ----------------------------------------------------------------------


def tinygrad_row(model: str, mnist, device: str, batch_size: int, steps: int, eval_reps: int) -> dict:
    """Timed steps after warm-up, then `eval_reps` timed passes over the whole test set."""
    spec = RunSpec.defaults(model, batch_size=batch_size, steps=train.WARMUP_STEPS + steps)
    trainer = train.Trainer(spec, mnist, device)
    order = train.batch_order(0, len(mnist.y_train), batch_size, spec.steps)
    times = []
    for indices in order:
        t0 = time.perf_counter()
        trainer.step(indices)  # returns the loss through .item(): the device is synchronised
        times.append(time.perf_counter() - t0)
    x, y = trainer.test_batches[0]
    for _ in range(train.WARMUP_STEPS if eval_reps else 0):  # the eval's JIT (one batch shape): eager, then captured
        trainer.correct(x, y).item()
    evals = []
    for _ in range(eval_reps):
        t0 = time.perf_counter()
        trainer.accuracy()  # .item() of every batch's count synchronises
        evals.append(time.perf_counter() - t0)
    return {
        "model": model,
        "batch_size": batch_size,
        "compile_s": sum(times[: train.WARMUP_STEPS]),
        "step_times": times[train.WARMUP_STEPS :],
        "eval_times": evals,
    }


def describe_path(path: PerfPath) -> dict:
    """What the path is: device, renderer and compiler classes, DEV, and the OpenCL device or the C
    compiler or the LLVM library behind it."""
    from tinygrad import Device

    info = {"engine": "tinygrad", "dev": path.dev, **devices.describe(path.device).to_json()}
    dev = Device[devices.tinygrad_device(path.device)]
    if hasattr(dev, "device_name"):  # OpenCL
        info["opencl_device"] = f"{dev.device_name} ({getattr(dev, 'driver_version', '?')})"
    if "Clang" in info["renderer"]:
        compiler = env.collect_compiler()
        info["cc"] = f"{compiler['cc']}: {compiler['version']}"
    if "LLVM" in info["renderer"] and (llvm := sys.modules.get("tinygrad.runtime.autogen.llvm")) is not None:
        info["llvm_library"] = getattr(getattr(llvm, "dll", None), "_name", None)
    return info


def child_tinygrad(path: PerfPath, work: list[list], steps: int, eval_reps: int, beam: int | None) -> dict:
    env.use_cpu_keyed_cache()
    from tinygrad import Tensor

    try:
        with devices.running_on(path.device):
            (Tensor.ones(4, device=devices.tinygrad_device(path.device)) + 1).realize().numpy()
    except Exception as e:  # no such device or renderer here (e.g. no libLLVM): skip the path, say why
        return {"skipped": f"{path.device} does not open: {type(e).__name__}: {e}".splitlines()[0][:300]}
    info = describe_path(path)
    mnist = data.load()
    rows, matmul = [], None
    with kernel_search.applied(beam if path.beam else 0, cache_only=path.beam) as searched:
        with contextlib.suppress(kernel_search.SearchNeeded):  # its kernels are not in a warm-up's BEAM cache
            matmul = tinygrad_matmul_peak(path.device)
        for i, (model, bs) in enumerate(work):
            reps = eval_reps if _first_of_model(work, i) else 0
            try:
                rows.append(tinygrad_row(model, mnist, path.device, bs, steps, reps))
            except kernel_search.SearchNeeded as e:
                rows.append({"model": model, "batch_size": bs, "skipped": str(e)})
    info["beam"] = searched.beam
    return {"info": info, "rows": rows, "matmul_gflops": matmul, "kernel_search": searched.to_json()}


def _first_of_model(work: list[list], i: int) -> bool:
    """Whether work[i] is its model's first row: the eval is timed there only."""
    return all(w[0] != work[i][0] for w in work[:i])


def child_torch(work: list[list], steps: int, eval_reps: int, threads: int, device: str) -> dict:
    from benchmarks import torch_reference

    torch_reference.set_threads(threads)
    if torch_reference.version() is None:
        return {"skipped": "PyTorch is not installed (pip install 'mnist-bench[reference]')"}
    mnist = data.load()
    rows = [
        {
            "model": model,
            "batch_size": bs,
            "compile_s": None,
            "step_times": torch_reference.step_times(model, mnist.x_train, mnist.y_train, bs, steps, device=device),
            "eval_times": torch_reference.eval_times(
                model, mnist.x_test, mnist.y_test, eval_reps if _first_of_model(work, i) else 0, device=device
            ),
        }
        for i, (model, bs) in enumerate(work)
    ]
    info = {"engine": TORCH, "name": device.upper(), "version": torch_reference.version(), "threads": threads}
    return {"info": info, "rows": rows, "matmul_gflops": None, "kernel_search": None}


def measure(request: dict) -> dict:
    """The child process's work: one path's rows (its reply to the parent)."""
    path = PerfPath(request["path"])
    if path.engine == TORCH:
        return child_torch(request["work"], request["steps"], request["eval_reps"], **request["torch"])
    return child_tinygrad(path, request["work"], request["steps"], request["eval_reps"], request["beam"])


def spawn(path: PerfPath, work: list[list], args: argparse.Namespace, steps: int) -> dict:
    """One fresh process for `path` (`python -P -m benchmarks.perf --child`, through harness.run.child); its reply,
    or {"skipped": why} when it failed."""
    request = {
        "path": path.name,
        "work": work,
        "steps": steps,
        "eval_reps": args.eval_reps,
        "beam": args.beam,
        "torch": {"threads": args.torch_threads, "device": args.torch_device},
    }
    environ = {k: v for k, v in os.environ.items() if k not in ("DEV", "BEAM")}
    if path.engine != TORCH:
        environ["DEV"] = path.dev
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    try:
        with child.Child(path.name, ["-m", "benchmarks.perf", "--child"], pythonpath=pythonpath, env=environ) as c:
            c.ready()
            return c.request(request, timeout=CHILD_TIMEOUT_S)
    except HarnessError as e:
        return {"skipped": e.message}


# --- the parent: rounds over the paths -----------------------------------------------------------------


def measure_paths(paths: list[PerfPath], args: argparse.Namespace) -> dict:
    """Every path's work in `args.rounds` rounds, the order rotating each round; returns the document's
    `paths` (info by name), `rows`, `eval` (model -> path -> seconds per pass) and `tinygrad_matmul_gflops`."""
    work = [[m, bs] for m in args.models for bs in args.batch_sizes]
    todo = {p.name: list(work) for p in paths}
    per_round = math.ceil(args.steps / args.rounds)
    gathered: dict[tuple[str, str, int], dict] = {}
    evals: dict[str, dict[str, list[float]]] = {}
    info: dict[str, dict] = {}
    matmul: dict[str, list[float]] = {}
    for r in range(args.rounds):
        shift = r % len(paths)
        for path in paths[shift:] + paths[:shift]:
            if not todo[path.name]:
                continue
            reply = spawn(path, todo[path.name], args, per_round)
            print(json.dumps({"round": r + 1, "path": path.name, **_brief(reply)}), file=sys.stderr)
            if "skipped" in reply:
                info.setdefault(path.name, {"engine": path.engine, "dev": path.dev})["skipped"] = reply["skipped"]
                todo[path.name] = []
                continue
            _merge_info(info, path.name, reply)
            if reply["matmul_gflops"]:
                matmul.setdefault(path.name, []).append(reply["matmul_gflops"])
            for row in reply["rows"]:
                key = (path.name, row["model"], row["batch_size"])
                if "skipped" in row:
                    info[path.name].setdefault("skipped_rows", {})[f"{row['model']} BS {row['batch_size']}"] = row[
                        "skipped"
                    ]
                    todo[path.name].remove([row["model"], row["batch_size"]])
                    continue
                g = gathered.setdefault(key, {"compile_s": [], "step_times": []})
                g["compile_s"].append(row["compile_s"])
                g["step_times"] += row["step_times"]
                if row["eval_times"]:
                    evals.setdefault(row["model"], {}).setdefault(path.name, []).extend(row["eval_times"])
    return {
        "paths": info,
        "rows": [_row(PerfPath(name), model, bs, g, info[name]) for (name, model, bs), g in gathered.items()],
        "eval": {m: {name: stats.percentiles(t) for name, t in by_path.items()} for m, by_path in evals.items()},
        "tinygrad_matmul_gflops": {name: float(np.median(v)) for name, v in matmul.items()},
    }


def _brief(reply: dict) -> dict:
    if "skipped" in reply:
        return {"skipped": reply["skipped"]}
    return {
        f"{r['model']}@{r['batch_size']}": r.get("skipped") or f"{1e3 * float(np.median(r['step_times'])):.1f} ms/step"
        for r in reply["rows"]
    }


def _merge_info(info: dict, name: str, reply: dict) -> None:
    """The path's description (the same every round) and its kernel-search counts summed over rounds."""
    entry = info.setdefault(name, dict(reply["info"]))
    if (ks := reply.get("kernel_search")) is not None:
        total = entry.setdefault("kernel_search", {"beam": ks["beam"], "searched": 0, "cached": 0, "search_s": 0.0})
        for k in ("searched", "cached", "search_s"):
            total[k] = None if total[k] is None or ks[k] is None else total[k] + ks[k]


def _row(path: PerfPath, model: str, bs: int, g: dict, info: dict) -> dict:
    compile_s = [c for c in g["compile_s"] if c is not None]
    row = {
        "path": path.name,
        "device": info.get("name", path.device),
        "model": model,
        "batch_size": bs,
        "engine": path.engine,
        "compile_s": float(np.median(compile_s)) if compile_s else None,
        "step_s": stats.percentiles(g["step_times"]),
    }
    return _derived(row, models.forward_flops(model, {}) * TRAIN_FLOPS_FACTOR)


def _ran(info: dict, path: PerfPath) -> bool:
    return path.name in info and "skipped" not in info[path.name]


def run(args: argparse.Namespace) -> dict:
    from benchmarks import torch_reference

    paths = parse_paths(args.paths, args.beam, not args.no_torch)
    out = {
        "schema_version": schema.SCHEMA_VERSION,
        "kind": KIND,
        "created_at": documents.utc_now(),
        "environment": env.fingerprint(),
        "settings": {
            "steps": args.steps,
            "batch_sizes": args.batch_sizes,
            "rounds": args.rounds,
            "eval_reps": args.eval_reps,
            "paths": [p.name for p in paths],
            "beam": args.beam,
            "torch_threads": args.torch_threads,
        },
        "numpy_matmul_gflops": numpy_matmul_peak(),
        "torch_version": torch_reference.version() if any(p.engine == TORCH for p in paths) else None,
        "rows": [],
        "compile": {},
        "to_target": {},
    }
    out.update(measure_paths(paths, args))
    cold_path = next((p for p in paths if p.engine != TORCH and not p.beam and _ran(out["paths"], p)), None)
    if not args.no_cold and cold_path is not None:
        for model in args.models:
            default_bs = DEFAULTS[model]["batch_size"]
            out["compile"][model] = {"path": cold_path.name, **compile_cold_warm(model, default_bs, cold_path)}
            if not args.no_target:
                out["to_target"][model] = {"path": cold_path.name, **to_target_cold_process(model, cold_path)}
            print(json.dumps({model: [out["compile"][model], out["to_target"].get(model)]}), file=sys.stderr)
    return out


def cli_run(model: str, extra: list[str], env_vars: dict[str, str]) -> tuple[dict, float]:
    """A fresh `mnist-bench` process; returns (its result record, process wall seconds)."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        done = subprocess.run(
            [*HARNESS, model, "--out-dir", out, "--format", "json", "--no-assert-target", *extra],
            capture_output=True,
            text=True,
            env={**os.environ, **env_vars},
            check=False,
        )
        wall = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout), wall


def compile_cold_warm(model: str, batch_size: int, path: PerfPath) -> dict:
    """First-steps time with an empty tinygrad cache, then again with the cache it filled."""
    with tempfile.TemporaryDirectory() as cache:
        env_vars = {"CACHEDB": str(Path(cache) / "cache.db"), "DEV": path.dev}
        args = ["--steps", "3", "--bs", str(batch_size), "--eval-every", "0", "--device", path.device]
        cold, _ = cli_run(model, args, env_vars)
        warm, _ = cli_run(model, args, env_vars)
    return {"cold_s": cold["timings"]["compile_s"], "warm_s": warm["timings"]["compile_s"]}


def to_target_cold_process(model: str, path: PerfPath) -> dict:
    record, wall = cli_run(model, ["--device", path.device], {"DEV": path.dev})
    return {
        "process_wall_s": wall,
        "time_to_target_s": record["metrics"]["time_to_target_s"],
        "steps_to_target": record["metrics"]["steps_to_target"],
        "accuracy": record["metrics"]["accuracy"],
        "config": {k: record["config"][k] for k in ("lr", "batch_size", "steps")},
    }


def _derived(row: dict, train_flops_per_sample: int) -> dict:
    median = row["step_s"]["median"]
    row["samples_per_s"] = row["batch_size"] / median
    row["gflops"] = train_flops_per_sample * row["batch_size"] / median / 1e9
    return row


def _ms(p: dict | None) -> str:
    return "-" if not p else f"{p['median'] * 1e3:.1f} ({p['p10'] * 1e3:.1f}-{p['p90'] * 1e3:.1f})"


def markdown(out: dict) -> str:
    rows = sorted(out["rows"], key=lambda r: (r["model"], r["batch_size"]))
    peak = out["numpy_matmul_gflops"]
    lines = [
        "| model | BS | path | step ms (median, p10-p90) | samples/s | GFLOP/s | % of matmul peak | vs torch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    torch_median = {(r["model"], r["batch_size"]): r["step_s"]["median"] for r in rows if r["engine"] == TORCH}
    for r in rows:
        s = r["step_s"]
        ref = torch_median.get((r["model"], r["batch_size"]))
        ratio = f"{s['median'] / ref:.1f}x" if ref and r["engine"] != TORCH else "-"
        lines.append(
            f"| {r['model']} | {r['batch_size']} | {r.get('path') or r['engine'] + ' ' + r['device']} | {_ms(s)} "
            f"| {r['samples_per_s']:.0f} | {r['gflops']:.1f} | {100 * r['gflops'] / peak:.0f}% | {ratio} |"
        )
    lines += _eval_table(out.get("eval") or {})
    lines.append("")
    lines.append(
        f"Matmul peak (NumPy float32 2048^3): {peak:.0f} GFLOP/s; tinygrad 1024^3: "
        + (", ".join(f"{d} {g:.0f} GFLOP/s" for d, g in out.get("tinygrad_matmul_gflops", {}).items()) or "-")
    )
    lines += [f"- {name}: {_path_words(info)}" for name, info in (out.get("paths") or {}).items()]
    for model, c in out["compile"].items():
        t = out["to_target"].get(model)
        line = f"- {model} on {c.get('path', 'the default device')}: compile + warm-up {c['cold_s']:.1f} s cold, "
        line += f"{c['warm_s']:.1f} s with a warm cache"
        if t:
            line += (
                f"; defaults ({t['config']}) reach the target at step {t['steps_to_target']} after "
                f"{t['time_to_target_s'] or float('nan'):.1f} s of training; whole process "
                f"{t['process_wall_s']:.1f} s, final accuracy {t['accuracy']:.2f}%"
            )
        lines.append(line)
    env_ = out["environment"]
    settings = out["settings"]
    lines.append(
        f"- machine: {env_['cpu']['model']}, {env_['cpu']['cores']} cores; tinygrad "
        f"{env_['packages']['tinygrad']} {env_['tinygrad_env'] or '(default settings)'}; "
        f"torch {out['torch_version']}; {settings['steps']} timed steps per row"
        + (f" over {settings['rounds']} rounds, each path in a fresh process" if settings.get("rounds") else "")
    )
    return "\n".join(lines)


def _eval_table(evals: dict) -> list[str]:
    """One pass over the whole test set, per model and path, against PyTorch's."""
    if not evals:
        return []
    lines = ["", "| model | path | eval ms per 10,000 images (median, p10-p90) | vs torch |", "|---|---|---|---|"]
    for model, by_path in sorted(evals.items()):
        ref = (by_path.get(TORCH) or {}).get("median")
        for name, p in by_path.items():
            ratio = f"{p['median'] / ref:.1f}x" if ref and name != TORCH else "-"
            lines.append(f"| {model} | {name} | {_ms(p)} | {ratio} |")
    return lines


def _path_words(info: dict) -> str:
    """What a path is, in a line: `tinygrad CL, renderer OpenCLRenderer, OpenCL device cpu-... (PoCL 6.0)`."""
    if info.get("engine") == TORCH:
        text = f"PyTorch {info['version']}, {info['threads']} intra-op thread(s)" if "version" in info else "PyTorch"
    else:
        text = f"tinygrad DEV={info.get('dev')}"
        for key, label in (("renderer", "renderer"), ("compiler", "compiler"), ("opencl_device", "OpenCL device")):
            if info.get(key):
                text += f", {label} {info[key]}"
        for key in ("cc", "llvm_library"):
            if info.get(key):
                text += f", {info[key]}"
        if (ks := info.get("kernel_search")) and ks["beam"]:
            text += f", BEAM={ks['beam']} ({ks['searched']} searched, {ks['cached']} from the cache)"
    if info.get("skipped"):
        text += f"; skipped: {info['skipped']}"
    for row, why in (info.get("skipped_rows") or {}).items():
        text += f"; {row} skipped: {why}"
    return text


def save(path: Path, doc: dict) -> Path:
    """Validate against schemas/perf.schema.json and write atomically (sorted keys, trailing newline)."""
    return documents.write(path, doc, KIND)


def upgrade(doc: dict, origin: str) -> dict:
    """A stored perf document at the current schema_version: a file from before perf documents were
    versioned (tagged `schema: mnist-bench-perf/1`) becomes version 2 (the same fields, kind `perf`);
    anything else goes through the harness's migrations."""
    if doc.get("schema") == LEGACY_SCHEMA and "schema_version" not in doc:
        doc = {k: v for k, v in doc.items() if k != "schema"}
        doc.update(schema_version=2, kind=KIND)
    return documents.upgrade(doc, origin)


def rewrite(paths: list[Path]) -> None:
    """Read stored perf files, bring them to the current schema and write them back through save()."""
    for path in paths:
        save(path, upgrade(documents.read_json(path), str(path)))
        print(f"{path}: ok", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=lambda s: s.split(","), default=["mlp", "cnn"], help="default mlp,cnn")
    sizes = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    parser.add_argument("--batch-sizes", type=sizes, default=[128, 256, 512], help="default 128,256,512")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per row, after warm-up (default 30)")
    parser.add_argument(
        "--paths",
        help="comma-separated paths: a tinygrad DEV value (CPU, CPU:LLVM, CL, ...), one with +BEAM, or torch "
        "(default: every usable path; +BEAM ones with --beam)",
    )
    parser.add_argument("--device", action="append", help="old spelling of --paths (repeatable)")
    parser.add_argument(
        "--beam", type=int, help="BEAM width of the +BEAM paths, from the search cache only (default: no +BEAM paths)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per path, interleaved (default 3)")
    parser.add_argument(
        "--eval-reps", type=int, default=1, help="timed test-set passes per path, model and round (default 1)"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    parser.add_argument("--torch-threads", type=int, default=1, help="PyTorch intra-op threads (default 1)")
    parser.add_argument("--torch-device", default="cpu", help="PyTorch device for the reference, e.g. cuda")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-process compile and target runs")
    parser.add_argument("--no-target", action="store_true", help="skip the cold-process runs to the target")
    parser.add_argument("-o", "--output", "--json", dest="output", type=Path, help="write the perf JSON here")
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    parser.add_argument("--rewrite", nargs="+", type=Path, metavar="FILE", help="upgrade stored perf JSON files")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one path, in its own process
    args = parser.parse_args()
    if args.child:
        sys.exit(child.serve(measure))
    if args.device:  # the old spelling ran PyTorch beside the named devices
        args.paths = ",".join(filter(None, [args.paths, *args.device, None if args.no_torch else TORCH]))
    if min(args.steps, args.rounds) < 1 or args.eval_reps < 0:
        parser.error("--steps and --rounds must be at least 1, --eval-reps at least 0")
    kernel_search.check_beam(args.beam)
    if args.rewrite:
        rewrite(args.rewrite)
        return
    out = run(args)
    if args.output:
        save(args.output, out)
    print(markdown(out) if args.markdown else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
