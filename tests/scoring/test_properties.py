"""Properties of the score that must hold for any logs (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import profiles as prof
from scoring.api import score_logs
from scoring.logs import build_logs
from scoring.targets import load_targets

V05 = load_targets("0.5")
V06 = load_targets("0.6")
TARGETS = {"0.5": V05, "0.6": V06}
FAST = settings(max_examples=60, deadline=None)

# A time to target: finite seconds, a miss (inf) or no logs (NaN).
time_value = st.one_of(
    st.floats(min_value=1.0, max_value=1e5, allow_nan=False),
    st.just(np.inf),
    st.just(np.nan),
)


def _score_table(times: np.ndarray, targets) -> np.ndarray:
    columns = list(targets.scored_workloads)
    df = pd.DataFrame(times, index=[f"s{i}" for i in range(len(times))], columns=columns)
    profiles = prof.performance_profiles(
        prof.performance_ratios(prof.filter_times(df, targets)), len(targets.base_workloads)
    )
    return prof.benchmark_scores(profiles).to_numpy()


@st.composite
def time_tables(draw, min_rows: int = 1):
    version = draw(st.sampled_from(["0.5", "0.6"]))
    n_cols = len(TARGETS[version].scored_workloads)
    rows = draw(st.integers(min_rows, 5))
    values = draw(st.lists(time_value, min_size=rows * n_cols, max_size=rows * n_cols))
    return version, np.array(values, dtype=float).reshape(rows, n_cols)


@FAST
@given(time_tables())
def test_scores_lie_in_the_unit_interval(table):
    version, times = table
    scores = _score_table(times, TARGETS[version])
    assert np.all((scores >= 0) & (scores <= 1 + 1e-12))


@FAST
@given(time_tables(), st.data())
def test_a_submission_at_least_as_fast_everywhere_never_scores_lower(table, data):
    version, times = table
    targets = TARGETS[version]
    slower = times[0]
    # Faster or equal on every workload; a miss or missing entry may become anything.
    factors = np.array(
        data.draw(st.lists(st.floats(0.01, 1.0), min_size=len(slower), max_size=len(slower)))
    )
    replacement = np.array(
        data.draw(st.lists(time_value, min_size=len(slower), max_size=len(slower)))
    )
    faster = np.where(np.isfinite(slower), slower * factors, replacement)
    scores = _score_table(np.vstack([times, faster]), targets)
    assert scores[-1] >= scores[0] - 1e-12


@FAST
@given(time_tables(min_rows=2))
def test_all_miss_submissions_score_zero_and_the_best_everywhere_scores_one(table):
    version, times = table
    targets = TARGETS[version]
    times[0] = np.inf
    times[1] = np.nan
    scores = _score_table(times, targets)
    assert scores[0] == 0 and scores[1] == 0
    best = np.where(np.isfinite(times), times, np.inf).min(axis=0)
    champion = np.where(np.isfinite(best), best / 2, 1.0)
    assert _score_table(np.vstack([times, champion]), targets)[-1] == 1.0


# Trial-level logs: 2 submissions x 2 workloads x up to 3 studies x up to 3 trials.
WORKLOADS = {"wmt": (30.8491, 1.0), "criteo1tb": (0.123735, -1.0)}


@st.composite
def trial_sets(draw):
    trials = []
    for sub in ("a", "b"):
        for workload, (target, direction) in WORKLOADS.items():
            for study in range(draw(st.integers(1, 3))):
                for trial in range(1, draw(st.integers(1, 3)) + 1):
                    n = draw(st.integers(1, 4))
                    times = np.cumsum(draw(st.lists(st.integers(1, 50), min_size=n, max_size=n)))
                    hits = draw(st.lists(st.booleans(), min_size=n, max_size=n))
                    values = [target + direction * (0.01 if h else -0.01) for h in hits]
                    trials.append((sub, workload, study, trial, times.astype(float), values))
    return trials


def _logs(trials, study_names):
    keys = [
        {"submission": s, "workload": w, "study": study_names[j], "trial": f"trial_{k}"}
        for s, w, j, k, _, _ in trials
    ]
    cols = [{"score": t, "metric": np.asarray(v, float)} for *_, t, v in trials]
    return build_logs(keys, cols, ["a", "b"], "0.6")


@FAST
@given(trial_sets(), st.randoms(use_true_random=False), st.sampled_from(["upstream", "fastest"]))
def test_scores_do_not_depend_on_trial_or_study_order(trials, rnd, selection):
    base = score_logs(
        _logs(trials, ["study_0", "study_1", "study_2"]),
        V06,
        bootstrap_samples=0,
        selection=selection,
    )
    shuffled = list(trials)
    rnd.shuffle(shuffled)
    names = ["study_0", "study_1", "study_2"]
    rnd.shuffle(names)  # relabel studies too
    other = score_logs(_logs(shuffled, names), V06, bootstrap_samples=0, selection=selection)
    pd.testing.assert_series_equal(base.scores["score"], other.scores["score"])
    pd.testing.assert_frame_equal(base.time_to_targets, other.time_to_targets)
