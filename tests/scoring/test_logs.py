"""Reading log trees: layout, tolerance, clear errors for bad files, save/load."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.logs import (
    LogError,
    discover_submissions,
    from_upstream_results,
    load_logs,
    read_logs,
    save_logs,
    subset_logs,
)
from scoring.targets import load_targets

V06 = load_targets("0.6")
HEADER = "accumulated_eval_time,global_step,score,total_duration,validation/accuracy,extra"
GOOD = ["1.0,10,100.0,150.0,0.5,x", "2.0,20,200.0,260.0,0.8,y"]
W = "imagenet_resnet_jax"


def write_csv(path: Path, header: str, rows: list[str], end: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(r + end for r in rows))


def _metric(logs, trial_index=0):
    return logs.evals[logs.evals["trial_id"] == trial_index]["metric"].tolist()


def test_layout_framework_suffix_and_extra_columns(log_tree):
    root = log_tree(
        {
            ("sub_a", "study_0", W, "trial_1"): GOOD,
            ("sub_a", "study_0", W, "trial_2"): GOOD[:1],
            ("sub_b", "study_0", "imagenet_resnet_pytorch", "trial_1"): GOOD,
        }
    )
    logs = read_logs(root, V06)
    assert logs.submissions == ["sub_a", "sub_b"]
    t = logs.trials
    assert t["workload"].tolist() == ["imagenet_resnet"] * 3
    assert t["framework"].tolist() == ["jax", "jax", "pytorch"]
    assert t["n_evals"].tolist() == [2, 1, 2]
    e = logs.evals
    assert e["trial_id"].tolist() == [0, 0, 1, 2, 2]
    assert e["eval_index"].tolist() == [0, 1, 0, 0, 1]
    assert e["score"].tolist()[:2] == [100.0, 200.0]
    assert e["wall_time"].tolist()[:2] == [150.0, 260.0]
    assert _metric(logs) == [0.5, 0.8]


def test_columns_in_any_order_and_optional_columns_missing(tmp_path):
    root = tmp_path / "logs"
    write_csv(
        root / "s" / "study_0" / W / "trial_1" / "eval_measurements.csv",
        "validation/accuracy,score",
        ["0.9,12.5"],
    )
    write_csv(root / "s" / "study_0" / W / "trial_2" / "eval_measurements.csv", HEADER, GOOD)
    logs = read_logs(root, V06)
    assert _metric(logs, 0) == [0.9]
    assert np.isnan(logs.evals["global_step"].iloc[0])
    assert logs.evals["score"].tolist() == [12.5, 100.0, 200.0]


def test_trials_sorted_numerically_and_missing_csv_counted(log_tree):
    spec = {("s", "study_0", W, f"trial_{k}"): GOOD for k in (10, 2, 1)}
    root = log_tree(spec)
    (root / "s" / "study_0" / W / "trial_3").mkdir()  # a trial that never wrote a CSV
    logs = read_logs(root, V06)
    assert logs.trials["trial"].tolist() == ["trial_1", "trial_2", "trial_10"]
    assert [i.kind for i in logs.issues] == ["missing_log"]
    assert logs.issues[0].path.endswith("trial_3")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (HEADER + "\n" + GOOD[0] + "\n2.0,20,200", "truncated"),
        (HEADER + "\n" + GOOD[0] + "\n2.0,20,200.0,260.0,0.8,y", "truncated"),
        (HEADER + "\n" + GOOD[0] + "\n2.0,20,200.0,260.0,0.8,y,z\n", "fields"),
        (HEADER + "\n" + GOOD[0] + "\n\n", "fields"),
        (HEADER + "\n1.0,10,abc,150.0,0.5,x\n", "cannot parse"),
        (HEADER + "\n1.0,10,,150.0,0.5,x\n", "score"),
        ("", "empty file"),
        ("score,other\n1.0,2.0\n", "no column 'validation/accuracy'"),
    ],
)
def test_bad_file_is_named_or_skipped(log_tree, text, reason):
    root = log_tree({("s", "study_0", W, "trial_1"): GOOD, ("s", "study_0", W, "trial_3"): GOOD})
    bad = root / "s" / "study_0" / W / "trial_2" / "eval_measurements.csv"
    bad.parent.mkdir()
    bad.write_text(text)
    with pytest.raises(LogError) as err:
        read_logs(root, V06)
    message = str(err.value)
    assert str(bad) in message and reason in message and "--skip_bad_logs" in message
    assert "\n" not in message
    logs = read_logs(root, V06, skip_bad_logs=True)
    assert logs.trials["trial"].tolist() == ["trial_1", "trial_3"]
    assert [(i.kind, i.path) for i in logs.issues] == [("bad_log", str(bad))]
    # The good files of the same header are read correctly around the bad one.
    assert logs.evals["metric"].tolist() == [0.5, 0.8, 0.5, 0.8]


def test_header_only_file_crlf_and_torn_last_row(tmp_path):
    root = tmp_path / "logs"
    d = root / "s" / "study_0" / W
    write_csv(d / "trial_1" / "eval_measurements.csv", HEADER, GOOD, end="\n")
    (d / "trial_3").mkdir(parents=True)
    (d / "trial_3" / "eval_measurements.csv").write_text(HEADER + "\n")
    write_csv(d / "trial_4" / "eval_measurements.csv", HEADER, GOOD, end="\r\n")
    logs = read_logs(root, V06)
    assert logs.trials["n_evals"].tolist() == [2, 0, 2]
    assert logs.evals["metric"].tolist() == [0.5, 0.8] * 2
    # A last row without a line end is a torn write, even when all its fields are there: the
    # last number may be cut short (0.8 -> 0.).
    (d / "trial_2").mkdir()
    torn = d / "trial_2" / "eval_measurements.csv"
    torn.write_text(HEADER + "\n" + GOOD[0] + "\n2.0,20,200.0,260.0,0.")
    with pytest.raises(LogError, match="no line end"):
        read_logs(root, V06)


def test_single_submission_directory_and_ambiguity(log_tree, tmp_path):
    root = log_tree(
        {("only", "study_0", W, "trial_1"): GOOD, ("only", "study_1", W, "trial_1"): GOOD}
    )
    assert list(discover_submissions(root / "only")) == ["only"]
    assert list(discover_submissions(root)) == ["only"]
    (root / "only" / "notes").mkdir()
    with pytest.raises(LogError, match="ambiguous"):
        discover_submissions(root / "only")
    with pytest.raises(LogError, match="no such directory"):
        discover_submissions(tmp_path / "nope")


def test_timestamped_experiment_folders_are_merged(log_tree):
    root = log_tree(
        {
            ("adam", "study_0", W, "trial_1"): GOOD,
            ("adam-2024-03-01-10-20-30", "study_0", W, "trial_2"): GOOD,
            ("sgd", "study_0", W, "trial_1"): GOOD,
        }
    )
    subs = discover_submissions(root)
    assert list(subs) == ["adam", "sgd"] and len(subs["adam"]) == 2
    logs = read_logs(root, V06)
    adam = logs.trials[logs.trials["submission"] == "adam"]
    assert adam["trial"].tolist() == ["trial_1", "trial_2"]
    assert adam["study"].tolist() == ["study_0", "study_0"]


def test_include_exclude_and_unknown_names(log_tree):
    root = log_tree({(s, "study_0", W, "trial_1"): GOOD for s in ("a", "b", "c")})
    assert read_logs(root, V06, include="a,c").submissions == ["a", "c"]
    assert read_logs(root, V06, exclude=["b"]).submissions == ["a", "c"]
    with pytest.raises(LogError, match="no submission named zz"):
        read_logs(root, V06, include="zz")
    logs = read_logs(root, V06)
    sub = subset_logs(logs, exclude="a")
    assert sub.submissions == ["b", "c"]
    assert sub.trials.index.tolist() == [0, 1]
    assert sub.evals["trial_id"].tolist() == [0, 0, 1, 1]


def test_unscored_and_unknown_workloads_are_reported_not_read(log_tree):
    root = log_tree(
        {
            ("s", "study_0", W, "trial_1"): GOOD,
            ("s", "study_0", "imagenet_resnet_silu_jax", "trial_1"): GOOD,
            ("s", "study_0", "my_workload_jax", "trial_1"): GOOD,
        }
    )
    logs = read_logs(root, V06)
    assert logs.trials["workload"].tolist() == ["imagenet_resnet"]
    assert sorted(i.kind for i in logs.issues) == ["unknown_workload", "unscored_workload"]


def test_one_workload_in_two_frameworks_is_an_error(log_tree):
    root = log_tree(
        {
            ("s", "study_0", W, "trial_1"): GOOD,
            ("s", "study_1", "imagenet_resnet_pytorch", "trial_1"): GOOD,
        }
    )
    with pytest.raises(LogError, match="two frameworks"):
        read_logs(root, V06)


def test_save_and_load_round_trip(log_tree, tmp_path):
    logs = read_logs(log_tree({("s", "study_0", W, "trial_1"): GOOD}), V06)
    path = tmp_path / "results.pkl"
    save_logs(logs, path)
    loaded = load_logs(path, V06)
    pd.testing.assert_frame_equal(loaded.evals, logs.evals)
    pd.testing.assert_frame_equal(loaded.trials, logs.trials)
    assert loaded.submissions == logs.submissions
    with pytest.raises(LogError, match=r"benchmark version 0\.6, not 0\.5"):
        load_logs(path, load_targets("0.5"))
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(LogError, match=r"junk\.pkl"):
        load_logs(tmp_path / "junk.pkl", V06)


def test_upstream_results_pickle_is_accepted(tmp_path):
    """Upstream's --save_results_to_filename: {submission: one row per trial, array columns}."""
    df = pd.DataFrame(
        [
            {
                "workload": W,
                "trial": ("trial_2", "/x/s"),
                "study": "study_0",
                "score": np.array([100.0, 200.0]),
                "validation/accuracy": np.array([0.5, 0.8]),
                "global_step": np.array([10, 20]),
            },
            {
                "workload": W,
                "trial": ("trial_1", "/x/s"),
                "study": "study_0",
                "score": np.array([50.0]),
                "validation/accuracy": np.array([0.9]),
                "global_step": np.array([5]),
            },
        ]
    )
    path = tmp_path / "up.pkl"
    path.write_bytes(pickle.dumps({"s": df}))
    logs = load_logs(path, V06)
    assert logs.trials["trial"].tolist() == ["trial_1", "trial_2"]
    assert logs.evals["score"].tolist() == [50.0, 100.0, 200.0]
    direct = from_upstream_results({"s": df}, V06)
    pd.testing.assert_frame_equal(direct.evals, logs.evals)


def test_fixture_tree_reads_every_csv(v06_logs: Path):
    logs = read_logs(v06_logs / "external_tuning", V06)
    n_csv = sum(1 for _ in (v06_logs / "external_tuning").rglob("eval_measurements.csv"))
    assert len(logs.trials) == n_csv
    assert logs.trials["n_evals"].sum() == len(logs.evals)
    # Per-file row counts match pandas reading each file on its own.
    for tid in (0, 57, len(logs.trials) - 1):
        path = logs.trials.loc[tid, "path"]
        df = pd.read_csv(path)
        metric = V06.workloads[logs.trials.loc[tid, "workload"]].metric_column
        ours = logs.evals[logs.evals["trial_id"] == tid]
        np.testing.assert_array_equal(ours["score"].to_numpy(), df["score"].to_numpy())
        np.testing.assert_array_equal(ours["metric"].to_numpy(), df[metric].to_numpy())


def test_chunked_and_parallel_reading_give_the_same_logs(log_tree, monkeypatch):
    """Chunks of files, read in worker processes, merge into exactly the serial result."""
    import scoring.logs as logs_mod

    rng = np.random.default_rng(3)
    spec = {}
    for sub in ("a", "b", "c"):
        for study in ("study_0", "study_1"):
            for wdir in (W, "ogbg_pytorch"):
                for k in range(1, 4):
                    n = int(rng.integers(1, 6))
                    rows = [
                        f"{i},{10 * i},{rng.uniform(1, 900):.3f},{1000 + i},{rng.uniform():.4f},x"
                        for i in range(n)
                    ]
                    spec[(sub, study, wdir, f"trial_{k}")] = rows
    root = log_tree(spec)
    header = HEADER.replace("validation/accuracy", "validation/mean_average_precision")
    for (sub, study, wdir, trial), rows in spec.items():  # ogbg: its own metric column
        if wdir.startswith("ogbg"):
            write_csv(root / sub / study / wdir / trial / "eval_measurements.csv", header, rows)
    bad = root / "b" / "study_1" / W / "trial_2" / "eval_measurements.csv"
    bad.write_text(HEADER + "\n1.0,10,abc,150.0,0.5,x\n")
    (root / "c" / "study_0" / W / "trial_3" / "eval_measurements.csv").unlink()
    serial = read_logs(root, V06, skip_bad_logs=True, workers=1)
    monkeypatch.setattr(logs_mod, "CHUNK_FILES", 5)  # 35 files: 7 chunks over 2 workers
    parallel = read_logs(root, V06, skip_bad_logs=True, workers=2)
    pd.testing.assert_frame_equal(serial.trials, parallel.trials)
    pd.testing.assert_frame_equal(serial.evals, parallel.evals)
    assert serial.issues == parallel.issues
    assert [i.kind for i in serial.issues] == ["missing_log", "bad_log"]
    assert len(serial.trials) == 34 and set(serial.trials["workload"]) == {
        "imagenet_resnet",
        "ogbg",
    }
    with pytest.raises(LogError, match=str(bad)):
        read_logs(root, V06, workers=2)


@pytest.mark.parametrize("threshold, parallel", [(12, True), (13, False)])
def test_reading_goes_parallel_by_default_from_the_threshold(
    log_tree, monkeypatch, tmp_path, threshold, parallel
):
    """`algoperf score` (workers=None) reads in one process per CPU from PARALLEL_MIN_FILES
    files on, and in this process below it."""
    import scoring.logs as logs_mod
    from scoring import _parallel
    from scoring.cli import main

    spec = {
        ("a", f"study_{s}", W, f"trial_{k}"): [f"1.0,{10 * k},{100.0 * k},150.0,0.5,x"]
        for s in range(3)
        for k in range(1, 5)
    }  # 12 files
    root = log_tree(spec)
    calls = []
    real_pool = _parallel.pool

    def spy(workers):
        calls.append(workers)
        return real_pool(workers)

    monkeypatch.setattr(logs_mod, "PARALLEL_MIN_FILES", threshold)
    monkeypatch.setattr(_parallel, "cpus", lambda: 2)
    monkeypatch.setattr(_parallel, "pool", spy)
    out = tmp_path / "out"
    args = ["--submission_directory", str(root), "--output_dir", str(out)]
    assert main([*args, "--workloads", "imagenet_resnet", "--no_plots"]) == 0
    assert calls == ([2] if parallel else [])
    scores = pd.read_csv(out / "scores.csv", index_col=0)
    assert list(scores.index) == ["a"]
    trials = pd.read_csv(out / "trial_results.csv")
    assert len(trials) == 12  # the same logs either way
