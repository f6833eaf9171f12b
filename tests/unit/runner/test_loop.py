"""Clock and schedule invariants of the timed loop, checked exactly with a fake clock.

A framework-free fake workload and submission advance a `FakeClock` by known amounts (a step
costs `STEP` seconds, an eval `eval_cost`, a logged row `LOG`), so every accounting rule of
`algoperf.runner.loop` can be asserted with equality, not tolerances.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from algoperf import random_utils, spec, step_keys
from algoperf import rng as rng_lib
from algoperf.runner.clock import Clock, FakeClock
from algoperf.runner.loop import (
    STOP_DIVERGED,
    STOP_NONE,
    STOP_PREEMPTED,
    LiveStatus,
    LoopSettings,
    ResumePoint,
    TrainState,
    accepts_train_state,
    train_once,
)
from algoperf.workload_config import WorkloadConfig

STEP = 1.0
LOG = 0.25


def _config(**changes):
    base = dict(
        name="fake",
        base_name="fake",
        family="fake",
        dataset="fake",
        target_metric_name="accuracy",
        validation_target_value=0.9,
        test_target_value=0.8,
        loss_type=spec.LossType.SOFTMAX_CROSS_ENTROPY,
        max_allowed_runtime_sec=100,
        eval_period_time_sec=10,
        step_hint=100,
        num_train_examples=10,
        num_eval_train_examples=10,
        num_validation_examples=10,
        num_test_examples=10,
        eval_batch_size=10,
    )
    base.update(changes)
    return WorkloadConfig(**base)


class FakeWorkload(spec.Workload):
    """Accuracy grows by `rate` per step; an eval costs `eval_cost` seconds on the fake clock."""

    def __init__(self, clock, config, eval_cost=2.0, rate=0.0):
        super().__init__()
        self.clock, self.config, self.eval_cost, self.rate = clock, config, eval_cost, rate
        self.eval_steps = []

    target_metric_name = property(lambda self: self.config.target_metric_name)
    validation_target_value = property(lambda self: self.config.validation_target_value)
    test_target_value = property(lambda self: self.config.test_target_value)
    loss_type = property(lambda self: self.config.loss_type)
    num_train_examples = property(lambda self: 10)
    eval_batch_size = property(lambda self: 10)
    num_eval_train_examples = property(lambda self: 10)
    num_validation_examples = property(lambda self: 10)
    num_test_examples = property(lambda self: 10)
    train_mean = property(lambda self: 0.0)
    train_stddev = property(lambda self: 1.0)
    max_allowed_runtime_sec = property(lambda self: self.config.max_allowed_runtime_sec)
    eval_period_time_sec = property(lambda self: self.config.eval_period_time_sec)
    step_hint = property(lambda self: self.config.step_hint)

    def has_reached_validation_target(self, r):
        return r["validation/accuracy"] > self.validation_target_value

    def has_reached_test_target(self, r):
        return r["test/accuracy"] > self.test_target_value

    def _build_input_queue(self, data_rng, split, data_dir, global_batch_size, *a, **k):
        while True:
            yield {
                "inputs": np.zeros((global_batch_size, 1)),
                "targets": np.zeros(global_batch_size),
            }

    def is_output_params(self, param_key):
        return False

    def init_model_fn(self, rng):
        self._param_shapes = {"w": spec.ShapeTuple((1,))}
        self._param_types = {"w": spec.ParameterType.WEIGHT}
        return {"w": 0.0, "steps": 0}, None

    def model_fn(self, *args, **kwargs):
        raise NotImplementedError

    def loss_fn(self, *args, **kwargs):
        raise NotImplementedError

    def _eval_model_on_split(self, *args, **kwargs):
        raise NotImplementedError

    def eval_model(self, global_batch_size, params, model_state, rng, data_dir, v2, global_step):
        self.clock.advance(self.eval_cost)
        self.eval_steps.append(global_step)
        acc = min(1.0, self.rate * params["steps"])
        return {
            "train/accuracy": acc,
            "validation/accuracy": acc,
            "validation/num_examples": 10,
            "test/accuracy": acc,
            "test/num_examples": 10,
        }


def make_submission(clock, step_cost=STEP, prep_cost=None, raise_at=None, want_train_state=False):
    seen = {"train_state": [], "data_rngs": []}

    def get_batch_size(name):
        return 2

    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        return {}

    def data_selection(workload, input_queue, opt, params, model_state, hp, global_step, rng):
        seen["data_rngs"].append(np.asarray(rng).tolist())
        return next(input_queue)

    def _update(params, global_step):
        clock.advance(step_cost)
        if raise_at is not None and global_step + 1 == raise_at:
            raise spec.TrainingCompleteError
        return {**params, "steps": params["steps"] + 1}

    if want_train_state:

        def update_params(
            workload,
            current_param_container,
            current_params_types,
            model_state,
            hyperparameters,
            batch,
            loss_type,
            optimizer_state,
            eval_results,
            global_step,
            rng,
            train_state=None,
        ):
            seen["train_state"].append(train_state)
            return optimizer_state, _update(current_param_container, global_step), model_state
    else:

        def update_params(
            workload,
            current_param_container,
            current_params_types,
            model_state,
            hyperparameters,
            batch,
            loss_type,
            optimizer_state,
            eval_results,
            global_step,
            rng,
        ):
            return optimizer_state, _update(current_param_container, global_step), model_state

    module = types.SimpleNamespace(
        get_batch_size=get_batch_size,
        init_optimizer_state=init_optimizer_state,
        data_selection=data_selection,
        update_params=update_params,
    )
    if prep_cost is not None:

        def prepare_for_eval(
            workload,
            current_param_container,
            current_params_types,
            model_state,
            hyperparameters,
            loss_type,
            optimizer_state,
            eval_results,
            global_step,
            rng,
        ):
            clock.advance(prep_cost)
            return optimizer_state, current_param_container, model_state

        module.prepare_for_eval = prepare_for_eval
    return module, seen


def run(clock, workload, submission, budget=100.0, max_steps=None, skip_evals=False, log_cost=LOG):
    random_utils.set_framework("pytorch")
    rows = []

    def on_eval(row):
        clock.advance(log_cost)
        rows.append(dict(row))

    result = train_once(
        workload,
        submission,
        global_batch_size=2,
        hyperparameters=None,
        trial_rng=rng_lib.trial_rng(7, "pytorch", "external"),
        settings=LoopSettings(
            budget_sec=budget, data_dir="", max_global_steps=max_steps, skip_evals=skip_evals
        ),
        clock=clock,
        on_eval=on_eval,
    )
    return result, rows


def test_first_eval_after_step_one_then_every_period():
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=2.0)
    result, rows = run(clock, wl, make_submission(clock)[0], budget=50.0)
    assert rows[0]["global_step"] == 1
    # Eval period 10 s of wall time after the previous eval ended: 1 + 10 steps of 1 s.
    assert [r["global_step"] for r in rows] == [1, 11, 21, 31, 41]
    assert result.stop_reason == "budget"


def test_parts_add_up_to_total_duration_exactly():
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=3.0)
    _, rows = run(clock, wl, make_submission(clock, prep_cost=0.5)[0], budget=60.0)
    assert len(rows) >= 3
    for i, r in enumerate(rows):
        # Logging of row i happens after the row is written; rows see earlier logging only.
        assert r["accumulated_logging_time"] == pytest.approx(LOG * i, abs=1e-12)
        parts = r["accumulated_submission_time"] + r["accumulated_eval_time"]
        parts += r["accumulated_logging_time"]
        assert r["total_duration"] == pytest.approx(parts, abs=1e-9)
        assert r["accumulated_eval_time"] == pytest.approx(3.0 * (i + 1), abs=1e-9)
        assert r["score"] == r["accumulated_submission_time"]


def test_no_eval_after_budget_and_strict_budget_check():
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(eval_period_time_sec=5), eval_cost=1.0)
    result, rows = run(clock, wl, make_submission(clock)[0], budget=21.0)
    assert all(r["score"] < 21.0 for r in rows)
    # Eligible points at steps 1, 6, 11, 16, 21 (5 s after each eval's end); at step 21 the
    # submission time is exactly 21.0, which is not < 21.0: stop without an eval.
    assert [r["global_step"] for r in rows] == [1, 6, 11, 16]
    assert result.global_step == 21
    assert result.stop_reason == "budget"
    assert result.accumulated_submission_time == pytest.approx(21.0)


def test_slow_eval_does_not_change_score():
    results = {}
    for eval_cost in (0.5, 500.0):
        clock = FakeClock()
        wl = FakeWorkload(clock, _config(), eval_cost=eval_cost)
        _, rows = run(clock, wl, make_submission(clock)[0], budget=55.0)
        results[eval_cost] = [(r["global_step"], r["score"]) for r in rows]
    assert results[0.5] == results[500.0]
    assert len(results[0.5]) == 6


def test_prepare_for_eval_is_timed():
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=1.0)
    _, rows = run(clock, wl, make_submission(clock, prep_cost=2.0)[0], budget=40.0)
    # Step 1 (1 s) + prepare (2 s) are both submission time.
    assert rows[0]["score"] == pytest.approx(3.0)
    assert rows[1]["score"] == pytest.approx(3.0 + 10 * STEP + 2.0)


def test_early_stop_needs_both_validation_and_test_targets():
    clock = FakeClock()
    # validation target 0.9 is reached before the test target 0.95.
    wl = FakeWorkload(clock, _config(test_target_value=0.95), eval_cost=1.0, rate=0.01)
    result, rows = run(clock, wl, make_submission(clock)[0], budget=1000.0)
    accs = [r["validation/accuracy"] for r in rows]
    first_val = next(i for i, a in enumerate(accs) if a > 0.9)
    assert rows[-1]["validation/accuracy"] > 0.95
    assert len(rows) - 1 > first_val  # kept training after the validation target alone
    assert result.stop_reason == "targets_reached"


def test_max_global_steps_and_training_complete_end_with_a_final_eval():
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=1.0)
    result, rows = run(clock, wl, make_submission(clock)[0], max_steps=15)
    assert result.global_step == 15 and rows[-1]["global_step"] == 15
    assert result.stop_reason == "max_global_steps"

    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=1.0)
    result, rows = run(clock, wl, make_submission(clock, raise_at=7)[0])
    assert result.global_step == 7 and rows[-1]["global_step"] == 7
    assert result.stop_reason == "training_complete"


def test_train_state_passed_only_when_declared_and_read_only():
    clock = FakeClock()
    sub, seen = make_submission(clock, want_train_state=True)
    assert accepts_train_state(sub.update_params)
    run(clock, FakeWorkload(clock, _config()), sub, max_steps=3)
    state = seen["train_state"][-1]
    assert "accumulated_submission_time" in state
    with pytest.raises(TypeError):
        state["accumulated_submission_time"] = 0.0
    plain, _ = make_submission(clock)
    assert not accepts_train_state(plain.update_params)


def test_skip_evals_as_upstream_no_prepare_no_budget_check():
    """Upstream skips the whole eligible-point block: no prepare_for_eval, no budget check."""
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=1.0)
    sub = make_submission(clock, prep_cost=0.5)[0]
    prepared = []
    prepare = sub.prepare_for_eval
    sub.prepare_for_eval = lambda **kw: prepared.append(kw["global_step"]) or prepare(**kw)
    result, rows = run(clock, wl, sub, budget=30.0, skip_evals=True, max_steps=60)
    assert rows == [] and wl.eval_steps == [] and prepared == []
    # Past the budget (60 s > 30 s): only max_global_steps ends it, as upstream.
    assert result.stop_reason == "max_global_steps" and result.global_step == 60
    assert result.accumulated_submission_time == pytest.approx(60.0)
    assert result.train_state.is_time_remaining


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_every_key_passed_follows_upstream_derivation(framework):
    """data_select, update, prep_eval and eval keys are split(fold_in(loop, step), 4), step by step.

    Long enough to cross the key blocks of both backends (`algoperf.step_keys`), with evals at
    irregular steps; the expected keys are derived one step at a time, as upstream does.
    """
    rng_lib.configure_process(framework)
    clock = FakeClock()
    sub, _ = make_submission(clock, prep_cost=0.0)
    seen = {"data_select": {}, "update": {}, "prep_eval": {}, "eval": {}}
    data_selection, update_params, prepare = (
        sub.data_selection,
        sub.update_params,
        sub.prepare_for_eval,
    )

    def record(kind, step, rng):
        seen[kind][step] = np.asarray(rng).tolist()

    def data_selection_rec(workload, queue, opt, params, state, hp, global_step, rng):
        record("data_select", global_step, rng)
        return data_selection(workload, queue, opt, params, state, hp, global_step, rng)

    def update_params_rec(**kwargs):
        record("update", kwargs["global_step"], kwargs["rng"])
        return update_params(**kwargs)

    def prepare_rec(**kwargs):
        record("prep_eval", kwargs["global_step"], kwargs["rng"])
        return prepare(**kwargs)

    sub.data_selection, sub.update_params, sub.prepare_for_eval = (
        data_selection_rec,
        update_params_rec,
        prepare_rec,
    )
    wl = FakeWorkload(clock, _config(), eval_cost=0.0)
    eval_model = wl.eval_model

    def eval_rec(batch_size, params, state, rng, data_dir, v2, global_step):
        record("eval", global_step, rng)
        return eval_model(batch_size, params, state, rng, data_dir, v2, global_step)

    wl.eval_model = eval_rec
    steps = 1100  # > step_keys.BLOCK (NumPy) and several JAX blocks
    result = train_once(
        wl,
        sub,
        global_batch_size=2,
        hyperparameters=None,
        trial_rng=rng_lib.trial_rng(7, framework, "external"),
        settings=LoopSettings(
            budget_sec=1e9, data_dir="", max_global_steps=steps, eval_every_n_steps=97
        ),
        clock=clock,
    )
    assert result.global_step == steps
    loop_rng = rng_lib.train_rngs(rng_lib.trial_rng(7, framework, "external")).loop
    eval_points = [97 * k for k in range(1, steps // 97 + 1)] + [steps]
    assert sorted(seen["eval"]) == eval_points == sorted(seen["prep_eval"])
    assert sorted(seen["data_select"]) == sorted(seen["update"]) == list(range(steps))
    for kind, index in (("data_select", 0), ("update", 1)):
        for step in (0, 1, 127, 128, 129, 500, 1023, 1024, 1099):
            want = random_utils.split(random_utils.fold_in(loop_rng, step), 4)[index]
            assert seen[kind][step] == np.asarray(want).tolist(), (kind, step)
    for kind, index in (("prep_eval", 2), ("eval", 3)):
        for at in eval_points:  # the eval after step `at` uses the keys of step index at - 1
            want = random_utils.split(random_utils.fold_in(loop_rng, at - 1), 4)[index]
            assert seen[kind][at] == np.asarray(want).tolist(), (kind, at)


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_first_key_block_and_eval_keys_are_computed_before_the_clock_starts(framework, monkeypatch):
    """Compiling and filling the first key block is harness set-up, not the first step's time."""
    rng_lib.configure_process(framework)
    clock = FakeClock()
    reads_at = {"train": [], "at_eval": []}
    train, at_eval = step_keys.StepKeys.train, step_keys.StepKeys.at_eval

    def train_rec(self, step):
        reads_at["train"].append(clock.reads)
        return train(self, step)

    def at_eval_rec(self, step):
        reads_at["at_eval"].append(clock.reads)
        return at_eval(self, step)

    monkeypatch.setattr(step_keys.StepKeys, "train", train_rec)
    monkeypatch.setattr(step_keys.StepKeys, "at_eval", at_eval_rec)
    train_once(
        FakeWorkload(clock, _config()),
        make_submission(clock)[0],
        global_batch_size=2,
        hyperparameters=None,
        trial_rng=rng_lib.trial_rng(7, framework, "external"),
        settings=LoopSettings(budget_sec=1e9, data_dir="", max_global_steps=3),
        clock=clock,
    )
    # The first call of each happens before the first clock reading (the loop's start).
    assert reads_at["train"][0] == 0 and reads_at["at_eval"][0] == 0


def test_first_batch_is_drawn_inside_the_timed_region_as_upstream():
    """Pipeline start-up (a slow first batch) is submission time; nothing skipped or repeated."""
    clock = FakeClock()
    wl = FakeWorkload(clock, _config())
    drawn_at = []

    def queue(data_rng, split, data_dir, global_batch_size, *a, **k):
        i = 0
        while True:
            drawn_at.append(clock.reads)
            if i == 0:
                clock.advance(5.0)  # opening files, warming the pipeline
            yield {"inputs": np.full((global_batch_size, 1), i), "targets": np.zeros(2)}
            i += 1

    wl._build_input_queue = queue
    sub, _ = make_submission(clock)
    seen = []
    select = sub.data_selection

    def data_selection(*args):
        batch = select(*args)
        seen.append(int(batch["inputs"][0, 0]))
        return batch

    sub.data_selection = data_selection
    _, rows = run(clock, wl, sub, max_steps=3)
    assert drawn_at[0] == 1  # after the clock's first reading (the start)
    assert seen == [0, 1, 2]
    assert rows[0]["score"] == pytest.approx(5.0 + STEP)


def test_self_tuning_budget_is_one_and_a_half_times_external():
    config = _config(max_allowed_runtime_sec=100)
    assert config.budget_sec(self_tuning=False) == 100
    assert config.budget_sec(self_tuning=True) == 150


# Resume, stop codes, fixed-step schedule, snapshots -------------------------------------------


def run_with(clock, workload, submission, **kwargs):
    """`train_once` with snapshot capture; returns (result, rows, snapshots)."""
    random_utils.set_framework("pytorch")
    rows, snapshots = [], []
    settings = kwargs.pop("settings")

    def on_eval(row):
        clock.advance(LOG)
        rows.append(dict(row))

    def on_checkpoint(snapshot):
        clock.advance(0.5)  # saving costs logging time
        snapshots.append(snapshot)

    kwargs.setdefault("on_eval", on_eval)
    kwargs.setdefault("on_checkpoint", on_checkpoint)
    result = train_once(
        workload,
        submission,
        global_batch_size=2,
        hyperparameters=None,
        trial_rng=rng_lib.trial_rng(7, "pytorch", "external"),
        settings=settings,
        clock=clock,
        **kwargs,
    )
    return result, rows, snapshots


def _resume_from(snapshot):
    return ResumePoint(
        global_step=snapshot.global_step,
        batches_drawn=snapshot.batches_drawn,
        train_state=snapshot.train_state,
        eval_results=snapshot.eval_results,
        total_duration=snapshot.total_duration,
        since_last_eval=snapshot.since_last_eval,
        restore=lambda p, m, o: (
            snapshot.model_params,
            snapshot.model_state,
            snapshot.optimizer_state,
        ),
    )


def test_fixed_step_eval_schedule():
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=1.0)
    settings = LoopSettings(budget_sec=1e9, data_dir="", max_global_steps=23, eval_every_n_steps=5)
    result, rows, _ = run_with(clock, wl, make_submission(clock)[0], settings=settings)
    assert [r["global_step"] for r in rows] == [5, 10, 15, 20, 23]
    assert result.stop_reason == "max_global_steps"


def test_checkpoints_at_evals_and_once_at_the_end():
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=1.0)
    settings = LoopSettings(
        budget_sec=1e9,
        data_dir="",
        max_global_steps=12,
        eval_every_n_steps=5,
        checkpoint_at_evals=True,
    )
    result, rows, snaps = run_with(clock, wl, make_submission(clock)[0], settings=settings)
    # One per eval (5, 10, 12); the final state is the step-12 eval's, not saved twice.
    assert [(s.reason, s.global_step) for s in snaps] == [("eval", 5), ("eval", 10), ("eval", 12)]
    for snap, row in zip(snaps, rows):
        assert snap.total_duration == row["total_duration"]
        assert snap.train_state["accumulated_submission_time"] == row["score"]
        assert snap.since_last_eval == 0.0
        assert snap.batches_drawn == snap.global_step
        assert snap.model_params["steps"] == snap.global_step
    # Saving is logging time, never submission time.
    assert result.train_state.accumulated_logging_time == pytest.approx(3 * (LOG + 0.5))
    assert result.accumulated_submission_time == pytest.approx(12 * STEP)

    # Budget stop: no eval at that point, so a final snapshot is taken there.
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(eval_period_time_sec=5), eval_cost=1.0)
    settings = LoopSettings(budget_sec=12.0, data_dir="", checkpoint_at_evals=True)
    result, _, snaps = run_with(clock, wl, make_submission(clock)[0], settings=settings)
    assert result.stop_reason == "budget"
    assert snaps[-1].reason == "final" and snaps[-1].global_step == result.global_step


def test_resume_continues_clock_schedule_and_rows_exactly():
    """Interrupt after a checkpoint, resume: the rows equal an uninterrupted run's exactly."""
    settings = LoopSettings(budget_sec=60.0, data_dir="", checkpoint_at_evals=True)

    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=2.0, rate=0.001)
    full, full_rows, _ = run_with(clock, wl, make_submission(clock)[0], settings=settings)

    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=2.0, rate=0.001)
    sub, _ = make_submission(clock, raise_at=16)  # "dies" after step 16 (past the 2nd eval)
    _, part_rows, snaps = run_with(clock, wl, sub, settings=settings)
    assert [r["global_step"] for r in part_rows] == [1, 11, 16]
    snap = next(s for s in snaps if s.global_step == 11)

    clock = FakeClock(start=50_000.0)  # a new process: the clock's origin means nothing
    wl = FakeWorkload(clock, _config(), eval_cost=2.0, rate=0.001)
    rest, rest_rows, _ = run_with(
        clock, wl, make_submission(clock)[0], settings=settings, resume=_resume_from(snap)
    )
    resumed_rows = part_rows[:2] + rest_rows
    exact = ["global_step", "score", "accumulated_eval_time", "validation/accuracy"]
    assert [[r[k] for k in exact] for r in resumed_rows] == [
        [r[k] for k in exact] for r in full_rows
    ]
    # The checkpointed row's own logging (its CSV write and the save) happened after the
    # snapshot, so it is counted nowhere after the resume, in total_duration and logging time
    # alike; the parts still add up exactly.
    lost = LOG + 0.5
    for r, f in zip(resumed_rows[2:], full_rows[2:]):
        assert f["total_duration"] - r["total_duration"] == pytest.approx(lost)
        assert f["accumulated_logging_time"] - r["accumulated_logging_time"] == pytest.approx(lost)
        parts = r["accumulated_submission_time"] + r["accumulated_eval_time"]
        assert r["total_duration"] == pytest.approx(parts + r["accumulated_logging_time"])
    assert rest.global_step == full.global_step
    assert rest.accumulated_submission_time == pytest.approx(full.accumulated_submission_time)


def test_resume_restores_time_since_last_eval_and_input_position():
    seen_starts = []

    class Queueing(FakeWorkload):
        def _build_input_queue(self, data_rng, split, data_dir, global_batch_size, start_step=0):
            seen_starts.append(start_step)
            return super()._build_input_queue(data_rng, split, data_dir, global_batch_size)

    clock = FakeClock()
    wl = Queueing(clock, _config(eval_period_time_sec=10), eval_cost=1.0)
    snap = types.SimpleNamespace(
        global_step=30,
        batches_drawn=31,
        train_state=dict(
            validation_goal_reached=False,
            test_goal_reached=False,
            accumulated_submission_time=30.0,
            accumulated_eval_time=3.0,
            accumulated_logging_time=0.75,
        ),
        eval_results=[],
        total_duration=33.75,
        since_last_eval=6.0,
        model_params={"w": 0.0, "steps": 30},
        model_state=None,
        optimizer_state={},
    )
    settings = LoopSettings(budget_sec=1e9, data_dir="", max_global_steps=40)
    _, rows, _ = run_with(
        clock, wl, make_submission(clock)[0], settings=settings, resume=_resume_from(snap)
    )
    assert seen_starts == [31]
    # 6 s had passed since the last eval: the next is due 4 steps (4 s) after the resume.
    assert [r["global_step"] for r in rows] == [34, 40]
    assert rows[0]["total_duration"] == pytest.approx(33.75 + 4.0 + 1.0)


def test_stop_codes_end_the_loop_after_the_step():
    for code, reason in ((STOP_PREEMPTED, "preempted"), (STOP_DIVERGED, "diverged")):
        clock = FakeClock()
        wl = FakeWorkload(clock, _config(), eval_cost=1.0)
        calls = []

        def should_stop(code=code, calls=calls):
            calls.append(1)
            return code if len(calls) >= 4 else STOP_NONE

        settings = LoopSettings(budget_sec=1e9, data_dir="")
        result, rows, snaps = run_with(
            clock, wl, make_submission(clock)[0], settings=settings, should_stop=should_stop
        )
        assert result.stop_reason == reason and result.global_step == 4
        assert [r["global_step"] for r in rows] == [1]
        if code == STOP_PREEMPTED:
            # Preemption always saves, even without checkpoint_at_evals.
            assert [(s.reason, s.global_step) for s in snaps] == [("preempted", 4)]
            assert snaps[0].train_state["accumulated_submission_time"] == pytest.approx(4 * STEP)
        else:
            assert snaps == []


def test_nan_eval_metric_marks_divergence():
    clock = FakeClock()

    class Nan(FakeWorkload):
        def eval_model(self, *args):
            out = super().eval_model(*args)
            if args[-1] >= 11:
                out["train/loss"] = float("nan")
            return out

    wl = Nan(clock, _config(), eval_cost=1.0)
    settings = LoopSettings(budget_sec=1e9, data_dir="", stop_on_divergence=True)
    result, rows, _ = run_with(clock, wl, make_submission(clock)[0], settings=settings)
    assert result.stop_reason == "diverged"
    assert [r["global_step"] for r in rows] == [1, 11]  # the NaN row is written, then it stops


def test_nan_eval_metric_does_not_stop_by_default_as_upstream():
    clock = FakeClock()

    class Nan(FakeWorkload):
        def eval_model(self, *args):
            out = super().eval_model(*args)
            out["train/loss"] = float("nan")
            return out

    wl = Nan(clock, _config(), eval_cost=1.0)
    settings = LoopSettings(budget_sec=40.0, data_dir="")
    result, rows, _ = run_with(clock, wl, make_submission(clock)[0], settings=settings)
    assert result.stop_reason == "budget"
    assert [r["global_step"] for r in rows] == [1, 11, 21, 31]
    assert result.nonfinite_evals == 4


def test_live_status_and_counting_queue():
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=1.0)
    live = LiveStatus()
    sub, _ = make_submission(clock)
    base = sub.data_selection

    def two_batches(workload, input_queue, *args):
        base(workload, input_queue, *args)
        return base(workload, input_queue, *args)

    sub.data_selection = two_batches
    result, _, snaps = run_with(
        clock,
        wl,
        sub,
        live=live,
        settings=LoopSettings(
            budget_sec=1e9, data_dir="", max_global_steps=5, checkpoint_at_evals=True
        ),
    )
    assert live.global_step == 5 and live.phase == "done"
    assert live.train_state is result.train_state and live.last_eval["global_step"] == 5
    assert snaps[-1].batches_drawn == 10  # the pipeline position counts batches, not steps


def test_clock_agreement_reduces_time_and_stop_code_together():
    seen = []

    def reduce_max(values):
        seen.append(list(values))
        return [v + 1.0 for v in values]  # another rank is later and has a higher code

    clock = Clock(reduce_max=reduce_max)
    _, code = clock.peek_agree(0)
    assert code == 1 and len(seen) == 1 and len(seen[0]) == 2
    assert clock.peek() > 0 and len(seen) == 2


# Rules aligned with upstream's runner (each test fails if the rule drifts) -------------------------


def _recording_step_ends(clock, sub, steps_ended):
    update = sub.update_params

    def update_params(**kw):
        out = update(**kw)
        steps_ended.append(clock.t)
        return out

    sub.update_params = update_params
    return sub


def test_step_end_is_a_synchronised_reading_every_step_by_default():
    """Upstream's get_time() synchronises at every step end; the opt-in lazy mode only at evals."""
    for sync_every_step in (True, False):
        clock = FakeClock()
        wl = FakeWorkload(clock, _config(eval_period_time_sec=5), eval_cost=1.0)
        steps_ended = []
        sub = _recording_step_ends(clock, make_submission(clock)[0], steps_ended)
        settings = LoopSettings(
            budget_sec=1e9, data_dir="", max_global_steps=12, sync_every_step=sync_every_step
        )
        _, rows, _ = run_with(clock, wl, sub, settings=settings)
        synced_step_ends = [t for t in steps_ended if t in clock.synced]
        eval_points = [r["global_step"] for r in rows]
        assert eval_points == [1, 6, 11, 12]
        if sync_every_step:
            assert synced_step_ends == steps_ended
            assert clock.unsynced == []
        else:
            # Every step end is peeked; only the eligible points' ends wait for device work.
            assert len(synced_step_ends) == len(eval_points)
            assert clock.unsynced == steps_ended


def test_an_eval_that_raises_is_logged_and_training_continues():
    clock = FakeClock()

    class OomOnce(FakeWorkload):
        def eval_model(self, *args):
            if args[-1] == 11 and not getattr(self, "raised", False):
                self.raised = True
                self.clock.advance(0.5)
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().eval_model(*args)

    wl = OomOnce(clock, _config(), eval_cost=1.0)
    resets = []
    settings = LoopSettings(budget_sec=30.0, data_dir="")
    result, rows, _ = run_with(
        clock,
        wl,
        make_submission(clock)[0],
        settings=settings,
        reset_memory=lambda: resets.append(1),
    )
    # Step 11's eval failed: no row; last_eval_time unchanged, so step 12 is eligible (upstream).
    assert [r["global_step"] for r in rows] == [1, 12, 22]
    assert result.eval_errors == 1 and result.stop_reason == "budget"
    # The failed eval's time is eval time (nothing uncounted).
    assert rows[1]["accumulated_eval_time"] == pytest.approx(1.0 + 0.5 + 1.0)
    r = rows[-1]
    parts = r["accumulated_submission_time"] + r["accumulated_eval_time"]
    assert r["total_duration"] == pytest.approx(parts + r["accumulated_logging_time"])


def test_a_row_write_or_checkpoint_that_raises_is_logged_and_training_continues(caplog):
    """As upstream's eval ``try``: the row write and the checkpoint save are inside it."""
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=1.0)
    written, saved = [], []

    def on_eval(row):
        clock.advance(LOG)
        if row["global_step"] == 11:
            raise RuntimeError("CUDA error: an illegal memory access (row write)")
        written.append(row["global_step"])

    def on_checkpoint(snapshot):
        clock.advance(0.5)
        if (snapshot.reason, snapshot.global_step) == ("eval", 21):
            raise RuntimeError("CUDA out of memory while copying the checkpoint")
        saved.append((snapshot.reason, snapshot.global_step))

    settings = LoopSettings(
        budget_sec=1e9, data_dir="", max_global_steps=21, checkpoint_at_evals=True
    )
    result, _, _ = run_with(
        clock,
        wl,
        make_submission(clock)[0],
        settings=settings,
        on_eval=on_eval,
        on_checkpoint=on_checkpoint,
    )
    # Evals at 1, 11 (row write failed: no checkpoint either, as upstream), 21 (save failed).
    # last_eval_time moved at 11 (the eval happened): the next eval is a period later.
    assert [step for step, _ in result.eval_results] == [1, 11, 21]
    assert written == [1, 21] and result.logging_errors == 2 and result.eval_errors == 0
    assert result.stop_reason == "max_global_steps" and result.global_step == 21
    # The failed save at 21 leaves the final checkpoint due: it is taken at the end.
    assert saved == [("eval", 1), ("final", 21)]
    assert "logging the eval of step 11 failed (training continues)" in caplog.text
    assert "logging the eval of step 21 failed (training continues)" in caplog.text
    # The failed logging's time is logging time: the accounting still adds up.
    state = result.train_state
    parts = state.accumulated_submission_time + state.accumulated_eval_time
    assert result.total_duration == pytest.approx(parts + state.accumulated_logging_time)
    assert state.accumulated_logging_time == pytest.approx(3 * LOG + 3 * 0.5)


def test_memory_is_reset_at_set_up_before_each_eval_and_after_its_logging():
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=1.0)
    events = []
    evals = wl.eval_model

    def eval_model(*args):
        events.append("eval")
        return evals(*args)

    wl.eval_model = eval_model
    settings = LoopSettings(budget_sec=1e9, data_dir="", max_global_steps=11)
    result = train_once(
        wl,
        make_submission(clock)[0],
        global_batch_size=2,
        hyperparameters=None,
        trial_rng=rng_lib.trial_rng(7, "pytorch", "external"),
        settings=settings,
        clock=clock,
        on_eval=lambda row: events.append("row"),
        reset_memory=lambda: events.append(f"reset@{clock.reads}"),
    )
    assert result.global_step == 11
    assert events[0] == "reset@0"  # before set-up, ahead of the clock's start
    names = [e.split("@")[0] for e in events]
    assert names == ["reset", "reset", "eval", "row", "reset", "reset", "eval", "row", "reset"]


def test_train_state_times_are_in_upstreams_clock_domain():
    """Readings are time.time()-comparable; last_eval_time starts at 0 as upstream."""
    import time

    assert TrainState().last_eval_time == 0
    before = time.time()
    reading = Clock().now()
    assert before - 1.0 <= reading <= time.time() + 1.0
    clock = FakeClock()
    sub, _ = make_submission(clock, want_train_state=True)
    update, first = sub.update_params, []

    def update_params(train_state=None, **kw):
        first.append(dict(train_state))  # the live view, as of this step
        return update(train_state=train_state, **kw)

    sub.update_params = update_params
    run(clock, FakeWorkload(clock, _config()), sub, max_steps=1)
    assert first[0]["last_eval_time"] == 0 and first[0]["last_step_end_time"] == 1000.0


def test_max_global_steps_zero_means_no_limit():
    clock = FakeClock()
    wl = FakeWorkload(clock, _config(), eval_cost=1.0)
    result, _ = run(clock, wl, make_submission(clock)[0], budget=25.0, max_steps=0)
    assert result.stop_reason == "budget" and result.global_step == 31
