"""The target-setting tool (`python -m algoperf.target_setting`) on fixture data, both with and
without a test split: the targets are the protocol's statistics of the re-runs it records."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from algoperf import registry, target_setting

REPO = Path(__file__).resolve().parents[2]
NADAMW = REPO / "submissions" / "baselines" / "nadamw"


def _set_targets(workload: str, tmp_path: Path) -> dict:
    data_dir = tmp_path / "data"
    registry.write_fixture(registry.get_config(workload).dataset, data_dir)
    out = tmp_path / "targets.json"
    code = target_setting.main(
        [
            f"--workload={workload}",
            "--framework=pytorch",
            f"--submission={NADAMW / 'pytorch' / 'submission.py'}",
            f"--search_space={NADAMW / 'tuning_search_space.json'}",
            f"--data_dir={data_dir}",
            "--num_trials=2",
            "--num_reruns=3",
            "--max_global_steps=3",
            "--eval_period_sec=0",
            f"--output={out}",
        ]
    )
    assert code == 0
    return json.loads(out.read_text())


@pytest.mark.usefixtures("one_torch_thread")
def test_targets_are_the_reruns_median_and_worst_reaching_test(tmp_path: Path) -> None:
    report = _set_targets("mnist1d", tmp_path)
    assert len(report["tuning_runs"]) == 2 and len(report["reruns"]) == 3
    assert all(r["steps"] == 3 for r in report["reruns"])
    best = [r["best_validation"] for r in report["reruns"]]
    assert report["validation_target"] == statistics.median(best)
    reached = [r for r in report["reruns"] if r["best_validation"] >= report["validation_target"]]
    assert report["test_target"] == min(r["test_at_best_validation"] for r in reached)
    tuning_best = max(r["best_validation"] for r in report["tuning_runs"])
    assert report["tuning_runs"][report["best_trial"] - 1]["best_validation"] == tuning_best


@pytest.mark.usefixtures("one_torch_thread")
def test_a_workload_without_test_split_gets_no_test_target(tmp_path: Path) -> None:
    report = _set_targets("lm_bible", tmp_path)
    assert report["test_target"] is None
    assert all(r["test_at_best_validation"] is None for r in report["reruns"])
    best = [r["best_validation"] for r in report["reruns"]]
    assert report["validation_target"] == statistics.median(best)  # perplexity: lower is better
