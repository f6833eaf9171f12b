"""WMT eval metrics in numpy: upstream's BLEU via `sacrebleu`, per-token loss and accuracy.

Upstream scores translations with its own port of sacreBLEU 1.3.1's ``corpus_bleu`` (13a
tokenizer, ``exp`` smoothing, no lowercasing, no effective order, one reference per segment).
Here the per-segment sufficient statistics (matches and totals of 1..4-grams, hypothesis and
closest-reference lengths) come from the pinned `sacrebleu` with the same settings, are summed
exactly over the split by `algoperf.metrics` (``sums`` key ``bleu_stats``, so chunking, order and
device count do not matter), and `finalize` turns the summed counts into the corpus score with
sacrebleu's ``compute_bleu``, which has the same smoothing and brevity penalty as 1.3.1.

Hypotheses and references are strings decoded from token ids as upstream does: each sequence is
cut after its first EOS (id 2) and detokenised; references are the detokenised *target ids*, not
the raw reference text. Upstream keeps ``ids[:argmax(ids == EOS) + 1]``, so a sequence without an
EOS keeps only its first token; `cut_at_eos` reproduces that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import numpy as np

from algoperf import metrics

EOS_ID = 2
PAD_ID = 0
NGRAM_ORDER = 4
# Per-segment statistics layout: matches of 1..4-grams, totals of 1..4-grams, sys_len, ref_len.
STATS_LEN = 2 * NGRAM_ORDER + 2
BLEU_STATS_KEY = "bleu_stats"


@cache
def _bleu():
    try:
        from sacrebleu.metrics import BLEU
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "wmt BLEU needs sacrebleu: pip install 'algoperf[text]' (sacrebleu==2.6.0)"
        ) from e
    # Upstream's corpus_bleu defaults: 13a, exp smoothing, case-sensitive, full order 4.
    return BLEU(tokenize="13a", smooth_method="exp", lowercase=False, force=True)


def cut_at_eos(ids: np.ndarray, eos_id: int = EOS_ID) -> np.ndarray:
    """Upstream's cut: the ids up to and including the first EOS (only the first id if none)."""
    ids = np.asarray(ids)
    return ids[: int(np.argmax(ids == eos_id)) + 1]


def decode_ids(
    batch: np.ndarray, detokenize: Callable[[Sequence[int]], str], eos_id: int = EOS_ID
) -> list[str]:
    """Detokenise each row of a (batch, length) id array after upstream's EOS cut."""
    return [detokenize(cut_at_eos(row, eos_id).astype(np.int64).tolist()) for row in batch]


def segment_stats(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Per-segment BLEU statistics, int64 (n, 10): matches[4], totals[4], sys_len, ref_len."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"BLEU: {len(hypotheses)} hypotheses but {len(references)} references; "
            "pass one reference per hypothesis"
        )
    if not hypotheses:
        return np.zeros((0, STATS_LEN), np.int64)
    hyps = [h.rstrip() for h in hypotheses]
    refs = [r.rstrip() for r in references]
    raw = _bleu()._extract_corpus_statistics(hyps, [refs])
    # sacrebleu's row: sys_len, ref_len, matches[4], totals[4] -> ours: matches, totals, lens.
    arr = np.asarray(raw, dtype=np.int64).reshape(len(hyps), STATS_LEN)
    return np.concatenate([arr[:, 2:], arr[:, :2]], axis=1)


def bleu_from_stats(stats: np.ndarray) -> float:
    """Corpus BLEU (0..100) of summed statistics, with upstream's exp smoothing."""
    s = np.asarray(stats, dtype=np.int64).reshape(-1, STATS_LEN).sum(axis=0)
    matches = [int(x) for x in s[:NGRAM_ORDER]]
    totals = [int(x) for x in s[NGRAM_ORDER : 2 * NGRAM_ORDER]]
    sys_len, ref_len = int(s[-2]), int(s[-1])
    from sacrebleu.metrics import BLEU

    score = BLEU.compute_bleu(
        matches, totals, sys_len, ref_len, smooth_method="exp", max_ngram_order=NGRAM_ORDER
    )
    return float(score.score)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Upstream's ``corpus_bleu(hyps, [refs]).score`` for one reference per segment."""
    return bleu_from_stats(segment_stats(hypotheses, references))


def token_sums(
    per_token_loss: np.ndarray, correct: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-example sums for token-mean metrics: weighted loss, weighted hits, token count."""
    w = np.asarray(weights, dtype=np.float64)
    axes = tuple(range(1, w.ndim))
    return {
        "loss_sum": (np.asarray(per_token_loss, np.float64) * w).sum(axis=axes),
        "correct_sum": (np.asarray(correct, np.float64) * w).sum(axis=axes),
        "num_tokens": w.sum(axis=axes),
    }


def _finalize(v: metrics.SplitValues) -> dict[str, float]:
    out: dict[str, float] = {}
    if "num_tokens" in v.sums:
        n = float(v.sums["num_tokens"])
        # Upstream: sums over real tokens divided by the number of real tokens.
        out["loss"] = float(v.sums["loss_sum"]) / n if n else float("nan")
        out["accuracy"] = float(v.sums["correct_sum"]) / n if n else float("nan")
    if BLEU_STATS_KEY in v.sums:
        out["bleu"] = bleu_from_stats(v.sums[BLEU_STATS_KEY])
    return out


# WMT's eval: token-mean loss and accuracy, corpus BLEU of decoded translations.
ACCUMULATION = metrics.Accumulation(
    sums=("loss_sum", "correct_sum", "num_tokens", BLEU_STATS_KEY), finalize=_finalize
)
# A variant that does not translate (``eval_bleu`` False): loss and accuracy only.
ACCUMULATION_WITHOUT_BLEU = metrics.Accumulation(
    sums=("loss_sum", "correct_sum", "num_tokens"), finalize=_finalize
)
