"""Loading and checking a submission module (upstream AlgoPerf format).

A submission is a Python file defining `get_batch_size`, `init_optimizer_state`,
`update_params` and `data_selection` (and optionally `prepare_for_eval`, `get_eval_batch_size`).
It is imported from its path; its directory is put on ``sys.path`` so that helper modules next to
it import as they do upstream. Problems are reported as one-line `SubmissionError`s naming the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from algoperf import spec

# Parameter names the runner passes by keyword (update_params, prepare_for_eval) must match
# exactly; the positional ones are checked for count.
_KEYWORD_CALLED = {
    "update_params": [
        "workload",
        "current_param_container",
        "current_params_types",
        "model_state",
        "hyperparameters",
        "batch",
        "loss_type",
        "optimizer_state",
        "eval_results",
        "global_step",
        "rng",
    ],
    "prepare_for_eval": [
        "workload",
        "current_param_container",
        "current_params_types",
        "model_state",
        "hyperparameters",
        "loss_type",
        "optimizer_state",
        "eval_results",
        "global_step",
        "rng",
    ],
}
_POSITIONAL_ARITY = {"get_batch_size": 1, "init_optimizer_state": 5, "data_selection": 8}


class SubmissionError(ValueError):
    """A submission that cannot be used, with a one-line reason and fix."""


def load_submission(path: str | Path) -> ModuleType:
    """Import the submission at `path` and check its functions; raise `SubmissionError`."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise SubmissionError(f"{path}: submission file not found; pass --submission_path FILE.py")
    if path.suffix != ".py":
        raise SubmissionError(f"{path}: a submission must be a .py file")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module_name = f"algoperf_submission_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec_ = importlib.util.spec_from_file_location(module_name, path)
    if spec_ is None or spec_.loader is None:
        raise SubmissionError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec_)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[module_name] = module
    try:
        spec_.loader.exec_module(module)
    except Exception as e:
        del sys.modules[module_name]
        raise SubmissionError(
            f"{path}: importing the submission failed: {type(e).__name__}: {e}"
        ) from e
    problems = check_submission(module)
    if problems:
        del sys.modules[module_name]
        raise SubmissionError(f"{path}: {problems[0]}")
    return module


def check_submission(module: ModuleType) -> list[str]:
    """Every problem with the submission's functions (empty when it is usable)."""
    problems = []
    for name in spec.REQUIRED_SUBMISSION_FUNCTIONS:
        fn = getattr(module, name, None)
        if fn is None:
            problems.append(
                f"missing required function `{name}`; define it (see submissions/template)"
            )
        elif not callable(fn):
            problems.append(f"`{name}` is not a function")
    for name, expected in _KEYWORD_CALLED.items():
        fn = getattr(module, name, None)
        if fn is None or not callable(fn):
            continue
        params = inspect.signature(fn).parameters
        if any(p.kind == p.VAR_KEYWORD for p in params.values()):
            continue
        missing = [p for p in expected if p not in params]
        if missing:
            problems.append(
                f"`{name}` lacks parameter(s) {', '.join(missing)}; the runner passes them by "
                "keyword with upstream's names"
            )
    for name, arity in _POSITIONAL_ARITY.items():
        fn = getattr(module, name, None)
        if fn is None or not callable(fn):
            continue
        try:
            inspect.signature(fn).bind(*([None] * arity))
        except TypeError:
            problems.append(f"`{name}` must accept {arity} positional argument(s) as upstream")
    return problems


def global_batch_size(
    module: ModuleType, workload_name: str, base_name: str, num_devices: int
) -> int:
    """`get_batch_size(name)`, retried with the base workload's name on ValueError or KeyError.

    Upstream retries on ValueError only; its own development submissions index a dict and raise
    KeyError for a workload they do not list (``fashion_mnist``), so KeyError is retried too.
    """
    try:
        size = module.get_batch_size(workload_name)
    except (ValueError, KeyError):
        size = module.get_batch_size(base_name)
    return _check_divisible(int(size), num_devices, "get_batch_size")


def eval_batch_size(module: ModuleType, workload: Any, num_devices: int) -> int:
    """Global eval batch size: the submission's `get_eval_batch_size` if defined, else the workload's."""
    fn = getattr(module, "get_eval_batch_size", None)
    size = int(fn(workload.config.name)) if fn is not None else int(workload.eval_batch_size)
    return _check_divisible(size, num_devices, "eval batch size")


def _check_divisible(size: int, num_devices: int, what: str) -> int:
    if size <= 0 or size % num_devices:
        raise SubmissionError(
            f"{what} returned {size}, which must be a positive multiple of the {num_devices} device(s)"
        )
    return size
