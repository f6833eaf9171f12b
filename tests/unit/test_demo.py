"""The demo's per-trial summary read from eval CSVs, and its note when no trial hit the target."""

from __future__ import annotations

import csv
from pathlib import Path

from algoperf import demo, registry


def _write(logs: Path, name: str, trial: int, accuracies: list[float]) -> None:
    path = logs / name / "study_0" / "fashion_mnist_jax" / f"trial_{trial}"
    path.mkdir(parents=True)
    with (path / "eval_measurements.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["global_step", "score", "validation/accuracy"])
        writer.writeheader()
        for i, acc in enumerate(accuracies):
            writer.writerow({"global_step": i, "score": 2.0 * i, "validation/accuracy": acc})


def test_time_to_target_is_the_first_eval_at_or_past_the_target(tmp_path):
    target = registry.get_config("fashion_mnist").validation_target_value
    _write(tmp_path, "a_jax", 1, [0.5, target, target + 0.01])
    _write(tmp_path, "b_jax", 1, [0.5, target - 0.01])
    table = demo.time_to_target_table(tmp_path)
    assert table[0][:3] == ("a_jax", "trial_1", "2.00s")
    assert table[1][:3] == ("b_jax", "trial_1", "not reached")
    assert demo.no_target_note(table) is None


def test_note_explains_all_zero_scores(tmp_path):
    _write(tmp_path, "a_jax", 1, [0.5, 0.8731])
    _write(tmp_path, "b_jax", 1, [0.5, 0.8745])
    note = demo.no_target_note(demo.time_to_target_table(tmp_path))
    assert note is not None and "best 0.8745" in note and "every score below is 0" in note
