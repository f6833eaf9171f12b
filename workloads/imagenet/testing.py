"""Tiny ImageNet-format fixtures: the official archive structures, with a few generated JPEGs.

`write_archives` writes, under one folder:

* ``ILSVRC2012_img_train.tar``: a tar of per-class tars ``<wnid>.tar`` of ``<wnid>_<k>.JPEG``;
* ``ILSVRC2012_img_val.tar``: flat ``ILSVRC2012_val_<8 digits>.JPEG``;
* ``ILSVRC2012_devkit_t12.tar.gz``: ``data/meta.mat`` (a ``synsets`` struct array with the
  devkit's fields, class ids in a shuffled order plus one non-leaf synset, as in the real file)
  and ``data/ILSVRC2012_validation_ground_truth.txt``;
* ``valprep.sh``: the same labels as ``mv <file> <wnid>/`` lines;
* ``imagenetv2-matched-frequency.tar.gz``: ``imagenetv2-matched-frequency-format-val/<label>/``.

Images are small JPEGs of varied sizes whose colour encodes the class; the train set also holds
the oddities of the real archive: a greyscale JPEG, a CMYK JPEG and a PNG named ``.JPEG``.
`ImageNetFixture.config` returns a workload config whose split sizes match the fixture.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from algoperf.workload_config import WorkloadConfig
from workloads.imagenet import data
from workloads.imagenet.spec import VARIANTS


@dataclasses.dataclass(frozen=True)
class ImageNetFixture:
    """Paths, checksums and contents of the archives `write_archives` wrote."""

    train_tar: Path
    val_tar: Path
    devkit_tar: Path
    valprep: Path
    v2_tar: Path
    synsets: tuple[str, ...]
    num_train: int
    num_val: int
    num_v2: int
    val_wnids: dict[str, str]  # validation file name -> wnid

    @property
    def checksums(self) -> dict[str, str]:
        """The MD5s (SHA-256 for v2) of the fixture archives, keyed like `data.ARCHIVES`."""
        return {
            "train": _digest(self.train_tar, "md5"),
            "val": _digest(self.val_tar, "md5"),
            "devkit": _digest(self.devkit_tar, "md5"),
            "v2": _digest(self.v2_tar, "sha256"),
        }

    def config(self, name: str = "imagenet_resnet") -> WorkloadConfig:
        """The `name` config with split sizes and class count of this fixture."""
        base = VARIANTS[name]
        return dataclasses.replace(
            base,
            num_train_examples=self.num_train,
            num_validation_examples=self.num_val,
            num_test_examples=self.num_v2,
            num_eval_train_examples=min(self.num_train, 8),
            model={**base.model, "num_classes": len(self.synsets)},
        )


def _digest(path: Path, algorithm: str) -> str:
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


def jpeg_bytes(
    label: int, k: int, size: tuple[int, int], mode: str = "RGB", fmt: str = "JPEG"
) -> bytes:
    """A small image whose colour encodes `label` with a gradient and a marker varying with `k`."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack(
        [
            (40 + 50 * label + x * 2) % 256,
            (200 - 30 * label + y * 3) % 256,
            (90 + 70 * k + (x + y)) % 256,
        ],
        axis=-1,
    ).astype(np.uint8)
    img = Image.fromarray(rgb)
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(payload))


_SIZES = ((48, 36), (36, 52), (64, 40), (40, 40), (30, 70))


def _meta_mat(synsets: list[str], ids: dict[str, int]) -> bytes:
    import scipy.io

    fields = [
        "ILSVRC2012_ID",
        "WNID",
        "words",
        "gloss",
        "num_children",
        "children",
        "wordnet_height",
        "num_train_images",
    ]
    rows = [(ids[w], w, 0) for w in synsets] + [(len(synsets) + 1, "n99999999", 2)]
    rows.sort(key=lambda r: r[0])
    arr = np.zeros((len(rows), 1), dtype=[(f, "O") for f in fields])
    for i, (iid, wnid, children) in enumerate(rows):
        arr[i, 0] = (
            np.array([[iid]], dtype=np.uint16),
            np.array([wnid]),
            np.array([f"class {wnid}"]),
            np.array(["a fixture class"]),
            np.array([[children]], dtype=np.uint8),
            np.zeros((1, 0)),
            np.array([[0]], dtype=np.uint8),
            np.array([[3]], dtype=np.uint16),
        )
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"synsets": arr})
    return buf.getvalue()


def write_archives(
    directory: Path,
    *,
    num_classes: int = 3,
    train_per_class: int = 4,
    val_per_class: int = 2,
    v2_per_class: int = 2,
    seed: int = 0,
) -> ImageNetFixture:
    """Write the five fixture files into `directory` (official file names)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    synsets = sorted(f"n{1440764 + 1111 * i:08d}" for i in range(num_classes))
    # Devkit class ids follow the devkit's own (non-alphabetical) order, as in the real file.
    ids = {w: int(i) + 1 for w, i in zip(synsets, rng.permutation(num_classes))}

    train_tar = directory / data.ARCHIVES["train"].name
    with tarfile.open(train_tar, "w") as outer:
        for label, wnid in enumerate(synsets):
            inner_buf = io.BytesIO()
            with tarfile.open(fileobj=inner_buf, mode="w") as inner:
                for k in range(train_per_class):
                    mode, fmt = "RGB", "JPEG"
                    if label == 0 and k == 1:
                        mode = "L"
                    elif label == 0 and k == 2:
                        mode = "CMYK"
                    elif label == 1 and k == 0:
                        fmt = "PNG"  # the real archive has a PNG with a .JPEG name
                    payload = jpeg_bytes(label, k, _SIZES[(label + k) % len(_SIZES)], mode, fmt)
                    _add(inner, f"{wnid}_{k + 1}.JPEG", payload)
            _add(outer, f"{wnid}.tar", inner_buf.getvalue())

    num_val = num_classes * val_per_class
    val_labels = rng.permutation(np.arange(num_val) % num_classes)
    val_wnids = {}
    val_tar = directory / data.ARCHIVES["val"].name
    with tarfile.open(val_tar, "w") as tar:
        for i, label in enumerate(val_labels):
            name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
            val_wnids[name] = synsets[label]
            _add(tar, name, jpeg_bytes(int(label), 10 + i, _SIZES[i % len(_SIZES)]))

    devkit_tar = directory / data.ARCHIVES["devkit"].name
    truth = "".join(f"{ids[synsets[label]]}\n" for label in val_labels)
    with tarfile.open(devkit_tar, "w:gz") as tar:
        _add(tar, "ILSVRC2012_devkit_t12/data/meta.mat", _meta_mat(synsets, ids))
        _add(
            tar, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", truth.encode()
        )
        _add(tar, "ILSVRC2012_devkit_t12/readme.txt", b"fixture devkit\n")

    valprep = directory / "valprep.sh"
    lines = [f"mkdir -p {w}\n" for w in synsets]
    lines += [f"mv {name} {wnid}/\n" for name, wnid in val_wnids.items()]
    valprep.write_text("".join(lines))

    v2_tar = directory / data.ARCHIVES["v2"].name
    with tarfile.open(v2_tar, "w:gz") as tar:
        for label in range(num_classes):
            for k in range(v2_per_class):
                name = f"{data.V2_TOPDIR}/{label}/{hashlib.sha1(f'{label}-{k}'.encode()).hexdigest()}.jpeg"
                _add(tar, name, jpeg_bytes(label, 20 + k, _SIZES[k % len(_SIZES)]))

    return ImageNetFixture(
        train_tar=train_tar,
        val_tar=val_tar,
        devkit_tar=devkit_tar,
        valprep=valprep,
        v2_tar=v2_tar,
        synsets=tuple(synsets),
        num_train=num_classes * train_per_class,
        num_val=num_val,
        num_v2=num_classes * v2_per_class,
        val_wnids=val_wnids,
    )


def write_dataset_fixture(dataset: str, data_dir: Path | str) -> dict[str, int]:
    """``algoperf datasets prepare imagenet --fixture``: 3 classes of tiny images, all splits.

    The five archives (official names and structure) are written to a temporary folder and
    converted into ``<data_dir>/imagenet/`` by the real `data.prepare` (with the fixture's own
    checksums); returns the split sizes (the registry records them in ``fixture.json``). The
    model keeps its 1000 classes; the labels are 0-2.
    """
    import tempfile

    del dataset
    with tempfile.TemporaryDirectory() as tmp:
        archives = write_archives(Path(tmp))
        data.prepare(
            data_dir,
            train_tar=archives.train_tar,
            val_tar=archives.val_tar,
            devkit_tar=archives.devkit_tar,
            v2_tar=archives.v2_tar,
            checksums=archives.checksums,
            progress=False,
        )
    return {
        "num_train_examples": archives.num_train,
        "num_eval_train_examples": min(archives.num_train, 8),
        "num_validation_examples": archives.num_val,
        "num_test_examples": archives.num_v2,
        "eval_batch_size": 16,
    }
