"""`algoperf sweep`: plan parsing and expansion, the local and submitit executors, kill and resume.

The kill-and-resume tests stop a sweep while a trial is training (after its first checkpoint),
rerun the same plan, and check from the sweep's event log and the trial directories that every
trial ended done, none was started fresh twice, the killed one continued from its checkpoint,
and the finished ones were not touched again.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from algoperf.cli import main
from algoperf.sweep import plan as plan_lib
from algoperf.sweep import state

REPO = Path(__file__).resolve().parents[2]
NADAMW = REPO / "submissions" / "baselines" / "nadamw"
STEPS = 1500
EVERY = 100


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep_data")
    assert main(["datasets", "prepare", "mnist", "--fixture", "--data_dir", str(root)]) == 0
    return root


def write_plan(tmp_path: Path, data: Path, **overrides: object) -> Path:
    values = {
        "experiment_dir": '"exp"',
        "data_dir": f'"{data}"',
        "workloads": '["mnist"]',
        "frameworks": '["pytorch"]',
        "num_studies": "1",
        "num_tuning_trials": "3",
        "granularity": '"trial"',
        "seed": "7",
        "run_flags": f'["--max_global_steps={STEPS}", "--eval_every_n_steps={EVERY}"]',
    }
    values.update({k: str(v) for k, v in overrides.items()})
    lines = [f"{k} = {v}" for k, v in values.items()]
    lines += [
        "",
        "[[submissions]]",
        'name = "nadamw"',
        f'path = "{NADAMW}/{{framework}}/submission.py"',
        f'tuning_search_space = "{NADAMW}/tuning_search_space.json"',
        "",
        "[local]",
        "workers = 1",
        "cores_per_job = 1",
    ]
    path = tmp_path / "plan.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# Plans and expansion -----------------------------------------------------------------------------


def test_expansion_per_trial_and_per_study(tmp_path, small_data):
    plan = plan_lib.load_plan(
        write_plan(
            tmp_path,
            small_data,
            num_studies=3,
            num_tuning_trials=2,
            frameworks='["jax", "pytorch"]',
        )
    )
    jobs = plan_lib.expand(plan)
    assert len(jobs) == 3 * 2 * 2  # studies x trials x frameworks
    ids = [j.job_id for j in jobs]
    assert len(set(ids)) == len(ids)
    assert "nadamw/study_2/mnist_jax/trial_2" in ids
    by_id = {j.job_id: j for j in jobs}
    one = by_id["nadamw/study_1/mnist_pytorch/trial_2"]
    assert one.workload_dir == tmp_path / "exp" / "nadamw" / "study_1" / "mnist_pytorch"
    assert "--hparam_start_index=1" in one.run_argv and "--hparam_end_index=2" in one.run_argv
    assert "--experiment_name=nadamw/study_1" in one.run_argv
    assert f"--rng_seed={one.rng_seed}" in one.run_argv
    # One seed per trial, the same in both frameworks, never 0 (0 would mean "random").
    seeds = {(j.study, j.trials, j.framework): j.rng_seed for j in jobs}
    assert seeds[(1, (2,), "jax")] == seeds[(1, (2,), "pytorch")]
    assert len({s for (_, _, fw), s in seeds.items() if fw == "jax"}) == 6
    assert 0 not in seeds.values()
    # Same plan, same seeds (no process-salted hashing).
    assert [j.rng_seed for j in plan_lib.expand(plan_lib.load_plan(plan.path))] == [
        j.rng_seed for j in jobs
    ]
    study = plan_lib.expand(
        plan_lib.load_plan(
            write_plan(
                tmp_path, small_data, num_studies=3, num_tuning_trials=2, granularity='"study"'
            )
        )
    )
    assert [j.trials for j in study] == [(1, 2)] * 3
    assert not any("--hparam_start_index" in a for j in study for a in j.run_argv)
    assert len({j.rng_seed for j in study}) == 3


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"granularity": '"node"'}, "granularity must be one of"),
        ({"frameworks": '["tf"]'}, "framework 'tf'"),
        ({"num_studies": "0"}, "at least 1"),
        ({"bogus": "1"}, "unknown key(s): bogus"),
        ({"num_studies": '"3"'}, "'num_studies' must be int"),
    ],
)
def test_bad_plans_name_file_and_fix(tmp_path, small_data, override, message, capsys):
    path = write_plan(tmp_path, small_data, **override)
    with pytest.raises(plan_lib.PlanError, match=str(path)) as info:
        plan_lib.load_plan(path)
    assert message in str(info.value)
    assert main(["sweep", "status", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_missing_plan_is_one_line_error(tmp_path, capsys):
    assert main(["sweep", "run", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_dry_run_lists_jobs_and_runs_nothing(tmp_path, small_data, capsys):
    path = write_plan(tmp_path, small_data)
    assert main(["sweep", "run", str(path), "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert "3 jobs (trial granularity), 0 done, 3 to run" in out
    assert out.count("algoperf run ") == 3
    assert not (tmp_path / "exp" / "nadamw").exists()


# Streams and logging of the calling process ----------------------------------------------------

# Run in a fresh interpreter: whether submitit is already imported must not depend on test order.
_STREAMS_SCRIPT = """
import io, logging, sys, traceback
from algoperf.cli import main

sys.excepthook = lambda *e: traceback.print_exception(*e, file=sys.__stderr__)

earlier = sys.stderr = io.StringIO()  # the stderr of the moment: a capture, a notebook's redirect
from absl import logging as absl_logging  # (JAX and optax import it) its handler keeps `earlier`

now = sys.stderr = io.StringIO()  # stderr swapped again, as pytest's capsys does
assert main(["sweep", "status", sys.argv[1]]) == 0
assert "submitit" not in sys.modules, "sweep status imported submitit"
from algoperf.sweep import executors
from algoperf.sweep import plan as plan_lib

executors.submitit_executor(plan_lib.load_plan(sys.argv[1]), "debug")  # imports submitit
assert not earlier.closed, "importing submitit closed a stream held by a logging handler"
sys.stderr = later = io.StringIO()
now.close()  # the stream of the import is gone (end of a captured test)
logging.getLogger("submitit").warning("after the swap")
assert "after the swap" in later.getvalue(), later.getvalue()
assert "Logging error" not in later.getvalue()
assert absl_logging.get_absl_handler().python_handler.stream is earlier
sys.stderr = sys.__stderr__
print("ok")
"""


def test_sweep_leaves_the_callers_streams_and_handlers_alone(tmp_path, small_data):
    """Using `algoperf sweep` in-process (a notebook, pytest) closes no stream and binds no
    handler to a stream that may be gone: submitit's import-time `logging.config.dictConfig`
    closed every handler, absl's with the stream it was created with (under pytest-xdist the
    worker's capture file, and every later test of that worker errored)."""
    pytest.importorskip("submitit")
    path = write_plan(tmp_path, small_data)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SUBMITIT_LOG_LEVEL", None)
    result = subprocess.run(
        [sys.executable, "-c", _STREAMS_SCRIPT, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "ok"


# Kill and resume ---------------------------------------------------------------------------------


def _sweep(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "algoperf.cli", "sweep", "run", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"sweep ended early ({proc.returncode}):\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail("timed out waiting for the sweep")


def _has_checkpoint(tdir: Path) -> bool:
    from algoperf.runner import checkpoint

    return checkpoint.latest(tdir) is not None


def _eval_steps(tdir: Path) -> list[int]:
    with (tdir / "eval_measurements.csv").open() as f:
        return [int(r["global_step"]) for r in csv.DictReader(f)]


def _check_resumed_sweep(plan_path: Path, killed_trial: int, kept: list[int]) -> None:
    """Every trial done exactly once; the killed one resumed; kept ones untouched."""
    plan = plan_lib.load_plan(plan_path)
    jobs = plan_lib.expand(plan)
    rows = state.status_rows(jobs)
    assert [r.state for r in rows] == ["done"] * len(jobs), state.format_table(rows)
    events = state.read_events(plan.sweep_dir)
    starts = [e for e in events if e["event"] == "start"]
    fresh = sorted(k for e in starts for k in e["fresh"])
    assert fresh == [1, 2, 3]  # each trial started fresh once: none twice, none lost
    resumed = [k for e in starts for k in e["resumed"]]
    assert resumed == [killed_trial]
    assert not any(e["restarted"] for e in starts)
    for k in kept:  # finished before the kill: never started again
        assert sum(k in e["fresh"] or k in e["resumed"] for e in starts) == 1
    for job in jobs:
        tdir = job.trial_dirs()[0]
        steps = _eval_steps(tdir)
        assert steps == sorted(set(steps)) and steps[0] == EVERY, steps  # no row twice or lost
        record = json.loads((tdir / "run_record.json").read_text())
        assert record["rng_seed"] == job.rng_seed
        assert "git_sha" in record["provenance"]
    killed = jobs[killed_trial - 1].trial_dirs()[0]
    assert (killed / "meta_data_1.json").exists()  # the resumed attempt's metadata
    assert json.loads((killed / "status.json").read_text())["status"] == "finished"


def test_local_executor_kill_and_resume(tmp_path, small_data):
    path = write_plan(tmp_path, small_data)
    wdir = tmp_path / "exp" / "nadamw" / "study_0" / "mnist_pytorch"
    proc = _sweep([str(path)])
    # Stop the sweep while trial 2 trains, after trial 1 finished and trial 2 checkpointed.
    _wait_for(
        lambda: state.trial_done(wdir / "trial_1") and _has_checkpoint(wdir / "trial_2"), proc
    )
    running = state.trial_rows(plan_lib.expand(plan_lib.load_plan(path))[1])[0]
    proc.send_signal(signal.SIGTERM)
    assert running.state == "running" and running.detail.startswith("pid "), running
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out
    assert "rerun `algoperf sweep run" in out
    status = subprocess.run(
        [sys.executable, "-m", "algoperf.cli", "sweep", "status", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = {line.split()[0]: line for line in status.splitlines()[1:-1]}
    assert " done " in lines["nadamw/study_0/mnist_pytorch/trial_1"]
    assert (
        "pending  preempted; resumes from its checkpoint"
        in lines["nadamw/study_0/mnist_pytorch/trial_2"]
    )
    assert "pending  not started" in lines["nadamw/study_0/mnist_pytorch/trial_3"]
    assert status.splitlines()[-1] == "1 done, 0 running, 0 failed, 2 pending (3 trials)"
    done_mtime = (wdir / "trial_1" / "status.json").stat().st_mtime_ns

    again = _sweep([str(path)])
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out
    assert "3 jobs (trial granularity), 1 done, 2 to run" in out
    _check_resumed_sweep(path, killed_trial=2, kept=[1])
    assert (wdir / "trial_1" / "status.json").stat().st_mtime_ns == done_mtime
    # A third run finds everything done and starts nothing.
    third = _sweep([str(path)])
    out, _ = third.communicate(timeout=120)
    assert third.returncode == 0 and "3 done, 0 to run" in out


def test_failed_trial_shows_reason_in_status(tmp_path, small_data, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text(
        (NADAMW / "pytorch" / "submission.py").read_text()
        + "\n\ndef update_params(*a, **k):\n    raise RuntimeError('exploded on purpose')\n"
    )
    path = write_plan(
        tmp_path, small_data, num_tuning_trials=1, run_flags='["--max_global_steps=5"]'
    )
    text = path.read_text().replace(f"{NADAMW}/{{framework}}/submission.py", str(bad))
    path.write_text(text)
    assert main(["sweep", "run", str(path)]) == 1
    capsys.readouterr()
    assert main(["sweep", "status", str(path)]) == 0
    out = capsys.readouterr().out
    assert "failed" in out and "exploded on purpose" in out
    assert out.splitlines()[-1] == "0 done, 0 running, 1 failed, 0 pending (1 trials)"


@pytest.mark.slow
def test_submitit_local_executor_kill_and_resume(tmp_path, small_data):
    pytest.importorskip("submitit")
    path = write_plan(tmp_path, small_data)
    plan = plan_lib.load_plan(path)
    wdir = tmp_path / "exp" / "nadamw" / "study_0" / "mnist_pytorch"
    proc = _sweep([str(path), "--executor=submitit_local"])
    # All three array jobs start at once; the study's lock runs them one after another.
    _wait_for(
        lambda: state.trial_done(wdir / "trial_1") and _has_checkpoint(wdir / "trial_2"), proc
    )
    # Preempt the job that runs trial 2, as a scheduler would: SIGTERM to its submitit process.
    record = state.read_job_record(plan_lib.expand(plan)[1])
    assert record["state"] == "running"
    os.kill(record["pid"], signal.SIGTERM)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 143, out
    assert "trial_2 [preempted]" in out and "trial_3 [done]" in out
    again = _sweep([str(path), "--executor=submitit_local"])
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out
    assert "1 to run" in out
    _check_resumed_sweep(path, killed_trial=2, kept=[1, 3])


# SLURM parameters and multi-node launch commands --------------------------------------------------


def test_slurm_executor_gets_the_plans_resources(tmp_path, small_data, monkeypatch):
    pytest.importorskip("submitit")
    from algoperf.sweep import executors

    path = write_plan(tmp_path, small_data)
    path.write_text(
        path.read_text()
        + '\n[slurm]\npartition = "gpu"\nnodes = 2\ngpus_per_node = 8\ntime_limit_min = 600\n'
        + 'array_parallelism = 4\nsetup = ["module load cuda"]\nmax_requeues = 5\n'
    )
    plan = plan_lib.load_plan(path)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ValueError, match="use --executor local"):
        executors.submitit_executor(plan, "slurm")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    slurm = executors.submitit_executor(plan, "slurm")._executor
    assert slurm.max_num_timeout == 5
    params = slurm.parameters
    assert (params["partition"], params["nodes"], params["ntasks_per_node"]) == ("gpu", 2, 1)
    assert (params["gpus_per_node"], params["time"], params["array_parallelism"]) == (8, 600, 4)
    assert params["setup"] == ["module load cuda"]


def test_multi_node_launch_commands(tmp_path, small_data):
    from algoperf.sweep.job import Launch, command

    plan = plan_lib.load_plan(write_plan(tmp_path, small_data, frameworks='["jax", "pytorch"]'))
    jax_job, torch_job = plan_lib.expand(plan)[0], plan_lib.expand(plan)[3]
    assert (jax_job.framework, torch_job.framework) == ("jax", "pytorch")
    launch = Launch(nproc_per_node=8, nnodes=2, node_rank=1, master_addr="node7", rdzv_id="42")
    argv, env = command(torch_job, launch)
    assert argv[1:3] == ["-m", "torch.distributed.run"]
    assert "--nnodes=2" in argv and "--rdzv_endpoint=node7:29500" in argv
    assert "--nproc_per_node=8" in argv and "--rdzv_id=42" in argv and env == {}
    assert argv[-1] == "--resume_last_run"
    argv, env = command(jax_job, launch)
    assert "torch.distributed.run" not in argv
    assert env == {
        "ALGOPERF_COORDINATOR_ADDRESS": "node7:29500",
        "ALGOPERF_NUM_PROCESSES": "2",
        "ALGOPERF_PROCESS_ID": "1",
    }
    argv, _ = command(torch_job, Launch(nproc_per_node=2))
    assert "--standalone" in argv and "--nnodes=2" not in argv
    assert command(torch_job, Launch())[0][1:4] == ["-m", "algoperf.cli", "run"]
