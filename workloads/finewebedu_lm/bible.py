"""``lm_bible``: the World English Bible as language-model text, for the CPU-sized ``lm_bible`` variant.

Source: Debian's ``sword-text-web`` (module ``engWEB2015eb``), read verse by verse with pysword
(`workloads.common.sword`; ``$ALGOPERF_SWORD_DIR`` or ``/usr/share/sword``), so the text installs
offline from a package registry. A **document** is one chapter: its verses joined by spaces, then
EOS. Chapters of the books in `VALIDATION_BOOKS` (narrative, wisdom and letters: Ruth,
Ecclesiastes, Jonah, Philippians, James, Jude) are ``validation``; every other book's are
``train`` (no test split, as finewebedu).

Tokeniser: a SentencePiece unigram model of `DEFAULT_VOCAB_SIZE` (2,048) pieces trained on the
train books' verses alone (one verse a line; `workloads.common.tokenizer`, upstream's recipe
otherwise: full character coverage, ids unk 0 / bos 1 / eos 2), so nothing of validation leaks
into the vocabulary.

Windows as finewebedu's (`workloads.finewebedu_lm.data`): each split's documents are
concatenated and cut into consecutive, non-overlapping windows of `window` tokens (default 129 =
128 inputs + 1 target shift), the remainder dropped. Layout written into
``<data_dir>/lm_bible/``::

    train.bin        uint16 (num_train * window,)
    validation.bin   uint16 (num_validation * window,)
    tokenizer.model  the SentencePiece model (its sha256 in meta.json)
    meta.json        window, vocab size, EOS id, books, split sizes, tokenizer sha256
    manifest.json    written last: the directory is complete

Idempotent: a ready directory prepared with the same window and vocabulary is returned as is;
other options prepare it again. Deterministic: the same text, options and trainer thread count
give the same bytes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from algoperf.data import DataError
from algoperf.data.download import MANIFEST_NAME, manifest_status, write_manifest
from workloads.common import sword, tokenizer
from workloads.common.prepare_entry import prepare_entry
from workloads.finewebedu_lm import data

DATASET = "lm_bible"
FORMAT_VERSION = 1
DEFAULT_WINDOW = 129
DEFAULT_VOCAB_SIZE = 2048
VALIDATION_BOOKS = ("Ruth", "Eccl", "Jonah", "Phil", "Jas", "Jude")
TOKENIZER_FILE = "tokenizer.model"
# SentencePiece's unigram model depends on the thread count; fixed so every machine gets the
# same pieces (upstream's, SentencePiece's default).
TRAINER_THREADS = 16

Chapter = Sequence[str]  # the verses of one chapter, in order


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def bible_chapters(
    books: Sequence[str] | None = None, library: Path | None = None
) -> dict[str, list[list[str]]]:
    """OSIS book -> its chapters (each a list of verse texts), in canonical order."""
    out: dict[str, list[list[str]]] = {}
    current: tuple[str, int] | None = None
    for (book, chapter, _), text in sword.verses(sword.ENGLISH, books, library).items():
        if (book, chapter) != current:
            out.setdefault(book, []).append([])
            current = (book, chapter)
        out[book][-1].append(text)
    return out


def windows_of(spm: tokenizer.Tokenizer, chapters: Sequence[Chapter], window: int) -> np.ndarray:
    """The chapters as one token stream (each chapter's ids then EOS) cut into (n, window)."""
    stream = np.concatenate(
        [spm.encode(" ".join(verses)) for verses in chapters] or [np.zeros(0, np.int32)]
    )
    n = len(stream) // window
    return stream[: n * window].astype(np.uint16).reshape(n, window)


def _ready(dest: Path, window: int, vocab_size: int) -> bool:
    meta = data._read_json(dest / "meta.json") or {}
    return (
        manifest_status(dest) == "ready"
        and meta.get("format_version") == FORMAT_VERSION
        and meta.get("window") == window
        and meta.get("requested_vocab_size") == vocab_size
    )


def write_dataset(
    data_dir: Path | str,
    train: Sequence[Chapter],
    validation: Sequence[Chapter],
    *,
    window: int = DEFAULT_WINDOW,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    sources: dict[str, Any] | None = None,
    **trainer_options: Any,
) -> Path:
    """Train the tokenizer on `train`'s verses and write both splits as windows (module doc).

    `sources` is recorded in ``meta.json``; `trainer_options` go to SentencePiece (the fixture
    passes ``hard_vocab_limit=False`` for its small text).
    """
    if window < 2:
        raise DataError(f"--lm_bible_window {window}: a window needs at least 2 tokens")
    if not 4 <= vocab_size <= 65_536:
        raise DataError(f"--lm_bible_vocab_size {vocab_size}: must lie in [4, 65536] (uint16 ids)")
    dest = Path(data_dir) / DATASET
    (dest / MANIFEST_NAME).unlink(missing_ok=True)  # incomplete until rewritten
    dest.mkdir(parents=True, exist_ok=True)
    lines = [verse for chapter in train for verse in chapter]
    try:
        spm = tokenizer.train_sentencepiece(
            lines,
            vocab_size=vocab_size,
            max_chars=None,
            num_threads=TRAINER_THREADS,
            **trainer_options,
        )
    except ValueError as error:
        raise DataError(f"{dest}: {error}; lower --lm_bible_vocab_size") from error
    spm.save(dest / TOKENIZER_FILE)
    sizes = {}
    for split, chapters in (("train", train), ("validation", validation)):
        windows = windows_of(spm, chapters, window)
        if not len(windows):
            raise DataError(
                f"{dest}: the {split} chapters make no window of {window} tokens; "
                "lower --lm_bible_window"
            )
        part = dest / f"{split}.bin.part"
        part.write_bytes(windows.tobytes())
        part.replace(dest / f"{split}.bin")
        sizes[split] = len(windows)
    data._write_json(
        dest / "meta.json",
        {
            "format_version": FORMAT_VERSION,
            "window": window,
            "eos_id": spm.eos_id,
            "vocab_size": spm.vocab_size,
            "requested_vocab_size": vocab_size,
            "tokenizer_sha256": spm.sha256,
            "splits": sizes,
            "sources": sources or {},
        },
    )
    write_manifest(
        dest, ["train.bin", "validation.bin", TOKENIZER_FILE, "meta.json"], dataset=DATASET
    )
    return dest


def prepare(
    data_dir: Path | str,
    *,
    window: int = DEFAULT_WINDOW,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    sword_dir: Path | str | None = None,
    progress: bool = True,
) -> Path:
    """Prepare ``<data_dir>/lm_bible/`` from the installed World English Bible (module doc)."""
    dest = Path(data_dir) / DATASET
    if _ready(dest, window, vocab_size):
        return dest
    library = Path(sword_dir) if sword_dir is not None else None
    _say(progress, f"{DATASET}: reading {sword.ENGLISH}")
    books = bible_chapters(library=library)
    missing = sorted(set(VALIDATION_BOOKS) - set(books))
    if missing:
        raise DataError(f"{sword.ENGLISH}: no chapters for the validation books {missing}")
    train = [
        c for book, chapters in books.items() if book not in VALIDATION_BOOKS for c in chapters
    ]
    validation = [c for book in VALIDATION_BOOKS for c in books[book]]
    _say(progress, f"{DATASET}: {len(train)} train and {len(validation)} validation chapters")
    sources = {
        "module": sword.ENGLISH,
        "package": sword.PACKAGES[sword.ENGLISH],
        "validation_books": list(VALIDATION_BOOKS),
        "train_books": [b for b in books if b not in VALIDATION_BOOKS],
    }
    dest = write_dataset(
        data_dir, train, validation, window=window, vocab_size=vocab_size, sources=sources
    )
    meta = data._read_json(dest / "meta.json") or {}
    _say(progress, f"{DATASET}: windows of {window}: {meta['splits']}")
    return dest


# `algoperf datasets prepare lm_bible` (the registry's prepare signature).
prepare_dataset = prepare_entry(prepare, DATASET)
