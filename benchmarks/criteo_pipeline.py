"""Criteo 1TB input pipeline: rows per second per core, prepare and read, vs what training eats.

Generates TSV rows in the real layout (`workloads.criteo1tb.testing.fixture_lines`: empty
fields, ``-1``, 8-hex categoricals), then times on one process (one core):

- ``parse``: `workloads.criteo1tb.data.parse_lines` on decompressed blocks (vectorised numpy:
  field splitting, integer parsing, Fingerprint64 of the 26 categoricals, float32 rounding);
- ``naive``: the same rows one line at a time in Python with ``pyfarmhash`` (upstream's
  preprocessing written plainly), for the side-by-side ratio;
- ``prepare``: `convert_day` on a ``day_N.gz`` of the rows (gzip decompression + parse + shard
  writes), the work ``algoperf datasets prepare criteo1tb`` does per row;
- ``read``: `train_batches` from the prepared shards (memory-mapped, batches in upstream's
  (B, 39) float32 layout).

It prints each rate, the ratio to ``naive``, how many training steps per second one core's
``read`` rate feeds at upstream's 262,144 rows a step (the baseline's global batch on 8
accelerators), that rate against the rows per second those 8 accelerators consume at the
baseline's step time in upstream's published v0.6 logs (0.973 s a step), and the hours
``prepare`` needs for all 4,373,472,329 rows on 1 to 64 cores (days convert independently:
``--criteo1tb_workers N`` runs N of them at once, up to 24).

Usage: python benchmarks/criteo_pipeline.py [--rows 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from workloads.criteo1tb import data, testing  # noqa: E402

TOTAL_ROWS = 4_195_197_692 + 178_274_637  # train days 0-22 + day 23
UPSTREAM_ROWS_PER_STEP = 262_144
# JAX NAdamW baseline in upstream's published v0.6 logs (8x V100, external tuning, study 0,
# trial 1): 7,822 steps in 7,610.6 s of submission time.
UPSTREAM_STEP_S = 7_610.6 / 7_822


def _naive(lines: list[str]) -> None:
    import farmhash

    for line in lines:
        f = line.split("\t")
        _ = [np.log(np.float32(max(float(v or 0), 0.0)) + 1) for v in f[1:14]]
        _ = [
            int(np.float32(farmhash.fingerprint64((v or "00000000") + str(c)) % vocab))
            for c, (v, vocab) in enumerate(zip(f[14:], data.RAW_VOCAB_SIZES, strict=True))
        ]


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    lines = testing.fixture_lines(np.random.default_rng(0), args.rows)
    buf = ("\n".join(lines) + "\n").encode()
    n = len(lines)
    rates = {}
    rates["parse"] = n / _best(lambda: data.parse_lines(buf), args.repeats)
    few = lines[: max(1, n // 20)]
    rates["naive"] = len(few) / _best(lambda: _naive(few), 1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = root / "day_0.gz"
        with gzip.open(src, "wb", compresslevel=6) as f:
            f.write(buf)
        out = root / "criteo1tb"
        out.mkdir()
        rates["prepare"] = n / _best(
            lambda: data.convert_day(src, out, 0, rows_per_file=n), args.repeats
        )
        # A prepared dataset of this one day, read as training batches.
        for d in range(1, data.NUM_DAYS):
            (root / f"day_{d}.gz").write_bytes(src.read_bytes() if d == 23 else b"")
        data.write_manifest(
            out,
            [f"day_0_00.{k}.npy" for k in ("labels", "dense", "cat")],
            day_files={str(d): [n] if d == 0 else [] for d in range(data.NUM_DAYS)},
        )
        batch = 8192
        steps = n // batch

        def read() -> None:
            it = data.train_batches(root, batch, seed=0)
            for _ in range(steps):
                next(it)

        rates["read"] = steps * batch / _best(read, args.repeats)

    print(f"criteo pipeline, {n:,} generated rows, one process (best of {args.repeats})")
    print(f"{'stage':<8} {'rows/s/core':>14} {'vs naive':>9}")
    for stage, rate in rates.items():
        print(f"{stage:<8} {rate:>14,.0f} {rate / rates['naive']:>8.1f}x")
    need = UPSTREAM_ROWS_PER_STEP / UPSTREAM_STEP_S
    print(
        f"read: one core feeds {rates['read'] / UPSTREAM_ROWS_PER_STEP:.2f} steps/s at "
        f"{UPSTREAM_ROWS_PER_STEP:,} rows a step (upstream's baseline batch on 8 accelerators)"
    )
    print(
        f"upstream consumption (8 accelerators, {UPSTREAM_STEP_S:.3f} s/step): {need:,.0f} rows/s; "
        f"one core's read = {rates['read'] / need:.2f}x that"
    )
    for cores in (1, 8, 24, 64):
        hours = TOTAL_ROWS / (rates["prepare"] * min(cores, data.NUM_DAYS)) / 3600
        print(f"prepare all {TOTAL_ROWS:,} rows on {cores:>2} cores: {hours:6.1f} h")
    print(
        "(cores above 1: `--criteo1tb_workers N` converts N days at once, so the projection "
        "assumes per-process rates hold and the disk keeps up; at most 24 days in parallel)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
