"""The RNG proxy upstream submissions import as ``from algoperf import random_utils as prng``.

``PRNGKey``, ``split`` and ``fold_in`` behave exactly as upstream's: with the JAX backend they are
``jax.random``'s (the runner configures threefry2x32, partitionable; see `algoperf.rng`); with the
NumPy backend (used for PyTorch) they are upstream's emulation on ``np.random.RandomState``:

* a seed is reduced modulo ``2**31 - 1`` (element-wise for a key), since ``RandomState`` rejects
  negative seeds; a key of several ints seeds ``RandomState`` through its array initialisation;
* ``split(seed, num)`` = ``RandomState(seed).randint(0, 2**31 - 1, size=[num, 2], dtype=int32)``;
* ``PRNGKey(seed)`` = ``split(seed, 2)[0]``, an int32 array of shape (2,);
* ``fold_in(seed, data)`` = ``[RandomState(seed).randint(0, 2**31 - 1, dtype=int32), data]``, a
  list whose second element is `data` unchanged.

Backend choice: upstream reads ``FLAGS.framework``; here the runner calls `set_framework` before it
imports the submission. ``"jax"`` sends everything to ``jax.random``, ``"pytorch"`` to the NumPy
emulation. Until `set_framework` is called the module is in automatic mode: ``PRNGKey(int)`` gives a
NumPy key (upstream's behaviour when the framework is not "jax"), and ``split``/``fold_in`` follow
the key they receive (a ``jax.Array`` goes to JAX, anything else to NumPy). Importing this module
never imports JAX; the JAX backend imports it on first use.

Differences from upstream, all where upstream is not reproducible: upstream silently seeds
``RandomState`` from OS entropy when a seed is neither a Python int, a list nor an ndarray (e.g. a
NumPy integer scalar such as ``key[0]``, or a tuple). Here NumPy integer scalars (and 0-d arrays)
are handled like ints and tuples like lists, and other types (such as a JAX key under the PyTorch
backend) raise ``TypeError``.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

# RandomState seeds must lie in [0, 2**32 - 1] and randint draws signed ints; upstream keeps both
# in [0, 2**31 - 1) and reduces seeds modulo this value.
MAX_INT32 = 2**31 - 1
MIN_INT32 = 0

SeedType = Any  # int, list of ints, 1-D int ndarray, or a jax.Array key

FRAMEWORKS = ("jax", "pytorch")

_framework: str | None = None


def set_framework(name: str | None) -> None:
    """Select the backend for the process: "jax", "pytorch", or None for automatic mode."""
    global _framework
    if name is not None and name not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS} or None, got {name!r}")
    _framework = name


def get_framework() -> str | None:
    """The framework set with `set_framework` (None in automatic mode)."""
    return _framework


def is_jax_key(key: Any) -> bool:
    """True if `key` is a ``jax.Array`` (checked without importing JAX)."""
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(key, jax.Array)


def _jax_random() -> Any:
    try:
        import jax.random
    except ImportError as error:
        raise ImportError(
            f"the JAX RNG backend needs jax ({error}); install algoperf[jax] or use "
            "--framework=pytorch for the NumPy backend"
        ) from None
    return jax.random


def _signed_to_unsigned(seed: SeedType) -> int | list[int] | np.ndarray:
    """Reduce a seed or key modulo 2**31 - 1 into what ``RandomState`` accepts, as upstream."""
    if isinstance(seed, bool):
        raise TypeError(f"an RNG seed must be an integer or a key, got {seed!r}")
    if isinstance(seed, int | np.integer) or (isinstance(seed, np.ndarray) and seed.ndim == 0):
        return int(seed) % MAX_INT32
    if isinstance(seed, list | tuple):
        return [s % MAX_INT32 for s in seed]
    if isinstance(seed, np.ndarray) and seed.ndim == 1:
        return np.array([s % MAX_INT32 for s in seed.tolist()])
    if is_jax_key(seed):
        raise TypeError(
            "got a JAX key while the RNG backend is NumPy (PyTorch); call "
            "algoperf.random_utils.set_framework('jax') for JAX submissions"
        )
    raise TypeError(
        f"an RNG seed must be an int, a list of ints or a 1-D int array, got {type(seed).__name__}"
    )


_local = threading.local()


def _seeded_state(seed: SeedType) -> np.random.RandomState:
    """A per-thread `RandomState` re-seeded in place: the same stream as
    ``RandomState(seed)`` (legacy seeding) at a fraction of the cost of building one, which
    matters because the runner derives keys on every (timed) step."""
    state = getattr(_local, "state", None)
    if state is None:
        state = _local.state = np.random.RandomState()
    state.seed(_signed_to_unsigned(seed))
    return state


def numpy_split(seed: SeedType, num: int = 2) -> np.ndarray:
    """NumPy emulation of ``jax.random.split``: an int32 array of shape (num, 2)."""
    return _seeded_state(seed).randint(MIN_INT32, MAX_INT32, dtype=np.int32, size=[num, 2])


_FOLD_CACHE: dict[Any, np.int32] = {}


def numpy_fold_in(seed: SeedType, data: Any) -> list[Any]:
    """NumPy emulation of ``jax.random.fold_in``: ``[new int32 seed, data]``.

    As upstream's, the new seed depends on `seed` only (not on `data`), so it is computed once per
    seed: the runner folds the step number into the same loop key on every timed step.
    """
    reduced = _signed_to_unsigned(seed)
    key = tuple(int(v) for v in reduced) if isinstance(reduced, list | np.ndarray) else reduced
    value = _FOLD_CACHE.get(key)
    if value is None:
        if len(_FOLD_CACHE) > 4096:
            _FOLD_CACHE.clear()
        value = _seeded_state(seed).randint(MIN_INT32, MAX_INT32, dtype=np.int32)
        _FOLD_CACHE[key] = value
    return [value, data]


def numpy_prng_key(seed: SeedType) -> np.ndarray:
    """NumPy emulation of ``jax.random.PRNGKey``: the first row of ``numpy_split(seed, 2)``."""
    return numpy_split(seed, 2)[0]


def _use_jax(key: Any) -> bool:
    if _framework is None:
        return is_jax_key(key)
    return _framework == "jax"


def PRNGKey(seed: SeedType) -> SeedType:  # noqa: N802 (upstream's name)
    """A key from an integer seed (``jax.random.PRNGKey`` or the NumPy emulation)."""
    if _framework == "jax":
        return _jax_random().PRNGKey(seed)
    return numpy_prng_key(seed)


def split(seed: SeedType, num: int = 2) -> SeedType:
    """`num` new keys from one (``jax.random.split`` or the NumPy emulation)."""
    if _use_jax(seed):
        return _jax_random().split(seed, num)
    return numpy_split(seed, num)


def fold_in(seed: SeedType, data: Any) -> SeedType:
    """A new key from a key and an integer (``jax.random.fold_in`` or the NumPy emulation)."""
    if _use_jax(seed):
        return _jax_random().fold_in(seed, data)
    return numpy_fold_in(seed, data)
