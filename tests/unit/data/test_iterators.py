"""The shared numpy batch iterators: determinism, exact resume, epochs, eval padding and weights."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from algoperf.data import iterators
from algoperf.data.iterators import eval_batches, synthetic_batch, train_batches

N = 103  # not a multiple of the batch sizes used below


def _arrays(n: int = N) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(123)
    return {
        "inputs": rng.standard_normal((n, 4, 3)).astype(np.float32),
        "targets": np.arange(n, dtype=np.int32),  # targets double as example ids
    }


def _take(it, k):
    return list(itertools.islice(it, k))


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])


def test_train_batches_are_deterministic_and_seed_dependent():
    a = _take(train_batches(_arrays(), 10, seed=7), 25)
    b = _take(train_batches(_arrays(), 10, seed=7), 25)
    c = _take(train_batches(_arrays(), 10, seed=8), 25)
    _assert_same(a, b)
    assert any(not np.array_equal(x["targets"], y["targets"]) for x, y in zip(a, c, strict=True))


def test_train_batch_contents_match_their_ids():
    arrays = _arrays()
    for batch in _take(train_batches(arrays, 16, seed=0), 20):
        assert batch["inputs"].shape == (16, 4, 3)
        np.testing.assert_array_equal(batch["inputs"], arrays["inputs"][batch["targets"]])


@pytest.mark.parametrize("start_step", [0, 1, 9, 10, 11, 23])
def test_resume_with_start_step_gives_identical_batches(start_step):
    full = _take(train_batches(_arrays(), 10, seed=3), 30)
    resumed = _take(train_batches(_arrays(), 10, seed=3, start_step=start_step), 30 - start_step)
    _assert_same(full[start_step:], resumed)


def test_epochs_cover_each_example_once_and_reshuffle():
    bs = 10
    steps_per_epoch = N // bs  # 10; the last 3 examples of each epoch are dropped
    batches = _take(train_batches(_arrays(), bs, seed=5), 3 * steps_per_epoch)
    epochs = [
        np.concatenate(
            [b["targets"] for b in batches[e * steps_per_epoch : (e + 1) * steps_per_epoch]]
        )
        for e in range(3)
    ]
    for e, ids in enumerate(epochs):
        assert len(ids) == len(set(ids.tolist())) == steps_per_epoch * bs
        expected = np.random.default_rng([5, e]).permutation(N)[: steps_per_epoch * bs]
        np.testing.assert_array_equal(ids, expected)
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[1], epochs[2])


def test_transform_is_deterministic_and_resumable():
    def augment(batch, rng):
        return {**batch, "inputs": batch["inputs"] + rng.standard_normal(batch["inputs"].shape)}

    a = _take(train_batches(_arrays(), 8, seed=1, transform=augment), 15)
    b = _take(train_batches(_arrays(), 8, seed=1, start_step=6, transform=augment), 9)
    _assert_same(a[6:], b)
    # Different steps draw different noise even when they show the same examples.
    noise = [x["inputs"] - _arrays()["inputs"][x["targets"]] for x in a]
    assert not np.allclose(noise[0], noise[12][: len(noise[0])])


def test_train_batch_errors():
    with pytest.raises(ValueError, match="exceeds"):
        train_batches(_arrays(5), 6, seed=0)
    with pytest.raises(ValueError, match="positive"):
        train_batches(_arrays(), 0, seed=0)
    with pytest.raises(ValueError, match="start_step"):
        train_batches(_arrays(), 4, seed=0, start_step=-1)
    with pytest.raises(ValueError, match="differ"):
        train_batches({"a": np.zeros(3), "b": np.zeros(4)}, 1, seed=0)


def test_negative_and_large_seeds_work():
    assert len(next(train_batches(_arrays(), 4, seed=-1))["targets"]) == 4
    assert len(next(train_batches(_arrays(), 4, seed=2**40))["targets"]) == 4


def test_eval_batches_pad_and_weight():
    arrays = _arrays()
    batches = list(eval_batches(arrays, 25))
    assert len(batches) == 5  # 103 = 4 * 25 + 3
    for b in batches:
        assert b["inputs"].shape == (25, 4, 3)
        assert b["weights"].dtype == np.float32
    np.testing.assert_array_equal(batches[-1]["weights"], [1, 1, 1] + [0] * 22)
    assert np.all(batches[-1]["inputs"][3:] == 0)
    assert np.all(batches[-1]["targets"][3:] == 0)
    ids = np.concatenate([b["targets"][b["weights"] > 0] for b in batches])
    np.testing.assert_array_equal(ids, np.arange(N))  # in order, each once


def test_eval_batches_num_examples_subset_and_cycle():
    ids = np.concatenate(
        [b["targets"][b["weights"] > 0] for b in eval_batches(_arrays(), 40, num_examples=30)]
    )
    np.testing.assert_array_equal(ids, np.arange(30))
    ids = np.concatenate(
        [b["targets"][b["weights"] > 0] for b in eval_batches(_arrays(), 40, num_examples=250)]
    )
    np.testing.assert_array_equal(ids, np.arange(250) % N)
    assert list(eval_batches(_arrays(), 40, num_examples=0)) == []


def test_eval_batches_keep_given_weights():
    arrays = {"inputs": np.ones((5, 2), np.float32), "weights": np.full((5, 2), 0.5)}
    last = list(eval_batches(arrays, 4))[-1]
    assert last["weights"].dtype == np.float32
    np.testing.assert_array_equal(last["weights"], [[0.5, 0.5], [0, 0], [0, 0], [0, 0]])


def test_eval_batches_are_copies():
    arrays = _arrays()
    batch = next(eval_batches(arrays, 10))
    batch["inputs"][:] = 99
    assert not np.any(arrays["inputs"] == 99)


def test_eval_transform_applies_before_padding():
    seen = []

    def transform(batch, rng):
        seen.append(len(batch["targets"]))
        return {**batch, "inputs": batch["inputs"] * 2}

    batches = list(eval_batches(_arrays(), 50, transform=transform))
    assert seen == [50, 50, 3]
    assert batches[-1]["inputs"].shape[0] == 50


@pytest.mark.parametrize("batch_size", [1, 7, 64, 103, 500])
def test_eval_metrics_do_not_depend_on_the_batch_split(batch_size):
    """Per-example metrics summed with the weights in float64 give the same totals for any
    batch size (the padding contributes nothing)."""
    arrays = _arrays()
    w = np.random.default_rng(0).standard_normal((4, 3))
    correct = 0.0
    loss = 0.0
    count = 0.0
    for b in eval_batches(arrays, batch_size, num_examples=N):
        logits = b["inputs"].reshape(len(b["inputs"]), -1) @ w.reshape(-1)
        per_example_loss = np.log1p(np.exp(-logits)).astype(np.float64)
        per_example_correct = (logits > 0).astype(np.float64)
        correct += float(np.sum(per_example_correct * b["weights"], dtype=np.float64))
        loss += float(np.sum(per_example_loss * b["weights"], dtype=np.float64))
        count += float(b["weights"].sum(dtype=np.float64))
    flat = arrays["inputs"].reshape(N, -1) @ w.reshape(-1)
    assert count == N
    assert correct == float(np.sum(flat > 0))
    assert loss == pytest.approx(float(np.sum(np.log1p(np.exp(-flat)))), rel=1e-12)


def test_synthetic_batch():
    spec = {
        "inputs": ((28, 28, 1), np.float32),
        "targets": ((), np.int32, 10),
        "mask": ((3,), np.bool_),
        "ids": ((2,), np.int64),
    }
    a = synthetic_batch(spec, 16, seed=4)
    b = synthetic_batch(spec, 16, seed=4)
    c = synthetic_batch(spec, 16, seed=5)
    assert a["inputs"].shape == (16, 28, 28, 1) and a["inputs"].dtype == np.float32
    assert a["targets"].shape == (16,) and a["targets"].dtype == np.int32
    assert a["targets"].min() >= 0 and a["targets"].max() < 10
    assert a["mask"].dtype == np.bool_ and a["mask"].shape == (16, 3)
    assert set(np.unique(a["ids"]).tolist()) <= {0, 1}
    for key in spec:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["inputs"], c["inputs"])
    with pytest.raises(ValueError, match="unsupported"):
        synthetic_batch({"s": ((1,), np.str_)}, 2, seed=0)


def test_epoch_permutation_is_the_documented_one():
    np.testing.assert_array_equal(
        iterators.epoch_permutation(50, 9, 3), np.random.default_rng([9, 3]).permutation(50)
    )
