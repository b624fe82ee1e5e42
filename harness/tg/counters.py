"""What tinygrad says a jitted step costs: its own counters and per-kernel estimates, read, not measured.

tinygrad estimates, for every kernel, the operations and the bytes it moves from the kernel's UOps,
before any compiler sees the code; `GlobalCounters` sums them for the kernels that ran. Both the cost
gate (`harness.gate.cost`, which runs a few steps) and every training run (which reads its trainer's
captured steps at the end) use these readers; this module imports nothing of the trainer's.
"""

from __future__ import annotations

import re
from typing import Any

from harness.base.errors import ExitCode, HarnessError
from harness.tg import compat

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def read() -> tuple[int, int, int]:
    """(kernels, ops, bytes) that GlobalCounters accumulated since its last reset."""
    from tinygrad.helpers import GlobalCounters

    return int(GlobalCounters.kernel_count), int(GlobalCounters.global_ops), int(GlobalCounters.global_mem)


def reset() -> None:
    from tinygrad.helpers import GlobalCounters

    GlobalCounters.reset()


def mem_used() -> int:
    from tinygrad.helpers import GlobalCounters

    return int(GlobalCounters.mem_used)


def cpu_threads() -> int:
    """NUM_CPU_THREADS as tinygrad resolved it (env var, else the CPUs this process may use)."""
    return int(compat.cpu_threads_setting().value)


def calls(linear) -> list:
    """The CALLs of a captured linear, with graph batches opened up."""
    from tinygrad.uop.ops import Ops

    out = []
    for call in linear.src:
        ast = call.src[0]
        if ast.op is Ops.CUSTOM_FUNCTION and ast.arg == "graph":
            out += calls(ast.src[0])
        else:
            out.append(call)
    return out


def kernel_list(jit) -> list[dict[str, Any]]:
    """Name (ANSI colours stripped), ops and bytes of every kernel in a TinyJit's captured step, in order."""
    from tinygrad.engine.realize import estimate_uop
    from tinygrad.uop.ops import Ops

    if jit.captured is None:
        raise HarnessError("the step has not been captured by the JIT yet (it needs two calls)", ExitCode.ENVIRONMENT)
    out = []
    for call in calls(jit.captured.linear):
        ast = call.src[0]
        name = ANSI.sub("", ast.arg.name) if ast.op is Ops.PROGRAM else str(ast.op).split(".")[-1].lower()
        est = estimate_uop(call)
        out.append({"name": name, "ops": int(est.ops), "bytes": int(est.mem)})
    return out


def jit_buffers(*jits) -> dict[str, int]:
    """Distinct device buffers the captured steps use (weights, optimizer state, data, planned intermediates;
    not the per-call inputs): how many and their bytes. Unlike `mem_used`, this does not depend on what else
    the process holds."""
    from tinygrad.engine.realize import get_call_arg_uops
    from tinygrad.uop.ops import Ops

    seen: dict[int, int] = {}
    for jit in jits:
        for call in calls(jit.captured.linear):
            for u in get_call_arg_uops(call):
                while u.op is not Ops.BUFFER and u.src:
                    u = u.src[0]
                if u.op is Ops.BUFFER:
                    buf = getattr(u.buffer, "base", u.buffer)
                    seen[id(buf)] = buf.nbytes
    return {"jit_buffers": len(seen), "jit_buffers_bytes": sum(seen.values())}


def totals(kernels: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "kernels": len(kernels),
        "flops": sum(k["ops"] for k in kernels),
        "bytes": sum(k["bytes"] for k in kernels),
    }


def intensity(flops: int, nbytes: int) -> float | None:
    """Arithmetic intensity in FLOP per byte moved."""
    return flops / nbytes if nbytes else None


def derived(profile: dict[str, Any], step_time_s: float | None) -> dict[str, Any] | None:
    """Achieved GFLOP/s and GB/s of the train step at this (median) step time; None without a time."""
    if not step_time_s or step_time_s <= 0:
        return None
    step = profile["train_step"]
    return {
        "step_time_s": step_time_s,
        "gflops_per_s": step["flops"] / step_time_s / 1e9,
        "gb_per_s": step["bytes"] / step_time_s / 1e9,
    }


def trainer_profile(trainer, step_time_s: float | None = None) -> dict[str, Any]:
    """The cost of a trainer's captured steps after a training run, without running anything: the static
    estimates of the captured train step and of one eval pass (the `jit` totals of `measure`), the kernel
    list, the device memory in use now, and GFLOP/s and GB/s at `step_time_s`. Shaped to embed as a run
    record's `cost` object. The totals are the captured jitted step's, the one definition the cost gate uses
    too; the copies of a step's inputs onto the device (batch indices, a scheduled learning rate) happen
    outside the jit and are not in them (the cost gate reports them as `counted`)."""
    kernels = kernel_list(trainer.train_step)
    jits = [j for j in (trainer.train_step, trainer.correct) if j.captured is not None]
    train = totals(kernels)
    train["intensity"] = intensity(train["flops"], train["bytes"])
    n_batches = len(trainer.test_batches)
    per_batch = totals(kernel_list(trainer.correct)) if trainer.correct.captured is not None else None
    ev = {k: v * n_batches for k, v in per_batch.items()} if per_batch else None
    if ev:
        ev["intensity"], ev["batches"] = intensity(ev["flops"], ev["bytes"]), n_batches
    doc = {
        "model": trainer.spec.model,
        "train_step": train,
        "eval_pass": ev,
        "kernels": kernels,
        "memory": {**jit_buffers(*jits), "in_use_bytes": mem_used()},
    }
    doc["derived"] = derived(doc, step_time_s)
    return doc


class CompileCount:
    """Counts the programs tinygrad lowers and compiles (or loads from its disk cache) while active.

    tinygrad keeps every program it built in `tinygrad.codegen.to_program_cache` for the life of the
    process; emptying it for the measurement makes the count independent of what the process ran
    before (the programs are rebuilt, their binaries come from the compile cache when it is warm).
    The previous entries are put back afterwards.
    """

    def __enter__(self) -> CompileCount:
        from tinygrad.codegen import to_program_cache

        self.cache, self.saved = to_program_cache, dict(to_program_cache)
        to_program_cache.clear()
        return self

    def count(self) -> int:
        return len(self.cache)

    def __exit__(self, *exc) -> None:
        for key, value in self.saved.items():
            self.cache.setdefault(key, value)
