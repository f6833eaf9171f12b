"""FineWeb-Edu ``sample-10BT`` on disk: parquet -> GPT-2 BPE -> uint16 token memmaps of 1,025-token windows.

Source: the ``sample/10BT/*.parquet`` files of the Hugging Face dataset ``HuggingFaceFW/fineweb-edu``
(columns ``text, id, dump, url, file_path, language, language_score, token_count, score,
int_score``), read with pyarrow one record batch at a time, from a local directory
(``--finewebedu_parquet_dir``; e.g. ``huggingface-cli download HuggingFaceFW/fineweb-edu --repo-type dataset
--include 'sample/10BT/*' --local-dir DIR``). Only ``text`` is used; ``token_count`` (GPT-2 tokens
per document) sizes the disk-space preflight.

Tokeniser: GPT-2 BPE (``r50k_base``: 50,256 ranks + ``<|endoftext|>`` = 50,256) through tiktoken,
built from a local ranks file so that it works offline: ``r50k_base.tiktoken`` (sha256
``306cd27f...d930``, the file tiktoken itself downloads) or the identical ``gpt2.tiktoken`` shipped
in the ``openai-whisper`` sdist. `prepare` looks for it in ``<data_dir>/finewebedu/`` (or takes
``--finewebedu_ranks_file``) and otherwise downloads it, checksummed, falling back to the
openai-whisper sdist on the package index; offline it fails naming the ways to get it. Every document is encoded as ``ordinary tokens + [EOS]``.

Layout written by `prepare` into ``<data_dir>/finewebedu/``::

    train.bin       uint16 (num_train * 1025,)       the token stream cut into whole windows
    validation.bin  uint16 (num_validation * 1025,)  (no test split, as upstream)
    meta.json       window length, split sizes, EOS id, vocab size, source files
    manifest.json   written last: the directory is complete

Windows follow upstream's input pipeline: the documents' tokens are concatenated and cut into
consecutive, non-overlapping blocks of 1,025 tokens (the remainder dropped); a window ``w`` gives
``inputs = w[:1024]`` and ``targets = w[1:]``. Split (a documented choice: upstream's split is
made by its setup script from the same stream): the first ``validation_sequences`` windows of the
stream are ``validation``, the rest ``train``. ``eval_train`` reads the first
``num_eval_train_examples`` train windows.

Resumable: parquet files are converted in sorted order and progress is recorded after each file
(``progress.json``), so an interrupted run truncates the outputs to the last finished file and goes
on from there. A directory with a valid manifest is returned as is (idempotent).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from algoperf.data import DataError, DatasetError
from algoperf.data.download import (
    DownloadError,
    check_free_space,
    download_file,
    manifest_status,
    write_manifest,
)
from workloads.common import index_files
from workloads.common.prepare_entry import prepare_entry

DATASET = "finewebedu"
SEQUENCE_LENGTH = 1024
WINDOW = SEQUENCE_LENGTH + 1
VOCAB_SIZE = 50_257
EOS_ID = 50_256
SPLITS = ("train", "validation")
DEFAULT_VALIDATION_SEQUENCES = 100_000
FORMAT_VERSION = 1
# GPT-2 BPE ranks, as tiktoken's r50k_base loader fetches and checks them.
RANKS_NAMES = ("r50k_base.tiktoken", "gpt2.tiktoken")
RANKS_URL = "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken"
RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
# The same ranks, shipped as whisper/assets/gpt2.tiktoken in the openai-whisper sdist.
GPT2_RANKS_ON_INDEX = index_files.IndexFile(
    requirement="openai-whisper==20250625",
    filename="openai_whisper-20250625.tar.gz",
    sha256="37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96",
    member="openai_whisper-20250625/whisper/assets/gpt2.tiktoken",
    member_sha256=RANKS_SHA256,
    binary=False,
)
# fineweb-edu's columns (sample-10BT parquet).
COLUMNS = (
    "text",
    "id",
    "dump",
    "url",
    "file_path",
    "language",
    "language_score",
    "token_count",
    "score",
    "int_score",
)
_PROGRESS = "progress.json"


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def prepare_hint(dataset: str, data_dir: Path | str) -> str:
    """How to prepare `dataset` (this family's datasets) into `data_dir`."""
    source = " --finewebedu_parquet_dir DIR" if dataset == DATASET else ""
    return f"run `algoperf datasets prepare {dataset}{source} --data_dir {data_dir}`"


# Tokeniser ---------------------------------------------------------------------------------------


def load_encoding(ranks_file: Path | str, name: str = "gpt2") -> Any:
    """A tiktoken GPT-2 `Encoding` built from a local ``.tiktoken`` ranks file (no network).

    The end-of-text token gets the id after the last rank (50,256 for GPT-2's 50,256 ranks).
    """
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    from tiktoken_ext.openai_public import r50k_pat_str

    path = Path(ranks_file)
    try:
        ranks = load_tiktoken_bpe(str(path))
    except (OSError, ValueError) as e:
        raise DataError(
            f"{path}: not a readable tiktoken ranks file ({e}); delete it and get "
            f"{RANKS_NAMES[0]} again ({RANKS_URL})"
        ) from e
    return tiktoken.Encoding(
        name=name,
        pat_str=r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": len(ranks)},
    )


def find_ranks_file(
    dest: Path, ranks_file: Path | str | None, *, offline: bool, progress: bool
) -> Path:
    """The GPT-2 ranks file: `ranks_file`, one already in `dest`, or a verified download."""
    if ranks_file is not None:
        p = Path(ranks_file)
        if not p.is_file():
            raise DataError(f"{p}: no such ranks file; pass the path of {RANKS_NAMES[0]}")
        return p
    for name in RANKS_NAMES:
        if (dest / name).is_file():
            return dest / name
    if offline:
        raise DataError(
            f"{dest / RANKS_NAMES[0]}: GPT-2 BPE ranks file missing; download {RANKS_URL} "
            "(sha256 306cd27f...) there, or copy gpt2.tiktoken from the openai-whisper sdist "
            "(whisper/assets/), or pass --finewebedu_ranks_file"
        )
    try:
        return download_file(
            RANKS_URL, dest / RANKS_NAMES[0], sha256=RANKS_SHA256, progress=progress
        )
    except DownloadError as first:
        # The identical file inside the openai-whisper sdist, from the package index (reachable
        # wherever this project installs).
        _say(progress, f"{DATASET}: {RANKS_URL} unreachable; taking gpt2.tiktoken from the index")
        try:
            return index_files.fetch_member(GPT2_RANKS_ON_INDEX, dest / RANKS_NAMES[1])
        except DatasetError as second:
            raise DataError(f"{first}; and from the package index: {second}") from None


# Source ------------------------------------------------------------------------------------------


def parquet_files(parquet_dir: Path | str) -> list[Path]:
    """The sorted ``*.parquet`` files under `parquet_dir` (recursively, e.g. ``sample/10BT/``)."""
    root = Path(parquet_dir)
    if not root.is_dir():
        raise DataError(
            f"{root}: no such directory; pass --finewebedu_parquet_dir with fineweb-edu parquet"
        )
    files = sorted(p for p in root.rglob("*.parquet") if p.is_file())
    if not files:
        raise DataError(
            f"{root}: no .parquet files; download them with `huggingface-cli download "
            "HuggingFaceFW/fineweb-edu --repo-type dataset --include 'sample/10BT/*' "
            f"--local-dir {root}`"
        )
    return files


def _open_parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        f = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path}: not a readable parquet file ({e}); download it again") from e
    if "text" not in f.schema_arrow.names:
        raise DataError(
            f"{path}: no 'text' column (has {f.schema_arrow.names}); expected fineweb-edu parquet"
        )
    return f


def estimated_tokens(files: Sequence[Path]) -> int:
    """Tokens the files will give: sum of ``token_count`` + one EOS per document (or a guess)."""
    total = 0
    for path in files:
        f = _open_parquet(path)
        if "token_count" in f.schema_arrow.names:
            col = f.read(columns=["token_count"]).column("token_count")
            total += int(np.asarray(col, dtype=np.int64).sum()) + f.metadata.num_rows
        else:  # about 4 bytes of text per token
            total += path.stat().st_size // 2
    return total


def documents(path: Path, batch_rows: int = 1024) -> Iterator[str]:
    """The ``text`` of each row of one parquet file, in order."""
    f = _open_parquet(path)
    for batch in f.iter_batches(batch_size=batch_rows, columns=["text"]):
        for text in batch.column(0).to_pylist():
            if text is None:
                raise DataError(f"{path}: a row has no text; the file is not fineweb-edu parquet")
            yield text


def encode_file(path: Path, encoding: Any, eos_id: int) -> np.ndarray:
    """Every document of `path` as GPT-2 tokens followed by EOS, concatenated, uint16."""
    parts = []
    batch: list[str] = []

    def flush() -> None:
        for ids in encoding.encode_ordinary_batch(batch, num_threads=2):
            parts.append(np.asarray([*ids, eos_id], dtype=np.uint16))
        batch.clear()

    for text in documents(path):
        batch.append(text)
        if len(batch) == 512:
            flush()
    flush()
    return np.concatenate(parts) if parts else np.zeros(0, np.uint16)


# Prepare -----------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def prepare(
    data_dir: Path | str,
    *,
    parquet_dir: Path | str | None = None,
    ranks_file: Path | str | None = None,
    validation_sequences: int = DEFAULT_VALIDATION_SEQUENCES,
    offline: bool = False,
    progress: bool = True,
) -> Path:
    """Tokenise fineweb-edu parquet into ``<data_dir>/finewebedu/{train,validation}.bin``.

    Idempotent (a ready manifest returns at once), resumable per parquet file, and preflighted
    (room for 2 bytes per estimated token).
    """
    dest = Path(data_dir) / DATASET
    if (
        manifest_status(dest) == "ready"
        and (_read_json(dest / "meta.json") or {}).get("format_version") == FORMAT_VERSION
    ):
        return dest
    if parquet_dir is None:
        raise DataError(f"{dest}: not prepared; {prepare_hint(DATASET, data_dir)}")
    files = parquet_files(parquet_dir)
    dest.mkdir(parents=True, exist_ok=True)
    ranks = find_ranks_file(dest, ranks_file, offline=offline, progress=progress)
    encoding = load_encoding(ranks)
    eos_id = encoding.eot_token
    if encoding.n_vocab > 65_536:
        raise DataError(f"{ranks}: {encoding.n_vocab} tokens do not fit uint16")
    names = [str(p.relative_to(Path(parquet_dir))) for p in files]
    state = _read_json(dest / _PROGRESS)
    if not state or state.get("files") != names or state.get("ranks") != ranks.name:
        state = {"files": names, "ranks": ranks.name, "done": 0, "tokens": 0}
        (dest / "stream.bin").unlink(missing_ok=True)
    todo = files[state["done"] :]
    have = int(state["tokens"])
    if todo:
        check_free_space(dest, 2 * (estimated_tokens(todo) + have), f"{DATASET} token stream")
    stream = dest / "stream.bin"
    with open(stream, "ab") as out:
        out.truncate(2 * have)  # drop a partly written file's tokens
        out.seek(2 * have)
        for i, path in enumerate(todo, start=state["done"]):
            tokens = encode_file(path, encoding, eos_id)
            out.write(tokens.tobytes())
            out.flush()
            os.fsync(out.fileno())
            have += len(tokens)
            state.update(done=i + 1, tokens=have)
            _write_json(dest / _PROGRESS, state)
            _say(progress, f"{DATASET}: {i + 1}/{len(files)} parquet files, {have:,} tokens")
    num_windows = have // WINDOW
    if num_windows <= validation_sequences:
        raise DataError(
            f"{parquet_dir}: {num_windows} windows of {WINDOW} tokens, not more than the "
            f"{validation_sequences} validation sequences; add parquet files or lower "
            "--finewebedu_validation_sequences"
        )
    _split_stream(stream, dest, validation_sequences, num_windows)
    stream.unlink()
    (dest / _PROGRESS).unlink(missing_ok=True)
    sizes = {"train": num_windows - validation_sequences, "validation": validation_sequences}
    _write_json(
        dest / "meta.json",
        {
            "format_version": FORMAT_VERSION,
            "window": WINDOW,
            "eos_id": eos_id,
            "vocab_size": encoding.n_vocab,
            "ranks_file": ranks.name,
            "sources": names,
            "splits": sizes,
        },
    )
    write_manifest(dest, [f"{s}.bin" for s in SPLITS] + ["meta.json"], dataset=DATASET)
    _say(progress, f"{DATASET}: train {sizes['train']:,}, validation {sizes['validation']:,}")
    return dest


def _split_stream(stream: Path, dest: Path, num_validation: int, num_windows: int) -> None:
    tokens = np.memmap(stream, dtype=np.uint16, mode="r")
    cut = num_validation * WINDOW
    for split, lo, hi in (("validation", 0, cut), ("train", cut, num_windows * WINDOW)):
        part = dest / f"{split}.bin.part"
        out = np.memmap(part, dtype=np.uint16, mode="w+", shape=(hi - lo,))
        step = 64 * 1024 * 1024
        for a in range(lo, hi, step):
            b = min(a + step, hi)
            out[a - lo : b - lo] = tokens[a:b]
        out.flush()
        del out
        os.replace(part, dest / f"{split}.bin")
    del tokens


# `algoperf datasets prepare finewebedu` (the registry's prepare signature).
prepare_dataset = prepare_entry(prepare, DATASET)


def load_windows(data_dir: Path | str, split: str, dataset: str = DATASET) -> np.ndarray:
    """The (n, window) uint16 windows of a split of `dataset`, memory-mapped read-only.

    The window length is the one `meta.json` records (1,025 for finewebedu; `lm_bible` takes it
    from its prepare options), so the family reads any dataset laid out this way.
    """
    dest = Path(data_dir) / dataset
    name = "train" if split == "eval_train" else split
    if name not in SPLITS:
        raise ValueError(f"{dataset} has splits {SPLITS} (and eval_train), not {split!r}")
    path = dest / f"{name}.bin"
    if manifest_status(dest) != "ready" or not path.is_file():
        raise DatasetError(f"{path}: missing or incomplete; {prepare_hint(dataset, data_dir)}")
    window = int((_read_json(dest / "meta.json") or {}).get("window", WINDOW))
    size = path.stat().st_size
    if size % (2 * window):
        raise DatasetError(
            f"{path}: {size} bytes is no whole number of {window}-token windows; prepare again"
        )
    return np.memmap(path, dtype=np.uint16, mode="r").reshape(-1, window)


def window_batch(windows: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Upstream's batch of the given window rows: inputs ``w[:-1]``, targets ``w[1:]`` (int32)."""
    w = np.asarray(windows[rows], dtype=np.int32)
    return {"inputs": w[:, :-1], "targets": w[:, 1:]}
