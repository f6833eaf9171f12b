"""CIFAR-10 on disk (the official python tarball), its preparation, and numpy batches.

Source: ``cifar-10-python.tar.gz`` from https://www.cs.toronto.edu/~kriz/ (170,498,071 bytes,
MD5 ``c58f30108f718f92721af3b95e74349a``), downloaded with `algoperf.data.download.download_file`
(resumable, checksummed). `prepare` keeps the tarball and extracts its pickled batches flat into
``<data_dir>/cifar10/``::

    cifar-10-python.tar.gz
    data_batch_1 ... data_batch_5   (5 x 10,000 training images, in the official order)
    test_batch                      (10,000 test images)
    batches.meta

Each batch is the official Python pickle: ``b'data'`` uint8 (N, 3072) channel-major (1024 R, then
G, then B values of a row-major 32x32 image) and ``b'labels'`` (N,) in 0..9. They are read with a
restricted unpickler that only accepts numpy arrays and plain containers. `load_split` also finds
the batches in torchvision's layout (``<data_dir>/cifar-10-batches-py/``) or in `data_dir` itself.

Splits (as upstream, sizes from the config so tests can use a small one): ``train`` = the first
``num_train_examples`` (45,000) of the 50,000 training images, ``validation`` = the next
``num_validation_examples`` (the last 5,000), ``eval_train`` = the first
``num_eval_train_examples`` of train (the official order is already random), ``test`` = the first
``num_test_examples`` of ``test_batch``.

Pipeline (`numpy_batches`): images stay uint8 in memory; a train batch is zero-padded by 4 pixels
per side, randomly cropped back to 32x32 and randomly flipped (torchvision's
``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip``; upstream's TF pipeline pads only 2 per
side), then normalised as ``(pixel / 255 - mean) / std`` with the config's [0, 1]-scale
``train_mean`` / ``train_stddev``. Batches are NHWC float32 'inputs' and int32 'targets'; eval
batches are padded with a 'weights' mask (`algoperf.data.iterators.eval_batches`).
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import tarfile
import threading
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np

from algoperf.data import DatasetError, iterators
from algoperf.data.download import (
    check_free_space,
    download_file,
    manifest_status,
    write_manifest,
)
from algoperf.data.images import normalize, pad_crop_flip
from algoperf.workload_config import WorkloadConfig

DATASET = "cifar10"
URLS = ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_SIZE = 170_498_071
# Upper bound of the extracted batches (6 x ~31 MB), for the free-space preflight.
EXTRACTED_SIZE = 190_000_000
ARCHIVE_DIR = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
BATCH_FILES = (*TRAIN_FILES, TEST_FILE, META_FILE)
SPLITS = ("train", "eval_train", "validation", "test")
IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
PAD = 4


def _fix_hint(data_dir: Path | str) -> str:
    return f"run `algoperf datasets prepare {DATASET} --data_dir {data_dir}`"


def dataset_dir(data_dir: Path | str) -> Path:
    """Where `prepare` writes: ``<data_dir>/cifar10`` (or `data_dir` if it holds the batches)."""
    data_dir = Path(data_dir).expanduser()
    if not (data_dir / DATASET).is_dir() and (data_dir / TRAIN_FILES[0]).is_file():
        return data_dir
    return data_dir / DATASET


def batches_dir(data_dir: Path | str) -> Path:
    """The folder holding the pickled batches: ours, torchvision's, or `data_dir` itself."""
    data_dir = Path(data_dir).expanduser()
    for candidate in (
        data_dir / DATASET,
        data_dir / DATASET / ARCHIVE_DIR,
        data_dir / ARCHIVE_DIR,
        data_dir,
    ):
        if (candidate / TRAIN_FILES[0]).is_file():
            return candidate
    raise DatasetError(f"no CIFAR-10 batches under {data_dir}; {_fix_hint(data_dir)}")


# Reading --------------------------------------------------------------------------------------


class _Unpickler(pickle.Unpickler):
    """Accepts only what the official batches contain: numpy arrays and builtin containers."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> type:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch")


def read_batch(path: Path, data_dir: Path | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch as uint8 NHWC images (N, 32, 32, 3) and int32 labels (N,)."""
    hint = _fix_hint(data_dir if data_dir is not None else path.parent)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing; {hint}") from None
    try:
        entry = _Unpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(entry[b"data"], dtype=np.uint8)
        labels = np.asarray(entry[b"labels"], dtype=np.int32)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{path} is not a CIFAR-10 python batch ({e}); {hint}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DatasetError(
            f"{path} holds data {data.shape} and {len(labels)} labels, expected (N, 3072) and N; "
            f"{hint}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DatasetError(f"{path} has labels outside 0..9; {hint}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget the decoded batches (the next `load_split` reads the files again)."""
    with _cache_lock:
        _cache.clear()


def _load(data_dir: Path | str, which: str) -> tuple[np.ndarray, np.ndarray]:
    """All training ('train') or test ('test') images and labels, decoded once per process."""
    directory = batches_dir(data_dir)
    names = TRAIN_FILES if which == "train" else (TEST_FILE,)
    paths = [directory / n for n in names]
    try:
        key = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    except FileNotFoundError as e:
        raise DatasetError(f"{e.filename} is missing; {_fix_hint(data_dir)}") from None
    with _cache_lock:
        if key not in _cache:
            parts = [read_batch(p, data_dir) for p in paths]
            images = np.concatenate([p[0] for p in parts])
            labels = np.concatenate([p[1] for p in parts])
            images.setflags(write=False)
            labels.setflags(write=False)
            _cache[key] = (images, labels)
        return _cache[key]


def split_range(config: WorkloadConfig, split: str) -> tuple[str, int, int]:
    """(``"train"`` or ``"test"``, start, stop): which file set and examples make up `split`."""
    if split == "train":
        return "train", 0, config.num_train_examples
    if split == "eval_train":
        return "train", 0, min(config.num_eval_train_examples, config.num_train_examples)
    if split == "validation":
        start = config.num_train_examples
        return "train", start, start + config.num_validation_examples
    if split == "test":
        if config.num_test_examples is None:
            raise ValueError(f"workload {config.name} has no test split")
        return "test", 0, config.num_test_examples
    raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def load_split(data_dir: Path | str, config: WorkloadConfig, split: str) -> dict[str, np.ndarray]:
    """One split: 'inputs' uint8 (N, 32, 32, 3) raw pixels and 'targets' int32 (N,).

    Read-only views into a per-process cache. `numpy_batches` augments and normalises them.
    A missing or corrupt file raises `DatasetError` naming the file and the fixing command.
    """
    which, start, stop = split_range(config, split)
    images, labels = _load(data_dir, which)
    if stop > len(images):
        raise DatasetError(
            f"{batches_dir(data_dir)} holds {len(images)} {which} images; the {split} split of "
            f"{config.name} needs examples {start}..{stop - 1}; {_fix_hint(data_dir)}"
        )
    return {"inputs": images[start:stop], "targets": labels[start:stop]}


# Batches --------------------------------------------------------------------------------------


def _pixel_stats(config: WorkloadConfig) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std on the 0-255 pixel scale (the config holds them on the [0, 1] scale)."""
    mean = np.asarray(config.train_mean, dtype=np.float32) * np.float32(255)
    std = np.asarray(config.train_stddev, dtype=np.float32) * np.float32(255)
    return mean, std


def train_transform(
    batch: dict[str, np.ndarray], rng: np.random.Generator, *, mean: np.ndarray, std: np.ndarray
) -> dict[str, np.ndarray]:
    """Pad-crop-flip (with the per-batch generator) and normalise a uint8 train batch."""
    images = pad_crop_flip(batch["inputs"], rng, PAD)
    return {**batch, "inputs": normalize(images, mean, std)}


def numpy_batches(
    data_dir: Path | str,
    config: WorkloadConfig,
    split: str,
    global_batch_size: int,
    seed: int,
    num_examples: int | None = None,
    start_step: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of one split: 'inputs' float32 (B, 32, 32, 3), 'targets' int32 (B,).

    ``train``: infinite, shuffled per epoch, augmented; batch k is a function of (seed, k), so
    ``start_step=k`` resumes exactly. Other splits: finite, in order, the last batch padded and
    every batch carrying float32 'weights' (0 on padding); `num_examples` defaults to the split
    size. Vectorised numpy, fast enough in the calling thread (wrap it in
    `algoperf.data.loader.BackgroundIterator` to overlap with the device step).
    """
    arrays = load_split(data_dir, config, split)
    mean, std = _pixel_stats(config)
    if split == "train":
        transform = partial(train_transform, mean=mean, std=std)
        return iterators.train_batches(
            arrays, global_batch_size, seed, start_step=start_step, transform=transform
        )
    batches = iterators.eval_batches(arrays, global_batch_size, num_examples)
    return ({**b, "inputs": normalize(b["inputs"], mean, std)} for b in batches)


def synthetic_batch(config: WorkloadConfig, batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """A random batch shaped like real data (for smoke runs and compile warm-up)."""
    num_classes = int(config.model.get("num_classes", NUM_CLASSES))
    return iterators.synthetic_batch(
        {"inputs": (IMAGE_SHAPE, np.float32), "targets": ((), np.int32, num_classes)},
        batch_size,
        seed,
    )


# Preparing ------------------------------------------------------------------------------------


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _extracted(dest: Path) -> bool:
    return all((dest / name).is_file() for name in BATCH_FILES)


def prepare(
    data_dir: Path | str,
    *,
    urls: Sequence[str] = URLS,
    md5: str | None = ARCHIVE_MD5,
    size: int | None = ARCHIVE_SIZE,
    progress: bool = True,
    timeout: float = 20.0,
) -> Path:
    """Download, verify and extract CIFAR-10 into ``<data_dir>/cifar10/``; return that folder.

    Args:
        data_dir: data root.
        urls: mirrors of ``cifar-10-python.tar.gz`` (default: the official URL).
        md5, size: expected archive checksum and size (None: not checked; tests use their own).
        progress: progress bar and status lines on stderr.
        timeout: connect/read timeout of the download in seconds.

    Idempotent: a ready folder (manifest and files agree) returns at once; a verified archive is
    not downloaded again; an interrupted download resumes. Checks free disk space first. Every
    extracted batch is written to a temporary name and renamed, then read back and checked.
    Raises `DownloadError`, `DiskSpaceError` or `DatasetError` with a one-line fix.
    """
    dest = dataset_dir(data_dir)
    if manifest_status(dest) == "ready" and _extracted(dest):
        _say(progress, f"{DATASET}: ready in {dest}")
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / ARCHIVE
    needed = EXTRACTED_SIZE + (0 if archive.is_file() else (size or ARCHIVE_SIZE))
    check_free_space(dest, needed, f"{DATASET} (archive + extracted batches)")
    download_file(list(urls), archive, md5=md5, size=size, timeout=timeout, progress=progress)
    _say(progress, f"{DATASET}: extracting {archive.name}")
    _extract(archive, dest)
    total = 0
    for name in (*TRAIN_FILES, TEST_FILE):
        total += len(read_batch(dest / name, data_dir)[1])
    write_manifest(dest, [ARCHIVE, *BATCH_FILES], dataset=DATASET, num_images=total)
    clear_cache()
    _say(progress, f"{DATASET}: ready in {dest} ({total} images)")
    return dest


def _extract(archive: Path, dest: Path) -> None:
    """Write the batch files of `archive` into `dest` (by base name only; nothing else)."""
    wanted = set(BATCH_FILES)
    found: set[str] = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or name not in wanted:
                    continue
                source = tar.extractfile(member)
                assert source is not None
                tmp = dest / f".{name}.tmp"
                with source, open(tmp, "wb") as out:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
                os.replace(tmp, dest / name)
                found.add(name)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(
            f"{archive} cannot be extracted ({e}); delete it and run the preparation again"
        ) from None
    missing = sorted(wanted - found)
    if missing:
        raise DatasetError(
            f"{archive} lacks {', '.join(missing)}; it is not the CIFAR-10 python archive, "
            "delete it and run the preparation again"
        )


def prepare_dataset(
    dataset: str,
    data_dir: Path | str,
    *,
    offline_fallback: bool = True,
    progress: bool = True,
    **kwargs: object,
) -> Path:
    """`algoperf datasets prepare cifar10` entry (the `algoperf.registry.Dataset` prepare signature).

    CIFAR-10 has no offline source, so `offline_fallback` has no effect.
    """
    del offline_fallback
    if dataset != DATASET:
        raise ValueError(f"workloads.cifar.data prepares {DATASET!r}, not {dataset!r}")
    return prepare(data_dir, progress=progress, **kwargs)  # type: ignore[arg-type]
