"""ogbg metrics: numpy average precision against sklearn, upstream's mAP task filter, masked means."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from workloads.ogbg import metrics


def upstream_map(logits, labels, mask):
    """Upstream's MeanAveragePrecision.compute, written out with sklearn."""
    probs = 1 / (1 + np.exp(-logits))
    mask = mask.astype(bool)
    aps = np.full(labels.shape[1], np.nan)
    for task in range(labels.shape[1]):
        if np.sum(labels[:, task] == 0) > 0 and np.sum(labels[:, task] == 1) > 0:
            kept = mask[:, task]
            aps[task] = average_precision_score(labels[kept, task], probs[kept, task])
    return np.nan if np.isnan(aps).all() else np.nanmean(aps)


@pytest.mark.parametrize("seed", range(6))
def test_average_precision_equals_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    labels = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(np.float32)
    labels[0] = 1
    # Coarse scores make many ties; sklearn groups them into one threshold.
    scores = np.round(rng.random(n), int(rng.integers(1, 4))).astype(np.float32)
    assert metrics.average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(4))
def test_mean_average_precision_equals_upstreams_computation(seed):
    rng = np.random.default_rng(100 + seed)
    graphs, tasks = 300, 128
    logits = rng.normal(0, 2, (graphs, tasks)).astype(np.float32)
    labels = (rng.random((graphs, tasks)) < 0.1).astype(np.float32)
    mask = (rng.random((graphs, tasks)) < 0.6).astype(np.float32)
    labels[:, 3] = 0  # no positive: filtered out
    labels[:, 5] = np.where(mask[:, 5] > 0, 1.0, 0.0)  # all labelled are positive, masked zeros
    labels *= mask  # unlabelled entries hold 0, as in the batches
    got = metrics.mean_average_precision(logits, labels, mask)
    assert got == pytest.approx(upstream_map(logits, labels, mask), abs=1e-9)


def test_the_task_filter_counts_unlabelled_zeros_as_negatives_like_upstream():
    logits = np.array([[2.0], [1.0], [0.0]], np.float32)
    labels = np.array([[1.0], [1.0], [0.0]], np.float32)
    mask = np.array([[1.0], [1.0], [0.0]], np.float32)  # the 0 is unlabelled
    # Upstream keeps the task (a 0 is present) and scores only labelled entries: all positive.
    assert metrics.mean_average_precision(logits, labels, mask) == 1.0
    assert upstream_map(logits, labels, mask) == 1.0
    none = metrics.mean_average_precision(logits, np.zeros_like(labels), mask)
    assert np.isnan(none)


def test_finalize_means_over_labelled_entries_only():
    logits = np.array([[3.0, -1.0], [-2.0, 0.5]], np.float32)
    labels = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    mask = np.array([[1.0, 1.0], [1.0, 0.0]], np.float32)
    out = metrics.finalize(logits, labels, mask)
    x = np.array([3.0, -1.0, -2.0])
    z = np.array([1.0, 0.0, 1.0])
    bce = np.log1p(np.exp(-x)) * z + np.log1p(np.exp(x)) * (1 - z)
    assert out["loss"] == pytest.approx(bce.mean(), rel=1e-12)
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert set(out) == {"accuracy", "loss", "mean_average_precision"}


def test_sigmoid_keeps_float32_like_upstream():
    x = np.array([-100.0, 0.0, 20.0], np.float32)
    out = metrics.sigmoid(x)
    assert out.dtype == np.float32
    assert out[1] == 0.5 and out[2] == 1.0 and out[0] >= 0
