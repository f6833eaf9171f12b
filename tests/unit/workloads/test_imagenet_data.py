"""ImageNet: preparation from official-format archives (resumable), index, and batches."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import shutil
import threading
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from algoperf.data import DatasetError, images
from algoperf.data.download import DiskSpaceError, manifest_status
from workloads.imagenet import data, testing


@pytest.fixture(scope="module")
def fixture(tmp_path_factory) -> testing.ImageNetFixture:
    return testing.write_archives(tmp_path_factory.mktemp("imagenet_src"))


def _prepare(fx: testing.ImageNetFixture, root: Path, **kwargs) -> Path:
    args = {
        "train_tar": fx.train_tar,
        "val_tar": fx.val_tar,
        "devkit_tar": fx.devkit_tar,
        "v2_tar": fx.v2_tar,
        "checksums": fx.checksums,
        "progress": False,
        **kwargs,
    }
    return data.prepare(root, **args)


@pytest.fixture(scope="module")
def prepared(fixture, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imagenet_data")
    _prepare(fixture, root)
    return root


def _tree(root: Path) -> dict[str, bytes]:
    folder = root / data.DATASET
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".verified" not in p.parts and p.name != ".algoperf_manifest.json"
    }


# Preparation -----------------------------------------------------------------------------------


def test_prepare_writes_the_documented_layout(prepared, fixture):
    folder = prepared / data.DATASET
    assert manifest_status(folder) == "ready"
    assert (folder / "synsets.txt").read_text().split() == list(fixture.synsets)
    paths, labels = data.load_index(prepared, "train")
    assert len(paths) == fixture.num_train
    for p, label in zip(paths, labels):
        wnid = p.decode().split("/")[1]
        assert p.decode().startswith(f"train/{wnid}/{wnid}_")
        assert fixture.synsets[label] == wnid
        assert (folder / p.decode()).is_file()
    # Files are kept byte for byte: the PNG named .JPEG is still a PNG.
    png = folder / "train" / fixture.synsets[1] / f"{fixture.synsets[1]}_1.JPEG"
    assert png.read_bytes().startswith(b"\x89PNG")
    assert not list(folder.rglob(".*partial")) and not list(folder.rglob("*.tmp"))


def test_validation_labels_come_from_the_devkit(prepared, fixture):
    paths, labels = data.load_index(prepared, "validation")
    assert len(paths) == fixture.num_val
    for p, label in zip(paths, labels):
        _, wnid, name = p.decode().split("/")
        assert fixture.val_wnids[name] == wnid == fixture.synsets[label]
    assert list(labels) == sorted(labels)


def test_valprep_script_gives_the_same_validation_split(fixture, prepared, tmp_path):
    _prepare(fixture, tmp_path, devkit_tar=None, val_labels=fixture.valprep)
    for split in ("train", "validation", "test"):
        a, b = data.load_index(prepared, split), data.load_index(tmp_path, split)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_v2_labels_are_the_folder_numbers(prepared, fixture):
    paths, labels = data.load_index(prepared, "test")
    assert len(paths) == fixture.num_v2
    assert [int(p.decode().split("/")[1]) for p in paths] == list(labels)


def test_prepare_is_idempotent(prepared, fixture):
    before = _tree(prepared)
    # Ready: returns at once, needs none of the archives.
    assert data.prepare(prepared, progress=False) == prepared / data.DATASET
    assert _tree(prepared) == before


def test_interrupted_preparation_resumes_to_the_same_result(
    fixture, prepared, tmp_path, monkeypatch
):
    calls = {"class": 0, "member": 0}
    real_class, real_member = data._extract_class, data._write_member

    def crash_on_second_class(outer, member, dest, archive):
        calls["class"] += 1
        if calls["class"] == 2:
            # Die half-way through the class: a partial folder is left behind.
            partial = dest / f".{member.name[:-4]}.partial"
            partial.mkdir()
            (partial / "half.JPEG").write_bytes(b"\xff\xd8")
            raise KeyboardInterrupt
        real_class(outer, member, dest, archive)

    monkeypatch.setattr(data, "_extract_class", crash_on_second_class)
    with pytest.raises(KeyboardInterrupt):
        _prepare(fixture, tmp_path)
    train_dir = tmp_path / data.DATASET / "train"
    assert len([p for p in train_dir.iterdir() if not p.name.startswith(".")]) == 1
    assert not (tmp_path / data.DATASET / data.INDEX_FILES["train"]).exists()
    monkeypatch.setattr(data, "_extract_class", real_class)

    def crash_in_validation(tar, member, dest, atomic=True):
        if "ILSVRC2012_val_" in member.name:
            calls["member"] += 1
            if calls["member"] == 3:
                # Die while writing: a truncated temporary file is left behind.
                dest.with_name(f".{dest.name}.tmp").write_bytes(b"\xff\xd8\xff")
                raise KeyboardInterrupt
        real_member(tar, member, dest, atomic)

    monkeypatch.setattr(data, "_write_member", crash_in_validation)
    with pytest.raises(KeyboardInterrupt):
        _prepare(fixture, tmp_path)
    assert (tmp_path / data.DATASET / data.INDEX_FILES["train"]).exists()
    assert not (tmp_path / data.DATASET / data.INDEX_FILES["validation"]).exists()
    monkeypatch.setattr(data, "_write_member", real_member)

    _prepare(fixture, tmp_path)
    assert _tree(tmp_path) == _tree(prepared)
    assert manifest_status(tmp_path / data.DATASET) == "ready"


def test_wrong_checksum_names_the_file(fixture, tmp_path):
    sums = {**fixture.checksums, "train": "0" * 32}
    with pytest.raises(DatasetError, match=r"ILSVRC2012_img_train\.tar.*md5"):
        _prepare(fixture, tmp_path, checksums=sums)


def test_checksums_are_verified_once(fixture, tmp_path, monkeypatch):
    _prepare(fixture, tmp_path / "a")
    hashed = []
    real = data.file_digests
    monkeypatch.setattr(data, "file_digests", lambda p, algos: hashed.append(p) or real(p, algos))
    shutil.rmtree(tmp_path / "a" / data.DATASET / "v2")
    (tmp_path / "a" / data.DATASET / data.INDEX_FILES["test"]).unlink()
    _prepare(fixture, tmp_path / "a")
    assert hashed == []  # the v2 archive was verified by the first run


def test_missing_archives_say_where_to_get_them(fixture, tmp_path):
    with pytest.raises(DatasetError, match=r"image-net\.org.*downloads"):
        data.prepare(tmp_path, progress=False)
    with pytest.raises(DatasetError, match="validation labels"):
        _prepare(fixture, tmp_path, devkit_tar=None)
    with pytest.raises(DatasetError, match="not found"):
        _prepare(fixture, tmp_path / "b", v2_tar=None, download_v2=False)


def test_archives_are_found_in_the_downloads_folder(fixture, prepared, tmp_path):
    downloads = tmp_path / data.DATASET / "downloads"
    downloads.mkdir(parents=True)
    for f in (fixture.train_tar, fixture.val_tar, fixture.devkit_tar, fixture.v2_tar):
        (downloads / f.name).symlink_to(f)
    data.prepare(tmp_path, checksums=fixture.checksums, progress=False)
    assert (
        _tree(tmp_path).keys() - {f"downloads/{f.name}" for f in downloads.iterdir()}
        == _tree(prepared).keys()
    )


def test_free_space_is_checked_before_extracting(fixture, tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(
        data.check_free_space.__globals__["shutil"], "disk_usage", lambda p: usage(1, 1, 1000)
    )
    with pytest.raises(DiskSpaceError, match="ImageNet train"):
        _prepare(fixture, tmp_path)
    assert not list((tmp_path / data.DATASET / "train").glob("n*"))


def test_v2_is_downloaded_when_not_given(fixture, tmp_path, monkeypatch):
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(fixture.v2_tar.parent)
    )
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{fixture.v2_tar.name}"
        spec = data.Archive(
            fixture.v2_tar.name, "sha256", fixture.checksums["v2"], fixture.v2_tar.stat().st_size
        )
        monkeypatch.setitem(data.ARCHIVES, "v2", spec)
        monkeypatch.setattr(data, "V2_URLS", ("http://127.0.0.1:9/unreachable", url))
        _prepare(fixture, tmp_path, v2_tar=None)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (tmp_path / data.DATASET / "downloads" / fixture.v2_tar.name).is_file()
    assert len(data.load_index(tmp_path, "test")[0]) == fixture.num_v2


def test_val_label_file_formats(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_text(
        "mkdir -p n01440764\n"
        "mv ILSVRC2012_val_00000001.JPEG n01751748/\n"
        "ILSVRC2012_val_00000002.JPEG n09193705\n"
        "ILSVRC2012_val_00000003,n02105855 12 34 56 78\n"
    )
    assert data.read_val_label_file(f) == {1: "n01751748", 2: "n09193705", 3: "n02105855"}
    f.write_text("nothing useful\n")
    with pytest.raises(DatasetError, match="pairs no"):
        data.read_val_label_file(f)


# Batches ---------------------------------------------------------------------------------------


def _batches(root, config, split, bs, n=None, **kwargs):
    it = data.numpy_batches(
        root, config, split, bs, seed=5, num_workers=kwargs.pop("num_workers", 0), **kwargs
    )
    out = []
    for b in it:
        out.append({k: v.copy() for k, v in b.items()})
        if n is not None and len(out) == n:
            break
    it.close()
    return out


def _equal(a, b) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x) for x, y in zip(a, b)
    )


def test_train_batches_resnet(prepared, fixture):
    config = fixture.config("imagenet_resnet")
    (b,) = _batches(prepared, config, "train", 4, n=1)
    assert b.keys() == {"inputs", "targets"}
    assert b["inputs"].shape == (4, 224, 224, 3) and b["inputs"].dtype == np.float32
    assert b["targets"].dtype == np.int32
    # Row 0 is the random resized crop of its file with the generator of (seed, step 0, row 0).
    paths, labels = data.load_index(prepared, "train")
    order = data.iterators.epoch_permutation(len(paths), 5, 0)[:4]
    np.testing.assert_array_equal(b["targets"], labels[order])
    path = prepared / data.DATASET / paths[order[1]].decode()
    expected = images.normalize(
        np.asarray(images.train_crop(path, images.example_rng(5, 0, 1))),
        config.train_mean,
        config.train_stddev,
    )
    np.testing.assert_array_equal(b["inputs"][1], expected)


def test_train_batches_vit_have_randaugment_and_mixup(prepared, fixture):
    config = fixture.config("imagenet_vit")
    mixed = _batches(prepared, config, "train", 6, n=2)
    plain = _batches(prepared, config, "train", 6, n=2, mixup_alpha=0)
    assert mixed[0]["targets"].shape == (6, 3) and mixed[0]["targets"].dtype == np.float32
    np.testing.assert_allclose(mixed[0]["targets"].sum(axis=1), 1, rtol=1e-6)
    for step in range(2):
        rng = images.batch_rng(5, step, images.TAG_MIXUP)
        ref = images.mixup(plain[step], rng, 0.2, num_classes=3)
        np.testing.assert_allclose(mixed[step]["inputs"], ref["inputs"], atol=1e-5)
        np.testing.assert_allclose(mixed[step]["targets"], ref["targets"], atol=1e-6)
    no_aug = _batches(prepared, config, "train", 6, n=1, mixup_alpha=0, randaugment=False)
    assert not np.array_equal(no_aug[0]["inputs"], plain[0]["inputs"])  # RandAugment changed them


def test_batches_identical_for_0_1_2_workers_and_threads(prepared, fixture):
    config = fixture.config("imagenet_vit")
    for split, bs, n in (("train", 4, 3), ("validation", 4, None)):
        reference = _batches(prepared, config, split, bs, n)
        for kwargs in (
            {"num_workers": 1},
            {"num_workers": 2},
            {"num_workers": 2, "backend": "thread"},
        ):
            assert _equal(_batches(prepared, config, split, bs, n, **kwargs), reference), (
                split,
                kwargs,
            )


def test_train_resume_and_shards_reproduce_the_same_rows(prepared, fixture):
    config = fixture.config("imagenet_vit")
    full = _batches(prepared, config, "train", 6, n=4)
    assert _equal(_batches(prepared, config, "train", 6, n=2, start_step=2), full[2:])
    for index in range(3):
        shard = _batches(prepared, config, "train", 6, n=4, shard=(index, 3))
        for k in range(4):
            for key in ("inputs", "targets"):
                np.testing.assert_array_equal(
                    shard[k][key], full[k][key][2 * index : 2 * index + 2]
                )
    with pytest.raises(ValueError, match="divisible"):
        data.numpy_batches(prepared, config, "train", 6, seed=0, shard=(0, 4))


def test_eval_batches_are_the_torchvision_view_padded(prepared, fixture):
    config = fixture.config("imagenet_vit")
    batches = _batches(prepared, config, "validation", 4)
    assert [b["weights"].tolist() for b in batches] == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batches[0].keys() == {"inputs", "targets", "weights"}
    assert batches[0]["targets"].dtype == np.int32  # no mixup outside training
    paths, labels = data.load_index(prepared, "validation")
    np.testing.assert_array_equal(np.concatenate([b["targets"] for b in batches])[:6], labels)
    assert not batches[1]["inputs"][2:].any()
    img = Image.open(prepared / data.DATASET / paths[5].decode()).convert("RGB")
    w, h = img.size
    new = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    top, left = round((new[1] - 224) / 2), round((new[0] - 224) / 2)
    view = np.asarray(img.resize(new, Image.Resampling.BILINEAR))[
        top : top + 224, left : left + 224
    ]
    mean, std = np.array(config.train_mean), np.array(config.train_stddev)
    np.testing.assert_allclose(batches[1]["inputs"][1], (view - mean) / std, atol=1e-5)
    with pytest.raises(ValueError, match="train split only"):
        data.numpy_batches(prepared, config, "validation", 4, seed=0, mixup_alpha=0.2)


def test_eval_train_is_a_seeded_subset_of_train(prepared, fixture):
    config = fixture.config()
    a = _batches(prepared, config, "eval_train", 4, num_examples=8)
    assert sum(float(b["weights"].sum()) for b in a) == 8
    b = _batches(prepared, config, "eval_train", 4, num_examples=8)
    assert _equal(a, b)
    labels = np.concatenate([x["targets"] for x in a])
    assert len(set(labels.tolist())) > 1  # not just the first class folder


def test_config_size_mismatch_and_missing_index(prepared, fixture, tmp_path):
    config = dataclasses.replace(fixture.config(), num_validation_examples=50_000)
    with pytest.raises(DatasetError, match="expects 50000"):
        data.load_split(prepared, config, "validation")
    with pytest.raises(DatasetError, match="prepare imagenet"):
        data.load_split(tmp_path, fixture.config(), "train")


def test_corrupt_jpeg_names_the_file(prepared, fixture, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)
    paths, _ = data.load_index(copy, "validation")
    bad = copy / data.DATASET / paths[0].decode()
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(images.ImageDecodeError, match=bad.name):
        _batches(copy, fixture.config(), "validation", 4)


def test_synthetic_batch_shapes(fixture):
    config = fixture.config()
    b = data.synthetic_batch(config, 2, seed=0)
    assert b["inputs"].shape == (2, 224, 224, 3) and b["targets"].shape == (2,)
    soft = data.synthetic_batch(config, 2, seed=0, soft_targets=True)
    assert soft["targets"].shape == (2, 3)
    np.testing.assert_array_equal(soft["targets"].sum(axis=1), 1)
