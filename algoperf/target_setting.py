"""Set a workload's targets the way upstream AlgoPerf does, on this machine.

Protocol (upstream's, scaled down): tune a baseline with ``--num_trials`` quasi-random points of
its search space; re-run the best point ``--num_reruns`` times with different seeds; the
validation target is the median over the re-runs of each run's best validation metric; the test
target is the worst test metric among the re-runs that reached the validation target (taken at
each such run's best validation eval). Runs are step-based, like upstream's target-setting runs
(``--max_global_steps``, default the workload's step hint), so the targets do not depend on how
busy the machine was; targets are disabled during the runs so that no run stops early.

Usage:
  python -m algoperf.target_setting --workload fashion_mnist --framework jax \
      --submission submissions/baselines/nadamw/jax/submission.py \
      --search_space submissions/baselines/nadamw/tuning_search_space.json \
      --num_trials 16 --num_reruns 10 --output targets_fashion_mnist.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from algoperf import random_utils, registry, tuning
from algoperf import rng as rng_lib
from algoperf.runner import clock as clock_lib
from algoperf.runner import submission as submission_lib
from algoperf.runner.loop import LoopSettings, train_once


def one_run(
    name: str,
    framework: str,
    module: Any,
    hparams: Any,
    seed: int,
    data_dir: str,
    max_steps: int,
    eval_period: float,
) -> dict[str, Any]:
    """Train once with targets disabled; return the best validation eval and its test metric."""
    config = registry.get_config(name, data_dir=data_dir)
    sign = 1.0 if config.maximize else -1.0
    unreachable = sign * float("inf")
    run_config = config.variant(
        config.name,
        validation_target_value=unreachable,
        test_target_value=unreachable,
        eval_period_time_sec=eval_period,
    )
    workload = registry.workload_class(name, framework)(config=run_config)
    batch = submission_lib.global_batch_size(module, name, registry.get_base_workload_name(name), 1)
    result = train_once(
        workload,
        module,
        batch,
        hparams,
        rng_lib.trial_rng(seed, framework, "external"),
        LoopSettings(budget_sec=float("inf"), data_dir=data_dir, max_global_steps=max_steps),
        clock_lib.for_framework(framework),
    )
    metric = config.target_metric_name
    rows = [row for _, row in result.eval_results]
    best = max(rows, key=lambda r: sign * r[f"validation/{metric}"])
    return {
        "seed": seed,
        "best_validation": best[f"validation/{metric}"],
        # None when the workload has no test split (finewebedu_lm, lm_bible).
        "test_at_best_validation": best.get(f"test/{metric}"),
        "step_of_best": best["global_step"],
        "submission_time_sec": result.accumulated_submission_time,
        "steps": result.global_step,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m algoperf.target_setting", description=__doc__)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--framework", default="jax", choices=("jax", "pytorch"))
    parser.add_argument("--submission", required=True)
    parser.add_argument("--search_space", required=True)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--num_trials", type=int, default=16)
    parser.add_argument("--num_reruns", type=int, default=10)
    parser.add_argument("--max_global_steps", type=int, default=None)
    parser.add_argument("--eval_period_sec", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    config = registry.get_config(args.workload, data_dir=args.data_dir)
    rng_lib.configure_process(args.framework)
    random_utils.set_framework(args.framework)
    module = submission_lib.load_submission(args.submission)
    steps = args.max_global_steps or config.step_hint
    points = tuning.generate_search(tuning.load_search_space(args.search_space), args.num_trials)
    sign = 1.0 if config.maximize else -1.0

    def run(hparams: Any, seed: int) -> dict[str, Any]:
        return one_run(
            args.workload,
            args.framework,
            module,
            hparams,
            seed,
            args.data_dir,
            steps,
            args.eval_period_sec,
        )

    tuning_runs = []
    for k, hparams in enumerate(points):
        r = run(hparams, args.seed)
        r["hparams"] = tuning.hparams_to_dict(hparams)
        tuning_runs.append(r)
        print(f"tuning trial {k + 1}: best validation {r['best_validation']:.4f}", flush=True)
    best_index = max(range(len(points)), key=lambda k: sign * tuning_runs[k]["best_validation"])
    best = points[best_index]
    reruns = [run(best, args.seed + 1000 + i) for i in range(args.num_reruns)]
    for i, r in enumerate(reruns):
        print(f"rerun {i + 1}: best validation {r['best_validation']:.4f}", flush=True)
    validation_target = statistics.median(r["best_validation"] for r in reruns)
    reached = [r for r in reruns if sign * r["best_validation"] >= sign * validation_target]
    tests = [r["test_at_best_validation"] for r in reached]
    test_target = None if None in tests else min(sign * t for t in tests) * sign
    report = {
        "workload": args.workload,
        "framework": args.framework,
        "submission": args.submission,
        "search_space": args.search_space,
        "max_global_steps": steps,
        "validation_target": validation_target,
        "test_target": test_target,
        "best_trial": best_index + 1,
        "best_hparams": tuning.hparams_to_dict(best),
        "tuning_runs": tuning_runs,
        "reruns": reruns,
    }
    test_text = "none (no test split)" if test_target is None else f"{test_target:.6g}"
    print(f"validation target {validation_target:.6g}, test target {test_text}")
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
