"""Running a submission on a workload: preflight, tuning trials, directories, logs and failures.

Everything that can be wrong with the input (unknown workload, framework without an
implementation, a submission that cannot be imported or lacks a function, a malformed search
space, a missing dataset) is found in `preflight`, before any directory is created.

**Outcome of a trial** (``status.json`` in its directory, and the run record's ``result``):

* ``finished``: stopped at the targets, the budget, ``max_global_steps`` or a
  ``TrainingCompleteError``;
* ``diverged``: only with ``--stop_on_divergence`` (upstream trains on): a NaN or infinity in an
  eval row or in a loss the submission logged through ``workload.metrics_logger``; the next
  trial runs;
* ``failed``: an exception once training had begun (except a ``RuntimeError`` inside an eval,
  which is logged while training continues, as upstream); ``failure.txt`` holds the traceback (first
  line: what happened, out-of-memory said plainly); the next trial runs. Under DDP the run stops
  instead (after one rank raised, the ranks cannot be trusted to meet in the same collectives);
* ``preempted``: SIGTERM: the loop finishes its step (and an eval due at it), saves a
  checkpoint, and the run ends with exit status 143; ``--resume_last_run`` continues it;
* ``interrupted``: Ctrl-C (the run ends).

An exception *before* training begins (``init_model_fn``, ``init_optimizer_state``, building
the input queue, restoring a checkpoint) is treated as bad input: a trial directory this run
created is removed again and the run stops with the error.

**Resume** (``--resume_last_run``): finished and diverged trials are kept as they are; any other
trial continues from its latest checkpoint (see `algoperf.runner.checkpoint`): CSV rows written
after that checkpoint are dropped (the resumed run writes them again, so no row is duplicated),
``meta_data_<n>.json`` and ``flags_<n>.json`` are written for the new preemption count ``n``
(one more than any earlier count), ``hparams.json`` and the seed are reused. A trial with logs
but no checkpoint starts over (its logs are cleared, ``hparams.json`` kept).

**Safety**: a run holds an exclusive lock on ``<experiment_dir>/<experiment_name>/<workload>_
<framework>/.lock`` (``fcntl.flock``), so two runs into the same directory fail fast with a
message naming the other process instead of corrupting each other's logs. ``--overwrite`` only
ever deletes ``trial_<k>`` directories of that workload directory (a symlink is unlinked, never
followed); ``--experiment_name`` cannot climb out of ``--experiment_dir``.

Under DDP every rank runs the same loop and only rank 0 writes (logs, checkpoints, status).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import inspect
import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import sys
import threading
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from algoperf import logs, random_utils, registry, tuning
from algoperf import rng as rng_lib
from algoperf.frameworks import jax_pmap
from algoperf.runner import checkpoint, loop, progress, run_env, submission
from algoperf.runner import clock as clock_lib
from algoperf.runner.config import RunConfig

log = logging.getLogger(__name__)

STATUS_JSON = "status.json"
FAILURE_TXT = "failure.txt"
LOCK_FILE = ".lock"
TERMINAL = ("finished", "diverged")
_TRIAL_RE = re.compile(r"^trial_\d+$")
_META_RE = re.compile(r"^meta_data_(\d+)\.json$")


class RunError(RuntimeError):
    """A run that cannot start or continue; the message is one line naming the problem."""


@dataclasses.dataclass
class TrialSummary:
    """One trial's outcome (also written to its run record)."""

    trial_index: int
    trial_dir: str
    score: float
    global_step: int
    num_evals: int
    stop_reason: str
    time_to_target: float | None
    eval_share_of_wall_time: float
    status: str = "finished"
    eval_errors: int = 0
    nonfinite_evals: int = 0
    logging_errors: int = 0  # eval row writes / checkpoint saves that raised (training went on)
    preemption_count: int = 0
    message: str = ""


@dataclasses.dataclass
class RunOutcome:
    """Every trial this invocation ran (or found finished), and whether SIGTERM stopped it."""

    summaries: list[TrialSummary]
    preempted: bool = False


@dataclasses.dataclass
class Preflight:
    """What `preflight` resolved; nothing has been written yet."""

    config: RunConfig
    workload: Any
    module: ModuleType
    trials: list[tuple[int, Any]]  # (hparam index, Hyperparameters or None)
    global_batch_size: int
    eval_batch_size: int
    workload_dir: Path
    environment: dict[str, str] = dataclasses.field(default_factory=dict)  # variables set


@dataclasses.dataclass(frozen=True)
class Process:
    """This process's place in the run."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _process(framework: str) -> Process:
    if framework == "jax":
        import jax

        return Process(jax.process_index(), jax.process_count())
    from algoperf.frameworks import pytorch as fpt

    info = fpt.setup()
    return Process(info.rank, info.world_size)


def _num_devices(framework: str) -> int:
    if framework == "jax":
        import jax

        return jax.device_count()
    from algoperf.frameworks import pytorch as fpt

    return fpt.setup().world_size


def _has_results(tdir: Path) -> bool:
    return (
        (tdir / logs.EVAL_CSV).exists()
        or (tdir / STATUS_JSON).exists()
        or bool(checkpoint.checkpoint_dirs(tdir))
    )


def preflight(config: RunConfig) -> Preflight:
    """Validate every input of a run; raise a one-line error before anything is written."""
    # A data directory holding a fixture (`algoperf datasets prepare --fixture`) sizes the config.
    wconfig = registry.get_config(config.workload, config.data_dir)
    registry.workload_class(config.workload, config.framework)  # clear error if not implemented
    # Before anything initialises a framework (upstream sets them at import and in main()).
    environment = run_env.apply_environment(run_env.environment_for(config, wconfig))
    rng_lib.configure_process(config.framework)
    random_utils.set_framework(config.framework)
    if config.framework == "pytorch":
        from algoperf.frameworks import pytorch as fpt

        fpt.init(fpt.setup())

    if config.tuning_ruleset == "external":
        space = tuning.load_search_space(config.tuning_search_space)
        points = tuning.generate_search(space, config.num_tuning_trials)
        trials = tuning.select_trials(points, config.hparam_start_index, config.hparam_end_index)
    else:
        trials = [(0, None)]

    module = submission.load_submission(config.submission_path)
    data_dir = Path(config.data_dir).expanduser()
    if not data_dir.exists():
        raise RunError(
            f"data directory {data_dir} does not exist; prepare it with "
            f"`algoperf datasets prepare {wconfig.dataset} --data_dir {data_dir}` or pass --data_dir"
        )
    workload = registry.get_workload(
        config.workload, config.framework, data_dir=config.data_dir, **_workload_kwargs(config)
    )
    if config.eval_num_workers is not None:
        workload.eval_num_workers = config.eval_num_workers
    workload.check_data(str(data_dir))
    config, workload, module = jax_pmap.apply_layout(config, module, workload)
    n_dev = _num_devices(config.framework)
    batch = submission.global_batch_size(
        module, config.workload, registry.get_base_workload_name(config.workload), n_dev
    )
    eval_batch = submission.eval_batch_size(module, workload, n_dev)
    wdir = logs.workload_dir(
        config.experiment_dir, config.experiment_name, config.workload, config.framework
    )
    for index, _ in trials:
        tdir = logs.trial_dir(wdir, index + 1)
        if _has_results(tdir) and not (config.overwrite or config.resume_last_run):
            raise RunError(
                f"{tdir} already holds results; pass --resume_last_run to continue its trials, "
                "--overwrite to replace them, or choose another --experiment_name"
            )
    return Preflight(config, workload, module, trials, batch, eval_batch, wdir, environment)


def _workload_kwargs(config: RunConfig) -> dict[str, Any]:
    """Constructor arguments from flags (upstream passes the tokenizer path to the workload)."""
    path = config.librispeech_tokenizer_vocab_path
    if not path:
        return {}
    if not registry.get_base_workload_name(config.workload).startswith("librispeech"):
        raise RunError(
            f"--librispeech_tokenizer_vocab_path applies to the librispeech workloads only, not "
            f"{config.workload}; drop the flag"
        )
    if not accepts_tokenizer_vocab_path(registry.workload_class(config.workload, config.framework)):
        raise RunError(
            f"{config.workload} ({config.framework}) takes no tokenizer path here; drop "
            "--librispeech_tokenizer_vocab_path"
        )
    if not Path(path).expanduser().is_file():
        raise RunError(
            f"--librispeech_tokenizer_vocab_path {path}: no such file; pass the SentencePiece "
            "model prepared with the dataset"
        )
    return {"tokenizer_vocab_path": str(Path(path).expanduser())}


def accepts_tokenizer_vocab_path(cls: type) -> bool:
    """Whether workload class `cls` takes ``tokenizer_vocab_path``: it says so with the class
    attribute ``accepts_tokenizer_vocab_path`` (constructors taking ``**kwargs`` would swallow
    it silently) or names it in its constructor's signature (upstream's workloads)."""
    if getattr(cls, "accepts_tokenizer_vocab_path", False):
        return True
    return "tokenizer_vocab_path" in inspect.signature(cls).parameters


# Lock and signals --------------------------------------------------------------------------------


class WorkloadLock:
    """An exclusive ``flock`` on ``<workload_dir>/.lock``; the file names the holder."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise `RunError` naming the process that holds it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = ""
                with contextlib.suppress(OSError):
                    holder = os.pread(fd, 4096, 0).decode(errors="replace").strip()
                os.close(fd)
                raise RunError(
                    f"{self.directory} is in use by another algoperf run "
                    f"({holder or 'unknown process'}); wait for it to finish or choose another "
                    "--experiment_name"
                ) from None
            # A holder that released meanwhile may have unlinked the file we opened: retry on
            # the current file, so two processes can never both hold "the" lock.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        command = " ".join(["algoperf", *sys.argv[1:]])[:300]
        started = datetime.datetime.now().isoformat(timespec="seconds")
        info = f"pid {os.getpid()} on {socket.gethostname()} since {started}: {command}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # while still holding it (see `acquire`)
        os.close(self._fd)
        self._fd = None


class StopGuard:
    """SIGTERM and divergence flags the loop polls after every step (see `loop.STOP_*`)."""

    def __init__(self, stop_on_divergence: bool = False) -> None:
        self.preempted = False
        self.diverged = False
        self.stop_on_divergence = stop_on_divergence  # upstream never stops on a NaN loss
        self._previous: Any = None
        self._installed = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
            self._installed = True

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        del signum, frame
        self.preempted = True  # acted on after the current step: checkpoint, then a clean exit

    def code(self) -> int:
        if self.preempted:
            return loop.STOP_PREEMPTED
        if self.diverged and self.stop_on_divergence:
            return loop.STOP_DIVERGED
        return loop.STOP_NONE


def _is_loss_key(key: str) -> bool:
    return "loss" in key.lower()


def _check_losses(metrics: dict[str, Any], guard: StopGuard) -> None:
    for key, value in metrics.items():
        if _is_loss_key(key) and isinstance(value, int | float) and not math.isfinite(value):
            guard.diverged = True
        elif _is_loss_key(key) and hasattr(value, "item"):
            with contextlib.suppress(TypeError, ValueError):
                if not math.isfinite(float(value)):
                    guard.diverged = True


class GuardedLogger(logs.MetricLogger):
    """The trial's `MetricLogger`, also flagging a non-finite logged loss as divergence."""

    def __init__(self, trial_path: Path, guard: StopGuard) -> None:
        super().__init__(trial_path)
        self._guard = guard

    def append_scalar_metrics(
        self,
        metrics: dict[str, Any],
        global_step: int,
        preemption_count: int | None = None,
        is_eval: bool = False,
    ) -> None:
        if not is_eval:
            _check_losses(metrics, self._guard)
        super().append_scalar_metrics(metrics, global_step, preemption_count, is_eval)


class NullLogger:
    """What ranks other than 0 get as ``workload.metrics_logger``: writes nothing."""

    def __init__(self, guard: StopGuard) -> None:
        self._guard = guard

    def append_scalar_metrics(
        self,
        metrics: dict[str, Any],
        global_step: int,
        preemption_count: int | None = None,
        is_eval: bool = False,
    ) -> None:
        del global_step, preemption_count
        if not is_eval:
            _check_losses(metrics, self._guard)

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        pass


# Planning ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrialPlan:
    """What to do with one trial: ``fresh``, ``overwrite``, ``restart``, ``resume`` or ``skip``."""

    index: int
    hparams: Any
    tdir: Path
    action: str
    checkpoint: checkpoint.Checkpoint | None = None
    status: dict[str, Any] = dataclasses.field(default_factory=dict)


def read_status(tdir: Path) -> dict[str, Any]:
    """A trial's ``status.json`` (empty if absent or unreadable)."""
    try:
        return json.loads((Path(tdir) / STATUS_JSON).read_text())
    except (OSError, ValueError):
        return {}


def _plan(pre: Preflight, index: int, hparams: Any) -> TrialPlan:
    config = pre.config
    tdir = logs.trial_dir(pre.workload_dir, index + 1)
    status = read_status(tdir)
    if config.overwrite and tdir.exists():
        return TrialPlan(index, hparams, tdir, "overwrite")
    if config.resume_last_run and tdir.exists():
        if status.get("status") in TERMINAL:
            return TrialPlan(index, hparams, tdir, "skip", status=status)
        ckpt = checkpoint.latest(tdir)
        if ckpt is not None:
            return TrialPlan(index, hparams, tdir, "resume", ckpt, status)
        if _has_results(tdir):
            return TrialPlan(index, hparams, tdir, "restart", status=status)
    return TrialPlan(index, hparams, tdir, "fresh")


def _resolve_seed(config: RunConfig, plans: list[TrialPlan]) -> int:
    """The run's seed: a resumed run reuses the seed its trials were started with."""
    if config.resume_last_run:
        for plan in plans:
            found = None
            if plan.checkpoint is not None:
                found = plan.checkpoint.meta["run"].get("rng_seed")
            elif plan.action == "skip":
                found = _read_json(plan.tdir / logs.RUN_RECORD_JSON).get("rng_seed")
            if found is None:
                continue
            if config.rng_seed and int(config.rng_seed) != int(found):
                raise RunError(
                    f"{plan.tdir} was run with --rng_seed={found}; resume it with that seed "
                    "(or without --rng_seed)"
                )
            return int(found)
    return rng_lib.resolve_seed(config.rng_seed, config.tuning_ruleset)


def _share_seed(seed: int, framework: str) -> int:
    """Under DDP every rank must use rank 0's seed (a drawn seed differs per process)."""
    if framework != "pytorch":
        return seed
    from algoperf.frameworks import pytorch as fpt

    return fpt.broadcast_int(seed, fpt.setup().device)


def _agree_lock(failed: bool, framework: str) -> bool:
    if framework != "pytorch":
        return failed
    from algoperf.frameworks import pytorch as fpt

    return bool(fpt.max_across_ranks_many([float(failed)], fpt.setup().device)[0])


def _barrier(framework: str) -> None:
    if framework == "pytorch":
        from algoperf.frameworks import pytorch as fpt

        fpt.barrier()


# Running -----------------------------------------------------------------------------------------


def run(config: RunConfig) -> RunOutcome:
    """Run every selected trial of a submission on a workload; return their summaries."""
    pre = preflight(config)
    proc = _process(config.framework)
    lock = WorkloadLock(pre.workload_dir) if proc.is_main else None
    guard = StopGuard(config.stop_on_divergence)
    error: RunError | None = None
    try:
        if lock is not None:
            lock.acquire()
    except RunError as e:
        error = e
    if _agree_lock(error is not None, config.framework):
        raise error or RunError(f"rank 0 could not lock {pre.workload_dir}")
    guard.install()
    try:
        plans = [_plan(pre, index, hparams) for index, hparams in pre.trials]
        seed = _share_seed(_resolve_seed(config, plans), config.framework)
        _barrier(config.framework)  # every rank has planned before rank 0 changes anything
        clock = clock_lib.for_framework(config.framework)
        outcome = RunOutcome([])
        for plan in plans:
            if guard.preempted:
                outcome.preempted = True
                break
            summary = _run_trial(pre, plan, seed, clock, guard, proc)
            outcome.summaries.append(summary)
            if summary.status == "preempted":
                outcome.preempted = True
                break
            if summary.status == "failed" and proc.world_size > 1:
                log.error("a trial failed under DDP; stopping the run (later trials not started)")
                break
        return outcome
    finally:
        guard.restore()
        if lock is not None:
            lock.release()


def _remove_trial_dir(tdir: Path, workload_dir: Path, keep: tuple[str, ...] = ()) -> None:
    """Delete one ``trial_<k>`` directory of `workload_dir` (never anything else)."""
    if tdir.parent != workload_dir or not _TRIAL_RE.match(tdir.name):
        raise RunError(f"refusing to delete {tdir}: not a trial directory of {workload_dir}")
    if tdir.is_symlink():
        tdir.unlink()  # the link, not what it points to
        return
    if not keep:
        shutil.rmtree(tdir)
        return
    for child in tdir.iterdir():
        if child.name in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _next_preemption_count(tdir: Path, ckpt: checkpoint.Checkpoint) -> int:
    seen = [ckpt.preemption_count]
    for p in tdir.iterdir():
        m = _META_RE.match(p.name)
        if m:
            seen.append(int(m.group(1)))
    return max(seen) + 1


def _run_info(pre: Preflight, hparams: Any, seed: int) -> dict[str, Any]:
    return {
        "workload": pre.config.workload,
        "framework": pre.config.framework,
        "tuning_ruleset": pre.config.tuning_ruleset,
        "rng_seed": seed,
        "global_batch_size": pre.global_batch_size,
        "hyperparameters": tuning.hparams_to_dict(hparams) if hparams is not None else None,
        "submission_sha256": logs.sha256_file(Path(pre.config.submission_path)),
    }


def _check_same_run(ckpt: checkpoint.Checkpoint, info: dict[str, Any]) -> None:
    saved = ckpt.meta["run"]
    current = json.loads(json.dumps(info, default=str))  # as stored (tuples become lists)
    for key in ("workload", "framework", "tuning_ruleset", "global_batch_size", "hyperparameters"):
        if saved.get(key) != current.get(key):
            raise checkpoint.CheckpointError(
                f"{ckpt.path} was saved by a run with {key}={saved.get(key)!r}, this run has "
                f"{info.get(key)!r}; resume with the original settings or pass --overwrite"
            )
    if saved.get("submission_sha256") != current.get("submission_sha256"):
        log.warning(
            "%s: the submission file changed since this checkpoint was saved; the trial's "
            "results will mix two versions (run_record.json keeps both hashes)",
            ckpt.path,
        )


def _write_status(tdir: Path, status: str, **fields: Any) -> None:
    record = {
        "status": status,
        **fields,
        "pid": os.getpid(),
        "updated": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    logs.write_json_atomic(tdir / STATUS_JSON, record)


def _run_trial(
    pre: Preflight,
    plan: TrialPlan,
    seed: int,
    clock: Any,
    guard: StopGuard,
    proc: Process,
) -> TrialSummary:
    config, workload = pre.config, pre.workload
    tdir, index, main = plan.tdir, plan.index, proc.is_main
    if plan.action == "skip":
        log.info("trial %d already %s; kept as it is", index + 1, plan.status.get("status"))
        return _summary_from_record(index, tdir, plan.status)
    created = not tdir.exists() or plan.action == "overwrite"
    if main:
        if plan.action == "overwrite":
            _remove_trial_dir(tdir, pre.workload_dir)
        elif plan.action == "restart":
            log.warning("trial %d has logs but no checkpoint: it starts over", index + 1)
            _remove_trial_dir(tdir, pre.workload_dir, keep=(tuning.HPARAMS_FILENAME,))
        tdir.mkdir(parents=True, exist_ok=True)
        checkpoint.remove_temporaries(tdir)
    _barrier(config.framework)

    info = _run_info(pre, plan.hparams, seed)
    preemption = 0
    resume = None
    live = loop.LiveStatus()
    guard.diverged = False
    metrics_logger: Any = None
    try:
        hparams = plan.hparams
        if hparams is not None:
            hparams = tuning.resume_or_write_hparams(hparams, tdir, write=main)
            info["hyperparameters"] = tuning.hparams_to_dict(hparams)
            log.info("trial %d: hyperparameters %s", index + 1, info["hyperparameters"])
        if plan.action == "resume":
            ckpt = plan.checkpoint
            _check_same_run(ckpt, info)
            preemption = _next_preemption_count(tdir, ckpt)
            resume = checkpoint.resume_point(ckpt, config.framework)
            if main:
                dropped = checkpoint.truncate_logs(tdir, ckpt.meta["log_rows"])
                log.info(
                    "trial %d: resuming from %s (step %d, submission time %.1fs), preemption "
                    "count %d; dropped rows written after it: %s",
                    index + 1,
                    ckpt.path.name,
                    ckpt.global_step,
                    ckpt.meta["train_state"]["accumulated_submission_time"],
                    preemption,
                    dropped,
                )
        trial_key = rng_lib.trial_rng(seed, config.framework, config.tuning_ruleset)
        if main:
            _write_run_files(pre, tdir, seed, preemption)
            _write_status(tdir, "running", preemption_count=preemption)
            metrics_logger = GuardedLogger(tdir, guard)
        else:
            metrics_logger = NullLogger(guard)
        workload.attach_metrics_logger(metrics_logger)
        budget = config.budget_sec(workload.config)
        settings = loop.LoopSettings(
            budget_sec=budget,
            data_dir=str(Path(config.data_dir).expanduser()),
            imagenet_v2_data_dir=config.imagenet_v2_data_dir,
            max_global_steps=config.max_global_steps,
            eval_batch_size=pre.eval_batch_size,
            skip_evals=_skip_evals(config),
            preemption_count=preemption,
            eval_every_n_steps=config.eval_every_n_steps,
            checkpoint_at_evals=config.save_checkpoints,
            sync_every_step=config.sync_every_step,
            stop_on_divergence=config.stop_on_divergence,
        )

        # Every rank gets callables, so that all ranks read the clock (a collective under DDP)
        # at the same points; only rank 0's write anything.
        def on_eval(row: dict[str, Any]) -> None:
            if main:
                metrics_logger.append_scalar_metrics(
                    row, row["global_step"], row["preemption_count"], is_eval=True
                )

        saver = checkpoint.make_saver(
            tdir,
            config.framework,
            preemption_count=preemption,
            run_info=info,
            keep_intermediate=config.save_intermediate_checkpoints,
            before_save=metrics_logger.flush,
        )

        def on_checkpoint(snapshot: loop.Snapshot) -> None:
            if main:
                saver(snapshot)

        goal = progress.Goal(
            label=f"{config.workload}_{config.framework} trial {index + 1}",
            budget_sec=budget,
            target_metric=workload.target_metric_name,
            target_value=workload.validation_target_value,
            max_global_steps=config.max_global_steps,
        )
        mode = progress.choose_mode(config.progress) if main else "off"
        with (
            progress.Reporter(goal, live, mode, config.progress_interval_sec),
            run_env.profiling(config, tdir, write=main),
        ):
            result = loop.train_once(
                workload,
                pre.module,
                pre.global_batch_size,
                hparams,
                trial_key,
                settings,
                clock,
                on_eval=on_eval,
                reset_memory=run_env.memory_reset(config.framework),
                prepare_model=_model_preparer(config, workload),
                on_checkpoint=on_checkpoint,
                resume=resume,
                should_stop=guard.code,
                live=live,
            )
        status = {"diverged": "diverged", "preempted": "preempted"}.get(
            result.stop_reason, "finished"
        )
        if main:
            if status in TERMINAL:
                # The final score row (upstream's), only once a trial is over.
                metrics_logger.append_scalar_metrics(
                    {"score": result.accumulated_submission_time}, result.global_step, preemption
                )
            metrics_logger.finish()
    except KeyboardInterrupt:
        if main and tdir.exists():
            with contextlib.suppress(OSError):
                _write_status(tdir, "interrupted", global_step=live.global_step)
        raise
    except BaseException as e:
        if live.phase == "setup":
            # Bad input (or a bad checkpoint): nothing was trained.
            if main and created and not (tdir / logs.EVAL_CSV).exists():
                shutil.rmtree(tdir, ignore_errors=True)
            raise
        return _failed(pre, plan, proc, live, preemption, e, metrics_logger)

    summary = _summarize(index, tdir, result, workload, status, preemption)
    if main:
        message = {"diverged": "a loss or eval metric became NaN or infinite"}.get(status, "")
        summary.message = message
        _write_status(
            tdir,
            status,
            stop_reason=result.stop_reason,
            global_step=result.global_step,
            preemption_count=preemption,
            message=message,
        )
        if status in TERMINAL:
            record_path = tdir / logs.RUN_RECORD_JSON
            record = _read_json(record_path)
            record["result"] = dataclasses.asdict(summary)
            logs.write_json_atomic(record_path, record)
    log.info(
        "trial %d %s (%s): score %.2fs, %d steps, eval share %.1f%%",
        index + 1,
        status,
        summary.stop_reason,
        summary.score,
        summary.global_step,
        100 * summary.eval_share_of_wall_time,
    )
    return summary


def is_out_of_memory(error: BaseException) -> bool:
    """Accelerator or host out-of-memory, whichever framework raised it."""
    if isinstance(error, MemoryError):
        return True
    name = type(error).__name__
    text = str(error)
    return (
        name == "OutOfMemoryError"
        or "RESOURCE_EXHAUSTED" in text
        or "out of memory" in text.lower()
        or "Out of memory" in text
    )


def _failed(
    pre: Preflight,
    plan: TrialPlan,
    proc: Process,
    live: loop.LiveStatus,
    preemption: int,
    error: BaseException,
    metrics_logger: Any,
) -> TrialSummary:
    """Record a trial that raised after training began; the run goes on with the next trial."""
    config, tdir, index = pre.config, plan.tdir, plan.index
    where = f"during {live.phase} at step {live.global_step}"
    if is_out_of_memory(error):
        message = (
            f"out of memory {where} (global batch size {pre.global_batch_size}, eval batch size "
            f"{pre.eval_batch_size}): reduce what get_batch_size('{config.workload}') returns "
            "or the submission's memory use"
        )
    else:
        text = str(error).strip()
        message = f"{type(error).__name__} {where}" + (f": {text.splitlines()[0]}" if text else "")
    log.error("trial %d failed: %s (traceback in %s)", index + 1, message, tdir / FAILURE_TXT)
    if proc.is_main:
        with contextlib.suppress(Exception):
            if metrics_logger is not None:
                metrics_logger.finish()
        with contextlib.suppress(OSError):
            text = message + "\n\n" + "".join(traceback.format_exception(error))
            (tdir / FAILURE_TXT).write_text(text)
            _write_status(
                tdir,
                "failed",
                global_step=live.global_step,
                preemption_count=preemption,
                phase=live.phase,
                message=message,
            )
    state = live.train_state
    return TrialSummary(
        trial_index=index + 1,
        trial_dir=str(tdir),
        score=state.accumulated_submission_time if state is not None else 0.0,
        global_step=live.global_step,
        num_evals=checkpoint.count_csv_rows(tdir / logs.EVAL_CSV) if proc.is_main else 0,
        stop_reason="error",
        time_to_target=None,
        eval_share_of_wall_time=0.0,
        status="failed",
        preemption_count=preemption,
        message=f"{message} (see {tdir / FAILURE_TXT})",
    )


def scoring_target(workload: Any) -> float:
    """The validation target the scorer compares with: the scoring targets file's value where
    it differs from the runner's stopping target (``scoring_validation_target_value``, e.g.
    finewebedu_lm's 22.2995 against 22.432), else the workload's."""
    scoring = getattr(workload.config, "scoring_validation_target_value", None)
    return workload.validation_target_value if scoring is None else float(scoring)


def scoring_hits(value: float, target: float, maximize: bool) -> bool:
    """Whether `value` meets `target` as the scorer decides it (non-strict; NaN never)."""
    from scoring.time_to_target import hits

    return bool(hits([value], target, maximize)[0])


def _summarize(
    index: int,
    tdir: Path,
    result: loop.LoopResult,
    workload: Any,
    status: str,
    preemption: int,
) -> TrialSummary:
    time_to_target = None
    key = f"validation/{workload.target_metric_name}"
    target = scoring_target(workload)
    for _, row in result.eval_results:
        if key in row and scoring_hits(row[key], target, workload.config.maximize):
            time_to_target = row["score"]
            break
    state = result.train_state
    share = state.accumulated_eval_time / result.total_duration if result.total_duration else 0.0
    return TrialSummary(
        trial_index=index + 1,
        trial_dir=str(tdir),
        score=result.accumulated_submission_time,
        global_step=result.global_step,
        num_evals=len(result.eval_results),
        stop_reason=result.stop_reason,
        time_to_target=time_to_target,
        eval_share_of_wall_time=share,
        status=status,
        preemption_count=preemption,
        eval_errors=result.eval_errors,
        logging_errors=result.logging_errors,
        nonfinite_evals=result.nonfinite_evals,
    )


def _summary_from_record(index: int, tdir: Path, status: dict[str, Any]) -> TrialSummary:
    result = _read_json(tdir / logs.RUN_RECORD_JSON).get("result", {})
    fields = {f.name for f in dataclasses.fields(TrialSummary)}
    values = {k: v for k, v in result.items() if k in fields}
    values.update(trial_index=index + 1, trial_dir=str(tdir))
    values.setdefault("score", math.nan)
    values.setdefault("global_step", status.get("global_step", 0))
    values.setdefault("num_evals", 0)
    values.setdefault("stop_reason", status.get("stop_reason", ""))
    values.setdefault("time_to_target", None)
    values.setdefault("eval_share_of_wall_time", 0.0)
    values["status"] = status.get("status", "finished")
    values["message"] = "already complete; kept"
    return TrialSummary(**values)


def _write_run_files(pre: Preflight, tdir: Path, seed: int, preemption: int) -> None:
    """meta_data_<n>.json, flags_<n>.json (upstream) and run_record.json + submission copy (ours)."""
    config, workload = pre.config, pre.workload
    env = logs.environment_record(config.framework)
    logs.write_json_atomic(
        tdir / f"meta_data_{preemption}.json", logs.meta_data(workload, env, seed)
    )
    all_flags = _flag_values(config)
    compiled = run_env.compile_policy(config, workload.config)
    logs.write_json_atomic(
        tdir / f"flags_{preemption}.json",
        logs.upstream_flags(all_flags, run_env.torch_compile_flag(config)),
    )
    hashes = logs.copy_submission_source(Path(config.submission_path), tdir / "submission")
    from algoperf import provenance  # image lock hash + git sha (docker/install.sh)

    record = {
        "harness": "algoperf",
        "workload": config.workload,
        "workload_config_version": workload.config.version,
        # Config fields taken from a fixture dataset (None: the real data, registered sizes).
        "fixture_data": registry.fixture_overrides(workload.config.dataset, config.data_dir),
        "framework": config.framework,
        "tuning_ruleset": config.tuning_ruleset,
        "rng_seed": seed,
        "global_batch_size": pre.global_batch_size,
        "eval_batch_size": pre.eval_batch_size,
        "budget_sec": config.budget_sec(workload.config),
        "budget_overridden": config.max_runtime_sec is not None,
        "eval_every_n_steps": config.eval_every_n_steps,
        # Rules where a flag may differ from upstream's behaviour (README: deviations).
        "timing_sync": "every_step" if config.sync_every_step else "eval_points",
        "stop_on_divergence": config.stop_on_divergence,
        "skip_evals": config.skip_evals and not config.self_tuning,
        "max_global_steps": config.max_global_steps or None,
        "torch_compile": compiled,
        "environment_variables": dict(pre.environment),
        "profile": config.profile,
        "capture_jax_trace": config.capture_jax_trace,
        "flags": all_flags,
        "num_processes": _process(config.framework).world_size,
        "num_devices": _num_devices(config.framework),
        "jax_layout": config.jax_layout,
        "submission_import": submission.import_record(pre.module),
        "preemption_count": preemption,
        "submission_path": str(Path(config.submission_path).resolve()),
        "submission_sha256": hashes.get(Path(config.submission_path).name),
        "submission_files_sha256": hashes,
        "environment": env,
        "provenance": provenance.record(),
    }
    previous = _read_json(tdir / logs.RUN_RECORD_JSON)
    if previous and preemption > 0:
        # Keep what earlier attempts recorded about themselves.
        record["previous_attempts"] = [
            *previous.get("previous_attempts", []),
            {k: previous.get(k) for k in ("preemption_count", "submission_sha256", "environment")},
        ]
    logs.write_json_atomic(tdir / logs.RUN_RECORD_JSON, record)


def _flag_values(config: RunConfig) -> dict[str, Any]:
    """Every flag value of the run (parsed flags; from the config when built in code)."""
    if config.flags:
        return dict(config.flags)
    values = {k: v for k, v in dataclasses.asdict(config).items() if k != "flags"}
    values["pytorch_eval_num_workers"] = config.eval_num_workers or 0
    return values


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _model_preparer(config: RunConfig, workload: Any) -> Any:
    """Untimed model preparation: replicate JAX state over the mesh; ``torch.compile`` by policy.

    JAX: parameters and model state are placed replicated on every device (upstream's layout),
    so that a fresh run and a restored one hold arrays of the same sharding.
    """
    if config.framework == "jax":
        from algoperf.frameworks import jax as fjax

        if config.jax_layout == "pmap":
            return None  # `jax_pmap.PmapWorkload.init_model_fn` replicated them already

        def replicate(params: Any, model_state: Any) -> tuple[Any, Any]:
            return fjax.replicate(params), fjax.replicate(model_state)

        return replicate
    return run_env.model_preparer(config, workload)


def _skip_evals(config: RunConfig) -> bool:
    """``--skip_evals`` as upstream: external tuning only (its self-tuning path ignores it)."""
    if config.skip_evals and config.self_tuning:
        log.warning("--skip_evals is not applied under --tuning_ruleset=self (as upstream)")
        return False
    if config.skip_evals and not config.max_global_steps:
        log.warning(
            "--skip_evals without --max_global_steps: no budget check ever runs (as upstream), so "
            "only a TrainingCompleteError or a signal ends the trial"
        )
    return config.skip_evals
