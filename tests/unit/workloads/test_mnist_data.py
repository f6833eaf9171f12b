"""MNIST / Fashion-MNIST data: loading from synthetic IDX fixtures (splits, normalisation,
errors), `prepare` against a local HTTP server, the Debian fallback, and the datasets CLI."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import socket
import struct
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from algoperf.data import DatasetError, cli, debian
from algoperf.data.download import DiskSpaceError, DownloadError, manifest_status
from workloads.mnist import data, testing
from workloads.mnist.spec import VARIANTS

NUM_TRAIN_FILE, NUM_TEST = 120, 30


@pytest.fixture(autouse=True)
def _fresh_cache():
    data.clear_cache()
    yield
    data.clear_cache()


@pytest.fixture
def fixture_root(tmp_path):
    testing.write_fixture(tmp_path, "mnist", num_train_file=NUM_TRAIN_FILE, num_test=NUM_TEST)
    return tmp_path


@pytest.fixture
def config():
    return testing.fixture_config("mnist", num_train_file=NUM_TRAIN_FILE, num_test=NUM_TEST)


def _raw(path: Path) -> np.ndarray:
    """Independent IDX decoder for checking the loader."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim :], np.uint8).reshape(dims)


# ------------------------------------------------------------------------------------------
# Loading


def test_fixture_config_sizes(config):
    assert config.num_train_examples == 100
    assert config.num_validation_examples == 20
    assert config.num_eval_train_examples == 20
    assert config.num_test_examples == 30
    assert config.train_mean == VARIANTS["mnist"].train_mean


def test_splits_are_the_upstream_slices(fixture_root, config):
    folder = fixture_root / "mnist"
    train_images = _raw(folder / data.TRAIN_IMAGES)
    train_labels = _raw(folder / data.TRAIN_LABELS)
    test_images = _raw(folder / data.TEST_IMAGES)
    test_labels = _raw(folder / data.TEST_LABELS)
    expected = {
        "train": (train_images[:100], train_labels[:100]),
        "eval_train": (train_images[:20], train_labels[:20]),
        "validation": (train_images[100:120], train_labels[100:120]),
        "test": (test_images[:30], test_labels[:30]),
    }
    for split, (images, labels) in expected.items():
        got = data.load_split(fixture_root, config, split)
        assert got["inputs"].shape == (len(labels), 28, 28, 1)
        assert got["inputs"].dtype == np.float32
        assert got["targets"].dtype == np.int32
        np.testing.assert_array_equal(got["targets"], labels)
        # Upstream's normalisation: raw 0-255 pixels, float32 arithmetic, no division by 255.
        want = (images.astype(np.float32)[..., None] - np.float32(0.1307)) / np.float32(0.3081)
        np.testing.assert_array_equal(got["inputs"], want)


def test_normalisation_follows_the_config(fixture_root, config):
    other = config.variant(config.name, train_mean=10.0, train_stddev=2.0)
    a = data.load_split(fixture_root, config, "test")["inputs"]
    b = data.load_split(fixture_root, other, "test")["inputs"]
    np.testing.assert_allclose(b, (a * 0.3081 + 0.1307 - 10.0) / 2.0, rtol=1e-5, atol=1e-4)


def test_data_dir_may_be_the_dataset_folder(fixture_root, config):
    a = data.load_split(fixture_root, config, "validation")
    b = data.load_split(fixture_root / "mnist", config, "validation")
    np.testing.assert_array_equal(a["inputs"], b["inputs"])


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    testing.write_fixture(tmp_path, "fashion_mnist", num_train_file=60, num_test=10, seed=1)
    cfg = testing.fixture_config("fashion_mnist", num_train_file=60, num_test=10)
    got = data.load_split(tmp_path, cfg, "train")
    assert got["inputs"].shape == (50, 28, 28, 1)
    assert cfg.dataset == "fashion_mnist"


def test_arrays_are_cached_read_only_and_shared(fixture_root, config, monkeypatch):
    a = data.load_split(fixture_root, config, "train")
    monkeypatch.setattr(data, "_decode_idx", lambda *args: pytest.fail("decoded twice"))
    b = data.load_split(fixture_root, config, "train")
    assert np.shares_memory(a["inputs"], b["inputs"])
    ev = data.load_split(fixture_root, config, "eval_train")
    assert np.shares_memory(a["inputs"], ev["inputs"])  # eval_train is a view of train
    assert not a["inputs"].flags.writeable
    with pytest.raises(ValueError):
        a["inputs"][0, 0, 0, 0] = 1.0


def test_rewritten_file_is_read_again(fixture_root, config):
    before = data.load_split(fixture_root, config, "test")["targets"].copy()
    testing.write_fixture(
        fixture_root, "mnist", num_train_file=NUM_TRAIN_FILE, num_test=NUM_TEST, seed=9
    )
    after = data.load_split(fixture_root, config, "test")["targets"]
    assert not np.array_equal(before, after)


def test_missing_file_error_names_file_and_fix(fixture_root, config):
    (fixture_root / "mnist" / data.TEST_LABELS).unlink()
    with pytest.raises(DatasetError) as info:
        data.load_split(fixture_root, config, "test")
    message = str(info.value)
    assert data.TEST_LABELS in message and "missing" in message
    assert f"algoperf datasets prepare mnist --data_dir {fixture_root}" in message
    assert "\n" not in message


def test_missing_dataset_folder(tmp_path, config):
    with pytest.raises(DatasetError, match=r"mnist/train-images-idx3-ubyte\.gz is missing"):
        data.load_split(tmp_path, config, "train")


def test_truncated_file_is_reported(fixture_root, config):
    path = fixture_root / "mnist" / data.TRAIN_IMAGES
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(
        DatasetError, match=r"corrupt or truncated.*algoperf datasets prepare mnist"
    ):
        data.load_split(fixture_root, config, "train")


def test_idx_payload_shorter_than_header_says(fixture_root, config):
    path = fixture_root / "mnist" / data.TEST_IMAGES
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-28]))  # valid gzip, one image row short
    with pytest.raises(DatasetError, match="header"):
        data.load_split(fixture_root, config, "test")


def test_not_an_idx_file(fixture_root, config):
    (fixture_root / "mnist" / data.TEST_LABELS).write_bytes(gzip.compress(b"hello world"))
    with pytest.raises(DatasetError, match="not a 1-d uint8 IDX file"):
        data.load_split(fixture_root, config, "test")


def test_bad_labels_and_count_mismatch(fixture_root, config):
    labels = fixture_root / "mnist" / data.TEST_LABELS
    testing.write_idx_gz(labels, np.full(NUM_TEST, 12, np.uint8))
    with pytest.raises(DatasetError, match="label 12"):
        data.load_split(fixture_root, config, "test")
    testing.write_idx_gz(labels, np.zeros(NUM_TEST - 1, np.uint8))
    with pytest.raises(DatasetError, match="labels"):
        data.load_split(fixture_root, config, "test")


def test_file_too_small_for_the_config(fixture_root):
    with pytest.raises(DatasetError, match=r"holds 120 examples.*validation split of mnist"):
        data.load_split(fixture_root, VARIANTS["mnist"], "validation")


def test_unknown_split(fixture_root, config):
    with pytest.raises(ValueError, match="unknown split"):
        data.load_split(fixture_root, config, "holdout")


def test_synthetic_batch():
    batch = data.synthetic_batch(VARIANTS["mnist"], 8, seed=0)
    assert batch["inputs"].shape == (8, 28, 28, 1) and batch["inputs"].dtype == np.float32
    assert batch["targets"].shape == (8,) and batch["targets"].dtype == np.int32
    assert batch["targets"].max() < 10
    again = data.synthetic_batch(VARIANTS["mnist"], 8, seed=0)
    np.testing.assert_array_equal(batch["inputs"], again["inputs"])


# ------------------------------------------------------------------------------------------
# Fixtures


def test_fixture_is_deterministic_and_seeded(tmp_path):
    a = testing.write_fixture(tmp_path / "a", num_train_file=50, num_test=10, seed=3)
    b = testing.write_fixture(tmp_path / "b", num_train_file=50, num_test=10, seed=3)
    c = testing.write_fixture(tmp_path / "c", num_train_file=50, num_test=10, seed=4)
    for name in data.FILE_NAMES:
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / data.TRAIN_IMAGES).read_bytes() != (c / data.TRAIN_IMAGES).read_bytes()


def test_fixture_is_learnable_but_not_trivial(tmp_path):
    """Class means of the training split classify held-out examples well; a single pixel
    does not (the classes are separable only by their patterns)."""
    testing.write_fixture(tmp_path, num_train_file=1200, num_test=300)
    cfg = testing.fixture_config("mnist", num_train_file=1200, num_test=300)
    train = data.load_split(tmp_path, cfg, "train")
    test = data.load_split(tmp_path, cfg, "test")
    assert np.bincount(train["targets"], minlength=10).min() >= 90  # balanced classes
    x = train["inputs"].reshape(len(train["inputs"]), -1)
    means = np.stack([x[train["targets"] == c].mean(0) for c in range(10)])
    xt = test["inputs"].reshape(len(test["inputs"]), -1)
    d = ((xt[:, None, :] - means[None]) ** 2).sum(-1)
    accuracy = float((d.argmin(1) == test["targets"]).mean())
    assert accuracy > 0.8
    # Not pure noise around identical images: examples of one class differ from each other.
    same = x[train["targets"] == 0]
    assert np.abs(same[0] - same[1]).mean() > 10


# ------------------------------------------------------------------------------------------
# prepare


def _official_like(raw: bytes, name: str, mtime: int) -> bytes:
    """A gzip file laid out like the official ones (FNAME, timestamp, XFL 0, OS Unix)."""
    return data.restore_gzip_header(gzip.compress(raw, mtime=0), name.removesuffix(".gz"), mtime)


def _debianised(official: bytes, name: str) -> bytes:
    """The same stream behind a normalised header (no file name, another timestamp)."""
    stream = official[10 + len(name.removesuffix(".gz")) + 1 :]
    return b"\x1f\x8b\x08\x00" + struct.pack("<I", 1591340269) + b"\x00\x03" + stream


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """Official-like fixture files served from 127.0.0.1; `data.SOURCES` points at them."""
    fixture = testing.write_fixture(tmp_path / "src", num_train_file=60, num_test=12)
    site = tmp_path / "site"
    site.mkdir()
    specs = []
    for i, name in enumerate(data.FILE_NAMES):
        raw = gzip.decompress((fixture / name).read_bytes())
        mtime = 1504176606 + i
        body = _official_like(raw, name, mtime)
        (site / name).write_bytes(body)
        specs.append(
            data.FileSpec(
                name,
                len(body),
                hashlib.md5(body).hexdigest(),
                hashlib.sha256(body).hexdigest(),
                hashlib.sha256(raw).hexdigest(),
                mtime,
            )
        )
    log: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            log.append(self.path)
            super().do_GET()

    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(site))
    )
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/"
    for dataset in ("mnist", "fashion_mnist"):
        pkg = "dataset-fashion-mnist" if dataset == "fashion_mnist" else None
        monkeypatch.setitem(data.SOURCES, dataset, data.Source((url,), tuple(specs), pkg))
    try:
        yield {"url": url, "site": site, "log": log, "specs": specs}
    finally:
        srv.shutdown()
        srv.server_close()


def _dead_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/"


def test_prepare_downloads_verifies_and_is_idempotent(tmp_path, mirror):
    root = tmp_path / "data"
    dest = data.prepare("mnist", root, progress=False)
    assert dest == root / "mnist"
    for name in data.FILE_NAMES:
        assert (dest / name).read_bytes() == (mirror["site"] / name).read_bytes()
    assert manifest_status(dest) == "ready"
    assert sorted(mirror["log"]) == sorted("/" + n for n in data.FILE_NAMES)
    data.prepare("mnist", root, progress=False)
    assert len(mirror["log"]) == 4  # nothing fetched the second time
    cfg = testing.fixture_config("mnist", num_train_file=60, num_test=12)
    assert data.load_split(root, cfg, "test")["inputs"].shape == (12, 28, 28, 1)


def test_prepare_replaces_only_a_corrupt_file(tmp_path, mirror):
    root = tmp_path / "data"
    data.prepare("mnist", root, progress=False)
    (root / "mnist" / data.TEST_LABELS).write_bytes(b"junk")
    data.prepare("mnist", root, progress=False)
    assert mirror["log"][4:] == ["/" + data.TEST_LABELS]
    assert (root / "mnist" / data.TEST_LABELS).read_bytes() == (
        mirror["site"] / data.TEST_LABELS
    ).read_bytes()


def test_prepare_checks_disk_space_first(tmp_path, mirror, monkeypatch):
    from algoperf.data import download

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: usage._replace(free=100))
    with pytest.raises(DiskSpaceError, match=r"mnist \(4 files\) needs"):
        data.prepare("mnist", tmp_path / "data", progress=False)
    assert mirror["log"] == []


def test_prepare_offline_without_fallback_source(tmp_path, mirror):
    with pytest.raises(DownloadError, match="mnist has no offline source") as info:
        data.prepare("mnist", tmp_path / "data", mirrors=[_dead_url()], timeout=2, progress=False)
    assert "\n" not in str(info.value)


def test_prepare_offline_fallback_disabled(tmp_path, mirror, monkeypatch):
    monkeypatch.setattr(
        debian, "fetch_package_files", lambda *a, **k: pytest.fail("fallback must not run")
    )
    with pytest.raises(DownloadError, match="allow the offline fallback"):
        data.prepare(
            "fashion_mnist",
            tmp_path / "data",
            offline_fallback=False,
            mirrors=[_dead_url()],
            timeout=2,
            progress=False,
        )


def _fake_package(monkeypatch, files: dict[str, bytes]):
    calls = []

    def fetch(pkg, patterns, dest, **kwargs):
        calls.append((pkg, list(patterns)))
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        out = []
        for name in patterns:
            (dest / name).write_bytes(files[name])
            out.append(dest / name)
        return out

    monkeypatch.setattr(debian, "fetch_package_files", fetch)
    return calls


def test_debian_fallback_rebuilds_the_official_files(tmp_path, mirror, monkeypatch):
    site = mirror["site"]
    packaged = {n: _debianised((site / n).read_bytes(), n) for n in data.FILE_NAMES}
    assert all(packaged[n] != (site / n).read_bytes() for n in data.FILE_NAMES)
    calls = _fake_package(monkeypatch, packaged)
    dest = data.prepare(
        "fashion_mnist", tmp_path / "data", mirrors=[_dead_url()], timeout=2, progress=False
    )
    assert calls == [("dataset-fashion-mnist", list(data.FILE_NAMES))]
    for name in data.FILE_NAMES:
        assert (dest / name).read_bytes() == (site / name).read_bytes()  # byte for byte
    assert manifest_status(dest) == "ready"
    assert not list(dest.glob(".debian-*"))


def test_debian_fallback_accepts_same_data_in_other_compression(tmp_path, mirror, monkeypatch):
    site = mirror["site"]
    packaged = {
        n: gzip.compress(gzip.decompress((site / n).read_bytes()), compresslevel=9, mtime=5)
        for n in data.FILE_NAMES
    }
    _fake_package(monkeypatch, packaged)
    dest = data.prepare(
        "fashion_mnist", tmp_path / "data", mirrors=[_dead_url()], timeout=2, progress=False
    )
    for name in data.FILE_NAMES:
        assert gzip.decompress((dest / name).read_bytes()) == gzip.decompress(
            (site / name).read_bytes()
        )
    # A second run accepts the verified payloads without fetching anything.
    monkeypatch.setattr(debian, "fetch_package_files", lambda *a, **k: pytest.fail("refetched"))
    data.prepare("fashion_mnist", tmp_path / "data", mirrors=[_dead_url()], progress=False)


def test_debian_fallback_rejects_other_data(tmp_path, mirror, monkeypatch):
    site = mirror["site"]
    packaged = {n: _debianised((site / n).read_bytes(), n) for n in data.FILE_NAMES}
    packaged[data.TEST_LABELS] = gzip.compress(b"\0\0\x08\x01\0\0\0\x01\x07")
    _fake_package(monkeypatch, packaged)
    with pytest.raises(DownloadError, match=r"offline fallback failed as well.*t10k-labels"):
        data.prepare(
            "fashion_mnist", tmp_path / "data", mirrors=[_dead_url()], timeout=2, progress=False
        )
    assert not (tmp_path / "data" / "fashion_mnist" / data.TEST_LABELS).exists()


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_debian_fallback_through_a_real_deb(tmp_path, mirror, monkeypatch):
    """The whole path with a locally built .deb laid out like dataset-fashion-mnist; only the
    apt download itself is replaced."""
    site = mirror["site"]
    pkg_root = tmp_path / "pkg"
    folder = pkg_root / "usr" / "share" / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    (pkg_root / "DEBIAN").mkdir()
    (pkg_root / "DEBIAN" / "control").write_text(
        "Package: dataset-fashion-mnist\nVersion: 0.0-1\nArchitecture: all\n"
        "Maintainer: Test <t@example.org>\nDescription: test\n"
    )
    for name in data.FILE_NAMES:
        (folder / name).write_bytes(_debianised((site / name).read_bytes(), name))
    deb = tmp_path / "dataset-fashion-mnist_0.0-1_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(pkg_root), str(deb)],
        check=True,
        capture_output=True,
    )
    monkeypatch.setattr(debian, "installed_files", lambda pkg: None)
    monkeypatch.setattr(debian, "_package_bytes", lambda pkg: None)
    monkeypatch.setattr(debian, "apt_download", lambda pkg, d, timeout=0: Path(shutil.copy(deb, d)))
    dest = data.prepare(
        "fashion_mnist", tmp_path / "data", mirrors=[_dead_url()], timeout=2, progress=False
    )
    for name in data.FILE_NAMES:
        assert (dest / name).read_bytes() == (site / name).read_bytes()


def test_restore_gzip_header_round_trip():
    raw = b"some idx payload" * 10
    official = _official_like(raw, "file-idx1-ubyte.gz", 1234)
    assert official[3] == 0x08 and b"file-idx1-ubyte\0" in official[:40]
    assert gzip.decompress(official) == raw
    assert (
        data.restore_gzip_header(
            _debianised(official, "file-idx1-ubyte.gz"), "file-idx1-ubyte", 1234
        )
        == official
    )
    with pytest.raises(ValueError):
        data.restore_gzip_header(b"not gzip at all, clearly", "x", 0)


def test_real_checksum_tables_are_complete():
    for dataset, source in data.SOURCES.items():
        assert [f.name for f in source.files] == list(data.FILE_NAMES), dataset
        for f in source.files:
            assert len(f.md5) == 32 and len(f.sha256) == 64 and f.size > 0
    assert data.SOURCES["fashion_mnist"].debian_package == "dataset-fashion-mnist"


# ------------------------------------------------------------------------------------------
# CLI


def test_cli_prepare_and_list(tmp_path, mirror, capsys):
    root = tmp_path / "data"
    assert cli.main(["list", "--data_dir", str(root)]) == 0
    assert "mnist" in capsys.readouterr().out
    assert cli.main(["datasets", "prepare", "mnist", "--data_dir", str(root), "--quiet"]) == 0
    assert f"mnist: ready in {root / 'mnist'}" in capsys.readouterr().out
    assert cli.main(["list", "--data_dir", str(root)]) == 0
    lines = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["mnist"] == "ready"
    assert lines["fashion_mnist"] == "missing"


def test_cli_uses_env_data_dir(tmp_path, mirror, monkeypatch, capsys):
    monkeypatch.setenv("ALGOPERF_DATA_DIR", str(tmp_path / "envdata"))
    assert cli.main(["prepare", "mnist", "--quiet"]) == 0
    assert (tmp_path / "envdata" / "mnist" / data.TRAIN_IMAGES).is_file()


def test_cli_errors(tmp_path, mirror, monkeypatch, capsys):
    assert cli.main(["prepare", "nosuch", "--data_dir", str(tmp_path)]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    assert cli.main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    monkeypatch.setitem(
        data.SOURCES, "mnist", data.Source((_dead_url(),), tuple(mirror["specs"]), None)
    )
    assert cli.main(["prepare", "mnist", "--data_dir", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("algoperf datasets prepare mnist: could not download")
    assert err.count("\n") == 1


def test_prepare_stops_trying_the_network_after_the_first_file_fails(tmp_path, mirror):
    (mirror["site"] / data.TRAIN_IMAGES).unlink()
    with pytest.raises(DownloadError, match="HTTP 404"):
        data.prepare("mnist", tmp_path / "data", progress=False)
    assert mirror["log"] == ["/" + data.TRAIN_IMAGES]


def test_prepare_keeps_going_once_a_file_succeeded(tmp_path, mirror):
    (mirror["site"] / data.TEST_IMAGES).unlink()  # the third file
    with pytest.raises(DownloadError, match="HTTP 404"):
        data.prepare("mnist", tmp_path / "data", progress=False)
    assert mirror["log"] == ["/" + n for n in data.FILE_NAMES]
    assert (tmp_path / "data" / "mnist" / data.TEST_LABELS).is_file()
