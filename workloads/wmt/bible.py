"""Real parallel text for wmt fixtures: the Spanish and English public-domain Bibles, verse-aligned.

`write_source` lays verse pairs out exactly as the WMT17 archives extract (line-aligned
``news-commentary-v12.de-en.{de,en}`` for training, ``newstest2013``/``newstest2014`` SGM files for
validation and test), so `workloads.wmt.data.prepare` runs on them unchanged: the pipeline is
language-agnostic, and the ``.de`` side holds Spanish (Reina-Valera 1909) and the ``.en`` side
English (World English Bible). Books are held out whole for the eval splits, so no verse of an
eval set is seen in training. The sources are Debian packages (`workloads.common.sword`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from workloads.common import sword
from workloads.wmt.testing import write_sgm

TRAIN_BOOKS = ("Matt", "Mark", "Luke", "Acts")
HELD_OUT = {"validation": ("John",), "test": ("Rom",)}
SOURCE_NOTE = "README.algoperf"


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
