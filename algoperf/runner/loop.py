"""The timed training loop of one trial. Its rules, which tests check, are these:

Set-up (untimed): accelerator memory is reset (PyTorch on CUDA: cuBLAS workspaces,
``gc.collect()``, ``empty_cache``, peak statistics, as upstream between trials); ``data,
opt_init, model_init, loop = split(trial_rng, 4)``; the train input queue is built (no batch is
drawn yet); ``init_model_fn(model_init)``; the model preparation (``torch.compile`` by the
workload's policy, replication over a JAX mesh); ``init_optimizer_state(..., opt_init)``. Then
the clock starts (``start``). Clock readings are in upstream's domain (``time.time()``-comparable
seconds), so the ``train_state`` times a submission sees are upstream's.

Accounting. From ``start`` on, every instant of wall time belongs to exactly one bucket:

* **submission time** (``accumulated_submission_time``, the ``score``): from the end of the
  previous iteration to the end of this step, i.e. RNG derivation, ``data_selection`` (the first
  batch is drawn inside it, as upstream, so pipeline start-up is the submission's), ``update_params``
  and step bookkeeping, plus the duration of ``prepare_for_eval``;
* **eval time** (``accumulated_eval_time``): the memory reset before an eval,
  ``workload.eval_model`` and the bookkeeping around it;
* **logging time** (``accumulated_logging_time``): writing the eval row, flushing buffered
  submission scalars, checkpoints, the memory reset after them.

Consecutive intervals share their end points, so at every eval row
``total_duration == accumulated_submission_time + accumulated_eval_time + logging time logged
before that row`` exactly (upstream leaves small gaps uncounted; here nothing is).

Synchronisation (``LoopSettings.sync_every_step``). By default, as upstream's ``get_time()``,
the reading that ends every step waits for the device work queued so far (PyTorch:
``cuda.synchronize``; a no-op on CPU), so dispatch never overlaps across steps. With
``sync_every_step=False`` (ours, opt-in for PyTorch, the default for JAX) the step end is read
without waiting, and only readings at eval-eligible points (and stops) synchronise
(``block_until_ready`` on the step's outputs in JAX): the time accumulated there is exact and
work still queued at an unsynchronised reading is counted at the next synchronised one, so
nothing escapes the timer. Under DDP each reading is the maximum over ranks, so all ranks take
the same decisions.

Per iteration (`_TrialLoop` has one method per rule):

1. ``step_rng = fold_in(loop, global_step)``; ``data_select, update, prep_eval, eval =
   split(step_rng, 4)``. (Values as upstream; the keys are computed a block of steps at a time,
   and ``prep_eval`` and ``eval`` only at eval-eligible points, where they are used: see
   `algoperf.step_keys`.)  [`_TrialLoop.step`]
2. ``batch = data_selection(...)``; ``update_params(...)`` with keyword arguments, passing
   ``train_state`` (a read-only mapping) only if the submission's signature names it. A
   ``TrainingCompleteError`` ends training after this step.  [`_TrialLoop.step`]
3. ``global_step += 1``; reaching ``max_global_steps`` ends training after this step (None or
   0: no limit, as upstream).  [`_TrialLoop.step`]
4. The step's end is read (synchronised as above); its duration is added to submission time.
   [`_TrialLoop.end_step`]
5. **Eval eligibility**: ``now - last_eval_time >= eval_period_time_sec`` or training is
   complete. ``last_eval_time`` starts at 0 (upstream's value), so the first eval happens right
   after step 1. With ``skip_evals`` (external tuning only, as upstream) no point is eligible:
   no ``prepare_for_eval``, no budget check and no eval ever run, and training ends only by
   ``max_global_steps``, a ``TrainingCompleteError`` or a stop.  [`_TrialLoop.end_step`]
6. At an eligible point: ``prepare_for_eval`` (if the submission defines it) runs and its
   duration is added to submission time; then the **budget check**: training continues only if
   ``accumulated_submission_time < budget`` (strict), budget = ``max_allowed_runtime_sec`` x 1
   (external tuning) or x 1.5 (self-tuning, v0.6). Over budget: no eval, the loop ends. The
   budget is checked only at eligible points, as upstream.  [`_TrialLoop.prepare_for_eval`,
   `_TrialLoop.within_budget`]
7. Within budget: evaluate (untimed, after a memory reset); validation and test goals are sticky
   flags (strict comparisons); write the eval row (``score`` = submission time) and optionally a
   checkpoint, then reset memory (logging time). A ``RuntimeError`` raised by the eval (out of
   memory, say) is logged and training continues, as upstream: no row is written,
   ``last_eval_time`` is unchanged (so the next step is eligible again, as upstream), the time
   spent is eval time (upstream leaves it uncounted); the goal check is part of that ``try``.
   A ``RuntimeError`` raised by the row write (``on_eval``) or the checkpoint save
   (``on_checkpoint``) is logged and training continues too, as upstream's ``try`` covers them:
   the row stays in ``eval_results`` and ``last_eval_time`` is set (the eval happened), a failed
   row write skips that eval's checkpoint (as upstream), what was written before is left intact,
   and the time spent is logging time (upstream leaves it uncounted).
   [`_TrialLoop.evaluate`, `_TrialLoop.log_eval`]
8. The loop ends when both validation and test targets have been reached, when training is
   complete, or when the budget is exhausted.  [`_TrialLoop.end_reason`]

Eval schedule (ours, opt-in): with ``eval_every_n_steps = n`` the eligible points are the steps
that are multiples of ``n`` (and the end of training) instead of the wall-clock period; budget
checks and ``prepare_for_eval`` happen there exactly as above. It makes the eval points a
function of the step count, for reproducibility checks; scored runs keep the time-based rule.

Stopping early (ours). After each step the runner's stop code (`should_stop`: a SIGTERM, or,
only with the opt-in ``stop_on_divergence``, a non-finite loss the submission logged) is
max-reduced across ranks in the same reading as the step's end, so every rank stops at the same
step. A stop makes that reading a synchronised one (the step's queued device work is submission
time); an eligible point still runs its eval first; then the loop ends with ``stop_reason``
``"preempted"`` or ``"diverged"``. With ``stop_on_divergence`` a non-finite value in an eval row
also ends the trial as ``"diverged"`` once the row is written. Upstream never stops early: by
default neither do we (a non-finite eval row is logged as a warning and training goes on).

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
    last_eval_time: float = 0.0  # upstream's start value (clock readings are epoch seconds)
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
    eval_errors: int = 0  # evals that raised (logged; training went on, as upstream)
    nonfinite_evals: int = 0  # eval rows holding NaN or infinity
    logging_errors: int = 0  # eval row writes or checkpoint saves that raised (as upstream)


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
    sync_every_step: bool = True  # upstream's get_time(): the step end waits for device work
    stop_on_divergence: bool = False  # ours, opt-in: a non-finite eval row ends the trial


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
    replayed batch by batch (correct, only slower; untimed set-up). No batch of a fresh queue is
    drawn here: the first one is drawn by ``data_selection`` inside the timed region, as
    upstream, so a pipeline's start-up cost is part of the score.
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
    return CountingQueue(iter(queue), start_step)


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


@dataclasses.dataclass(frozen=True)
class Hooks:
    """The runner's callbacks into the loop; each is optional (see `train_once` for what each does)."""

    on_eval: Callable[[dict[str, Any]], Any] | None = None
    reset_memory: Callable[[], None] | None = None
    prepare_model: Callable[[Any, Any], tuple[Any, Any]] | None = None
    on_checkpoint: Callable[[Snapshot], None] | None = None
    should_stop: Callable[[], int] | None = None


class _TrialLoop:
    """One trial's loop: set-up, then one method per numbered rule of the module docstring.

    ``inputs`` are `train_once`'s first seven arguments, in order.
    """

    def __init__(
        self, inputs: tuple[Any, ...], hooks: Hooks, resume: ResumePoint | None, live: LiveStatus
    ) -> None:
        (
            self.workload,
            self.submission,
            self.global_batch_size,
            self.hyperparameters,
            self.trial_rng,
            self.settings,
            self.clock,
        ) = inputs
        self.hooks = hooks
        self.resume = resume
        self.live = live
        self.state = TrainState()
        self.eval_results: list[tuple[int, dict[str, Any]]] = []
        self.global_step = 0
        self.stop_reason = ""
        self.eval_errors = 0
        self.logging_errors = 0
        self.nonfinite_evals = 0
        self.last_snapshot_step = -1
        self.start = 0.0

    # Set-up (untimed) ---------------------------------------------------------------------------

    def reset_memory(self) -> None:
        if self.hooks.reset_memory is not None:
            self.hooks.reset_memory()

    def set_up(self) -> None:
        """Memory reset, keys, input queue, model, preparation, optimizer, restore (untimed)."""
        workload, settings, resume, hooks = self.workload, self.settings, self.resume, self.hooks
        self.reset_memory()
        rngs = rng_lib.train_rngs(self.trial_rng)
        self.input_queue = build_train_queue(
            workload,
            rngs.data,
            settings.data_dir,
            self.global_batch_size,
            start_step=resume.batches_drawn if resume is not None else 0,
        )
        model_params, model_state = workload.init_model_fn(rngs.model_init)
        if hooks.prepare_model is not None:
            model_params, model_state = hooks.prepare_model(model_params, model_state)
        optimizer_state = self.submission.init_optimizer_state(
            workload, model_params, model_state, self.hyperparameters, rngs.opt_init
        )
        if resume is not None:
            model_params, model_state, optimizer_state = resume.restore(
                model_params, model_state, optimizer_state
            )
            self.global_step = resume.global_step
            self.eval_results = [(step, dict(row)) for step, row in resume.eval_results]
            for name in RESTORED_FIELDS:
                setattr(self.state, name, resume.train_state[name])
            self.last_snapshot_step = self.global_step
        self.model_params, self.model_state = model_params, model_state
        self.optimizer_state = optimizer_state
        self.pass_train_state = accepts_train_state(self.submission.update_params)
        self.prepare_fn = getattr(self.submission, "prepare_for_eval", None)
        self.eval_batch_size = settings.eval_batch_size or workload.eval_batch_size
        self.train_state_view = self.state.as_mapping()
        # Harness work before the clock starts: compile the per-step key computations and fill
        # the first block (`algoperf.step_keys`), so the submission's first step does not pay it.
        self.keys = rng_lib.step_keys_for(rngs.loop)
        self.keys.train(self.global_step)
        self.keys.at_eval(self.global_step)
        self._train_keys = self.keys.train
        self._data_selection = self.submission.data_selection
        self._update_params = self.submission.update_params
        self._params_types = workload.model_params_types
        self._loss_type = workload.loss_type
        self._max_steps = settings.max_global_steps or 0  # None or 0: no limit (upstream)
        self._eval_period = workload.eval_period_time_sec

    def start_clock(self) -> None:
        """The clock starts; a resumed trial continues its accumulators and eval schedule."""
        state, resume = self.state, self.resume
        self.start = self.clock.now()
        state.last_step_end_time = self.start
        if resume is not None:
            self.start -= resume.total_duration
            if resume.since_last_eval is not None:
                state.last_eval_time = state.last_step_end_time - resume.since_last_eval
        self.live.train_state = state
        self.live.global_step = self.global_step
        self.live.phase = "training"

    # The timed loop -----------------------------------------------------------------------------

    def step(self) -> None:
        """Rules 1-3: the step's keys, ``data_selection``, ``update_params``, the step count."""
        step_index = self.global_step
        data_select_rng, update_rng = self._train_keys(step_index)
        batch = self._data_selection(
            self.workload,
            self.input_queue,
            self.optimizer_state,
            self.model_params,
            self.model_state,
            self.hyperparameters,
            step_index,
            data_select_rng,
        )
        kwargs = {
            "workload": self.workload,
            "current_param_container": self.model_params,
            "current_params_types": self._params_types,
            "model_state": self.model_state,
            "hyperparameters": self.hyperparameters,
            "batch": batch,
            "loss_type": self._loss_type,
            "optimizer_state": self.optimizer_state,
            "eval_results": self.eval_results,
            "global_step": step_index,
            "rng": update_rng,
        }
        if self.pass_train_state:
            kwargs["train_state"] = self.train_state_view
        try:
            self.optimizer_state, self.model_params, self.model_state = self._update_params(
                **kwargs
            )
        except spec.TrainingCompleteError:
            self.state.training_complete = True
            self.stop_reason = "training_complete"
        del batch, kwargs
        self.global_step = step_index + 1
        self.live.global_step = self.global_step
        if self._max_steps and self.global_step >= self._max_steps:
            self.state.training_complete = True
            self.stop_reason = self.stop_reason or "max_global_steps"

    def _pending(self) -> tuple[Any, Any, Any]:
        return (self.optimizer_state, self.model_params, self.model_state)

    def end_step(self) -> tuple[bool, int]:
        """Rules 4-5: read the step's end, add it to submission time; eligible? and stop code."""
        state, clock = self.state, self.clock
        code = self.hooks.should_stop() if self.hooks.should_stop is not None else STOP_NONE
        if self.settings.sync_every_step:
            step_end, stop_code = clock.now_agree(self._pending(), code)
            eligible = self.is_eligible(step_end)
        else:
            step_end, stop_code = clock.peek_agree(code)
            eligible = self.is_eligible(step_end)
            if eligible or stop_code:
                # Wait for the queued device work of every step since the last synchronised
                # reading: the time accumulated at an eval point (or a stop) is then exact.
                step_end = clock.now(self._pending())
        state.accumulated_submission_time += step_end - state.last_step_end_time
        state.last_step_end_time = step_end
        return eligible, stop_code

    def is_eligible(self, now: float) -> bool:
        """Rule 5: an eval is due (never with ``skip_evals``, as upstream)."""
        if self.settings.skip_evals:
            return False
        if self.state.training_complete:
            return True
        every = self.settings.eval_every_n_steps
        if every is not None:
            return self.global_step % every == 0
        return now - self.state.last_eval_time >= self._eval_period

    def prepare_for_eval(self, prep_eval_rng: Any) -> None:
        """Rule 6, first half: the submission's ``prepare_for_eval``, timed as submission time."""
        if self.prepare_fn is None:
            return
        state = self.state
        self.optimizer_state, self.model_params, self.model_state = self.prepare_fn(
            workload=self.workload,
            current_param_container=self.model_params,
            current_params_types=self._params_types,
            model_state=self.model_state,
            hyperparameters=self.hyperparameters,
            loss_type=self._loss_type,
            optimizer_state=self.optimizer_state,
            eval_results=self.eval_results,
            global_step=self.global_step,
            rng=prep_eval_rng,
        )
        prep_end = self.clock.now(self._pending())
        state.accumulated_submission_time += prep_end - state.last_step_end_time
        state.last_step_end_time = prep_end

    def within_budget(self) -> bool:
        """Rule 6, second half: the strict budget check (only at eligible points)."""
        state = self.state
        state.is_time_remaining = state.accumulated_submission_time < self.settings.budget_sec
        return state.is_time_remaining

    def evaluate(self, eval_rng: Any) -> bool:
        """Rule 7: eval (untimed), goals, the row and checkpoint (logging). True: stop, diverged."""
        state, live, settings = self.state, self.live, self.settings
        live.phase = "eval"
        eval_start = state.last_step_end_time
        self.reset_memory()
        try:
            latest = self.workload.eval_model(
                self.eval_batch_size,
                self.model_params,
                self.model_state,
                eval_rng,
                settings.data_dir,
                settings.imagenet_v2_data_dir,
                self.global_step,
            )
            state.validation_goal_reached |= bool(
                self.workload.has_reached_validation_target(latest)
            )
            state.test_goal_reached |= bool(self.workload.has_reached_test_target(latest))
        except RuntimeError as e:
            # As upstream: logged, training goes on; no row, and the next step is eligible again.
            self.eval_errors += 1
            log.exception("eval at step %d failed (training continues): %s", self.global_step, e)
            self.reset_memory()
            eval_end = self.clock.now()
            state.accumulated_eval_time += eval_end - eval_start
            state.last_step_end_time = eval_end
            live.phase = "training"
            return False
        eval_end = self.clock.now()
        state.last_eval_time = eval_end
        state.accumulated_eval_time += eval_end - eval_start
        self.log_eval(latest, eval_end)
        if all_finite(latest):
            return False
        self.nonfinite_evals += 1
        if not settings.stop_on_divergence:
            log.warning(
                "step %d: an eval metric is NaN or infinite; training continues to the budget "
                "(as upstream; --stop_on_divergence ends such trials)",
                self.global_step,
            )
        return settings.stop_on_divergence

    def log_eval(self, latest: dict[str, Any], eval_end: float) -> None:
        """Rule 7, logging: the row (``score`` = submission time), a checkpoint, memory reset."""
        state, live, hooks, settings = self.state, self.live, self.hooks, self.settings
        latest.update(
            score=state.accumulated_submission_time,
            total_duration=eval_end - self.start,
            accumulated_submission_time=state.accumulated_submission_time,
            accumulated_eval_time=state.accumulated_eval_time,
            accumulated_logging_time=state.accumulated_logging_time,
            global_step=self.global_step,
            preemption_count=settings.preemption_count,
        )
        self.eval_results.append((self.global_step, latest))
        live.last_eval = latest
        live.phase = "logging"
        log.info(
            "step %d  submission time %.1fs  %s",
            self.global_step,
            state.accumulated_submission_time,
            _brief(latest, self.workload.target_metric_name),
        )
        logging_end = eval_end
        checkpoint = settings.checkpoint_at_evals and hooks.on_checkpoint is not None
        try:
            if hooks.on_eval is not None:
                hooks.on_eval(latest)
            if checkpoint:
                hooks.on_checkpoint(self.snapshot("eval", eval_end))
                self.last_snapshot_step = self.global_step
        except RuntimeError as e:
            # As upstream, whose eval `try` also covers the row write and the checkpoint save:
            # logged, training goes on. What was written before stays (rows are appended and
            # checkpoints renamed into place atomically); a failed save leaves the final one due.
            self.logging_errors += 1
            log.exception(
                "logging the eval of step %d failed (training continues): %s", self.global_step, e
            )
        self.reset_memory()
        if hooks.on_eval is not None or checkpoint or hooks.reset_memory is not None:
            logging_end = self.clock.now()
        state.accumulated_logging_time += logging_end - eval_end
        state.last_step_end_time = logging_end
        live.phase = "training"

    def end_reason(self, stop_code: int, diverged: bool) -> str | None:
        """Rule 8 (and our stops): why the loop ends after this iteration, or None."""
        state = self.state
        if diverged:
            return "diverged"
        if state.validation_goal_reached and state.test_goal_reached:
            return "targets_reached"
        if state.training_complete:
            return self.stop_reason
        if stop_code == STOP_PREEMPTED:
            return "preempted"
        if stop_code == STOP_DIVERGED:
            return "diverged"
        return None

    def snapshot(self, reason: str, at: float) -> Snapshot:
        state = self.state
        since = at - state.last_eval_time if state.last_eval_time else None
        return Snapshot(
            reason=reason,
            global_step=self.global_step,
            batches_drawn=self.input_queue.drawn,
            model_params=self.model_params,
            model_state=self.model_state,
            optimizer_state=self.optimizer_state,
            train_state={name: getattr(state, name) for name in RESTORED_FIELDS},
            eval_results=list(self.eval_results),
            total_duration=at - self.start,
            since_last_eval=since,
        )

    def finish(self) -> LoopResult:
        """The final checkpoint (logging time) and the result."""
        state, hooks, live = self.state, self.hooks, self.live
        preempted = self.stop_reason == "preempted"
        wants_final = self.settings.checkpoint_at_evals or preempted
        if (
            hooks.on_checkpoint is not None
            and wants_final
            and self.last_snapshot_step != self.global_step
        ):
            live.phase = "logging"
            at = state.last_step_end_time
            hooks.on_checkpoint(self.snapshot("preempted" if preempted else "final", at))
            done = self.clock.now()
            state.accumulated_logging_time += done - at
            state.last_step_end_time = done
        live.phase = "done"
        return LoopResult(
            accumulated_submission_time=state.accumulated_submission_time,
            global_step=self.global_step,
            eval_results=self.eval_results,
            train_state=state,
            stop_reason=self.stop_reason,
            total_duration=state.last_step_end_time - self.start,
            eval_errors=self.eval_errors,
            nonfinite_evals=self.nonfinite_evals,
            logging_errors=self.logging_errors,
        )

    def run(self) -> LoopResult:
        """Set-up, the clock's start, then rules 1-8 until the loop ends."""
        self.set_up()
        self.start_clock()
        while True:
            step_index = self.global_step
            self.step()
            eligible, stop_code = self.end_step()
            diverged = False
            if eligible:
                prep_eval_rng, eval_rng = self.keys.at_eval(step_index)
                self.prepare_for_eval(prep_eval_rng)
                if not self.within_budget():
                    self.stop_reason = "budget"
                    break
                diverged = self.evaluate(eval_rng)
            reason = self.end_reason(stop_code, diverged)
            if reason is not None:
                self.stop_reason = reason
                break
        return self.finish()


def train_once(
    workload: spec.Workload,
    submission: Any,
    global_batch_size: int,
    hyperparameters: spec.Hyperparameters,
    trial_rng: spec.RandomState,
    settings: LoopSettings,
    clock: Clock,
    on_eval: Callable[[dict[str, Any]], Any] | None = None,
    reset_memory: Callable[[], None] | None = None,
    prepare_model: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    on_checkpoint: Callable[[Snapshot], None] | None = None,
    resume: ResumePoint | None = None,
    should_stop: Callable[[], int] | None = None,
    live: LiveStatus | None = None,
) -> LoopResult:
    """Train one trial to the target or the budget (the rules: this module's docstring).

    Args:
      workload: the workload (already constructed for its framework).
      submission: the loaded submission module (see `algoperf.runner.submission`).
      global_batch_size: from the submission's ``get_batch_size``.
      hyperparameters: a ``Hyperparameters`` namedtuple (external tuning) or None (self-tuning).
      trial_rng: the trial key (`algoperf.rng.trial_rng`).
      settings: budget, data locations, step limit, eval schedule, synchronisation, stops.
      clock: the clock (synchronises devices before reading time).
      on_eval: called with each eval row in the logging phase (writes the CSV row); it runs
        untimed, and the time it takes is accounted as logging time.
      reset_memory: frees accelerator memory (untimed): before set-up, before each eval (eval
        time), after each eval's logging (logging time) and after an eval that raised.
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
    hooks = Hooks(on_eval, reset_memory, prepare_model, on_checkpoint, should_stop)
    inputs = (workload, submission, global_batch_size, hyperparameters, trial_rng, settings, clock)
    live = live if live is not None else LiveStatus()
    return _TrialLoop(inputs, hooks, resume, live).run()


def _brief(metrics: dict[str, Any], target_metric: str) -> str:
    keys = [f"validation/{target_metric}", f"test/{target_metric}"]
    return "  ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics)
