"""MNIST and Fashion-MNIST on disk: the official IDX files, their download, and numpy splits.

(MNIST-1D, the family's third dataset, is generated and stored by `workloads.mnist.mnist1d`;
`load_split` and `synthetic_batch` here serve all three.)

On-disk format: the four gzip-compressed IDX files exactly as their publishers distribute them,
in ``<data_dir>/<dataset>/`` (``dataset`` is ``mnist`` or ``fashion_mnist``)::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz  (60,000 examples)
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz   (10,000 examples)

`load_split` also accepts `data_dir` pointing at the folder holding the files.

Splits (as upstream, sizes from the config): ``train`` = the first ``num_train_examples`` of the
training file, ``validation`` = the next ``num_validation_examples``, ``eval_train`` = the first
``num_eval_train_examples`` of ``train``, ``test`` = the first ``num_test_examples`` of the t10k
file.

Normalisation follows upstream exactly: ``(float32(pixel) - train_mean) / train_stddev`` on raw
0-255 pixel values. Upstream's MNIST pipeline does not divide by 255 before subtracting the
[0, 1]-scale mean 0.1307 and dividing by 0.3081, so inputs span about -0.42 to 827; keeping that
makes hyperparameters transfer between upstream and this harness.

`prepare` downloads from the official mirrors with size, MD5 and SHA-256 checks. Offline, it can
take Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package (Debian has no MNIST package):
that package stores the same compressed data behind a normalised gzip header, and restoring the
official header (file name and timestamp) reproduces the official files byte for byte.
"""

from __future__ import annotations

import dataclasses
import gzip
import struct
import sys
import tempfile
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from algoperf.data import DatasetError, UnknownDatasetError, debian, iterators
from algoperf.data.download import (
    DownloadError,
    check_free_space,
    download_file,
    file_digests,
    manifest_status,
    write_manifest,
)
from algoperf.workload_config import WorkloadConfig
from workloads.mnist import mnist1d

SPLITS = ("train", "eval_train", "validation", "test")
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """One official file: its size and checksums as distributed.

    `raw_sha256` is the SHA-256 of the decompressed IDX payload (recognises the same data behind
    a different gzip header); `gzip_mtime` is the timestamp in the official gzip header (lets the
    official file be rebuilt from a recompressed copy).
    """

    name: str
    size: int
    md5: str
    sha256: str
    raw_sha256: str | None = None
    gzip_mtime: int | None = None


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a dataset comes from: mirror base URLs (tried in order) and an offline package."""

    mirrors: tuple[str, ...]
    files: tuple[FileSpec, ...]
    debian_package: str | None = None


SOURCES: dict[str, Source] = {
    # MD5s as published with the dataset and used by common libraries; SHA-256s as pinned by
    # TensorFlow Datasets for the same files.
    "mnist": Source(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://yann.lecun.com/exdb/mnist/",
        ),
        files=(
            FileSpec(
                TRAIN_IMAGES,
                9_912_422,
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            FileSpec(
                TRAIN_LABELS,
                28_881,
                "d53e105ee54ea40749a09fcbcd1e9432",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            FileSpec(
                TEST_IMAGES,
                1_648_877,
                "9fb629c4189551a2d022fa330f9573f3",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            FileSpec(
                TEST_LABELS,
                4_542,
                "ec29112dd5afa0611ce80d1b7f02629c",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
        ),
    ),
    # MD5s from the Fashion-MNIST README; sizes, SHA-256s, payload SHA-256s and gzip timestamps
    # measured on the official files (identical to the blobs in the dataset's git repository).
    "fashion_mnist": Source(
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        files=(
            FileSpec(
                TRAIN_IMAGES,
                26_421_880,
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                1504176606,
            ),
            FileSpec(
                TRAIN_LABELS,
                29_515,
                "25c81989df183df01b3e8a0aad5dffbe",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                1504176606,
            ),
            FileSpec(
                TEST_IMAGES,
                4_422_102,
                "bef4ecab320f06d8554ea6380940ec79",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                1504176627,
            ),
            FileSpec(
                TEST_LABELS,
                5_148,
                "bb300cfdad3c16e7a12a480ee83cd310",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                1504176627,
            ),
        ),
        debian_package="dataset-fashion-mnist",
    ),
}


def _source(dataset: str) -> Source:
    try:
        return SOURCES[dataset]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown MNIST-family dataset {dataset!r}; expected one of {', '.join(SOURCES)}"
        ) from None


def _fix_hint(dataset: str, data_dir: Path | str) -> str:
    return f"run `algoperf datasets prepare {dataset} --data_dir {data_dir}`"


def dataset_dir(data_dir: Path | str, dataset: str) -> Path:
    """The folder holding `dataset`'s files: ``<data_dir>/<dataset>`` if it exists, else
    `data_dir` itself if it holds any of the files, else ``<data_dir>/<dataset>`` (to create)."""
    data_dir = Path(data_dir).expanduser()
    nested = data_dir / dataset
    if nested.is_dir():
        return nested
    if any((data_dir / name).exists() for name in FILE_NAMES):
        return data_dir
    return nested


# --------------------------------------------------------------------------------------------
# Reading


_CACHE_ENTRIES = 8
_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every decoded array (the next `load_split` reads the files again)."""
    with _cache_lock:
        _cache.clear()


def _file_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _decode_idx(path: Path, ndim: int, dataset: str, data_dir: Path | str) -> np.ndarray:
    """The uint8 array stored in a gzip-compressed IDX file, checked for completeness."""
    hint = _fix_hint(dataset, data_dir)
    try:
        raw = gzip.decompress(path.read_bytes())
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing; {hint}") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{path} is corrupt or truncated ({e}); {hint}") from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:2] != b"\0\0" or raw[2] != 0x08 or raw[3] != ndim:
        raise DatasetError(f"{path} is not a {ndim}-d uint8 IDX file; {hint}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) != header + int(np.prod(dims)):
        raise DatasetError(
            f"{path} holds {len(raw) - header} data bytes, its header {dims} promises "
            f"{int(np.prod(dims))}; {hint}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _load_file(path: Path, kind: str, config: WorkloadConfig, data_dir: Path | str) -> np.ndarray:
    """Decoded (and, for images, normalised) contents of one file, cached in memory."""
    try:
        file_key = _file_key(path)
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing; {_fix_hint(config.dataset, data_dir)}") from None
    if kind == "images":
        key = (*file_key, kind, float(config.train_mean), float(config.train_stddev))
    else:
        key = (*file_key, kind)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        if kind == "images":
            raw = _decode_idx(path, 3, config.dataset, data_dir)
            if raw.shape[1:] != IMAGE_SHAPE[:2]:
                raise DatasetError(
                    f"{path} holds {raw.shape[1]}x{raw.shape[2]} images, expected 28x28; "
                    f"{_fix_hint(config.dataset, data_dir)}"
                )
            # A 256-entry table computes (float32(p) - mean) / std in float32 for every pixel
            # value once, exactly as upstream's float32 arithmetic does per pixel.
            lut = (np.arange(256, dtype=np.float32) - np.float32(config.train_mean)) / np.float32(
                config.train_stddev
            )
            value = lut[raw].reshape(raw.shape[0], *IMAGE_SHAPE)
        else:
            raw = _decode_idx(path, 1, config.dataset, data_dir)
            if raw.size and int(raw.max()) >= NUM_CLASSES:
                raise DatasetError(
                    f"{path} has label {int(raw.max())}, expected 0-{NUM_CLASSES - 1}; "
                    f"{_fix_hint(config.dataset, data_dir)}"
                )
            value = raw.astype(np.int32)
        value.setflags(write=False)  # shared by every caller: nobody may modify it in place
        _cache[key] = value
        while len(_cache) > _CACHE_ENTRIES:
            _cache.popitem(last=False)
        return value


def split_range(config: WorkloadConfig, split: str) -> tuple[str, int, int]:
    """(``"train"`` or ``"t10k"``, start, stop): which file and examples make up `split`."""
    if split == "train":
        return "train", 0, config.num_train_examples
    if split == "eval_train":
        return "train", 0, config.num_eval_train_examples
    if split == "validation":
        start = config.num_train_examples
        return "train", start, start + config.num_validation_examples
    if split == "test":
        if config.num_test_examples is None:
            raise ValueError(f"workload {config.name} has no test split")
        return "t10k", 0, config.num_test_examples
    raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def load_split(data_dir: Path | str, config: WorkloadConfig, split: str) -> dict[str, np.ndarray]:
    """One split as arrays: 'inputs' float32 (N, 28, 28, 1) normalised, 'targets' int32 (N,).

    The ``mnist1d`` dataset is read by `workloads.mnist.mnist1d` (inputs (N, 40), same splits).

    Args:
        data_dir: the data root (files in ``<data_dir>/<config.dataset>/``) or the folder that
            holds the four files.
        config: the workload config; its ``dataset``, split sizes and ``train_mean`` /
            ``train_stddev`` are used.
        split: ``train``, ``eval_train``, ``validation`` or ``test``.

    Files are decoded and normalised once per process and cached; the returned arrays are
    read-only views into that cache (splits of the same file share memory). A missing, truncated
    or corrupt file raises `DatasetError` naming the file and the command that fixes it.
    """
    which, start, stop = split_range(config, split)
    if config.dataset == mnist1d.DATASET:
        return mnist1d.load_split(data_dir, config, which, start, stop, split)
    directory = dataset_dir(data_dir, config.dataset)
    images_path = directory / f"{which}-images-idx3-ubyte.gz"
    labels_path = directory / f"{which}-labels-idx1-ubyte.gz"
    images = _load_file(images_path, "images", config, data_dir)
    labels = _load_file(labels_path, "labels", config, data_dir)
    hint = _fix_hint(config.dataset, data_dir)
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path} has {len(images)} images but {labels_path.name} has {len(labels)} "
            f"labels; {hint}"
        )
    if stop > len(images):
        raise DatasetError(
            f"{images_path} holds {len(images)} examples; the {split} split of {config.name} "
            f"needs examples {start}..{stop - 1}; {hint}"
        )
    return {"inputs": images[start:stop], "targets": labels[start:stop]}


def synthetic_batch(config: WorkloadConfig, batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """A random batch shaped like real data (for smoke runs and compile warm-up)."""
    num_classes = int(config.model.get("num_classes", NUM_CLASSES))
    input_shape = tuple(config.model.get("input_shape", IMAGE_SHAPE))
    return iterators.synthetic_batch(
        {
            "inputs": (input_shape, np.float32),
            "targets": ((), np.int32, num_classes),
        },
        batch_size,
        seed,
    )


# --------------------------------------------------------------------------------------------
# Preparing


def _verified(spec: FileSpec, path: Path) -> bool:
    """True if `path` is the official file, or carries its exact decompressed payload."""
    if not path.is_file():
        return False
    if path.stat().st_size == spec.size and file_digests(path, ("md5",))["md5"] == spec.md5:
        return True
    return spec.raw_sha256 is not None and _payload_sha256(path) == spec.raw_sha256


def _payload_sha256(path: Path) -> str | None:
    import hashlib

    h = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return h.hexdigest()


def restore_gzip_header(data: bytes, original_name: str, mtime: int) -> bytes:
    """`data` (one gzip member) with the header replaced by the one gzip writes for a file named
    `original_name` compressed at `mtime` (flags FNAME, XFL 0, OS Unix); the stream is kept."""
    if len(data) < 18 or data[:3] != b"\x1f\x8b\x08":
        raise ValueError("not a gzip stream")
    flags = data[3]
    pos = 10
    if flags & 0x04:  # FEXTRA
        pos += 2 + int.from_bytes(data[pos : pos + 2], "little")
    for bit in (0x08, 0x10):  # FNAME, FCOMMENT: zero-terminated strings
        if flags & bit:
            pos = data.index(b"\0", pos) + 1
    if flags & 0x02:  # FHCRC
        pos += 2
    header = b"\x1f\x8b\x08\x08" + struct.pack("<I", mtime) + b"\x00\x03"
    return header + original_name.encode("latin-1") + b"\0" + data[pos:]


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def prepare(
    dataset: str,
    data_dir: Path | str,
    *,
    offline_fallback: bool = True,
    progress: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float = 10.0,
) -> Path:
    """Download and verify `dataset` into ``<data_dir>/<dataset>/``; return that folder.

    Args:
        dataset: ``mnist`` or ``fashion_mnist``.
        data_dir: data root (or the dataset folder itself, see `dataset_dir`).
        offline_fallback: if the mirrors cannot be reached, take the files from the dataset's
            Debian package (Fashion-MNIST only), installed or fetched with ``apt-get download``.
        progress: progress bars and status lines on stderr.
        mirrors: base URLs to use instead of the official ones (each + file name).
        timeout: connect/read timeout in seconds; small so that an offline machine fails fast.

    Idempotent: files that already verify are kept and nothing is fetched. Checks free space
    first. Raises `DownloadError` / `DatasetError` (one line, with what to do) on failure.
    """
    source = _source(dataset)
    dest = dataset_dir(data_dir, dataset)
    dest.mkdir(parents=True, exist_ok=True)
    todo = [spec for spec in source.files if not _verified(spec, dest / spec.name)]
    if not todo:
        if manifest_status(dest) != "ready":
            write_manifest(dest, FILE_NAMES, dataset=dataset, source="existing files")
        _say(progress, f"{dataset}: all files present and verified in {dest}")
        return dest

    partial = sum(
        (dest / (s.name + ".part")).stat().st_size
        for s in todo
        if (dest / (s.name + ".part")).is_file()
    )
    check_free_space(dest, sum(s.size for s in todo) - partial, f"{dataset} ({len(todo)} files)")
    bases = tuple(mirrors) if mirrors else source.mirrors
    failed: dict[str, str] = {}
    for spec in todo:
        if failed and len(failed) == todo.index(spec):
            # Every file so far failed on every mirror: the hosts are unreachable (or the machine
            # is offline); skip the remaining files rather than wait for each to time out.
            failed[spec.name] = failed[todo[0].name]
            continue
        try:
            download_file(
                [base.rstrip("/") + "/" + spec.name for base in bases],
                dest / spec.name,
                sha256=spec.sha256,
                md5=spec.md5,
                size=spec.size,
                timeout=timeout,
                progress=progress,
            )
        except DownloadError as e:
            failed[spec.name] = str(e)
    origin = "download"
    if failed:
        first_error = next(iter(failed.values()))
        if source.debian_package is None:
            raise DownloadError(f"{first_error} ({dataset} has no offline source)")
        if not offline_fallback:
            raise DownloadError(
                f"{first_error} (or allow the offline fallback to Debian package "
                f"{source.debian_package})"
            )
        _say(
            progress,
            f"{dataset}: {len(failed)} file(s) could not be downloaded; trying Debian package "
            f"{source.debian_package}",
        )
        specs = [s for s in todo if s.name in failed]
        try:
            _from_debian(source.debian_package, specs, dest)
        except (debian.DebianPackageError, DatasetError) as e:
            raise DownloadError(f"{first_error} The offline fallback failed as well: {e}") from None
        pkg_part = f"Debian package {source.debian_package}"
        origin = pkg_part if len(failed) == len(todo) else f"download + {pkg_part}"
    write_manifest(dest, FILE_NAMES, dataset=dataset, source=origin)
    return dest


def _from_debian(pkg: str, specs: Sequence[FileSpec], dest: Path) -> None:
    """Copy `specs` out of Debian package `pkg`, rebuild the official files, verify, install."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".debian-", dir=dest) as tmp:
        staging = Path(tmp)
        debian.fetch_package_files(pkg, [s.name for s in specs], staging)
        for spec in specs:
            got = staging / spec.name
            data = got.read_bytes()
            if spec.gzip_mtime is not None:
                # The package keeps the compressed stream but normalises the gzip header.
                try:
                    rebuilt = restore_gzip_header(
                        data, spec.name.removesuffix(".gz"), spec.gzip_mtime
                    )
                except ValueError:
                    rebuilt = data
                probe = staging / (spec.name + ".rebuilt")
                probe.write_bytes(rebuilt)
                if file_digests(probe, ("md5",))["md5"] == spec.md5:
                    probe.replace(got)
            if not _verified(spec, got):
                raise DatasetError(
                    f"{got.name} from Debian package {pkg} matches neither the official file nor "
                    "its data; the package changed, download the official files instead"
                )
            got.replace(dest / spec.name)
