"""Host-to-device batch placement in JAX: `jax.device_put` vs the back-end's `shard_batch`.

Every JAX input pipeline hands each numpy batch to `algoperf.frameworks.jax.shard_batch`, on
the clock. `shard_batch` sends small host batches (<= `SMALL_BATCH_BYTES`) through a jitted
identity with the batch sharding (jit's C++ argument path, which copies) and larger ones
through `jax.device_put` (a Python path, which on a CPU places numpy memory without copying).
For batches shaped like the workloads' (MNIST b16: the jitted path; CIFAR b128 and ImageNet b8
at 224px: `device_put`, so about 1.0), each method places the same batch `--n` times in
alternating rounds; the median time per batch and the ratio device_put / shard_batch
(> 1: shard_batch is faster) are printed.

Usage: python benchmarks/jax_batch_transfer.py [--n 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax

from algoperf.frameworks import jax as fjax

SHAPES = {
    "mnist b16": ((16, 28, 28, 1), 16),
    "cifar b128": ((128, 32, 32, 3), 128),
    "imagenet b8": ((8, 224, 224, 3), 8),
}


def _batch(shape: tuple[int, ...], rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "inputs": rng.normal(size=shape).astype(np.float32),
        "targets": rng.integers(0, 10, size=rows).astype(np.int32),
        "weights": np.ones(rows, np.float32),
    }


def _per_batch(place, batch: dict[str, np.ndarray], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        out = place(batch)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sharding = fjax.batch_sharding()
    print(f"{'batch':12s} {'device_put us':>14s} {'shard_batch us':>15s} {'ratio':>7s}")
    for name, (shape, rows) in SHAPES.items():
        batch = _batch(shape, rows)
        n = max(20, args.n * 16 // rows)

        def put(b: dict[str, np.ndarray]) -> dict[str, jax.Array]:
            return jax.device_put(b, sharding)

        put(batch), fjax.shard_batch(batch)  # warm-up (shard_batch compiles once per shape)
        a, b = [], []
        for _ in range(args.rounds):
            a.append(_per_batch(put, batch, n))
            b.append(_per_batch(fjax.shard_batch, batch, n))
        dp, sb = statistics.median(a), statistics.median(b)
        print(f"{name:12s} {1e6 * dp:14.1f} {1e6 * sb:15.1f} {dp / sb:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
