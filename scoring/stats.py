"""Uncertainty and comparisons beyond the leaderboard score: bootstrap, win probability, speedups.

* **Bootstrap over studies.** A study is one independent repetition of a submission's whole
  benchmark run, so a replicate draws, for each submission independently, as many studies as it
  has, with replacement, and uses the same drawn studies on every workload. Per-workload medians,
  the held-out and 4x rules, profiles and scores are then recomputed jointly for all submissions
  (a score is relative to the others), with the same functions as the point estimate.
  Intervals are percentile intervals of the replicate scores.
* **Win probability** ``P[a, b]``: the fraction of replicates in which submission a scores higher
  than b (ties count one half).
* **Speedups** (upstream's ``compute_speedups``): per base workload, the ratio of a submission's
  median time to target to a reference submission's, without the 4x rule, a miss (or missing
  workload) counting as the budget x ruleset factor + 1 s; summarised by the geometric mean.
  ``time_ratio`` is upstream's "speedup" (< 1: less time than the reference); ``speedup`` is its
  inverse (> 1: faster).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd

from scoring.profiles import TAUS, scores_from_times_array
from scoring.targets import TargetSet


@dataclasses.dataclass
class Bootstrap:
    """Bootstrap replicates.

    Attributes:
        submissions: row order of the arrays.
        columns: workload order of `times`.
        times: per-workload medians of resampled studies, shape (samples, submissions, columns).
        scores: replicate scores, shape (samples, submissions).
    """

    submissions: list[str]
    columns: list[str]
    times: np.ndarray
    scores: np.ndarray


def bootstrap(
    study_df: pd.DataFrame,
    submissions: list[str],
    targets: TargetSet,
    n_samples: int = 1000,
    seed: int = 0,
    column: str = "time_to_target",
    taus: np.ndarray = TAUS,
) -> Bootstrap:
    """Resample studies and recompute all scores `n_samples` times.

    Args:
        study_df: per-study table from `scoring.time_to_target.select_trials`.
        submissions: submissions scored together, in output order.
        targets: the target set (scored workloads, held-out rule).
        n_samples: number of replicates.
        seed: seed of the resampling.
        column: per-study value to aggregate.
        taus: the profile grid.
    """
    columns = list(targets.scored_workloads)
    rng = np.random.default_rng(seed)
    times = np.full((n_samples, len(submissions), len(columns)), np.nan)
    col_index = {w: i for i, w in enumerate(columns)}
    for s, submission in enumerate(submissions):
        sub = study_df[study_df["submission"] == submission]
        sub = sub[sub["workload"].isin(col_index)]
        labels = sorted(sub["study"].unique())
        if not labels:
            continue
        cube = np.full((len(columns), len(labels)), np.nan)
        lab_index = {lab: j for j, lab in enumerate(labels)}
        cube[sub["workload"].map(col_index).to_numpy(), sub["study"].map(lab_index).to_numpy()] = (
            sub[column].to_numpy(np.float64)
        )
        draw = rng.integers(0, len(labels), size=(n_samples, len(labels)))
        sample = cube[:, draw]  # (columns, samples, studies)
        if np.isnan(sample).any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: workload never logged
                med = np.nanmedian(sample, axis=-1)
        else:
            med = np.median(sample, axis=-1)
        times[:, s, :] = med.T
    scores = scores_from_times_array(times, columns, targets, taus)
    return Bootstrap(list(submissions), columns, times, scores)


def score_intervals(boot: Bootstrap, confidence: float = 0.95) -> pd.DataFrame:
    """Percentile intervals and standard deviation of the replicate scores per submission."""
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(boot.scores, [alpha, 1 - alpha], axis=0)
    return pd.DataFrame(
        {"ci_low": lo, "ci_high": hi, "score_std": boot.scores.std(axis=0)},
        index=pd.Index(boot.submissions, name="submission"),
    )


def time_intervals(boot: Bootstrap, confidence: float = 0.95) -> pd.DataFrame:
    """Percentile intervals of each (submission, workload) median time to target."""
    alpha = (1.0 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: workload never logged
        # No interpolation: a bound between a finite time and a miss (inf) would be NaN.
        lo, hi = np.nanquantile(boot.times, [alpha, 1 - alpha], axis=0, method="inverted_cdf")
    index = pd.MultiIndex.from_product(
        [boot.submissions, boot.columns], names=["submission", "workload"]
    )
    return pd.DataFrame({"time_ci_low": lo.ravel(), "time_ci_high": hi.ravel()}, index=index)


def win_probabilities(boot: Bootstrap) -> pd.DataFrame:
    """P[row beats column]: fraction of replicates where row's score > column's (ties: half)."""
    s = boot.scores
    gt = (s[:, :, None] > s[:, None, :]).mean(axis=0)
    eq = (s[:, :, None] == s[:, None, :]).mean(axis=0)
    p = gt + 0.5 * eq
    np.fill_diagonal(p, np.nan)
    index = pd.Index(boot.submissions, name="submission")
    return pd.DataFrame(p, index=index, columns=pd.Index(boot.submissions, name="opponent"))


def speedups(
    times: pd.DataFrame,
    reference_submission: str,
    targets: TargetSet,
    self_tuning: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-workload and geometric-mean speedups over a reference submission.

    Args:
        times: raw median times to target, submissions x workloads (before the 4x rule).
        reference_submission: the submission everyone is compared with.
        targets: the target set (base workloads and budgets).
        self_tuning: use the self-tuning budget factor for misses.

    Returns:
        (per_workload, summary). per_workload columns: submission, workload, time,
        reference_time, time_ratio, speedup (misses already replaced by budget + 1 s);
        summary (index submission): time_ratio_gmean, speedup_gmean, time_saved (1 - time_ratio
        geometric mean: upstream's "roughly x% less time"), workloads.
    """
    if reference_submission not in times.index:
        raise ValueError(
            f"reference submission {reference_submission!r} not among the scored submissions "
            f"({', '.join(times.index)})"
        )
    base = list(targets.base_workloads)
    t = times.reindex(columns=base).astype(np.float64)
    caps = np.array([targets.budget_sec(w, self_tuning) + 1.0 for w in base])
    filled = np.where(np.isfinite(t.to_numpy()), t.to_numpy(), caps)
    ref = filled[list(t.index).index(reference_submission)]
    ratio = filled / ref
    long = pd.DataFrame(
        {
            "submission": np.repeat(t.index.to_numpy(), len(base)),
            "workload": np.tile(base, len(t)),
            "time": filled.ravel(),
            "reference_time": np.tile(ref, len(t)),
            "time_ratio": ratio.ravel(),
            "speedup": (1.0 / ratio).ravel(),
        }
    )
    gm = np.exp(np.mean(np.log(ratio), axis=1))  # geometric mean, as scipy.stats.gmean
    summary = pd.DataFrame(
        {
            "time_ratio_gmean": gm,
            "speedup_gmean": 1.0 / gm,
            "time_saved": 1.0 - gm,
            "workloads": len(base),
        },
        index=pd.Index(t.index, name="submission"),
    )
    return long, summary
