"""Failures end a trial, not the run: divergence, exceptions and out-of-memory are recorded in
the trial directory and the next trial runs; bad set-up, --overwrite and concurrent runs are safe."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest

from algoperf.cli import main
from algoperf.runner import trial

# fail_kind: 0 none, 1 logs a NaN loss, 2 raises, 3 runs out of memory, 4 NaN parameters (the
# eval shows NaN), 5 init_optimizer_state raises (before training).
SUBMISSION = textwrap.dedent(
    """
    import torch

    from algoperf import spec


    def get_batch_size(name):
        return 64


    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        if int(hyperparameters.fail_kind) == 5:
            raise RuntimeError("cannot build the optimizer")
        lr = hyperparameters.learning_rate
        return {"optimizer": torch.optim.Adam(model_params.parameters(), lr=lr)}


    def update_params(workload, current_param_container, current_params_types, model_state,
                      hyperparameters, batch, loss_type, optimizer_state, eval_results,
                      global_step, rng):
        kind, at = int(hyperparameters.fail_kind), int(hyperparameters.fail_at)
        if global_step == at and kind == 2:
            raise ValueError("boom in update_params")
        if global_step == at and kind == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        model = current_param_container
        opt = optimizer_state["optimizer"]
        opt.zero_grad()
        logits, _ = workload.model_fn(model, batch, None, spec.ForwardPassMode.TRAIN, rng, False)
        d = workload.loss_fn(batch["targets"], logits)
        loss = d["summed"] / d["n_valid_examples"]
        loss.backward()
        opt.step()
        if kind == 1 and global_step >= at:
            workload.metrics_logger.append_scalar_metrics({"loss": float("nan")}, global_step)
        if kind == 4 and global_step >= at:
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(float("nan"))
        return optimizer_state, model, model_state


    def data_selection(workload, input_queue, optimizer_state, current_param_container,
                       model_state, hyperparameters, global_step, rng):
        return next(input_queue)
    """
)


def _point(kind: int, at: int = 12) -> dict:
    # A slow learning rate: no trial reaches the targets (and stops) within 30 steps.
    return {"learning_rate": 1e-5, "fail_kind": kind, "fail_at": at}


def _setup(tmp_path: Path, points: list[dict]) -> tuple[Path, Path]:
    sub = tmp_path / "failing_pytorch.py"
    sub.write_text(SUBMISSION)
    space = tmp_path / "space.json"
    space.write_text(json.dumps(points))
    return sub, space


def _argv(sub, space, data_dir, exp, n, *extra):
    return [
        "run",
        "--framework=pytorch",
        "--workload=fashion_mnist",
        f"--submission_path={sub}",
        f"--tuning_search_space={space}",
        f"--num_tuning_trials={n}",
        f"--experiment_dir={exp}",
        "--experiment_name=f",
        f"--data_dir={data_dir}",
        "--rng_seed=5",
        "--max_global_steps=30",
        "--eval_every_n_steps=10",
        "--progress=false",
        *extra,
    ]


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_each_failure_is_recorded_and_the_next_trial_runs(mnist_data_dir, tmp_path, capsys):
    points = [_point(4), _point(2), _point(3), _point(1), _point(0)]
    sub, space = _setup(tmp_path, points)
    exp = tmp_path / "exp"
    code = main(_argv(sub, space, mnist_data_dir, exp, len(points), "--stop_on_divergence"))
    out = capsys.readouterr().out
    assert code == 1  # a trial failed; all five ran
    wdir = exp / "f" / "fashion_mnist_pytorch"
    status = {k: json.loads((wdir / f"trial_{k}" / "status.json").read_text()) for k in range(1, 6)}
    assert [status[k]["status"] for k in range(1, 6)] == [
        "diverged",
        "failed",
        "failed",
        "diverged",
        "finished",
    ]
    # 1: NaN parameters show in the eval at step 20, the trial stops there.
    with (wdir / "trial_1" / "eval_measurements.csv").open() as f:
        rows1 = list(csv.DictReader(f))
    assert len(rows1) == 2 and rows1[-1]["validation/loss"] == ""  # NaN, as pandas writes it
    assert status[1]["global_step"] == 20
    # 2: the traceback is kept, naming the submission's line.
    failure = (wdir / "trial_2" / "failure.txt").read_text()
    assert failure.startswith("ValueError during training at step 12: boom in update_params")
    assert "Traceback" in failure and "failing_pytorch.py" in failure
    assert (wdir / "trial_2" / "eval_measurements.csv").exists()  # rows before the failure kept
    # 3: out of memory is said plainly, with what to change.
    oom = (wdir / "trial_3" / "failure.txt").read_text().splitlines()[0]
    assert oom.startswith("out of memory during training at step 12")
    assert "get_batch_size('fashion_mnist')" in oom and status[3]["message"] == oom
    # 4: a logged NaN loss stops the trial after that step.
    assert status[4]["global_step"] == 13 and status[4]["stop_reason"] == "diverged"
    # 5: unaffected by the others.
    assert status[5]["global_step"] == 30
    assert not (wdir / "trial_5" / "failure.txt").exists()
    assert "trial 2 [failed]" in out and "trial 3 [failed]" in out and "trial 5 [finished]" in out
    record = json.loads((wdir / "trial_1" / "run_record.json").read_text())
    assert record["result"]["status"] == "diverged" and record["stop_on_divergence"] is True
    assert not (wdir / ".lock").exists()  # released at the end


def test_non_finite_values_do_not_stop_a_trial_by_default(mnist_data_dir, tmp_path):
    """Upstream trains on to the budget through NaN losses and NaN evals."""
    sub, space = _setup(tmp_path, [_point(4), _point(1)])
    exp = tmp_path / "exp"
    assert main(_argv(sub, space, mnist_data_dir, exp, 2)) == 0
    wdir = exp / "f" / "fashion_mnist_pytorch"
    for k in (1, 2):
        status = json.loads((wdir / f"trial_{k}" / "status.json").read_text())
        assert status["status"] == "finished" and status["global_step"] == 30
        record = json.loads((wdir / f"trial_{k}" / "run_record.json").read_text())
        assert record["stop_on_divergence"] is False
    record = json.loads((wdir / "trial_1" / "run_record.json").read_text())
    assert record["result"]["nonfinite_evals"] == 2  # steps 20 and 30


def test_an_eval_error_is_logged_and_training_continues(
    mnist_data_dir, tmp_path, monkeypatch, caplog
):
    from algoperf import registry

    cls = registry.workload_class("fashion_mnist", "pytorch")
    eval_model = cls.eval_model
    calls = []

    def failing_once(self, *args, **kwargs):
        calls.append(args[-1])
        if len(calls) == 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 9.00 GiB (eval)")
        return eval_model(self, *args, **kwargs)

    monkeypatch.setattr(cls, "eval_model", failing_once)
    sub, space = _setup(tmp_path, [_point(0)])
    exp = tmp_path / "exp"
    assert main(_argv(sub, space, mnist_data_dir, exp, 1)) == 0
    tdir = exp / "f" / "fashion_mnist_pytorch" / "trial_1"
    with (tdir / "eval_measurements.csv").open() as f:
        steps = [int(r["global_step"]) for r in csv.DictReader(f)]
    # The eval at step 20 failed: no row, training went on (the time-based schedule would retry
    # at the next step, as upstream: tests/unit/runner/test_loop.py).
    assert calls == [10, 20, 30] and steps == [10, 30]
    assert json.loads((tdir / "status.json").read_text())["status"] == "finished"
    record = json.loads((tdir / "run_record.json").read_text())
    assert record["result"]["eval_errors"] == 1
    assert "eval at step 20 failed (training continues)" in caplog.text


def test_a_checkpoint_save_that_raises_is_logged_and_training_continues(
    mnist_data_dir, tmp_path, monkeypatch, caplog
):
    """Upstream's eval ``try`` covers the checkpoint save: the trial goes on, the rows and the
    checkpoint written before stay intact, the failed one leaves nothing behind."""
    from algoperf.runner import checkpoint

    torch_save = checkpoint._torch_save
    calls = []

    def failing_at_step_20(path, snapshot):
        calls.append(snapshot.global_step)
        if snapshot.global_step == 20:
            raise RuntimeError("CUDA out of memory while copying the checkpoint")
        return torch_save(path, snapshot)

    monkeypatch.setattr(checkpoint, "_torch_save", failing_at_step_20)
    sub, space = _setup(tmp_path, [_point(0)])
    exp = tmp_path / "exp"
    argv = _argv(sub, space, mnist_data_dir, exp, 1, "--save_checkpoints")
    assert main([*argv, "--save_intermediate_checkpoints"]) == 0
    tdir = exp / "f" / "fashion_mnist_pytorch" / "trial_1"
    with (tdir / "eval_measurements.csv").open() as f:
        steps = [int(r["global_step"]) for r in csv.DictReader(f)]
    assert calls == [10, 20, 30] and steps == [10, 20, 30]
    assert sorted(p.name for p in checkpoint.checkpoint_dirs(tdir)) == [
        "checkpoint_10",
        "checkpoint_30",
    ]
    assert not list(tdir.glob(".checkpoint_*"))  # the failed save's temporary is gone
    assert checkpoint.load(tdir / "checkpoint_10").global_step == 10
    assert json.loads((tdir / "status.json").read_text())["status"] == "finished"
    result = json.loads((tdir / "run_record.json").read_text())["result"]
    assert result["logging_errors"] == 1 and result["eval_errors"] == 0
    assert "logging the eval of step 20 failed (training continues)" in caplog.text


def test_failure_before_training_removes_the_new_trial_and_stops(mnist_data_dir, tmp_path):
    sub, space = _setup(tmp_path, [_point(5), _point(0)])
    exp = tmp_path / "exp"
    with pytest.raises(RuntimeError, match="cannot build the optimizer"):
        main(_argv(sub, space, mnist_data_dir, exp, 2))
    assert not list(exp.glob("**/trial_*"))


def test_overwrite_deletes_only_the_trial(mnist_data_dir, tmp_path):
    sub, space = _setup(tmp_path, [_point(0)])
    exp = tmp_path / "exp"
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("data")
    sibling = exp / "f" / "other_results.txt"
    tdir = exp / "f" / "fashion_mnist_pytorch" / "trial_1"
    tdir.mkdir(parents=True)
    (tdir / "eval_measurements.csv").write_text("stale\n")
    (tdir / "outside_link").symlink_to(outside)
    sibling.write_text("not ours")
    assert main(_argv(sub, space, mnist_data_dir, exp, 1, "--overwrite")) == 0
    assert (outside / "keep.txt").read_text() == "data"
    assert sibling.read_text() == "not ours"
    assert not (tdir / "outside_link").exists()
    assert "stale" not in (tdir / "eval_measurements.csv").read_text()


def test_a_second_run_into_the_same_directory_is_refused(mnist_data_dir, tmp_path, capsys):
    sub, space = _setup(tmp_path, [_point(0)])
    exp = tmp_path / "exp"
    lock = trial.WorkloadLock(exp / "f" / "fashion_mnist_pytorch")
    lock.acquire()
    try:
        code = main(_argv(sub, space, mnist_data_dir, exp, 1))
    finally:
        lock.release()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "in use by another algoperf run (pid" in err[0] and "--experiment_name" in err[0]
    assert not list(exp.glob("**/trial_*"))
