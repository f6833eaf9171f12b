"""Per-step keys computed a block of steps at a time, with exactly upstream's values.

The runner needs ``split(fold_in(loop_key, step), 4)`` on every timed step. Computed one step at
a time this costs 50-100 us per step in context (two ``RandomState`` seedings for the NumPy
emulation; two eager dispatches for JAX), a tenth of a small model's step. Here the keys of
`BLOCK` consecutive steps are computed in one go and handed out per step:

* JAX: one jitted, vmapped computation returning the ``data_select`` and ``update`` keys of
  `JAX_BLOCK` steps as ``2 * JAX_BLOCK`` replicated arrays (vmap does not change threefry's
  values; each output array costs about 1.7 us, so the two keys used only at eval points are
  computed there, on demand);
* NumPy (PyTorch runs): upstream's emulation seeds ``RandomState([c, step])`` (legacy
  ``init_by_array``) and draws 8 int32 values; MT19937's seeding is sequential over its 624 state
  words but independent across seeds, so it is vectorised across the block's steps. Tests check
  every value against ``numpy.random.RandomState``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

BLOCK = 4096  # NumPy: ~1.8 us per step's keys at this size (~4.4 us at 1024; 10 MB of state words)
JAX_BLOCK = 128  # JAX: one dispatch with 2 * JAX_BLOCK outputs (compiled before the clock starts)
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
    """Hands out one loop key's per-step keys, computing a block of steps at a time.

    `train` gives the two keys every step needs, ``(data_select, update)``; `at_eval` gives
    ``(prep_eval, eval)``, needed only at eval points (JAX computes them on demand there, so a
    training step pays for two key arrays, not four). `get` gives all four.
    """

    def __init__(self, loop_key: Any, framework: str) -> None:
        self.loop_key = loop_key
        self.framework = framework
        self._size = JAX_BLOCK if framework == "jax" else BLOCK
        self._start = -self._size - 1
        self._pairs: list[tuple[Any, Any]] = []
        self._rest: np.ndarray | None = None  # NumPy: the block's (prep_eval, eval) keys
        if framework == "pytorch":
            from algoperf import random_utils

            self._folded = int(random_utils.numpy_fold_in(loop_key, 0)[0]) % _MAX_INT32

    def train(self, step: int) -> tuple[Any, Any]:
        """``(data_select, update)`` of `step`."""
        i = self._index(step)  # may refill the block, so before reading `_pairs`
        return self._pairs[i]

    def at_eval(self, step: int) -> tuple[Any, Any]:
        """``(prep_eval, eval)`` of `step`."""
        if self.framework == "jax":
            return _jax_eval_pair()(self.loop_key, step)
        i = self._index(step)
        assert self._rest is not None
        return self._rest[i, 0], self._rest[i, 1]

    def get(self, step: int) -> tuple[Any, Any, Any, Any]:
        """``(data_select, update, prep_eval, eval)`` of `step`."""
        return self.train(step) + self.at_eval(step)

    def _index(self, step: int) -> int:
        """Position of `step` in the current block, computing its block first if needed."""
        i = step - self._start
        if not 0 <= i < self._size:
            self._fill(step - step % self._size)
            i = step - self._start
        return i

    def _fill(self, start: int) -> None:
        if self.framework == "jax":
            outs = _jax_train_block()(self.loop_key, start)
            self._pairs = list(zip(outs[0::2], outs[1::2], strict=True))
        else:
            steps = np.arange(start, start + BLOCK, dtype=np.int64) % _MAX_INT32
            block = numpy_split4_block(self._folded, steps)
            self._pairs = list(zip(block[:, 0], block[:, 1], strict=True))
            self._rest = block[:, 2:]
        self._start = start


@functools.cache
def _jax_train_block() -> Any:
    """``start -> (data_select, update)`` of steps start .. start + JAX_BLOCK - 1, flattened."""
    import jax
    import jax.numpy as jnp

    from algoperf.frameworks.jax import replicate_sharding

    def keys(key: Any, start: Any) -> tuple:
        steps = start + jnp.arange(JAX_BLOCK)
        block = jax.vmap(lambda s: jax.random.split(jax.random.fold_in(key, s), 4))(steps)
        return tuple(block[r, c] for r in range(JAX_BLOCK) for c in range(2))

    # Replicated outputs: submissions jit with replicated in_shardings for rngs, so keys that
    # already carry that sharding are passed through without a copy.
    return jax.jit(keys, out_shardings=replicate_sharding())


@functools.cache
def _jax_eval_pair() -> Any:
    """``step -> (prep_eval, eval)``: the last two keys of ``split(fold_in(key, step), 4)``."""
    import jax

    from algoperf.frameworks.jax import replicate_sharding

    def keys(key: Any, step: Any) -> tuple:
        four = jax.random.split(jax.random.fold_in(key, step), 4)
        return four[2], four[3]

    return jax.jit(keys, out_shardings=replicate_sharding())
