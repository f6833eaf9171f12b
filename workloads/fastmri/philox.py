"""TensorFlow's stateless random numbers (Philox-4x32-10) in numpy, for upstream's fastMRI masks.

Upstream draws the random k-space column masks with ``tf.random.stateless_uniform(shape, seed)``
and keys training examples with ``tf.random.experimental.stateless_fold_in(seed, index)``.
TensorFlow is not a dependency here, so this module re-implements exactly what those ops compute
on CPU (TF's ``auto_select`` algorithm is Philox there):

1. ``StatelessRandomGetKeyCounter(seed)`` (TF's ``GenerateKey``): the two int64 seed words are
   split into a 128-bit counter ``(lo(s0), hi(s0), lo(s1), hi(s1))``; one Philox block of that
   counter under the fixed key ``(0x3ec8f720, 0x02461e29)`` gives ``m``; the op's key is
   ``(m0, m1)`` and its counter ``(0, 0, m2, m3)``.
2. Philox-4x32-10 (Salmon et al., SC'11; Random123's reference): ten rounds of
   ``(c0, c1, c2, c3) -> (hi(B*c2) ^ c1 ^ k0, lo(B*c2), hi(A*c0) ^ c3 ^ k1, lo(A*c0))`` with
   ``A = 0xD2511F53``, ``B = 0xCD9E8D57``, the key bumped by ``(0x9E3779B9, 0xBB67AE85)`` between
   rounds. Output block ``i`` uses the 128-bit counter ``counter + i`` (little-endian words);
   blocks are concatenated, four 32-bit words each.
3. ``stateless_uniform`` (float32 in [0, 1)): each word ``x`` becomes the float with exponent
   127 and mantissa ``x & 0x7fffff``, minus 1 (TF's ``Uint32ToFloat``).
4. ``stateless_fold_in(seed, data)`` is ``[uniform_full_int64(seed), data]``, where a full-range
   int64 is ``w0 | w1 << 32`` of the first two words.

`tests/unit/workloads/test_fastmri_philox.py` pins the Random123 known-answer vectors and golden
TF outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MASK32 = np.uint64(0xFFFFFFFF)
_M_A = np.uint64(0xD2511F53)
_M_B = np.uint64(0xCD9E8D57)
_W_0 = np.uint32(0x9E3779B9)
_W_1 = np.uint32(0xBB67AE85)
# GenerateKey's fixed scrambling key.
_SEED_KEY = (0x3EC8F720, 0x02461E29)


def philox4x32(counters: np.ndarray, key: Sequence[int], rounds: int = 10) -> np.ndarray:
    """Philox-4x32 blocks: ``counters`` uint32 (N, 4) under ``key`` (k0, k1) -> uint32 (N, 4)."""
    c = np.asarray(counters, dtype=np.uint32).reshape(-1, 4).astype(np.uint64)
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    with np.errstate(over="ignore"):
        for r in range(rounds):
            if r:
                k0, k1 = k0 + _W_0, k1 + _W_1
            p0 = _M_A * c[:, 0]
            p1 = _M_B * c[:, 2]
            c = np.stack(
                [
                    (p1 >> np.uint64(32)) ^ c[:, 1] ^ np.uint64(k0),
                    p1 & _MASK32,
                    (p0 >> np.uint64(32)) ^ c[:, 3] ^ np.uint64(k1),
                    p0 & _MASK32,
                ],
                axis=1,
            )
    return c.astype(np.uint32)


def _words(value: int) -> tuple[int, int]:
    value &= (1 << 64) - 1
    return value & 0xFFFFFFFF, value >> 32


def key_counter(seed: Sequence[int]) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """TF's ``StatelessRandomGetKeyCounter``: an int64 seed pair -> (key, 128-bit counter)."""
    if len(seed) != 2:
        raise ValueError(f"a stateless seed has 2 integers, got {len(seed)}")
    counter = np.array([[*_words(int(seed[0])), *_words(int(seed[1]))]], dtype=np.uint32)
    m = philox4x32(counter, _SEED_KEY)[0]
    return (int(m[0]), int(m[1])), (0, 0, int(m[2]), int(m[3]))


def random_words(seed: Sequence[int], num: int) -> np.ndarray:
    """The first `num` uint32 words TF's Philox stream yields for `seed`."""
    key, counter = key_counter(seed)
    blocks = -(-num // 4)
    lo0 = np.uint64(counter[1] << 32 | counter[0])
    hi0 = np.uint64(counter[3] << 32 | counter[2])
    with np.errstate(over="ignore"):
        lo = lo0 + np.arange(blocks, dtype=np.uint64)  # 128-bit increments: wrap the low word,
        hi = hi0 + (lo < lo0).astype(np.uint64)  # carry into the high one
    counters = np.stack(
        [lo & _MASK32, lo >> np.uint64(32), hi & _MASK32, hi >> np.uint64(32)], axis=1
    ).astype(np.uint32)
    return philox4x32(counters, key).reshape(-1)[:num]


def stateless_uniform(num: int, seed: Sequence[int]) -> np.ndarray:
    """``tf.random.stateless_uniform((num,), seed)``: float32 in [0, 1)."""
    words = random_words(seed, num)
    bits = (words & np.uint32(0x7FFFFF)) | np.uint32(127 << 23)
    return bits.view(np.float32) - np.float32(1.0)


def stateless_fold_in(seed: Sequence[int], data: int) -> tuple[int, int]:
    """``tf.random.experimental.stateless_fold_in(seed, data)`` for int64 seeds and data."""
    w = random_words(seed, 2)
    value = int(w[0]) | int(w[1]) << 32
    if value >= 1 << 63:
        value -= 1 << 64
    return value, int(data)
