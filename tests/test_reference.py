"""benchmarks/torch_reference.py's side-by-side table (PyTorch itself is not needed for these)."""

from __future__ import annotations

from benchmarks import torch_reference


def test_harness_numbers_come_from_the_committed_explore_summary():
    ref = torch_reference
    found = ref.harness_accuracies()
    assert all(len(found[r["explore"]]) == 3 for r in ref.RECIPES)


def test_side_by_side_has_the_three_recipes_and_three_sources():
    ref = torch_reference
    fake = {"MLP 100 steps": [92.5, 92.9], "MLP 1000 steps": [97.0], "CNN 100 steps": [97.5, 97.9, 97.7]}
    table = ref.side_by_side(fake, ref.harness_accuracies())
    lines = table.splitlines()
    assert len(lines) == 5 and "original study" in lines[0] and "PyTorch" in lines[0]
    assert "| MLP 1000 steps | 98.78 |" in table and "97.00 ± 0.00 (n=1" in table
