"""The numpy CTC reference (workloads.common.ctc): brute force, then the framework losses."""

import itertools

import numpy as np
import pytest

from algoperf import metrics
from workloads.common.ctc import ctc_eval_values, ctc_loss
from workloads.common.sequences import pad_sequences
from workloads.common.wer import SPEECH_ACCUMULATION


def _brute_force(logprobs, labels):
    """-log of the summed probability of every frame path that collapses to `labels`."""
    total = 0.0
    frames, vocab = logprobs.shape
    for path in itertools.product(range(vocab), repeat=frames):
        collapsed = [k for k, _ in itertools.groupby(path) if k != 0]
        if collapsed == list(labels):
            total += np.exp(sum(logprobs[t, s] for t, s in enumerate(path)))
    return -np.log(total) if total else np.inf


@pytest.mark.parametrize(
    "labels",
    [[], [1], [2, 2], [1, 2], [2, 1, 2], [1, 1, 1], [1, 2, 1, 2, 1], [1, 1, 1, 1]],
    ids=str,
)
def test_matches_brute_force(labels):
    rng = np.random.default_rng(len(labels))
    logits = rng.normal(size=(1, 5, 3)) * 2
    logprobs = logits[0] - np.log(np.exp(logits[0]).sum(-1, keepdims=True))
    targets, target_paddings = pad_sequences([np.array(labels, np.int64)], 6)
    got = ctc_loss(logits, np.zeros((1, 5)), targets, target_paddings)[0]
    expected = _brute_force(logprobs, labels)
    if np.isinf(expected):  # [1, 1, 1, 1] needs 7 frames (blanks between repeats), 5 given
        assert np.isinf(got)
    else:
        assert got == pytest.approx(expected, rel=1e-12)


def test_padded_frames_and_impossible_alignments():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3, 6, 4))
    frame_paddings = np.zeros((3, 6))
    frame_paddings[0, 4:] = 1
    frame_paddings[2, 2:] = 1
    targets, target_paddings = pad_sequences([[1, 3], [2], [1, 1]], 3)
    loss = ctc_loss(logits, frame_paddings, targets, target_paddings)
    # Row 0 equals the same utterance cut to its 4 real frames (padded frames are excluded).
    alone = ctc_loss(logits[:1, :4], np.zeros((1, 4)), targets[:1], target_paddings[:1])
    assert loss[0] == alone[0]
    assert np.isinf(loss[2])  # [1, 1] needs 3 frames (a blank between), 2 are real


def _random_batch(rng, batch=4, frames=12, vocab=7, length=5):
    logits = rng.normal(size=(batch, frames, vocab)).astype(np.float32)
    n_frames = rng.integers(frames // 2, frames + 1, size=batch)
    rows = [rng.integers(1, vocab, size=rng.integers(1, length + 1)) for _ in range(batch)]
    targets, target_paddings = pad_sequences(rows, length + 1, dtype=np.float32)
    logit_paddings = (np.arange(frames)[None] >= n_frames[:, None]).astype(np.float32)
    return logits, logit_paddings, targets, target_paddings


def test_framework_losses_agree_with_the_reference():
    rng = np.random.default_rng(4)
    batch = _random_batch(rng)
    reference = ctc_loss(*batch)
    assert np.isfinite(reference).all()
    checked = 0
    try:
        import torch

        from algoperf.frameworks import losses_pytorch

        logits, logit_paddings, targets, target_paddings = (torch.from_numpy(x) for x in batch)
        out = losses_pytorch.ctc_loss((targets, target_paddings), (logits, logit_paddings))
        np.testing.assert_allclose(out["per_example"].numpy(), reference, rtol=2e-5)
        checked += 1
    except ImportError:
        pass
    try:
        import jax.numpy as jnp

        from algoperf.frameworks import losses_jax

        logits, logit_paddings, targets, target_paddings = (jnp.asarray(x) for x in batch)
        out = losses_jax.ctc_loss(
            (targets.astype(jnp.int32), target_paddings), (logits, logit_paddings)
        )
        np.testing.assert_allclose(np.asarray(out["per_example"]), reference, rtol=2e-5)
        checked += 1
    except ImportError:
        pass
    if not checked:
        pytest.skip("neither torch nor jax installed")


def test_eval_values_give_loss_per_target_token():
    rng = np.random.default_rng(5)
    acc = metrics.Accumulator(SPEECH_ACCUMULATION)
    losses, tokens = [], []
    for _ in range(3):
        values = ctc_eval_values(*_random_batch(rng))
        values["word_errors"] = values["reference_words"] = np.zeros(4, np.int64)
        acc.add(values)
        losses.append(values["ctc_loss"])
        tokens.append(values["target_tokens"])
    expected = np.concatenate(losses).sum() / np.concatenate(tokens).sum()
    assert acc.result()["ctc_loss"] == pytest.approx(expected, rel=1e-14)
