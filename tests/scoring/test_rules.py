"""Each scoring rule on tiny synthetic data, built so that the test fails if the rule drifts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring import profiles as prof
from scoring import stats
from scoring import time_to_target as ttt
from scoring.api import ScoringError, score_logs
from scoring.targets import load_targets

V06 = load_targets("0.6")
V05 = load_targets("0.5")
ACC = 0.77431  # imagenet_resnet validation accuracy target (maximised)
LOSS = 0.123735  # criteo1tb validation loss target (minimised)
INF = np.inf


def _studies(logs, selection="upstream"):
    trials = ttt.trial_results(logs.evals, logs.trials, V06)
    return trials, ttt.select_trials(trials, selection)


def _times(rows: dict[str, dict[str, float]]) -> pd.DataFrame:
    df = pd.DataFrame(rows).T.astype(float)
    df.index.name = "submission"
    return df


# --- per trial -----------------------------------------------------------------------------------


def test_target_comparison_is_non_strict_in_both_directions(make_logs):
    logs = make_logs(
        [
            ("s", "imagenet_resnet", "study_0", "trial_1", [10, 20, 30], [0.5, ACC, 0.8]),
            ("s", "criteo1tb", "study_0", "trial_1", [10, 20, 30], [0.2, LOSS, 0.1]),
            # Just short of the target: never reached.
            ("s", "imagenet_resnet", "study_1", "trial_1", [10, 20], [0.5, ACC - 1e-9]),
            ("s", "criteo1tb", "study_1", "trial_1", [10, 20], [0.2, LOSS + 1e-9]),
        ]
    )
    trials, _ = _studies(logs)
    assert trials["hit_index"].tolist() == [1, 1, -1, -1]
    assert trials["time_to_target"].tolist() == [20.0, 20.0, INF, INF]


def test_nan_metric_never_reaches_the_target(make_logs):
    logs = make_logs(
        [("s", "criteo1tb", "study_0", "trial_1", [10, 20, 30], [np.nan, np.nan, 0.1])]
    )
    trials, _ = _studies(logs)
    assert trials["hit_index"].tolist() == [2]


def test_first_hit_not_best_value_and_steps_and_wall_clock(make_logs):
    logs = make_logs(
        [
            (
                "s",
                "imagenet_resnet",
                "study_0",
                "trial_1",
                [5, 15, 25, 35],
                [0.1, 0.78, 0.7, 0.9],
                [1, 500, 900, 1300],
            )
        ]
    )
    trials, studies = _studies(logs)
    row = trials.iloc[0]
    assert (row["time_to_target"], row["steps_to_target"], row["wall_to_target"]) == (15, 500, 30)
    assert row["best_metric"] == 0.9
    assert row["final_time"] == 35
    assert row["eval_share"] == pytest.approx(0.25)
    assert studies["time_to_target"].tolist() == [15.0]


# --- per study -----------------------------------------------------------------------------------


def test_upstream_selection_takes_smallest_eval_index_not_least_time(make_logs):
    logs = make_logs(
        [
            # trial_1 reaches the target at eval 2 (index 1) but late: 500 s.
            ("s", "imagenet_resnet", "study_0", "trial_1", [100, 500, 900], [0.5, 0.8, 0.8]),
            # trial_2 needs three evals, but reaches it after only 300 s.
            ("s", "imagenet_resnet", "study_0", "trial_2", [50, 100, 300], [0.5, 0.6, 0.8]),
            ("s", "imagenet_resnet", "study_0", "trial_3", [50, 100, 300], [0.5, 0.6, 0.7]),
        ]
    )
    _, upstream = _studies(logs, "upstream")
    _, fastest = _studies(logs, "fastest")
    assert upstream[["trial", "time_to_target", "hit_index"]].values.tolist() == [
        ["trial_1", 500.0, 1]
    ]
    assert fastest[["trial", "time_to_target", "hit_index"]].values.tolist() == [
        ["trial_2", 300.0, 2]
    ]
    assert upstream["n_trials"].tolist() == [3] and upstream["n_reached"].tolist() == [2]


def test_ties_at_the_same_eval_index_go_to_the_least_time(make_logs):
    logs = make_logs(
        [
            ("s", "imagenet_resnet", "study_0", "trial_1", [100, 500], [0.5, 0.8]),
            ("s", "imagenet_resnet", "study_0", "trial_2", [100, 400], [0.5, 0.8]),
            ("s", "imagenet_resnet", "study_0", "trial_3", [100, 450], [0.5, 0.8]),
        ]
    )
    _, studies = _studies(logs)
    assert studies["trial"].tolist() == ["trial_2"]


def test_study_without_any_hit_is_inf(make_logs):
    logs = make_logs(
        [
            ("s", "imagenet_resnet", "study_0", "trial_1", [100, 500], [0.5, 0.7]),
            ("s", "imagenet_resnet", "study_0", "trial_2", [100, 500], [0.5, 0.6]),
        ]
    )
    _, studies = _studies(logs)
    assert studies["time_to_target"].tolist() == [INF]
    assert studies["trial_id"].tolist() == [-1]


def test_unknown_selection_is_rejected(make_logs):
    logs = make_logs([("s", "imagenet_resnet", "study_0", "trial_1", [1], [0.9])])
    trials, _ = _studies(logs)
    with pytest.raises(ValueError, match="selection"):
        ttt.select_trials(trials, "best")


# --- per workload: median over studies -----------------------------------------------------------


@pytest.mark.parametrize(
    ("study_times", "expected"),
    [
        ([100.0, 200.0, 300.0], 200.0),
        ([100.0, INF, 300.0], 300.0),
        ([100.0, INF, INF], INF),
        ([100.0, INF], INF),  # even count: mean of the middle two
        ([100.0, 200.0], 150.0),
        ([50.0, 100.0, INF, INF, 10.0], 100.0),  # v0.5: five studies
    ],
)
def test_median_over_studies_counts_misses_as_inf(make_logs, study_times, expected):
    trials = []
    for j, t in enumerate(study_times):
        value = 0.8 if np.isfinite(t) else 0.1
        trials.append(
            ("s", "imagenet_resnet", f"study_{j}", "trial_1", [t if value > 0.5 else 1], [value])
        )
    logs = make_logs(trials)
    _, studies = _studies(logs)
    workloads = ttt.aggregate_studies(studies)
    assert workloads["time_to_target"].tolist() == [expected]
    assert workloads["n_studies_reached"].tolist() == [int(np.isfinite(study_times).sum())]


def test_group_median_equals_numpy_median():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 7, 200)
    values = rng.exponential(100, 200)
    values[rng.random(200) < 0.3] = INF
    got = ttt.group_median(codes, values, 8)
    for g in range(7):
        assert got[g] == np.median(values[codes == g])
    assert np.isnan(got[7])


# --- the 4x rule, held-out variants, profiles, score ---------------------------------------------


def test_four_x_rule_is_strictly_greater_than_four_times_the_best():
    times = _times(
        {
            "a": {"wmt": 100.0},
            "b": {"wmt": 400.0},  # exactly 4x: kept
            "c": {"wmt": 400.1},  # beyond 4x: a miss
        }
    )
    scored = prof.filter_times(times, V06)
    assert scored["wmt"].tolist() == [100.0, 400.0, INF]
    ratios = prof.performance_ratios(scored)
    assert ratios["wmt"].tolist() == [1.0, 4.0, INF]


def test_missing_workloads_count_as_failures_and_the_denominator_is_all_base_workloads():
    times = _times({"a": {"wmt": 100.0, "ogbg": 50.0}, "b": {"wmt": 200.0}})
    scored = prof.filter_times(times, V06)
    assert list(scored.columns) == list(V06.base_workloads)  # absent workloads become columns
    assert np.isnan(scored.loc["b", "ogbg"]) and np.isnan(scored.loc["a", "criteo1tb"])
    profiles = prof.performance_profiles(prof.performance_ratios(scored), len(V06.base_workloads))
    assert profiles.loc["a"].iloc[0] == 2 / 8  # fastest on both of 8 workloads
    assert profiles.loc["b"].iloc[-1] == 1 / 8  # within 2x on wmt only
    assert profiles.loc["b"].iloc[0] == 0.0


def test_profile_grid_and_score_are_the_trapezoid_over_100_points_divided_by_3():
    times = _times({"a": {"wmt": 100.0}, "b": {"wmt": 220.0}})
    scored = prof.filter_times(times, V06)
    profiles = prof.performance_profiles(prof.performance_ratios(scored), 1)
    taus = profiles.columns.to_numpy()
    assert len(taus) == 100 and taus[0] == 1.0 and taus[-1] == 4.0
    expected_rho_b = (taus >= 2.2).astype(float)
    np.testing.assert_array_equal(profiles.loc["b"].to_numpy(), expected_rho_b)
    scores = prof.benchmark_scores(profiles)
    assert scores["a"] == pytest.approx(1.0)
    assert scores["b"] == pytest.approx(np.trapezoid(expected_rho_b, taus) / 3)
    # The grid matters: the exact integral would be 0.6, the trapezoid on 100 points is not.
    assert scores["b"] != pytest.approx(0.6, abs=1e-4)


def test_all_inf_column_counts_for_nobody():
    times = _times({"a": {"wmt": INF, "ogbg": 10.0}, "b": {"wmt": INF, "ogbg": 20.0}})
    ratios = prof.performance_ratios(prof.filter_times(times, V06))
    assert np.isinf(ratios["wmt"]).all()
    profiles = prof.performance_profiles(ratios, 8)
    assert profiles.loc["a"].max() == 1 / 8


def test_v05_held_out_rule_order():
    """Variant -> inf when the base missed, *then* the 4x rule, *then* base -> inf when the variant
    missed. With another order, b's base would wrongly become a miss: a's very fast variant time
    would set the 4x bar although a never solved the base workload."""
    base, variant = "wmt", "wmt_glu_tanh"
    times = _times(
        {
            "a": {base: INF, variant: 10.0},
            "b": {base: 100.0, variant: 100.0},
            "c": {base: 120.0, variant: 500.0},  # variant beyond 4x of b's: c's base is a miss
            "d": {base: 110.0, variant: np.nan},  # variant never run: base is a miss
        }
    )
    scored = prof.filter_times(times, V05)
    assert list(scored.columns) == list(V05.base_workloads)
    assert scored[base].tolist()[:2] == [INF, 100.0]
    assert scored.loc["c", base] == INF
    assert scored.loc["d", base] == INF
    # And the variant itself is never scored.
    assert variant not in scored.columns


def test_v06_has_no_held_out_rule():
    times = _times({"a": {"wmt": 100.0, "wmt_glu_tanh": INF}})
    assert prof.filter_times(times, V06).loc["a", "wmt"] == 100.0
    assert prof.filter_times(times, V05).loc["a", "wmt"] == INF


def test_batched_score_equals_dataframe_score():
    rng = np.random.default_rng(1)
    columns = list(V05.scored_workloads)
    times = rng.exponential(100, (3, 4, len(columns)))
    times[rng.random(times.shape) < 0.3] = INF
    batched = prof.scores_from_times_array(times, columns, V05, chunk=2)
    for b in range(3):
        df = pd.DataFrame(times[b], index=list("abcd"), columns=columns)
        profiles = prof.performance_profiles(
            prof.performance_ratios(prof.filter_times(df, V05)), len(V05.base_workloads)
        )
        np.testing.assert_allclose(batched[b], prof.benchmark_scores(profiles).to_numpy())


# --- counts, strict mode, self-tuning -------------------------------------------------------------


def _full_submission(name, n_studies=3, n_trials=5, skip=()):
    trials = []
    for w in V06.base_workloads:
        t = V06.workloads[w]
        hit = t.validation_target_value * (1.01 if t.maximize else 0.99)
        for j in range(n_studies):
            for k in range(1, n_trials + 1):
                if (w, j, k) in skip:
                    continue
                trials.append((name, w, f"study_{j}", f"trial_{k}", [10.0 * k, 20.0 * k], [0, hit]))
    return trials


def test_strict_mode_rejects_missing_trials_and_counts_them_otherwise(make_logs):
    logs = make_logs(_full_submission("s", skip={("wmt", 1, 5)}))
    with pytest.raises(ScoringError, match=r"wmt study_1 has 4 trials, expected 5"):
        score_logs(logs, V06, strict=True, bootstrap_samples=0)
    result = score_logs(logs, V06, strict=False, bootstrap_samples=0)
    assert [i.kind for i in result.issues] == ["missing_trials"]
    row = result.completeness.set_index("workload").loc["wmt"]
    assert (row["studies"], row["trials"], bool(row["complete"])) == (3, 14, False)
    # Self-tuning: trials per study are not checked.
    assert score_logs(logs, V06, strict=True, self_tuning=True, bootstrap_samples=0)


def test_strict_mode_rejects_missing_studies_and_workloads(make_logs):
    logs = make_logs(_full_submission("s", n_studies=2))
    with pytest.raises(ScoringError, match="2 studies, expected 3"):
        score_logs(logs, V06, strict=True, bootstrap_samples=0)
    complete = make_logs(_full_submission("s"))
    assert score_logs(complete, V06, strict=True, bootstrap_samples=0).scores["score"].iloc[0] == 1
    with pytest.raises(ScoringError, match="no logs for workload criteo1tb"):
        pruned = [t for t in _full_submission("s") if t[1] != "criteo1tb"]
        score_logs(make_logs(pruned), V06, strict=True, bootstrap_samples=0)


# --- bootstrap, win probability, speedups --------------------------------------------------------


def test_bootstrap_is_seeded_and_brackets_the_score(make_logs):
    trials = []
    for sub, base in (("fast", 100.0), ("slow", 180.0)):
        for j, jitter in enumerate((1.0, 1.3, 0.8)):
            trials.append((sub, "wmt", f"study_{j}", "trial_1", [base * jitter], [31.0]))
    logs = make_logs(trials)
    one = score_logs(logs, V06, bootstrap_samples=200, seed=3)
    two = score_logs(logs, V06, bootstrap_samples=200, seed=3)
    pd.testing.assert_frame_equal(one.scores, two.scores)
    s = one.scores
    assert ((s["ci_low"] <= s["score"] + 1e-12) & (s["score"] <= s["ci_high"] + 1e-12)).all()
    wins = one.win_probabilities
    assert wins.loc["fast", "slow"] + wins.loc["slow", "fast"] == pytest.approx(1.0)
    assert wins.loc["fast", "slow"] > 0.5


def test_bootstrap_resamples_studies_jointly_across_workloads(make_logs):
    # One study is fast on both workloads, the other slow on both: a replicate drawing the same
    # study twice is consistently fast or slow, never mixed.
    trials = []
    for j, t in enumerate((100.0, 300.0)):
        trials.append(("a", "wmt", f"study_{j}", "trial_1", [t], [31.0]))
        trials.append(("a", "ogbg", f"study_{j}", "trial_1", [t / 10], [0.3]))
    boot = stats.bootstrap(
        ttt.select_trials(
            ttt.trial_results(make_logs(trials).evals, make_logs(trials).trials, V06)
        ),
        ["a"],
        V06,
        n_samples=300,
        seed=0,
    )
    cols = [boot.columns.index("wmt"), boot.columns.index("ogbg")]
    ratio = boot.times[:, 0, cols[0]] / boot.times[:, 0, cols[1]]
    np.testing.assert_allclose(ratio, 10.0)
    assert set(np.round(boot.times[:, 0, cols[0]])) <= {100.0, 200.0, 300.0}


def test_speedups_replace_misses_by_budget_plus_one_and_use_the_geometric_mean():
    times = _times(
        {
            "ref": {w: 1000.0 for w in V05.base_workloads},
            "new": {**{w: 500.0 for w in V05.base_workloads}, "wmt": INF},
        }
    )
    per_workload, summary = stats.speedups(times, "ref", V05)
    wmt = per_workload.set_index(["submission", "workload"]).loc[("new", "wmt")]
    assert wmt["time"] == 48_151 + 1  # the v0.5 budget, as upstream's compute_speedups
    expected = np.exp(np.mean(np.log([0.5] * 7 + [48_152 / 1000])))
    assert summary.loc["new", "time_ratio_gmean"] == pytest.approx(expected)
    assert summary.loc["new", "speedup_gmean"] == pytest.approx(1 / expected)
    assert summary.loc["ref", "time_ratio_gmean"] == 1.0
    _, self_tuning = stats.speedups(times, "ref", V05, self_tuning=True)
    expected_st = np.exp(np.mean(np.log([0.5] * 7 + [(3 * 48_151 + 1) / 1000])))
    assert self_tuning.loc["new", "time_ratio_gmean"] == pytest.approx(expected_st)
    with pytest.raises(ValueError, match="reference submission"):
        stats.speedups(times, "nobody", V05)
