"""Image input pipeline: decoded and augmented images per second, per core and with N workers.

Generates ImageNet-like JPEGs (photo-like content, 500x375, quality 90, ~100 files) in a temporary
folder and runs the real ImageNet batch function (`workloads.imagenet.data.ImageBatchFn`) through
`algoperf.data.loader.ParallelBatchLoader`:

* ``resnet``: random resized crop 224 + flip + normalise;
* ``vit``: the same + RandAugment (2 ops, magnitude 10) + mixup (soft targets);
* ``eval``: resize 256 + centre crop 224 + normalise.

For each pipeline it prints images/s in the calling process (one core, no pool) and with N worker
processes and N threads (after a warm-up batch, so pool start-up is excluded), each also as images
per CPU-second (CPU time of the process and its workers), which stays meaningful on a shared or
busy machine where wall-clock rates do not. It also measures JPEG reduce-on-decode (Pillow
``draft``) on large 1600x1200 images: speed with and without it and the mean absolute pixel
difference of the result. Finally it prints what 8 accelerators would
need: the global batch of 1,024 at upstream's measured step time on 8 V100s (ResNet-50 0.339 s,
ViT-S/16 0.458 s per step; reference §15) as images/s, and the cores that implies at the measured
images per CPU-second of one core (and, for eval, the cores that finish one ResNet evaluation of
all three splits in a minute).

Usage: python benchmarks/image_pipeline.py [--images 100] [--workers N] [--batch 64] [--batches 6]
       [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from algoperf.data import images  # noqa: E402
from algoperf.data.loader import ParallelBatchLoader  # noqa: E402
from workloads.imagenet.data import BatchItem, ImageBatchFn  # noqa: E402
from workloads.imagenet.spec import RESNET  # noqa: E402

# Upstream's measured seconds per step at global batch 1,024 on 8x V100 (reference §15).
STEP_TIME = {"resnet": 0.339, "vit": 0.458}
REFERENCE_BATCH = 1024


def photo_jpeg(path: Path, width: int, height: int, seed: int, quality: int = 90) -> None:
    """A JPEG about as detailed as an ImageNet photo (~80 KiB at 500x375, quality 90).

    Detail scales with the image (a larger image shows the same kind of scene at a higher
    resolution), so reduce-on-decode is measured on realistic rather than pixel-level texture.
    """
    rng = np.random.default_rng(seed)
    cell = max(4, round(4 * width / 500))
    large = rng.uniform(0, 255, (height // (12 * cell) + 2, width // (12 * cell) + 2, 3))
    fine = rng.uniform(0, 255, (height // cell + 2, width // cell + 2, 3))
    large, fine = large.astype(np.uint8), fine.astype(np.uint8)
    up = Image.Resampling.BICUBIC
    img = 0.5 * np.asarray(Image.fromarray(large).resize((width, height), up), np.float32)
    img += 0.5 * np.asarray(Image.fromarray(fine).resize((width, height), up), np.float32)
    img += rng.normal(0, 6, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=quality)


def make_files(root: Path, count: int, size: tuple[int, int], prefix: str) -> list[bytes]:
    folder = root / prefix
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        photo_jpeg(folder / f"{i:04d}.JPEG", *size, seed=i)
        paths.append(f"{prefix}/{i:04d}.JPEG".encode())
    return paths


def batch_fn(root: Path, kind: str, draft_gap: float | None = images.DEFAULT_DRAFT_GAP):
    return ImageBatchFn(
        root=str(root),
        train=kind != "eval",
        mean=RESNET.train_mean,
        std=RESNET.train_stddev,
        randaugment=kind == "vit",
        mixup_alpha=0.2 if kind == "vit" else None,
        draft_gap=draft_gap,
    )


def items(paths: list[bytes], batch: int, train: bool):
    """Endless batches cycling over the files (different steps: different augmentations)."""
    pool = np.array(paths)
    for step in itertools.count():
        idx = (np.arange(batch) + step * batch) % len(pool)
        weights = None if train else np.ones(batch, np.float32)
        yield BatchItem(pool[idx], np.zeros(batch, np.int32), weights, 0, step, 0, batch)


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and all its live descendants (pool workers)."""
    total = time.process_time()
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def throughput(
    fn, paths, batch: int, batches: int, workers: int, backend: str, repeats: int
) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU second), each the best of `repeats` runs of
    `batches` batches after a warm-up batch. The CPU figure (time of the process and its workers)
    depends much less than the wall-clock one on what else runs on the machine."""
    loader = ParallelBatchLoader(
        fn, items(paths, batch, fn.train), num_workers=workers, backend=backend, prefetch=2
    )
    best_wall = best_cpu = 0.0
    with loader:
        next(loader)
        for _ in range(repeats):
            cpu, start = cpu_seconds(), time.perf_counter()
            for _ in range(batches):
                next(loader)
            elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
            best_wall = max(best_wall, batches * batch / elapsed)
            best_cpu = max(best_cpu, batches * batch / cpu)
    return best_wall, best_cpu


def draft_effect(
    root: Path, paths: list[bytes], repeats: int = 3
) -> dict[str, tuple[float, float]]:
    """For eval and train views of large JPEGs: (speed-up, mean |difference|) of each draft gap."""
    result = {}
    files = [root / p.decode() for p in paths]

    def run(view, gap):
        out = []
        for k, f in enumerate(files):
            if view == "eval":
                img = images.eval_crop(f, draft_gap=gap)
            else:
                img = images.train_crop(f, images.example_rng(0, 0, k), draft_gap=gap)
            out.append(np.asarray(img, np.float32))
        return out

    for view in ("eval", "train"):
        timings = {}
        outputs = {}
        for gap in (None, 2.0, 1.0):
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                outputs[gap] = run(view, gap)
                best = min(best, time.perf_counter() - start)
            timings[gap] = best
        for gap in (2.0, 1.0):
            diff = float(
                np.mean([np.abs(a - b).mean() for a, b in zip(outputs[gap], outputs[None])])
            )
            result[f"{view} gap {gap:g}"] = (timings[None] / timings[gap], diff)
    return result


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100, help="JPEG files to generate")
    parser.add_argument("--size", default="500x375", help="their size, WxH")
    parser.add_argument("--workers", type=int, default=usable_cores(), help="pool size")
    parser.add_argument("--batch", type=int, default=64, help="images per batch")
    parser.add_argument("--batches", type=int, default=6, help="timed batches per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements; the best is kept")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))

    with tempfile.TemporaryDirectory(prefix="algoperf-bench-") as tmp:
        root = Path(tmp)
        paths = make_files(root, args.images, size, "train")
        big = make_files(root, 12, (1600, 1200), "big")
        mean_kb = np.mean([(root / p.decode()).stat().st_size for p in paths]) / 1024
        print(
            f"{args.images} generated JPEGs {size[0]}x{size[1]} (q90, mean {mean_kb:.0f} KiB); "
            f"batch {args.batch}; {usable_cores()} usable cores; workers {args.workers}"
        )
        header = f"{'1 core':>16} {f'{args.workers} processes':>16} {f'{args.workers} threads':>16}"
        print(f"{'pipeline':<8} {header}   images/s wall (images per CPU-second)")
        per_core = {}
        for kind in ("resnet", "vit", "eval"):
            fn = batch_fn(root, kind)
            cells = []
            for workers, backend in (
                (0, "process"),
                (args.workers, "process"),
                (args.workers, "thread"),
            ):
                wall, per_cpu = throughput(
                    fn, paths, args.batch, args.batches, workers, backend, args.repeats
                )
                cells.append(f"{wall:>7.0f} ({per_cpu:>4.0f})")
                if workers == 0:
                    per_core[kind] = per_cpu
            print(f"{kind:<8} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16}")

        print("\nJPEG reduce-on-decode on 1600x1200 images (vs full decode):")
        for name, (speedup, diff) in draft_effect(root, big).items():
            print(f"  {name:<13} x{speedup:.2f} faster, mean |difference| {diff:.3f} of 255")

        print("\nWhat 8 accelerators need (global batch 1,024 at upstream's 8x V100 step time):")
        for kind, step in STEP_TIME.items():
            need = REFERENCE_BATCH / step
            cores = need / per_core[kind]
            print(
                f"  {kind:<6} {step:.3f} s/step -> {need:,.0f} images/s = {cores:.1f} cores at "
                f"{per_core[kind]:.0f} images/s/core ({cores / 8:.1f} per accelerator)"
            )
        eval_images = RESNET.num_eval_train_examples + RESNET.num_validation_examples + 10_000
        eval_need = eval_images / 60
        print(
            f"  eval   one ResNet eval ({eval_images:,} images: eval_train + validation + v2) in "
            f"60 s -> {eval_need:,.0f} images/s = {eval_need / per_core['eval']:.1f} cores"
        )


if __name__ == "__main__":
    main()
