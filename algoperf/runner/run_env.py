"""What upstream's runner sets up around a trial, as data and small functions.

* `environment_for` / `apply_environment`: the environment variables of a run (the workload
  spec's ``environment``, plus ``--set_pytorch_max_split_size``), set before the framework
  initialises and recorded in ``run_record.json``;
* `compile_policy` / `model_preparer`: ``torch.compile`` of the model and of ``loss_fn`` by the
  workload spec's policy (upstream's lists), off with ``--torch_compile=false``;
* `memory_reset`: upstream's ``_reset_cuda_mem`` (PyTorch on CUDA);
* `profiling`: ``--profile`` (cProfile) and ``--capture_jax_trace`` output in the trial directory.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import io
import logging
import os
import pstats
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from algoperf.runner.config import RunConfig

log = logging.getLogger(__name__)

MAX_SPLIT_SIZE = "max_split_size_mb:256"  # upstream's --set_pytorch_max_split_size value
PROFILE_PSTATS = "profile.pstats"
PROFILE_TXT = "profile.txt"
TRACE_DIR = "traces"


def environment_for(config: RunConfig, workload_config: Any) -> dict[str, str]:
    """The variables a run sets: the workload's, then the flags' (which win, as upstream)."""
    env = dict(workload_config.environment)
    if config.set_pytorch_max_split_size:
        env["PYTORCH_CUDA_ALLOC_CONF"] = MAX_SPLIT_SIZE
    return env


def apply_environment(env: Mapping[str, str]) -> dict[str, str]:
    """Set `env` in ``os.environ``; return each variable's resulting value (for the record).

    ``XLA_FLAGS`` entries are added to an existing ``XLA_FLAGS`` (a flag already there keeps the
    user's value), so flags set for the process (device counts, dumps) survive; every other
    variable is set as upstream sets it, replacing an existing value.
    """
    result = {}
    for name, value in env.items():
        if name == "XLA_FLAGS":
            value = merge_xla_flags(os.environ.get(name, ""), value)
        os.environ[name] = value
        result[name] = value
    return result


def merge_xla_flags(existing: str, extra: str) -> str:
    """`existing` plus each flag of `extra` whose name it does not already set."""
    names = {f.split("=", 1)[0] for f in existing.split()}
    added = [f for f in extra.split() if f.split("=", 1)[0] not in names]
    return " ".join([*existing.split(), *added])


def torch_compile_flag(config: RunConfig) -> bool:
    """The value upstream's boolean ``--torch_compile`` would have had (``auto`` resolved)."""
    if config.torch_compile is not None:
        return config.torch_compile
    if config.framework != "pytorch":
        return True  # upstream's default; unused by JAX runs
    import torch

    return torch.cuda.is_available()


def compile_policy(config: RunConfig, workload_config: Any) -> dict[str, bool]:
    """What ``torch.compile`` applies to: ``{"model": ..., "loss_fn": ...}`` (PyTorch only).

    ``--torch_compile`` true: the spec's policy; auto: the same on CUDA, nothing on CPU; false:
    nothing.
    """
    if config.framework != "pytorch" or not torch_compile_flag(config):
        return {"model": False, "loss_fn": False}
    return {
        "model": bool(workload_config.torch_compile_model),
        "loss_fn": bool(workload_config.torch_compile_loss),
    }


def model_preparer(
    config: RunConfig, workload: Any
) -> Callable[[Any, Any], tuple[Any, Any]] | None:
    """PyTorch: ``torch.compile`` by `compile_policy` (untimed set-up); None when nothing to do."""
    policy = compile_policy(config, workload.config)
    if not any(policy.values()):
        if config.framework == "pytorch" and config.torch_compile is not False:
            log.info("torch.compile not applied (auto without CUDA, or the workload's policy)")
        return None
    import torch

    def compile_model(params: Any, model_state: Any) -> tuple[Any, Any]:
        if policy["model"]:
            params = torch.compile(params)
        else:
            log.warning(
                "%s: the model is not compiled (upstream lists it as failing under "
                "torch.compile); proceeding without",
                config.workload,
            )
        if policy["loss_fn"]:
            workload.loss_fn = torch.compile(workload.loss_fn)
        return params, model_state

    return compile_model


def memory_reset(framework: str) -> Callable[[], None] | None:
    """Upstream's ``_reset_cuda_mem``: PyTorch on CUDA only (None elsewhere, as upstream)."""
    if framework != "pytorch":
        return None
    import torch

    if not torch.cuda.is_available():
        return None

    clear_cublas = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)  # CUDA builds only

    def reset() -> None:
        if clear_cublas is not None:
            clear_cublas()
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    return reset


@contextlib.contextmanager
def profiling(config: RunConfig, trial_dir: Path, write: bool = True) -> Iterator[None]:
    """``--profile``: cProfile the trial; ``--capture_jax_trace``: a JAX trace; else nothing.

    Outputs (rank 0 only when `write`): ``profile.pstats`` (load with `pstats`), ``profile.txt``
    (the 60 most expensive functions by cumulative time), ``traces/`` (TensorBoard/XProf).
    """
    profiler = cProfile.Profile() if config.profile else None
    tracing = False
    if config.capture_jax_trace and write:
        import jax

        jax.profiler.start_trace(str(Path(trial_dir) / TRACE_DIR))
        tracing = True
    if profiler is not None:
        profiler.enable()
    try:
        yield
    finally:
        if profiler is not None:
            profiler.disable()
            if write:
                _write_profile(profiler, Path(trial_dir))
        if tracing:
            import jax

            jax.profiler.stop_trace()


def _write_profile(profiler: cProfile.Profile, trial_dir: Path) -> None:
    profiler.dump_stats(str(trial_dir / PROFILE_PSTATS))
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(60)
    (trial_dir / PROFILE_TXT).write_text(text.getvalue())
    log.info("profile written to %s", trial_dir / PROFILE_TXT)
