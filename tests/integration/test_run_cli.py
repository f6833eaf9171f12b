"""`algoperf run` end to end: upstream log layout and columns in each framework; bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from algoperf import logs, registry
from algoperf.cli import main
from scoring.logs import read_logs
from scoring.targets import load_targets

HERE = Path(__file__).parent
SUBMISSIONS = HERE / "submissions"

UPSTREAM_EVAL_COLUMNS = [
    "accumulated_eval_time",
    "accumulated_logging_time",
    "accumulated_submission_time",
    "global_step",
    "preemption_count",
    "score",
    "test/accuracy",
    "test/loss",
    "test/num_examples",
    "total_duration",
    "train/accuracy",
    "train/loss",
    "validation/accuracy",
    "validation/loss",
    "validation/num_examples",
]


def _space(tmp_path: Path) -> Path:
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"learning_rate": {"min": 1e-3, "max": 1e-2, "scaling": "log"}}))
    return path


def _argv(framework, data_dir, exp, space, workload="fashion_mnist", submission=None, extra=()):
    return [
        "run",
        f"--framework={framework}",
        f"--workload={workload}",
        f"--submission_path={submission or SUBMISSIONS / f'adam_{framework}.py'}",
        f"--tuning_search_space={space}",
        "--num_tuning_trials=2",
        f"--experiment_dir={exp}",
        "--experiment_name=e2e",
        f"--data_dir={data_dir}",
        "--rng_seed=3",
        "--max_global_steps=60",
        *extra,
    ]


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_run_writes_upstream_logs(framework, mnist_data_dir, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(_argv(framework, mnist_data_dir, exp, _space(tmp_path))) == 0
    wdir = exp / "e2e" / f"fashion_mnist_{framework}"
    assert sorted(p.name for p in wdir.iterdir()) == ["trial_1", "trial_2"]
    n_rows = []  # per trial: the eval schedule is wall-clock based, so counts may differ
    for trial in ("trial_1", "trial_2"):
        tdir = wdir / trial
        with (tdir / "eval_measurements.csv").open() as f:
            rows = list(csv.DictReader(f))
        n_rows.append(len(rows))
        assert list(rows[0]) == UPSTREAM_EVAL_COLUMNS
        assert rows[0]["global_step"] == "1"
        # Step 60, or earlier at the targets: the eval period is wall time, so a loaded machine
        # may evaluate mid-run, and fashion_mnist's targets are within 60 steps on the fixture.
        last_step = int(rows[-1]["global_step"])
        assert 1 <= last_step <= 60
        for row in rows:
            assert row["score"] == row["accumulated_submission_time"]
            assert row["preemption_count"] == "0"
            assert row["validation/num_examples"] == "10000"
            assert 0.0 <= float(row["validation/accuracy"]) <= 1.0
            total = float(row["total_duration"])
            parts = sum(
                float(row[k])
                for k in (
                    "accumulated_submission_time",
                    "accumulated_eval_time",
                    "accumulated_logging_time",
                )
            )
            assert total == pytest.approx(parts, rel=1e-9, abs=1e-6)
        hparams = json.loads((tdir / "hparams.json").read_text())
        assert list(hparams) == ["learning_rate"]
        meta = json.loads((tdir / "meta_data_0.json").read_text())
        expected = registry.get_config("fashion_mnist").validation_target_value
        assert meta["workload.validation_target_value"] == expected
        assert meta["rng_seed"] == 3
        flags = json.loads((tdir / "flags_0.json").read_text())
        assert flags["framework"] == framework and flags["workload"] == "fashion_mnist"
        assert tuple(flags) == logs.UPSTREAM_FLAGS and flags["rng_seed"] == 3
        assert isinstance(flags["torch_compile"], bool)
        record = json.loads((tdir / "run_record.json").read_text())
        expected_sync = "every_step" if framework == "pytorch" else "eval_points"
        assert record["timing_sync"] == expected_sync and record["flags"]["timing_sync"] == "auto"
        assert "XLA_FLAGS" in record["environment_variables"]
        assert (
            record["submission_sha256"] and (tdir / "submission" / f"adam_{framework}.py").exists()
        )
        assert record["result"]["global_step"] == last_step
        assert last_step == 60 or record["result"]["stop_reason"] == "targets_reached"
        assert 0.0 < record["result"]["eval_share_of_wall_time"] < 1.0
        assert "packages" in record["environment"]
        with (tdir / "measurements.csv").open() as f:
            assert list(csv.DictReader(f))[-1]["score"] != ""
    # The two trials got different Halton points.
    h1 = json.loads((wdir / "trial_1" / "hparams.json").read_text())
    h2 = json.loads((wdir / "trial_2" / "hparams.json").read_text())
    assert h1 != h2
    assert "time to target" in capsys.readouterr().out
    # The scorer's reader (the one that reads the published logs) reads ours.
    read = read_logs({"ours": [str(exp)]}, load_targets("dev"))  # exp/<study>/<workload>
    assert len(read.trials) == 2 and list(read.trials["n_evals"]) == n_rows
    assert read.evals["score"].notna().all()


def _self_tuning_argv(framework, data_dir, exp, *extra):
    return [
        "run",
        f"--framework={framework}",
        "--workload=fashion_mnist",
        f"--submission_path={SUBMISSIONS / f'selftune_{framework}.py'}",
        "--tuning_ruleset=self",
        f"--experiment_dir={exp}",
        "--experiment_name=self",
        f"--data_dir={data_dir}",
        "--max_global_steps=20",
        "--progress=false",
        *extra,
    ]


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_self_tuning_ruleset_end_to_end(framework, mnist_data_dir, tmp_path):
    """trial_1 only, no hparams.json, hyperparameters None, budget x1.5, wall-clock train_state."""
    exp = tmp_path / "exp"
    assert main(_self_tuning_argv(framework, mnist_data_dir, exp)) == 0
    wdir = exp / "self" / f"fashion_mnist_{framework}"
    assert [p.name for p in wdir.glob("trial_*")] == ["trial_1"]
    tdir = wdir / "trial_1"
    assert not (tdir / "hparams.json").exists()
    record = json.loads((tdir / "run_record.json").read_text())
    budget = registry.get_config("fashion_mnist").max_allowed_runtime_sec
    assert record["tuning_ruleset"] == "self" and record["budget_sec"] == 1.5 * budget
    assert record["result"]["status"] == "finished" and record["result"]["global_step"] == 20
    flags = json.loads((tdir / "flags_0.json").read_text())
    assert flags["tuning_ruleset"] == "self" and flags["tuning_search_space"] is None
    assert flags["rng_seed"] is None  # drawn, as upstream; the seed is in meta_data and the record
    meta = json.loads((tdir / "meta_data_0.json").read_text())
    assert meta["rng_seed"] == record["rng_seed"]
    with (tdir / "eval_measurements.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["global_step"] == "1" and rows[-1]["global_step"] == "20"


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_profile_and_trace_land_in_the_trial_directory(framework, mnist_data_dir, tmp_path):
    exp = tmp_path / "exp"
    extra = ["--profile", "--max_global_steps=3"]
    if framework == "jax":
        extra.append("--capture_jax_trace")
    argv = _self_tuning_argv(framework, mnist_data_dir, exp, *extra)
    if framework == "jax":
        # A process of its own, as a user runs it: after an in-process JAX trace, pytest's
        # output capture of later tests in the same worker broke ("I/O operation on closed file").
        proc = subprocess.run(
            [sys.executable, "-m", "algoperf.cli", *argv],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    else:
        assert main(argv) == 0
    tdir = exp / "self" / f"fashion_mnist_{framework}" / "trial_1"
    assert "(train_once)" in (tdir / "profile.txt").read_text()  # the trial, by cumulative time
    if framework == "jax":
        assert any(p.is_file() for p in (tdir / "traces").rglob("*"))
    record = json.loads((tdir / "run_record.json").read_text())
    assert record["profile"] is True and record["capture_jax_trace"] is (framework == "jax")


def _bad(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def _no_trial_dirs(exp: Path) -> bool:
    return not list(exp.glob("**/trial_*"))


def test_missing_submission_function(mnist_data_dir, tmp_path, capsys):
    sub = tmp_path / "broken.py"
    sub.write_text((SUBMISSIONS / "adam_jax.py").read_text().replace("def data_selection", "def x"))
    exp = tmp_path / "exp"
    code, err = _bad(capsys, _argv("jax", mnist_data_dir, exp, _space(tmp_path), submission=sub))
    assert code == 2 and len(err.splitlines()) == 1
    assert "data_selection" in err and "broken.py" in err
    assert _no_trial_dirs(exp)


def test_malformed_search_space(mnist_data_dir, tmp_path, capsys):
    space = tmp_path / "space.json"
    space.write_text('{"learning_rate": {"min": 1e-3, "max": ')
    exp = tmp_path / "exp"
    code, err = _bad(capsys, _argv("jax", mnist_data_dir, exp, space))
    assert code == 2 and len(err.splitlines()) == 1 and "space.json" in err
    assert _no_trial_dirs(exp)


def test_unknown_workload(mnist_data_dir, tmp_path, capsys):
    exp = tmp_path / "exp"
    code, err = _bad(
        capsys, _argv("jax", mnist_data_dir, exp, _space(tmp_path), workload="fashion_mnits")
    )
    assert code == 2 and len(err.splitlines()) == 1
    assert "fashion_mnits" in err and "fashion_mnist" in err  # names it and suggests the fix
    assert not exp.exists()


def test_missing_data_dir(tmp_path, capsys):
    exp = tmp_path / "exp"
    missing = tmp_path / "nowhere"
    code, err = _bad(capsys, _argv("pytorch", missing, exp, _space(tmp_path)))
    assert code == 2 and len(err.splitlines()) == 1
    assert str(missing) in err and "algoperf datasets prepare fashion_mnist" in err
    assert not exp.exists()


def test_empty_data_dir(tmp_path, capsys):
    exp = tmp_path / "exp"
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = _bad(capsys, _argv("jax", empty, exp, _space(tmp_path)))
    assert code == 2 and len(err.splitlines()) == 1 and "fashion_mnist" in err
    assert not exp.exists()


def test_existing_results_are_not_overwritten_without_flag(mnist_data_dir, tmp_path, capsys):
    exp = tmp_path / "exp"
    space = _space(tmp_path)
    extra = ("--max_global_steps=2", "--hparam_start_index=0", "--hparam_end_index=1")
    argv = [a for a in _argv("jax", mnist_data_dir, exp, space) if "max_global" not in a]
    assert main([*argv, *extra]) == 0
    csv_path = exp / "e2e" / "fashion_mnist_jax" / "trial_1" / "eval_measurements.csv"
    before = csv_path.read_text()
    code, err = _bad(capsys, [*argv, *extra])
    assert code == 2 and "--overwrite" in err
    assert csv_path.read_text() == before


def test_console_script_entry_point(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "algoperf.cli", "workloads"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "fashion_mnist" in out.stdout and "imagenet_vit_map" in out.stdout
