"""Tiny CIFAR-10-format fixtures: a real ``cifar-10-python.tar.gz`` layout with few images.

`write_tarball` writes a gzip tarball holding ``cifar-10-batches-py/{data_batch_1..5,test_batch,
batches.meta,readme.html}`` as Python pickles in the official structure (``b'data'`` uint8
(N, 3072) channel-major, ``b'labels'`` list of ints, ``b'filenames'``, ``b'batch_label'``), so
`workloads.cifar.data.prepare` and every reader path run on it. `fixture_config` returns the CIFAR
config with split sizes that fit the fixture.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from algoperf.workload_config import WorkloadConfig
from workloads.cifar import data
from workloads.cifar.spec import CIFAR


@dataclasses.dataclass(frozen=True)
class CifarFixture:
    """What `write_tarball` wrote: the archive, its MD5, and the images per file (NHWC uint8)."""

    archive: Path
    md5: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def synthetic_images(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`num` uint8 (32, 32, 3) images whose mean colour depends on the label, and the labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, data.NUM_CLASSES, num).astype(np.int32)
    base = (labels[:, None] * np.array([25, 60, 95]) % 256)[:, None, None, :]
    noise = rng.integers(-40, 41, (num, 32, 32, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8), labels


def _batch_bytes(images: np.ndarray, labels: np.ndarray, label: str) -> bytes:
    flat = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    entry = {
        b"batch_label": label.encode(),
        b"labels": [int(x) for x in labels],
        b"data": np.ascontiguousarray(flat),
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(images))],
    }
    return pickle.dumps(entry, protocol=2)


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(f"{data.ARCHIVE_DIR}/{name}")
    info.size = len(payload)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(payload))


def write_tarball(
    path: Path, *, per_train_batch: int = 40, num_test: int = 50, seed: int = 0
) -> CifarFixture:
    """Write a CIFAR-10 python tarball with 5 x `per_train_batch` train and `num_test` test images."""
    path.parent.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = synthetic_images(5 * per_train_batch, seed)
    test_images, test_labels = synthetic_images(num_test, seed + 1)
    with tarfile.open(path, "w:gz") as tar:
        for i, name in enumerate(data.TRAIN_FILES):
            sl = slice(i * per_train_batch, (i + 1) * per_train_batch)
            _add(
                tar,
                name,
                _batch_bytes(train_images[sl], train_labels[sl], f"training batch {i + 1} of 5"),
            )
        _add(tar, data.TEST_FILE, _batch_bytes(test_images, test_labels, "testing batch 1 of 1"))
        meta = {b"label_names": [f"class{i}".encode() for i in range(10)], b"num_vis": 3072}
        _add(tar, data.META_FILE, pickle.dumps(meta, protocol=2))
        _add(tar, "readme.html", b"<html>fixture</html>")
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    return CifarFixture(path, md5, train_images, train_labels, test_images, test_labels)


def fixture_config(
    num_train: int = 150, num_validation: int = 50, num_test: int = 50, num_eval_train: int = 64
) -> WorkloadConfig:
    """The CIFAR config with split sizes that fit a `write_tarball` fixture."""
    return dataclasses.replace(
        CIFAR,
        num_train_examples=num_train,
        num_validation_examples=num_validation,
        num_test_examples=num_test,
        num_eval_train_examples=num_eval_train,
    )


def write_dataset_fixture(dataset: str, data_dir: Path | str) -> dict[str, int]:
    """``algoperf datasets prepare cifar10 --fixture``: a 250-image tarball through `data.prepare`.

    The tarball is written to a temporary folder and prepared into ``<data_dir>/cifar10/`` by the
    real download/verify/extract path (from a ``file://`` URL); returns the `fixture_config`
    split sizes (the registry records them in ``fixture.json``).
    """
    import tempfile

    del dataset
    with tempfile.TemporaryDirectory() as tmp:
        fixture = write_tarball(Path(tmp) / data.ARCHIVE, per_train_batch=40, num_test=50)
        data.prepare(
            data_dir, urls=[fixture.archive.as_uri()], md5=fixture.md5, size=None, progress=False
        )
    config = fixture_config()
    return {
        "num_train_examples": config.num_train_examples,
        "num_eval_train_examples": config.num_eval_train_examples,
        "num_validation_examples": config.num_validation_examples,
        "num_test_examples": config.num_test_examples,
        "eval_batch_size": 64,
    }
