"""Fixtures for the scoring tests: the shared leaderboard logs and tiny synthetic log builders."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from scoring.logs import EvalLogs, build_logs

FIXTURES_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
V06_LOGS = FIXTURES_DIR / "algoperf_v06_leaderboard_logs"


@pytest.fixture(scope="session")
def v06_logs() -> Path:
    """The published v0.6 leaderboard logs (skips when the shared fixtures are absent)."""
    if not (V06_LOGS / "external_tuning").is_dir():
        pytest.skip(f"shared fixture logs not found at {V06_LOGS}")
    return V06_LOGS


@pytest.fixture
def make_logs() -> Callable[..., EvalLogs]:
    """Build `EvalLogs` in memory from trials (no files).

    A trial is (submission, workload, study, trial, times, metric values[, steps]).
    """

    def build(
        trials: Sequence[tuple], version: str = "0.6", submissions: Sequence[str] | None = None
    ) -> EvalLogs:
        keys, cols = [], []
        for t in trials:
            submission, workload, study, trial, times, values = t[:6]
            steps = t[6] if len(t) > 6 else np.arange(1, len(times) + 1) * 100
            keys.append(
                {
                    "submission": submission,
                    "workload": workload,
                    "study": study,
                    "trial": trial,
                }
            )
            cols.append(
                {
                    "score": np.asarray(times, float),
                    "metric": np.asarray(values, float),
                    "global_step": np.asarray(steps, float),
                    "wall_time": np.asarray(times, float) * 2,
                    "eval_time": np.asarray(times, float) * 0.5,
                }
            )
        names = submissions or sorted({k["submission"] for k in keys})
        return build_logs(keys, cols, names, version)

    return build


def write_csv(path: Path, header: str, rows: Sequence[str], end: str = "\n") -> Path:
    """Write an eval_measurements.csv (rows are pre-formatted lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(r + end for r in rows))
    return path


@pytest.fixture
def log_tree(tmp_path: Path) -> Callable[..., Path]:
    """Write a small upstream-layout tree: {(sub, study, workload_dir, trial): rows}."""

    header = "accumulated_eval_time,global_step,score,total_duration,validation/accuracy,extra"

    def build(spec: dict[tuple[str, str, str, str], Sequence[str]], root: Path | None = None):
        root = root or tmp_path / "logs"
        for (sub, study, wdir, trial), rows in spec.items():
            write_csv(root / sub / study / wdir / trial / "eval_measurements.csv", header, rows)
        return root

    return build
