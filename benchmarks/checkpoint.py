"""Checkpoint cost: save and restore time and size on disk, MNIST with the NAdamW baseline.

For each framework the MNIST MLP and the NAdamW baseline's optimizer state (after a few steps
on synthetic batches, so moments are non-zero) are saved with `algoperf.runner.checkpoint.save`
(arrays, JSON sidecar, fsync, atomic rename) and restored into freshly built state through
`resume_point(...).restore`, the path a resumed run takes. Each is repeated and the median is
printed with the bytes written. Saving happens in the untimed logging phase, so this is logging
time; the budget it competes with is the eval period (MNIST: 10 s).

Usage: python benchmarks/checkpoint.py [--repeats 20] [--frameworks jax,pytorch]
                                       [--workload mnist]
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from algoperf import random_utils, registry  # noqa: E402
from algoperf import rng as rng_lib  # noqa: E402
from algoperf.runner import checkpoint, loop  # noqa: E402
from algoperf.runner import submission as submission_lib  # noqa: E402
from algoperf.tuning import generate_search, load_search_space  # noqa: E402


def _state(framework: str, workload_name: str):
    """(workload, module, hparams, params, model_state, optimizer_state) after 3 steps."""
    rng_lib.configure_process(framework)
    random_utils.set_framework(framework)
    config = registry.get_config(workload_name)
    workload = registry.get_workload(workload_name, framework)
    workload.attach_metrics_logger(None)
    module = submission_lib.load_submission(
        REPO / f"submissions/baselines/nadamw/{framework}/submission.py"
    )
    space = load_search_space(REPO / "submissions/baselines/nadamw/tuning_search_space_list.json")
    hparams = generate_search(space, 1)[0]
    rngs = rng_lib.train_rngs(rng_lib.trial_rng(0, framework, "external"))
    params, model_state = workload.init_model_fn(rngs.model_init)
    if framework == "jax":
        from algoperf.frameworks import jax as fjax

        params, model_state = fjax.replicate(params), fjax.replicate(model_state)
    opt = module.init_optimizer_state(workload, params, model_state, hparams, rngs.opt_init)
    synthetic = importlib.import_module(f"workloads.{config.family}.data").synthetic_batch
    for step in range(1, 4):  # global_step 1..3: the baselines log on step 0 only
        batch = workload._to_device(synthetic(config, 16, step))
        opt, params, model_state = module.update_params(
            workload=workload,
            current_param_container=params,
            current_params_types=workload.model_params_types,
            model_state=model_state,
            hyperparameters=hparams,
            batch=batch,
            loss_type=workload.loss_type,
            optimizer_state=opt,
            eval_results=[],
            global_step=step,
            rng=rng_lib.step_rngs(rngs.loop, step).update,
        )
    return workload, module, hparams, rngs, params, model_state, opt


def bench(framework: str, workload_name: str, repeats: int) -> dict[str, float]:
    workload, module, hparams, rngs, params, model_state, opt = _state(framework, workload_name)
    snapshot = loop.Snapshot(
        reason="eval",
        global_step=3,
        batches_drawn=3,
        model_params=params,
        model_state=model_state,
        optimizer_state=opt,
        train_state={name: 0.0 for name in loop.RESTORED_FIELDS},
        eval_results=[],
        total_duration=0.0,
        since_last_eval=0.0,
    )
    root = Path(tempfile.mkdtemp(prefix="algoperf-ckpt-bench-"))
    save_times, restore_times, size = [], [], 0
    try:
        for i in range(repeats):
            target = root / f"run{i}"
            target.mkdir()
            t0 = time.perf_counter()
            ckpt = checkpoint.save(
                target,
                snapshot,
                framework,
                preemption_count=0,
                run_info={},
                log_rows={},
            )
            save_times.append(time.perf_counter() - t0)
            size = ckpt.size_bytes()
            # A resumed run builds fresh state first (untimed here, as in the runner it is
            # set-up), then restores into it.
            fresh_params, fresh_state = workload.init_model_fn(rngs.model_init)
            if framework == "jax":
                from algoperf.frameworks import jax as fjax

                fresh_params = fjax.replicate(fresh_params)
                fresh_state = fjax.replicate(fresh_state)
            fresh_opt = module.init_optimizer_state(
                workload, fresh_params, fresh_state, hparams, rngs.opt_init
            )
            t0 = time.perf_counter()
            restored = checkpoint.resume_point(checkpoint.latest(target), framework).restore(
                fresh_params, fresh_state, fresh_opt
            )
            if framework == "jax":
                import jax

                jax.block_until_ready(restored)
            restore_times.append(time.perf_counter() - t0)
            shutil.rmtree(target)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "save_s": statistics.median(save_times),
        "restore_s": statistics.median(restore_times),
        "bytes": size,
        "params": sum(int(p.size) for p in _leaves(params, framework)),
    }


def _leaves(params, framework):
    if framework == "jax":
        import jax
        import numpy as np

        return [np.asarray(x) for x in jax.tree.leaves(params)]
    return [p.detach().cpu().numpy() for p in params.parameters()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--frameworks", default="jax,pytorch")
    parser.add_argument("--workload", default="mnist")
    args = parser.parse_args()
    print(f"checkpoint save/restore, {args.workload}, NAdamW baseline, median of {args.repeats}")
    print(
        f"{'framework':10s} {'params':>9s} {'bytes':>11s} {'save (ms)':>10s} {'restore (ms)':>13s}"
    )
    for framework in args.frameworks.split(","):
        r = bench(framework, args.workload, args.repeats)
        print(
            f"{framework:10s} {r['params']:9d} {r['bytes']:11d} {1e3 * r['save_s']:10.1f} "
            f"{1e3 * r['restore_s']:13.1f}"
        )


if __name__ == "__main__":
    main()
