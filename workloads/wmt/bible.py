"""Real parallel text for wmt fixtures: the Spanish and English public-domain Bibles, verse-aligned.

`write_source` lays verse pairs out exactly as the WMT17 archives extract (line-aligned
``news-commentary-v12.de-en.{de,en}`` for training, ``newstest2013``/``newstest2014`` SGM files for
validation and test), so `workloads.wmt.data.prepare` runs on them unchanged: the pipeline is
language-agnostic, and the ``.de`` side holds Spanish (Reina-Valera 1909) and the ``.en`` side
English (World English Bible). Books are held out whole for the eval splits, so no verse of an
eval set is seen in training. The sources are Debian packages (`workloads.common.sword`).

The ``wmt_bible`` dataset (`prepare`) is the whole Bible so laid out, minus `BIBLE_HELD_OUT`
(validation: Ruth, 85 verses; test: Jonah, 48), through the real wmt prepare with
a `BIBLE_VOCAB`-piece SentencePiece model and rows of `BIBLE_MAX_LENGTH` tokens, into
``<data_dir>/wmt_bible/``. `write_fixture` writes the same dataset cut down to a few books.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from algoperf.data.download import manifest_status
from workloads.common import sword
from workloads.common.prepare_entry import prepare_entry
from workloads.wmt import data
from workloads.wmt.testing import write_sgm

TRAIN_BOOKS = ("Matt", "Mark", "Luke", "Acts")
HELD_OUT = {"validation": ("John",), "test": ("Rom",)}
SOURCE_NOTE = "README.algoperf"

DATASET = "wmt_bible"
# Short books: every eval translates each held-out verse with beam search, a CPU's main eval cost.
BIBLE_HELD_OUT = {"validation": ("Ruth",), "test": ("Jonah",)}
BIBLE_VOCAB = 2048
# Verses are short: rows of 128 tokens hold about four pairs; the longest verses are dropped.
BIBLE_MAX_LENGTH = 128
# The fixture: one gospel to train on, two one-chapter books to evaluate.
FIXTURE_BOOKS = {"train": ("Mark",), "validation": ("Jude",), "test": ("Phlm",)}
FIXTURE_VOCAB = 600


def write_source(
    root: Path | str,
    train_books: Sequence[str] | None = TRAIN_BOOKS,
    held_out: Mapping[str, Sequence[str]] = HELD_OUT,
) -> Path:
    """Write the verse pairs of `train_books` (None: every other book) and `held_out` under `root`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    books = (
        None if train_books is None else [*train_books, *(b for v in held_out.values() for b in v)]
    )
    rows = sword.parallel(sword.SPANISH, sword.ENGLISH, books)
    splits = sword.split_by_book(rows, dict(held_out))
    train = splits["train"]
    (root / "news-commentary-v12.de-en.de").write_text(
        "".join(f"{s}\n" for s, _ in train), encoding="utf-8"
    )
    (root / "news-commentary-v12.de-en.en").write_text(
        "".join(f"{t}\n" for _, t in train), encoding="utf-8"
    )
    names = {
        "validation": ("newstest2013-src.de.sgm", "newstest2013-ref.en.sgm"),
        "test": ("newstest2014-deen-src.de.sgm", "newstest2014-deen-ref.en.sgm"),
    }
    for split, (src_name, ref_name) in names.items():
        pairs = splits.get(split, [])
        # SGM escapes markup characters as the WMT release files do.
        write_sgm(root / src_name, [escape(s, quote=False) for s, _ in pairs], "de")
        write_sgm(root / ref_name, [escape(t, quote=False) for _, t in pairs], "en", kind="refset")
    (root / SOURCE_NOTE).write_text(
        f"Verse-aligned {sword.SPANISH} (as .de) and {sword.ENGLISH} (as .en) from SWORD modules; "
        f"train {len(train)} pairs, "
        + ", ".join(f"{s} {len(splits.get(s, []))} ({', '.join(b)})" for s, b in held_out.items())
        + "\n",
        encoding="utf-8",
    )
    return root


def prepare(
    data_dir: Path | str,
    *,
    vocab_size: int = BIBLE_VOCAB,
    train_books: Sequence[str] | None = None,
    held_out: Mapping[str, Sequence[str]] = BIBLE_HELD_OUT,
    dataset: str = DATASET,
    progress: bool = True,
) -> Path:
    """The Bible pairs of `train_books` (None: all but `held_out`) written as WMT17 files under
    ``<data_dir>/<dataset>/source`` and prepared by `workloads.wmt.data.prepare` into
    ``<data_dir>/<dataset>/`` (idempotent: a ready directory is returned as is)."""
    dest = Path(data_dir) / dataset
    meta = data._read_meta(dest)
    if manifest_status(dest) == "ready" and meta.get("max_length") == BIBLE_MAX_LENGTH:
        return dest
    source = write_source(dest / "source", train_books, held_out)
    return data.prepare(
        data_dir,
        source_dir=source,
        vocab_size=vocab_size,
        max_length=BIBLE_MAX_LENGTH,
        dataset=dataset,
        progress=progress,
    )


# `algoperf datasets prepare wmt_bible` (the registry's prepare signature).
prepare_dataset = prepare_entry(prepare, DATASET)


def write_fixture(dataset: str, data_dir: Path | str) -> Mapping[str, Any]:
    """`prepare` on `FIXTURE_BOOKS` with a `FIXTURE_VOCAB`-piece model; returns the split sizes."""
    if dataset != DATASET:
        raise ValueError(f"{__name__} writes {DATASET!r}, not {dataset!r}")
    held_out = {k: v for k, v in FIXTURE_BOOKS.items() if k != "train"}
    dest = prepare(
        data_dir,
        vocab_size=FIXTURE_VOCAB,
        train_books=FIXTURE_BOOKS["train"],
        held_out=held_out,
        progress=False,
    )
    sizes = data._read_meta(dest)["splits"]
    return {
        "num_train_examples": sizes["train"],
        "num_eval_train_examples": 8,
        "num_validation_examples": sizes["validation"],
        "num_test_examples": sizes["test"],
        "eval_batch_size": 16,
    }
