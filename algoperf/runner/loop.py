"""The timed training loop of one trial. Its rules, which tests check, are these:

Set-up (untimed): ``data, opt_init, model_init, loop = split(trial_rng, 4)``; the train input
queue is built; ``init_model_fn(model_init)``; ``init_optimizer_state(..., opt_init)``. Then the
clock starts (``start``).

Accounting. From ``start`` on, every instant of wall time belongs to exactly one bucket:

* **submission time** (``accumulated_submission_time``, the ``score``): from the end of the
  previous iteration to the end of this step, i.e. RNG derivation, ``data_selection``,
  ``update_params`` and step bookkeeping, plus the duration of ``prepare_for_eval``;
* **eval time** (``accumulated_eval_time``): ``workload.eval_model`` and the bookkeeping around it;
* **logging time** (``accumulated_logging_time``): writing the eval row, flushing buffered
  submission scalars, checkpoints.

Consecutive intervals share their end points, so at every eval row
``total_duration == accumulated_submission_time + accumulated_eval_time + logging time logged
before that row`` exactly (upstream leaves small gaps uncounted; here nothing is). Device work
is synchronised (``block_until_ready`` on the step's outputs in JAX, ``cuda.synchronize`` in
PyTorch) before every reading that closes a timed interval at an eval-eligible point, so the time
accumulated there is exact. Between those points the clock is read every step without waiting for
queued device work (to decide eligibility without stalling asynchronous dispatch); work still
queued at such a reading is counted at the next synchronised one, so nothing escapes the timer.
Under DDP each reading is the maximum over ranks, so all ranks take the same decisions.

Per iteration:

1. ``step_rng = fold_in(loop, global_step)``; ``data_select, update, prep_eval, eval =
   split(step_rng, 4)``.
2. ``batch = data_selection(...)``; ``update_params(...)`` with keyword arguments, passing
   ``train_state`` (a read-only mapping) only if the submission's signature names it. A
   ``TrainingCompleteError`` ends training after this step.
3. ``global_step += 1``; reaching ``max_global_steps`` ends training after this step.
4. The step's end is read; its duration is added to submission time.
5. **Eval eligibility**: ``now - last_eval_end >= eval_period_time_sec`` or training is complete.
   ``last_eval_end`` starts at minus infinity, so the first eval happens right after step 1.
6. At an eligible point: ``prepare_for_eval`` (if the submission defines it) runs and its
   duration is added to submission time; then the **budget check**: training continues only if
   ``accumulated_submission_time < budget`` (strict), budget = ``max_allowed_runtime_sec`` x 1
   (external tuning) or x 1.5 (self-tuning, v0.6). Over budget: no eval, the loop ends. The
   budget is checked only at eligible points, as upstream (with ``--skip_evals`` the points are
   still found and checked, but no eval runs).
7. Within budget: evaluate (untimed); validation and test goals are sticky flags (strict
   comparisons); write the eval row (``score`` = submission time) and optionally a checkpoint
   (logging time).
8. The loop ends when both validation and test targets have been reached, when training is
   complete, or when the budget is exhausted.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import types
from collections.abc import Callable
from typing import Any

from algoperf import rng as rng_lib
from algoperf import spec
from algoperf.runner.clock import Clock

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainState:
    """The runner's bookkeeping, exposed read-only to submissions as ``train_state``."""

    validation_goal_reached: bool = False
    test_goal_reached: bool = False
    is_time_remaining: bool = True
    last_eval_time: float = -math.inf
    training_complete: bool = False
    accumulated_submission_time: float = 0.0
    accumulated_eval_time: float = 0.0
    accumulated_logging_time: float = 0.0
    last_step_end_time: float | None = None

    def as_mapping(self) -> types.MappingProxyType:
        """A live read-only view (upstream passes ``MappingProxyType`` of its state dict)."""
        return types.MappingProxyType(vars(self))


@dataclasses.dataclass
class LoopResult:
    """What one trial produced."""

    accumulated_submission_time: float
    global_step: int
    eval_results: list[tuple[int, dict[str, Any]]]
    train_state: TrainState
    stop_reason: str
    total_duration: float


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """The run settings the loop needs (frozen; nothing below the CLI reads global flags)."""

    budget_sec: float
    data_dir: str
    imagenet_v2_data_dir: str | None = None
    max_global_steps: int | None = None
    eval_batch_size: int | None = None
    skip_evals: bool = False
    preemption_count: int = 0


def accepts_train_state(update_params: Callable[..., Any]) -> bool:
    """Whether `update_params` declares a ``train_state`` parameter (upstream's rule)."""
    return "train_state" in inspect.signature(update_params).parameters


def train_once(
    workload: spec.Workload,
    submission: Any,
    global_batch_size: int,
    hyperparameters: spec.Hyperparameters,
    trial_rng: spec.RandomState,
    settings: LoopSettings,
    clock: Clock,
    on_eval: Callable[[dict[str, Any]], float] | None = None,
    reset_memory: Callable[[], None] | None = None,
    prepare_model: Callable[[Any], Any] | None = None,
) -> LoopResult:
    """Train one trial to the target or the budget.

    Args:
      workload: the workload (already constructed for its framework).
      submission: the loaded submission module (see `algoperf.runner.submission`).
      global_batch_size: from the submission's ``get_batch_size``.
      hyperparameters: a ``Hyperparameters`` namedtuple (external tuning) or None (self-tuning).
      trial_rng: the trial key (`algoperf.rng.trial_rng`).
      settings: budget, data locations, step limit.
      clock: the clock (synchronises devices before reading time).
      on_eval: called with each eval row in the logging phase (writes the CSV row, checkpoints);
        it runs untimed, and the time it takes is accounted as logging time.
      reset_memory: called before each eval (untimed), e.g. to free accelerator caches.
      prepare_model: applied to the initial parameters before the optimizer is built (untimed),
        e.g. ``torch.compile``.

    Returns:
      A `LoopResult`; all times are seconds.
    """
    rngs = rng_lib.train_rngs(trial_rng)
    input_queue = workload._build_input_queue(
        rngs.data, "train", data_dir=settings.data_dir, global_batch_size=global_batch_size
    )
    model_params, model_state = workload.init_model_fn(rngs.model_init)
    if prepare_model is not None:
        model_params = prepare_model(model_params)
    optimizer_state = submission.init_optimizer_state(
        workload, model_params, model_state, hyperparameters, rngs.opt_init
    )
    pass_train_state = accepts_train_state(submission.update_params)
    prepare_for_eval = getattr(submission, "prepare_for_eval", None)
    eval_batch_size = settings.eval_batch_size or workload.eval_batch_size

    state = TrainState()
    train_state_view = state.as_mapping()
    eval_results: list[tuple[int, dict[str, Any]]] = []
    global_step = 0
    stop_reason = ""
    start = clock.now()
    state.last_step_end_time = start

    while True:
        step = rng_lib.step_rngs(rngs.loop, global_step)
        batch = submission.data_selection(
            workload,
            input_queue,
            optimizer_state,
            model_params,
            model_state,
            hyperparameters,
            global_step,
            step.data_select,
        )
        kwargs = dict(
            workload=workload,
            current_param_container=model_params,
            current_params_types=workload.model_params_types,
            model_state=model_state,
            hyperparameters=hyperparameters,
            batch=batch,
            loss_type=workload.loss_type,
            optimizer_state=optimizer_state,
            eval_results=eval_results,
            global_step=global_step,
            rng=step.update,
        )
        if pass_train_state:
            kwargs["train_state"] = train_state_view
        try:
            optimizer_state, model_params, model_state = submission.update_params(**kwargs)
        except spec.TrainingCompleteError:
            state.training_complete = True
            stop_reason = "training_complete"
        del batch
        global_step += 1
        if settings.max_global_steps is not None and global_step >= settings.max_global_steps:
            state.training_complete = True
            stop_reason = stop_reason or "max_global_steps"

        step_end = clock.peek()
        eligible = (
            step_end - state.last_eval_time >= workload.eval_period_time_sec
            or state.training_complete
        )
        if eligible:
            # Wait for the queued device work of every step since the last reading: the time
            # accumulated at an eval point is then exact.
            step_end = clock.now((optimizer_state, model_params, model_state))
        state.accumulated_submission_time += step_end - state.last_step_end_time
        state.last_step_end_time = step_end

        if eligible:
            if prepare_for_eval is not None:
                optimizer_state, model_params, model_state = prepare_for_eval(
                    workload=workload,
                    current_param_container=model_params,
                    current_params_types=workload.model_params_types,
                    model_state=model_state,
                    hyperparameters=hyperparameters,
                    loss_type=workload.loss_type,
                    optimizer_state=optimizer_state,
                    eval_results=eval_results,
                    global_step=global_step,
                    rng=step.prep_eval,
                )
                prep_end = clock.now((optimizer_state, model_params, model_state))
                state.accumulated_submission_time += prep_end - state.last_step_end_time
                state.last_step_end_time = prep_end

            state.is_time_remaining = state.accumulated_submission_time < settings.budget_sec
            if not state.is_time_remaining:
                stop_reason = "budget"
                break
            if settings.skip_evals:
                state.last_eval_time = state.last_step_end_time
            else:
                eval_start = state.last_step_end_time
                if reset_memory is not None:
                    reset_memory()
                latest = workload.eval_model(
                    eval_batch_size,
                    model_params,
                    model_state,
                    step.eval,
                    settings.data_dir,
                    settings.imagenet_v2_data_dir,
                    global_step,
                )
                state.validation_goal_reached |= workload.has_reached_validation_target(latest)
                state.test_goal_reached |= workload.has_reached_test_target(latest)
                eval_end = clock.now()
                state.last_eval_time = eval_end
                state.accumulated_eval_time += eval_end - eval_start
                latest.update(
                    score=state.accumulated_submission_time,
                    total_duration=eval_end - start,
                    accumulated_submission_time=state.accumulated_submission_time,
                    accumulated_eval_time=state.accumulated_eval_time,
                    accumulated_logging_time=state.accumulated_logging_time,
                    global_step=global_step,
                    preemption_count=settings.preemption_count,
                )
                eval_results.append((global_step, latest))
                log.info(
                    "step %d  submission time %.1fs  %s",
                    global_step,
                    state.accumulated_submission_time,
                    _brief(latest, workload.target_metric_name),
                )
                logging_end = eval_end
                if on_eval is not None:
                    on_eval(latest)
                    logging_end = clock.now()
                state.accumulated_logging_time += logging_end - eval_end
                state.last_step_end_time = logging_end

        if state.validation_goal_reached and state.test_goal_reached:
            stop_reason = "targets_reached"
            break
        if state.training_complete:
            break

    return LoopResult(
        accumulated_submission_time=state.accumulated_submission_time,
        global_step=global_step,
        eval_results=eval_results,
        train_state=state,
        stop_reason=stop_reason,
        total_duration=state.last_step_end_time - start,
    )


def _brief(metrics: dict[str, Any], target_metric: str) -> str:
    keys = [f"validation/{target_metric}", f"test/{target_metric}"]
    return "  ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics)
