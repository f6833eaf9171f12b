"""Scrambled, shifted Halton sequences that reproduce upstream AlgoPerf's quasi-random points.

Upstream AlgoPerf draws external-tuning hyperparameters from a Halton sequence (after Bousquet
et al. 2017, "Critical hyper-parameters: no random, no cry"). To give the same points for the same
search space, every detail below is fixed by compatibility, not by taste:

* Dimension ``d`` of ``D`` uses the prime base ``bases(D)[d]``: the ``D`` largest odd primes below
  the largest odd prime under 1000, i.e. the primes list without its last element (1 dim ->
  ``[991]``; 7 dims -> ``[947, 953, 967, 971, 977, 983, 991]``). More than 166 dimensions move
  the search window to primes below 2000, 3000, ... as upstream does.
* Each base has its own ``numpy.random.RandomState(base)``: it first shuffles the digits
  ``1 .. base-1`` (digit 0 stays 0), then draws one uniform shift for the dimension.
* Point ``i`` (1-based) is the radical inverse of ``i`` in that base with scrambled digits, summed
  from the least significant digit upward (the float summation order matters for bit-identical
  values), then shifted modulo 1.
* The first ``skip = 100`` points are dropped; sample ``k`` (0-based) is sequence point
  ``skip + k + 1``.

Unlike upstream, the points are not shuffled afterwards (upstream shuffles with the unseeded
global NumPy RNG); see `algoperf.tuning` for why. Consequently sample ``k`` does not depend on how
many samples are requested.
"""

from __future__ import annotations

import functools
import math

import numpy as np

DEFAULT_SKIP = 100

# Upstream sieves primes below multiples of this bound until it has enough of them.
_PRIME_BOUND_STEP = 1000


def odd_primes_below(limit: int) -> list[int]:
    """All odd primes p with 3 <= p < limit, in increasing order."""
    if limit <= 3:
        return []
    is_prime = bytearray([1]) * limit
    is_prime[0:2] = b"\x00\x00"
    for p in range(2, math.isqrt(limit - 1) + 1):
        if is_prime[p]:
            is_prime[p * p :: p] = bytes(len(range(p * p, limit, p)))
    return [p for p in range(3, limit, 2) if is_prime[p]]


def bases(num_dims: int) -> list[int]:
    """The prime base of each of `num_dims` Halton dimensions, in dimension order."""
    if num_dims < 1:
        raise ValueError(f"a Halton sequence needs at least one dimension, got num_dims={num_dims}")
    bound = _PRIME_BOUND_STEP
    primes = odd_primes_below(bound)
    # One spare prime is needed because the largest one is never used.
    while len(primes) < num_dims + 1:
        bound += _PRIME_BOUND_STEP
        primes = odd_primes_below(bound)
    return primes[-num_dims - 1 : -1]


@functools.lru_cache(maxsize=256)
def _scramble(base: int) -> tuple[tuple[int, ...], float]:
    """Digit permutation (0 fixed) and shift of one dimension, both from RandomState(base)."""
    state = np.random.RandomState(base)
    nonzero_digits = np.arange(1, base)
    state.shuffle(nonzero_digits)
    permutation = (0, *(int(digit) for digit in nonzero_digits))
    shift = float(state.random_sample())
    return permutation, shift


def _scrambled_radical_inverse(index: int, base: int, permutation: tuple[int, ...]) -> float:
    """Sum of permuted digits of `index` over increasing powers of `base`, low digit first."""
    value = 0.0
    scale = base  # Exact Python int, so each term is one correctly rounded division.
    while index:
        index, digit = divmod(index, base)
        value += permutation[digit] / scale
        scale *= base
    return value


def dimension(base: int, start: int, count: int) -> list[float]:
    """Points `start+1 .. start+count` (1-based) of the shifted, scrambled sequence in `base`."""
    permutation, shift = _scramble(base)
    return [
        math.fmod(_scrambled_radical_inverse(i, base, permutation) + shift, 1.0)
        for i in range(start + 1, start + count + 1)
    ]


def sequence(num_samples: int, num_dims: int, skip: int = DEFAULT_SKIP) -> list[tuple[float, ...]]:
    """`num_samples` Halton points in [0, 1)^num_dims, in sequence order (no shuffling).

    Args:
        num_samples: how many points to return (>= 0).
        num_dims: dimensions per point (>= 1); dimension d uses base ``bases(num_dims)[d]``.
        skip: leading points discarded to avoid their correlations (upstream uses 100).

    Returns:
        A list of `num_samples` tuples of `num_dims` floats; element k is the point with 1-based
        sequence index ``skip + k + 1``.
    """
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    if skip < 0:
        raise ValueError(f"skip must be >= 0, got {skip}")
    columns = [dimension(base, skip, num_samples) for base in bases(num_dims)]
    return list(zip(*columns)) if num_samples else []
