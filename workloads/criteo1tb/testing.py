"""Tiny Criteo 1TB fixtures in the real format: 24 gzipped ``day_N.gz`` TSV files.

No real Criteo rows are available offline, so `write_days` generates lines of the real layout
(label, 13 integers, 26 categoricals of 8 lowercase hex digits, tab separated) with the oddities
of the real logs: empty fields (about 20% of integers, 10% of categoricals), ``-1`` values,
negative integers (``-2``), zeros and large integers (up to 9 digits). Categoricals come from a
small pool per column so ids repeat, and the label depends on integer column 0 and categorical
column 0 so a model can learn something. Days 0-22 hold `train_rows_per_day` lines; day 23 holds
enough for upstream's 36 files at the fixture's `rows_per_file` (its last file short).
`write_fixture` runs the real `workloads.criteo1tb.data.prepare` on them.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from workloads.criteo1tb import data

FIXTURE_ROWS_PER_FILE = 32
FIXTURE_TRAIN_ROWS_PER_DAY = 64
FIXTURE_DAY_23_ROWS = (data.NUM_DAY_23_FILES - 1) * FIXTURE_ROWS_PER_FILE + 10


def fixture_lines(rng: np.random.Generator, num_rows: int) -> list[str]:
    """`num_rows` TSV lines (without newlines) in Criteo's layout."""
    pool = rng.integers(0, 2**32, (data.NUM_CAT, 50))
    ints = rng.integers(0, 10 ** rng.integers(1, 10, (num_rows, data.NUM_DENSE)))
    kind = rng.random((num_rows, data.NUM_DENSE))
    cat_pick = rng.integers(0, 50, (num_rows, data.NUM_CAT))
    cat_kind = rng.random((num_rows, data.NUM_CAT))
    lines = []
    for r in range(num_rows):
        dense = []
        for c in range(data.NUM_DENSE):
            k = kind[r, c]
            dense.append(
                "" if k < 0.2 else "-1" if k < 0.25 else "-2" if k < 0.27 else
                "0" if k < 0.35 else str(int(ints[r, c]))
            )  # fmt: skip
        cats = [
            "" if cat_kind[r, c] < 0.1 else f"{int(pool[c, cat_pick[r, c]]):08x}"
            for c in range(data.NUM_CAT)
        ]
        signal = int(dense[0] not in ("", "-1", "-2", "0")) + int(cat_pick[r, 0] < 10)
        label = int(rng.random() < (0.05, 0.4, 0.8)[signal])
        lines.append("\t".join([str(label), *dense, *cats]))
    return lines


def write_days(
    source_dir: Path,
    *,
    seed: int = 0,
    train_rows_per_day: int = FIXTURE_TRAIN_ROWS_PER_DAY,
    day_23_rows: int = FIXTURE_DAY_23_ROWS,
) -> dict[int, list[str]]:
    """Write ``day_0.gz`` ... ``day_23.gz`` into `source_dir`; return the lines per day."""
    source_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    days = {}
    for day in range(data.NUM_DAYS):
        rows = day_23_rows if day == data.NUM_DAYS - 1 else train_rows_per_day
        lines = fixture_lines(rng, rows)
        with gzip.open(source_dir / f"day_{day}.gz", "wb", compresslevel=1) as f:
            f.write(("\n".join(lines) + "\n").encode())
        days[day] = lines
    return days


def write_fixture(dataset: str, data_dir: Path | str) -> Mapping[str, Any]:
    """The registry's fixture writer: day files in ``<dataset dir>/source``, prepared in place."""
    if dataset != data.DATASET:
        raise ValueError(f"workloads.criteo1tb.testing writes {data.DATASET!r}, not {dataset!r}")
    source = Path(data_dir) / data.DATASET / "source"
    write_days(source)
    data.prepare(data_dir, source, rows_per_file=FIXTURE_ROWS_PER_FILE, progress=False)
    train = (data.NUM_DAYS - 1) * FIXTURE_TRAIN_ROWS_PER_DAY
    test = data.NUM_TEST_FILES * FIXTURE_ROWS_PER_FILE
    return {
        "num_train_examples": train,
        "num_eval_train_examples": FIXTURE_DAY_23_ROWS - test,
        "num_validation_examples": FIXTURE_DAY_23_ROWS - test,
        "num_test_examples": test,
        "eval_batch_size": 256,
    }
