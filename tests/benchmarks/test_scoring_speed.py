"""benchmarks/scoring_speed.py: its generated tree is what `algoperf score` reads, it times fresh
processes and says why upstream was skipped, and `--upstream` takes what a user would give."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from scoring.cli import main as score_main
from scoring.targets import load_targets
from tests.benchmarks.loader import load_benchmark

scoring_speed = load_benchmark("scoring_speed")


@pytest.fixture(scope="module")
def one_submission(tmp_path_factory) -> tuple[Path, tuple[int, int]]:
    """A generated tree with one submission (350 CSVs)."""
    root = tmp_path_factory.mktemp("speed") / "logs"
    return root, scoring_speed.generate_tree(root, seed=0, submissions=1)


def test_generated_tree_has_the_upstream_layout_and_scores(one_submission, tmp_path):
    root, (n_files, n_bytes) = one_submission
    targets = load_targets("0.5")
    workloads = targets.scored_workloads
    assert len(workloads) == 14
    expected = 1 * scoring_speed.STUDIES * len(workloads) * scoring_speed.TRIALS
    files = sorted(root.glob("*/*/*/*/eval_measurements.csv"))
    assert n_files == len(files) == expected == 350
    assert n_bytes == sum(f.stat().st_size for f in files)
    # <submission>/study_<k>/<workload>_jax/trial_<k>/eval_measurements.csv, upstream's columns.
    rel = {f.relative_to(root).parts[:4] for f in files}
    assert {p[0] for p in rel} == {"submission_000"}
    assert {p[1] for p in rel} == {f"study_{k}" for k in range(scoring_speed.STUDIES)}
    assert {p[2] for p in rel} == {f"{w}_jax" for w in workloads}
    assert {p[3] for p in rel} == {f"trial_{k}" for k in range(1, scoring_speed.TRIALS + 1)}
    wmt = pd.read_csv(root / "submission_000" / "study_0" / "wmt_jax" / "trial_1" / files[0].name)
    for col in ("score", "global_step", "total_duration", "validation/bleu", "test/bleu"):
        assert col in wmt.columns
    assert len(wmt) == int(targets.workloads["wmt"].max_allowed_runtime_sec / 840)
    assert wmt["score"].is_monotonic_increasing
    out = tmp_path / "out"
    args = ["--submission_directory", str(root), "--benchmark_version", "0.5"]
    assert score_main([*args, "--output_dir", str(out), "--no_plots", "--bootstrap_samples=0"]) == 0
    assert pd.read_csv(out / "issues.csv").empty  # complete: 5 studies x 5 trials everywhere
    assert pd.read_csv(out / "completeness.csv")["complete"].all()
    workload_rows = pd.read_csv(out / "workload_results.csv")
    assert set(workload_rows["workload"]) == set(workloads)


def test_main_times_fresh_processes_and_says_why_upstream_is_skipped(
    one_submission, capsys, monkeypatch
):
    root, _ = one_submission
    monkeypatch.delenv("ALGOPERF_UPSTREAM_SCORING", raising=False)
    args = ["--trees", "", "--tree", f"{root}@0.5", "--repeats", "1", "--reading"]
    assert scoring_speed.main(args) == 0
    out = capsys.readouterr().out
    assert f"[logs] {root} (benchmark version 0.5, 1 alternating runs each)" in out
    lines = out.splitlines()
    for label in ("ours ", "ours --no_plots "):
        line = next(x for x in lines if x.strip().startswith(label))
        assert "median" in line and "n=1" in line and "CPU" in line and "MiB" in line
    assert "  upstream: skipped (no --upstream checkout given)" in lines
    assert "speedup" not in out
    # Reading alone: one process against the default, which stays in one below 10,000 files.
    assert "  reading only (350 files; parallel from 10,000):" in lines
    assert any(x.strip().startswith("default (1 process) ") for x in lines)
    assert any(x.strip().startswith("gain of the default:") for x in lines)


def _tree(root: Path, files: list[str]) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    return root


LEADERBOARD = ["scoring/score_submissions.py", "scoring/config.py", "scoring/__init__.py"]


def test_upstream_accepts_the_leaderboard_repository_its_scoring_folder_and_git_dir(tmp_path):
    checkout = _tree(tmp_path / "submissions_algorithms", LEADERBOARD)
    assert scoring_speed.upstream_checkout(checkout, tmp_path) == checkout
    assert scoring_speed.upstream_checkout(checkout / "scoring", tmp_path) == checkout
    git = ["git", "-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "scoring"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    (tmp_path / "tmp").mkdir()
    extracted = scoring_speed.upstream_checkout(checkout / ".git", tmp_path / "tmp")
    assert extracted != checkout
    assert (extracted / "scoring" / "config.py").is_file()


@pytest.mark.parametrize(
    "files, says",
    [
        (
            [
                "scoring/score_submissions.py",
                "scoring/performance_profile.py",
                "algoperf/__init__.py",
            ],
            "this is mlcommons/algorithmic-efficiency",
        ),
        (["README.md"], "no scoring/score_submissions.py"),
    ],
)
def test_upstream_refuses_other_trees_in_one_line(tmp_path, capsys, files, says):
    tree = _tree(tmp_path / "other", files)
    with pytest.raises(SystemExit) as e:
        scoring_speed.upstream_checkout(tree, tmp_path)
    message = str(e.value)
    assert "\n" not in message and says in message
    assert "--upstream expects mlcommons/submissions_algorithms" in message
    # main stops on it before generating or timing anything.
    with pytest.raises(SystemExit, match="expects mlcommons/submissions_algorithms"):
        scoring_speed.main(["--upstream", str(tree), "--trees", "generated"])
    assert "generated" not in capsys.readouterr().out
