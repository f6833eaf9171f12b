"""fastMRI data: upstream's split rule, slice order, masks per example, batches and resumption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from algoperf.data import DatasetError
from workloads.fastmri import data

TINY = {"kspace_shape": (32, 24), "target_shape": (16, 16)}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """3 training volumes (5, 5, 5 slices) and 102 validation volumes of one slice, tiny."""
    base = tmp_path_factory.mktemp("mri")
    folder = base / "fastmri"
    data.write_volumes(folder / data.TRAIN_DIR, 3, slices=5, **TINY)
    # Numbered so that sorting by name differs from sorting by number written.
    for i in range(102):
        data.write_volumes(
            folder / data.VAL_DIR,
            1,
            slices=1,
            seed=i,
            first_number=2_000_000 + (i * 37) % 102,
            **TINY,
        )
    data.build_index(folder)  # upstream's rule: the first 100 sorted validation files
    data.clear_cache()
    return base


def test_validation_is_the_first_100_sorted_files_and_test_the_rest(root):
    val, test = data.load_split(root, "validation"), data.load_split(root, "test")
    names = sorted(p.name for p in (root / "fastmri" / data.VAL_DIR).glob("*.h5"))
    assert [Path(f).name for f in val.files] == names[:100]
    assert [Path(f).name for f in test.files] == names[100:]
    assert (len(val), len(test)) == (100, 2)


def test_training_slices_follow_the_interleave_order(root):
    train = data.load_split(root, "train")
    assert len(train) == 15
    # Fewer than 64 slices per file: each file's slices in turn, file by file.
    assert train.examples.tolist() == [[f, s] for f in range(3) for s in range(5)]


def test_eval_masks_are_fixed_and_train_masks_vary_per_slice():
    eval_masks = {tuple(data.column_mask(368, data.EVAL_SEED)) for _ in range(3)}
    assert len(eval_masks) == 1
    train_masks = {tuple(data.column_mask(368, data.train_seed(0, i))) for i in range(20)}
    assert len(train_masks) == 20
    # The same index and seed give the same mask in every epoch (upstream: fixed per example).
    assert data.train_seed(5, 7) == data.train_seed(5, 7) != data.train_seed(6, 7)


def _collect(it, n):
    return [next(it) for _ in range(n)]


def test_train_batches_resume_exactly_and_do_not_depend_on_workers(root):
    full = _collect(iter(data.numpy_batches(root, None, "train", 4, seed=3, num_workers=0)), 5)
    resumed = _collect(
        iter(data.numpy_batches(root, None, "train", 4, seed=3, start_step=3, num_workers=0)), 2
    )
    threaded = _collect(
        iter(data.numpy_batches(root, None, "train", 4, 3, num_workers=2, backend="thread")), 5
    )
    for a, b in zip(full[3:], resumed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    for a, b in zip(full, threaded):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert set(full[0]) == {"inputs", "targets", "mean", "std", "volume_max"}
    assert full[0]["inputs"].shape == (4, 16, 16) and full[0]["inputs"].dtype == np.float32
    # Another seed: another order.
    other = next(iter(data.numpy_batches(root, None, "train", 4, seed=4, num_workers=0)))
    assert not np.array_equal(other["inputs"], full[0]["inputs"])


def test_eval_batches_cover_the_split_once_and_pad(root):
    batches = list(data.numpy_batches(root, None, "test", 3, seed=0, num_workers=0))
    assert len(batches) == 1
    b = batches[0]
    assert b["weights"].tolist() == [1.0, 1.0, 0.0]
    assert not b["inputs"][2].any() and b["volume_max"][2] == 0
    assert (b["volume_max"][:2] > 0).all()


def test_bad_layouts_are_one_line_errors(tmp_path):
    import h5py

    folder = tmp_path / "fastmri" / data.TRAIN_DIR
    folder.mkdir(parents=True)
    with h5py.File(folder / "a.h5", "w") as hf:
        hf.create_dataset("kspace", data=np.zeros((2, 8, 8), np.complex64))
    with pytest.raises(DatasetError, match=r"a\.h5 lacks reconstruction_esc"):
        data.scan_file(folder / "a.h5")
    with h5py.File(folder / "b.h5", "w") as hf:
        hf.create_dataset("kspace", data=np.zeros((2, 8, 8), np.complex64))
        hf.create_dataset("reconstruction_esc", data=np.zeros((2, 4, 4), np.float32))
    with pytest.raises(DatasetError, match=r"b\.h5 has no 'max' attribute"):
        data.scan_file(folder / "b.h5")
    with pytest.raises(DatasetError, match="no fastMRI data"):
        data.load_split(tmp_path / "nothing", "train")
    with pytest.raises(ValueError, match="unknown split"):
        data.load_split(tmp_path, "dev")


def test_shards_are_rows_of_the_global_batch(root):
    full = next(iter(data.numpy_batches(root, None, "train", 4, seed=1, num_workers=0)))
    for index in range(2):
        part = next(
            iter(data.numpy_batches(root, None, "train", 4, 1, shard=(index, 2), num_workers=0))
        )
        for key in full:
            np.testing.assert_array_equal(part[key], full[key][2 * index : 2 * index + 2])
    evals = list(data.numpy_batches(root, None, "test", 4, 0, shard=(1, 2), num_workers=0))
    assert evals[0]["weights"].tolist() == [0.0, 0.0]  # rows 2-3 of a batch of 2 test slices
    with pytest.raises(ValueError, match="divisible"):
        data.numpy_batches(root, None, "train", 3, 1, shard=(0, 2))


def test_process_workers_give_the_same_batches(root):
    """The default backend: work items and the batch function are pickled to worker processes."""
    inline = _collect(iter(data.numpy_batches(root, None, "train", 4, 9, num_workers=0)), 2)
    loader = data.numpy_batches(root, None, "train", 4, 9, num_workers=1, backend="process")
    try:
        pooled = _collect(iter(loader), 2)
    finally:
        loader.close()
    for a, b in zip(inline, pooled):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
