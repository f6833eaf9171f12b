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
   split(step_rng, 4)``. (Values as upstream; the keys are computed a block of steps at a time,
   and ``prep_eval`` and ``eval`` only at eval-eligible points, where they are used: see
   `algoperf.step_keys`.)
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

Eval schedule (ours, opt-in): with ``eval_every_n_steps = n`` the eligible points are the steps
that are multiples of ``n`` (and the end of training) instead of the wall-clock period; budget
checks and ``prepare_for_eval`` happen there exactly as above. It makes the eval points a
function of the step count, for reproducibility checks; scored runs keep the time-based rule.

Stopping early (ours). After each step the runner's stop code (`should_stop`: a SIGTERM, or a
non-finite loss the submission logged) is max-reduced across ranks in the same reading as the
step's end, so every rank stops at the same step. A stop makes that reading a synchronised one
(the step's queued device work is submission time); an eligible point still runs its eval
first; then the loop ends with ``stop_reason`` ``"preempted"`` or ``"diverged"``. A non-finite
value in an eval row also ends the trial as ``"diverged"`` once the row is written.

Checkpoints (logging time, never submission time). With ``checkpoint_at_evals`` a `Snapshot` is
handed to `on_checkpoint` right after each eval row is written (so the time spent saving it is
logging time), and once more when the loop ends, unless the last one was taken at the same step;
a preempted loop always takes one. A snapshot is taken at a synchronised reading ``t`` and holds
the accumulators, ``total_duration = t - start`` and ``since_last_eval = t - last_eval_time``,
all as of ``t``. The time spent writing it is not part of the snapshot (it cannot be), so after a
resume both ``total_duration`` and the accumulators continue from ``t``: the invariant
``total_duration == submission + eval + logging`` holds exactly across a resume, and the time
lost between the snapshot and the kill (redone work, restart) is counted nowhere.

Resume (`ResumePoint`). Set-up is the same as for a fresh trial (keys, ``init_model_fn``,
``init_optimizer_state``), then `ResumePoint.restore` loads the saved parameters, optimizer
state, model state and process RNG states into those fresh structures; the train input queue
restarts at the number of batches drawn before the snapshot (``start_step``), and the per-step
keys are a pure function of (trial key, global_step). The clock restarts with every accumulator
and ``total_duration`` as saved; the eval schedule restores the time since the last eval
(``last_eval_time = resume_start - since_last_eval``), i.e. the schedule continues as if the run
had paused at the snapshot; the eval results so far are restored too.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import logging
import math
import types
from collections.abc import Callable, Iterator
from typing import Any

from algoperf import rng as rng_lib
from algoperf import spec
from algoperf.runner.clock import Clock

log = logging.getLogger(__name__)

# Stop codes, max-reduced across ranks (a larger code wins).
STOP_NONE = 0
STOP_DIVERGED = 1
STOP_PREEMPTED = 2

# TrainState fields a checkpoint carries (the rest is derived or reset on resume).
RESTORED_FIELDS = (
    "validation_goal_reached",
    "test_goal_reached",
    "accumulated_submission_time",
    "accumulated_eval_time",
    "accumulated_logging_time",
)


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
class LiveStatus:
    """What a progress display reads while the loop runs: plain attribute writes, no locks.

    ``phase`` is ``setup``, ``training``, ``eval``, ``logging`` or ``done``; ``global_step`` and
    ``train_state`` are updated in place by the loop; ``last_eval`` is the latest eval row.
    """

    phase: str = "setup"
    global_step: int = 0
    train_state: TrainState | None = None
    last_eval: dict[str, Any] | None = None


@dataclasses.dataclass
class Snapshot:
    """Everything a checkpoint saves, as of one synchronised clock reading (see module doc)."""

    reason: str  # "eval", "final" or "preempted"
    global_step: int
    batches_drawn: int
    model_params: Any
    model_state: Any
    optimizer_state: Any
    train_state: dict[str, Any]
    eval_results: list[tuple[int, dict[str, Any]]]
    total_duration: float
    since_last_eval: float | None  # None: no eval (or eligible point) yet


@dataclasses.dataclass
class ResumePoint:
    """Where a resumed trial continues; `restore` fills fresh state with the saved arrays.

    ``restore(model_params, model_state, optimizer_state)`` returns the restored triple and also
    restores the process RNG states (it runs after ``init_model_fn``, which may seed them).
    """

    global_step: int
    batches_drawn: int
    train_state: dict[str, Any]
    eval_results: list[tuple[int, dict[str, Any]]]
    total_duration: float
    since_last_eval: float | None
    restore: Callable[[Any, Any, Any], tuple[Any, Any, Any]]


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
    eval_every_n_steps: int | None = None
    checkpoint_at_evals: bool = False


class CountingQueue(Iterator[Any]):
    """The train input queue as the submission sees it, counting the batches it draws.

    The count is the input pipeline's position saved in a checkpoint (a submission may draw
    more or fewer than one batch per step). One attribute update per draw.
    """

    __slots__ = ("_it", "drawn")

    def __init__(self, it: Iterator[Any], drawn: int = 0) -> None:
        self._it = it
        self.drawn = drawn

    def __iter__(self) -> CountingQueue:
        return self

    def __next__(self) -> Any:
        batch = next(self._it)
        self.drawn += 1
        return batch


def accepts_train_state(update_params: Callable[..., Any]) -> bool:
    """Whether `update_params` declares a ``train_state`` parameter (upstream's rule)."""
    return "train_state" in inspect.signature(update_params).parameters


def _accepts_keyword(fn: Callable[..., Any], name: str) -> bool:
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def build_train_queue(
    workload: spec.Workload,
    data_rng: Any,
    data_dir: str,
    global_batch_size: int,
    start_step: int = 0,
) -> CountingQueue:
    """The train input queue positioned at batch `start_step` (exact resume).

    Workloads whose ``_build_input_queue`` takes ``start_step`` jump there directly; others are
    replayed batch by batch (correct, only slower). The first batch is drawn here, during the
    untimed set-up, as a prefetching pipeline would have it ready when training starts: one-off
    costs of a pipeline's first batch (opening files, compiling the device placement) are not
    the submission's first step, and a broken pipeline fails before the clock starts.
    """
    build = workload._build_input_queue
    if start_step and _accepts_keyword(build, "start_step"):
        queue = build(
            data_rng,
            "train",
            data_dir=data_dir,
            global_batch_size=global_batch_size,
            start_step=start_step,
        )
    else:
        queue = build(data_rng, "train", data_dir=data_dir, global_batch_size=global_batch_size)
        for _ in range(start_step):
            next(queue)
    it = iter(queue)
    try:
        first = next(it)
    except StopIteration:
        return CountingQueue(iter(()), start_step)
    return CountingQueue(itertools.chain((first,), it), start_step)


def all_finite(metrics: dict[str, Any]) -> bool:
    """False if any float value of an eval row is NaN or infinite."""
    for value in metrics.values():
        if isinstance(value, bool | int | str) or value is None:
            continue
        try:
            if not math.isfinite(float(value)):
                return False
        except (TypeError, ValueError):
            continue
    return True


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
    prepare_model: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    on_checkpoint: Callable[[Snapshot], None] | None = None,
    resume: ResumePoint | None = None,
    should_stop: Callable[[], int] | None = None,
    live: LiveStatus | None = None,
) -> LoopResult:
    """Train one trial to the target or the budget.

    Args:
      workload: the workload (already constructed for its framework).
      submission: the loaded submission module (see `algoperf.runner.submission`).
      global_batch_size: from the submission's ``get_batch_size``.
      hyperparameters: a ``Hyperparameters`` namedtuple (external tuning) or None (self-tuning).
      trial_rng: the trial key (`algoperf.rng.trial_rng`).
      settings: budget, data locations, step limit, eval schedule, checkpointing.
      clock: the clock (synchronises devices before reading time).
      on_eval: called with each eval row in the logging phase (writes the CSV row); it runs
        untimed, and the time it takes is accounted as logging time.
      reset_memory: called before each eval (untimed), e.g. to free accelerator caches.
      prepare_model: ``(params, model_state) -> (params, model_state)`` applied after
        ``init_model_fn`` and before the optimizer is built (untimed), e.g. ``torch.compile`` or
        replication over a device mesh.
      on_checkpoint: saves a `Snapshot` (logging time); see the module docstring for when.
      resume: continue a checkpointed trial instead of starting fresh.
      should_stop: polled after every step (cheap): a ``STOP_*`` code.
      live: updated in place for a progress display.

    Returns:
      A `LoopResult`; all times are seconds.
    """
    live = live if live is not None else LiveStatus()
    rngs = rng_lib.train_rngs(trial_rng)
    input_queue = build_train_queue(
        workload,
        rngs.data,
        settings.data_dir,
        global_batch_size,
        start_step=resume.batches_drawn if resume is not None else 0,
    )
    model_params, model_state = workload.init_model_fn(rngs.model_init)
    if prepare_model is not None:
        model_params, model_state = prepare_model(model_params, model_state)
    optimizer_state = submission.init_optimizer_state(
        workload, model_params, model_state, hyperparameters, rngs.opt_init
    )
    pass_train_state = accepts_train_state(submission.update_params)
    prepare_for_eval = getattr(submission, "prepare_for_eval", None)
    eval_batch_size = settings.eval_batch_size or workload.eval_batch_size
    every = settings.eval_every_n_steps

    state = TrainState()
    train_state_view = state.as_mapping()
    eval_results: list[tuple[int, dict[str, Any]]] = []
    global_step = 0
    if resume is not None:
        model_params, model_state, optimizer_state = resume.restore(
            model_params, model_state, optimizer_state
        )
        global_step = resume.global_step
        eval_results = [(step, dict(row)) for step, row in resume.eval_results]
        for name in RESTORED_FIELDS:
            setattr(state, name, resume.train_state[name])
    stop_reason = ""
    last_snapshot_step = global_step if resume is not None else -1
    # Harness work before the clock starts: compile the per-step key computations and fill the
    # first block (`algoperf.step_keys`), so the submission's first step does not pay for it.
    keys = rng_lib.step_keys_for(rngs.loop)
    keys.train(global_step)
    keys.at_eval(global_step)
    train_keys = keys.train
    data_selection = submission.data_selection
    update_params = submission.update_params
    params_types = workload.model_params_types
    loss_type = workload.loss_type
    peek_agree = clock.peek_agree
    max_steps = settings.max_global_steps
    eval_period = workload.eval_period_time_sec
    start = clock.now()
    state.last_step_end_time = start
    if resume is not None:
        start -= resume.total_duration
        if resume.since_last_eval is not None:
            state.last_eval_time = state.last_step_end_time - resume.since_last_eval
    live.train_state = state
    live.global_step = global_step
    live.phase = "training"

    def snapshot(reason: str, at: float) -> Snapshot:
        since = at - state.last_eval_time if math.isfinite(state.last_eval_time) else None
        return Snapshot(
            reason=reason,
            global_step=global_step,
            batches_drawn=input_queue.drawn,
            model_params=model_params,
            model_state=model_state,
            optimizer_state=optimizer_state,
            train_state={name: getattr(state, name) for name in RESTORED_FIELDS},
            eval_results=list(eval_results),
            total_duration=at - start,
            since_last_eval=since,
        )

    while True:
        step_index = global_step
        data_select_rng, update_rng = train_keys(step_index)
        batch = data_selection(
            workload,
            input_queue,
            optimizer_state,
            model_params,
            model_state,
            hyperparameters,
            step_index,
            data_select_rng,
        )
        kwargs = {
            "workload": workload,
            "current_param_container": model_params,
            "current_params_types": params_types,
            "model_state": model_state,
            "hyperparameters": hyperparameters,
            "batch": batch,
            "loss_type": loss_type,
            "optimizer_state": optimizer_state,
            "eval_results": eval_results,
            "global_step": step_index,
            "rng": update_rng,
        }
        if pass_train_state:
            kwargs["train_state"] = train_state_view
        try:
            optimizer_state, model_params, model_state = update_params(**kwargs)
        except spec.TrainingCompleteError:
            state.training_complete = True
            stop_reason = "training_complete"
        del batch
        global_step += 1
        live.global_step = global_step
        if max_steps is not None and global_step >= max_steps:
            state.training_complete = True
            stop_reason = stop_reason or "max_global_steps"

        step_end, stop_code = peek_agree(should_stop() if should_stop is not None else 0)
        if every is not None:
            eligible = global_step % every == 0 or state.training_complete
        else:
            eligible = step_end - state.last_eval_time >= eval_period or state.training_complete
        if eligible or stop_code:
            # Wait for the queued device work of every step since the last reading: the time
            # accumulated at an eval point (or a stop) is then exact.
            step_end = clock.now((optimizer_state, model_params, model_state))
        state.accumulated_submission_time += step_end - state.last_step_end_time
        state.last_step_end_time = step_end

        diverged = False
        if eligible:
            prep_eval_rng, eval_rng = keys.at_eval(step_index)
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
                    rng=prep_eval_rng,
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
                live.phase = "eval"
                eval_start = state.last_step_end_time
                if reset_memory is not None:
                    reset_memory()
                latest = workload.eval_model(
                    eval_batch_size,
                    model_params,
                    model_state,
                    eval_rng,
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
                live.last_eval = latest
                live.phase = "logging"
                log.info(
                    "step %d  submission time %.1fs  %s",
                    global_step,
                    state.accumulated_submission_time,
                    _brief(latest, workload.target_metric_name),
                )
                logging_end = eval_end
                if on_eval is not None:
                    on_eval(latest)
                if settings.checkpoint_at_evals and on_checkpoint is not None:
                    on_checkpoint(snapshot("eval", eval_end))
                    last_snapshot_step = global_step
                if on_eval is not None or settings.checkpoint_at_evals:
                    logging_end = clock.now()
                state.accumulated_logging_time += logging_end - eval_end
                state.last_step_end_time = logging_end
                diverged = not all_finite(latest)
                live.phase = "training"

        if diverged:
            stop_reason = "diverged"
            break
        if state.validation_goal_reached and state.test_goal_reached:
            stop_reason = "targets_reached"
            break
        if state.training_complete:
            break
        if stop_code == STOP_PREEMPTED:
            stop_reason = "preempted"
            break
        if stop_code == STOP_DIVERGED:
            stop_reason = "diverged"
            break

    wants_final = settings.checkpoint_at_evals or stop_reason == "preempted"
    if on_checkpoint is not None and wants_final and last_snapshot_step != global_step:
        live.phase = "logging"
        at = state.last_step_end_time
        on_checkpoint(snapshot("preempted" if stop_reason == "preempted" else "final", at))
        done = clock.now()
        state.accumulated_logging_time += done - at
        state.last_step_end_time = done
    live.phase = "done"

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
