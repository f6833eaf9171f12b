"""A numpy CTC loss reference (blank 0), and the per-utterance sums the speech eval keeps.

The rules' loss for the speech workloads: per utterance the CTC negative log-likelihood of the
target ids given the per-frame log-softmax over the real frames, summed over the split and
divided by the split's number of target tokens (`workloads.common.wer.SPEECH_ACCUMULATION`).
This module computes it in float64 by the textbook forward recursion over the extended label
sequence (blank, y1, blank, y2, ..., blank), so the JAX (optax) and PyTorch losses can be checked
against an independent computation. An impossible alignment (more target tokens, counting a
blank between repeats, than real frames) gives ``inf``, as ``torch.nn.functional.ctc_loss``
does; optax returns a large finite value there instead.
"""

from __future__ import annotations

import numpy as np

from workloads.common.sequences import lengths_from_paddings

__all__ = ["ctc_eval_values", "ctc_loss"]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _utterance_nll(logprobs: np.ndarray, labels: np.ndarray, blank: int) -> float:
    """-log p(labels | logprobs) for one utterance: (frames, vocab) log-probs, (length,) ids."""
    extended = np.full(2 * len(labels) + 1, blank, np.int64)
    extended[1::2] = labels
    # A state may skip the blank before it when its label differs from the one two back.
    skip = np.zeros(len(extended), bool)
    skip[2:] = (extended[2:] != blank) & (extended[2:] != extended[:-2])
    alpha = np.full(len(extended), -np.inf)
    alpha[0] = logprobs[0, extended[0]]
    if len(extended) > 1:
        alpha[1] = logprobs[0, extended[1]]
    for t in range(1, len(logprobs)):
        shifted = np.concatenate([[-np.inf, -np.inf], alpha])
        step = shifted[1:-1]  # from the previous state
        jump = np.where(skip, shifted[:-2], -np.inf)  # over a blank between different labels
        alpha = np.logaddexp(np.logaddexp(alpha, step), jump) + logprobs[t, extended]
    total = np.logaddexp(alpha[-1], alpha[-2]) if len(extended) > 1 else alpha[-1]
    return float(-total)


def ctc_loss(
    logits: np.ndarray,
    logit_paddings: np.ndarray,
    targets: np.ndarray,
    target_paddings: np.ndarray,
    *,
    blank_id: int = 0,
) -> np.ndarray:
    """float64 (batch,) per-utterance CTC negative log-likelihood.

    Args:
        logits: (batch, frames, vocab) unnormalised scores (log-softmax taken here).
        logit_paddings: (batch, frames), 1.0 = padded frame (excluded).
        targets: (batch, length) ids (integers, possibly stored as floats).
        target_paddings: (batch, length), 1.0 = padded position.
        blank_id: the blank (0 in AlgoPerf).

    Returns:
        The loss of each utterance; ``inf`` where no alignment fits; 0 for an utterance with
        neither real frames nor targets.
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 3:
        raise ValueError(f"logits must be (batch, frames, vocab), got {logits.shape}")
    frames = lengths_from_paddings(logit_paddings)
    lengths = lengths_from_paddings(target_paddings)
    targets = np.asarray(targets)
    out = np.zeros(len(logits))
    for row in range(len(logits)):
        labels = targets[row, : lengths[row]].astype(np.int64)
        if frames[row] == 0:
            out[row] = 0.0 if len(labels) == 0 else np.inf
            continue
        out[row] = _utterance_nll(_log_softmax(logits[row, : frames[row]]), labels, blank_id)
    return out


def ctc_eval_values(
    logits: np.ndarray,
    logit_paddings: np.ndarray,
    targets: np.ndarray,
    target_paddings: np.ndarray,
) -> dict[str, np.ndarray]:
    """``{"ctc_loss": per-utterance loss, "target_tokens": int64 real target ids}`` per row."""
    return {
        "ctc_loss": ctc_loss(logits, logit_paddings, targets, target_paddings),
        "target_tokens": lengths_from_paddings(target_paddings),
    }
