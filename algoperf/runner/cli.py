"""`algoperf run`: upstream `submission_runner.py` flags -> a frozen `RunConfig` -> `trial.run`.

Flag names and spellings match upstream (``--flag=value``, ``--flag value``, ``--noflag`` for
booleans), so existing command lines and scripts work unchanged. Flags are parsed into a private
`FlagValues` (no global flag state), and nothing below this module reads flags.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from absl import flags

from algoperf.runner.config import RunConfig

log = logging.getLogger(__name__)


def define_flags() -> flags.FlagValues:
    """A fresh set of upstream's runner flags (plus ours, marked)."""
    fv = flags.FlagValues()
    s, b, i, e = flags.DEFINE_string, flags.DEFINE_boolean, flags.DEFINE_integer, flags.DEFINE_enum
    s("submission_path", None, "Path to the submission .py file.", flag_values=fv)
    s("workload", None, "Workload name (see `algoperf workloads`).", flag_values=fv)
    e("tuning_ruleset", "external", ["external", "self"], "Tuning ruleset.", flag_values=fv)
    s("tuning_search_space", None, "tuning_search_space.json (external ruleset).", flag_values=fv)
    i("num_tuning_trials", 1, "Number of hyperparameter points to generate.", flag_values=fv)
    s("data_dir", "~/data", "Dataset directory.", flag_values=fv)
    s("imagenet_v2_data_dir", None, "ImageNet-v2 directory (ImageNet test split).", flag_values=fv)
    s(
        "librispeech_tokenizer_vocab_path",
        "",
        "LibriSpeech SentencePiece vocab (passed to the librispeech workloads).",
        flag_values=fv,
    )
    e("framework", None, ["jax", "pytorch"], "Framework.", flag_values=fv)
    s(
        "torch_compile",
        "auto",
        "PyTorch: torch.compile the model (true/false/auto; auto = on CUDA only).",
        flag_values=fv,
    )
    s("experiment_dir", None, "Root directory of experiments.", flag_values=fv)
    s("experiment_name", None, "Experiment sub-directory name.", flag_values=fv)
    b(
        "save_checkpoints",
        False,
        "Checkpoint after every eval and at the end (logging time, not submission time).",
        flag_values=fv,
    )
    b(
        "save_intermediate_checkpoints",
        True,
        "Keep every checkpoint (false: only the latest).",
        flag_values=fv,
    )
    b(
        "resume_last_run",
        False,
        "Continue each unfinished trial from its latest checkpoint (finished trials are kept).",
        flag_values=fv,
    )
    b("append_timestamp", False, "Append a timestamp to experiment_name.", flag_values=fv)
    b("use_wandb", False, "Weights & Biases logging (not supported: refused).", flag_values=fv)
    b(
        "profile",
        False,
        "cProfile each trial into <trial_dir>/profile.{pstats,txt} (slows the timed loop).",
        flag_values=fv,
    )
    i(
        "max_global_steps",
        None,
        "Stop after this many steps (0 or unset: no limit).",
        flag_values=fv,
    )
    b("overwrite", False, "Replace existing results of the trials this run writes.", flag_values=fv)
    i("hparam_start_index", None, "First hyperparameter index to run (0-based).", flag_values=fv)
    i("hparam_end_index", None, "One past the last hyperparameter index to run.", flag_values=fv)
    i("rng_seed", None, "Seed (0 or unset: drawn at random, as upstream).", flag_values=fv)
    b(
        "set_pytorch_max_split_size",
        False,
        "PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:256 (set before CUDA initialises).",
        flag_values=fv,
    )
    i(
        "pytorch_eval_num_workers",
        0,
        "Eval loader workers (results do not depend on it).",
        flag_values=fv,
    )
    b(
        "capture_jax_trace",
        False,
        "JAX profiler trace of each trial into <trial_dir>/traces (JAX runs only).",
        flag_values=fv,
    )
    b(
        "skip_evals",
        False,
        "No evals, no prepare_for_eval, no budget check (as upstream; external tuning only).",
        flag_values=fv,
    )
    e(
        "timing_sync",
        "auto",
        ["auto", "every_step", "eval_points"],
        "Ours: when the step end waits for device work; auto = PyTorch every step (upstream), "
        "JAX at eval points; eval_points lets PyTorch dispatch overlap (not leaderboard-comparable).",
        flag_values=fv,
    )
    b(
        "stop_on_divergence",
        False,
        "Ours: end a trial at a NaN/inf loss or eval value (upstream trains on to the budget).",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "max_runtime_sec",
        None,
        "Ours: replace the workload's budget (seconds) for quick experiments.",
        flag_values=fv,
    )
    s("log_level", "info", "Logging level (ours): debug, info, warning.", flag_values=fv)
    i(
        "eval_every_n_steps",
        None,
        "Ours: evaluate every N steps instead of every eval_period_time_sec "
        "(reproducibility checks; not for scored runs).",
        flag_values=fv,
    )
    s(
        "progress",
        "auto",
        "Ours: live progress (true/false/auto; auto = a bar on a terminal, log lines otherwise).",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "progress_interval_sec",
        30.0,
        "Ours: seconds between plain progress lines when stderr is not a terminal.",
        flag_values=fv,
    )
    e(
        "jax_layout",
        "auto",
        ["auto", "jit", "pmap"],
        "Ours: JAX state/batch layout (auto = pmap for pmap-era submissions, else jit).",
        flag_values=fv,
    )
    return fv


def _parse_bool_or_auto(value: str, flag: str = "torch_compile") -> bool | None:
    v = str(value).strip().lower()
    if v in ("auto", ""):
        return None
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ValueError(f"--{flag} must be true, false or auto, got {value!r}")


def config_from_argv(argv: Sequence[str]) -> RunConfig:
    """Parse runner flags (without the program name) into a `RunConfig`."""
    fv = define_flags()
    try:
        rest = fv(["algoperf run", *argv])
    except flags.Error as e:
        raise ValueError(str(e).splitlines()[0]) from e
    if len(rest) > 1:
        raise ValueError(f"unexpected arguments: {' '.join(rest[1:])}")
    if fv.use_wandb:
        raise ValueError(
            "--use_wandb is not supported here (logs are measurements.csv and "
            "eval_measurements.csv in the trial directory); drop the flag"
        )
    for required in (
        "submission_path",
        "workload",
        "framework",
        "experiment_dir",
        "experiment_name",
    ):
        if fv[required].value is None:
            raise ValueError(f"--{required} is required")
    name = fv.experiment_name
    if fv.append_timestamp:
        import datetime

        name += datetime.datetime.now().strftime("-%Y-%m-%d-%H-%M-%S")
    values = fv.flag_values_dict()
    return RunConfig(
        framework=fv.framework,
        workload=fv.workload,
        submission_path=fv.submission_path,
        experiment_dir=fv.experiment_dir,
        experiment_name=name,
        tuning_ruleset=fv.tuning_ruleset,
        tuning_search_space=fv.tuning_search_space,
        num_tuning_trials=fv.num_tuning_trials,
        data_dir=fv.data_dir,
        imagenet_v2_data_dir=fv.imagenet_v2_data_dir,
        rng_seed=fv.rng_seed,
        max_global_steps=fv.max_global_steps,
        overwrite=fv.overwrite,
        hparam_start_index=fv.hparam_start_index,
        hparam_end_index=fv.hparam_end_index,
        torch_compile=_parse_bool_or_auto(fv.torch_compile),
        save_checkpoints=fv.save_checkpoints,
        save_intermediate_checkpoints=fv.save_intermediate_checkpoints,
        resume_last_run=fv.resume_last_run,
        append_timestamp=fv.append_timestamp,
        skip_evals=fv.skip_evals,
        max_runtime_sec=fv.max_runtime_sec,
        eval_every_n_steps=fv.eval_every_n_steps,
        progress=_parse_bool_or_auto(fv.progress, "progress"),
        progress_interval_sec=fv.progress_interval_sec,
        # Unset: the workload's loaders choose (results do not depend on it either way).
        eval_num_workers=(
            fv.pytorch_eval_num_workers if fv["pytorch_eval_num_workers"].present else None
        ),
        jax_layout=fv.jax_layout,
        timing_sync=fv.timing_sync,
        stop_on_divergence=fv.stop_on_divergence,
        profile=fv.profile,
        capture_jax_trace=fv.capture_jax_trace,
        set_pytorch_max_split_size=fv.set_pytorch_max_split_size,
        librispeech_tokenizer_vocab_path=fv.librispeech_tokenizer_vocab_path,
        log_level=fv.log_level,
        flags=values,
    )


# Exit statuses of `algoperf run` (2 = bad input, from `algoperf.cli`).
EXIT_OK = 0
EXIT_TRIAL_FAILED = 1
EXIT_PREEMPTED = 143  # 128 + SIGTERM: a scheduler sees the run did not finish


def _rank() -> int:
    for name in ("RANK", "LOCAL_RANK"):
        if name in os.environ:
            return int(os.environ[name])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `algoperf run`; returns the process exit code.

    0: every trial finished (reaching the target or not) or diverged; 1: a trial failed (its
    traceback is in its ``failure.txt``); 143: stopped by SIGTERM after a checkpoint (resume
    with ``--resume_last_run``); 2: bad input (raised to `algoperf.cli`).
    """
    from algoperf.runner import trial

    argv = list(sys.argv[1:] if argv is None else argv)
    level = "info"
    for a in argv:
        if a.startswith("--log_level="):
            level = a.split("=", 1)[1]
    if _rank() != 0:
        level = "warning"  # every rank runs the same loop; rank 0 speaks for them
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    config = config_from_argv(argv)
    outcome = trial.run(config)
    if config.framework == "pytorch" and "torch" in sys.modules:
        from algoperf.frameworks import pytorch as fpt

        fpt.shutdown()  # under torchrun: leave the process group cleanly (as upstream)
    if _rank() == 0:
        for s in outcome.summaries:
            ttt = "not reached" if s.time_to_target is None else f"{s.time_to_target:.2f}s"
            print(
                f"{config.workload}_{config.framework} trial {s.trial_index} [{s.status}]: "
                f"time to target {ttt}, score {s.score:.2f}s, {s.global_step} steps, "
                f"{s.num_evals} evals, stopped: {s.stop_reason}, "
                f"eval share {100 * s.eval_share_of_wall_time:.1f}%"
            )
            if s.message:
                print(f"  {s.message}")
            print(f"  logs: {s.trial_dir}")
        if outcome.preempted:
            print(
                "run stopped by SIGTERM; continue it with the same command plus --resume_last_run",
                file=sys.stderr,
            )
    if outcome.preempted:
        return EXIT_PREEMPTED
    if any(s.status == "failed" for s in outcome.summaries):
        return EXIT_TRIAL_FAILED
    return EXIT_OK
