"""Running benchmarks: one run, a suite of runs (resumable, sharded, isolated in fresh processes), the
child-process mechanism, the `continuous` timing worker, compile warm-up and live progress. Imports
`base`, `tg` and `documents`."""
