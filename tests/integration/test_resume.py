"""Kill and resume `algoperf run` end to end: results equal an uninterrupted run's.

The runs evaluate at fixed steps (``--eval_every_n_steps``), so the eval points are the same in
every run and the rows can be compared: the metric columns and ``global_step`` must be equal
(exactly: CPU runs are deterministic), and so must the final parameters (from the final
checkpoints). Timing columns differ by nature and are only checked for consistency.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from algoperf.cli import main
from algoperf.runner import checkpoint

REPO = Path(__file__).resolve().parents[2]
STEPS = 200
EVERY = 20
TIMING = {
    "accumulated_eval_time",
    "accumulated_logging_time",
    "accumulated_submission_time",
    "score",
    "total_duration",
    "preemption_count",
}
# A slow learning rate: the run does not reach the targets (and stop) before STEPS.
POINT = {
    "dropout_rate": 0.0,
    "label_smoothing": 0.0,
    "learning_rate": 1e-4,
    "one_minus_beta1": 0.1,
    "beta2": 0.999,
    "weight_decay": 0.0,
    "warmup_factor": 0.05,
}


def _argv(framework, data_dir, exp, name, space, *extra):
    return [
        "run",
        f"--framework={framework}",
        "--workload=fashion_mnist",
        f"--submission_path={REPO / 'submissions/baselines/nadamw' / framework / 'submission.py'}",
        f"--tuning_search_space={space}",
        f"--experiment_dir={exp}",
        f"--experiment_name={name}",
        f"--data_dir={data_dir}",
        "--rng_seed=11",
        f"--max_global_steps={STEPS}",
        f"--eval_every_n_steps={EVERY}",
        "--progress=false",
        *extra,
    ]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread here and in the subprocesses: the same bits in every process, and
    no OpenMP spinning against other work on a small shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _trial(exp: Path, name: str, framework: str) -> Path:
    return exp / name / f"fashion_mnist_{framework}" / "trial_1"


def _rows(tdir: Path) -> list[dict[str, str]]:
    with (tdir / "eval_measurements.csv").open() as f:
        return list(csv.DictReader(f))


def _metrics(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _final_params(tdir: Path, framework: str) -> dict[str, np.ndarray]:
    ckpt = checkpoint.latest(tdir)
    if framework == "jax":
        with np.load(ckpt.path / "arrays.npz") as data:
            return {k: data[k] for k in data.files if k.startswith("model_params/")}
    import torch

    state = torch.load(ckpt.path / "state.pt", weights_only=False)["model"]
    return {k: v.numpy() for k, v in state.items()}


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("space") / "space.json"
    path.write_text(json.dumps([POINT]))
    return path


_REFERENCE: dict[str, Path] = {}


def _reference(framework, data_dir, space, tmp_path_factory) -> Path:
    """An uninterrupted run (once per framework and module)."""
    if framework not in _REFERENCE:
        exp = tmp_path_factory.mktemp(f"ref_{framework}")
        argv = _argv(framework, data_dir, exp, "ref", space, "--save_checkpoints")
        assert main(argv) == 0
        _REFERENCE[framework] = _trial(exp, "ref", framework)
    return _REFERENCE[framework]


def _start(argv) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "algoperf.cli", *argv],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(proc: subprocess.Popen, ready, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"run ended (status {proc.returncode}) before it could be killed:\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("run did not reach the kill point in time")
        time.sleep(0.005)


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_sigkill_at_a_random_step_then_resume_equals_uninterrupted(
    framework, mnist_data_dir, space, tmp_path, tmp_path_factory
):
    ref = _reference(framework, mnist_data_dir, space, tmp_path_factory)
    exp = tmp_path / "exp"
    argv = _argv(framework, mnist_data_dir, exp, "kr", space, "--save_checkpoints")
    tdir = _trial(exp, "kr", framework)
    proc = _start(argv)
    _wait_for(proc, lambda: bool(checkpoint.checkpoint_dirs(tdir)))
    delay = random.uniform(0.0, 0.25)
    time.sleep(delay)
    proc.kill()
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"finished before the kill ({delay=:.3f}s)"
    ckpt = checkpoint.latest(tdir)
    kept = ckpt.meta["log_rows"]["eval_measurements.csv"]
    assert 0 < ckpt.global_step < STEPS

    assert main([*argv, "--resume_last_run"]) == 0
    rows, ref_rows = _rows(tdir), _rows(ref)
    assert _metrics(rows) == _metrics(ref_rows)  # same eval points, same metrics, no duplicates
    assert [int(r["global_step"]) for r in rows] == list(range(EVERY, STEPS + 1, EVERY))
    assert [r["preemption_count"] for r in rows] == ["0"] * kept + ["1"] * (len(rows) - kept)
    for r in rows:
        parts = sum(
            float(r[k])
            for k in (
                "accumulated_submission_time",
                "accumulated_eval_time",
                "accumulated_logging_time",
            )
        )
        assert float(r["total_duration"]) == pytest.approx(parts, rel=1e-9, abs=1e-6)
        assert r["score"] == r["accumulated_submission_time"]
    # The clock continued: submission time never goes back across the resume.
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores)

    final, ref_final = _final_params(tdir, framework), _final_params(ref, framework)
    assert final.keys() == ref_final.keys()
    for key in final:
        np.testing.assert_array_equal(final[key], ref_final[key], err_msg=key)
    for name in ("meta_data_0.json", "flags_0.json", "meta_data_1.json", "flags_1.json"):
        assert (tdir / name).exists(), name
    status = json.loads((tdir / "status.json").read_text())
    assert status["status"] == "finished" and status["preemption_count"] == 1
    assert json.loads((tdir / "hparams.json").read_text()) == POINT


def test_sigterm_checkpoints_then_exits_cleanly_and_resumes(
    mnist_data_dir, space, tmp_path, tmp_path_factory
):
    framework = "pytorch"
    ref = _reference(framework, mnist_data_dir, space, tmp_path_factory)
    exp = tmp_path / "exp"
    # No --save_checkpoints: SIGTERM saves one anyway, so the run can be resumed.
    argv = _argv(framework, mnist_data_dir, exp, "term", space)
    tdir = _trial(exp, "term", framework)
    proc = _start(argv)
    eval_csv = tdir / "eval_measurements.csv"
    _wait_for(proc, lambda: eval_csv.exists() and checkpoint.count_csv_rows(eval_csv) >= 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "--resume_last_run" in err
    status = json.loads((tdir / "status.json").read_text())
    assert status["status"] == "preempted"
    (ckpt,) = [checkpoint.load(p) for p in checkpoint.checkpoint_dirs(tdir)]
    assert ckpt.meta["reason"] == "preempted" and ckpt.global_step == status["global_step"]
    assert all(int(r["global_step"]) <= ckpt.global_step for r in _rows(tdir))
    assert not (tdir / "failure.txt").exists()

    assert main([*argv, "--resume_last_run"]) == 0
    rows = _rows(tdir)
    assert _metrics(rows) == _metrics(_rows(ref))
    # A finished trial is kept as it is by a further resume.
    before = eval_csv.read_text()
    assert main([*argv, "--resume_last_run"]) == 0
    assert eval_csv.read_text() == before
    assert not (tdir / "meta_data_2.json").exists()


def test_trial_without_checkpoint_starts_over_keeping_hparams(mnist_data_dir, space, tmp_path):
    exp = tmp_path / "exp"
    tdir = _trial(exp, "restart", "pytorch")
    tdir.mkdir(parents=True)
    # What a run killed before its first checkpoint leaves behind.
    (tdir / "eval_measurements.csv").write_text("global_step,score\n20,1.0\n")
    (tdir / "status.json").write_text('{"status": "running"}')
    (tdir / "hparams.json").write_text(json.dumps(POINT))
    argv = _argv("pytorch", mnist_data_dir, exp, "restart", space, "--resume_last_run")
    argv[argv.index(f"--max_global_steps={STEPS}")] = f"--max_global_steps={EVERY}"
    assert main(argv) == 0
    rows = _rows(tdir)
    assert [r["global_step"] for r in rows] == [str(EVERY)] and rows[0]["preemption_count"] == "0"
    assert json.loads((tdir / "status.json").read_text())["status"] == "finished"
    assert json.loads((tdir / "hparams.json").read_text()) == POINT
