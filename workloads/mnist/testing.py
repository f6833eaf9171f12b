"""Synthetic MNIST-format fixtures: valid IDX gz files of learnable data, for tests and demos.

MNIST-1D's fixture (`write_mnist1d_fixture`) is its npz format holding smooth random class
curves, shifted and noisy (no `mnist1d` package needed).

`write_fixture` writes the four official file names into ``<root>/<dataset>/``, byte-compatible
with the real files (same IDX headers, gzip-compressed), so every loader code path runs on them.
The images are class prototypes (smooth random blobs, one per class) at random brightness, mixed
with a faint other class, shifted and noisy: the MNIST MLP passes 97 % accuracy within a few
hundred steps (not at once), so end-to-end runs reach the MNIST targets quickly. `fixture_config` returns a
config whose split sizes fit a small fixture.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from algoperf.workload_config import WorkloadConfig
from workloads.mnist import data, mnist1d

# Sizes of the real files (60k train file, 10k test file).
FULL_SIZE = {"num_train_file": 60_000, "num_test": 10_000}

_CHUNK = 10_000
# Difficulty: pixel noise sd, brightness of a distracting second class, maximum shift in pixels.
_NOISE = 60.0
_DISTRACTOR = 0.3
_SHIFT = 2


def idx_bytes(array: np.ndarray) -> bytes:
    """`array` (uint8, any rank) encoded as an IDX file."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return header + array.tobytes()


def write_idx_gz(path: Path, array: np.ndarray, compresslevel: int = 1) -> Path:
    """Write `array` as a gzip-compressed IDX file (reproducible bytes: gzip mtime 0)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(idx_bytes(array), compresslevel=compresslevel, mtime=0))
    return path


def prototypes(seed: int) -> np.ndarray:
    """Ten (28, 28) float32 class patterns in [0, 255]: smooth blobs, mostly dark background."""
    rng = np.random.default_rng([seed, 0])
    coarse = (rng.random((data.NUM_CLASSES, 7, 7)) < 0.3).astype(np.float32)
    fine = coarse.repeat(4, axis=1).repeat(4, axis=2)
    # A 3x3 box blur softens the block edges, like pen strokes.
    padded = np.pad(fine, ((0, 0), (1, 1), (1, 1)))
    blurred = sum(padded[:, i : i + 28, j : j + 28] for i in range(3) for j in range(3)) / 9.0
    return (255.0 * blurred).astype(np.float32)


def synthetic_examples(
    num: int, seed: int, stream: int, protos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`num` uint8 (28, 28) images and their uint8 labels (balanced classes, shuffled).

    Each image is its class prototype at brightness U(0.6, 1), plus a fainter (U(0, 0.3)) copy of
    another class's prototype, shifted by up to 2 pixels each way, plus Gaussian noise (sd 60);
    faint pixels are set to 0. Measured with the MNIST MLP (Adam 1e-3, batch 64): validation
    accuracy about 0.52 after 25 steps, 0.94 after 100, 0.99 after 200.
    """
    rng = np.random.default_rng([seed, stream])
    labels = rng.permutation(np.arange(num) % data.NUM_CLASSES).astype(np.uint8)
    images = np.empty((num, 28, 28), np.uint8)
    for start in range(0, num, _CHUNK):
        lab = labels[start : start + _CHUNK]
        n = len(lab)
        x = protos[lab] * rng.uniform(0.6, 1.0, (n, 1, 1)).astype(np.float32)
        other = (lab + rng.integers(1, data.NUM_CLASSES, n)) % data.NUM_CLASSES
        x += protos[other] * rng.uniform(0.0, _DISTRACTOR, (n, 1, 1)).astype(np.float32)
        shifts = rng.integers(-_SHIFT, _SHIFT + 1, (n, 2))
        for dy in range(-_SHIFT, _SHIFT + 1):
            for dx in range(-_SHIFT, _SHIFT + 1):
                sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
                if (dy or dx) and sel.any():
                    x[sel] = np.roll(x[sel], (dy, dx), axis=(1, 2))
        x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(_NOISE)
        # Dark background as in MNIST: faint pixels become exact zeros.
        x[x < 24.0] = 0.0
        images[start : start + n] = np.clip(x, 0, 255).astype(np.uint8)
    return images, labels


def write_fixture(
    root: Path | str,
    dataset: str = "mnist",
    *,
    num_train_file: int = 1_200,
    num_test: int = 200,
    seed: int = 0,
    full_size: bool = False,
    compresslevel: int = 1,
) -> Path:
    """Write the four IDX gz files of a learnable synthetic `dataset` into ``<root>/<dataset>/``.

    Args:
        root: data root; pass it as ``data_dir`` to `data.load_split`.
        dataset: sub-directory name (``mnist`` or ``fashion_mnist``).
        num_train_file / num_test: examples in the training file and in the t10k file.
        seed: the content is a pure function of (seed, sizes).
        full_size: write 60,000 + 10,000 examples (the real sizes; about 2 s).
        compresslevel: gzip level; 1 keeps large fixtures fast to write.

    Returns the dataset folder.
    """
    if full_size:
        num_train_file, num_test = FULL_SIZE["num_train_file"], FULL_SIZE["num_test"]
    folder = Path(root) / dataset
    protos = prototypes(seed)
    for stream, (prefix, num) in enumerate((("train", num_train_file), ("t10k", num_test)), 1):
        images, labels = synthetic_examples(num, seed, stream, protos)
        write_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", images, compresslevel)
        write_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", labels, compresslevel)
    return folder


def fixture_config(
    config: WorkloadConfig | str = "mnist", *, num_train_file: int = 1_200, num_test: int = 200
) -> WorkloadConfig:
    """`config` (or the MNIST-family config of that name) with split sizes for a small fixture.

    A sixth of the training file is validation (as 10k of the real 60k), eval_train is as large
    as validation, the test split is the whole t10k file, and the eval batch size is capped at
    the largest eval split. The name is kept so that the config reads as the same workload.
    """
    if isinstance(config, str):
        from workloads.mnist.spec import VARIANTS

        config = VARIANTS[config]
    num_validation = num_train_file // 6
    num_train = num_train_file - num_validation
    return config.variant(
        config.name,
        num_train_examples=num_train,
        num_validation_examples=num_validation,
        num_eval_train_examples=min(num_validation, num_train),
        num_test_examples=num_test,
        eval_batch_size=min(config.eval_batch_size, max(num_validation, num_test)),
    )


def synthetic_signals(
    num: int, seed: int, stream: int, protos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`num` float32 (40,) signals and their uint8 labels (balanced classes, shuffled).

    Each signal is its class prototype at amplitude U(0.7, 1.3), circularly shifted by up to 3
    points, plus Gaussian noise (sd 0.5): learnable by the mnist1d MLP within a few hundred
    steps, not at once.
    """
    rng = np.random.default_rng([seed, stream])
    labels = rng.permutation(np.arange(num) % data.NUM_CLASSES).astype(np.uint8)
    x = protos[labels] * rng.uniform(0.7, 1.3, (num, 1))
    shifts = rng.integers(-3, 4, num)
    for shift in range(-3, 4):
        x[shifts == shift] = np.roll(x[shifts == shift], shift, axis=1)
    x += rng.standard_normal(x.shape) * 0.5
    return x.astype(np.float32), labels


def signal_prototypes(seed: int) -> np.ndarray:
    """Ten smooth random (40,) class curves of unit scale (a 5-point moving average of noise)."""
    rng = np.random.default_rng([seed, 0])
    noise = rng.standard_normal((data.NUM_CLASSES, mnist1d.SEQUENCE_LENGTH + 4))
    smooth = sum(noise[:, i : i + mnist1d.SEQUENCE_LENGTH] for i in range(5)) / 5.0
    return smooth / smooth.std()


def write_mnist1d_fixture(
    root: Path | str, *, num_train_file: int = 1_200, num_test: int = 200, seed: int = 0
) -> Path:
    """Write a learnable synthetic MNIST-1D in the real on-disk format into ``<root>/mnist1d/``.

    ``num_train_file`` / ``num_test`` are the sizes of the training and test parts (as the
    generator's ``x`` and ``x_test``); the content is a pure function of (seed, sizes). Needs no
    `mnist1d` package.
    """
    protos = signal_prototypes(seed)
    x, y = synthetic_signals(num_train_file, seed, 1, protos)
    x_test, y_test = synthetic_signals(num_test, seed, 2, protos)
    return mnist1d.write_arrays(
        Path(root) / mnist1d.DATASET,
        {"x": x, "y": y, "x_test": x_test, "y_test": y_test},
        source="synthetic fixture",
        recipe={"fixture_seed": seed},
    )


def write_dataset_fixture(dataset: str, data_dir: Path | str) -> dict[str, int]:
    """``algoperf datasets prepare <mnist|fashion_mnist|mnist1d> --fixture``: 1,400 examples.

    Writes the dataset's real on-disk files (the four official IDX gz files; MNIST-1D's npz)
    into ``<data_dir>/<dataset>/`` and returns the split sizes `fixture_config` uses for it (the
    registry records them in ``fixture.json``).
    """
    if dataset == mnist1d.DATASET:
        write_mnist1d_fixture(data_dir)
    else:
        write_fixture(data_dir, dataset)
    config = fixture_config(dataset)
    return {
        "num_train_examples": config.num_train_examples,
        "num_eval_train_examples": config.num_eval_train_examples,
        "num_validation_examples": config.num_validation_examples,
        "num_test_examples": config.num_test_examples,
        "eval_batch_size": config.eval_batch_size,
    }
