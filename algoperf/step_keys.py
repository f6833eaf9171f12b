"""Per-step keys computed a block of steps at a time, with exactly upstream's values.

The runner needs ``split(fold_in(loop_key, step), 4)`` on every timed step. Computed one step at
a time this costs 50-100 us per step in context (two ``RandomState`` seedings for the NumPy
emulation; two eager dispatches for JAX), a tenth of a small model's step. Here the keys of
`BLOCK` consecutive steps are computed in one go and handed out per step:

* JAX: one jitted, vmapped computation returning ``4 * BLOCK`` replicated key arrays (vmap does
  not change threefry's values);
* NumPy (PyTorch runs): upstream's emulation seeds ``RandomState([c, step])`` (legacy
  ``init_by_array``) and draws 8 int32 values; MT19937's seeding is sequential over its 624 state
  words but independent across seeds, so it is vectorised across the block's steps. Tests check
  every value against ``numpy.random.RandomState``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

BLOCK = 1024  # NumPy: ~6 us per step's keys at this size
JAX_BLOCK = 64  # JAX: one dispatch with 4 * JAX_BLOCK outputs (compiled before the clock starts)
_N, _M = 624, 397
_MAX_INT32 = 2**31 - 1


@functools.cache
def _genrand_base() -> np.ndarray:
    """MT19937 state after ``init_genrand(19650218)``, the start of ``init_by_array``."""
    mt = np.zeros(_N, dtype=np.uint64)
    mt[0] = 19650218
    for i in range(1, _N):
        prev = int(mt[i - 1])
        mt[i] = (1812433253 * (prev ^ (prev >> 30)) + i) & 0xFFFFFFFF
    return mt


def _temper(y: np.ndarray) -> np.ndarray:
    y = y ^ (y >> np.uint32(11))
    y = y ^ ((y << np.uint32(7)) & np.uint32(0x9D2C5680))
    y = y ^ ((y << np.uint32(15)) & np.uint32(0xEFC60000))
    return y ^ (y >> np.uint32(18))


def numpy_split4_block(first: int, steps: np.ndarray) -> np.ndarray:
    """``RandomState([first, s]).randint(0, 2**31 - 1, int32, (4, 2))`` for every s (upstream's split).

    Args:
      first: the folded loop key (already reduced modulo 2**31 - 1, as upstream reduces it).
      steps: step numbers (each reduced modulo 2**31 - 1).

    Returns an int32 array of shape (len(steps), 4, 2).
    """
    s = len(steps)
    # State words as rows (contiguous per word), uint32 arithmetic wraps modulo 2**32 like C.
    mt = np.repeat(_genrand_base().astype(np.uint32)[:, None], s, axis=1)
    keys = (np.full(s, first, dtype=np.uint32), steps.astype(np.uint32))
    t = np.empty(s, dtype=np.uint32)
    i, j = 1, 0
    with np.errstate(over="ignore"):
        for _ in range(_N):  # init_by_array, first pass (key length 2 < N)
            np.right_shift(mt[i - 1], 30, out=t)
            np.bitwise_xor(t, mt[i - 1], out=t)
            np.multiply(t, np.uint32(1664525), out=t)
            np.bitwise_xor(t, mt[i], out=t)
            np.add(t, keys[j], out=t)
            if j:
                np.add(t, np.uint32(j), out=t)
            mt[i] = t
            i += 1
            j ^= 1
            if i >= _N:
                mt[0] = mt[_N - 1]
                i = 1
        for _ in range(_N - 1):  # second pass
            np.right_shift(mt[i - 1], 30, out=t)
            np.bitwise_xor(t, mt[i - 1], out=t)
            np.multiply(t, np.uint32(1566083941), out=t)
            np.bitwise_xor(t, mt[i], out=t)
            np.subtract(t, np.uint32(i), out=t)
            mt[i] = t
            i += 1
            if i >= _N:
                mt[0] = mt[_N - 1]
                i = 1
        mt[0] = 0x80000000
        # First outputs after seeding: the twist of words 0..k only reads untwisted words.
        k = 12
        y = (mt[:k] & np.uint32(0x80000000)) | (mt[1 : k + 1] & np.uint32(0x7FFFFFFF))
        twisted = (
            mt[_M : _M + k] ^ (y >> np.uint32(1)) ^ ((y & np.uint32(1)) * np.uint32(0x9908B0DF))
        )
        # Upstream draws randint(0, 2**31 - 1): NumPy's legacy bounded draw masks each 32-bit
        # output to 31 bits and rejects 2**31 - 1 (the only masked value above the range).
        out = (_temper(twisted) & np.uint32(_MAX_INT32)).T  # (s, k)
    result = out[:, :8].astype(np.int32)
    for row in np.nonzero((out[:, :8] == _MAX_INT32).any(axis=1))[0]:
        vals = out[row][out[row] != _MAX_INT32][:8]
        if len(vals) < 8:  # astronomically rare: let NumPy do it
            state = np.random.RandomState([int(first), int(steps[row])])
            result[row] = state.randint(0, _MAX_INT32, dtype=np.int32, size=8)
        else:
            result[row] = vals.astype(np.int32)
    return result.reshape(s, 4, 2)


class StepKeys:
    """Hands out per-step keys for one loop key, computing `BLOCK` steps at a time."""

    def __init__(self, loop_key: Any, framework: str) -> None:
        self.loop_key = loop_key
        self.framework = framework
        self._start = -1
        self._block: list[tuple[Any, Any, Any, Any]] = []
        if framework == "pytorch":
            from algoperf import random_utils

            self._folded = int(random_utils.numpy_fold_in(loop_key, 0)[0]) % _MAX_INT32

    def get(self, step: int) -> tuple[Any, Any, Any, Any]:
        size = JAX_BLOCK if self.framework == "jax" else BLOCK
        start = step - step % size
        if start != self._start:
            self._block = self._compute(start)
            self._start = start
        return self._block[step - start]

    def _compute(self, start: int) -> list[tuple[Any, Any, Any, Any]]:
        if self.framework == "jax":
            outs = _jax_block()(self.loop_key, start)
            return [tuple(outs[4 * r : 4 * r + 4]) for r in range(JAX_BLOCK)]
        steps = (np.arange(start, start + BLOCK, dtype=np.int64)) % _MAX_INT32
        block = numpy_split4_block(self._folded, steps)
        return [tuple(block[r]) for r in range(BLOCK)]


@functools.cache
def _jax_block() -> Any:
    import jax
    import jax.numpy as jnp

    from algoperf.frameworks.jax import replicate_sharding

    def keys(key: Any, start: Any) -> tuple:
        steps = start + jnp.arange(JAX_BLOCK)
        block = jax.vmap(lambda s: jax.random.split(jax.random.fold_in(key, s), 4))(steps)
        return tuple(block[r, c] for r in range(JAX_BLOCK) for c in range(4))

    # Replicated outputs: submissions jit with replicated in_shardings for rngs, so keys that
    # already carry that sharding are passed through without a copy.
    return jax.jit(keys, out_shardings=replicate_sharding())
