"""fastMRI knee single-coil on disk, its preparation, upstream's per-slice preprocessing, batches.

Source: the NYU fastMRI archives ``knee_singlecoil_train.tar.xz`` and ``knee_singlecoil_val.tar.xz``
(https://fastmri.med.nyu.edu/, registration required; ``knee_singlecoil_test.tar.xz`` is not
used by the benchmark). Each holds one HDF5 file per volume, ``singlecoil_<split>/<name>.h5``:

* ``kspace``: complex64 (slices, 640, W), the single-coil k-space (W varies, about 368);
* ``reconstruction_esc``: float32 (slices, 320, 320), the fully sampled reconstruction;
* attribute ``max``: the maximum of the volume's reconstruction (SSIM's data range).

Layout written by `prepare` (upstream's names)::

    <data_dir>/fastmri/
        knee_singlecoil_train/*.h5      973 volumes, 34,742 slices
        knee_singlecoil_val/*.h5        199 volumes, 7,135 slices
        index.json                      per file: slices, k-space shape, target shape
        .algoperf_manifest.json         written last: the dataset is complete

Splits as upstream: ``train`` = every slice of the training files, ``validation`` = the slices
of the first 100 validation files in sorted order (3,554), ``test`` = those of the other 99
(3,581), ``eval_train`` = a fixed random subset of the training slices (``num_examples``, 3,584).
Within a split, slices are numbered in the order of upstream's ``tf.data`` interleave over the
sorted files (32 files open at once, 64 consecutive slices from each in turn): that number is
the example index upstream folds into a training slice's mask seed.

Sizes: the workloads' data check (`check_split_sizes`) refuses data whose split sizes are not the
config's, and an eval pass covers each slice of its split at most once (never cycling), so a
partial extraction cannot pass for the benchmark's splits; `prepare` warns when the archives do
not hold 973 and 199 volumes.

Per slice (`process_slice`, upstream's ``_process_example``): a 1-D mask over the W k-space
columns keeps the ``int(0.08 W)`` centre columns and every other column with probability
``(W / 4 - n_low) / (W - n_low)`` (4x acceleration), drawn as ``stateless_uniform((W,), seed) <
p`` with TF's Philox generator (`workloads.fastmri.philox`); masked k-space -> ``ifftshift`` ->
2-D inverse FFT -> ``fftshift``, times ``sqrt(640 W)``; centre crop to the target's shape;
magnitude; the image's own mean and (population) std normalise image and target, both clipped to
[-6, 6]. Batches: 'inputs', 'targets' float32 (B, 320, 320), 'mean', 'std', 'volume_max'
float32 (B,), and 'weights' on eval splits.

Mask seeds: validation and test use the fixed seed (0, 0) as upstream, so their masks (one per
k-space width) are upstream's exactly. Training slices use ``stateless_fold_in(base, index)``
as upstream, with ``base = (data seed, 0)``; upstream's base is
``jax.random.fold_in(data_rng, 0)``, which needs JAX's threefry in the input pipeline of both
frameworks (a documented deviation; the masks' distribution is the same). Training order: an
epoch permutation of the slices (`algoperf.data.iterators.train_batches`), not upstream's
``tf.data`` shuffle buffer of 16 batches over an unsorted glob (which no other implementation
can reproduce); batch ``k`` depends on (seed, k) only, so resuming is exact.

Processing runs in `algoperf.data.loader.ParallelBatchLoader` workers (h5 files stay open per
worker). Shapes come from the files, so tiny fixtures in the same format (`write_fixture`) run
the same code with small images.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import tarfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from algoperf.data import DatasetError, iterators
from algoperf.data.download import check_free_space, manifest_status, write_manifest
from algoperf.data.loader import ParallelBatchLoader, default_num_workers
from algoperf.workload_config import WorkloadConfig
from workloads.fastmri import philox

DATASET = "fastmri"
TRAIN_DIR = "knee_singlecoil_train"
VAL_DIR = "knee_singlecoil_val"
ARCHIVES = {
    "train": ("knee_singlecoil_train.tar.xz", TRAIN_DIR),
    "val": ("knee_singlecoil_val.tar.xz", VAL_DIR),
}
INDEX_FILE = "index.json"
SPLITS = ("train", "eval_train", "validation", "test")
NUM_VALIDATION_FILES = 100
# Volumes in the NYU archives (the registered configs' slice counts are those of these files).
NUM_TRAIN_FILES = 973
NUM_VAL_FILES = 199
CENTER_FRACTION = 0.08
ACCELERATION = 4.0
EVAL_SEED = (0, 0)
CLIP = 6.0
# upstream's tf.data interleave
CYCLE_LENGTH = 32
BLOCK_LENGTH = 64
IMAGE_SHAPE = (320, 320)
# Extracted bytes per archive byte (complex k-space compresses poorly), for the space preflight.
EXTRACT_FACTOR = 1.25


def _fix_hint(data_dir: Path | str) -> str:
    return (
        f"run `algoperf datasets prepare {DATASET} --data_dir {data_dir}` with the NYU archives "
        "(see `algoperf datasets prepare --help`)"
    )


def dataset_dir(data_dir: Path | str) -> Path:
    """``<data_dir>/fastmri``, or `data_dir` itself when it holds ``knee_singlecoil_train/``."""
    data_dir = Path(data_dir).expanduser()
    if not (data_dir / DATASET).is_dir() and (data_dir / TRAIN_DIR).is_dir():
        return data_dir
    return data_dir / DATASET


# Masks and per-slice processing ---------------------------------------------------------------


def column_mask(num_cols: int, seed: Sequence[int]) -> np.ndarray:
    """Upstream's float32 (W,) column mask: 8% centre columns plus random 4x-acceleration ones."""
    cols = np.float32(num_cols)
    num_low = int(cols * np.float32(CENTER_FRACTION))  # tf.cast(float32 -> int32) truncates
    mask = np.zeros(num_cols, np.float32)
    pad = (num_cols - num_low + 1) // 2
    mask[pad : pad + num_low] = 1.0
    low = np.float32(num_low)
    prob = (cols / np.float32(ACCELERATION) - low) / (cols - low)
    accel = (philox.stateless_uniform(num_cols, seed) < prob).astype(np.float32)
    return np.maximum(mask, accel)


def process_slice(
    kspace: np.ndarray, target: np.ndarray, volume_max: float, seed: Sequence[int]
) -> dict[str, Any]:
    """One example from a k-space slice (rows, W) and its target (h, w), as upstream.

    Upstream's 2-D ``fftshift(ifft2(ifftshift(masked)))`` is computed one axis at a time (the
    shifts and transforms of the two axes commute): first along the rows for the kept columns
    only (the masked-out columns are zero, about 3/4 of them), then along the columns for the
    centre rows the crop keeps. Same values up to float32 rounding, about 3x less work.
    """
    import scipy.fft

    rows, cols = kspace.shape
    h, w = target.shape
    r0, c0 = (rows - h) // 2, (cols - w) // 2
    kept = np.flatnonzero(column_mask(cols, seed))
    # Axis 0 (rows) on the kept columns; ifftshift only permutes rows, so it commutes with the
    # column selection.
    z = np.fft.ifftshift(kspace[:, kept].astype(np.complex64, copy=False), axes=0)
    z = np.fft.fftshift(scipy.fft.ifft(z, axis=0, workers=1), axes=0)[r0 : r0 + h]
    # Axis 1 (columns): the full-width rows with zeros in the masked columns.
    full = np.zeros((h, cols), np.complex64)
    full[:, kept] = z
    image = np.fft.fftshift(
        scipy.fft.ifft(np.fft.ifftshift(full, axes=1), axis=1, workers=1), axes=1
    )
    crop = image[:, c0 : c0 + w] * np.float32(math.sqrt(np.float32(rows * cols)))
    magnitude = np.sqrt(np.square(crop.real) + np.square(crop.imag)).astype(np.float32)
    mean = magnitude.mean(dtype=np.float32)
    std = magnitude.std(dtype=np.float32)
    return {
        "inputs": np.clip((magnitude - mean) / std, -CLIP, CLIP),
        "targets": np.clip((target.astype(np.float32) - mean) / std, -CLIP, CLIP),
        "mean": mean,
        "std": std,
        "volume_max": np.float32(volume_max),
    }


def train_seed(base_seed: int, example_index: int) -> tuple[int, int]:
    """The stateless mask seed of training slice `example_index` (see the module docstring)."""
    return philox.stateless_fold_in((int(base_seed), 0), int(example_index))


# Files and the slice index --------------------------------------------------------------------


def interleave_order(counts: Sequence[int]) -> np.ndarray:
    """(file, slice) pairs in the order of ``tf.data`` interleave (32 open files, blocks of 64).

    A cycle slot whose file is exhausted passes to the next slot and opens the next file the next
    time the cycle reaches it (TF's interleave semantics; deterministic parallel interleave
    yields the same order).
    """
    out: list[tuple[int, int]] = []
    slots: list[list[int] | None] = [None] * CYCLE_LENGTH  # [file, next slice]
    next_file, open_count, slot = 0, 0, 0
    while next_file < len(counts) or open_count:
        current = slots[slot]
        if current is None:
            if next_file < len(counts):
                slots[slot] = [next_file, 0]
                next_file += 1
                open_count += 1
                continue
            slot = (slot + 1) % CYCLE_LENGTH
            continue
        f, i = current
        take = min(BLOCK_LENGTH, counts[f] - i)
        out.extend((f, j) for j in range(i, i + take))
        current[1] = i + take
        if take < BLOCK_LENGTH:  # found exhausted during this visit (TF checks lazily)
            slots[slot] = None
            open_count -= 1
        slot = (slot + 1) % CYCLE_LENGTH
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def _read_index(root: Path) -> dict[str, Any] | None:
    path = root / INDEX_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def scan_file(path: Path) -> dict[str, Any]:
    """Check one volume's h5 layout; return its slices and shapes (one-line error otherwise)."""
    import h5py

    try:
        with h5py.File(path, "r") as hf:
            missing = [k for k in ("kspace", "reconstruction_esc") if k not in hf]
            if missing:
                raise DatasetError(
                    f"{path} lacks {', '.join(missing)}: not a fastMRI single-coil volume; "
                    "delete it and prepare again"
                )
            kspace, target = hf["kspace"], hf["reconstruction_esc"]
            if kspace.ndim != 3 or kspace.dtype.kind != "c":
                raise DatasetError(
                    f"{path}: 'kspace' is {kspace.dtype} {kspace.shape}, expected complex "
                    "(slices, rows, columns); delete it and prepare again"
                )
            if target.ndim != 3 or target.shape[0] != kspace.shape[0]:
                raise DatasetError(
                    f"{path}: 'reconstruction_esc' {target.shape} does not match 'kspace' "
                    f"{kspace.shape}; delete it and prepare again"
                )
            if target.shape[1] > kspace.shape[1] or target.shape[2] > kspace.shape[2]:
                raise DatasetError(
                    f"{path}: target {target.shape[1:]} is larger than k-space "
                    f"{kspace.shape[1:]}; delete it and prepare again"
                )
            if "max" not in hf.attrs:
                raise DatasetError(f"{path} has no 'max' attribute; delete it and prepare again")
            return {
                "size": path.stat().st_size,
                "slices": int(kspace.shape[0]),
                "kspace": [int(kspace.shape[1]), int(kspace.shape[2])],
                "target": [int(target.shape[1]), int(target.shape[2])],
            }
    except OSError as e:
        raise DatasetError(
            f"{path} cannot be read as HDF5 ({e}); delete it and prepare again"
        ) from None


def _index_complete(root: Path) -> bool:
    """True when ``index.json`` exists and every volume it lists is present with its size."""
    index = _read_index(root)
    if index is None or "folders" not in index:
        return False
    for folder, entries in index["folders"].items():
        for name, entry in entries.items():
            f = root / folder / name
            if not f.is_file() or f.stat().st_size != entry.get("size"):
                return False
    return True


def build_index(
    root: Path, progress: bool = False, num_validation_files: int = NUM_VALIDATION_FILES
) -> dict[str, Any]:
    """Scan every h5 file under `root`'s split folders and write ``index.json`` atomically.

    The index records how many sorted validation files form the validation split (upstream:
    100; small fixtures use fewer so that their test split is not empty).
    """
    folders: dict[str, Any] = {}
    for folder in (TRAIN_DIR, VAL_DIR):
        files = sorted((root / folder).glob("*.h5"))
        if not files:
            raise DatasetError(f"no .h5 files in {root / folder}; {_fix_hint(root.parent)}")
        _say(progress, f"{DATASET}: checking {len(files)} volumes in {folder}")
        folders[folder] = {f.name: scan_file(f) for f in files}
    if len(folders[VAL_DIR]) <= num_validation_files:
        raise DatasetError(
            f"{root / VAL_DIR} holds {len(folders[VAL_DIR])} volumes; the validation split takes "
            f"the first {num_validation_files} and the test split the rest: extract the whole "
            f"{ARCHIVES['val'][0]}"
        )
    index = {"folders": folders, "num_validation_files": int(num_validation_files)}
    tmp = root / f".{INDEX_FILE}.tmp"
    tmp.write_text(json.dumps(index, indent=0, sort_keys=True))
    os.replace(tmp, root / INDEX_FILE)
    return index


@dataclasses.dataclass(frozen=True)
class Split:
    """The slices of one split: file paths and per-example (file, slice) in interleave order."""

    files: tuple[str, ...]
    examples: np.ndarray  # int64 (N, 2)
    target_shape: tuple[int, int]

    def __len__(self) -> int:
        return len(self.examples)


@cache
def _load_split(root: str, split: str) -> Split:
    path = Path(root)
    index = _read_index(path)
    if index is None:
        if not (path / TRAIN_DIR).is_dir():
            raise DatasetError(f"no fastMRI data in {path}; {_fix_hint(path.parent)}")
        index = build_index(path)
    folder = TRAIN_DIR if split in ("train", "eval_train") else VAL_DIR
    table = index.get("folders", {}).get(folder, {})
    names = sorted(table)
    num_val = int(index.get("num_validation_files", NUM_VALIDATION_FILES))
    if split == "validation":
        names = names[:num_val]
    elif split == "test":
        names = names[num_val:]
    if not names:
        raise DatasetError(
            f"split {split!r} has no files in {path / folder}; {_fix_hint(path.parent)}"
        )
    entries = [table[n] for n in names]
    shapes = {tuple(e["target"]) for e in entries}
    if len(shapes) != 1:
        raise DatasetError(f"{path / folder}: volumes have different target shapes {shapes}")
    files = tuple(str(path / folder / n) for n in names)
    examples = interleave_order([e["slices"] for e in entries])
    return Split(files, examples, next(iter(shapes)))  # type: ignore[arg-type]


def load_split(data_dir: Path | str, split: str) -> Split:
    """The slices of `split` (the index is read once per process)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return _load_split(str(dataset_dir(data_dir).resolve()), split)


def check_split_sizes(data_dir: Path | str, config: WorkloadConfig) -> dict[str, int]:
    """Compare every split's slice count with `config`'s; return the counts.

    ``train``, ``validation`` and ``test`` must hold exactly ``num_{train,validation,test}_examples``
    slices (upstream: 34,742 / 3,554 / 3,581) and ``eval_train`` may take at most the training
    slices, so that no eval ever repeats a slice. Raises `DatasetError` with one line naming the
    data folder, the split, both counts and the fix.
    """
    root = dataset_dir(data_dir)
    expected = {
        "train": config.num_train_examples,
        "validation": config.num_validation_examples,
        "test": config.num_test_examples,
    }
    counts = {split: len(load_split(data_dir, split)) for split in expected}
    for split, want in expected.items():
        if counts[split] != want:
            raise DatasetError(
                f"{root}: split {split!r} holds {counts[split]} slices, the workload "
                f"{config.name!r} expects {want}; the data are incomplete or not the NYU knee "
                f"single-coil set ({NUM_TRAIN_FILES} training and {NUM_VAL_FILES} validation "
                f"volumes): {_fix_hint(root.parent)} (data written by `--fixture` record their "
                "own sizes in fixture.json)"
            )
    if config.num_eval_train_examples > counts["train"]:
        raise DatasetError(
            f"{root}: split 'eval_train' takes {config.num_eval_train_examples} slices, the "
            f"training split holds {counts['train']}; set num_eval_train_examples to at most "
            f"{counts['train']} or {_fix_hint(root.parent)}"
        )
    return counts


def clear_cache() -> None:
    """Forget loaded split indices (after preparing again)."""
    _load_split.cache_clear()


# Batches ----------------------------------------------------------------------------------------

_OPEN: OrderedDict[str, Any] = OrderedDict()
_MAX_OPEN = 64


def _h5(path: str) -> Any:
    """An open h5 file, kept per process (LRU of 64 files)."""
    import h5py

    hf = _OPEN.get(path)
    if hf is None:
        hf = h5py.File(path, "r")
        _OPEN[path] = hf
        if len(_OPEN) > _MAX_OPEN:
            _OPEN.popitem(last=False)[1].close()
    else:
        _OPEN.move_to_end(path)
    return hf


@dataclasses.dataclass(frozen=True)
class BatchItem:
    """One batch: the (file, slice) of each row, each row's mask seed, eval weights."""

    files: tuple[str, ...]
    rows: np.ndarray  # int64 (B, 2)
    seeds: np.ndarray  # int64 (B, 2)
    weights: np.ndarray | None


@dataclasses.dataclass(frozen=True)
class SliceBatchFn:
    """Reads and processes the slices of a `BatchItem` (picklable; files open per worker)."""

    target_shape: tuple[int, int]

    def output_spec(self, item: BatchItem) -> dict[str, tuple[tuple[int, ...], Any]]:
        n = len(item.rows)
        spec: dict[str, tuple[tuple[int, ...], Any]] = {
            "inputs": ((n, *self.target_shape), np.float32),
            "targets": ((n, *self.target_shape), np.float32),
            "mean": ((n,), np.float32),
            "std": ((n,), np.float32),
            "volume_max": ((n,), np.float32),
        }
        if item.weights is not None:
            spec["weights"] = ((n,), np.float32)
        return spec

    def fill(self, item: BatchItem, out: Mapping[str, np.ndarray], start: int, stop: int) -> None:
        for r in range(start, stop):
            if item.weights is not None:
                out["weights"][r] = item.weights[r]
                if item.weights[r] == 0:  # padding: zeros, never read
                    for key in ("inputs", "targets", "mean", "std", "volume_max"):
                        out[key][r] = 0
                    continue
            f, s = (int(v) for v in item.rows[r])
            hf = _h5(item.files[f])
            example = process_slice(
                hf["kspace"][s],
                hf["reconstruction_esc"][s],
                float(hf.attrs.get("max", 0.0)),
                (int(item.seeds[r, 0]), int(item.seeds[r, 1])),
            )
            for key, value in example.items():
                out[key][r] = value


def _train_seeds(base_seed: int, positions: np.ndarray) -> np.ndarray:
    return np.asarray([train_seed(base_seed, int(p)) for p in positions], dtype=np.int64)


def _item(
    files: Sequence[str], rows: np.ndarray, seeds: np.ndarray, weights: np.ndarray | None
) -> BatchItem:
    """A work item naming only the files its rows read (items are pickled to the workers)."""
    used, local = np.unique(rows[:, 0], return_inverse=True)
    compact = np.stack([local.reshape(-1), rows[:, 1]], axis=1).astype(np.int64)
    return BatchItem(tuple(files[int(f)] for f in used), compact, seeds, weights)


def _eval_total(split_data: Split, split: str, num_examples: int | None) -> int:
    """Slices one eval pass covers: `num_examples` (default all), never more than the split."""
    n = len(split_data)
    total = n if num_examples is None else int(num_examples)
    if not 0 <= total <= n:
        folder = Path(split_data.files[0]).parent
        raise DatasetError(
            f"{folder}: the {split} eval asks for {total} slices, the split holds {n} (an eval "
            "never repeats a slice); size the workload config to the data "
            "(`FastmriData.check_data` compares them)"
        )
    return total


def _items(
    split_data: Split,
    split: str,
    batch_size: int,
    seed: int,
    num_examples: int | None,
    start_step: int,
) -> Iterator[BatchItem]:
    n = len(split_data)
    if split == "train":
        batches = iterators.train_batches(
            {"index": np.arange(n)}, batch_size, seed, start_step=start_step
        )
        for b in batches:
            idx = b["index"]
            yield _item(split_data.files, split_data.examples[idx], _train_seeds(seed, idx), None)
        return
    total = _eval_total(split_data, split, num_examples)
    if split == "eval_train":
        positions = iterators.epoch_permutation(n, seed, 0)[:total]
        seeds = _train_seeds(seed, positions)
    else:
        positions = np.arange(total)
        seeds = np.tile(np.asarray(EVAL_SEED, np.int64), (total, 1))
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        pad = batch_size - (stop - start)
        rows = split_data.examples[positions[start:stop]]
        s = seeds[start:stop]
        weights = np.ones(stop - start, np.float32)
        if pad:
            rows = np.concatenate([rows, np.zeros((pad, 2), np.int64)])
            s = np.concatenate([s, np.zeros((pad, 2), np.int64)])
            weights = np.concatenate([weights, np.zeros(pad, np.float32)])
        yield _item(split_data.files, rows, s, weights)


def numpy_batches(
    data_dir: Path | str,
    config: WorkloadConfig,
    split: str,
    global_batch_size: int,
    seed: int,
    num_examples: int | None = None,
    start_step: int = 0,
    *,
    num_workers: int | None = None,
    backend: str = "process",
    prefetch: int = 2,
    shard: tuple[int, int] = (0, 1),
) -> ParallelBatchLoader:
    """Batches of one split (see the module docstring for the keys and the processing).

    Args:
        data_dir: data root holding ``fastmri/`` (or the fastmri folder itself).
        config: workload config (unused beyond split checks; kept for the family signature).
        split: ``train``, ``eval_train``, ``validation`` or ``test``.
        global_batch_size: slices per batch.
        seed: data seed (train order and training-slice masks; eval_train subset).
        num_examples: eval splits: how many slices (default and at most: the split size; an
            eval never repeats a slice, `DatasetError` otherwise).
        start_step: train: index of the first batch (exact resume).
        num_workers: processing workers (0: in the calling thread); default
            `algoperf.data.loader.default_num_workers`.
        backend, prefetch: as `algoperf.data.loader.ParallelBatchLoader`.
        shard: (index, count): return only rows ``index * B / count`` to
            ``(index + 1) * B / count`` of every global batch (one DDP rank of several); they
            equal the same rows of the unsharded batch (each row's mask seed is its own).

    Train batches are infinite (last partial batch of an epoch dropped); eval batches are
    finite and padded with float32 'weights' (0 on padding).
    """
    del config
    index, count = shard
    if count < 1 or not 0 <= index < count or global_batch_size % count:
        raise ValueError(
            f"shard {shard} must be (index, count) with 0 <= index < count and the global batch "
            f"size {global_batch_size} divisible by count"
        )
    split_data = load_split(data_dir, split)
    if split != "train":
        _eval_total(split_data, split, num_examples)  # refuse here, not in a loader worker
    fn = SliceBatchFn(split_data.target_shape)
    items = _items(split_data, split, global_batch_size, seed, num_examples, start_step)
    if count > 1:
        local = global_batch_size // count
        lo, hi = index * local, (index + 1) * local
        items = (
            BatchItem(
                it.files,
                it.rows[lo:hi],
                it.seeds[lo:hi],
                None if it.weights is None else it.weights[lo:hi],
            )
            for it in items
        )
    workers = default_num_workers() if num_workers is None else num_workers
    return ParallelBatchLoader(fn, items, num_workers=workers, prefetch=prefetch, backend=backend)


def synthetic_batch(
    config: WorkloadConfig, batch_size: int, seed: int, image_shape: tuple[int, int] = IMAGE_SHAPE
) -> dict[str, np.ndarray]:
    """A random batch shaped like real data (smoke runs, compile warm-up, benchmarks)."""
    del config
    rng = np.random.default_rng(seed)
    shape = (batch_size, *image_shape)
    return {
        "inputs": rng.standard_normal(shape).astype(np.float32),
        "targets": rng.standard_normal(shape).astype(np.float32),
        "mean": rng.uniform(1e-5, 1e-4, batch_size).astype(np.float32),
        "std": rng.uniform(1e-5, 1e-4, batch_size).astype(np.float32),
        "volume_max": rng.uniform(1e-4, 1e-3, batch_size).astype(np.float32),
    }


# Preparing --------------------------------------------------------------------------------------


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _find_archive(root: Path, data_dir: Path, name: str, given: Path | str | None) -> Path | None:
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise DatasetError(f"{path} does not exist; pass the path of the NYU {name}")
        return path
    for candidate in (root / "downloads" / name, data_dir / name, root / name):
        if candidate.is_file():
            return candidate
    return None


def _extract(archive: Path, dest: Path, progress: bool) -> int:
    """Write every ``*.h5`` member of `archive` into `dest` (by base name); skip finished ones.

    Each file is written to a temporary name and renamed, so a file with its final name is
    complete; an interrupted extraction resumes (files already present with the member's size
    are skipped, though the xz stream is read again from the start).
    """
    dest.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or not name.endswith(".h5") or name.startswith("."):
                    continue
                final = dest / name
                if final.is_file() and final.stat().st_size == member.size:
                    continue
                source = tar.extractfile(member)
                assert source is not None
                tmp = dest / f".{name}.partial"
                with source, open(tmp, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 22)
                os.replace(tmp, final)
                written += 1
                if written % 50 == 0:
                    _say(progress, f"{DATASET}: {written} volumes extracted into {dest.name}")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(
            f"{archive} cannot be extracted ({e}); check the download (or delete it and "
            "download it again), then run the preparation again"
        ) from None
    return written


def prepare(
    data_dir: Path | str,
    *,
    train_tar: Path | str | None = None,
    val_tar: Path | str | None = None,
    progress: bool = True,
    num_validation_files: int = NUM_VALIDATION_FILES,
) -> Path:
    """Extract and check the NYU knee single-coil archives into ``<data_dir>/fastmri/``.

    Args:
        data_dir: data root.
        train_tar, val_tar: ``knee_singlecoil_{train,val}.tar.xz`` (default: that name under
            ``<data_dir>/fastmri/downloads/``, ``<data_dir>`` or ``<data_dir>/fastmri``). A split
            folder that already holds ``.h5`` files (extracted by hand) needs no archive.
        progress: status lines on stderr.
        num_validation_files: sorted validation files in the validation split (upstream's 100;
            for small fixtures only).

    Idempotent (a ready folder returns at once) and resumable (see `_extract`). Checks free
    space before extracting, then opens every volume to check its layout (`scan_file`) and
    writes ``index.json`` and the manifest. Raises `DatasetError` with a one-line fix.
    """
    data_dir = Path(data_dir).expanduser()
    root = dataset_dir(data_dir)
    if manifest_status(root) == "ready" and _index_complete(root):
        _say(progress, f"{DATASET}: ready in {root}")
        return root
    root.mkdir(parents=True, exist_ok=True)
    given = {"train": train_tar, "val": val_tar}
    for role, (name, folder) in ARCHIVES.items():
        archive = _find_archive(root, data_dir, name, given[role])
        if archive is None:
            if any((root / folder).glob("*.h5")):
                continue  # extracted before (or by hand)
            raise DatasetError(
                f"{name} not found: download it from https://fastmri.med.nyu.edu/ (registration) "
                f"and pass --fastmri_{role}_tar PATH, or put it in {root / 'downloads'}"
            )
        needed = int(archive.stat().st_size * EXTRACT_FACTOR)
        present = sum(f.stat().st_size for f in (root / folder).glob("*.h5"))
        check_free_space(root, max(0, needed - present), f"{DATASET} {folder} (extracted)")
        _say(progress, f"{DATASET}: extracting {archive.name} into {root / folder}")
        _extract(archive, root / folder, progress)
    folders = build_index(root, progress, num_validation_files)["folders"]
    files = [f"{folder}/{n}" for folder, entries in folders.items() for n in entries]
    slices = {
        folder: sum(e["slices"] for e in entries.values()) for folder, entries in folders.items()
    }
    volumes = {folder: len(entries) for folder, entries in folders.items()}
    if volumes != {TRAIN_DIR: NUM_TRAIN_FILES, VAL_DIR: NUM_VAL_FILES}:
        _say(
            progress,
            f"{DATASET}: warning: {volumes[TRAIN_DIR]} training and {volumes[VAL_DIR]} "
            f"validation volumes, not the NYU archives' {NUM_TRAIN_FILES} and {NUM_VAL_FILES}: "
            "`algoperf run` refuses these data for the registered fastmri workloads (their "
            "slice counts differ)",
        )
    # The manifest covers the index; the index records every volume's size (`_index_complete`).
    write_manifest(root, [INDEX_FILE], dataset=DATASET, volumes=len(files), slices=slices)
    clear_cache()
    _say(progress, f"{DATASET}: ready in {root} ({slices})")
    return root


def prepare_dataset(
    dataset: str,
    data_dir: Path | str,
    *,
    offline_fallback: bool = True,
    progress: bool = True,
    **kwargs: Any,
) -> Path:
    """`algoperf datasets prepare fastmri` entry; fastMRI has no offline source."""
    del offline_fallback
    if dataset != DATASET:
        raise ValueError(f"workloads.fastmri.data prepares {DATASET!r}, not {dataset!r}")
    return prepare(data_dir, progress=progress, **kwargs)


# Fixtures ---------------------------------------------------------------------------------------


def mri_slice() -> np.ndarray:
    """A real 256x256 MRI slice (matplotlib's sample data ``s1045.ima.gz``), float64 in [0, 1]."""
    return _mri_slice().copy()


@cache
def _mri_slice() -> np.ndarray:
    from matplotlib import cbook

    with cbook.get_sample_data("s1045.ima.gz") as f:
        image = np.frombuffer(f.read(), np.uint16).reshape(256, 256).astype(np.float64)
    return image / image.max()


def _fixture_volume(
    base: np.ndarray,
    rng: np.random.Generator,
    slices: int,
    kspace_shape: tuple[int, int],
    target_shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, float]:
    """k-space (slices, rows, cols) complex64, targets float32 and the volume max."""
    from scipy import ndimage

    rows, cols = kspace_shape
    h, w = target_shape
    kspace = np.empty((slices, rows, cols), np.complex64)
    targets = np.empty((slices, h, w), np.float32)
    yy, xx = np.mgrid[0:rows, 0:cols] / np.array([rows, cols]).reshape(2, 1, 1)
    for i in range(slices):
        # A slightly different view per slice: zoom to about the target size, shift, rescale.
        scale = rng.uniform(1.0, 1.2)
        img = ndimage.zoom(base, (h * scale / 256, w * scale / 256), order=1)
        img = np.roll(img, tuple(int(v) for v in rng.integers(-3, 4, 2)), axis=(0, 1))
        canvas = np.zeros((rows, cols))
        ih, iw = min(rows, img.shape[0]), min(cols, img.shape[1])
        r0, c0 = (rows - ih) // 2, (cols - iw) // 2
        s0, t0 = (img.shape[0] - ih) // 2, (img.shape[1] - iw) // 2
        canvas[r0 : r0 + ih, c0 : c0 + iw] = img[s0 : s0 + ih, t0 : t0 + iw]
        magnitude = canvas * rng.uniform(2e-4, 4e-4) + rng.uniform(0, 2e-6, canvas.shape)
        phase = 2 * np.pi * (rng.uniform(-0.3, 0.3) * yy + rng.uniform(-0.3, 0.3) * xx)
        image = magnitude * np.exp(1j * phase)
        # Orthonormal centred FFT: upstream's ifft2c (times sqrt(rows cols)) inverts it.
        k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image))) / np.sqrt(rows * cols)
        kspace[i] = k.astype(np.complex64)
        tr, tc = (rows - h) // 2, (cols - w) // 2
        targets[i] = np.abs(image[tr : tr + h, tc : tc + w]).astype(np.float32)
    return kspace, targets, float(targets.max())


def write_volumes(
    folder: Path | str,
    num_volumes: int,
    *,
    slices: int = 3,
    kspace_shape: tuple[int, int] = (640, 368),
    target_shape: tuple[int, int] = IMAGE_SHAPE,
    seed: int = 0,
    first_number: int = 1_000_000,
) -> list[Path]:
    """Write `num_volumes` h5 volumes in the NYU single-coil layout, made from a real MRI slice.

    Each file ``file<n>.h5`` has ``kspace`` complex64 (slices, *kspace_shape*),
    ``reconstruction_esc`` float32 (slices, *target_shape*) = the magnitude of the fully
    sampled image's centre, and the attribute ``max``, as the NYU files do.
    """
    import h5py

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = mri_slice()
    paths = []
    for v in range(num_volumes):
        kspace, targets, vmax = _fixture_volume(base, rng, slices, kspace_shape, target_shape)
        path = folder / f"file{first_number + v}.h5"
        with h5py.File(path, "w") as hf:
            hf.create_dataset("kspace", data=kspace)
            hf.create_dataset("reconstruction_esc", data=targets)
            hf.attrs["max"] = np.float32(vmax)
            hf.attrs["acquisition"] = "CORPD_FBK"
        paths.append(path)
    return paths


def write_archives(
    directory: Path | str,
    *,
    train_volumes: int = 2,
    val_volumes: int = 3,
    slices: int = 3,
    kspace_shape: tuple[int, int] = (640, 368),
    target_shape: tuple[int, int] = IMAGE_SHAPE,
    seed: int = 0,
    val_slices: int | None = None,
) -> dict[str, Path]:
    """``knee_singlecoil_{train,val}.tar.xz`` fixtures in the NYU layout (``singlecoil_<split>/``)."""
    directory = Path(directory)
    staging = directory / ".fixture_volumes"
    out = {}
    per_volume = {"train": slices, "val": slices if val_slices is None else val_slices}
    for i, (role, n) in enumerate((("train", train_volumes), ("val", val_volumes))):
        inner = f"singlecoil_{role}"
        paths = write_volumes(
            staging / inner,
            n,
            slices=per_volume[role],
            kspace_shape=kspace_shape,
            target_shape=target_shape,
            seed=seed + i,
            first_number=1_000_000 + 1000 * i,
        )
        archive = directory / ARCHIVES[role][0]
        with tarfile.open(archive, "w:xz", preset=0) as tar:  # fast: k-space barely compresses
            for p in paths:
                tar.add(p, arcname=f"{inner}/{p.name}")
        out[role] = archive
    shutil.rmtree(staging)
    return out


def write_fixture(
    data_dir: Path | str,
    *,
    train_volumes: int = 2,
    validation_volumes: int = 2,
    test_volumes: int = 1,
    slices: int = 3,
    kspace_shape: tuple[int, int] = (640, 368),
    target_shape: tuple[int, int] = IMAGE_SHAPE,
    seed: int = 0,
    progress: bool = False,
    val_slices: int | None = None,
) -> Path:
    """A small prepared fastMRI dataset: NYU-format archives, then `prepare` on them.

    The validation split is the first `validation_volumes` sorted validation files (upstream:
    100), the test split the other `test_volumes`. Returns the dataset folder.
    """
    root = dataset_dir(data_dir)
    archives = write_archives(
        root / "downloads",
        train_volumes=train_volumes,
        val_volumes=validation_volumes + test_volumes,
        slices=slices,
        kspace_shape=kspace_shape,
        target_shape=target_shape,
        seed=seed,
        val_slices=val_slices,
    )
    return prepare(
        data_dir,
        train_tar=archives["train"],
        val_tar=archives["val"],
        progress=progress,
        num_validation_files=validation_volumes,
    )


def fixture_config(
    config: WorkloadConfig, data_dir: Path | str, num_eval_train: int | None = None
) -> WorkloadConfig:
    """`config` with split sizes counted from the prepared (fixture) data in `data_dir`."""
    sizes = {s: len(load_split(data_dir, s)) for s in ("train", "validation", "test")}
    return dataclasses.replace(
        config,
        num_train_examples=sizes["train"],
        num_validation_examples=sizes["validation"],
        num_test_examples=sizes["test"],
        num_eval_train_examples=num_eval_train or sizes["validation"],
    )


def write_cli_fixture(dataset: str, data_dir: Path | str) -> dict[str, Any]:
    """``algoperf datasets prepare fastmri --fixture``: a real-shaped (640 x 368 k-space,
    320 x 320 targets) dataset of 34 training, 4 validation and 2 test slices (enough for the
    baseline's batch of 32), through the real archive and prepare path; returns its split sizes."""
    if dataset != DATASET:
        raise ValueError(f"workloads.fastmri.data writes {DATASET!r} fixtures, not {dataset!r}")
    write_fixture(
        data_dir, train_volumes=2, validation_volumes=2, test_volumes=1, slices=17, val_slices=2
    )
    sizes = {s: len(load_split(data_dir, s)) for s in ("train", "validation", "test")}
    return {
        "num_train_examples": sizes["train"],
        "num_eval_train_examples": sizes["validation"],
        "num_validation_examples": sizes["validation"],
        "num_test_examples": sizes["test"],
        "eval_batch_size": 16,
    }
