"""Padding and length helpers (workloads.common.sequences)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.common.sequences import (
    bucket_length,
    lengths_from_paddings,
    pad_sequences,
    paddings_from_lengths,
)


def test_pad_to_fixed_length_as_upstream_loader():
    # Upstream's LibriSpeech loader: audio zero-padded to the fixed length, paddings 1.0 = pad.
    audio = [np.array([3, -2, 7], np.int16), np.array([1], np.int16), np.array([], np.int16)]
    padded, paddings = pad_sequences(audio, 5)
    assert padded.dtype == np.int16 and paddings.dtype == np.float32
    np.testing.assert_array_equal(padded, [[3, -2, 7, 0, 0], [1, 0, 0, 0, 0], [0] * 5])
    np.testing.assert_array_equal(paddings, [[0, 0, 0, 1, 1], [0, 1, 1, 1, 1], [1] * 5])
    np.testing.assert_array_equal(lengths_from_paddings(paddings), [3, 1, 0])


def test_buckets_trailing_features_and_pad_value():
    rows = [np.ones((2, 3)), np.ones((6, 3))]
    padded, paddings = pad_sequences(rows, buckets=(4, 8, 16), pad_value=-1.0)
    assert padded.shape == (2, 8, 3)
    assert (padded[0, 2:] == -1).all() and (padded[0, :2] == 1).all()
    np.testing.assert_array_equal(lengths_from_paddings(paddings), [2, 6])
    assert pad_sequences([[1, 2, 3]])[0].shape == (1, 3)  # longest when neither is given


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"sequence 1 has length 4 > 3"):
        pad_sequences([[1], [1, 2, 3, 4]], 3)
    with pytest.raises(ValueError, match="exceeds the largest bucket 8"):
        bucket_length(9, (4, 8))
    with pytest.raises(ValueError, match="feature shape"):
        pad_sequences([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(ValueError, match="not a suffix"):
        lengths_from_paddings(np.array([[0, 1, 0]]))
    with pytest.raises(ValueError, match="only 0"):
        lengths_from_paddings(np.array([[0, 0.5]]))
    with pytest.raises(ValueError, match="lie in"):
        paddings_from_lengths([5], 4)
    # Without the suffix check the count is upstream's sum(paddings == 0).
    assert lengths_from_paddings(np.array([[0, 1, 0]]), check_suffix=False).tolist() == [2]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(-5, 5), max_size=12), min_size=1, max_size=6))
def test_round_trip(rows):
    padded, paddings = pad_sequences([np.array(r, np.int64) for r in rows], 12)
    lengths = lengths_from_paddings(paddings)
    assert lengths.tolist() == [len(r) for r in rows]
    np.testing.assert_array_equal(paddings, paddings_from_lengths(lengths, 12))
    for row, padded_row, n in zip(rows, padded, lengths, strict=True):
        assert padded_row[:n].tolist() == row and not padded_row[n:].any()
