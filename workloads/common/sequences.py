"""Padding and length helpers for variable-length sequences (speech, translation, language model).

Framework-free (numpy only). Upstream's convention, kept here: a batch of variable-length
sequences is a dense array padded at the end plus a float32 ``paddings`` array of the same
leading shape with 1.0 at padded positions and 0.0 at real ones (LibriSpeech audio padded to
320,000 samples, token ids padded with 0 to 256). Valid positions are always a prefix; the
length of a row is its number of 0.0 paddings (upstream's ``sum(paddings == 0)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "bucket_length",
    "lengths_from_paddings",
    "pad_sequences",
    "paddings_from_lengths",
]


def bucket_length(length: int, buckets: Sequence[int]) -> int:
    """The smallest bucket that holds `length` items.

    Raises:
        ValueError: when `length` exceeds every bucket (the message names the largest).
    """
    fitting = [b for b in sorted(buckets) if b >= length]
    if not fitting:
        raise ValueError(
            f"sequence of length {length} exceeds the largest bucket {max(buckets)}: "
            "drop it first (upstream filters over-long examples) or add a larger bucket"
        )
    return fitting[0]


def paddings_from_lengths(lengths: Sequence[int] | np.ndarray, max_length: int) -> np.ndarray:
    """float32 paddings (num_rows, max_length): 1.0 from each row's length onwards."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size and (lengths.min() < 0 or lengths.max() > max_length):
        raise ValueError(
            f"lengths must lie in [0, {max_length}], got {lengths.min()}..{lengths.max()}"
        )
    positions = np.arange(max_length, dtype=np.int64)
    return (positions[None, :] >= lengths[:, None]).astype(np.float32)


def lengths_from_paddings(paddings: np.ndarray, *, check_suffix: bool = True) -> np.ndarray:
    """int64 number of real positions per row (``paddings == 0`` counted on the last axis).

    Args:
        paddings: (..., length) array of 0.0 (real) and 1.0 (pad).
        check_suffix: also require that padding only follows the real positions, so the count
            is the length of a valid prefix (what slicing ``x[:length]`` assumes).

    Raises:
        ValueError: on values other than 0 and 1, or (with `check_suffix`) a real position after
            a padded one.
    """
    paddings = np.asarray(paddings)
    if not np.isin(paddings, (0, 1)).all():
        raise ValueError("paddings must hold only 0 (real) and 1 (pad)")
    real = paddings == 0
    lengths = real.sum(axis=-1).astype(np.int64)
    if check_suffix and paddings.shape[-1]:
        expected = np.arange(paddings.shape[-1]) < lengths[..., None]
        if not np.array_equal(real, expected):
            raise ValueError("paddings are not a suffix: a real position follows a padded one")
    return lengths


def pad_sequences(
    sequences: Sequence[np.ndarray | Sequence[float]],
    length: int | None = None,
    *,
    buckets: Sequence[int] | None = None,
    pad_value: float = 0,
    dtype: np.dtype | type | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pad sequences at the end to one length; return ``(padded, paddings)``.

    Each sequence is an array whose leading axis is time (trailing feature axes must agree).
    The common length is `length` if given, else the smallest of `buckets` holding the longest
    sequence, else the longest sequence's length.

    Args:
        sequences: the rows, e.g. int16 audio samples or token ids.
        length: fixed output length (upstream: 320,000 samples, 256 tokens).
        buckets: candidate lengths when `length` is None (bucketed batching).
        pad_value: value written at padded positions (upstream pads audio and tokens with 0).
        dtype: output dtype; by default numpy's common dtype of the sequences.

    Returns:
        padded: (num_rows, length, *features); paddings: float32 (num_rows, length), 1.0 = pad.

    Raises:
        ValueError: a sequence longer than the chosen length, or mismatched feature shapes.
    """
    if length is not None and buckets is not None:
        raise ValueError("pass either length or buckets, not both")
    rows = [np.asarray(s) for s in sequences]
    lengths = [len(r) if r.ndim else 1 for r in rows]
    longest = max(lengths, default=0)
    if length is None:
        length = bucket_length(longest, buckets) if buckets is not None else longest
    if longest > length:
        index = lengths.index(longest)
        raise ValueError(
            f"sequence {index} has length {longest} > {length}: drop or truncate it before padding"
        )
    features = {r.shape[1:] for r in rows if r.ndim}
    if len(features) > 1:
        raise ValueError(f"sequences disagree on their feature shape: {sorted(features)}")
    trailing = features.pop() if features else ()
    if dtype is None:
        dtype = np.result_type(*rows) if rows else np.float32
    padded = np.full((len(rows), length, *trailing), pad_value, dtype=dtype)
    for i, row in enumerate(rows):
        padded[i, : lengths[i]] = row.reshape(lengths[i], *trailing)
    return padded, paddings_from_lengths(lengths, length)
