"""Judging results: the rules engine, comparison with a baseline, the cost gate, the same-runner A/B,
reproducibility, the pull request's combined verdict and the history charts. Imports any lower layer
(`base`, `tg`, `documents`, `run`)."""
