"""Performance profiles and the benchmark score, from a submissions x workloads time table.

Pure functions; the numpy core works on arrays with any leading batch dimensions so that the
bootstrap in `scoring.stats` runs exactly the same rules. The rules, as upstream applies them:

1. **Held-out variants** (v0.5 only; none in v0.6): a variant's time becomes inf when its base
   workload's time is inf or missing.
2. **The 4x rule**: any time more than 4 x the fastest time on that workload (over the
   submissions scored together) becomes inf.
3. **Held-out variants, again**: a base workload's time becomes inf when its variant's time is
   inf or missing; then only base workloads are kept.
4. **Ratios** ``r = t / min_s t`` per workload (inf stays inf; missing stays missing).
5. **Profile** ``rho(tau) = #{base workloads with r <= tau} / #base workloads`` on
   ``np.linspace(1, 4, 100)``; missing and inf never count.
6. **Score** = trapezoid integral of rho over tau divided by (4 - 1), in [0, 1].

A score therefore depends on which submissions are scored together.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.targets import TargetSet

MAX_RATIO = 4.0
TAUS = np.linspace(1.0, MAX_RATIO, num=100)


def _variant_pairs(columns: list[str], targets: TargetSet) -> list[tuple[int, int]]:
    index = {w: i for i, w in enumerate(columns)}
    return [
        (index[v], index[targets.base_workload_name(v)])
        for v in targets.held_out_workloads
        if v in index
    ]


def filter_times_array(
    times: np.ndarray, columns: list[str], targets: TargetSet, max_ratio: float = MAX_RATIO
) -> np.ndarray:
    """Apply the held-out and 4x rules to times of shape (..., submissions, len(columns)).

    Returns:
        Times of the base workloads only, shape (..., submissions, len(targets.base_workloads)),
        with rule violations set to inf. NaN (no logs) is kept.
    """
    t = np.array(times, dtype=np.float64, copy=True)
    pairs = _variant_pairs(columns, targets)
    for v, b in pairs:
        t[..., v] = np.where(np.isfinite(t[..., b]), t[..., v], np.inf)
    best = np.fmin.reduce(t, axis=-2, keepdims=True) if t.shape[-2] else t
    with np.errstate(invalid="ignore"):
        t = np.where(t > max_ratio * best, np.inf, t)
    for v, b in pairs:
        t[..., b] = np.where(np.isfinite(t[..., v]), t[..., b], np.inf)
    index = {w: i for i, w in enumerate(columns)}
    return t[..., [index[b] for b in targets.base_workloads]]


def ratios_array(filtered: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Performance ratios t / best (or t / reference row); inf stays inf, NaN stays NaN."""
    if reference is None:
        denom = np.fmin.reduce(filtered, axis=-2, keepdims=True) if filtered.shape[-2] else filtered
    else:
        denom = reference[..., None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = filtered / denom
    return np.where(np.isinf(filtered), np.inf, r)


def profiles_array(ratios: np.ndarray, n_base: int, taus: np.ndarray = TAUS) -> np.ndarray:
    """rho(tau) of shape (..., submissions, len(taus)) from ratios (..., submissions, workloads)."""
    with np.errstate(invalid="ignore"):
        within = ratios[..., None] <= taus
    return within.sum(axis=-2) / n_base


def scores_array(profiles: np.ndarray, taus: np.ndarray = TAUS) -> np.ndarray:
    """Benchmark scores: trapezoid integral of the profile over tau, divided by the tau range."""
    return np.trapezoid(profiles, x=taus, axis=-1) / (taus.max() - taus.min())


def scores_from_times_array(
    times: np.ndarray,
    columns: list[str],
    targets: TargetSet,
    taus: np.ndarray = TAUS,
    chunk: int = 128,
) -> np.ndarray:
    """Scores (..., submissions) from raw times (..., submissions, columns), in memory chunks."""
    flat = times.reshape((-1, *times.shape[-2:]))
    out = np.empty(flat.shape[:2])
    n_base = len(targets.base_workloads)
    for i in range(0, len(flat), chunk):
        filtered = filter_times_array(flat[i : i + chunk], columns, targets)
        out[i : i + chunk] = scores_array(
            profiles_array(ratios_array(filtered), n_base, taus), taus
        )
    return out.reshape(times.shape[:-1])


# ------------------------------------------------------------------------------------------------
# DataFrame wrappers.


def filter_times(times: pd.DataFrame, targets: TargetSet) -> pd.DataFrame:
    """Held-out and 4x rules on a submissions x workloads table; returns base workloads only.

    Workloads of `targets` with no column are treated as missing for every submission.
    """
    columns = list(dict.fromkeys([*targets.scored_workloads, *times.columns]))
    full = times.reindex(columns=columns)
    filtered = filter_times_array(full.to_numpy(np.float64), columns, targets)
    return pd.DataFrame(filtered, index=times.index, columns=list(targets.base_workloads))


def performance_ratios(
    filtered: pd.DataFrame, reference_submission: str | None = None
) -> pd.DataFrame:
    """Ratios of each submission's time to the best time (or to a reference submission's)."""
    values = filtered.to_numpy(np.float64)
    reference = None
    if reference_submission is not None:
        if reference_submission not in filtered.index:
            raise ValueError(f"no submission named {reference_submission!r}")
        reference = filtered.loc[reference_submission].to_numpy(np.float64)
    return pd.DataFrame(
        ratios_array(values, reference), index=filtered.index, columns=filtered.columns
    )


def performance_profiles(
    ratios: pd.DataFrame, n_base: int | None = None, taus: np.ndarray = TAUS
) -> pd.DataFrame:
    """rho(tau): one row per submission, one column per tau."""
    n_base = ratios.shape[1] if n_base is None else n_base
    rho = profiles_array(ratios.to_numpy(np.float64), n_base, taus)
    out = pd.DataFrame(rho, index=ratios.index, columns=pd.Index(taus, name="tau"))
    return out


def benchmark_scores(profiles: pd.DataFrame) -> pd.Series:
    """Scores from a profile table (columns = taus)."""
    taus = profiles.columns.to_numpy(np.float64)
    return pd.Series(
        scores_array(profiles.to_numpy(np.float64), taus), index=profiles.index, name="score"
    )
