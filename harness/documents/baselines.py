"""Stored baselines: results/baselines/<device-key>/<suite>.json, one per suite and machine kind."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness import documents
from harness.base import inputs
from harness.base.errors import HarnessError
from harness.documents import summary

DEFAULT_ROOT = Path("results/baselines")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def device_key(machine: dict[str, Any]) -> str:
    """The device, and where it runs when that is not already said: `CPU`, `CPU-LLVM` (a renderer stays in the
    device, never mixed with clang's `CPU`), `CL-cpu` (OpenCL on the CPU), `CUDA-nvidia-h100-80gb-hbm3` (a
    GPU's name). Never the CPU model: the same seed computes the same bits on every CPU of one ISA numerics
    class (results/isa/), so shards from a fleet of mixed CPUs share one baseline; wall-clock is gated only
    where the CPUs are the same (compare). A device index is dropped (`CUDA:1` -> `CUDA-...`)."""
    base, *rest = machine["device"].split(":")
    device = "-".join([base, *rest[:1]]) if rest and not rest[0].isdigit() else base
    if base == "CPU":
        return device
    return f"{device}-{slug(machine['gpu'][0].split(',')[0]) if machine['gpu'] else 'cpu'}"


def summary_device_key(summary: dict[str, Any]) -> str:
    keys = sorted({device_key(m) for m in summary["machines"]})
    if len(keys) != 1:
        raise HarnessError(
            f"summary spans {len(keys)} device keys ({', '.join(keys)}); run or merge one device's results at a time"
        )
    return keys[0]


def path_for(root: Path, key: str, name: str) -> Path:
    return root / key / f"{name}.json"


def save(
    summary_doc: dict[str, Any],
    source: str,
    *,
    root: Path = DEFAULT_ROOT,
    name: str | None = None,
    note: str | None = None,
) -> Path:
    if summary_doc["n_failed"]:
        raise HarnessError(f"{source}: {summary_doc['n_failed']} run(s) failed; a baseline needs clean results")
    key = summary_device_key(summary_doc)
    name = name or summary_doc["suite"]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise HarnessError(f"bad baseline name {name!r}: use letters, digits, '.', '_' and '-'")
    doc = {
        **documents.header("baseline", dated=False),
        "name": name,
        "suite": summary_doc["suite"],
        "device": summary_doc["machines"][0]["device"],
        "device_key": key,
        "saved_at": documents.utc_now(),
        "source": source,
        "summary": summary_doc,
    }
    if note:
        doc["note"] = note
    path = path_for(root, key, name)
    inputs.check_distinct([("SUMMARY", Path(source))], [("the baseline (--root, --name)", path)])
    return documents.write(path, doc, "baseline")


def save_from(path: Path, *, root: Path = DEFAULT_ROOT, name: str | None = None, note: str | None = None) -> Path:
    """`mnist-bench baseline save`: store a summary file, a baseline or a folder of run results."""
    return save(load_summary_like(path), str(path), root=root, name=name, note=note)


def listing(root: Path = DEFAULT_ROOT) -> list[dict[str, Any]]:
    """One row per stored baseline (`problem` set, the rest None, where a file is invalid)."""
    rows = []
    for path, doc, problem in list_all(root):
        rows.append(
            {
                "path": str(path),
                "suite": doc["suite"] if doc else None,
                "device_key": doc["device_key"] if doc else None,
                "configs": len(doc["summary"]["configs"]) if doc else None,
                "runs": doc["summary"]["n_runs"] if doc else None,
                "saved_at": doc["saved_at"] if doc else None,
                "problem": problem,
            }
        )
    return rows


def list_all(root: Path = DEFAULT_ROOT) -> list[tuple[Path, dict[str, Any] | None, str | None]]:
    """(path, baseline or None, problem or None) for every JSON under root."""
    out = []
    for path in sorted(root.glob("*/*.json")):
        try:
            out.append((path, documents.load(path, "baseline"), None))
        except HarnessError as e:
            out.append((path, None, e.message))
    return out


def locate(spec: str, current: dict[str, Any], root: Path = DEFAULT_ROOT) -> Path:
    """`auto`: the baseline for the current summary's suite and device key; else a path."""
    if spec != "auto":
        return Path(spec)
    if not summary.is_suite(current["suite"]):
        raise HarnessError(
            f"no stored baseline for {current['suite']}: `auto` finds one suite's baseline; "
            "name what to compare with instead (`mnist-bench compare A B`)"
        )
    return path_for(root, summary_device_key(current), current["suite"])


def this_device_key() -> str:
    """The device key of a run here on the harness's default device."""
    from harness.tg import devices, env

    return device_key({"device": devices.default_device(), "gpu": env.collect_gpu()})


def resolve(spec: str, root: Path = DEFAULT_ROOT) -> Path:
    """`baseline show`'s BASELINE: a file; `KEY/NAME` under root; or a NAME, as `baseline list` shows them: the
    one stored under that name, or where several devices have one, this machine's (as `compare --baseline
    auto` picks it); else a one-line error naming the candidates."""
    if Path(spec).is_file():
        return Path(spec)
    name = spec.removesuffix(".json")
    if (root / f"{name}.json").is_file():  # KEY/NAME
        return root / f"{name}.json"
    found = sorted(root.glob(f"*/{name}.json")) if "/" not in name else []
    if len(found) == 1:
        return found[0]
    if found:
        key = this_device_key()
        if (mine := path_for(root, key, name)) in found:
            return mine
        keys = ", ".join(f"{p.parent.name}/{name}" for p in found)
        raise HarnessError(f"no baseline {name!r} for this machine's device key {key}; give one of: {keys}")
    names = sorted({p.stem for p in root.glob("*/*.json")})
    hint = inputs.did_you_mean(name, names) or (f"; stored baselines: {', '.join(names)}" if names else "")
    raise HarnessError(f"{spec}: no such file nor baseline under {root}{hint}")


def load_side(path: Path) -> dict[str, Any]:
    """One side of a comparison as a summary: a summary or a baseline as stored, or the run results in a run
    file or a folder, of any suites and single runs alike (summary.of_runs)."""
    if path.is_dir():
        records, _ = summary.load_runs([path])
        return summary.of_runs(records, f"{path}: no run results found")
    doc = documents.load(path)
    if doc["kind"] == "run":
        return summary.of_runs([doc], str(path))
    if doc["kind"] not in ("summary", "baseline"):
        raise HarnessError(
            f"{path}: is a {doc['kind']} file; expected run results (a file or a folder), a summary or a baseline"
        )
    return doc["summary"] if doc["kind"] == "baseline" else doc


def load_summary_like(path: Path) -> dict[str, Any]:
    """A summary from a summary file, a baseline file, or a folder of run results."""
    if path.is_dir():
        doc, _ = summary.merge([path])
        return doc
    doc = documents.load(path)
    if doc["kind"] == "baseline":
        return doc["summary"]
    if doc["kind"] != "summary":
        raise HarnessError(f"{path}: is a {doc['kind']} file; expected a suite summary, a baseline or a folder")
    return doc
