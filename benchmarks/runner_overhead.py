"""Runner overhead: per-step time of `train_once` vs a bare loop doing the same model step on MNIST.

For each framework the NAdamW baseline's `update_params` on the MNIST MLP is driven (a) by the
runner's timed loop (RNG derivation, `data_selection`, keyword call, clock reads with device
sync, bookkeeping; evals pushed out of the way by a huge eval period) and (b) by a bare Python
loop calling `next(input_queue)` and `update_params` with fixed arguments. Both use the same
workload object, input pipeline and compiled step, after a warm-up. Runs alternate (a, b, a, b,
...) and the median per-step times are compared; the ratio runner/bare is printed (goal: <= 1.02).

Usage: python benchmarks/runner_overhead.py [--steps 2000] [--repeats 5] [--frameworks jax,pytorch]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from algoperf import random_utils, registry  # noqa: E402
from algoperf import rng as rng_lib  # noqa: E402
from algoperf.runner import clock as clock_lib  # noqa: E402
from algoperf.runner import submission as submission_lib  # noqa: E402
from algoperf.runner.loop import LoopSettings, train_once  # noqa: E402
from algoperf.tuning import generate_search, load_search_space  # noqa: E402


def _hparams():
    space = load_search_space(REPO / "submissions/baselines/nadamw/tuning_search_space_list.json")
    return generate_search(space, 1)[0]


def bench(framework: str, data_dir: Path, steps: int, repeats: int) -> tuple[float, float]:
    rng_lib.configure_process(framework)
    random_utils.set_framework(framework)
    config = registry.get_config("mnist").variant("mnist", eval_period_time_sec=10**9)
    workload = registry.workload_class("mnist", framework)(config=config)
    module = submission_lib.load_submission(
        REPO / f"submissions/baselines/nadamw/{framework}/submission.py"
    )
    hparams = _hparams()
    batch_size = submission_lib.global_batch_size(module, "mnist", "mnist", 1)
    clock = clock_lib.for_framework(framework)
    trial_rng = rng_lib.trial_rng(0, framework, "external")
    settings = LoopSettings(budget_sec=1e9, data_dir=str(data_dir), max_global_steps=steps)

    def runner() -> float:
        result = train_once(workload, module, batch_size, hparams, trial_rng, settings, clock)
        return result.accumulated_submission_time / steps

    def bare() -> float:
        rngs = rng_lib.train_rngs(trial_rng)
        queue = workload._build_input_queue(rngs.data, "train", str(data_dir), batch_size)
        params, model_state = workload.init_model_fn(rngs.model_init)
        opt = module.init_optimizer_state(workload, params, model_state, hparams, rngs.opt_init)
        types, loss_type = workload.model_params_types, workload.loss_type
        step_rng = rng_lib.step_rngs(rngs.loop, 0).update
        clock.now((opt, params))
        start = time.perf_counter()
        for step in range(steps):
            opt, params, model_state = module.update_params(
                workload,
                params,
                types,
                model_state,
                hparams,
                next(queue),
                loss_type,
                opt,
                [],
                step,
                step_rng,
            )
        clock.now((opt, params, model_state))
        return (time.perf_counter() - start) / steps

    runner()  # warm-up: compile, caches, data loading
    bare()
    a, b = [], []
    for _ in range(repeats):
        a.append(runner())
        b.append(bare())
    return statistics.median(a), statistics.median(b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frameworks", default="jax,pytorch")
    args = parser.parse_args()
    from workloads.mnist.testing import write_fixture

    with tempfile.TemporaryDirectory() as tmp:
        write_fixture(tmp, "mnist", full_size=True)
        print(f"{'framework':10s} {'runner ms/step':>15s} {'bare ms/step':>13s} {'ratio':>7s}")
        for framework in args.frameworks.split(","):
            runner_t, bare_t = bench(framework, Path(tmp), args.steps, args.repeats)
            print(
                f"{framework:10s} {1e3 * runner_t:15.3f} {1e3 * bare_t:13.3f} "
                f"{runner_t / bare_t:7.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
