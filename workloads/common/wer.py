"""Greedy CTC decoding and word error rate in numpy, accumulated with `algoperf.metrics`.

The rules' WER for the speech workloads: per utterance, the greedy CTC hypothesis (argmax per
frame over the real frames, collapse repeated ids, drop the blank 0) and the reference token
ids are detokenised, split on whitespace, and their word-level Levenshtein distance (errors)
and the reference's word count are kept; the split's WER is the summed errors over the summed
reference words. Per-utterance counts are integers, so `algoperf.metrics` sums them exactly and
the figure does not depend on batch size, chunking or device count.

Padded eval rows contribute nothing: they are dropped by the accumulator's row mask, and a row
whose reference is empty counts 0 words. Upstream's JAX workload pads short eval batches with
rows of paddings 1.0 and counts ``len(''.split(' ')) == 1`` reference word for each;
``empty_reference_words=1`` in `word_error_counts` reproduces that figure for comparison.

Upstream's JAX ``collapse_and_remove_blanks`` has a further flaw that this decoding does not
copy: its scatter resets the batch's first output position to the batch's first non-blank
token, so when the first row of an eval batch decodes to nothing (all blanks, as early in
training) it receives the first token of a later row (checked by running upstream's function
on frames ``[[0,0,0], [0,5,0]]``: row 0 becomes ``[5]``). PyTorch's decoding has no such flaw.

The framework layer takes the argmax on the device (`greedy_ctc_decode` also accepts logits)
and hands back ``(frame_ids, frame_paddings)``; everything after is host numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from algoperf import metrics
from workloads.common.sequences import lengths_from_paddings

__all__ = [
    "BLANK_ID",
    "SPEECH_ACCUMULATION",
    "finalize_speech",
    "greedy_ctc_decode",
    "word_edit_distance",
    "word_error_counts",
]

BLANK_ID = 0


def greedy_ctc_decode(
    frames: np.ndarray, paddings: np.ndarray, *, blank_id: int = BLANK_ID
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy CTC hypotheses, left-aligned, with paddings (upstream's ``greedy_decode`` output).

    Args:
        frames: (batch, time) int frame ids (an argmax already taken) or (batch, time, vocab)
            logits / log-probabilities (argmax taken here; ties go to the lowest id).
        paddings: (batch, time) frame paddings, 1.0 = padded frame (ignored entirely).
        blank_id: the CTC blank (0 in AlgoPerf).

    Returns:
        hyp: int32 (batch, time) ids, padded with `blank_id`; hyp_paddings: float32 (batch,
        time), 1.0 beyond each hypothesis.
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames.argmax(axis=-1)
    if frames.ndim != 2:
        raise ValueError(
            f"frames must be (batch, time) ids or (batch, time, vocab) logits, got {frames.shape}"
        )
    paddings = np.asarray(paddings)
    if paddings.shape != frames.shape:
        raise ValueError(f"paddings shape {paddings.shape} differs from frames {frames.shape}")
    ids = frames.astype(np.int64)
    real = paddings == 0
    # A frame starts a new token when it differs from the previous real frame; padded frames are
    # skipped, not treated as blanks (valid frames are a prefix, so the two agree there).
    hyp = np.full(ids.shape, blank_id, np.int32)
    hyp_paddings = np.ones(ids.shape, np.float32)
    for row in range(ids.shape[0]):
        seq = ids[row][real[row]]
        if seq.size:
            new = np.concatenate([[True], seq[1:] != seq[:-1]])
            tokens = seq[new]
            tokens = tokens[tokens != blank_id]
            hyp[row, : tokens.size] = tokens
            hyp_paddings[row, : tokens.size] = 0.0
    return hyp, hyp_paddings


def word_edit_distance(hypothesis: Sequence[str], reference: Sequence[str]) -> int:
    """Levenshtein distance between two word lists (substitutions, insertions, deletions)."""
    if not reference:
        return len(hypothesis)
    if not hypothesis:
        return len(reference)
    vocab: dict[str, int] = {}
    ref = np.array([vocab.setdefault(w, len(vocab)) for w in reference], np.int64)
    hyp = [vocab.setdefault(w, len(vocab)) for w in hypothesis]
    steps = np.arange(len(ref) + 1, dtype=np.int64)
    previous = steps.copy()  # distances from the empty hypothesis prefix
    for i, word in enumerate(hyp, start=1):
        # Substitution/match and deletion of the hypothesis word, vectorised; insertions of
        # reference words chain left to right: d[j] = min(c[j], d[j-1] + 1), a running minimum.
        candidates = np.empty_like(previous)
        candidates[0] = i
        candidates[1:] = np.minimum(previous[:-1] + (ref != word), previous[1:] + 1)
        previous = np.minimum.accumulate(candidates - steps) + steps
    return int(previous[-1])


def word_error_counts(
    hyp: np.ndarray,
    hyp_paddings: np.ndarray,
    targets: np.ndarray,
    target_paddings: np.ndarray,
    detokenize: Callable[[np.ndarray], str],
    *,
    empty_reference_words: int = 0,
) -> dict[str, np.ndarray]:
    """Per-utterance word errors and reference words.

    Args:
        hyp, hyp_paddings: decoded ids and paddings (`greedy_ctc_decode`), (batch, time).
        targets, target_paddings: reference token ids and paddings, (batch, length); ids may be
            floats holding integers (upstream's loader yields float32 targets).
        detokenize: ids -> text, e.g. `workloads.common.tokenizer.Tokenizer.decode`.
        empty_reference_words: words counted for an empty reference: 0 (the rules) or 1
            (upstream's JAX figure, whose padded eval rows each add a word).

    Returns:
        ``{"word_errors": int64 (batch,), "reference_words": int64 (batch,)}``, ready for an
        `algoperf.metrics.Accumulator` (see `SPEECH_ACCUMULATION`).
    """
    hyp_lengths = lengths_from_paddings(hyp_paddings)
    target_lengths = lengths_from_paddings(target_paddings)
    hyp = np.asarray(hyp)
    targets = np.asarray(targets)
    errors = np.zeros(len(hyp), np.int64)
    words = np.zeros(len(hyp), np.int64)
    for row in range(len(hyp)):
        hyp_words = detokenize(hyp[row, : hyp_lengths[row]]).split()
        ref_words = detokenize(targets[row, : target_lengths[row]]).split()
        errors[row] = word_edit_distance(hyp_words, ref_words)
        words[row] = len(ref_words) if ref_words else empty_reference_words
    return {"word_errors": errors, "reference_words": words}


def finalize_speech(values: metrics.SplitValues) -> dict[str, float]:
    """``wer`` = summed errors / summed reference words; ``ctc_loss`` = summed loss / tokens."""
    sums = values.sums
    out: dict[str, float] = {}
    if "word_errors" in sums:
        words = int(sums["reference_words"])
        out["wer"] = int(sums["word_errors"]) / words if words else float("nan")
    if "ctc_loss" in sums:
        tokens = float(sums["target_tokens"])
        out["ctc_loss"] = float(sums["ctc_loss"]) / tokens if tokens else float("nan")
    return out


# The speech families' eval: per utterance its summed CTC loss, its number of target tokens,
# its word errors and reference words; every figure is a ratio of split sums.
SPEECH_ACCUMULATION = metrics.Accumulation(
    sums=("ctc_loss", "target_tokens", "word_errors", "reference_words"), finalize=finalize_speech
)
