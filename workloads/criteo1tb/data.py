"""Criteo 1TB click logs: the 24 ``day_N.gz`` TSV files -> compact binary shards, and batches.

The user downloads ``day_0.gz`` ... ``day_23.gz`` (about 340 GB gzipped, 1.1 TB of TSV) from
Criteo's AI Lab (https://ailab.criteo.com/ressources/, "Criteo 1TB Click Logs dataset"; also
mirrored on Hugging Face as ``criteo/CriteoClickLogs``) into one folder and runs
``algoperf datasets prepare criteo1tb --criteo1tb_source_dir DIR``. Each line is a label, 13
integer fields and 26 categorical fields (8 hex digits), tab separated; an empty field is missing.

Preprocessing is upstream's ``_parse_example_fn``, done once at prepare time instead of at every
read: fields equal to ``-1`` are missing (TF ``decode_csv(na_value='-1')``); a missing integer is
0 and a missing categorical is ``'00000000'``; dense = ``log(relu(x) + 1)`` in float32;
categorical column ``i`` = ``Fingerprint64(value + str(i)) % RAW_VOCAB_SIZES[i]`` (TF
``to_hash_bucket_fast``), rounded through float32 as upstream's ``tf.cast`` does (ids above
2**24 lose low bits). The model then takes ``id % vocab_size``.

Shards: every day is cut into files of 5,000,000 lines (upstream's ``split -l 5000000``), named
``day_{N}_{KK}``, each stored as ``<name>.labels.npy`` (uint8), ``<name>.dense.npy`` (float32,
(n, 13)) and ``<name>.cat.npy`` (int32, (n, 26)): 157 bytes a row, about 686 GB for all 24 days.
Splits as upstream: train = every file of days 0-22; day 23 files 00-18 are test, 19-35
validation. Training shuffles only file names (upstream: ``list_files(shuffle)`` + a 1,024 buffer,
more than the 828 train files, so a full permutation per epoch) and reads each file in order.

Prepare is resumable per day (a finished day is recorded in ``<day>.done.json`` and skipped),
checks free disk space for the days still to do before starting, and converts days in parallel
processes with ``--criteo1tb_workers N``.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import json
import os
import sys
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from algoperf.data import DataError
from algoperf.data.download import check_free_space, manifest_status, write_manifest

DATASET = "criteo1tb"
NUM_DAYS = 24
NUM_DENSE = 13
NUM_CAT = 26
NUM_FIELDS = 1 + NUM_DENSE + NUM_CAT
ROWS_PER_FILE = 5_000_000
NUM_DAY_23_FILES = 36
NUM_TEST_FILES = NUM_DAY_23_FILES // 2 + 1  # 19: day_23_00 .. day_23_18
BYTES_PER_ROW = 1 + 4 * NUM_DENSE + 4 * NUM_CAT
FORMAT_VERSION = 1
# Uncompressed TSV bytes a row takes on average (1.1 TB / 4.37e9 rows); used for the preflight.
_TSV_BYTES_PER_ROW = 250

# Upstream's raw vocabulary per categorical column (the TPU DLRM tutorial's sizes).
RAW_VOCAB_SIZES = (
    39884406, 39043, 17289, 7420, 20263, 3, 7120, 1543, 63, 38532951, 2953546, 403346, 10,
    2208, 11938, 155, 4, 976, 14, 39979771, 25641295, 39664984, 585935, 12972, 108, 36,
)  # fmt: skip

_MISSING_CAT = b"00000000"
_K2 = np.uint64(0x9AE16A3B2F90404F)
_SHIFT47 = np.uint64(47)


def _rotate(x: np.ndarray, shift: int) -> np.ndarray:
    return (x >> np.uint64(shift)) | (x << np.uint64(64 - shift))


def fingerprint64_9to16(first8: np.ndarray, last8: np.ndarray, length: int) -> np.ndarray:
    """FarmHash ``Fingerprint64`` of strings of `length` 8..16 bytes, vectorised.

    `first8` / `last8` are the little-endian uint64 loads of bytes ``[0, 8)`` and
    ``[length - 8, length)`` (farmhashna ``HashLen0to16``, the ``len >= 8`` branch).
    """
    with np.errstate(over="ignore"):
        mul = _K2 + np.uint64(2 * length)
        a = first8 + _K2
        b = last8
        c = _rotate(b, 37) * mul + a
        d = (_rotate(a, 25) + b) * mul
        h = (c ^ d) * mul
        h ^= h >> _SHIFT47
        g = (d ^ h) * mul
        g ^= g >> _SHIFT47
        return g * mul


def _suffix_word(col: int) -> tuple[np.uint64, int]:
    s = str(col).encode()
    return np.uint64(int.from_bytes(s, "little")), len(s)


def hash_categorical(values: np.ndarray, col: int) -> np.ndarray:
    """Upstream's id of 8-byte categorical `values` (uint64 LE loads) in column `col` (int32).

    ``Fingerprint64(value + str(col)) % RAW_VOCAB_SIZES[col]``, then rounded through float32.
    """
    suffix, k = _suffix_word(col)
    last8 = (values >> np.uint64(8 * k)) | (suffix << np.uint64(8 * (8 - k)))
    h = fingerprint64_9to16(values, last8, 8 + k)
    ids = h % np.uint64(RAW_VOCAB_SIZES[col])
    return ids.astype(np.float32).astype(np.int32)


def _hash_one(value: bytes, col: int) -> int:
    """The same for one categorical of any length (pyfarmhash; rare in the real data)."""
    import farmhash  # pyfarmhash: only for values that are not 8 bytes long

    h = farmhash.fingerprint64((value + str(col).encode()).decode("latin-1"))
    return int(np.float32(h % RAW_VOCAB_SIZES[col]))


def _line_error(path: Path, line: int, what: str) -> DataError:
    return DataError(
        f"{path}: line {line} {what}; each line must be a label, 13 integers and 26 "
        "categoricals separated by 39 tabs: re-download the file"
    )


def parse_lines(buf: bytes, path: Path = Path("<tsv>"), first_line: int = 1) -> dict[str, Any]:
    """Parse complete TSV lines (`buf` ends with a newline) into upstream's preprocessed arrays.

    Returns ``labels`` (uint8, (n,)), ``dense`` (float32, (n, 13)) and ``cat`` (int32, (n, 26)).
    """
    data = np.frombuffer(buf, np.uint8)
    ends = np.flatnonzero(data == 10)
    n = len(ends)
    seps = np.flatnonzero((data == 9) | (data == 10))
    if len(seps) != n * NUM_FIELDS or n == 0:
        per_line = np.diff(np.searchsorted(seps, ends, side="right"), prepend=0)
        bad = int(np.flatnonzero(per_line != NUM_FIELDS)[0]) if n else 0
        raise _line_error(path, first_line + bad, f"has {per_line[bad] - 1 if n else 0} tabs")
    seps = seps.reshape(n, NUM_FIELDS)
    if not np.array_equal(seps[:, -1], ends):
        bad = int(np.flatnonzero(seps[:, -1] != ends)[0])
        raise _line_error(path, first_line + bad, "has the wrong number of tabs")
    starts = np.empty_like(seps)
    starts[:, 0] = np.concatenate(([0], ends[:-1] + 1))
    starts[:, 1:] = seps[:, :-1] + 1
    lengths = seps - starts
    padded = np.concatenate([data, np.zeros(16, np.uint8)])

    labels = _parse_ints(padded, starts[:, 0], lengths[:, 0], path, first_line)
    if np.any((labels != 0) & (labels != 1)):
        bad = int(np.flatnonzero((labels != 0) & (labels != 1))[0])
        raise _line_error(path, first_line + bad, "has a label other than 0/1")
    ints = _parse_ints(
        padded, starts[:, 1:14].ravel(), lengths[:, 1:14].ravel(), path, first_line, NUM_DENSE
    ).reshape(n, NUM_DENSE)
    dense = np.log(np.maximum(ints.astype(np.float32), np.float32(0)) + np.float32(1))

    cat = np.empty((n, NUM_CAT), np.int32)
    cs, cl = starts[:, 14:], lengths[:, 14:]
    idx = cs[..., None] + np.arange(8)
    words = padded[idx].copy()  # (n, 26, 8)
    minus1 = (cl == 2) & (words[..., 0] == ord("-")) & (words[..., 1] == ord("1"))
    missing = (cl == 0) | minus1
    words[missing] = np.frombuffer(_MISSING_CAT, np.uint8)
    w64 = words.view("<u8")[..., 0]
    for col in range(NUM_CAT):
        cat[:, col] = hash_categorical(w64[:, col], col)
    odd = np.flatnonzero(~missing.ravel() & (cl.ravel() != 8))
    for flat in odd:  # values that are not 8 bytes: hashed one by one
        r, col = divmod(int(flat), NUM_CAT)
        value = buf[int(cs[r, col]) : int(cs[r, col] + cl[r, col])]
        cat[r, col] = _hash_one(value, col)
    return {"labels": labels.astype(np.uint8), "dense": dense, "cat": cat}


def _parse_ints(
    padded: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    path: Path,
    first_line: int,
    per_line: int = 1,
) -> np.ndarray:
    """Decimal integers (optionally negative; empty and ``-1`` = missing = 0) -> int64.

    `per_line` fields of each line are given, row-major (for the line number in errors).
    """
    if np.any(lengths > 18):
        bad = int(np.flatnonzero(lengths > 18)[0]) // per_line
        raise _line_error(path, first_line + bad, "has an integer of over 18 digits")
    neg = (lengths > 0) & (padded[starts] == ord("-"))
    values = np.zeros(len(starts), np.int64)
    wrong = np.zeros(len(starts), bool)
    for j in range(int(lengths.max(initial=0))):  # Horner over digit positions, one gather each
        digit = padded[starts + j] - np.uint8(ord("0"))  # uint8: non-digits wrap above 9
        use = (j < lengths) & ~((j == 0) & neg)
        wrong |= use & (digit > 9)
        values = np.where(use, values * 10 + digit, values)
    if np.any(wrong):
        bad = int(np.flatnonzero(wrong)[0]) // per_line
        raise _line_error(path, first_line + bad, "has a non-integer in an integer field")
    return np.where(neg, -values, values)  # "-1" (missing) -> -1 -> relu -> 0, as upstream


# --------------------------------------------------------------------------- prepare


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def shard_name(day: int, index: int) -> str:
    """Upstream's name of file `index` of `day` (``split -a 2 -d``): ``day_3_07``."""
    return f"day_{day}_{index:02d}"


def _write_shard(dest: Path, name: str, arrays: Mapping[str, np.ndarray]) -> None:
    for key in ("labels", "dense", "cat"):
        tmp = dest / f"{name}.{key}.tmp.npy"
        np.save(tmp, arrays[key])
        os.replace(tmp, dest / f"{name}.{key}.npy")


def _read_lines(stream, path: Path, chunk_bytes: int) -> Iterator[bytes]:
    """Blocks of whole lines from a binary stream (a missing final newline is added)."""
    rest = b""
    while True:
        try:
            block = stream.read(chunk_bytes)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt gzip ({e}); delete it and download it again") from e
        if not block:
            break
        block = rest + block
        cut = block.rfind(b"\n") + 1
        rest = block[cut:]
        if cut:
            yield block[:cut]
    if rest:
        yield rest + b"\n"


def convert_day(
    source: Path,
    dest: Path,
    day: int,
    *,
    rows_per_file: int = ROWS_PER_FILE,
    chunk_rows: int = 262_144,
    progress: bool = False,
) -> list[int]:
    """Stream one ``day_N.gz`` once into shards of `rows_per_file` rows; return their sizes."""
    sizes: list[int] = []
    pending: list[dict[str, np.ndarray]] = []
    pending_rows = 0
    line = 1
    start = time.perf_counter()

    def flush(final: bool) -> None:
        nonlocal pending, pending_rows
        while pending_rows >= rows_per_file or (final and pending_rows):
            merged = {k: np.concatenate([p[k] for p in pending]) for k in pending[0]}
            take = min(rows_per_file, pending_rows)
            _write_shard(
                dest, shard_name(day, len(sizes)), {k: v[:take] for k, v in merged.items()}
            )
            sizes.append(take)
            rest = {k: v[take:] for k, v in merged.items()}
            pending_rows -= take
            pending = [rest] if pending_rows else []

    with gzip.open(source, "rb") as stream:
        for block in _read_lines(stream, source, chunk_rows * _TSV_BYTES_PER_ROW):
            arrays = parse_lines(block, source, line)
            n = len(arrays["labels"])
            line += n
            pending.append(arrays)
            pending_rows += n
            flush(final=False)
            if progress:
                rate = (line - 1) / max(time.perf_counter() - start, 1e-9)
                print(
                    f"\r{source.name}: {line - 1:,} rows ({rate:,.0f}/s)", end="", file=sys.stderr
                )
    flush(final=True)
    _say(progress, "")
    if not sizes:
        raise DataError(f"{source}: no rows; delete it and download it again")
    return sizes


def _done_path(dest: Path, day: int) -> Path:
    return dest / f"day_{day}.done.json"


def _record_day(dest: Path, day: int, rows_per_file: int, sizes: list[int]) -> None:
    tmp = _done_path(dest, day).with_suffix(".tmp")
    tmp.write_text(json.dumps({"rows_per_file": rows_per_file, "sizes": sizes}))
    os.replace(tmp, _done_path(dest, day))


def _day_done(dest: Path, day: int, rows_per_file: int) -> list[int] | None:
    try:
        info = json.loads(_done_path(dest, day).read_text())
    except (OSError, ValueError):
        return None
    sizes = info.get("sizes")
    if info.get("rows_per_file") != rows_per_file or not isinstance(sizes, list):
        return None
    for i in range(len(sizes)):
        if not all(
            (dest / f"{shard_name(day, i)}.{k}.npy").is_file() for k in ("labels", "dense", "cat")
        ):
            return None
    return sizes


def prepare(
    data_dir: Path | str,
    source_dir: Path | str,
    *,
    rows_per_file: int = ROWS_PER_FILE,
    workers: int = 1,
    progress: bool = True,
) -> Path:
    """Convert ``<source_dir>/day_{0..23}.gz`` into shards under ``<data_dir>/criteo1tb``.

    Idempotent and resumable by day; the preflight asks for ``BYTES_PER_ROW`` per row still to
    convert (estimated from the gzip sizes at 4.4x compression and 250 TSV bytes a row).
    `workers` > 1 converts that many days at once in separate processes (up to 24).
    """
    dest = Path(data_dir) / DATASET
    if (
        manifest_status(dest) == "ready"
        and _manifest_info(dest).get("format_version") == FORMAT_VERSION
    ):
        return dest
    source_dir = Path(source_dir)
    days = [source_dir / f"day_{d}.gz" for d in range(NUM_DAYS)]
    missing = [p.name for p in days if not p.is_file()]
    if missing:
        raise DataError(
            f"{source_dir}: missing {', '.join(missing)}; download the 24 day_N.gz files of the "
            "Criteo 1TB Click Logs (https://ailab.criteo.com/ressources/) into it"
        )
    dest.mkdir(parents=True, exist_ok=True)
    todo = [d for d in range(NUM_DAYS) if _day_done(dest, d, rows_per_file) is None]
    est_rows = sum(days[d].stat().st_size for d in todo) * 4.4 / _TSV_BYTES_PER_ROW
    check_free_space(
        dest, int(est_rows * BYTES_PER_ROW), f"{DATASET} ({len(todo)} days to convert)"
    )
    for d in todo:
        for stale in dest.glob(f"day_{d}_*.npy"):
            stale.unlink()
    if workers <= 1:
        for k, d in enumerate(todo):
            _say(progress, f"criteo1tb: converting {days[d]} ({k + 1}/{len(todo)})")
            sizes = convert_day(days[d], dest, d, rows_per_file=rows_per_file, progress=progress)
            _record_day(dest, d, rows_per_file, sizes)
    elif todo:  # days are independent: one process each, a day recorded as soon as it is done
        _say(progress, f"criteo1tb: converting {len(todo)} days on {workers} processes")
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(todo))) as pool:
            jobs = {
                pool.submit(convert_day, days[d], dest, d, rows_per_file=rows_per_file): d
                for d in todo
            }
            for job in concurrent.futures.as_completed(jobs):
                _record_day(dest, jobs[job], rows_per_file, job.result())
                _say(progress, f"criteo1tb: {days[jobs[job]].name} done")
    files = {d: _day_done(dest, d, rows_per_file) or [] for d in range(NUM_DAYS)}
    if len(files[NUM_DAYS - 1]) <= NUM_TEST_FILES:
        raise DataError(
            f"{days[-1]}: {len(files[NUM_DAYS - 1])} files of {rows_per_file:,} rows, upstream's "
            f"validation split needs more than {NUM_TEST_FILES}; use the complete day_23.gz"
        )
    splits = {s: int(sum(sizes)) for s, sizes in _split_sizes(files).items()}
    names = [
        f"{shard_name(d, i)}.{k}.npy" for d, s in files.items() for i in range(len(s))
        for k in ("labels", "dense", "cat")
    ]  # fmt: skip
    write_manifest(
        dest,
        names,
        dataset=DATASET,
        format_version=FORMAT_VERSION,
        rows_per_file=rows_per_file,
        day_files={str(d): s for d, s in files.items()},
        splits=splits,
    )
    _say(progress, f"criteo1tb: {splits} rows ready in {dest}")
    return dest


def _split_sizes(files: Mapping[int, Sequence[int]]) -> dict[str, list[int]]:
    last = list(files[NUM_DAYS - 1])
    return {
        "train": [n for d in range(NUM_DAYS - 1) for n in files[d]],
        "test": last[:NUM_TEST_FILES],
        "validation": last[NUM_TEST_FILES:],
    }


def _manifest_info(dest: Path) -> dict[str, Any]:
    try:
        return json.loads((dest / ".algoperf_manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def prepare_dataset(
    dataset: str,
    data_dir: Path | str,
    *,
    offline_fallback: bool = True,
    progress: bool = True,
    source_dir: Path | str | None = None,
    rows_per_file: int = ROWS_PER_FILE,
    workers: int = 1,
) -> Path:
    """`algoperf datasets prepare criteo1tb` entry (the user downloads the day files)."""
    del offline_fallback
    if dataset != DATASET:
        raise ValueError(f"workloads.criteo1tb.data prepares {DATASET!r}, not {dataset!r}")
    if source_dir is None:
        raise DataError(
            "criteo1tb: pass --criteo1tb_source_dir DIR, the folder holding day_0.gz ... "
            "day_23.gz downloaded from https://ailab.criteo.com/ressources/"
        )
    return prepare(
        data_dir, source_dir, rows_per_file=rows_per_file, workers=workers, progress=progress
    )


# --------------------------------------------------------------------------- batches


def _split_layout(data_dir: Path | str, split: str) -> tuple[list[str], list[int]]:
    """Shard names of `split` and their row counts, from the manifest."""
    dest = Path(data_dir) / DATASET
    if manifest_status(dest) != "ready":
        raise DataError(
            f"{dest}: criteo1tb is not prepared; run `algoperf datasets prepare criteo1tb "
            "--criteo1tb_source_dir DIR`"
        )
    files = {int(d): s for d, s in _manifest_info(dest)["day_files"].items()}
    if split in ("train", "eval_train"):
        pairs = [(shard_name(d, i), n) for d in range(NUM_DAYS - 1) for i, n in enumerate(files[d])]
    elif split in ("validation", "test"):
        last = [(shard_name(NUM_DAYS - 1, i), n) for i, n in enumerate(files[NUM_DAYS - 1])]
        pairs = last[NUM_TEST_FILES:] if split == "validation" else last[:NUM_TEST_FILES]
    else:
        raise ValueError(f"unknown criteo1tb split {split!r}")
    return [name for name, _ in pairs], [int(n) for _, n in pairs]


def split_files(data_dir: Path | str, split: str) -> list[str]:
    """Shard names of `split` (``train``, ``eval_train``, ``validation``, ``test``), upstream's."""
    return _split_layout(data_dir, split)[0]


def split_sizes(data_dir: Path | str) -> dict[str, int]:
    """Rows of ``train``, ``validation`` and ``test`` of a prepared dataset."""
    return {s: sum(_split_layout(data_dir, s)[1]) for s in ("train", "validation", "test")}


def _assemble(parts: list[dict[str, np.ndarray]], size: int) -> dict[str, np.ndarray]:
    """Upstream's batch: ``inputs`` (B, 39) float32 = 13 dense then 26 ids as float32."""
    inputs = np.zeros((size, NUM_DENSE + NUM_CAT), np.float32)
    targets = np.zeros(size, np.float32)
    weights = np.zeros(size, np.float32)
    offset = 0
    for p in parts:
        n = len(p["labels"])
        inputs[offset : offset + n, :NUM_DENSE] = p["dense"]
        inputs[offset : offset + n, NUM_DENSE:] = p["cat"]
        targets[offset : offset + n] = p["labels"]
        offset += n
    weights[:offset] = 1.0
    return {"inputs": inputs, "targets": targets, "weights": weights}


class _Rows:
    """Row ranges of a sequence of shards read as one array (only the rows asked for)."""

    def __init__(self, dest: Path, names: Sequence[str], sizes: Sequence[int]) -> None:
        self.dest, self.names = dest, list(names)
        self.starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self._open: tuple[int, dict[str, np.ndarray]] | None = None

    @property
    def total(self) -> int:
        return int(self.starts[-1])

    def _shard(self, i: int) -> dict[str, np.ndarray]:
        if self._open is None or self._open[0] != i:
            arrays = {
                k: np.load(self.dest / f"{self.names[i]}.{k}.npy", mmap_mode="r")
                for k in ("labels", "dense", "cat")
            }
            self._open = (i, arrays)
        return self._open[1]

    def read(self, lo: int, hi: int) -> list[dict[str, np.ndarray]]:
        """Rows ``lo`` to ``hi`` (global row numbers) as slices of the shards holding them."""
        parts = []
        i = int(np.searchsorted(self.starts, lo, side="right")) - 1
        while lo < hi:
            begin, end = int(self.starts[i]), int(self.starts[i + 1])
            take = min(hi, end) - lo
            if take > 0:
                parts.append(
                    {k: v[lo - begin : lo - begin + take] for k, v in self._shard(i).items()}
                )
                lo += take
            i += 1
        return parts


def _check_shard(shard: tuple[int, int], batch_size: int) -> tuple[int, int]:
    index, count = shard
    if count < 1 or not 0 <= index < count or batch_size % count:
        raise ValueError(
            f"criteo1tb: shard {shard} must be (index, count) with 0 <= index < count and the "
            f"global batch size {batch_size} divisible by count"
        )
    local = batch_size // count
    return index * local, local


def _batches(
    rows: _Rows,
    batch_size: int,
    *,
    drop_remainder: bool,
    skip_rows: int = 0,
    limit: int | None = None,
    shard: tuple[int, int] = (0, 1),
) -> Iterator[dict[str, np.ndarray]]:
    """Global batches of `batch_size` consecutive rows from row `skip_rows` on (at most `limit`
    rows); of each only this shard's rows are read, zero-padded with weight 0 past the end."""
    first, local = _check_shard(shard, batch_size)
    end = rows.total if limit is None else min(rows.total, skip_rows + limit)
    available = max(0, end - skip_rows)
    count = available // batch_size if drop_remainder else -(-available // batch_size)
    for b in range(count):
        lo = skip_rows + b * batch_size + first
        yield _assemble(rows.read(min(lo, end), min(lo + local, end)), local)


def train_batches(
    data_dir: Path | str,
    batch_size: int,
    seed: int,
    *,
    split: str = "train",
    start_step: int = 0,
    shard: tuple[int, int] = (0, 1),
) -> Iterator[dict[str, np.ndarray]]:
    """Infinite training batches: each epoch a permutation of the file names from
    ``default_rng([seed, epoch])``, files read in order, batches across file boundaries, the
    incomplete last batch of an epoch dropped (upstream's ``drop_remainder`` + ``repeat``).

    ``start_step`` resumes at that batch exactly (nothing before it is read); ``shard=(r, W)``
    yields only rows ``r B / W`` to ``(r + 1) B / W`` of every global batch (one DDP rank).
    """
    dest = Path(data_dir) / DATASET
    names, sizes = _split_layout(data_dir, split)
    per_epoch = sum(sizes) // batch_size
    if per_epoch == 0:
        raise DataError(f"{dest}: {sum(sizes)} {split} rows, fewer than one batch of {batch_size}")
    first_epoch, skip = divmod(start_step, per_epoch)
    for epoch in range(first_epoch, sys.maxsize):
        order = np.random.default_rng([seed, epoch]).permutation(len(names))
        rows = _Rows(dest, [names[i] for i in order], [sizes[i] for i in order])
        for batch in _batches(
            rows, batch_size, drop_remainder=True, skip_rows=skip * batch_size, shard=shard
        ):
            yield {k: v for k, v in batch.items() if k != "weights"}
        skip = 0


def eval_batches(
    data_dir: Path | str,
    split: str,
    batch_size: int,
    num_examples: int | None = None,
    *,
    seed: int = 0,
    shard: tuple[int, int] = (0, 1),
) -> Iterator[dict[str, np.ndarray]]:
    """Eval batches, the last one zero-padded with weight 0 (upstream's ``shard_and_maybe_pad_np``),
    at most `num_examples` real rows. ``validation`` / ``test`` read their files in order;
    ``eval_train`` reads the train files in the fixed order ``default_rng([seed, 2**32 - 1])`` gives
    (upstream shuffles them once with the run's seed and replays the same batches every eval).
    ``shard`` as in `train_batches`."""
    dest = Path(data_dir) / DATASET
    names, sizes = _split_layout(data_dir, split)
    if split == "eval_train":
        order = np.random.default_rng([seed, 2**32 - 1]).permutation(len(names))
        names, sizes = [names[i] for i in order], [sizes[i] for i in order]
    rows = _Rows(dest, names, sizes)
    yield from _batches(rows, batch_size, drop_remainder=False, limit=num_examples, shard=shard)


def synthetic_batch(config: Any, global_batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """A host batch of upstream's layout: dense in [0, 8), ids below the raw vocabularies."""
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0, 8, (global_batch_size, NUM_DENSE)).astype(np.float32)
    ids = np.stack([rng.integers(0, v, global_batch_size) for v in RAW_VOCAB_SIZES], axis=1)
    inputs = np.concatenate([dense, ids.astype(np.float32)], axis=1)
    targets = (rng.random(global_batch_size) < 0.03).astype(np.float32)
    return {"inputs": inputs, "targets": targets, "weights": np.ones(global_batch_size, np.float32)}
