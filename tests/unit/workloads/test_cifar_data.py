"""CIFAR-10: preparation from a (tiny) official-format tarball over HTTP, splits, batches."""

from __future__ import annotations

import functools
import http.server
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from algoperf.data import DatasetError, iterators
from algoperf.data.download import DownloadError, manifest_status
from workloads.cifar import data, testing
from workloads.cifar.spec import CIFAR


@pytest.fixture(scope="module")
def fixture(tmp_path_factory) -> testing.CifarFixture:
    return testing.write_tarball(tmp_path_factory.mktemp("cifar_src") / data.ARCHIVE)


@pytest.fixture(scope="module")
def server(fixture) -> Iterator[str]:
    """A local HTTP server serving the fixture folder; yields its base URL."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(fixture.archive.parent)
    )
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def prepared(fixture, server, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar_data")
    data.prepare(root, urls=[server + data.ARCHIVE], md5=fixture.md5, size=None, progress=False)
    return root


CONFIG = testing.fixture_config()


def test_prepare_downloads_verifies_and_extracts(prepared, fixture):
    folder = prepared / data.DATASET
    assert {p.name for p in folder.iterdir()} >= {data.ARCHIVE, *data.BATCH_FILES}
    assert manifest_status(folder) == "ready"
    assert not [p for p in folder.iterdir() if p.name.endswith((".tmp", ".part"))]
    images, labels = data.read_batch(folder / "data_batch_2")
    np.testing.assert_array_equal(images, fixture.train_images[40:80])
    np.testing.assert_array_equal(labels, fixture.train_labels[40:80])


def test_prepare_is_idempotent_offline(prepared, fixture):
    # Ready: returns without touching the (unreachable) URL.
    again = data.prepare(
        prepared, urls=["http://127.0.0.1:9/none"], md5=fixture.md5, size=None, progress=False
    )
    assert again == prepared / data.DATASET
    # Batches lost but archive kept: re-extracts without downloading.
    (again / "test_batch").unlink()
    data.prepare(
        prepared, urls=["http://127.0.0.1:9/none"], md5=fixture.md5, size=None, progress=False
    )
    assert (again / "test_batch").is_file()


def test_prepare_rejects_a_wrong_checksum(server, tmp_path):
    with pytest.raises(DownloadError, match="md5"):
        data.prepare(
            tmp_path, urls=[server + data.ARCHIVE], md5="0" * 32, size=None, progress=False
        )
    assert not (tmp_path / data.DATASET / "data_batch_1").exists()


def test_registry_entry_signature(fixture, server, tmp_path):
    path = data.prepare_dataset(
        "cifar10", tmp_path, offline_fallback=False, progress=False,
        urls=[server + data.ARCHIVE], md5=fixture.md5, size=None,
    )  # fmt: skip
    assert manifest_status(path) == "ready"
    with pytest.raises(ValueError, match="cifar10"):
        data.prepare_dataset("cifar100", tmp_path)


def test_splits_follow_upstream(prepared, fixture):
    train = data.load_split(prepared, CONFIG, "train")
    validation = data.load_split(prepared, CONFIG, "validation")
    test = data.load_split(prepared, CONFIG, "test")
    eval_train = data.load_split(prepared, CONFIG, "eval_train")
    np.testing.assert_array_equal(train["inputs"], fixture.train_images[:150])
    np.testing.assert_array_equal(validation["inputs"], fixture.train_images[150:200])
    np.testing.assert_array_equal(validation["targets"], fixture.train_labels[150:200])
    np.testing.assert_array_equal(test["inputs"], fixture.test_images)
    np.testing.assert_array_equal(eval_train["inputs"], fixture.train_images[:64])
    assert train["inputs"].dtype == np.uint8 and train["targets"].dtype == np.int32
    assert not train["inputs"].flags.writeable
    with pytest.raises(DatasetError, match="needs examples"):
        data.load_split(prepared, testing.fixture_config(num_train=190), "validation")
    with pytest.raises(ValueError, match="unknown split"):
        data.load_split(prepared, CONFIG, "dev")


def test_full_config_uses_the_last_5000_for_validation():
    assert data.split_range(CIFAR, "train") == ("train", 0, 45_000)
    assert data.split_range(CIFAR, "validation") == ("train", 45_000, 50_000)
    assert data.split_range(CIFAR, "eval_train") == ("train", 0, 5120)
    assert data.split_range(CIFAR, "test") == ("test", 0, 10_000)


def test_train_batches_are_padded_crops_flips_normalised_and_resumable(prepared, fixture):
    batches = data.numpy_batches(prepared, CONFIG, "train", 32, seed=3)
    first = [next(batches) for _ in range(6)]  # crosses the epoch boundary (4 batches per epoch)
    b = first[0]
    assert b["inputs"].shape == (32, 32, 32, 3) and b["inputs"].dtype == np.float32
    assert b["targets"].dtype == np.int32
    order = iterators.epoch_permutation(150, 3, 0)[:32]
    np.testing.assert_array_equal(b["targets"], fixture.train_labels[order])
    mean = np.array(CONFIG.train_mean, np.float32)
    std = np.array(CONFIG.train_stddev, np.float32)
    pixels = np.rint((b["inputs"] * std + mean) * 255).astype(np.int64)
    for row, src in zip(pixels, fixture.train_images[order]):
        padded = np.pad(src, ((4, 4), (4, 4), (0, 0))).astype(np.int64)
        crops = [
            c
            for dy in range(9)
            for dx in range(9)
            for c in (
                padded[dy : dy + 32, dx : dx + 32],
                padded[dy : dy + 32, dx : dx + 32][:, ::-1],
            )
        ]
        assert any(np.array_equal(row, c) for c in crops)
    resumed = data.numpy_batches(prepared, CONFIG, "train", 32, seed=3, start_step=4)
    for k in (4, 5):
        got = next(resumed)
        np.testing.assert_array_equal(got["inputs"], first[k]["inputs"])
        np.testing.assert_array_equal(got["targets"], first[k]["targets"])
    other_seed = next(data.numpy_batches(prepared, CONFIG, "train", 32, seed=4))
    assert not np.array_equal(other_seed["inputs"], b["inputs"])


def test_eval_batches_are_normalised_and_padded(prepared, fixture):
    batches = list(data.numpy_batches(prepared, CONFIG, "test", 32, seed=0))
    assert [len(b["weights"]) for b in batches] == [32, 32]
    np.testing.assert_array_equal(batches[1]["weights"], np.r_[np.ones(18), np.zeros(14)])
    inputs = np.concatenate([b["inputs"] for b in batches])[:50]
    expected = (fixture.test_images / 255.0 - np.array(CONFIG.train_mean)) / np.array(
        CONFIG.train_stddev
    )
    np.testing.assert_allclose(inputs, expected, atol=2e-5)
    np.testing.assert_array_equal(
        np.concatenate([b["targets"] for b in batches])[:50], fixture.test_labels
    )
    capped = list(data.numpy_batches(prepared, CONFIG, "eval_train", 32, seed=0, num_examples=40))
    assert sum(float(b["weights"].sum()) for b in capped) == 40


def test_torchvision_layout_is_read_too(prepared, tmp_path):
    folder = tmp_path / data.ARCHIVE_DIR
    folder.mkdir()
    for name in data.BATCH_FILES:
        (folder / name).write_bytes((prepared / data.DATASET / name).read_bytes())
    data.clear_cache()
    np.testing.assert_array_equal(
        data.load_split(tmp_path, CONFIG, "test")["inputs"],
        data.load_split(prepared, CONFIG, "test")["inputs"],
    )


def test_corrupt_or_foreign_batches_are_rejected(tmp_path):
    folder = tmp_path / data.DATASET
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DatasetError, match="data_batch_1"):
        data.read_batch(folder / "data_batch_1")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(DatasetError, match="unexpected object"):
        data.read_batch(folder / "data_batch_1")
    with pytest.raises(DatasetError, match="prepare cifar10"):
        data.load_split(tmp_path / "empty", CONFIG, "train")


def test_synthetic_batch_shapes():
    b = data.synthetic_batch(CONFIG, 4, seed=0)
    assert b["inputs"].shape == (4, 32, 32, 3) and b["inputs"].dtype == np.float32
    assert b["targets"].shape == (4,) and b["targets"].max() < 10
