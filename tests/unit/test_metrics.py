"""`algoperf.metrics`: exact sums, concatenation in example order, per-group sums, finalisation,
and independence from how the split is chunked and padded."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from algoperf import metrics

RNG = np.random.default_rng(1)


def test_exact_sum_is_correctly_rounded_and_order_free():
    # Values spanning 30 orders of magnitude: naive float sums depend on the order.
    values = RNG.normal(size=5000) * 10.0 ** RNG.integers(-15, 15, size=5000)
    exact = float(sum(Fraction(v) for v in values.tolist()))
    assert float(metrics.exact_sum(values)) == exact
    for _ in range(5):
        assert float(metrics.exact_sum(RNG.permutation(values))) == exact
    assert float(np.sum(values)) != exact or float(np.sum(values[::-1])) != exact


def test_exact_sum_of_vectors_integers_and_empty():
    counts = RNG.integers(0, 1000, size=(50, 4))
    np.testing.assert_array_equal(metrics.exact_sum(counts), counts.sum(0))
    assert metrics.exact_sum(counts).dtype == np.int64
    assert metrics.exact_sum(np.zeros((0, 3))).shape == (3,)
    assert float(metrics.exact_sum(np.zeros((0,)))) == 0.0


def _split(n=257):
    return {
        "loss": RNG.random(n).astype(np.float32),
        "counts": RNG.integers(0, 9, size=(n, 3)).astype(np.int32),
        "logits": RNG.normal(size=(n, 5)).astype(np.float32),
        "volume": np.sort(RNG.integers(0, 12, size=n)).astype(np.int32),
    }


SPEC = metrics.Accumulation(
    means=("loss",),
    sums=("counts",),
    concat=("logits",),
    group_by="volume",
    group_sums=("loss",),
    finalize=lambda v: {
        "ratio": float(v.sums["counts"][0] / max(v.sums["counts"][1], 1)),
        "per_volume": float(np.mean(v.group_sums["loss"] / v.group_counts)),
        "first_logit": float(v.arrays["logits"][0, 0]),
    },
)


def _accumulate(data, cuts, pads):
    acc = metrics.Accumulator(SPEC)
    for part, pad in zip(np.split(np.arange(len(data["loss"])), cuts), pads, strict=True):
        chunk = {
            k: np.concatenate([v[part], np.zeros((pad, *v.shape[1:]), v.dtype)])
            for k, v in data.items()
        }
        rows = np.r_[np.ones(len(part), bool), np.zeros(pad, bool)]
        acc.add({**chunk, "unused": np.zeros(len(rows))}, rows)
    return acc


def test_accumulator_is_bit_identical_for_any_chunking_and_padding():
    data = _split()
    reference = _accumulate(data, [], [0])
    values = reference.values()
    assert values.num_examples == 257
    np.testing.assert_array_equal(values.arrays["logits"], data["logits"])
    np.testing.assert_array_equal(values.sums["counts"], data["counts"].sum(0))
    groups = np.unique(data["volume"])
    np.testing.assert_array_equal(values.groups, groups)
    np.testing.assert_array_equal(
        values.group_counts, [np.sum(data["volume"] == g) for g in groups]
    )
    for g, s in zip(groups, values.group_sums["loss"], strict=True):
        assert s == float(sum(Fraction(float(x)) for x in data["loss"][data["volume"] == g]))
    result = reference.result()
    assert result["loss"] == float(sum(Fraction(float(x)) for x in data["loss"])) / 257
    assert set(result) == {"loss", "ratio", "per_volume", "first_logit"}
    for _ in range(10):
        cuts = np.sort(RNG.choice(np.arange(1, 257), size=RNG.integers(1, 20), replace=False))
        pads = RNG.integers(0, 7, size=len(cuts) + 1)
        assert _accumulate(data, cuts, pads).result() == result


def test_group_ids_in_any_order_and_missing_keys():
    acc = metrics.Accumulator(metrics.Accumulation(group_by="g", group_sums=("x",)))
    acc.add({"g": np.array([3, 1, 3, 2]), "x": np.array([1.0, 2.0, 3.0, 4.0])})
    acc.add({"g": np.array([1.0]), "x": np.array([5.0])})
    v = acc.values()
    np.testing.assert_array_equal(v.groups, [1, 2, 3])
    np.testing.assert_array_equal(v.group_sums["x"], [7.0, 4.0, 4.0])
    np.testing.assert_array_equal(v.group_counts, [2, 1, 2])
    with pytest.raises(KeyError, match=r"lack \['x'\]"):
        acc.add({"g": np.array([1])})
    bad = metrics.Accumulator(metrics.Accumulation(group_by="g", group_sums=("x",)))
    bad.add({"g": np.array([0.5]), "x": np.array([1.0])})
    with pytest.raises(ValueError, match="must be integers"):
        bad.values()


def test_declarations_are_checked():
    with pytest.raises(ValueError, match="needs group_by"):
        metrics.Accumulation(group_sums=("x",))
    with pytest.raises(ValueError, match="at least one"):
        metrics.Accumulation()
    acc = metrics.Accumulator(metrics.Accumulation(means=("a",), concat=("b",)))
    with pytest.raises(ValueError, match="rows"):
        acc.add({"a": np.zeros(3), "b": np.zeros(2)})


def test_streaming_exact_sum_matches_fsum_for_any_chunking():
    """`ExactSum` (vectorised, constant memory) equals `math.fsum` (correctly rounded) on hard
    inputs: 600 orders of magnitude, cancellation, subnormals, float32, several columns."""
    import math

    tiny = np.array([5e-324, -5e-324, 2.5e-310, 1e-300])
    for trial in range(30):
        rng = np.random.default_rng(trial)
        n = int(rng.integers(1, 3000))
        values = rng.normal(size=(n, 3)) * 10.0 ** rng.integers(-300, 300, size=(n, 3))
        values[: n // 3] *= -1
        values[rng.integers(0, n, size=4), 0] = tiny
        if trial % 3 == 0:
            values = np.concatenate([values, -values[: n // 2]])  # heavy cancellation
        if trial % 5 == 0:
            values = (values * 1e-280).astype(np.float32)
        expected = np.array([math.fsum(values[:, j].astype(np.float64).tolist()) for j in range(3)])
        acc = metrics.ExactSum()
        cuts = np.sort(
            rng.choice(np.arange(1, len(values)), size=min(5, len(values) - 1), replace=False)
        )
        for part in np.split(values, cuts):
            acc.add(part)
        np.testing.assert_array_equal(acc.value(), expected)


def test_streaming_exact_sum_non_finite_and_large_magnitudes():
    acc = metrics.ExactSum()
    acc.add(np.array([1e308, 1e308, -1e308]))
    assert float(acc.value()) == 1e308  # the intermediate overflow does not matter
    acc.add(np.array([1e308, 1e308]))
    assert float(acc.value()) == np.inf
    for vals, want in (
        ([1.0, np.inf], np.inf),
        ([np.inf, -np.inf], np.nan),
        ([np.nan, 2.0], np.nan),
    ):
        a = metrics.ExactSum()
        a.add(np.array(vals))
        np.testing.assert_equal(float(a.value()), want)
    ints = metrics.ExactSum()
    ints.add(np.array([[2**40, 1]] * 3, np.int64))
    assert ints.value().dtype == np.int64 and ints.value().tolist() == [3 * 2**40, 3]
