"""Preempt and resume a run in the pmap-era JAX layout: results equal an uninterrupted run's.

The submission is `upstream_styles/pmap_sgd` (parameters and optimizer state replicated with a
leading device axis, batches as ``(devices, per_device, ...)``). A run is stopped by SIGTERM
after its first checkpoint (it checkpoints at the step it is in and exits with 143), resumed
with ``--resume_last_run``, and compared with an uninterrupted run: the same eval rows (metrics
and steps, exactly: CPU runs are deterministic) and the same final parameters and optimizer
state, saved with their device axis. On 1 host device here and on 2 in a process of its own;
and a run preempted on 2 devices resumes on 1 (a requeued job may land on another machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("flax")

from test_resume import _metrics, _rows  # the jit-layout resume test's row helpers

from algoperf.cli import main
from algoperf.runner import checkpoint

REPO = Path(__file__).resolve().parents[2]
SUBMISSION = "tests/integration/submissions/upstream_styles/pmap_sgd/submission.py"
STEPS, EVERY = 60, 15


def _argv(data_dir: Path, exp: Path, name: str, space: Path) -> list[str]:
    return [
        "run",
        "--framework=jax",
        "--workload=fashion_mnist",
        f"--submission_path={SUBMISSION}",
        f"--tuning_search_space={space}",
        f"--experiment_dir={exp}",
        f"--experiment_name={name}",
        f"--data_dir={data_dir}",
        "--rng_seed=3",
        f"--max_global_steps={STEPS}",
        f"--eval_every_n_steps={EVERY}",
        "--save_checkpoints",
        "--progress=false",
    ]


def _trial(exp: Path, name: str) -> Path:
    return exp / name / "fashion_mnist_jax" / "trial_1"


def _final_arrays(tdir: Path) -> dict[str, np.ndarray]:
    ckpt = checkpoint.latest(tdir)
    assert ckpt is not None and ckpt.global_step == STEPS, tdir
    with np.load(ckpt.path / checkpoint.JAX_ARRAYS) as data:
        return {k: data[k] for k in data.files}


def _preempt_after_first_checkpoint(argv: list[str], tdir: Path) -> checkpoint.Checkpoint:
    """Start the run in a process of its own, SIGTERM it once it has a checkpoint."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "algoperf.cli", *argv],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not checkpoint.checkpoint_dirs(tdir):
        if proc.poll() is not None:
            pytest.fail(
                f"run ended ({proc.returncode}) before its first checkpoint:\n{proc.stderr.read()}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("run did not checkpoint in time")
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, f"finished before the SIGTERM was handled:\n{err[-3000:]}"
    ckpt = checkpoint.latest(tdir)
    assert ckpt.meta["reason"] == "preempted" and 0 < ckpt.global_step < STEPS
    return ckpt


def kill_and_resume_equals_uninterrupted(
    data_dir: Path, exp: Path, space: Path, keep_as: str | None = None
) -> int:
    """The whole check on this process's devices; returns the device count it ran on.

    `keep_as`: also leave a copy of the preempted run as experiment `keep_as`, to be resumed
    elsewhere.
    """
    import jax

    n = jax.local_device_count()
    assert main(_argv(data_dir, exp, "ref", space)) == 0
    ref = _trial(exp, "ref")
    argv = _argv(data_dir, exp, "kr", space)
    tdir = _trial(exp, "kr")
    ckpt = _preempt_after_first_checkpoint(argv, tdir)
    if keep_as is not None:
        shutil.copytree(exp / "kr", exp / keep_as)
    # Saved with the device axis: every parameter and optimizer-state array leads with n.
    for group in ("model_params", "optimizer_state"):
        shapes = [r["shape"] for r in ckpt.meta["arrays"]["leaves"][group] if "shape" in r]
        assert shapes and all(s[0] == n for s in shapes if s), (group, shapes)

    assert main([*argv, "--resume_last_run"]) == 0
    record = json.loads((tdir / "run_record.json").read_text())
    assert record["jax_layout"] == "pmap" and record["num_devices"] == n
    rows, ref_rows = _rows(tdir), _rows(ref)
    assert [int(r["global_step"]) for r in rows] == list(range(EVERY, STEPS + 1, EVERY))
    assert _metrics(rows) == _metrics(ref_rows)  # same eval points and metrics, no duplicates
    assert float(ref_rows[-1]["train/loss"]) < float(ref_rows[0]["train/loss"])  # it trained
    kept = ckpt.meta["log_rows"]["eval_measurements.csv"]
    assert [r["preemption_count"] for r in rows] == ["0"] * kept + ["1"] * (len(rows) - kept)

    final, ref_final = _final_arrays(tdir), _final_arrays(ref)
    assert final.keys() == ref_final.keys()
    for key in final:
        np.testing.assert_array_equal(final[key], ref_final[key], err_msg=key)
    status = json.loads((tdir / "status.json").read_text())
    assert status["status"] == "finished" and status["preemption_count"] == 1
    return n


@pytest.fixture
def space(tmp_path: Path) -> Path:
    path = tmp_path / "space.json"
    # Slow enough that the run does not reach the targets (and stop) before STEPS.
    path.write_text(json.dumps({"learning_rate": {"feasible_points": [1e-4]}}))
    return path


def test_pmap_layout_preempt_and_resume_one_device(mnist_data_dir, tmp_path, space, monkeypatch):
    monkeypatch.chdir(REPO)  # the submission is imported by its path from here, as upstream
    assert kill_and_resume_equals_uninterrupted(mnist_data_dir, tmp_path, space) == 1


@pytest.mark.multi_device
def test_pmap_layout_preempt_and_resume_two_devices(
    mnist_data_dir, tmp_path, space, monkeypatch, python_on_host_devices
):
    """Two devices; then a run preempted on two resumes on one, as a requeued job may: from the
    first replica of the saved state (upstream saved only that one), the same numbers within
    the tolerance of the two layouts."""
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, 'tests/integration'); "
        "import test_resume_pmap as t; args = [Path(a) for a in sys.argv[1:]]; "
        "n = t.kill_and_resume_equals_uninterrupted(*args, keep_as='moved'); "
        "print('DEVICES', n)"
    )
    out = python_on_host_devices(code, mnist_data_dir, tmp_path, space, devices=2)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "DEVICES 2" in out.stdout
    monkeypatch.chdir(REPO)
    moved = _trial(tmp_path, "moved")
    saved = checkpoint.latest(moved)
    assert saved.meta["arrays"]["local_devices"] == 2
    assert main([*_argv(mnist_data_dir, tmp_path, "moved", space), "--resume_last_run"]) == 0
    assert json.loads((moved / "run_record.json").read_text())["num_devices"] == 1
    rows, ref_rows = _rows(moved), _rows(_trial(tmp_path, "ref"))
    assert [r["global_step"] for r in rows] == [r["global_step"] for r in ref_rows]
    for r, s in zip(rows, ref_rows):
        for key in ("train/loss", "validation/loss", "validation/accuracy", "test/loss"):
            assert float(r[key]) == pytest.approx(float(s[key]), rel=2e-5), (r["global_step"], key)
    final = _final_arrays(moved)
    assert all(v.shape[0] == 1 for k, v in final.items() if k.startswith("model_params/"))
