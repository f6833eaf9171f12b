"""Running a submission on a workload: preflight, tuning trials, directories and logs.

Everything that can be wrong with the input (unknown workload, framework without an
implementation, a submission that cannot be imported or lacks a function, a malformed search
space, a missing dataset) is found in `preflight`, before any directory is created. A trial whose
training fails before its first eval row is removed again; one that has written rows keeps them
and gets a ``failure.txt`` with the traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from algoperf import logs, random_utils, registry, tuning
from algoperf import rng as rng_lib
from algoperf.runner import clock as clock_lib
from algoperf.runner import loop, submission
from algoperf.runner.config import RunConfig

log = logging.getLogger(__name__)


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


def _num_devices(framework: str) -> int:
    if framework == "jax":
        import jax

        return jax.device_count()
    from algoperf.frameworks import pytorch as fpt

    return fpt.setup().world_size


def preflight(config: RunConfig) -> Preflight:
    """Validate every input of a run; raise a one-line error before anything is written."""
    wconfig = registry.get_config(config.workload)
    registry.workload_class(config.workload, config.framework)  # clear error if not implemented
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
    workload = registry.get_workload(config.workload, config.framework)
    workload.check_data(str(data_dir))
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
        if (tdir / logs.EVAL_CSV).exists() and not (config.overwrite or config.resume_last_run):
            raise RunError(
                f"{tdir} already holds results; pass --overwrite to replace this trial, "
                "or choose another --experiment_name"
            )
    return Preflight(config, workload, module, trials, batch, eval_batch, wdir)


def run(config: RunConfig) -> list[TrialSummary]:
    """Run every selected trial of a submission on a workload; return their summaries."""
    pre = preflight(config)
    if config.resume_last_run:
        log.warning("--resume_last_run: checkpoint restore is not supported yet; trials start over")
    if config.save_checkpoints:
        log.warning("--save_checkpoints: checkpointing is not supported yet; running without")
    seed = rng_lib.resolve_seed(config.rng_seed, config.tuning_ruleset)
    clock = clock_lib.for_framework(config.framework)
    summaries = []
    for index, hparams in pre.trials:
        summaries.append(_run_trial(pre, index, hparams, seed, clock))
    return summaries


def _run_trial(pre: Preflight, index: int, hparams: Any, seed: int, clock: Any) -> TrialSummary:
    config, workload = pre.config, pre.workload
    tdir = logs.trial_dir(pre.workload_dir, index + 1)
    if tdir.exists() and config.overwrite:
        shutil.rmtree(tdir)  # only this trial's own directory, inside the named experiment
    created = not tdir.exists()
    tdir.mkdir(parents=True, exist_ok=True)
    try:
        if hparams is not None:
            hparams = tuning.resume_or_write_hparams(hparams, tdir)
            log.info("trial %d: hyperparameters %s", index + 1, tuning.hparams_to_dict(hparams))
        trial_key = rng_lib.trial_rng(seed, config.framework, config.tuning_ruleset)
        _write_run_files(pre, tdir, seed)
        metrics_logger = logs.MetricLogger(tdir)
        workload.attach_metrics_logger(metrics_logger)
        budget = config.budget_sec(workload.config)
        settings = loop.LoopSettings(
            budget_sec=budget,
            data_dir=str(Path(config.data_dir).expanduser()),
            imagenet_v2_data_dir=config.imagenet_v2_data_dir,
            max_global_steps=config.max_global_steps,
            eval_batch_size=pre.eval_batch_size,
            skip_evals=config.skip_evals,
        )

        def on_eval(row: dict[str, Any]) -> None:
            metrics_logger.append_scalar_metrics(
                row, row["global_step"], row["preemption_count"], is_eval=True
            )

        result = loop.train_once(
            workload,
            pre.module,
            pre.global_batch_size,
            hparams,
            trial_key,
            settings,
            clock,
            on_eval=on_eval,
            reset_memory=_memory_reset(config.framework),
            prepare_model=_compiler(config),
        )
        metrics_logger.append_scalar_metrics(
            {"score": result.accumulated_submission_time}, result.global_step, 0
        )
        metrics_logger.finish()
    except BaseException as e:
        _handle_failure(tdir, created, e)
        raise
    summary = _summarize(index, tdir, result, workload)
    record_path = tdir / logs.RUN_RECORD_JSON
    record = _read_json(record_path)
    record["result"] = dataclasses.asdict(summary)
    logs.write_json_atomic(record_path, record)
    log.info(
        "trial %d finished (%s): score %.2fs, %d steps, eval share %.1f%%",
        index + 1,
        summary.stop_reason,
        summary.score,
        summary.global_step,
        100 * summary.eval_share_of_wall_time,
    )
    return summary


def _summarize(index: int, tdir: Path, result: loop.LoopResult, workload: Any) -> TrialSummary:
    time_to_target = None
    for _, row in result.eval_results:
        if workload.has_reached_validation_target(row):
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
    )


def _write_run_files(pre: Preflight, tdir: Path, seed: int) -> None:
    """meta_data_<n>.json, flags_<n>.json (upstream) and run_record.json + submission copy (ours)."""
    config, workload = pre.config, pre.workload
    preemption = 0
    meta = logs.workload_attributes(workload)
    meta.update(logs.utilisation_record())
    env = logs.environment_record(config.framework)
    meta.update(
        {
            "os_platform": env["os_platform"],
            "python_version": env["python_version"],
            "python_compiler": env["python_compiler"],
            "git_branch": env["git_branch"],
            "git_commit_hash": env["git_commit_hash"],
            "cpu_model_name": env["cpu_model_name"],
            "cpu_count": env["cpu_count"],
            "gpu_model_name": env["gpu_model_name"],
            "gpu_count": env["gpu_count"],
            "rng_seed": seed,
        }
    )
    logs.write_json_atomic(tdir / f"meta_data_{preemption}.json", meta)
    flags = dict(config.flags) or {
        k: v for k, v in dataclasses.asdict(config).items() if k != "flags"
    }
    flags["rng_seed"] = seed if not flags.get("rng_seed") else flags["rng_seed"]
    logs.write_json_atomic(tdir / f"flags_{preemption}.json", flags)
    hashes = logs.copy_submission_source(Path(config.submission_path), tdir / "submission")
    record = {
        "harness": "algoperf",
        "workload": config.workload,
        "workload_config_version": workload.config.version,
        "framework": config.framework,
        "tuning_ruleset": config.tuning_ruleset,
        "rng_seed": seed,
        "global_batch_size": pre.global_batch_size,
        "eval_batch_size": pre.eval_batch_size,
        "budget_sec": config.budget_sec(workload.config),
        "budget_overridden": config.max_runtime_sec is not None,
        "submission_path": str(Path(config.submission_path).resolve()),
        "submission_sha256": hashes.get(Path(config.submission_path).name),
        "submission_files_sha256": hashes,
        "environment": env,
    }
    logs.write_json_atomic(tdir / logs.RUN_RECORD_JSON, record)


def _read_json(path: Path) -> dict[str, Any]:
    import json

    return json.loads(path.read_text()) if path.exists() else {}


def _handle_failure(tdir: Path, created: bool, error: BaseException) -> None:
    """Remove a trial directory this run created if it holds no results; else record the error."""
    has_rows = (tdir / logs.EVAL_CSV).exists()
    if created and not has_rows:
        shutil.rmtree(tdir, ignore_errors=True)
        return
    with contextlib.suppress(OSError):
        (tdir / "failure.txt").write_text("".join(traceback.format_exception(error)))


def _compiler(config: RunConfig) -> Any:
    """``torch.compile`` for PyTorch when asked (None = only on CUDA, where it pays off)."""
    if config.framework != "pytorch" or config.torch_compile is False:
        return None
    import torch

    if config.torch_compile is None and not torch.cuda.is_available():
        return None
    return torch.compile


def _memory_reset(framework: str) -> Any:
    if framework != "pytorch":
        return None
    import torch

    if not torch.cuda.is_available():
        return None

    def reset() -> None:
        torch.cuda.empty_cache()

    return reset
