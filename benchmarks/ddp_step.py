"""DDP step time on a CPU: 2 gloo ranks under torchrun vs 1 process, same global batch.

Each configuration runs the NAdamW baseline's `update_params` on the MNIST MLP over synthetic
batches (every rank takes its slice of the global batch, as in `algoperf run`), warms up, then
times `--steps` steps with the runner's clock (under DDP the max over ranks). Configurations:
1 process with 1 intra-op thread, 1 process with 2 threads (the same cores as 2 ranks), and
2 DDP ranks with 1 thread each. Printed: ms per step and the ratio to the 1-process times.

On a 2-core CPU the MLP step is tiny, so DDP mostly adds the gradient all-reduce (gloo, TCP on
localhost) and the per-step clock all-reduce; the ratio shows that cost, not a GPU speed-up.

Usage: python benchmarks/ddp_step.py [--steps 300] [--batch_sizes 16,256,2048]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def worker(batch_size: int, steps: int, warmup: int, repeats: int) -> None:
    """Runs inside each process (under torchrun or alone); rank 0 prints one JSON line."""
    from algoperf import random_utils, registry
    from algoperf import rng as rng_lib
    from algoperf.frameworks import pytorch as fpt
    from algoperf.runner import clock as clock_lib
    from algoperf.runner import submission as submission_lib
    from algoperf.tuning import generate_search, load_search_space
    from workloads.mnist import data

    info = fpt.setup()
    fpt.init(info)
    rng_lib.configure_process("pytorch")
    random_utils.set_framework("pytorch")
    config = registry.get_config("mnist")
    workload = registry.get_workload("mnist", "pytorch")
    workload.attach_metrics_logger(None)
    module = submission_lib.load_submission(
        REPO / "submissions/baselines/nadamw/pytorch/submission.py"
    )
    space = load_search_space(REPO / "submissions/baselines/nadamw/tuning_search_space_list.json")
    hparams = generate_search(space, 1)[0]
    rngs = rng_lib.train_rngs(rng_lib.trial_rng(0, "pytorch", "external"))
    params, model_state = workload.init_model_fn(rngs.model_init)
    opt = module.init_optimizer_state(workload, params, model_state, hparams, rngs.opt_init)
    batches = [workload._to_device(data.synthetic_batch(config, batch_size, i)) for i in range(8)]
    clock = clock_lib.for_framework("pytorch")

    def step(k: int) -> None:
        nonlocal opt, params, model_state
        opt, params, model_state = module.update_params(
            workload=workload,
            current_param_container=params,
            current_params_types=workload.model_params_types,
            model_state=model_state,
            hyperparameters=hparams,
            batch=batches[k % len(batches)],
            loss_type=workload.loss_type,
            optimizer_state=opt,
            eval_results=[],
            global_step=k + 1,  # the baselines log at step 0 only
            rng=None,
        )

    for k in range(warmup):
        step(k)
    per_step = []
    for _ in range(repeats):
        fpt.barrier()
        t0 = clock.now()
        for k in range(steps):
            step(k)
            clock.peek()  # the runner reads (and under DDP reduces) the clock every step
        per_step.append((clock.now() - t0) / steps)
    if info.rank == 0:
        print(json.dumps({"ms": 1e3 * statistics.median(per_step), "world": info.world_size}))
    fpt.shutdown()


def _measure(batch_size: int, steps: int, procs: int, threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    me = [str(Path(__file__).resolve()), "--worker", f"--batch_sizes={batch_size}"]
    me.append(f"--steps={steps}")
    if procs == 1:
        cmd = [sys.executable, *me]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={procs}",
            *me,
        ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])["ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch_sizes", default="16,256,2048")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.worker:
        worker(sizes[0], args.steps, warmup=30, repeats=3)
        return
    print(f"DDP step time on CPU (gloo), MNIST MLP + NAdamW baseline, {args.steps} steps x 3")
    print(
        f"{'global batch':>12s} {'1p x1t (ms)':>12s} {'1p x2t (ms)':>12s} {'2 ranks (ms)':>13s} "
        f"{'2r / 1p1t':>10s} {'2r / 1p2t':>10s}"
    )
    for b in sizes:
        one = _measure(b, args.steps, 1, 1)
        one2 = _measure(b, args.steps, 1, 2)
        two = _measure(b, args.steps, 2, 1)
        print(f"{b:12d} {one:12.3f} {one2:12.3f} {two:13.3f} {two / one:10.2f} {two / one2:10.2f}")


if __name__ == "__main__":
    main()
