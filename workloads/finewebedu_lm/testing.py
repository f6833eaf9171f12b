"""Fixture writers of the family's datasets, each through its real prepare code.

finewebedu: fineweb-edu-shaped parquet and a small BPE ranks file. The parquet files have
fineweb-edu's ``sample/10BT`` columns and types; the ranks file is in tiktoken's ``.tiktoken``
format (all 256 byte tokens plus a few merges), so `prepare` runs the real path end to end
offline. Token ids therefore differ from GPT-2's (EOS is the id after the ranks).

lm_bible: English-like chapters of verses (deterministic, from a small word list; not Bible text,
which needs Debian's sword-text-web) through `bible.write_dataset`: the SentencePiece model is
trained on them (as many pieces as the text supports, at most the registered 2,048) and the
splits are cut into the registered 129-token windows.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workloads.finewebedu_lm import bible, data

FIXTURE_RANKS = "fixture.tiktoken"
_MERGES = (b"th", b"he", b"in", b"er", b"an", b" t", b" a", b"the", b" th", b"re", b"on", b"ing")
_WORDS = [
    "the",
    "learning",
    "of",
    "students",
    "in",
    "schools",
    "and",
    "the",
    "study",
    "of",
    "history,",
    "science",
    "and",
    "language",
    "is",
    "one",
    "of",
    "the",
    "oldest",
    "topics",
    "in",
    "education",
    "research;",
    "teachers",
    "explain",
    "how",
    "water",
    "cycles,",
    "plants",
    "grow",
    "and",
    "numbers",
    "like",
    "1,024",
    "or",
    "3.14",
    "appear",
    "in",
    "everyday",
    "life.",
]


def write_ranks(path: Path) -> Path:
    """A valid tiktoken ranks file: the 256 single bytes, then `_MERGES` (ranks in order)."""
    tokens = [bytes([b]) for b in range(256)] + list(_MERGES)
    path.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for r, t in enumerate(tokens)))
    return path


def fineweb_texts(num_docs: int, seed: int = 0) -> list[str]:
    """Short English-like documents (deterministic) of varying length."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num_docs):
        n = int(rng.integers(20, 400))
        out.append(" ".join(rng.choice(_WORDS, size=n)).capitalize() + ".")
    return out


def write_parquet(
    path: Path, texts: Sequence[str], token_counts: Sequence[int] | None = None
) -> Path:
    """One parquet file with fineweb-edu's columns (``token_count`` as given, else word counts)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(texts)
    counts = list(token_counts) if token_counts is not None else [len(t.split()) for t in texts]
    table = pa.table(
        {
            "text": pa.array(list(texts), pa.string()),
            "id": pa.array([f"<urn:uuid:{i:08d}>" for i in range(n)], pa.string()),
            "dump": pa.array(["CC-MAIN-2024-10"] * n, pa.string()),
            "url": pa.array([f"https://example.org/{i}" for i in range(n)], pa.string()),
            "file_path": pa.array(["s3://commoncrawl/fixture.warc.gz"] * n, pa.string()),
            "language": pa.array(["en"] * n, pa.string()),
            "language_score": pa.array([0.97] * n, pa.float64()),
            "token_count": pa.array(counts, pa.int64()),
            "score": pa.array([3.1] * n, pa.float64()),
            "int_score": pa.array([3] * n, pa.int64()),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=64)
    return path


def write_source(root: Path, num_files: int = 2, docs_per_file: int = 60) -> Path:
    """``root/sample/10BT/00i_00000.parquet`` files as the Hugging Face download lays them out."""
    for i in range(num_files):
        texts = fineweb_texts(docs_per_file, seed=i)
        write_parquet(root / "sample" / "10BT" / f"{i:03d}_00000.parquet", texts)
    return root


def bible_like_chapters(num_chapters: int, seed: int) -> list[list[str]]:
    """`num_chapters` chapters of 12-24 verses of 8-30 words each (deterministic)."""
    rng = np.random.default_rng(seed)
    return [
        [
            " ".join(rng.choice(_WORDS, size=int(rng.integers(8, 31)))).capitalize() + "."
            for _ in range(int(rng.integers(12, 25)))
        ]
        for _ in range(num_chapters)
    ]


def _write_bible_fixture(data_dir: Path) -> Mapping[str, Any]:
    dest = bible.write_dataset(
        data_dir,
        bible_like_chapters(24, seed=0),
        bible_like_chapters(4, seed=1),
        sources={"fixture": __name__},
        hard_vocab_limit=False,  # the small text supports fewer than 2,048 pieces
    )
    sizes = (data._read_json(dest / "meta.json") or {})["splits"]
    return {
        "num_train_examples": sizes["train"],
        "num_eval_train_examples": min(sizes["train"], 8),
        "num_validation_examples": sizes["validation"],
        "eval_batch_size": 8,
    }


def write_fixture(dataset: str, data_dir: Path | str) -> Mapping[str, Any]:
    """Write the dataset's fixture through its real prepare code; return the split sizes."""
    data_dir = Path(data_dir)
    if dataset == bible.DATASET:
        return _write_bible_fixture(data_dir)
    if dataset != data.DATASET:
        raise ValueError(
            f"{__name__} writes {data.DATASET!r} or {bible.DATASET!r}, not {dataset!r}"
        )
    # Kept inside the dataset folder: the parquet source and the ranks file it was made with.
    src = write_source(data_dir / data.DATASET / "fixture_source")
    ranks = write_ranks(data_dir / data.DATASET / FIXTURE_RANKS)
    dest = data.prepare(
        data_dir,
        parquet_dir=src,
        ranks_file=ranks,
        validation_sequences=4,
        offline=True,
        progress=False,
    )
    meta = data._read_json(dest / "meta.json") or {}
    n_train, n_val = meta["splits"]["train"], meta["splits"]["validation"]
    return {
        "num_train_examples": n_train,
        "num_eval_train_examples": min(n_train, 4),
        "num_validation_examples": n_val,
        "eval_batch_size": 2,
    }
