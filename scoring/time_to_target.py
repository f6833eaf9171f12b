"""Time to target: per trial, per study (trial selection) and per workload (median over studies).

Pure functions on DataFrames; no IO. The rules, as upstream's scoring applies them:

1. **Per trial**: the first eval whose ``validation/<metric>`` meets the target, compared
   non-strictly (``<=`` for minimised metrics, ``>=`` for maximised ones; NaN never meets it).
   Its time is the ``score`` column (the submission clock) at that eval. No such eval: a miss.
2. **Per study** (``selection="upstream"``): among the trials that reach the target, the one that
   reaches it at the *smallest eval index*, ties going to the first trial in order (experiment
   folder, then trial number). This is "fewest evals to target", not "least time": the published
   leaderboards are reproduced only with it. ``selection="fastest"`` takes the trial with the
   least time instead (ties: first trial). No trial reaches the target: the study's time is inf.
3. **Per workload**: the median over studies, misses counting as inf (so with 3 studies a
   workload needs 2 hits; numpy's median: the mean of the middle two for an even count).

Beside the submission clock the same selected eval gives the wall clock (``total_duration``) and
the step count (``global_step``) to target, so each table reports time, wall time and steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.targets import TargetSet

SELECTIONS = ("upstream", "fastest")
STUDY_KEYS = ["submission", "workload", "study"]
WORKLOAD_KEYS = ["submission", "workload"]


def hits(metric: np.ndarray, target: np.ndarray | float, maximize: np.ndarray | bool) -> np.ndarray:
    """Boolean array: where `metric` meets `target` (non-strict; NaN never does)."""
    metric = np.asarray(metric, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(maximize, metric >= target, metric <= target)


def _segments(trial_id: np.ndarray, n_trials: int) -> tuple[np.ndarray, np.ndarray]:
    """Start row and row count of each trial in evals sorted by trial_id."""
    counts = np.bincount(trial_id, minlength=n_trials)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return starts, counts


def trial_results(evals: pd.DataFrame, trials: pd.DataFrame, targets: TargetSet) -> pd.DataFrame:
    """One row per trial: whether and when it reached its workload's validation target.

    Args:
        evals: `EvalLogs.evals` (sorted by trial_id, then eval_index).
        trials: `EvalLogs.trials` (index trial_id = 0..n-1).
        targets: the benchmark version's targets.

    Returns:
        The trials table plus: target, maximize, reached, hit_index (first eval meeting the
        target, -1 if none), time_to_target / wall_to_target / steps_to_target (s, s, steps; inf
        if not reached), best_metric, final_time (last eval's submission time), final_step,
        eval_share (accumulated eval time / total wall time at the last eval).
    """
    n = len(trials)
    out = trials.copy()
    info = {w: targets.workloads[w] for w in out["workload"].unique()}
    out["target"] = out["workload"].map({w: t.validation_target_value for w, t in info.items()})
    out["maximize"] = out["workload"].map({w: t.maximize for w, t in info.items()}).astype(bool)
    tid = evals["trial_id"].to_numpy(np.int64)
    if len(tid) > 1 and np.any(np.diff(tid) < 0):
        raise ValueError("evals must be sorted by trial_id")
    metric = evals["metric"].to_numpy(np.float64)
    target = out["target"].to_numpy(np.float64)
    maximize = out["maximize"].to_numpy(bool)
    hit = hits(metric, target[tid], maximize[tid])

    rows = np.flatnonzero(hit)
    first_tid, first_pos = np.unique(tid[rows], return_index=True)
    first_row = rows[first_pos]
    reached = np.zeros(n, dtype=bool)
    reached[first_tid] = True
    hit_index = np.full(n, -1, dtype=np.int64)
    hit_index[first_tid] = evals["eval_index"].to_numpy(np.int64)[first_row]
    out["reached"] = reached
    out["hit_index"] = hit_index
    for column, name in (
        ("score", "time_to_target"),
        ("wall_time", "wall_to_target"),
        ("global_step", "steps_to_target"),
    ):
        values = np.full(n, np.inf)
        values[first_tid] = evals[column].to_numpy(np.float64)[first_row]
        out[name] = values

    starts, counts = _segments(tid, n)
    nonempty = counts > 0
    best = np.full(n, np.nan)
    final = {c: np.full(n, np.nan) for c in ("score", "global_step", "wall_time", "eval_time")}
    if nonempty.any():
        s = starts[nonempty]
        with np.errstate(invalid="ignore"):
            bmax = np.fmax.reduceat(metric, s)
            bmin = np.fmin.reduceat(metric, s)
        best[nonempty] = np.where(maximize[nonempty], bmax, bmin)
        last = s + counts[nonempty] - 1
        for c in final:
            final[c][nonempty] = evals[c].to_numpy(np.float64)[last]
    out["best_metric"] = best
    out["final_time"] = final["score"]
    out["final_step"] = final["global_step"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["eval_share"] = final["eval_time"] / final["wall_time"]
    return out


def select_trials(trial_df: pd.DataFrame, selection: str = "upstream") -> pd.DataFrame:
    """Per (submission, workload, study): the selected trial and its time to target.

    Args:
        trial_df: output of `trial_results`; row order (trial_id) breaks ties.
        selection: ``upstream`` (smallest eval index reaching the target) or ``fastest``
            (least time to target).

    Returns:
        One row per study: submission, workload, study, n_trials, n_reached, trial_id (of the
        selected trial, -1 when none reached), trial, hit_index, time_to_target, wall_to_target,
        steps_to_target (inf when no trial reached the target).
    """
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    df = trial_df.reset_index(names="trial_id") if "trial_id" not in trial_df else trial_df
    groups = df.groupby(STUDY_KEYS, sort=True, observed=True)
    studies = groups.agg(n_trials=("trial_id", "size"), n_reached=("reached", "sum")).reset_index()
    order = (
        ["hit_index", "time_to_target", "trial_id"]
        if selection == "upstream"
        else ["time_to_target", "trial_id"]
    )
    reached = df[df["reached"]].sort_values([*STUDY_KEYS, *order], kind="stable")
    chosen = reached.drop_duplicates(STUDY_KEYS, keep="first")[
        [
            *STUDY_KEYS,
            "trial_id",
            "trial",
            "hit_index",
            "time_to_target",
            "wall_to_target",
            "steps_to_target",
        ]
    ]
    studies = studies.merge(chosen, on=STUDY_KEYS, how="left")
    studies["trial_id"] = studies["trial_id"].fillna(-1).astype(np.int64)
    studies["hit_index"] = studies["hit_index"].fillna(-1).astype(np.int64)
    studies["trial"] = studies["trial"].fillna("")
    for c in ("time_to_target", "wall_to_target", "steps_to_target"):
        studies[c] = studies[c].fillna(np.inf)
    studies["n_reached"] = studies["n_reached"].astype(np.int64)
    return studies


def group_median(codes: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """`np.median` of `values` within each group code 0..n_groups-1 (NaN if any NaN or empty).

    Computed as numpy does (the middle value, or the mean of the middle two), so a median of
    times with misses (inf) is inf exactly when at least half of them are misses.
    """
    codes = np.asarray(codes, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    out = np.full(n_groups, np.nan)
    if len(values) == 0:
        return out
    order = np.lexsort((values, codes))
    v = values[order]
    counts = np.bincount(codes, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = (v[lo] + v[hi]) / 2
    nan_groups = np.bincount(codes[np.isnan(values)], minlength=n_groups) > 0
    out[nan_groups] = np.nan
    return out


def aggregate_studies(study_df: pd.DataFrame) -> pd.DataFrame:
    """Per (submission, workload): medians over studies of time, wall time and steps to target.

    Returns:
        Columns submission, workload, time_to_target, wall_to_target, steps_to_target (medians;
        inf when at least half of the studies missed), n_studies, n_studies_reached, n_trials.
    """
    keys = study_df[WORKLOAD_KEYS]
    codes, uniques = pd.MultiIndex.from_frame(keys).factorize()
    out = pd.DataFrame(list(uniques), columns=WORKLOAD_KEYS)
    for c in ("time_to_target", "wall_to_target", "steps_to_target"):
        out[c] = group_median(codes, study_df[c].to_numpy(np.float64), len(uniques))
    out["n_studies"] = np.bincount(codes, minlength=len(uniques))
    reached = (study_df["n_reached"].to_numpy() > 0).astype(np.int64)
    out["n_studies_reached"] = np.bincount(codes, weights=reached, minlength=len(uniques)).astype(
        np.int64
    )
    out["n_trials"] = np.bincount(
        codes, weights=study_df["n_trials"].to_numpy(), minlength=len(uniques)
    ).astype(np.int64)
    return out.sort_values(WORKLOAD_KEYS, kind="stable").reset_index(drop=True)


def time_to_target_table(
    workload_df: pd.DataFrame,
    submissions: list[str],
    workloads: list[str] | tuple[str, ...],
    column: str = "time_to_target",
) -> pd.DataFrame:
    """Wide table: one row per submission, one column per workload (sorted); NaN = no logs."""
    wide = workload_df.pivot(index="submission", columns="workload", values=column)
    wide = wide.reindex(index=list(submissions), columns=sorted(workloads))
    wide.index.name = "submission"
    wide.columns.name = None
    return wide.astype(np.float64)
