"""`algoperf check PATH`: validate a submission without training it.

Checks, in order (a failed import stops the rest):

1. **submission module**: the file imports, defines the required functions
   (``get_batch_size``, ``init_optimizer_state``, ``update_params``, ``data_selection``) with
   upstream's signatures, and the optional ones it defines are usable;
2. **search space** (external tuning): ``tuning_search_space.json`` next to the submission or in
   its parent folder (or ``--tuning_search_space``) parses, and its first point is drawn;
3. **per workload**: ``get_batch_size`` answers with a positive multiple of the device count;
   then a smoke run of ``--steps`` (3) steps through the real timed loop on synthetic batches
   (the ``synthetic_batch`` its family declares, see `algoperf.registry`) at a small batch size, with
   ``prepare_for_eval`` at the eval points, checking what each function returns; finally one
   eval batch through the workload's eval path with the trained parameters, whose loss must be
   finite.

No dataset is read and nothing is written. A pass/fail line per check is printed; the exit status
is 0 when everything passed, 1 when a check failed, 2 when the input itself is unusable (no such
file, unknown workload name).
"""

from __future__ import annotations

import argparse
import functools
import math
import re
import sys
import time
import traceback
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from algoperf import random_utils, registry, spec, tuning
from algoperf import rng as rng_lib
from algoperf.runner import loop, submission
from algoperf.runner.clock import Clock


@dataclass
class CheckResult:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    seconds: float = 0.0


def resolve_submission(path: str | Path) -> Path:
    """The submission file `path` names (a file, or a folder holding ``submission.py``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        candidate = p / "submission.py"
        if not candidate.is_file():
            raise FileNotFoundError(f"{p} holds no submission.py; pass the submission file itself")
        return candidate
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such submission file")
    return p


_IMPORT_RE = re.compile(r"^\s*(?:import|from)\s+(torch|jax|flax|optax)\b", re.MULTILINE)


def infer_framework(path: Path) -> str:
    """``jax`` or ``pytorch`` from the submission's imports (or its path); else a clear error."""
    found = {"pytorch" if m == "torch" else "jax" for m in _IMPORT_RE.findall(path.read_text())}
    if len(found) == 1:
        return found.pop()
    parts = {part.lower() for part in path.parts} | {path.stem.lower()}
    hints = {f for f in ("jax", "pytorch") if any(f in part for part in parts)}
    if len(hints) == 1:
        return hints.pop()
    raise ValueError(
        f"{path}: cannot tell whether this is a JAX or a PyTorch submission; pass --framework"
    )


def find_search_space(path: Path) -> Path | None:
    """``tuning_search_space.json`` next to the submission, else in its parent folder."""
    for folder in (path.parent, path.parent.parent):
        candidate = folder / "tuning_search_space.json"
        if candidate.is_file():
            return candidate
    return None


def default_workloads(framework: str) -> list[str]:
    """Every base workload with an implementation registered for `framework`."""
    return [
        name
        for name, config in registry.all_configs().items()
        if config.name == config.base_name and framework in registry.implemented_frameworks(name)
    ]


def _where(error: BaseException, submission_path: Path) -> str:
    """Where an error was raised: the deepest frame in the submission file, else the last one."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    mine = [f for f in frames if Path(f.filename).resolve() == submission_path.resolve()]
    frame = (mine or frames)[-1]
    return f" (at {Path(frame.filename).name}:{frame.lineno} in {frame.name})"


def _describe(error: BaseException, submission_path: Path) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}{': ' + text if text else ''}{_where(error, submission_path)}"


def _checked(module: types.ModuleType) -> types.SimpleNamespace:
    """The submission's functions, wrapped to check what they return (signatures kept)."""

    def returns_triple(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            if not isinstance(out, tuple | list) or len(out) != 3:
                raise TypeError(
                    f"{name} must return (optimizer_state, params, model_state), "
                    f"got {type(out).__name__}"
                )
            return tuple(out)

        return wrapper

    def returns_batch(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            if not isinstance(out, Mapping):
                raise TypeError(
                    f"data_selection must return a batch dict, got {type(out).__name__}"
                )
            return out

        return wrapper

    ns = types.SimpleNamespace(**{k: getattr(module, k) for k in dir(module)})
    ns.update_params = returns_triple("update_params", module.update_params)
    ns.data_selection = returns_batch(module.data_selection)
    if callable(getattr(module, "prepare_for_eval", None)):
        ns.prepare_for_eval = returns_triple("prepare_for_eval", module.prepare_for_eval)
    return ns


class _RecordingLogger:
    """``workload.metrics_logger`` during a smoke run: keeps the scalars, writes nothing."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def append_scalar_metrics(self, metrics: dict[str, Any], global_step: int, *a: Any, **k: Any):
        self.rows.append({**metrics, "global_step": global_step})

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        pass


def _num_devices(framework: str) -> int:
    if framework == "jax":
        import jax

        return jax.device_count()
    return 1


def _is_finite_tree(tree: Any, framework: str) -> bool:
    if framework == "jax":
        import jax
        import numpy as np

        return all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(tree))
    import torch

    tensors = tree.parameters() if isinstance(tree, torch.nn.Module) else []
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def smoke_run(
    module: types.ModuleType,
    name: str,
    framework: str,
    hyperparameters: Any,
    ruleset: str,
    steps: int,
    batch_cap: int,
    submission_path: Path,
) -> CheckResult:
    """Train `steps` steps of workload `name` on synthetic batches; evaluate one batch."""
    start = time.perf_counter()
    config = registry.get_config(name)
    try:
        n_dev = _num_devices(framework)
        try:
            batch = submission.global_batch_size(
                module, name, registry.get_base_workload_name(name), n_dev
            )
        except Exception as e:
            raise RuntimeError(
                f"get_batch_size({name!r}) failed: {_describe(e, submission_path)}"
            ) from None
        smoke_batch = max(n_dev, min(batch, batch_cap) // n_dev * n_dev)
        workload = registry.get_workload(name, framework)
        synthetic = registry.synthetic_batch_fn(name)

        def synthetic_queue(data_rng: Any, split: str, data_dir: str, global_batch_size: int, **_):
            seed = 0
            while True:
                yield workload._to_device(synthetic(config, global_batch_size, seed))
                seed += 1

        workload._build_input_queue = synthetic_queue
        logger = _RecordingLogger()
        workload.attach_metrics_logger(logger)
        snapshots: list[loop.Snapshot] = []
        settings = loop.LoopSettings(
            budget_sec=math.inf,
            data_dir="",
            max_global_steps=steps,
            skip_evals=True,
            checkpoint_at_evals=True,
        )
        prepare = None
        if framework == "jax":
            from algoperf.frameworks import jax as fjax

            def prepare(params: Any, model_state: Any) -> tuple[Any, Any]:
                return fjax.replicate(params), fjax.replicate(model_state)

        trial_key = rng_lib.trial_rng(0, framework, ruleset)
        loop.train_once(
            workload,
            _checked(module),
            smoke_batch,
            hyperparameters,
            trial_key,
            settings,
            Clock(),
            prepare_model=prepare,
            on_checkpoint=snapshots.append,
        )
        final = snapshots[-1]
        if not _is_finite_tree(final.model_params, framework):
            raise RuntimeError(f"parameters are not finite after {steps} steps")
        eval_batch = synthetic(config, smoke_batch, 10**6)
        import numpy as np

        eval_batch["weights"] = np.ones(smoke_batch, np.float32)
        per_example = workload._eval_batch(
            final.model_params,
            final.model_state,
            workload._to_device(eval_batch),
            rng_lib.step_rngs(rng_lib.train_rngs(trial_key).loop, steps).eval,
        )
        loss = float(np.mean(per_example["loss"])) if "loss" in per_example else math.nan
        if "loss" in per_example and not math.isfinite(loss):
            raise RuntimeError(f"eval loss is {loss} after {steps} steps")
    except Exception as e:
        return CheckResult(name, False, _describe(e, submission_path), time.perf_counter() - start)
    seconds = time.perf_counter() - start
    logged = f"; logged {len(logger.rows)} scalar row(s)" if logger.rows else ""
    detail = (
        f"batch size {batch} (smoke run at {smoke_batch}), {steps} steps on synthetic data; "
        f"eval loss {loss:.4g}{logged}"
    )
    return CheckResult(name, True, detail, seconds)


def check(
    path: str | Path,
    framework: str | None = None,
    workloads: Sequence[str] | None = None,
    tuning_search_space: str | Path | None = None,
    ruleset: str = "external",
    steps: int = 3,
    batch_cap: int = 8,
) -> tuple[Path, str, list[CheckResult]]:
    """Run every check; return (submission file, framework, results)."""
    sub_path = resolve_submission(path)
    framework = framework or infer_framework(sub_path)
    names = list(workloads) if workloads else default_workloads(framework)
    for name in names:
        registry.get_config(name)  # unknown names are bad input (exit 2), not a failed check
    rng_lib.configure_process(framework)
    random_utils.set_framework(framework)
    results = []

    start = time.perf_counter()
    try:
        module = submission.load_submission(sub_path)
    except submission.SubmissionError as e:
        results.append(CheckResult("submission module", False, str(e).replace(f"{sub_path}: ", "")))
        return sub_path, framework, results
    defined = [
        f
        for f in (*spec.REQUIRED_SUBMISSION_FUNCTIONS, *spec.OPTIONAL_SUBMISSION_FUNCTIONS)
        if callable(getattr(module, f, None))
    ]
    results.append(
        CheckResult(
            "submission module", True, "defines " + ", ".join(defined), time.perf_counter() - start
        )
    )

    hyperparameters = None
    if ruleset == "external":
        space_path = Path(tuning_search_space) if tuning_search_space else None
        space_path = space_path or find_search_space(sub_path)
        if space_path is None:
            results.append(
                CheckResult(
                    "search space",
                    False,
                    f"no tuning_search_space.json next to {sub_path.name} or in its parent folder; "
                    "pass --tuning_search_space FILE, or --tuning_ruleset=self",
                )
            )
            return sub_path, framework, results
        try:
            space = tuning.load_search_space(space_path)
            hyperparameters = tuning.generate_search(space, 1)[0]
        except (tuning.SearchSpaceError, ValueError) as e:
            results.append(CheckResult("search space", False, str(e)))
            return sub_path, framework, results
        point = tuning.hparams_to_dict(hyperparameters)
        results.append(
            CheckResult(
                "search space",
                True,
                f"{space_path}: {len(point)} hyperparameter(s); first point {point}",
            )
        )
    for name in names:
        results.append(
            smoke_run(module, name, framework, hyperparameters, ruleset, steps, batch_cap, sub_path)
        )
    return sub_path, framework, results


def report(sub_path: Path, framework: str, ruleset: str, results: list[CheckResult]) -> str:
    """The printed report: one PASS/FAIL line per check, then a verdict."""
    lines = [f"algoperf check {sub_path} ({framework}, {ruleset} tuning)"]
    for r in results:
        took = f" [{r.seconds:.1f}s]" if r.seconds >= 0.05 else ""
        lines.append(f"  {'PASS' if r.ok else 'FAIL'}  {r.name}: {r.detail}{took}")
    failed = sum(not r.ok for r in results)
    if failed:
        lines.append(f"result: FAIL ({failed} of {len(results)} checks failed)")
    else:
        lines.append(f"result: PASS ({len(results)} checks)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `algoperf check`."""
    parser = argparse.ArgumentParser(
        prog="algoperf check",
        description="Validate a submission without training it (no data needed).",
    )
    parser.add_argument("path", help="submission .py file, or a folder holding submission.py")
    parser.add_argument("--framework", choices=("jax", "pytorch"), default=None)
    parser.add_argument(
        "--workloads",
        default=None,
        help="comma-separated workload names (default: every base workload implemented)",
    )
    parser.add_argument("--tuning_search_space", default=None)
    parser.add_argument("--tuning_ruleset", choices=("external", "self"), default="external")
    parser.add_argument("--steps", type=int, default=3, help="smoke-run steps per workload")
    parser.add_argument(
        "--batch_size", type=int, default=8, help="cap on the smoke run's global batch size"
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.steps < 1 or args.batch_size < 1:
        raise ValueError("--steps and --batch_size must be >= 1")
    workloads = (
        [w.strip() for w in args.workloads.split(",") if w.strip()] if args.workloads else None
    )
    sub_path, framework, results = check(
        args.path,
        framework=args.framework,
        workloads=workloads,
        tuning_search_space=args.tuning_search_space,
        ruleset=args.tuning_ruleset,
        steps=args.steps,
        batch_cap=args.batch_size,
    )
    print(report(sub_path, framework, args.tuning_ruleset, results))
    return 0 if all(r.ok for r in results) else 1
