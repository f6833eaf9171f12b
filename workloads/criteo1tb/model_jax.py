"""Upstream's DLRM-small (and its ResNet variant) in flax.

Input: (batch, 39) float32 rows, 13 dense features then 26 categorical ids (floats, cast to
int32 and taken modulo ``vocab_size`` to index one shared (vocab, embed_dim) table).

* ``DlrmSmall``: bottom MLP (Dense -> ReLU [-> LayerNorm]) 512-256-128; the 26 embeddings
  [-> LayerNorm] stacked under the bottom output; dot interaction (all pairwise dot products of
  the 27 vectors, upper triangle with the diagonal: 378); top MLP on concat[bottom, 378] = 506,
  1024-1024-512-256 (Dense -> ReLU [-> LayerNorm]) then Dense(1); dropout after the 256 layer.
* ``DLRMResNet``: bottom 256-256-256 (layers after the first residual), embeddings flattened and
  concatenated with the bottom output (3584), top 256 then residual 256, 256, 256 (dropout in
  the last residual branch) and Dense(1).

Init as upstream: bottom kernels Glorot uniform, biases normal(sqrt(1/out)); top kernels
normal(sqrt(2/(in+out))), biases normal(sqrt(1/out)); table uniform [0, 1) times
``embedding_scale``. flax names layers in creation order as upstream's, so trees match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from workloads.common.flax_dropout import Dropout
from workloads.criteo1tb.param_map import (
    NUM_DENSE_FEATURES,
    NUM_SPARSE_FEATURES,
    TABLE,
    DlrmLayout,
    dlrm_layout,
)

_glorot = nn.initializers.glorot_uniform()


def _normal(stddev: float) -> Any:
    return nn.initializers.normal(stddev=float(stddev))


def _bottom_dense(width: int) -> nn.Dense:
    return nn.Dense(width, kernel_init=_glorot, bias_init=_normal(np.sqrt(1.0 / width)))


def _top_dense(fan_in: int, fan_out: int) -> nn.Dense:
    return nn.Dense(
        fan_out,
        kernel_init=_normal(np.sqrt(2.0 / (fan_in + fan_out))),
        bias_init=_normal(np.sqrt(1.0 / fan_out)),
    )


def dot_interact(features: jax.Array) -> jax.Array:
    """(batch, n, d) -> (batch, n (n + 1) / 2): upper triangle (diagonal included), row-major."""
    n = features.shape[1]
    xactions = jnp.einsum("bnd,bmd->bnm", features, features)
    rows, cols = np.triu_indices(n)
    return xactions[:, rows, cols]


def table_init(scale: float) -> Callable[..., jax.Array]:
    """The table's init: uniform in [0, 1) times `scale` (upstream's ``scaled_init``)."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype) * scale

    return init


def embedding_lookup(table: jax.Array, sparse: jax.Array) -> jax.Array:
    """(batch, 26) float ids -> (batch, 26, embed_dim): rows ``int32(id) % vocab`` (upstream)."""
    ids = sparse.astype(jnp.int32) % table.shape[0]
    return jnp.take(table, ids, axis=0)


class DLRM(nn.Module):
    """DLRM-small or DLRM-ResNet; ``__call__(x, train, dropout_rate)`` -> (batch, 1) logits."""

    layout: DlrmLayout

    def _embed(self, sparse: jax.Array) -> jax.Array:
        layout = self.layout
        shape = (layout.vocab_size, layout.embed_dim)
        return embedding_lookup(
            self.param(TABLE, table_init(layout.embedding_scale), shape), sparse
        )

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, dropout_rate: Any = 0.0) -> jax.Array:
        layout = self.layout
        dense, sparse = x[:, :NUM_DENSE_FEATURES], x[:, NUM_DENSE_FEATURES:]
        assert sparse.shape[1] == NUM_SPARSE_FEATURES, x.shape
        top = layout.top_dims
        if layout.use_resnet:
            h = nn.relu(_bottom_dense(layout.bottom_dims[0])(dense))
            for width in layout.bottom_dims[1:]:
                h = h + nn.relu(_bottom_dense(width)(h))
            embedded = self._embed(sparse).reshape(x.shape[0], -1)
            y = jnp.concatenate([h, embedded], axis=1)
            y = nn.relu(_top_dense(y.shape[1], top[0])(y))
            for i in range(1, len(top) - 1):
                branch = nn.relu(_top_dense(top[i - 1], top[i])(y))
                if i == len(top) - 2:
                    branch = Dropout()(branch, train, dropout_rate)
                y = y + branch
            return _top_dense(top[-2], top[-1])(y)

        h = dense
        for width in layout.bottom_dims:
            h = nn.relu(_bottom_dense(width)(h))
            if layout.layer_norm:
                h = nn.LayerNorm(epsilon=1e-6)(h)
        embedded = self._embed(sparse)
        if layout.layer_norm:
            embedded = nn.LayerNorm(epsilon=1e-6)(embedded)
        stack = jnp.concatenate([h.reshape(x.shape[0], -1, layout.embed_dim), embedded], axis=1)
        y = jnp.concatenate([h, dot_interact(stack)], axis=-1)
        fan_in = y.shape[1]
        for i, fan_out in enumerate(top):
            y = _top_dense(fan_in, fan_out)(y)
            if i < len(top) - 1:
                y = nn.relu(y)
                if layout.layer_norm:
                    y = nn.LayerNorm(epsilon=1e-6)(y)
            if i == len(top) - 2:
                y = Dropout()(y, train, dropout_rate)
            fan_in = fan_out
        return y


def build_model(options: Mapping[str, Any]) -> DLRM:
    """The flax model of a criteo1tb ``config.model`` mapping."""
    return DLRM(dlrm_layout(options))


def init(model: DLRM, rng: jax.Array) -> Any:
    """Parameters as upstream: the first half of a split `rng`, on a (2, 39) batch of ones."""
    params_rng, _ = jax.random.split(rng)
    ones = jnp.ones((2, NUM_DENSE_FEATURES + NUM_SPARSE_FEATURES), jnp.float32)
    variables = jax.jit(lambda r: model.init({"params": r}, ones, train=False))(params_rng)
    return variables["params"]
