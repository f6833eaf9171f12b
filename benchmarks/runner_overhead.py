"""Runner overhead: per-step time of `train_once` vs a bare loop doing the same model step on MNIST.

For each framework the NAdamW baseline's `update_params` on the MNIST MLP is driven (a) by the
runner's timed loop as `algoperf run` calls it (per-step RNG derivation, `data_selection`,
keyword call, stop-flag poll, clock reads, bookkeeping, the first eval after step 1; later evals
pushed out of the way by a huge eval period) and (b) by a bare Python loop calling `next(input_queue)` and `update_params` with
fixed arguments. Both build a fresh trial (input queue, model, optimizer state) the same way.

What is compared is the steady state: steps 2..N, between two synchronised clock readings.
Step 1 is left out of both because it is where a JAX submission compiles its step (a new
optimizer update function per trial): 0.3-0.5 s that both loops pay identically, whose
run-to-run spread alone is larger than the overhead being measured. For the runner the
steady-state time is read from its own accounting: submission time at the end minus the score
logged at the eval after step 1 (the clock is synchronised at both points). Step 1 also holds
the first train batch, which the runner draws inside the timed region as upstream does (pipeline
start-up is the submission's), so leaving it out keeps the figure a steady-state one. The runner
runs with its defaults: PyTorch waits for the device at every step end (upstream's timing; a
no-op on CPU), JAX at eval points.

Runs come in pairs, the order inside a pair alternating (runner then bare, bare then runner,
...); each pair gives a ratio runner/bare. Printed: the median per-step times, the median ratio
(goal: <= 1.02) with a 95% bootstrap interval of that median, and the harness cost per step:
the same two loops driving an `update_params` that does nothing (runner minus bare, in us; this
is the runner's own work per step, free of the model step's run-to-run noise, which on a
contended 2-core machine is larger than the overhead itself).

Usage: python benchmarks/runner_overhead.py [--steps 1000] [--repeats 31] [--frameworks jax,pytorch]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from algoperf import random_utils, registry  # noqa: E402
from algoperf import rng as rng_lib  # noqa: E402
from algoperf.runner import clock as clock_lib  # noqa: E402
from algoperf.runner import submission as submission_lib  # noqa: E402
from algoperf.runner.config import RunConfig  # noqa: E402
from algoperf.runner.loop import LiveStatus, LoopSettings, train_once  # noqa: E402
from algoperf.runner.trial import StopGuard  # noqa: E402
from algoperf.tuning import generate_search, load_search_space  # noqa: E402


def _hparams():
    space = load_search_space(REPO / "submissions/baselines/nadamw/tuning_search_space_list.json")
    return generate_search(space, 1)[0]


def _noop_update_params(
    workload,
    current_param_container,
    current_params_types,
    model_state,
    hyperparameters,
    batch,
    loss_type,
    optimizer_state,
    eval_results,
    global_step,
    rng,
):
    """An `update_params` that does nothing: what is left of a step is harness and input work."""
    return optimizer_state, current_param_container, model_state


def bench(
    framework: str, data_dir: Path, steps: int, repeats: int, noop: bool = False
) -> list[tuple[float, float]]:
    """(runner, bare) seconds per steady-state step for each of `repeats` pairs.

    The order inside a pair alternates (runner first, then bare first, ...). With `noop` the
    submission's `update_params` is replaced by one that returns its inputs.
    """
    rng_lib.configure_process(framework)
    random_utils.set_framework(framework)
    config = registry.get_config("mnist").variant("mnist", eval_period_time_sec=10**9)
    workload = registry.workload_class("mnist", framework)(config=config)
    module = submission_lib.load_submission(
        REPO / f"submissions/baselines/nadamw/{framework}/submission.py"
    )
    if noop:
        module = types.SimpleNamespace(**vars(module))
        module.update_params = _noop_update_params
    hparams = _hparams()
    batch_size = submission_lib.global_batch_size(module, "mnist", "mnist", 1)
    clock = clock_lib.for_framework(framework)
    trial_rng = rng_lib.trial_rng(0, framework, "external")
    # The timing policy `algoperf run` uses by default (--timing_sync=auto).
    sync_every_step = RunConfig(
        framework=framework,
        workload="mnist",
        submission_path="-",
        experiment_dir="-",
        experiment_name="-",
        tuning_ruleset="self",
    ).sync_every_step
    settings = LoopSettings(
        budget_sec=1e9,
        data_dir=str(data_dir),
        max_global_steps=steps,
        sync_every_step=sync_every_step,
    )

    def runner() -> float:
        # As `algoperf run` calls it: stop flags polled every step, a live status updated.
        result = train_once(
            workload,
            module,
            batch_size,
            hparams,
            trial_rng,
            settings,
            clock,
            should_stop=StopGuard().code,
            live=LiveStatus(),
        )
        first_step, first_row = result.eval_results[0]
        assert first_step == 1 and result.global_step == steps, result.stop_reason
        return (result.accumulated_submission_time - first_row["score"]) / (steps - 1)

    def bare() -> float:
        rngs = rng_lib.train_rngs(trial_rng)
        queue = workload._build_input_queue(rngs.data, "train", str(data_dir), batch_size)
        params, model_state = workload.init_model_fn(rngs.model_init)
        opt = module.init_optimizer_state(workload, params, model_state, hparams, rngs.opt_init)
        types_, loss_type = workload.model_params_types, workload.loss_type
        step_rng = rng_lib.step_rngs(rngs.loop, 0).update
        update_params = module.update_params
        start = 0.0
        for step in range(steps):
            if step == 1:
                start = clock.now((opt, params, model_state))
            opt, params, model_state = update_params(
                workload,
                params,
                types_,
                model_state,
                hparams,
                next(queue),
                loss_type,
                opt,
                [],
                step,
                step_rng,
            )
        return (clock.now((opt, params, model_state)) - start) / (steps - 1)

    runner()  # warm-up: compile, caches, data loading
    bare()
    pairs = []
    for k in range(repeats):
        if k % 2:
            b = bare()
            pairs.append((runner(), b))
        else:
            pairs.append((runner(), bare()))
    return pairs


def median_ci(values: list[float], seed: int = 0, draws: int = 10_000) -> tuple[float, float]:
    """95% bootstrap interval of the median (percentile method, seeded)."""
    rng = np.random.default_rng(seed)
    data = np.asarray(values)
    medians = np.median(rng.choice(data, size=(draws, len(data)), replace=True), axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(low), float(high)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--frameworks", default="jax,pytorch")
    args = parser.parse_args()
    from workloads.mnist.testing import write_fixture

    with tempfile.TemporaryDirectory() as tmp:
        write_fixture(tmp, "mnist", full_size=True)
        print(
            f"{'framework':10s} {'runner ms/step':>15s} {'bare ms/step':>13s} {'ratio':>7s} "
            f"{'95% CI':>15s} {'harness us/step':>16s}"
        )
        for framework in args.frameworks.split(","):
            pairs = bench(framework, Path(tmp), args.steps, args.repeats)
            ratios = [r / b for r, b in pairs]
            low, high = median_ci(ratios)
            noop = bench(framework, Path(tmp), 5 * args.steps, 5, noop=True)
            harness = statistics.median(r - b for r, b in noop)
            print(
                f"{framework:10s} {1e3 * statistics.median(r for r, _ in pairs):15.3f} "
                f"{1e3 * statistics.median(b for _, b in pairs):13.3f} "
                f"{statistics.median(ratios):7.3f} {f'{low:.3f}..{high:.3f}':>15s} "
                f"{1e6 * harness:16.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
