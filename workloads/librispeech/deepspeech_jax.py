"""Upstream's DeepSpeech (LibriSpeech CTC model) in flax linen.

Structure, names and init as upstream's JAX model (`deepspeech_param_map` lists the names):
log-mel front-end (the Conformer's `conformer_jax.log_mel`, as upstream shares it), two
stride-2 3x3 conv subsampling layers (xavier-uniform kernels, zero bias, ReLU or tanh, outputs zeroed at padded frames), a dense projection to
``encoder_dim`` and dropout; ``num_lstm_layers`` blocks of norm + bidirectional LSTM
(flax ``OptimizedLSTMCell``, hidden ``encoder_dim / 2`` per direction, the backward direction
reads each utterance's valid frames reversed); ``num_ffn_layers`` blocks of norm, dense,
activation, padding mask and dropout; residual connections around both kinds of block unless
``use_residual`` is off; the decoder LayerNorm (unless ``enable_decoder_layer_norm`` is off)
and the output dense layer. Norms are padding-aware BatchNorm (momentum 0.999, epsilon 1e-3,
scale applied as ``1 + scale``) or, with ``layernorm_everywhere``, LayerNorm (``1 + scale``,
epsilon 1e-6).

``__call__(audio, paddings, train, dropout_rate, update_batch_norm)`` returns (logits, output
paddings); in training BatchNorm uses the batch's valid frames and, when ``update_batch_norm``
(default: ``train``), updates ``batch_stats`` (pass ``mutable=["batch_stats"]``; upstream's JAX
model always updates in training, ignoring the flag its PyTorch model honours). Outputs at padded frames are not meaningful (the LSTM runs over
them); the CTC loss masks them. In training, SpecAugment (`specaug_jax`, upstream's counts
from the options) masks the features first, drawing from the ``dropout`` rng stream.
Dropout's rate is a call argument (changing it does not recompile); upstream's JAX model
ignores it in the residual feed-forward blocks (always 0.1 there), this one uses it everywhere,
as upstream's PyTorch model does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from workloads.common.flax_dropout import dropout
from workloads.librispeech import specaug_jax
from workloads.librispeech.conformer_jax import log_mel
from workloads.librispeech.deepspeech_param_map import (
    BATCH_NORM_EPSILON,
    BATCH_NORM_MOMENTUM,
    LAYER_NORM_EPSILON,
    deepspeech_options,
)


def _activation(name: str):
    return jnp.tanh if name == "tanh" else jax.nn.relu


class LayerNorm(nn.Module):
    """LayerNorm with zero-initialised ``scale`` applied as ``1 + scale`` (upstream's)."""

    dim: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.zeros, (self.dim,))
        bias = self.param("bias", nn.initializers.zeros, (self.dim,))
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + LAYER_NORM_EPSILON) * (1 + scale) + bias


class BatchNorm(nn.Module):
    """Padding-aware BatchNorm over (batch, time): statistics of the valid frames only."""

    dim: int

    @nn.compact
    def __call__(
        self, x: jax.Array, paddings: jax.Array, train: bool, update: bool = True
    ) -> jax.Array:
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros(self.dim, jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones(self.dim, jnp.float32))
        scale = self.param("scale", nn.initializers.zeros, (self.dim,))
        bias = self.param("bias", nn.initializers.zeros, (self.dim,))
        mask = (1.0 - paddings)[..., None]
        if train:
            count = jnp.maximum(jnp.sum(mask * jnp.ones_like(x), axis=(0, 1)), 1.0)
            mean = jnp.sum(x * mask, axis=(0, 1)) / count
            var = jnp.sum(jnp.square(x - mean) * mask, axis=(0, 1)) / count
            if update and not self.is_initializing():
                m = BATCH_NORM_MOMENTUM
                ra_mean.value = m * ra_mean.value + (1 - m) * mean
                ra_var.value = m * ra_var.value + (1 - m) * var
        else:
            mean, var = ra_mean.value, ra_var.value
        out = (x - mean) * ((1 + scale) / jnp.sqrt(var + BATCH_NORM_EPSILON)) + bias
        return out * mask


def _flip(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Reverse each row's first `lengths` steps, keeping the padding at the end (and back)."""
    steps = x.shape[1]
    index = (jnp.arange(steps - 1, -1, -1)[None] + lengths[:, None]) % steps
    return jnp.take_along_axis(x, index[..., None], axis=1)


class _SequenceEncoder(nn.Module):
    hidden: int
    reverse: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> jax.Array:
        if self.reverse:
            x = _flip(x, lengths)
        scan = nn.scan(
            nn.OptimizedLSTMCell,
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=1,
            out_axes=1,
        )
        zeros = jnp.zeros((x.shape[0], self.hidden), x.dtype)
        _, y = scan(self.hidden, name="cell")((zeros, zeros), x)
        return _flip(y, lengths) if self.reverse else y


class _BiLSTM(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> jax.Array:
        forward = _SequenceEncoder(self.hidden, name="LSTMSequenceEncoder_0")(x, lengths)
        backward = _SequenceEncoder(self.hidden, True, name="LSTMSequenceEncoder_1")(x, lengths)
        return jnp.concatenate([forward, backward], axis=-1)


class LSTM(nn.Module):
    """Bidirectional single-layer LSTM (upstream's ``lstm.LSTM`` names)."""

    hidden: int

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> jax.Array:
        return _BiLSTM(self.hidden, name="LSTM")(x, lengths)


class Conv2dSubsampling(nn.Module):
    """3x3 stride-2 'SAME' conv + activation; paddings subsampled, padded frames zeroed."""

    out_channels: int
    activation: str

    @nn.compact
    def __call__(self, x: jax.Array, paddings: jax.Array) -> tuple[jax.Array, jax.Array]:
        kernel = self.param(
            "kernel", nn.initializers.xavier_uniform(), (3, 3, x.shape[-1], self.out_channels)
        )
        bias = self.param("bias", nn.initializers.zeros, (self.out_channels,))
        y = jax.lax.conv_general_dilated(
            x, kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        y = _activation(self.activation)(y + bias)
        paddings = paddings[:, ::2]
        return y * (1.0 - paddings)[:, :, None, None], paddings


class Subsample(nn.Module):
    options: Mapping[str, Any]

    @nn.compact
    def __call__(self, x, paddings, train: bool, dropout_rate: Any):
        o = self.options
        y = x[..., None]
        for _ in range(2):
            y, paddings = Conv2dSubsampling(o["encoder_dim"], o["activation"])(y, paddings)
        y = y.reshape(y.shape[0], y.shape[1], -1)
        y = nn.Dense(o["encoder_dim"], kernel_init=nn.initializers.xavier_uniform())(y)
        return dropout(self, y, train, dropout_rate), paddings


def _norm(options: Mapping[str, Any], x, paddings, train: bool, update: bool):
    if options["layernorm_everywhere"]:
        return LayerNorm(options["encoder_dim"])(x)
    return BatchNorm(options["encoder_dim"])(x, paddings, train, update)


class BatchRNN(nn.Module):
    options: Mapping[str, Any]

    @nn.compact
    def __call__(self, x, paddings, train: bool, update: bool):
        lengths = jnp.sum(1 - paddings, axis=-1).astype(jnp.int32)
        x = _norm(self.options, x, paddings, train, update)
        return LSTM(self.options["encoder_dim"] // 2)(x, lengths)


class FeedForwardModule(nn.Module):
    options: Mapping[str, Any]

    @nn.compact
    def __call__(self, x, paddings, train: bool, update: bool, dropout_rate: Any):
        o = self.options
        x = _norm(o, x, paddings, train, update)
        x = nn.Dense(o["encoder_dim"], kernel_init=nn.initializers.xavier_uniform())(x)
        x = _activation(o["activation"])(x) * (1.0 - paddings)[..., None]
        return dropout(self, x, train, dropout_rate)


class Deepspeech(nn.Module):
    """The whole model; ``options`` are validated ``deepspeech_options``."""

    options: Mapping[str, Any]

    @nn.compact
    def __call__(
        self,
        audio: jax.Array,
        paddings: jax.Array,
        train: bool,
        dropout_rate: Any = 0.1,
        update_batch_norm: bool | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        o = self.options
        update = train if update_batch_norm is None else bool(update_batch_norm)
        x, paddings = log_mel(audio, paddings)
        if train and o["use_specaug"]:
            x = specaug_jax.spec_augment(
                self.make_rng("dropout"), x, paddings, o["freq_mask_count"], o["time_mask_count"]
            )
        x, paddings = Subsample(o)(x, paddings, train, dropout_rate)
        for _ in range(o["num_lstm_layers"]):
            y = BatchRNN(o)(x, paddings, train, update)
            x = x + y if o["use_residual"] else y
        for _ in range(o["num_ffn_layers"]):
            y = FeedForwardModule(o)(x, paddings, train, update, dropout_rate)
            x = x + y if o["use_residual"] else y
        if o["enable_decoder_layer_norm"]:
            x = LayerNorm(o["encoder_dim"])(x)
        logits = nn.Dense(o["vocab_size"], kernel_init=nn.initializers.xavier_uniform())(x)
        return logits, paddings


def build_model(options: Mapping[str, Any]) -> Deepspeech:
    """The model of a ``config.model`` dict (validated)."""
    return Deepspeech(deepspeech_options(options))


def init(model: Deepspeech, rng: jax.Array, num_samples: int = 320_000) -> Any:
    """``{params, batch_stats}`` from a 2-utterance zero batch (upstream's init input)."""
    zeros = jnp.zeros((2, num_samples), jnp.float32)
    return model.init({"params": rng}, zeros, zeros, train=False)
