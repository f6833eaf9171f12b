"""Generated upstream-layout log trees for benchmark version ``mini`` (targets read from it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from scoring.targets import TargetSet

EVALS = 10  # evals per trial, evenly spaced over the budget


def metric_values(targets: TargetSet, workload: str, hit: int | None) -> list[float]:
    """`EVALS` validation values that first meet the target at eval `hit` (None: never)."""
    t = targets.workloads[workload]
    target = t.validation_target_value
    gap = max(abs(target), 1.0)  # misses the target whatever its scale (0 included)
    worse = target - gap if t.maximize else target + gap
    return [target if hit is not None and i >= hit else worse for i in range(EVALS)]


def write_trial(
    root: Path,
    targets: TargetSet,
    submission: str,
    workload: str,
    hit: int | None,
    *,
    study: int = 0,
    trial: int = 1,
    framework: str = "pytorch",
) -> Path:
    """One trial's eval_measurements.csv: evals at budget/EVALS, 2*budget/EVALS, ..., budget."""
    t = targets.workloads[workload]
    budget = t.max_allowed_runtime_sec
    tdir = root / submission / f"study_{study}" / f"{workload}_{framework}" / f"trial_{trial}"
    tdir.mkdir(parents=True, exist_ok=True)
    rows = [f"global_step,score,total_duration,accumulated_eval_time,{t.metric_column}"]
    for i, value in enumerate(metric_values(targets, workload, hit)):
        time = budget * (i + 1) / EVALS
        step = (i + 1) * max(1, t.step_hint // EVALS)
        rows.append(f"{step},{time!r},{time * 1.2!r},{time * 0.1!r},{value!r}")
    path = tdir / "eval_measurements.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def write_tree(
    root: Path,
    targets: TargetSet,
    hits: Mapping[tuple[str, str], list[int | None]],
    *,
    studies: int = 1,
    framework: str = "pytorch",
) -> Path:
    """A log tree: for (submission, workload) the hit eval of each trial, in every study."""
    for (submission, workload), trials in hits.items():
        for study in range(studies):
            for k, hit in enumerate(trials, start=1):
                write_trial(
                    root,
                    targets,
                    submission,
                    workload,
                    hit,
                    study=study,
                    trial=k,
                    framework=framework,
                )
    return root
