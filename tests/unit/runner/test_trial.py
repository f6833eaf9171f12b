"""Trial-level safety pieces: the workload-directory lock, what --overwrite may delete, the
divergence flag from logged losses, out-of-memory detection, and the new runner flags."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from algoperf import registry
from algoperf.runner import cli, loop, trial
from algoperf.runner.config import RunConfig


def test_lock_is_exclusive_names_the_holder_and_cleans_up(tmp_path):
    wdir = tmp_path / "exp" / "name" / "mnist_jax"
    first = trial.WorkloadLock(wdir)
    first.acquire()
    assert (wdir / ".lock").exists()
    with pytest.raises(
        trial.RunError, match=rf"in use by another algoperf run \(pid {os.getpid()}"
    ):
        trial.WorkloadLock(wdir).acquire()
    first.release()
    assert not (wdir / ".lock").exists()
    second = trial.WorkloadLock(wdir)
    second.acquire()
    second.release()


def test_lock_held_by_another_process(tmp_path):
    wdir = tmp_path / "w"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from algoperf.runner.trial import WorkloadLock
                lock = WorkloadLock({str(wdir)!r}); lock.acquire()
                print("locked", flush=True)
                sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(trial.RunError, match=f"pid {holder.pid} on "):
            trial.WorkloadLock(wdir).acquire()
    finally:
        holder.communicate("\n", timeout=30)
    # The holder exited: the lock is free again.
    lock = trial.WorkloadLock(wdir)
    lock.acquire()
    lock.release()


def test_remove_trial_dir_touches_only_trial_dirs(tmp_path):
    wdir = tmp_path / "w"
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data.txt").write_text("keep")
    tdir = wdir / "trial_1"
    tdir.mkdir(parents=True)
    (tdir / "link").symlink_to(outside)
    (tdir / "hparams.json").write_text("{}")
    (tdir / "eval_measurements.csv").write_text("a\n")
    trial._remove_trial_dir(tdir, wdir, keep=("hparams.json",))
    assert sorted(p.name for p in tdir.iterdir()) == ["hparams.json"]
    trial._remove_trial_dir(tdir, wdir)
    assert not tdir.exists()
    # A trial "directory" that is a symlink: only the link goes.
    (wdir / "trial_2").symlink_to(outside)
    trial._remove_trial_dir(wdir / "trial_2", wdir)
    assert (outside / "data.txt").read_text() == "keep"
    for bad in (outside, wdir / "not_a_trial", tmp_path / "trial_3"):
        with pytest.raises(trial.RunError, match="refusing to delete"):
            trial._remove_trial_dir(bad, wdir)
    assert (outside / "data.txt").exists()


def _config(**kw):
    base = dict(
        framework="jax",
        workload="mnist",
        submission_path="s.py",
        experiment_dir="/tmp/x",
        experiment_name="e",
        tuning_ruleset="self",
    )
    base.update(kw)
    return RunConfig(**base)


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a/../../b"])
def test_experiment_name_cannot_leave_experiment_dir(name):
    with pytest.raises(ValueError, match="inside --experiment_dir"):
        _config(experiment_name=name)


def test_flag_conflicts_and_new_flags():
    with pytest.raises(ValueError, match="exclude each other"):
        _config(overwrite=True, resume_last_run=True)
    with pytest.raises(ValueError, match="eval_every_n_steps"):
        _config(eval_every_n_steps=0)
    config = cli.config_from_argv(
        [
            "--framework=pytorch",
            "--workload=mnist",
            "--submission_path=s.py",
            "--experiment_dir=/tmp/x",
            "--experiment_name=e",
            "--tuning_ruleset=self",
            "--save_checkpoints",
            "--nosave_intermediate_checkpoints",
            "--eval_every_n_steps=50",
            "--progress=false",
            "--pytorch_eval_num_workers=2",
        ]
    )
    assert config.save_checkpoints and not config.save_intermediate_checkpoints
    assert config.eval_every_n_steps == 50 and config.progress is False
    assert config.eval_num_workers == 2
    unset = cli.config_from_argv(
        [
            "--framework=jax",
            "--workload=mnist",
            "--submission_path=s.py",
            "--experiment_dir=/tmp/x",
            "--experiment_name=e",
            "--tuning_ruleset=self",
        ]
    )
    assert unset.eval_num_workers is None and unset.progress is None


def test_logged_non_finite_loss_stops_only_when_asked(tmp_path):
    default = trial.StopGuard()  # upstream trains on through a NaN loss
    trial.GuardedLogger(tmp_path / "a", default).append_scalar_metrics({"loss": math.nan}, 1)
    assert default.code() == loop.STOP_NONE
    guard = trial.StopGuard(stop_on_divergence=True)
    logger = trial.GuardedLogger(tmp_path, guard)
    logger.append_scalar_metrics({"loss": 1.5, "grad_norm": math.inf}, 10)
    assert guard.code() == loop.STOP_NONE  # only losses count
    logger.append_scalar_metrics({"train_loss": math.nan}, 11)
    assert guard.code() == loop.STOP_DIVERGED
    null_guard = trial.StopGuard(stop_on_divergence=True)
    trial.NullLogger(null_guard).append_scalar_metrics({"loss": math.inf}, 3)
    assert null_guard.code() == loop.STOP_DIVERGED
    null_guard.preempted = True
    assert null_guard.code() == loop.STOP_PREEMPTED


def test_out_of_memory_is_recognised():
    import torch

    assert trial.is_out_of_memory(MemoryError())
    assert trial.is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried ..."))
    assert trial.is_out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating"))
    assert not trial.is_out_of_memory(RuntimeError("shape mismatch"))


def test_resume_reuses_the_seed_the_trials_started_with(tmp_path):
    from algoperf.runner import checkpoint

    ckpt = checkpoint.Checkpoint(tmp_path, {"run": {"rng_seed": 987654}})
    plans = [
        trial.TrialPlan(0, None, tmp_path / "trial_1", "fresh"),
        trial.TrialPlan(1, None, tmp_path / "trial_2", "resume", ckpt),
    ]
    assert trial._resolve_seed(_config(resume_last_run=True), plans) == 987654
    assert trial._resolve_seed(_config(resume_last_run=True, rng_seed=987654), plans) == 987654
    with pytest.raises(trial.RunError, match="--rng_seed=987654"):
        trial._resolve_seed(_config(resume_last_run=True, rng_seed=5), plans)
    # Not resuming: the flag (or a fresh draw) as usual.
    assert trial._resolve_seed(_config(rng_seed=5), plans) == 5


def test_tokenizer_path_reaches_librispeech_workloads_only(tmp_path, monkeypatch):
    assert trial._workload_kwargs(_config()) == {}
    with pytest.raises(trial.RunError, match="librispeech workloads only"):
        trial._workload_kwargs(_config(librispeech_tokenizer_vocab_path="spm.vocab"))

    class Speech:
        def __init__(self, config=None, tokenizer_vocab_path=None):
            pass

    monkeypatch.setattr(trial.registry, "workload_class", lambda name, framework: Speech)
    missing = _config(
        workload="librispeech_conformer", librispeech_tokenizer_vocab_path=str(tmp_path / "no")
    )
    with pytest.raises(trial.RunError, match="no such file"):
        trial._workload_kwargs(missing)
    vocab = tmp_path / "spm.vocab"
    vocab.write_text("x")
    found = _config(workload="librispeech_conformer", librispeech_tokenizer_vocab_path=str(vocab))
    assert trial._workload_kwargs(found) == {"tokenizer_vocab_path": str(vocab)}
    monkeypatch.setattr(trial.registry, "workload_class", lambda name, framework: type("W", (), {}))
    with pytest.raises(trial.RunError, match="takes no tokenizer path"):
        trial._workload_kwargs(found)


def test_environment_is_set_before_the_framework_initialises(monkeypatch):
    monkeypatch.delenv("XLA_PYTHON_CLIENT_MEM_FRACTION", raising=False)
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # restored afterwards
    seen = {}

    class StopError(Exception):
        pass

    def configure_process(framework):
        seen["fraction"] = trial.os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION")
        raise StopError

    monkeypatch.setattr(trial.registry, "workload_class", lambda name, framework: object)
    monkeypatch.setattr(trial.rng_lib, "configure_process", configure_process)
    with pytest.raises(StopError):
        trial.preflight(_config(workload="imagenet_vit"))
    assert seen["fraction"] == "0.80"


def test_skip_evals_is_not_applied_under_self_tuning():
    assert trial._skip_evals(_config(skip_evals=True)) is False  # _config is self-tuning
    external = _config(tuning_ruleset="external", tuning_search_space="s.json", skip_evals=True)
    assert trial._skip_evals(external) is True


def test_time_to_target_uses_the_scorers_comparison():
    """A row exactly at the target counts for the scorer (>=), unlike the runner's stop (>)."""
    config = registry.get_config("mnist")
    target = config.validation_target_value
    workload = types.SimpleNamespace(
        target_metric_name="accuracy", validation_target_value=target, config=config
    )
    rows = [(1, {"validation/accuracy": target - 0.01, "score": 1.0})]
    rows.append((2, {"validation/accuracy": target, "score": 2.0}))
    state = loop.TrainState(accumulated_eval_time=1.0)
    result = loop.LoopResult(3.0, 2, rows, state, "budget", 10.0)
    summary = trial._summarize(0, Path("t"), result, workload, "finished", 0)
    assert summary.time_to_target == 2.0
    assert not trial.scoring_hits(math.nan, target, True)


def test_time_to_target_uses_the_scoring_target_where_it_differs():
    """finewebedu_lm: the runner stops at ppl <= 22.432, the scorer's target is 22.2995."""
    config = registry.get_config("finewebedu_lm")
    assert (config.validation_target_value, config.scoring_validation_target_value) == (
        22.432,
        22.2995,
    )
    workload = types.SimpleNamespace(
        target_metric_name="ppl", validation_target_value=22.432, config=config
    )
    rows = [
        (1, {"validation/ppl": 22.432, "score": 1.0}),  # the runner's target, not the scorer's
        (2, {"validation/ppl": 22.3, "score": 2.0}),
        (3, {"validation/ppl": 22.2995, "score": 3.0}),  # the scorer's (inclusive)
    ]
    result = loop.LoopResult(4.0, 3, rows, loop.TrainState(), "targets_reached", 4.0)
    assert trial.scoring_target(workload) == 22.2995
    assert trial._summarize(0, Path("t"), result, workload, "finished", 0).time_to_target == 3.0
    # A variant without a scoring target of its own falls back to the workload's target.
    bible = registry.get_config("lm_bible")
    assert bible.scoring_validation_target_value is None
    other = types.SimpleNamespace(validation_target_value=5.0, config=bible)
    assert trial.scoring_target(other) == 5.0
