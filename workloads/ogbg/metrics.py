"""ogbg eval metrics in numpy: masked loss / accuracy means and upstream's mean average precision.

Upstream (`algoperf/workloads/ogbg/metrics.py`, from the flax ogbg_molpcba example) reports, over
the labelled (graph, task) entries of a split:

* ``loss``: the mean masked sigmoid cross-entropy;
* ``accuracy``: the mean of ``(logit > 0) == label``;
* ``mean_average_precision``: for each of the tasks (128 for ogbg-molpcba), sklearn's ``average_precision_score`` of
  the labelled entries' sigmoid probabilities, averaged (``nanmean``) over the tasks that have at
  least one label 1 and one label 0. Upstream's filter counts the zeros its batches hold for
  *unlabelled* entries as negatives too; `mean_average_precision` does the same for the split's
  graphs (padding graphs, whose number upstream's batching decides, are not counted).

Average precision is computed here in numpy (sorted scores, precision summed at each distinct
threshold: sklearn's definition, tested against it), which takes a fraction of sklearn's time.
"""

from __future__ import annotations

import numpy as np


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Sigmoid in the logits' precision (float32, as upstream's ``jax.nn.sigmoid``)."""
    logits = np.asarray(logits)
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-logits))).astype(logits.dtype)


def sigmoid_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """TF's stable ``sigmoid_cross_entropy_with_logits``, elementwise (float64)."""
    x = np.asarray(logits, np.float64)
    z = np.asarray(labels, np.float64)
    return np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """sklearn's ``average_precision_score`` for binary `labels` (0/1) and `scores`.

    AP = sum over distinct score thresholds (descending) of (R_k - R_{k-1}) * P_k. NaN when
    there is no positive label (sklearn warns and returns a meaningless value there; callers
    filter such tasks first).
    """
    y = np.asarray(labels) == 1
    s = np.asarray(scores)
    positives = int(y.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    # Last index of each run of equal scores: where the curve gets a point.
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    precision = tp / (tp + fp)
    recall_steps = np.diff(np.r_[0, tp]) / positives
    return float(np.sum(recall_steps * precision))


def mean_average_precision(logits: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> float:
    """Upstream's mAP over tasks (columns) of ``(graphs, tasks)`` arrays; NaN if no task counts.

    `labels` hold 0 where `mask` is 0 (unlabelled), as in the batches; the task filter counts
    those zeros as negatives, as upstream does.
    """
    labels = np.asarray(labels)
    mask = np.asarray(mask).astype(bool)
    probs = sigmoid(np.asarray(logits))
    values = []
    for task in range(labels.shape[1]):
        column = labels[:, task]
        if np.any(column == 0) and np.any(column == 1):
            kept = mask[:, task]
            values.append(average_precision(column[kept], probs[kept, task]))
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def finalize(logits: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The three upstream eval metrics of a whole split from its concatenated per-graph arrays."""
    mask = np.asarray(mask).astype(bool)
    count = int(mask.sum())
    if count == 0:
        nan = float("nan")
        return {"accuracy": nan, "loss": nan, "mean_average_precision": nan}
    loss = sigmoid_cross_entropy(logits, labels)[mask]
    correct = ((np.asarray(logits) > 0) == (np.asarray(labels) == 1))[mask]
    return {
        "accuracy": float(correct.sum() / count),
        "loss": float(np.sum(loss) / count),
        "mean_average_precision": mean_average_precision(logits, labels, mask),
    }
