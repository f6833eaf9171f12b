"""Inverted dropout for flax modules whose rate is a call argument (traced or concrete).

A rate passed at call time, rather than a module attribute, lets a submission change the
dropout rate without recompiling; a concrete zero rate (or eval mode) skips the mask.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def dropout(module: nn.Module, x: jax.Array, train: bool, rate: Any) -> jax.Array:
    """`x` with elements zeroed at `rate` and the rest scaled by ``1 / (1 - rate)`` in training.

    The mask draws from `module`'s ``dropout`` RNG stream.
    """
    if not train or (isinstance(rate, int | float) and rate == 0):
        return x
    keep = 1.0 - rate
    mask = jax.random.bernoulli(module.make_rng("dropout"), keep, x.shape)
    return jnp.where(mask, x / keep, 0).astype(x.dtype)


class Dropout(nn.Module):
    """Inverted dropout as a flax submodule whose rate is a call argument (see `dropout`)."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, rate: Any) -> jax.Array:
        return dropout(self, x, train, rate)
