"""Fixture writer for wmt: WMT-style line-aligned corpora and SGM test sets, small tokenizer.

Files have the release archives' names and formats (``<corpus>.de-en.{de,en}`` line-aligned,
``newstest2013-src.de.sgm`` ... with ``<seg id="N">`` lines); `prepare` runs on them for real, with
a small vocabulary (SentencePiece cannot train 32k pieces on a few hundred lines).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workloads.wmt import data

_DE = [
    "der",
    "die",
    "das",
    "und",
    "ist",
    "ein",
    "eine",
    "nicht",
    "mit",
    "dem",
    "den",
    "zu",
    "von",
    "haus",
    "katze",
    "hund",
    "stadt",
    "wasser",
]
_EN = ["the", "and", "is", "a", "not", "with", "to", "of", "house", "cat", "dog", "city", "water"]


def sentences(words: Sequence[str], n: int, seed: int, max_words: int = 25) -> list[str]:
    """`n` deterministic pseudo-sentences over `words`."""
    rng = np.random.default_rng(seed)
    return [
        " ".join(rng.choice(list(words), size=int(rng.integers(2, max_words)))).capitalize() + "."
        for _ in range(n)
    ]


def write_sgm(path: Path, segments: Sequence[str], lang: str, kind: str = "srcset") -> Path:
    """A WMT SGM file: one document whose ``<seg id=N>`` lines hold `segments`."""
    lines = [
        f'<{kind} setid="fixture" srclang="any" trglang="{lang}">',
        '<doc sysid="ref" docid="fixture" genre="news" origlang="de">',
    ]
    lines += [f'<seg id="{i}">{s}</seg>' for i, s in enumerate(segments, start=1)]
    lines += ["</doc>", f"</{kind}>"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_source(root: Path, num_train: int = 300, num_eval: int = 12) -> Path:
    """Line-aligned training corpora and SGM/plain eval sets under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for i, corpus in enumerate(("europarl-v7", "news-commentary-v12")):
        de, en = sentences(_DE, num_train, 2 * i), sentences(_EN, num_train, 2 * i + 1)
        (root / f"{corpus}.de-en.de").write_text("\n".join(de) + "\n", encoding="utf-8")
        (root / f"{corpus}.de-en.en").write_text("\n".join(en) + "\n", encoding="utf-8")
    for split, (src, ref) in (
        ("validation", ("newstest2013-src.de.sgm", "newstest2013-ref.en.sgm")),
        ("test", ("newstest2014-deen-src.de.sgm", "newstest2014-deen-ref.en.sgm")),
    ):
        seed = 10 if split == "validation" else 20
        write_sgm(root / src, sentences(_DE, num_eval, seed), "de")
        write_sgm(root / ref, sentences(_EN, num_eval, seed + 1), "en", kind="refset")
    # One over-long pair in the test set: dropped by the 256-token filter.
    long_de = " ".join(["wasser"] * 400)
    segs = [*data.read_sgm(root / "newstest2014-deen-src.de.sgm"), long_de]
    write_sgm(root / "newstest2014-deen-src.de.sgm", segs, "de")
    refs = [*data.read_sgm(root / "newstest2014-deen-ref.en.sgm"), "water"]
    write_sgm(root / "newstest2014-deen-ref.en.sgm", refs, "en", kind="refset")
    return root


def write_fixture(dataset: str, data_dir: Path | str) -> Mapping[str, Any]:
    """Write the source files, run the real `prepare` (vocabulary 64); return the split sizes."""
    if dataset != data.DATASET:
        raise ValueError(f"{__name__} writes {data.DATASET!r}, not {dataset!r}")
    data_dir = Path(data_dir)
    src = write_source(data_dir / data.DATASET / "fixture_source")
    dest = data.prepare(data_dir, source_dir=src, vocab_size=64, progress=False)
    sizes = data._read_meta(dest)["splits"]
    return {
        "num_train_examples": sizes["train"],
        "num_eval_train_examples": min(sizes["train"], 8),
        "num_validation_examples": sizes["validation"],
        "num_test_examples": sizes["test"],
        "eval_batch_size": 4,
    }
