"""The scoring pipeline: logs -> trials -> studies -> workloads -> profiles -> scores.

`score_submissions` reads a log tree and scores it; `score_logs` scores logs already read (or
built in memory). Both return a `ScoringResult` of DataFrames. Nothing here writes files; see
`scoring.report.write_outputs`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scoring import profiles as prof
from scoring import stats
from scoring import time_to_target as ttt
from scoring.logs import EvalLogs, LogIssue, read_logs
from scoring.targets import DEFAULT_VERSION, TargetSet, load_targets


class ScoringError(ValueError):
    """Logs that cannot be scored under the chosen rules (e.g. ``strict`` count violations)."""


@dataclasses.dataclass
class ScoringResult:
    """Everything a scoring run computes. All tables are pandas DataFrames.

    Attributes:
        scores: index submission; score (upstream's benchmark score), ci_low / ci_high /
            score_std (bootstrap over studies), workloads_counted (base workloads within 4x of
            the best), and with a reference submission speedup_gmean / time_ratio_gmean.
        time_to_targets: submissions x workloads median times to target (s, submission clock),
            before the 4x and held-out rules; inf = not reached, NaN = no logs (upstream's
            ``time_to_targets.csv``).
        scored_times: the same after the held-out and 4x rules, base workloads only.
        ratios: scored_times / per-workload best.
        profiles: submissions x tau, rho(tau).
        workloads: one row per (submission, workload): time_to_target, wall_to_target,
            steps_to_target (medians over studies), time_ci_low / time_ci_high, scored_time,
            ratio, n_studies, n_studies_reached, n_trials, best_metric, eval_share (median over
            trials of eval time / wall time), representative_trial (plotted curve).
        studies: one row per (submission, workload, study): the selected trial and its times.
        trials: one row per trial: reached, hit_index, times to target, best metric, eval share.
        win_probabilities: P[row submission scores higher than column submission].
        speedups / speedup_summary: per-workload and geometric-mean speedups over
            ``reference_submission`` (None without one).
        completeness: per (submission, workload): studies and trials found vs expected.
        issues: missing, skipped and unscored logs, and count violations.
        settings: the options used, the benchmark version and its workloads.
        logs: the parsed logs (for plots).
    """

    scores: pd.DataFrame
    time_to_targets: pd.DataFrame
    scored_times: pd.DataFrame
    ratios: pd.DataFrame
    profiles: pd.DataFrame
    workloads: pd.DataFrame
    studies: pd.DataFrame
    trials: pd.DataFrame
    win_probabilities: pd.DataFrame
    speedups: pd.DataFrame | None
    speedup_summary: pd.DataFrame | None
    completeness: pd.DataFrame
    issues: list[LogIssue]
    settings: dict[str, Any]
    logs: EvalLogs
    targets: TargetSet


def completeness(
    trial_df: pd.DataFrame,
    submissions: Sequence[str],
    targets: TargetSet,
    self_tuning: bool,
) -> tuple[pd.DataFrame, list[LogIssue]]:
    """Studies and trials found per (submission, workload) against the version's protocol.

    Returns:
        (table, issues): table columns submission, workload, studies, expected_studies, trials,
        expected_trials (per study; 0 = not checked: self-tuning or a version without a
        protocol), complete; one issue per
        missing workload, wrong study count and wrong trial count.
    """
    expected_trials = 0 if self_tuning else targets.num_trials
    expected_studies = targets.num_studies
    per_study = (
        trial_df.groupby(["submission", "workload", "study"], observed=True)
        .size()
        .rename("trials")
        .reset_index()
    )
    per_study = per_study[per_study["workload"].isin(targets.scored_workloads)]
    per_study["bad"] = bool(expected_trials) & (per_study["trials"] != expected_trials)
    table = per_study.groupby(["submission", "workload"], observed=True).agg(
        studies=("study", "size"), trials=("trials", "sum"), bad_studies=("bad", "sum")
    )
    full = pd.MultiIndex.from_product(
        [list(submissions), list(targets.scored_workloads)], names=["submission", "workload"]
    )
    table = table.reindex(full, fill_value=0).reset_index()
    table.insert(3, "expected_studies", expected_studies)
    table["expected_trials"] = expected_trials
    studies_ok = (table["studies"] > 0) & (
        (table["studies"] == expected_studies) if expected_studies else True
    )
    table["complete"] = studies_ok & (table["bad_studies"] == 0)
    issues = []
    for row in table[~table["complete"]].itertuples():
        if row.studies == 0:
            issues.append(
                LogIssue(
                    "missing_workload",
                    "",
                    f"{row.submission}: no logs for workload {row.workload}",
                    row.submission,
                )
            )
        elif expected_studies and row.studies != expected_studies:
            issues.append(
                LogIssue(
                    "missing_studies",
                    "",
                    f"{row.submission}: {row.workload} has {row.studies} studies, expected "
                    f"{targets.num_studies}",
                    row.submission,
                )
            )
    for row in per_study[per_study["bad"]].itertuples():
        issues.append(
            LogIssue(
                "missing_trials",
                "",
                f"{row.submission}: {row.workload} {row.study} has {row.trials} trials, "
                f"expected {expected_trials}",
                row.submission,
            )
        )
    return table.drop(columns="bad_studies"), issues


def _representative_trials(trial_df: pd.DataFrame, study_df: pd.DataFrame) -> pd.Series:
    """Per (submission, workload): the trial whose curve stands for the submission in plots.

    The selected trial of the median study (lower middle for an even count); when the median
    study missed the target, the trial with the best metric value of all.
    """
    keys = ttt.WORKLOAD_KEYS
    ordered = study_df.sort_values([*keys, "time_to_target", "study"], kind="stable")
    position = ordered.groupby(keys, sort=False).cumcount()
    size = ordered.groupby(keys, sort=False)["study"].transform("size")
    median = ordered[position == (size - 1) // 2].set_index(keys)["trial_id"]
    signed = np.where(trial_df["maximize"], trial_df["best_metric"], -trial_df["best_metric"])
    best = (
        trial_df.assign(_signed=signed, trial_id=trial_df.index.to_numpy())
        .reset_index(drop=True)
        .sort_values(
            [*keys, "_signed", "trial_id"],
            ascending=[True, True, False, True],
            na_position="last",
            kind="stable",
        )
        .drop_duplicates(keys)
        .set_index(keys)["trial_id"]
    )
    out = median.where(median >= 0, best.reindex(median.index))
    return out.astype(np.int64).rename("representative_trial")


def score_logs(
    logs: EvalLogs,
    targets: TargetSet,
    *,
    self_tuning: bool = False,
    selection: str = "upstream",
    strict: bool = False,
    bootstrap_samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    reference_submission: str | None = None,
) -> ScoringResult:
    """Score parsed logs. See `score_submissions` for the arguments."""
    unknown = sorted(set(logs.trials["workload"]) - set(targets.workloads))
    if unknown:
        raise ScoringError(
            f"logs hold workloads unknown to benchmark version {targets.benchmark_version}: "
            f"{', '.join(unknown)}"
        )
    submissions = list(logs.submissions)
    if not submissions:
        raise ScoringError("no submissions to score")
    if targets.base_workloads_present_only:
        present = set(logs.trials["workload"])
        found = tuple(w for w in targets.base_workloads if w in present)
        if not found:
            raise ScoringError(
                f"no logs of any workload of benchmark version {targets.benchmark_version} "
                f"({', '.join(targets.base_workloads)})"
            )
        targets = targets.with_base_workloads(found)
    if reference_submission is not None and reference_submission not in submissions:
        raise ScoringError(
            f"reference submission {reference_submission!r} is not among the scored "
            f"submissions ({', '.join(submissions)})"
        )
    trial_df = ttt.trial_results(logs.evals, logs.trials, targets)
    table, count_issues = completeness(trial_df, submissions, targets, self_tuning)
    if strict and count_issues:
        listed = "; ".join(i.message for i in count_issues[:3])
        more = f" (and {len(count_issues) - 3} more)" if len(count_issues) > 3 else ""
        raise ScoringError(f"--strict: {listed}{more}; complete the logs or score without --strict")
    study_df = ttt.select_trials(trial_df, selection)
    workload_df = ttt.aggregate_studies(study_df)
    columns = list(targets.scored_workloads)
    times = ttt.time_to_target_table(workload_df, submissions, columns)
    scored = prof.filter_times(times, targets)
    ratios = prof.performance_ratios(scored)
    profiles = prof.performance_profiles(ratios, n_base=len(targets.base_workloads))
    scores = prof.benchmark_scores(profiles).to_frame()
    scores["workloads_counted"] = (ratios <= prof.MAX_RATIO).sum(axis=1).astype(np.int64)

    boot = None
    if bootstrap_samples > 0:
        boot = stats.bootstrap(study_df, submissions, targets, bootstrap_samples, seed)
        scores = scores.join(stats.score_intervals(boot, confidence))
        wins = stats.win_probabilities(boot)
    else:
        for c in ("ci_low", "ci_high", "score_std"):
            scores[c] = np.nan
        wins = pd.DataFrame(
            np.nan,
            index=pd.Index(submissions, name="submission"),
            columns=pd.Index(submissions, name="opponent"),
        )

    # Long per-workload table.
    workload_df = workload_df.set_index(ttt.WORKLOAD_KEYS)
    full_index = pd.MultiIndex.from_product([submissions, columns], names=ttt.WORKLOAD_KEYS)
    workload_df = workload_df.reindex(full_index)
    for c in ("n_studies", "n_studies_reached", "n_trials"):
        workload_df[c] = workload_df[c].fillna(0).astype(np.int64)
    if boot is not None:
        workload_df = workload_df.join(stats.time_intervals(boot, confidence))
    scored_long = scored.stack(future_stack=True).rename("scored_time")
    ratio_long = ratios.stack(future_stack=True).rename("ratio")
    scored_long.index.names = ratio_long.index.names = ttt.WORKLOAD_KEYS
    workload_df = workload_df.join(scored_long).join(ratio_long)
    grouped = trial_df.groupby(ttt.WORKLOAD_KEYS, observed=True)
    maximize = grouped["maximize"].first()
    best = pd.Series(
        np.where(maximize, grouped["best_metric"].max(), grouped["best_metric"].min()),
        index=maximize.index,
    )
    workload_df["best_metric"] = best
    workload_df["eval_share"] = grouped["eval_share"].median()
    if len(study_df):
        workload_df = workload_df.join(_representative_trials(trial_df, study_df))
    else:
        workload_df["representative_trial"] = -1
    workload_df["representative_trial"] = (
        workload_df["representative_trial"].fillna(-1).astype(np.int64)
    )
    workload_df = workload_df.reset_index()

    speedups = summary = None
    if reference_submission is not None:
        speedups, summary = stats.speedups(times, reference_submission, targets, self_tuning)
        scores = scores.join(summary[["speedup_gmean", "time_ratio_gmean"]])
    scores.index.name = "submission"

    settings = {
        "benchmark_version": targets.benchmark_version,
        "ruleset": "self_tuning" if self_tuning else "external_tuning",
        "selection": selection,
        "strict": strict,
        "bootstrap_samples": bootstrap_samples,
        "seed": seed,
        "confidence": confidence,
        "reference_submission": reference_submission,
        "submissions": submissions,
        "base_workloads": list(targets.base_workloads),
        "held_out_workloads": list(targets.held_out_workloads),
        "num_studies": targets.num_studies,
        "num_trials": 0 if self_tuning else targets.num_trials,
        "taus": [float(prof.TAUS[0]), float(prof.TAUS[-1]), len(prof.TAUS)],
    }
    return ScoringResult(
        scores=scores,
        time_to_targets=times,
        scored_times=scored,
        ratios=ratios,
        profiles=profiles,
        workloads=workload_df,
        studies=study_df,
        trials=trial_df,
        win_probabilities=wins,
        speedups=speedups,
        speedup_summary=summary,
        completeness=table,
        issues=[*logs.issues, *count_issues],
        settings=settings,
        logs=logs,
        targets=targets,
    )


def score_submissions(
    submission_directory: str | os.PathLike | Mapping[str, Sequence[str | os.PathLike]],
    *,
    benchmark_version: str = DEFAULT_VERSION,
    self_tuning: bool = False,
    selection: str = "upstream",
    strict: bool = False,
    skip_bad_logs: bool = False,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    workloads: Sequence[str] | None = None,
    bootstrap_samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    reference_submission: str | None = None,
) -> ScoringResult:
    """Read a log tree and score every submission in it together.

    Args:
        submission_directory: a folder of submissions (each entry one submission), one
            submission folder (holding ``study_*``), or a mapping name -> experiment folders.
        benchmark_version: ``0.5``, ``0.6`` (default) or ``current``, or a targets JSON path.
        self_tuning: self-tuning ruleset (no trials-per-study check; budget factor for misses
            in speedups).
        selection: ``upstream`` (trial reaching the target at the smallest eval index) or
            ``fastest`` (least time to target) per study.
        strict: raise `ScoringError` unless every submission has every scored workload with
            the version's number of studies (and, external tuning, trials per study).
        skip_bad_logs: skip corrupt CSVs (listed in ``issues``) instead of raising.
        include / exclude: submission names to keep / drop.
        workloads: score these workloads instead of the version's base set (no held-out rule).
        bootstrap_samples: bootstrap replicates over studies (0: none).
        seed: seed of the bootstrap.
        confidence: level of the bootstrap intervals.
        reference_submission: compute speedups over this submission.

    Raises:
        scoring.logs.LogError: unreadable logs. ScoringError: unscorable under the options.
        scoring.targets.TargetsError: unknown version or workload.
    """
    targets = load_targets(benchmark_version)
    if workloads:
        targets = targets.with_base_workloads(tuple(workloads))
    logs = read_logs(submission_directory, targets, skip_bad_logs, include, exclude)
    return score_logs(
        logs,
        targets,
        self_tuning=self_tuning,
        selection=selection,
        strict=strict,
        bootstrap_samples=bootstrap_samples,
        seed=seed,
        confidence=confidence,
        reference_submission=reference_submission,
    )
