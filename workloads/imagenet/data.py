"""ImageNet-1k (ILSVRC2012) and ImageNet-v2 on disk, their preparation, and numpy batches.

Sources (the user downloads the ILSVRC2012 files from https://image-net.org/download-images after
registering; ImageNet-v2 is public and `prepare` can download it):

* ``ILSVRC2012_img_train.tar``: a tar of 1,000 per-class tars ``n<8 digits>.tar`` of JPEGs;
* ``ILSVRC2012_img_val.tar``: 50,000 JPEGs ``ILSVRC2012_val_<8 digits>.JPEG`` in one folder;
* validation labels: the devkit ``ILSVRC2012_devkit_t12.tar.gz`` (``data/meta.mat`` maps the
  devkit's class ids to WordNet ids, ``data/ILSVRC2012_validation_ground_truth.txt`` gives one id
  per validation image, in file-number order; this is how torchvision reads it), or instead any
  text file that pairs each validation file with its WordNet id, such as the ``valprep.sh`` script
  used by the PyTorch examples and upstream's setup (``mv ILSVRC2012_val_00000001.JPEG n01751748/``)
  or Kaggle's ``LOC_val_solution.csv``. No label data ships with this package;
* ``imagenetv2-matched-frequency.tar.gz`` (1,264,079,360 bytes, SHA-256 from TFDS): the test split,
  folders ``imagenetv2-matched-frequency-format-val/<class index>/``.

On-disk layout written by `prepare` (JPEGs are kept byte for byte, so preparation costs one
extraction; both frameworks and torchvision's ``ImageFolder`` can read it)::

    <data_dir>/imagenet/
        train/<wnid>/<wnid>_<n>.JPEG          1,281,167 images, 1,000 class folders
        val/<wnid>/ILSVRC2012_val_<n>.JPEG    50,000 images
        v2/<label>/<name>.jpeg                10,000 images (folder = class index, as distributed)
        synsets.txt                           the WordNet ids, sorted; label = line number
        index_train.npz, index_validation.npz, index_test.npz
                                              'paths' (bytes, relative to the folder) and int32
                                              'labels', sorted by (label, file name)
        .algoperf_manifest.json               written last: the dataset is complete

Labels are indices into the sorted WordNet ids (torchvision ``ImageFolder`` and TFDS order;
ImageNet-v2's folder numbers use the same order).

Preparation is idempotent and resumable: a class folder under ``train/`` appears only by renaming
a completely extracted temporary folder (``train/.<wnid>.partial``), so the class folder itself is
the per-class done marker; validation and v2 files are written to a temporary name and renamed,
and files already present with the right size are skipped; an index is written (atomically) only
after its split is complete. Archive checksums (MD5 for the ILSVRC2012 files as torchvision pins
them, SHA-256 for v2) are verified once and remembered in ``.verified/``. Free disk space is
checked before each split is extracted; tqdm shows progress.

Splits and batches (`numpy_batches`; transforms in `algoperf.data.images`): ``train`` = all
training images, shuffled per epoch by `algoperf.data.iterators.train_batches`, each image
random-resized-cropped to 224, flipped, [ViT: RandAugment], normalised, [ViT: mixup per global
batch with one-hot soft targets]; ``eval_train`` = a fixed random subset of train (a permutation
seeded by the data seed, first ``num_examples``), ``validation`` = the 50,000 validation images,
``test`` = ImageNet-v2, all three with the eval view (resize 256, centre crop 224) and padded
batches with 'weights'. Decoding runs in `algoperf.data.loader.ParallelBatchLoader` workers; every
image's randomness comes from ``example_rng(seed, step, row)``, so batches are identical for any
worker count and ``start_step`` resumes exactly.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
import sys
import tarfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from algoperf.data import DatasetError, iterators
from algoperf.data.download import (
    check_free_space,
    download_file,
    file_digests,
    manifest_status,
    write_manifest,
)
from algoperf.data.images import (
    DEFAULT_DRAFT_GAP,
    TAG_EVAL_SUBSET,
    TAG_MIXUP,
    batch_rng,
    eval_crop,
    example_rng,
    mixup_weight,
    normalize,
    rand_augment,
    train_crop,
)
from algoperf.data.loader import ParallelBatchLoader, check_shard, default_num_workers
from algoperf.workload_config import WorkloadConfig

DATASET = "imagenet"
SPLITS = ("train", "eval_train", "validation", "test")
NUM_CLASSES = 1000
IMAGE_SIZE = 224
RESIZE_SIZE = 256
MIXUP_ALPHA = 0.2
INDEX_FILES = {
    "train": "index_train.npz",
    "validation": "index_validation.npz",
    "test": "index_test.npz",
}
SYNSETS_FILE = "synsets.txt"
SPLIT_DIRS = {"train": "train", "validation": "val", "test": "v2"}
V2_TOPDIR = "imagenetv2-matched-frequency-format-val"
V2_URLS = (
    "https://huggingface.co/datasets/vaishaal/ImageNetV2/resolve/main/"
    "imagenetv2-matched-frequency.tar.gz",
    "https://s3-us-west-2.amazonaws.com/imagenetv2public/imagenetv2-matched-frequency.tar.gz",
)
DOWNLOAD_PAGE = "https://image-net.org/download-images"


@dataclasses.dataclass(frozen=True)
class Archive:
    """One source archive: its official name and checksum (algorithm, hex digest)."""

    name: str
    algorithm: str
    digest: str
    size: int | None = None


# MD5s as torchvision pins them; the v2 SHA-256 and size as TFDS pins them.
ARCHIVES: dict[str, Archive] = {
    "train": Archive("ILSVRC2012_img_train.tar", "md5", "1d675b47d978889d74fa0da5fadfb00e"),
    "val": Archive(
        "ILSVRC2012_img_val.tar", "md5", "29b22e2961454d5413ddabcf34fc5622", 6_744_924_160
    ),
    "devkit": Archive("ILSVRC2012_devkit_t12.tar.gz", "md5", "fa75699e90414af021442c21a62c3abf"),
    "v2": Archive(
        "imagenetv2-matched-frequency.tar.gz",
        "sha256",
        "f0c37fdf925916b19ea1323cd9a2208cdb6959ba2c32eef2a7fc393835c9ca7c",
        1_264_079_360,
    ),
}

_WNID = re.compile(r"n\d{8}")
_VAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})\.JPEG")
_VAL_LABEL_LINE = re.compile(r"(ILSVRC2012_val_(\d{8}))(?:\.JPEG)?\W+(n\d{8})")


def _fix_hint(data_dir: Path | str) -> str:
    return f"run `algoperf datasets prepare {DATASET} --data_dir {data_dir}`"


def dataset_dir(data_dir: Path | str) -> Path:
    """``<data_dir>/imagenet`` (or `data_dir` itself when it already is a prepared folder)."""
    data_dir = Path(data_dir).expanduser()
    if not (data_dir / DATASET).is_dir() and (data_dir / SYNSETS_FILE).is_file():
        return data_dir
    return data_dir / DATASET


# Reading the index -----------------------------------------------------------------------------

_index_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_index_lock = threading.Lock()


def load_index(data_dir: Path | str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(paths, labels) of a prepared split: bytes paths relative to the dataset folder, int32.

    `split` is ``train``, ``validation`` or ``test``. Cached per process, read-only.
    """
    if split not in INDEX_FILES:
        raise ValueError(f"no index for split {split!r}; expected one of {', '.join(INDEX_FILES)}")
    path = dataset_dir(data_dir) / INDEX_FILES[split]
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DatasetError(
            f"{path} is missing: ImageNet is not prepared there; {_fix_hint(data_dir)}"
        ) from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _index_lock:
        if key not in _index_cache:
            try:
                with np.load(path) as z:
                    paths, labels = z["paths"], z["labels"].astype(np.int32)
            except (OSError, KeyError, ValueError) as e:
                raise DatasetError(f"{path} is unreadable ({e}); {_fix_hint(data_dir)}") from None
            paths.setflags(write=False)
            labels.setflags(write=False)
            _index_cache[key] = (paths, labels)
        return _index_cache[key]


def _expected_size(config: WorkloadConfig, split: str) -> int | None:
    return {
        "train": config.num_train_examples,
        "validation": config.num_validation_examples,
        "test": config.num_test_examples,
    }[split]


def load_split(data_dir: Path | str, config: WorkloadConfig, split: str) -> dict[str, np.ndarray]:
    """One split as file names and labels: 'paths' (bytes, relative), 'targets' int32.

    ``eval_train`` returns the train index (`numpy_batches` draws its subset). The number of
    images must equal the config's split size, which catches a half-prepared folder.
    """
    source = "train" if split == "eval_train" else split
    if source not in INDEX_FILES:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    paths, labels = load_index(data_dir, source)
    expected = _expected_size(config, source)
    if expected is not None and len(paths) != expected:
        raise DatasetError(
            f"{dataset_dir(data_dir) / INDEX_FILES[source]} lists {len(paths)} {source} images, "
            f"{config.name} expects {expected}; {_fix_hint(data_dir)}"
        )
    return {"paths": paths, "targets": labels}


# Batches -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BatchItem:
    """The work description of one (global) batch; a worker fills rows ``lo:hi`` of it.

    `paths` and `labels` cover the whole global batch (mixup needs each row's predecessor);
    `weights` is None for training batches.
    """

    paths: np.ndarray
    labels: np.ndarray
    weights: np.ndarray | None
    seed: int
    step: int
    lo: int
    hi: int


@dataclasses.dataclass(frozen=True)
class ImageBatchFn:
    """`algoperf.data.loader.BatchFn` decoding ImageNet-style JPEG batches (picklable)."""

    root: str
    train: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    randaugment: bool = False
    mixup_alpha: float | None = None
    num_classes: int = NUM_CLASSES
    image_size: int = IMAGE_SIZE
    resize_size: int = RESIZE_SIZE
    draft_gap: float | None = DEFAULT_DRAFT_GAP

    def output_spec(self, item: BatchItem) -> dict[str, tuple[tuple[int, ...], Any]]:
        n = item.hi - item.lo
        spec: dict[str, tuple[tuple[int, ...], Any]] = {
            "inputs": ((n, self.image_size, self.image_size, 3), np.float32)
        }
        if self.mixup_alpha:
            spec["targets"] = ((n, self.num_classes), np.float32)
        else:
            spec["targets"] = ((n,), np.int32)
        if item.weights is not None:
            spec["weights"] = ((n,), np.float32)
        return spec

    def image(self, item: BatchItem, row: int) -> np.ndarray:
        """The uint8 HWC image of global `row` (augmented for training)."""
        path = os.path.join(self.root, os.fsdecode(bytes(item.paths[row])))
        if self.train:
            rng = example_rng(item.seed, item.step, row)
            img = train_crop(path, rng, self.image_size, draft_gap=self.draft_gap)
            if self.randaugment:
                img = rand_augment(img, rng)
        else:
            img = eval_crop(path, self.image_size, self.resize_size, draft_gap=self.draft_gap)
        return np.asarray(img, dtype=np.uint8)

    def fill(self, item: BatchItem, out: Mapping[str, np.ndarray], start: int, stop: int) -> None:
        inputs, targets = out["inputs"], out["targets"]
        for r in range(start, stop):
            row = item.lo + r
            if item.weights is not None:
                weight = item.weights[row]
                out["weights"][r] = weight
                if weight == 0:  # padding: zeros, never decoded
                    inputs[r] = 0
                    targets[r] = 0
                    continue
            normalize(self.image(item, row), self.mean, self.std, out=inputs[r])
            if not self.mixup_alpha:
                targets[r] = item.labels[row]
        if self.mixup_alpha and stop > start:
            self._mixup(item, inputs, targets, start, stop)

    def _mixup(
        self, item: BatchItem, inputs: np.ndarray, targets: np.ndarray, start: int, stop: int
    ) -> None:
        """Rows start:stop become ``w x[g] + (1 - w) x[g - 1]`` (global rows, wrapping)."""
        size = len(item.paths)
        weight = np.float32(
            mixup_weight(batch_rng(item.seed, item.step, TAG_MIXUP), self.mixup_alpha)
        )
        first = item.lo + start
        prev_row = (first - 1) % size
        if item.lo + start <= prev_row < item.lo + stop:
            prev = inputs[prev_row - item.lo].copy()  # still unmixed: mixing has not started
        else:
            prev = normalize(self.image(item, prev_row), self.mean, self.std)
        # Backwards, so every row mixes with its predecessor's unmixed value.
        for r in range(stop - 1, start - 1, -1):
            before = prev if r == start else inputs[r - 1]
            np.multiply(inputs[r], weight, out=inputs[r])
            inputs[r] += (1 - weight) * before
        for r in range(start, stop):
            row = item.lo + r
            targets[r] = 0
            targets[r, item.labels[row]] += weight
            targets[r, item.labels[(row - 1) % size]] += 1 - weight


def _is_vit(config: WorkloadConfig) -> bool:
    return str(config.model.get("arch", "")).startswith("vit")


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
    randaugment: bool | None = None,
    mixup_alpha: float | None = None,
    shard: tuple[int, int] = (0, 1),
    draft_gap: float | None = DEFAULT_DRAFT_GAP,
) -> ParallelBatchLoader:
    """Batches of one split: 'inputs' float32 (B, 224, 224, 3) NHWC normalised, 'targets'.

    Args:
        data_dir: data root holding ``imagenet/`` (see `prepare`).
        config: workload config (mean/std, split sizes, ``model['arch']``, ``num_classes``).
        split: ``train``, ``eval_train``, ``validation`` or ``test``.
        global_batch_size: examples per global batch.
        seed: data seed (train order, augmentation, eval_train subset).
        num_examples: eval splits: how many examples (default: the split size).
        start_step: train: index of the first batch (exact resume).
        num_workers: decoding processes (0: in the calling thread); default
            `algoperf.data.loader.default_num_workers`.
        backend: ``process`` or ``thread`` workers.
        prefetch: batches decoded ahead.
        randaugment: train: RandAugment (2 ops, magnitude 10); default: on for ViT configs.
        mixup_alpha: train: mixup strength; default 0.2 for ViT configs, else none. With mixup
            'targets' are float32 (B, num_classes) soft labels, otherwise int32 (B,).
        shard: (index, count): return only rows ``index * B / count`` to ``(index + 1) * B / count``
            of every global batch (one host or process of several); rows are identical to the
            same rows of the unsharded batch.
        draft_gap: JPEG reduce-on-decode margin (`algoperf.data.images.load_rgb`); None: off.

    Train batches are infinite; eval batches are finite, padded to `global_batch_size` with
    float32 'weights' (0 on padding). The result is a `ParallelBatchLoader` (call ``close()`` to
    stop its workers early; it also stops when exhausted or garbage collected).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    lo, hi = check_shard(shard, global_batch_size)
    arrays = load_split(data_dir, config, split)
    paths, labels = arrays["paths"], arrays["targets"]
    train = split == "train"
    vit = _is_vit(config)
    if train:
        use_randaugment = vit if randaugment is None else randaugment
        alpha = (MIXUP_ALPHA if vit else None) if mixup_alpha is None else (mixup_alpha or None)
    elif randaugment or mixup_alpha:
        raise ValueError("RandAugment and mixup apply to the train split only")
    else:
        use_randaugment, alpha = False, None
    fn = ImageBatchFn(
        root=str(dataset_dir(data_dir)),
        train=train,
        mean=tuple(float(m) for m in config.train_mean),
        std=tuple(float(s) for s in config.train_stddev),
        randaugment=bool(use_randaugment),
        mixup_alpha=alpha,
        num_classes=int(config.model.get("num_classes", NUM_CLASSES)),
        draft_gap=draft_gap,
    )
    items = _items(paths, labels, split, global_batch_size, seed, num_examples, start_step, lo, hi)
    workers = default_num_workers() if num_workers is None else num_workers
    return ParallelBatchLoader(fn, items, num_workers=workers, prefetch=prefetch, backend=backend)


def _items(
    paths: np.ndarray,
    labels: np.ndarray,
    split: str,
    batch_size: int,
    seed: int,
    num_examples: int | None,
    start_step: int,
    lo: int,
    hi: int,
) -> Iterator[BatchItem]:
    """Work items: which files and labels make up each batch (cheap; indices only)."""
    n = len(paths)
    if split == "train":
        batches = iterators.train_batches(
            {"index": np.arange(n)}, batch_size, seed, start_step=start_step
        )
        for step, b in enumerate(batches, start=start_step):
            idx = b["index"]
            yield BatchItem(paths[idx], labels[idx], None, seed, step, lo, hi)
        return
    if split == "eval_train":
        order = np.random.default_rng([TAG_EVAL_SUBSET, seed & 0xFFFFFFFF]).permutation(n)
    else:
        order = np.arange(n)
    total = n if num_examples is None else num_examples
    for k, b in enumerate(iterators.eval_batches({"index": order}, batch_size, total)):
        idx = b["index"]
        yield BatchItem(paths[idx], labels[idx], b["weights"], seed, k, lo, hi)


def synthetic_batch(
    config: WorkloadConfig, batch_size: int, seed: int, *, soft_targets: bool = False
) -> dict[str, np.ndarray]:
    """A random batch shaped like real data; `soft_targets` gives mixup-style (B, C) targets."""
    num_classes = int(config.model.get("num_classes", NUM_CLASSES))
    batch = iterators.synthetic_batch(
        {
            "inputs": ((IMAGE_SIZE, IMAGE_SIZE, 3), np.float32),
            "targets": ((), np.int32, num_classes),
        },
        batch_size,
        seed,
    )
    if soft_targets:
        onehot = np.zeros((batch_size, num_classes), np.float32)
        onehot[np.arange(batch_size), batch["targets"]] = 1.0
        batch["targets"] = onehot
    return batch


# Preparing -------------------------------------------------------------------------------------


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _bar(progress: bool, **kwargs: Any) -> Any:
    from tqdm import tqdm

    return tqdm(disable=not progress, file=sys.stderr, mininterval=0.5, **kwargs)


def _find_archive(
    role: str, given: Path | str | None, data_dir: Path, root: Path, required: bool
) -> Path | None:
    """The archive for `role`: the given path, else the official name in a usual place."""
    name = ARCHIVES[role].name
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise DatasetError(f"{path} does not exist; pass the path of {name}")
        return path
    for candidate in (root / "downloads" / name, data_dir / name, root / name):
        if candidate.is_file():
            return candidate
    if required:
        raise DatasetError(
            f"{name} not found; download it from {DOWNLOAD_PAGE} (registration required) and "
            f"put it in {root / 'downloads'} or pass its path to prepare()"
        )
    return None


def _verify(role: str, path: Path, root: Path, checksums: Mapping[str, str | None]) -> None:
    """Check `path` against the expected digest of `role` once; remember success in .verified/."""
    expected = checksums.get(role, ARCHIVES[role].digest if role in ARCHIVES else None)
    if not expected:
        return
    algorithm = "md5" if len(expected) == 32 else "sha256"
    st = path.stat()
    stamp = f"{path.resolve()} {st.st_size} {st.st_mtime_ns} {algorithm}:{expected}\n"
    marker = root / ".verified" / f"{role}.txt"
    if marker.is_file() and marker.read_text() == stamp:
        return
    digest = file_digests(path, (algorithm,))[algorithm]
    if digest != expected.lower():
        raise DatasetError(
            f"{path}: {algorithm} {digest} does not match the official {expected}; the file is "
            f"incomplete or not {ARCHIVES[role].name}: download it again"
        )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(stamp)


def _safe_name(name: str, archive: Path) -> str:
    base = name.rsplit("/", 1)[-1]
    if not base or base.startswith(".") or "\\" in base:
        raise DatasetError(f"{archive} has an unexpected member {name!r}; is it the right archive?")
    return base


def _write_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, atomic: bool = True
) -> None:
    """Copy one member's bytes to `dest`, via a temporary name if `atomic` (never half-written)."""
    source = tar.extractfile(member)
    if source is None:
        raise DatasetError(f"cannot read {member.name} from its archive")
    tmp = dest.with_name(f".{dest.name}.tmp") if atomic else dest
    with source, open(tmp, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    if atomic:
        os.replace(tmp, dest)


def _open_tar(path: Path, mode: str) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode)
    except (tarfile.TarError, OSError) as e:
        raise DatasetError(
            f"{path} is not a readable tar archive ({e}); download it again"
        ) from None


def _extract_train(archive: Path, dest: Path, progress: bool) -> list[str]:
    """Extract every per-class tar of `archive` into ``dest/<wnid>/``; return the sorted wnids."""
    dest.mkdir(parents=True, exist_ok=True)
    with _open_tar(archive, "r:") as outer:
        try:
            members = outer.getmembers()  # headers only: tarfile seeks over the contents
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DatasetError(
                f"{archive} is truncated or corrupt ({e}); download it again"
            ) from None
        classes = {}
        for m in members:
            base = m.name.rsplit("/", 1)[-1]
            if m.isfile() and base.endswith(".tar") and _WNID.fullmatch(base[:-4]):
                classes[base[:-4]] = m
        if not classes:
            raise DatasetError(
                f"{archive} holds no per-class tars n<8 digits>.tar; it is not "
                f"{ARCHIVES['train'].name}"
            )
        todo = [m for wnid, m in sorted(classes.items()) if not (dest / wnid).is_dir()]
        if todo:
            check_free_space(
                dest, sum(m.size for m in todo) + (1 << 30), f"ImageNet train ({len(todo)} classes)"
            )
        bar = _bar(progress, total=len(classes), initial=len(classes) - len(todo), desc="train")
        with bar:
            for member in todo:
                _extract_class(outer, member, dest, archive)
                bar.update(1)
    return sorted(classes)


def _extract_class(
    outer: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, archive: Path
) -> None:
    """One class tar into ``dest/.<wnid>.partial``, then renamed to ``dest/<wnid>`` (done)."""
    wnid = member.name.rsplit("/", 1)[-1][:-4]
    partial = dest / f".{wnid}.partial"
    if partial.exists():
        shutil.rmtree(partial)  # left by an interrupted run: redo this class
    partial.mkdir()
    fileobj = outer.extractfile(member)
    if fileobj is None:
        raise DatasetError(f"{archive}: cannot read {member.name}")
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as inner:
            for m in inner:
                if m.isfile():
                    # The folder is renamed into place when complete: no per-file renames needed.
                    _write_member(inner, m, partial / _safe_name(m.name, archive), atomic=False)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(
            f"{archive}: {member.name} is corrupt ({e}); download it again"
        ) from None
    os.rename(partial, dest / wnid)


def read_devkit_labels(devkit: Path) -> dict[int, str]:
    """Validation image number (1-based) -> WordNet id, from the ILSVRC2012 devkit tarball."""
    import scipy.io

    meta = truth = None
    try:
        with tarfile.open(devkit, "r:*") as tar:
            for m in tar:
                if m.name.endswith("data/meta.mat"):
                    meta = tar.extractfile(m).read()  # type: ignore[union-attr]
                elif m.name.endswith("data/ILSVRC2012_validation_ground_truth.txt"):
                    truth = tar.extractfile(m).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"{devkit} is not a readable devkit archive ({e})") from None
    if meta is None or truth is None:
        raise DatasetError(
            f"{devkit} lacks data/meta.mat or data/ILSVRC2012_validation_ground_truth.txt; it is "
            f"not {ARCHIVES['devkit'].name}"
        )
    synsets = scipy.io.loadmat(io.BytesIO(meta), squeeze_me=True)["synsets"]
    # The 1,000 classes are the leaves of the devkit's synset tree (no children).
    id_to_wnid = {
        int(i): str(w)
        for i, w, c in zip(synsets["ILSVRC2012_ID"], synsets["WNID"], synsets["num_children"])
        if int(c) == 0
    }
    ids = [int(line) for line in truth.decode().split()]
    try:
        return {k + 1: id_to_wnid[i] for k, i in enumerate(ids)}
    except KeyError as e:
        raise DatasetError(f"{devkit}: ground truth names unknown class id {e}") from None


def read_val_label_file(path: Path) -> dict[int, str]:
    """Validation image number -> WordNet id from a valprep.sh / "file wnid" / Kaggle CSV file."""
    mapping: dict[int, str] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _VAL_LABEL_LINE.search(line)
            if m:
                mapping[int(m.group(2))] = m.group(3)
    if not mapping:
        raise DatasetError(
            f"{path} pairs no ILSVRC2012_val_<n> file with a WordNet id; pass valprep.sh, a "
            "'file wnid' list or the devkit tarball instead"
        )
    return mapping


def _extract_val(archive: Path, dest: Path, labels: Mapping[int, str], progress: bool) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for wnid in set(labels.values()):
        (dest / wnid).mkdir(exist_ok=True)
    seen = 0
    tar = _open_tar(archive, "r:")
    with _bar(progress, total=len(labels), desc="val") as bar:
        try:
            for m in tar:
                if not m.isfile():
                    continue
                name = _safe_name(m.name, archive)
                match = _VAL_NAME.fullmatch(name)
                if match is None:
                    raise DatasetError(
                        f"{archive} holds {name!r}; it is not {ARCHIVES['val'].name}"
                    )
                number = int(match.group(1))
                if number not in labels:
                    raise DatasetError(
                        f"no label for {name}: the label source does not cover {archive}"
                    )
                out = dest / labels[number] / name
                if not (out.is_file() and out.stat().st_size == m.size):
                    _write_member(tar, m, out)
                seen += 1
                bar.update(1)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DatasetError(
                f"{archive} is truncated or corrupt ({e}); download it again"
            ) from None
        finally:
            tar.close()
    if seen != len(labels):
        raise DatasetError(
            f"{archive} holds {seen} images but the labels cover {len(labels)}; archive and "
            "label source do not match"
        )


def _extract_v2(archive: Path, dest: Path, num_classes: int, progress: bool) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    tar = _open_tar(archive, "r|*")
    try:
        with _bar(progress, total=10_000, desc="v2") as bar:
            for m in tar:
                parts = m.name.split("/")
                if not m.isfile() or len(parts) < 2:
                    continue
                label, name = parts[-2], _safe_name(m.name, archive)
                if not label.isdigit() or int(label) >= num_classes:
                    raise DatasetError(
                        f"{archive}: {m.name} is not under a class folder 0..{num_classes - 1}; "
                        f"is it {ARCHIVES['v2'].name}?"
                    )
                out = dest / str(int(label)) / name
                out.parent.mkdir(exist_ok=True)
                if not (out.is_file() and out.stat().st_size == m.size):
                    _write_member(tar, m, out)
                bar.update(1)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"{archive} is truncated or corrupt ({e}); download it again") from None
    finally:
        tar.close()


def _scan(root: Path, split: str, label_of: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(paths, labels) of ``root/<split dir>/<class>/*`` sorted by (label, name)."""
    directory = root / SPLIT_DIRS[split]
    entries: list[tuple[int, str]] = []
    for folder in os.scandir(directory):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        if folder.name not in label_of:
            raise DatasetError(
                f"{folder.path}: unexpected class folder; delete it and prepare again"
            )
        label = label_of[folder.name]
        for f in os.scandir(folder.path):
            if f.is_file() and not f.name.startswith("."):
                entries.append((label, f"{SPLIT_DIRS[split]}/{folder.name}/{f.name}"))
    entries.sort()
    paths = np.array([p.encode() for _, p in entries], dtype=bytes)
    labels = np.array([lab for lab, _ in entries], dtype=np.int32)
    return paths, labels


def _write_index(root: Path, split: str, paths: np.ndarray, labels: np.ndarray) -> None:
    path = root / INDEX_FILES[split]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, paths=paths, labels=labels)
    os.replace(tmp, path)


def _count_files(directory: Path) -> int:
    """Images already extracted under ``directory/<class>/`` (0 if absent)."""
    if not directory.is_dir():
        return 0
    return sum(
        1
        for folder in os.scandir(directory)
        if folder.is_dir()
        for f in os.scandir(folder.path)
        if not f.name.startswith(".")
    )


def _required_space(archive: Path, done_fraction: float) -> int:
    return int(archive.stat().st_size * (1 - done_fraction)) + (1 << 30)


def prepare(
    data_dir: Path | str,
    *,
    train_tar: Path | str | None = None,
    val_tar: Path | str | None = None,
    devkit_tar: Path | str | None = None,
    val_labels: Path | str | None = None,
    v2_tar: Path | str | None = None,
    download_v2: bool = True,
    checksums: Mapping[str, str | None] | None = None,
    progress: bool = True,
    timeout: float = 20.0,
) -> Path:
    """Convert the ILSVRC2012 and ImageNet-v2 archives into ``<data_dir>/imagenet/``; return it.

    Args:
        data_dir: data root.
        train_tar, val_tar: ``ILSVRC2012_img_train.tar`` / ``ILSVRC2012_img_val.tar``; default:
            looked up under ``<data_dir>/imagenet/downloads/``, `data_dir` and
            ``<data_dir>/imagenet/``.
        devkit_tar: ``ILSVRC2012_devkit_t12.tar.gz`` (validation labels); looked up likewise.
        val_labels: instead of the devkit, a text file pairing validation files with WordNet ids
            (``valprep.sh``, ``LOC_val_solution.csv``, or ``<file> <wnid>`` lines).
        v2_tar: ``imagenetv2-matched-frequency.tar.gz``; looked up likewise, else downloaded
            (when `download_v2`) into ``<data_dir>/imagenet/downloads/``.
        checksums: expected digests by role ('train', 'val', 'devkit', 'v2'; MD5 or SHA-256 hex,
            None to skip); default: the official ones.
        progress: tqdm progress bars and status lines on stderr.
        timeout: network timeout of the v2 download, seconds.

    Splits already prepared (their index file exists) are skipped, so the call is idempotent
    and an interrupted run resumes (see the module docstring). Raises `DatasetError`,
    `DiskSpaceError` or `DownloadError` with a one-line fix.
    """
    data_dir = Path(data_dir).expanduser()
    root = dataset_dir(data_dir)
    if manifest_status(root) == "ready" and all((root / f).is_file() for f in INDEX_FILES.values()):
        _say(progress, f"{DATASET}: ready in {root}")
        return root
    root.mkdir(parents=True, exist_ok=True)
    sums: Mapping[str, str | None] = {} if checksums is None else checksums
    if checksums is None:
        sums = {role: a.digest for role, a in ARCHIVES.items()}

    # Train: defines the classes.
    if not (root / INDEX_FILES["train"]).is_file() or not (root / SYNSETS_FILE).is_file():
        archive = _find_archive("train", train_tar, data_dir, root, required=True)
        assert archive is not None
        _say(progress, f"{DATASET}: checking {archive.name}")
        _verify("train", archive, root, sums)
        synsets = _extract_train(archive, root / SPLIT_DIRS["train"], progress)
        tmp = root / f".{SYNSETS_FILE}.tmp"
        tmp.write_text("".join(f"{w}\n" for w in synsets))
        os.replace(tmp, root / SYNSETS_FILE)
        _write_index(root, "train", *_scan(root, "train", {w: i for i, w in enumerate(synsets)}))
    synsets = (root / SYNSETS_FILE).read_text().split()
    label_of = {w: i for i, w in enumerate(synsets)}

    # Validation: labels from the devkit or a label file.
    if not (root / INDEX_FILES["validation"]).is_file():
        archive = _find_archive("val", val_tar, data_dir, root, required=True)
        assert archive is not None
        if val_labels is not None:
            labels = read_val_label_file(Path(val_labels).expanduser())
        else:
            devkit = _find_archive("devkit", devkit_tar, data_dir, root, required=False)
            if devkit is None:
                raise DatasetError(
                    f"validation labels not found: put {ARCHIVES['devkit'].name} (from "
                    f"{DOWNLOAD_PAGE}) in {root / 'downloads'}, or pass val_labels=valprep.sh"
                )
            _verify("devkit", devkit, root, sums)
            labels = read_devkit_labels(devkit)
        unknown = sorted(set(labels.values()) - set(label_of))
        if unknown:
            raise DatasetError(
                f"validation labels name {len(unknown)} classes absent from the train archive "
                f"(e.g. {unknown[0]}); train archive and label source do not match"
            )
        done = _count_files(root / SPLIT_DIRS["validation"]) / max(1, len(labels))
        check_free_space(root, _required_space(archive, done), "ImageNet validation")
        _verify("val", archive, root, sums)
        _extract_val(archive, root / SPLIT_DIRS["validation"], labels, progress)
        _write_index(root, "validation", *_scan(root, "validation", label_of))

    # Test: ImageNet-v2 matched-frequency.
    if not (root / INDEX_FILES["test"]).is_file():
        archive = _find_archive("v2", v2_tar, data_dir, root, required=False)
        if archive is None:
            if not download_v2:
                raise DatasetError(
                    f"{ARCHIVES['v2'].name} not found; put it in {root / 'downloads'} or allow "
                    "the download"
                )
            spec = ARCHIVES["v2"]
            target = root / "downloads" / spec.name
            check_free_space(root, 2 * spec.size + (1 << 30), "ImageNet-v2 (download + images)")
            archive = download_file(
                list(V2_URLS),
                target,
                sha256=spec.digest,
                size=spec.size,
                timeout=timeout,
                progress=progress,
            )
        done = _count_files(root / SPLIT_DIRS["test"]) / 10_000
        check_free_space(root, _required_space(archive, min(done, 1.0)), "ImageNet-v2")
        _verify("v2", archive, root, sums)
        _extract_v2(archive, root / SPLIT_DIRS["test"], len(synsets), progress)
        v2_labels = {str(i): i for i in range(len(synsets))}
        _write_index(root, "test", *_scan(root, "test", v2_labels))

    counts = {}
    for split, name in INDEX_FILES.items():
        with np.load(root / name) as z:
            counts[split] = len(z["labels"])
    write_manifest(
        root,
        [SYNSETS_FILE, *INDEX_FILES.values()],
        dataset=DATASET,
        num_classes=len(synsets),
        num_images=counts,
    )
    with _index_lock:
        _index_cache.clear()
    _say(progress, f"{DATASET}: ready in {root} ({counts})")
    return root


def prepare_dataset(
    dataset: str,
    data_dir: Path | str,
    *,
    offline_fallback: bool = True,
    progress: bool = True,
    **kwargs: Any,
) -> Path:
    """`algoperf datasets prepare imagenet` entry (the `algoperf.registry.Dataset` prepare signature).

    The archives are looked up in their default places (see `prepare`); `offline_fallback` has
    no effect (the ILSVRC2012 files are never downloaded).
    """
    del offline_fallback
    if dataset != DATASET:
        raise ValueError(f"workloads.imagenet.data prepares {DATASET!r}, not {dataset!r}")
    return prepare(data_dir, progress=progress, **kwargs)


__all__ = [
    "ARCHIVES",
    "BatchItem",
    "ImageBatchFn",
    "dataset_dir",
    "load_index",
    "load_split",
    "numpy_batches",
    "prepare",
    "prepare_dataset",
    "read_devkit_labels",
    "read_val_label_file",
    "synthetic_batch",
]
