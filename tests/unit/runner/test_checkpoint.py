"""Checkpoint files: exact round trips in both frameworks, atomic replacement, pruning, mismatch
errors, and the CSV truncation a resume relies on."""

from __future__ import annotations

import csv
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

from algoperf.runner import checkpoint, loop


def _snapshot(params, model_state, opt_state, step=7, **kw):
    return loop.Snapshot(
        reason=kw.get("reason", "eval"),
        global_step=step,
        batches_drawn=kw.get("drawn", step),
        model_params=params,
        model_state=model_state,
        optimizer_state=opt_state,
        train_state={
            "validation_goal_reached": False,
            "test_goal_reached": True,
            "accumulated_submission_time": 12.5,
            "accumulated_eval_time": 3.25,
            "accumulated_logging_time": 0.125,
        },
        eval_results=[(5, {"validation/loss": 0.5, "global_step": 5})],
        total_duration=15.875,
        since_last_eval=0.0,
    )


def _save(tmp_path, snap, framework, **kw):
    return checkpoint.save(
        tmp_path,
        snap,
        framework,
        preemption_count=kw.pop("preemption_count", 0),
        run_info={"workload": "w"},
        log_rows={"eval_measurements.csv": 1},
        **kw,
    )


def test_jax_round_trip_restores_values_types_and_structure(tmp_path):
    import jax
    import jax.numpy as jnp
    import optax

    from algoperf.frameworks import jax as fjax

    params = fjax.replicate(
        {"dense": {"kernel": jnp.arange(6.0).reshape(2, 3), "bias": jnp.ones(3, jnp.bfloat16)}}
    )
    model_state = {"batch_stats": {"mean": np.float32(2.5) * np.ones(3, np.float32)}}
    tx = optax.adam(1e-3)
    opt_state = (fjax.replicate(tx.init(params)), tx.update)
    # Step the optimizer once so that its state is not the initial one.
    grads = jax.tree.map(jnp.ones_like, params)
    _, new_inner = tx.update(grads, opt_state[0], params)
    snap_opt = (new_inner, tx.update)
    extra = {"key": jax.random.key(3), "count": 4, "scale": 0.5}
    snap = _snapshot((params, extra), model_state, snap_opt)
    ckpt = _save(tmp_path, snap, "jax")
    assert ckpt.path.name == "checkpoint_7" and (ckpt.path / "arrays.npz").exists()

    # A fresh process builds the templates anew (different values, same structure).
    fresh_params = jax.tree.map(jnp.zeros_like, params)
    fresh_extra = {"key": jax.random.key(0), "count": 0, "scale": 0.0}
    fresh_opt = (fjax.replicate(tx.init(fresh_params)), optax.adam(5.0).update)
    point = checkpoint.resume_point(checkpoint.latest(tmp_path), "jax")
    got_params, got_state, got_opt = point.restore(
        (fresh_params, fresh_extra), {"batch_stats": {"mean": np.zeros(3, np.float32)}}, fresh_opt
    )
    for a, b in zip(jax.tree.leaves(got_params[0]), jax.tree.leaves(params)):
        assert a.dtype == b.dtype and a.shape == b.shape and a.sharding == b.sharding
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert got_params[1]["count"] == 4 and type(got_params[1]["count"]) is int
    assert got_params[1]["scale"] == 0.5
    np.testing.assert_array_equal(
        jax.random.key_data(got_params[1]["key"]), jax.random.key_data(extra["key"])
    )
    np.testing.assert_array_equal(got_state["batch_stats"]["mean"], np.full(3, 2.5, np.float32))
    for a, b in zip(jax.tree.leaves(got_opt[0]), jax.tree.leaves(new_inner)):
        assert a.shape == b.shape and a.dtype == b.dtype  # 0-d counts stay 0-d
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert got_opt[1] is fresh_opt[1]  # functions come from the fresh state, never the file
    assert point.global_step == 7 and point.total_duration == 15.875
    assert point.eval_results == [(5, {"validation/loss": 0.5, "global_step": 5})]
    assert point.train_state["test_goal_reached"] is True


def test_jax_restore_rejects_a_different_structure(tmp_path):
    import jax.numpy as jnp

    _save(tmp_path, _snapshot({"w": jnp.ones((2, 3))}, None, ()), "jax")
    point = checkpoint.resume_point(checkpoint.latest(tmp_path), "jax")
    with pytest.raises(checkpoint.CheckpointError, match="shape"):
        point.restore({"w": jnp.ones((3, 2))}, None, ())
    with pytest.raises(checkpoint.CheckpointError, match="leaves"):
        point.restore({"w": jnp.ones((2, 3)), "b": jnp.ones(2)}, None, ())
    with pytest.raises(checkpoint.CheckpointError, match="pytorch"):
        checkpoint.resume_point(checkpoint.latest(tmp_path), "pytorch")


def test_pytorch_round_trip_model_optimizer_scheduler_and_rng(tmp_path):
    import torch

    def build():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
        opt = torch.optim.AdamW(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
        return model, {"optimizer": opt, "scheduler": sched, "note": torch.tensor([2.0])}

    model, state = build()
    for _ in range(3):
        state["optimizer"].zero_grad()
        model(torch.randn(5, 4)).sum().backward()
        state["optimizer"].step()
        state["scheduler"].step()
    torch.manual_seed(123)
    np.random.seed(5)
    random.seed(9)
    _save(tmp_path, _snapshot(model, None, state), "pytorch")
    expected_draws = (torch.rand(3), np.random.rand(2), random.random())

    fresh_model, fresh_state = build()
    point = checkpoint.resume_point(checkpoint.latest(tmp_path), "pytorch")
    got_model, got_ms, got_state = point.restore(fresh_model, None, fresh_state)
    assert got_model is fresh_model and got_ms is None
    for (name, a), b in zip(model.state_dict().items(), got_model.state_dict().values()):
        assert torch.equal(a, b), name
    assert (
        got_state["optimizer"]
        .state_dict()["state"][0]["exp_avg"]
        .equal(state["optimizer"].state_dict()["state"][0]["exp_avg"])
    )
    assert got_state["scheduler"].last_epoch == 3
    assert got_state["optimizer"].param_groups[0]["lr"] == state["optimizer"].param_groups[0]["lr"]
    # The process RNGs continue exactly where they were at the snapshot.
    assert torch.equal(torch.rand(3), expected_draws[0])
    np.testing.assert_array_equal(np.random.rand(2), expected_draws[1])
    assert random.random() == expected_draws[2]


def test_save_is_atomic_prunes_and_finds_the_latest(tmp_path):
    import jax.numpy as jnp

    for step in (5, 10, 15):
        _save(tmp_path, _snapshot({"w": jnp.full(2, float(step))}, None, (), step=step), "jax")
    assert [p.name for p in checkpoint.checkpoint_dirs(tmp_path)] == [
        "checkpoint_5",
        "checkpoint_10",
        "checkpoint_15",
    ]
    # A half-written checkpoint (killed while saving) is ignored and cleaned up.
    torn = tmp_path / ".checkpoint_20.tmpabc"
    torn.mkdir()
    (torn / "arrays.npz").write_bytes(b"partial")
    (tmp_path / "checkpoint_25").mkdir()  # no state.json: incomplete, ignored
    assert checkpoint.latest(tmp_path).global_step == 15
    checkpoint.remove_temporaries(tmp_path)
    assert not torn.exists()

    _save(
        tmp_path,
        _snapshot({"w": jnp.ones(2)}, None, (), step=30),
        "jax",
        keep_intermediate=False,
    )
    assert [p.name for p in checkpoint.checkpoint_dirs(tmp_path)] == ["checkpoint_30"]
    # Saving the same step again replaces it.
    _save(tmp_path, _snapshot({"w": jnp.zeros(2)}, None, (), step=30), "jax", preemption_count=2)
    assert checkpoint.latest(tmp_path).preemption_count == 2
    assert not list(tmp_path.glob(".checkpoint_*"))


def test_failed_save_leaves_no_trace(tmp_path, monkeypatch):
    import jax.numpy as jnp

    _save(tmp_path, _snapshot({"w": jnp.ones(2)}, None, (), step=5), "jax")

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.logs, "write_json_atomic", broken)
    with pytest.raises(OSError, match="disk full"):
        _save(tmp_path, _snapshot({"w": jnp.ones(2)}, None, (), step=10), "jax")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint_5"]


def test_unreadable_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    import jax.numpy as jnp

    ckpt = _save(tmp_path, _snapshot({"w": jnp.ones(2)}, None, ()), "jax")
    meta = json.loads((ckpt.path / "state.json").read_text())
    meta["format_version"] = 99
    (ckpt.path / "state.json").write_text(json.dumps(meta))
    with pytest.raises(checkpoint.CheckpointError, match="--overwrite"):
        checkpoint.latest(tmp_path)
    (ckpt.path / "state.json").write_text("{")
    with pytest.raises(checkpoint.CheckpointError, match=r"state\.json"):
        checkpoint.latest(tmp_path)


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def test_csv_truncation_keeps_header_and_first_rows(tmp_path):
    path = tmp_path / "eval_measurements.csv"
    _write_csv(path, [["a", "b"], ["1", "x"], ["2", "multi\nline"], ["3", "z"]])
    assert checkpoint.count_csv_rows(path) == 3
    assert checkpoint.truncate_csv_rows(path, 2) == 1
    with path.open(newline="") as f:
        assert list(csv.reader(f)) == [["a", "b"], ["1", "x"], ["2", "multi\nline"]]
    assert checkpoint.truncate_csv_rows(path, 5) == 0
    assert checkpoint.count_csv_rows(tmp_path / "missing.csv") == 0
    dropped = checkpoint.truncate_logs(tmp_path, {"eval_measurements.csv": 0, "missing.csv": 0})
    assert dropped == {"eval_measurements.csv": 2, "missing.csv": 0}
    assert path.read_text() == "a,b\n"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
