"""fastMRI input pipeline: slices per second per core, against what 8 accelerators consume.

Writes real-shaped NYU-format volumes (k-space 640 x 368 complex64, targets 320 x 320;
`workloads.fastmri.data.write_volumes`, made from a real MRI slice), indexes them, then times the
real batch iterator (`data.numpy_batches`, in the calling thread: ``num_workers=0``):

* ``train``: shuffled batches of ``--batch`` slices (upstream's baseline: 32), each slice with
  its own Philox mask (fold-in of its index), h5 read, masked inverse FFT, crop, normalise;
* ``validation``: the in-order eval pass with the fixed eval mask (passes over a 2-volume
  validation split, chained: an eval pass never repeats a slice).

Rates are slices per CPU-second of this process (one core) and per wall second. The consumption
figure is upstream's JAX baseline on 8 V100s: a global batch of 32 slices per 0.239 s step (the
published self-tuning logs' median step time), i.e. about 134 slices/s. The pipeline runs in
`algoperf.data.loader.ParallelBatchLoader` workers in real runs, so the cores needed are that
figure divided by the per-core rate.

Usage: python benchmarks/fastmri_pipeline.py [--volumes 4] [--slices 16] [--batch 32] [--batches 6]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from algoperf.registry import get_config  # noqa: E402
from workloads.fastmri import data  # noqa: E402

UPSTREAM_STEP_S = 0.239  # JAX baseline, 8x V100, global batch 32 (self-tuning logs, median)
UPSTREAM_BATCH = 32


def _rate(batches, n: int) -> tuple[float, float]:
    """(slices per CPU-second, slices per wall second) over `n` batches."""
    next(batches)  # warm-up (file opens, first permutation)
    slices = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        b = next(batches, None)
        if b is None:
            break
        slices += int(b["weights"].sum()) if "weights" in b else len(b["inputs"])
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return slices / cpu, slices / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--volumes", type=int, default=4, help="training volumes to write")
    ap.add_argument("--slices", type=int, default=16, help="slices per volume")
    ap.add_argument("--batch", type=int, default=UPSTREAM_BATCH)
    ap.add_argument("--batches", type=int, default=6, help="timed batches per split")
    args = ap.parse_args()
    need = UPSTREAM_BATCH / UPSTREAM_STEP_S
    config = get_config("fastmri")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "fastmri"
        data.write_volumes(root / data.TRAIN_DIR, args.volumes, slices=args.slices)
        # Validation = the first 2 of 3 volumes (the third is the test split).
        data.write_volumes(root / data.VAL_DIR, 3, slices=args.slices, seed=1)
        data.build_index(root, num_validation_files=2)
        print(
            f"# {args.volumes} x {args.slices} slices, k-space 640 x 368, batch {args.batch}, "
            f"one core (num_workers=0); upstream consumes {need:.0f} slices/s "
            f"({UPSTREAM_BATCH} per {UPSTREAM_STEP_S} s step on 8 V100s)"
        )
        print(f"{'split':<11}{'slices/CPU-s':>13}{'slices/wall-s':>15}{'cores for 8 GPUs':>18}")
        for split in ("train", "validation"):
            # An eval pass covers its split once (it never cycles): chain enough passes for the
            # timed batches.
            passes = 1 if split == "train" else args.batches + 1
            batches = itertools.chain.from_iterable(
                data.numpy_batches(tmp, config, split, args.batch, 0, num_workers=0)
                for _ in range(passes)
            )
            cpu_rate, wall_rate = _rate(batches, args.batches)
            print(f"{split:<11}{cpu_rate:>13.1f}{wall_rate:>15.1f}{need / cpu_rate:>18.1f}")


if __name__ == "__main__":
    main()
