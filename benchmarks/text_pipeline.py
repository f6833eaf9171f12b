"""Text input pipelines: tokens per second per core, against what 8 accelerators consume.

Prepares two fixtures in the real on-disk formats with the real `prepare` functions, then times,
in this process (one core, CPU time of the process), the work every training step needs:

* ``wmt``: packed train batches (`workloads.wmt.common.train_batches`: memory-mapped packed
  arrays, a per-epoch permutation, the six int32 (B, 256) arrays plus per-token ``weights``)
  from a fixture of `workloads.wmt.testing.write_source` sentence pairs (``--wmt-pairs`` per
  corpus, two corpora) prepared by `workloads.wmt.data.prepare` (SentencePiece vocabulary
  ``--wmt-vocab``). A row is 256 token positions per side, real tokens or padding: what the
  accelerators are fed, so rates count positions (rows x 256).
* ``lm``: window batches of finewebedu_lm (`workloads.finewebedu_lm.data.load_windows` memmap,
  rows from `algoperf.data.iterators.epoch_permutation`, `window_batch` -> int32 inputs
  [:1024] and targets [1:]) from a parquet fixture (`workloads.finewebedu_lm.testing`,
  ``--lm-docs`` documents per file, two files) prepared by `workloads.finewebedu_lm.data.prepare`
  with the fixture's byte-level ranks. A window is 1,024 input tokens.

The fixtures sit in the page cache, so the rates are those of a dataset read from memory (the
real lm windows are about 20 GB, which fits the RAM of a training host); transfer to the
accelerators is not included.

Consumption on 8 accelerators at upstream's batch sizes:

* wmt: global batch 128 rows x 256 tokens = 32,768 tokens a step. Step time from upstream's
  published v0.6 logs (JAX NAdamW baseline, 8x V100, external tuning, study 0, trial 1): 105,242
  steps in 36,146.7 s of submission time, 0.343 s a step; and 0.139 s a step from upstream's
  A100 step-time table (JAX, issue #892).
* lm: global batch 64 windows (the batch size upstream-style submissions use for it) x 1,024
  tokens = 65,536 tokens a step. No published step time: the rate shown is at the step time the
  budget implies if ``step_hint`` steps fill it (31,967 s / 72,000 = 0.444 s), an estimate.

Usage: python benchmarks/text_pipeline.py [--wmt-pairs 3000] [--wmt-vocab 64] [--lm-docs 200]
    [--wmt-batch 128] [--lm-batch 64] [--batches 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from algoperf.data import iterators  # noqa: E402

WMT_ROW_TOKENS = 256
WMT_UPSTREAM_BATCH = 128
WMT_STEP_S = {
    "v0.6 logs, 8x V100": 36_146.7 / 105_242,
    "A100 table (#892), JAX": 0.139,
}
LM_WINDOW_TOKENS = 1024
LM_UPSTREAM_BATCH = 64
LM_IMPLIED_STEP_S = 31_967 / 72_000  # budget / step_hint: an estimate, not a measurement


def _cpu_rate(work: Callable[[], int]) -> float:
    """Units per CPU second of this process for `work()`, which returns the units it made."""
    c0 = time.process_time()
    units = work()
    return units / (time.process_time() - c0)


def wmt_rate(root: Path, pairs: int, vocab: int, batch: int, batches: int) -> tuple[float, int]:
    """(token positions per CPU second of packed train batches, packed train rows)."""
    from workloads.wmt import common, data, testing

    src = testing.write_source(root / "wmt_source", num_train=pairs, num_eval=4)
    dest = data.prepare(root, source_dir=src, vocab_size=vocab, progress=False)
    rows = len(np.load(dest / "train_inputs.npy", mmap_mode="r"))
    if rows < batch:
        raise SystemExit(
            f"wmt fixture packs {rows} rows, fewer than --wmt-batch {batch}; raise --wmt-pairs"
        )

    def work() -> int:
        it = common.train_batches(root, batch, seed=0)
        for _ in range(batches):
            next(it)
        return batches * batch * WMT_ROW_TOKENS

    return _cpu_rate(work), rows


def lm_rate(root: Path, docs: int, batch: int, batches: int) -> tuple[float, int]:
    """(input tokens per CPU second of window batches, train windows)."""
    from workloads.finewebedu_lm import data, testing

    src = testing.write_source(root / "lm_source", num_files=2, docs_per_file=docs)
    ranks = testing.write_ranks(root / testing.FIXTURE_RANKS)
    data.prepare(
        root,
        parquet_dir=src,
        ranks_file=ranks,
        validation_sequences=2,
        offline=True,
        progress=False,
    )
    windows = data.load_windows(root, "train")
    n = len(windows)
    if n < batch:
        raise SystemExit(
            f"lm fixture holds {n} windows, fewer than --lm-batch {batch}; raise --lm-docs"
        )

    def work() -> int:
        per_epoch = n // batch
        for k in range(batches):
            epoch, i = divmod(k, per_epoch)
            rows = iterators.epoch_permutation(n, 0, epoch)[i * batch : (i + 1) * batch]
            data.window_batch(windows, rows)
        return batches * batch * LM_WINDOW_TOKENS

    return _cpu_rate(work), n


def _report(name: str, rate: float, step_tokens: int, step_s: dict[str, float]) -> None:
    print(f"{name}: {rate:,.0f} tokens/s per core; a step takes {step_tokens:,} tokens")
    for label, seconds in step_s.items():
        need = step_tokens / seconds
        print(
            f"  vs 8 accelerators at {seconds:.3f} s/step ({label}): {need:,.0f} tokens/s, "
            f"one core = {rate / need:.1f}x that"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wmt-pairs", type=int, default=3000, help="sentence pairs per corpus (2)")
    ap.add_argument("--wmt-vocab", type=int, default=64, help="fixture SentencePiece vocabulary")
    ap.add_argument("--wmt-batch", type=int, default=WMT_UPSTREAM_BATCH)
    ap.add_argument("--lm-docs", type=int, default=200, help="parquet documents per file (2)")
    ap.add_argument("--lm-batch", type=int, default=LM_UPSTREAM_BATCH)
    ap.add_argument("--batches", type=int, default=200, help="batches timed per pipeline")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wmt, rows = wmt_rate(root, args.wmt_pairs, args.wmt_vocab, args.wmt_batch, args.batches)
        lm, windows = lm_rate(root, args.lm_docs, args.lm_batch, args.batches)
    print(
        f"text pipelines, one process, {args.batches} batches each (wmt fixture: {rows} packed "
        f"rows, batch {args.wmt_batch}; lm fixture: {windows} windows, batch {args.lm_batch})"
    )
    _report("wmt train batches", wmt, WMT_UPSTREAM_BATCH * WMT_ROW_TOKENS, WMT_STEP_S)
    _report(
        "lm window batches",
        lm,
        LM_UPSTREAM_BATCH * LM_WINDOW_TOKENS,
        {"budget / step_hint, estimated": LM_IMPLIED_STEP_S},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
