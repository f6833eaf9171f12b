"""Upstream's wmt encoder-decoder Transformer in flax (names and structure as upstream's JAX model).

Structure: a shared token embedding (normal(1.0) init) feeds both stacks, plus the fixed
sinusoidal table of `param_map.sinusoidal_table` (not a parameter); ``num_layers`` encoder blocks
(self-attention, MLP) and decoder blocks (causal self-attention, cross-attention, MLP), each
sub-layer pre-LN (``x + f(LN(x))``, with a final LayerNorm per stack) or post-LN
(``LN(x + f(x))``, no final LayerNorm). Attention is flax's ``MultiHeadDotProductAttention``
without biases and without dropout on the probabilities; ``attention_temp`` multiplies the query
input. The MLP is Dense -> activation (-> times a second Dense of the input with GLU) -> dropout
-> Dense -> dropout. Dropout also follows the position embedding and each attention.
Logits = decoder output @ embedding^T / sqrt(emb_dim), in float32. Init: Xavier-uniform kernels,
normal(1e-6) biases, LayerNorm eps 1e-6. Targets are shifted right inside the decoder (teacher
forcing); packed batches pass positions and segment ids, which give block-diagonal masks.

Dropout's rate is a call argument (traced under jit: changing it does not compile again) and draws
from the ``dropout`` rng stream.

Incremental decoding: ``build_model(...).clone(decoding=True)`` (see `decoding_model`) is the same
model, same ``params``, whose decoder takes one token per call and keeps a ``cache`` collection
(flax's per-layer ``cached_key``/``cached_value``/``cache_index`` plus the decoder's position
index), as upstream's decode mode: no right shift (the caller feeds the previous token), the
self-attention attends to the cached positions, the cross-attention to the non-padding sources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from workloads.common.flax_dropout import dropout as _dropout
from workloads.wmt.param_map import (
    ACTIVATIONS,
    TransformerLayout,
    sinusoidal_table,
    transformer_layout,
)

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"relu": nn.relu, "tanh": jnp.tanh}
assert set(_ACTIVATIONS) == set(ACTIVATIONS)
_KERNEL_INIT = nn.initializers.xavier_uniform()
_BIAS_INIT = nn.initializers.normal(stddev=1e-6)


def _attention(layout: TransformerLayout, decode: bool = False) -> nn.MultiHeadDotProductAttention:
    return nn.MultiHeadDotProductAttention(
        num_heads=layout.num_heads,
        qkv_features=layout.emb_dim,
        kernel_init=_KERNEL_INIT,
        use_bias=False,
        broadcast_dropout=False,
        dropout_rate=0.0,
        deterministic=True,
        decode=decode,
    )


def _layer_norm(name: str | None = None) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=1e-6, name=name)


def _residual(
    block: nn.Module, x: jax.Array, fn: Callable[[jax.Array], jax.Array], train: bool, rate: Any
) -> jax.Array:
    """``x + drop(f(LN(x)))`` (pre-LN) or ``LN(x + drop(f(x)))`` (post-LN).

    flax names the LayerNorms in creation order (``LayerNorm_k``), as in upstream's blocks; the
    MLP applies its own output dropout, so its callers pass rate 0 here.
    """
    pre_ln = block.layout.pre_ln
    y = _dropout(block, fn(_layer_norm()(x) if pre_ln else x), train, rate)
    return x + y if pre_ln else _layer_norm()(x + y)


class MlpBlock(nn.Module):
    """Dense -> activation (x GLU gate) -> dropout -> Dense -> dropout."""

    layout: TransformerLayout

    @nn.compact
    def __call__(self, inputs: jax.Array, train: bool, rate: Any) -> jax.Array:
        cfg = self.layout
        dense = lambda n: nn.Dense(n, kernel_init=_KERNEL_INIT, bias_init=_BIAS_INIT)  # noqa: E731
        x = _ACTIVATIONS[cfg.activation](dense(cfg.mlp_dim)(inputs))
        if cfg.glu:
            x = x * dense(cfg.mlp_dim)(inputs)
        x = _dropout(self, x, train, rate)
        return _dropout(self, dense(inputs.shape[-1])(x), train, rate)


class Encoder1DBlock(nn.Module):
    """Self-attention then MLP, each pre-LN or post-LN."""

    layout: TransformerLayout

    @nn.compact
    def __call__(self, inputs: jax.Array, mask: jax.Array, train: bool, rate: Any) -> jax.Array:
        cfg = self.layout
        attend = lambda h: _attention(cfg)(cfg.attention_temp * h, h, mask=mask)  # noqa: E731
        x = _residual(self, inputs, attend, train, rate)
        return _residual(self, x, lambda h: MlpBlock(cfg)(h, train, rate), train, 0.0)


class EncoderDecoder1DBlock(nn.Module):
    """Causal self-attention, cross-attention on the encoding, then MLP."""

    layout: TransformerLayout
    decoding: bool = False

    @nn.compact
    def __call__(
        self,
        targets: jax.Array,
        encoded: jax.Array,
        decoder_mask: jax.Array,
        cross_mask: jax.Array,
        train: bool,
        rate: Any,
    ) -> jax.Array:
        cfg, temp = self.layout, self.layout.attention_temp
        attend = lambda h: _attention(cfg, self.decoding)(temp * h, h, mask=decoder_mask)  # noqa: E731
        x = _residual(self, targets, attend, train, rate)
        cross = lambda h: _attention(cfg)(temp * h, encoded, mask=cross_mask)  # noqa: E731
        x = _residual(self, x, cross, train, rate)
        return _residual(self, x, lambda h: MlpBlock(cfg)(h, train, rate), train, 0.0)


def _embed_positions(x: jax.Array, positions: jax.Array | None, max_len: int) -> jax.Array:
    table = jnp.asarray(sinusoidal_table(max_len, x.shape[-1]))
    if positions is None:
        return x + table[:, : x.shape[1]]
    return x + jnp.take(table[0], positions, axis=0)


def shift_right(x: jax.Array) -> jax.Array:
    """Prepend a 0 (the decoder's start token) and drop the last position."""
    return jnp.pad(x, ((0, 0), (1, 0)))[:, :-1]


class Encoder(nn.Module):
    layout: TransformerLayout
    shared_embedding: nn.Embed

    @nn.compact
    def __call__(self, inputs, positions, mask, train: bool, rate: Any) -> jax.Array:
        cfg = self.layout
        x = self.shared_embedding(inputs.astype(jnp.int32))
        x = _dropout(self, _embed_positions(x, positions, cfg.max_len), train, rate)
        for i in range(cfg.num_layers):
            x = Encoder1DBlock(cfg, name=f"encoderblock_{i}")(x, mask, train, rate)
        return _layer_norm("encoder_layernorm")(x) if cfg.pre_ln else x


class Decoder(nn.Module):
    layout: TransformerLayout
    shared_embedding: nn.Embed
    decoding: bool = False

    def _positions(self, y: jax.Array, positions: jax.Array | None) -> jax.Array:
        """Sinusoidal positions; in decode mode the one of the cached step index."""
        if not self.decoding:
            return _embed_positions(y, positions, self.layout.max_len)
        ready = self.has_variable("cache", "position_index")
        index = self.variable("cache", "position_index", lambda: jnp.array(0, jnp.int32))
        if not ready:  # init: a full-length dummy target
            return _embed_positions(y, None, self.layout.max_len)
        table = jnp.asarray(sinusoidal_table(self.layout.max_len, y.shape[-1]))
        step = index.value
        index.value = step + 1
        return y + jax.lax.dynamic_slice_in_dim(table, step, 1, axis=1)

    @nn.compact
    def __call__(
        self, encoded, targets, positions, decoder_mask, cross_mask, train: bool, rate: Any
    ) -> jax.Array:
        cfg = self.layout
        targets = targets.astype(jnp.int32)
        y = self.shared_embedding(targets if self.decoding else shift_right(targets))
        y = _dropout(self, self._positions(y, positions), train, rate)
        for i in range(cfg.num_layers):
            block = EncoderDecoder1DBlock(cfg, self.decoding, name=f"encoderdecoderblock_{i}")
            y = block(y, encoded, decoder_mask, cross_mask, train, rate)
        if cfg.pre_ln:
            y = _layer_norm("encoderdecoder_layernorm")(y)
        logits = self.shared_embedding.attend(y.astype(jnp.float32))
        return logits / jnp.sqrt(y.shape[-1])


class Transformer(nn.Module):
    """``__call__(inputs, targets, ...)`` returns (batch, target length, vocab) logits."""

    layout: TransformerLayout
    decoding: bool = False

    def setup(self) -> None:
        cfg = self.layout
        self.shared_embedding = nn.Embed(
            cfg.vocab_size, cfg.emb_dim, embedding_init=nn.initializers.normal(stddev=1.0)
        )
        self.encoder = Encoder(cfg, self.shared_embedding)
        self.decoder = Decoder(cfg, self.shared_embedding, self.decoding)

    def encode(
        self,
        inputs: jax.Array,
        inputs_positions: jax.Array | None = None,
        inputs_segmentation: jax.Array | None = None,
        train: bool = False,
        dropout_rate: Any = 0.0,
    ) -> jax.Array:
        """Encoder output; padding (id 0) and other segments are masked out of attention."""
        mask = nn.make_attention_mask(inputs > 0, inputs > 0)
        if inputs_segmentation is not None:
            same = nn.make_attention_mask(inputs_segmentation, inputs_segmentation, jnp.equal)
            mask = nn.combine_masks(mask, same)
        return self.encoder(inputs, inputs_positions, mask, train, dropout_rate)

    def decode(
        self,
        encoded: jax.Array,
        inputs: jax.Array,
        targets: jax.Array,
        targets_positions: jax.Array | None = None,
        inputs_segmentation: jax.Array | None = None,
        targets_segmentation: jax.Array | None = None,
        train: bool = False,
        dropout_rate: Any = 0.0,
    ) -> jax.Array:
        """Teacher-forced decoder logits (causal, padding and segment masks).

        In decode mode `targets` is the (batch, 1) previous token and the masks are the cache's.
        """
        if self.decoding:
            cross_mask = nn.make_attention_mask(jnp.ones_like(targets) > 0, inputs > 0)
            return self.decoder(encoded, targets, None, None, cross_mask, train, dropout_rate)
        decoder_mask = nn.combine_masks(
            nn.make_attention_mask(targets > 0, targets > 0), nn.make_causal_mask(targets)
        )
        cross_mask = nn.make_attention_mask(targets > 0, inputs > 0)
        if inputs_segmentation is not None:
            decoder_mask = nn.combine_masks(
                decoder_mask,
                nn.make_attention_mask(targets_segmentation, targets_segmentation, jnp.equal),
            )
            cross_mask = nn.combine_masks(
                cross_mask,
                nn.make_attention_mask(targets_segmentation, inputs_segmentation, jnp.equal),
            )
        return self.decoder(
            encoded, targets, targets_positions, decoder_mask, cross_mask, train, dropout_rate
        )

    def __call__(
        self,
        inputs: jax.Array,
        targets: jax.Array,
        inputs_positions: jax.Array | None = None,
        targets_positions: jax.Array | None = None,
        inputs_segmentation: jax.Array | None = None,
        targets_segmentation: jax.Array | None = None,
        train: bool = False,
        dropout_rate: Any = 0.0,
    ) -> jax.Array:
        encoded = self.encode(inputs, inputs_positions, inputs_segmentation, train, dropout_rate)
        return self.decode(
            encoded,
            inputs,
            targets,
            targets_positions,
            inputs_segmentation,
            targets_segmentation,
            train,
            dropout_rate,
        )


def build_model(options: Mapping[str, Any]) -> Transformer:
    """The Transformer of a wmt ``config.model`` dict."""
    return Transformer(transformer_layout(options))


def init(model: Transformer, rng: jax.Array) -> Any:
    """``params`` of `model` (shapes do not depend on the length of the init batch)."""
    tokens = jnp.ones((2, 8), jnp.int32)
    return model.init({"params": rng}, tokens, tokens)["params"]


def decoding_model(model: Transformer) -> Transformer:
    """`model` in decode mode (same parameters; one target token per call, ``cache`` mutable)."""
    return model if model.decoding else model.clone(decoding=True)


def init_cache(model: Transformer, batch_size: int, max_decode_len: int) -> Any:
    """A zero decoding cache for `batch_size` rows of up to `max_decode_len` target positions."""
    if max_decode_len > model.layout.max_len:
        raise ValueError(
            f"workloads/wmt/model_jax.py: max_decode_len {max_decode_len} exceeds the model's "
            f"max_len {model.layout.max_len}; pass max_decode_len <= max_len"
        )
    dummy_in = jnp.ones((batch_size, 1), jnp.int32)
    dummy_out = jnp.ones((batch_size, max_decode_len), jnp.int32)
    shapes = jax.eval_shape(
        lambda: decoding_model(model).init(jax.random.PRNGKey(0), dummy_in, dummy_out)["cache"]
    )
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
