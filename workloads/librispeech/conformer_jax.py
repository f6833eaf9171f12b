"""Upstream's LibriSpeech Conformer in flax linen: audio in, per-frame logits out.

``model.apply(variables, audio, paddings, train=...)`` takes (batch, samples) int16-scale audio and
its padding mask (1 = pad) and returns ``(logits, logit_paddings)``: the log-mel front-end
(`log_mel`, the numpy reference's steps in float32) runs inside the model as upstream, then
two stride-2 3x3 conv subsamplings (time and frequency / 4), a Dense to ``encoder_dim`` plus
sinusoidal positions, ``num_encoder_layers`` Conformer blocks
(``x + FF/2, + MHSA, + conv module, + FF/2, [LayerNorm]``), a LayerNorm and the vocabulary Dense.
Parameter names, shapes and initialisers are upstream's (xavier-uniform kernels, zero biases,
LayerNorm/BatchNorm/QueryScaler scales stored as offsets from 1 (zeros)); 32,321,792 trainable
parameters for the workload (32,317,696 without the per-block post LayerNorm).

Where upstream's two frameworks differ, this model and `conformer_pytorch` follow one
definition (JAX's, with which the targets were set):
- the feed-forward module's inner dropout (after the activation) uses the main dropout rate
  (upstream PyTorch uses 0 there);
- ``gelu`` is the tanh approximation everywhere (upstream PyTorch's conv module uses exact GELU);
- BatchNorm statistics are over the whole (global) batch the model is given, valid frames only.
Attention masks queries and keys by padding as flax's ``make_attention_mask`` (a padded query
attends uniformly); padded output frames are meaningless, compare valid frames only.
SpecAugment (`workloads.librispeech.specaug_jax`) masks the features in train mode when
``use_specaug`` is on (upstream's default), drawing from the ``dropout`` rng stream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from workloads.common import logmel
from workloads.librispeech import specaug_jax
from workloads.librispeech.conformer_param_map import ConformerOptions, conformer_options

_XAVIER = nn.initializers.xavier_uniform()


def log_mel(
    audio: jax.Array, paddings: jax.Array, config: logmel.LogMelConfig = logmel.LIBRISPEECH
) -> tuple[jax.Array, jax.Array]:
    """float32 normalised log-mel features (B, frames, bins) and frame paddings (B, frames)."""
    c = config
    n = logmel.num_frames(audio.shape[-1], c)
    idx = np.arange(n)[:, None] * c.frame_step + np.arange(c.frame_size)[None]
    x = audio.astype(jnp.float32) * (1.0 - paddings.astype(jnp.float32)) * c.input_scale
    frames = x[..., idx]
    p = c.preemph
    frames = jnp.concatenate(
        [frames[..., :1] * (1.0 - p), frames[..., 1:-1] - p * frames[..., :-2]], axis=-1
    )
    w = c.window_size
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(w) / w)).astype(np.float32)
    spectrum = jnp.fft.rfft(frames * window, n=c.fft_size, axis=-1)
    power = jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2
    mel = power @ jnp.asarray(logmel.mel_weight_matrix(c), jnp.float32)
    features = jnp.log(jnp.maximum(mel, c.output_floor))
    mean = np.asarray(logmel.LIBRISPEECH_MEAN, np.float32)
    std = np.asarray(logmel.LIBRISPEECH_STD, np.float32)
    features = (features - mean) / std
    frame_pad = jnp.min(paddings[..., idx], axis=-1)
    return features, frame_pad


def _activation(name: str):
    return nn.swish if name == "swish" else (lambda x: nn.gelu(x, approximate=True))


class Dropout(nn.Module):
    """Inverted dropout whose rate is a call argument (changing it does not recompile)."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, rate: Any) -> jax.Array:
        if not train:
            return x
        keep = 1.0 - rate
        mask = jax.random.bernoulli(self.make_rng("dropout"), keep, x.shape)
        return jnp.where(mask, x / jnp.maximum(keep, 1e-12), 0.0).astype(x.dtype)


class LayerNorm(nn.Module):
    """LayerNorm (eps 1e-6) scaling by ``1 + scale`` (scale initialised to zeros), as upstream."""

    dim: int
    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.zeros, (self.dim,))
        bias = self.param("bias", nn.initializers.zeros, (self.dim,))
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * (1 + scale) + bias


class Conv2dSubsampling(nn.Module):
    """3x3 stride-2 'SAME' conv + ReLU on NHWC (time, freq); paddings take every other frame."""

    in_channels: int
    out_channels: int

    @nn.compact
    def __call__(self, x: jax.Array, paddings: jax.Array) -> tuple[jax.Array, jax.Array]:
        kernel = self.param("kernel", _XAVIER, (3, 3, self.in_channels, self.out_channels))
        bias = self.param("bias", nn.initializers.zeros, (self.out_channels,))
        y = jax.lax.conv_general_dilated(
            x, kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        y = nn.relu(y + bias)
        out_pad = paddings[:, ::2]
        return y * (1.0 - out_pad[:, :, None, None]), out_pad


def positional_embedding(length: int, dim: int) -> np.ndarray:
    """(1, length, dim) sinusoids: sin on the first half, cos on the second (upstream's)."""
    num = dim // 2
    increment = math.log(10_000.0) / max(num - 1, 1)
    inv = np.exp(np.arange(num, dtype=np.float32) * -increment).astype(np.float32)
    t = np.arange(length, dtype=np.float32)[None, :, None] * inv[None, None]
    signal = np.concatenate([np.sin(t), np.cos(t)], axis=2)
    return np.pad(signal, [(0, 0), (0, 0), (0, dim % 2)]).astype(np.float32)


class Subsample(nn.Module):
    o: ConformerOptions

    @nn.compact
    def __call__(self, x, paddings, train, rate):
        d = self.o.encoder_dim
        y, pad = Conv2dSubsampling(1, d)(x[..., None], paddings)
        y, pad = Conv2dSubsampling(d, d)(y, pad)
        b, t, f, c = y.shape
        y = nn.Dense(d, kernel_init=_XAVIER)(y.reshape(b, t, f * c))
        y = y + positional_embedding(t, d)
        return Dropout()(y, train, rate), pad


class FeedForwardModule(nn.Module):
    o: ConformerOptions

    @nn.compact
    def __call__(self, x, mask, train, rate):
        o = self.o
        y = LayerNorm(o.encoder_dim)(x)
        y = nn.Dense(o.encoder_dim * o.feed_forward_expansion_factor, kernel_init=_XAVIER)(y)
        y = Dropout()(_activation(o.activation)(y), train, rate) * mask
        y = nn.Dense(o.encoder_dim, kernel_init=_XAVIER)(y) * mask
        return Dropout()(y, train, rate)


class QueryScaler(nn.Module):
    """Per-dimension learned query scale ``softplus(s) / softplus(0)`` (s initialised to 0)."""

    dim: int

    @nn.compact
    def __call__(self, q: jax.Array) -> jax.Array:
        s = self.param("scale", nn.initializers.zeros, (self.dim,))
        return q * (1.442695041 * jax.nn.softplus(s))


class MultiHeadDotProductAttention(nn.Module):
    """flax-layout self-attention (query/key/value/out DenseGeneral) with the query scaler."""

    o: ConformerOptions

    @nn.compact
    def __call__(self, x: jax.Array, valid: jax.Array) -> jax.Array:
        o = self.o
        h, hd = o.num_attention_heads, o.head_dim

        def proj(name):
            return nn.DenseGeneral((h, hd), kernel_init=_XAVIER, name=name)(x)

        q, k, v = proj("query"), proj("key"), proj("value")
        q = QueryScaler(hd)(q) / jnp.sqrt(hd).astype(q.dtype)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k)
        mask = valid[:, None, :, None] & valid[:, None, None, :]
        logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
        weights = jax.nn.softmax(logits, axis=-1)
        y = jnp.einsum("bhqk,bkhd->bqhd", weights, v) * o.attention_temperature
        return nn.DenseGeneral(o.encoder_dim, axis=(-2, -1), kernel_init=_XAVIER, name="out")(y)


class MultiHeadedSelfAttention(nn.Module):
    o: ConformerOptions

    @nn.compact
    def __call__(self, x, paddings, train, rate):
        y = LayerNorm(self.o.encoder_dim)(x)
        y = MultiHeadDotProductAttention(self.o)(y, paddings < 0.5)
        return Dropout()(y, train, rate)


class BatchNorm(nn.Module):
    """BatchNorm over valid frames (lingvo's), ``1 + scale``; running stats in ``batch_stats``."""

    o: ConformerOptions

    @nn.compact
    def __call__(self, x, paddings, train, update_batch_norm):
        d = self.o.encoder_dim
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((d,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((d,), jnp.float32))
        scale = self.param("scale", nn.initializers.zeros, (d,))
        bias = self.param("bias", nn.initializers.zeros, (d,))
        mask = 1.0 - paddings[..., None]
        if train:
            count = jnp.maximum(jnp.sum(mask, axis=(0, 1)), 1.0)
            mean = jnp.sum(x * mask, axis=(0, 1)) / count
            var = jnp.sum(jnp.square(x - mean) * mask, axis=(0, 1)) / count
            if update_batch_norm and not self.is_initializing():
                m = self.o.batch_norm_momentum
                ra_mean.value = m * ra_mean.value + (1 - m) * mean
                ra_var.value = m * ra_var.value + (1 - m) * var
        else:
            mean, var = ra_mean.value, ra_var.value
        y = (x - mean) * ((1 + scale) / jnp.sqrt(var + self.o.batch_norm_epsilon)) + bias
        return y * mask


class ConvolutionBlock(nn.Module):
    o: ConformerOptions

    @nn.compact
    def __call__(self, x, paddings, train, update_batch_norm, rate):
        o = self.o
        d = o.encoder_dim
        y = LayerNorm(d)(x)
        gated = nn.Dense(d, kernel_init=_XAVIER)(y) * jax.nn.sigmoid(
            nn.Dense(d, kernel_init=_XAVIER)(y)
        )
        y = gated * (1.0 - paddings[..., None])
        y = nn.Conv(
            d,
            (o.convolution_kernel_size,),
            padding="SAME",
            feature_group_count=d,
            use_bias=False,
            kernel_init=_XAVIER,
        )(y)
        y = BatchNorm(o)(y, paddings, train, update_batch_norm)
        y = nn.Dense(d, kernel_init=_XAVIER)(_activation(o.activation)(y))
        return Dropout()(y, train, rate)


class ConformerBlock(nn.Module):
    o: ConformerOptions

    @nn.compact
    def __call__(self, x, paddings, train, update_batch_norm, rate):
        mask = (1.0 - paddings)[..., None]
        x = x + 0.5 * FeedForwardModule(self.o)(x, mask, train, rate)
        x = x + MultiHeadedSelfAttention(self.o)(x, paddings, train, rate)
        x = x + ConvolutionBlock(self.o)(x, paddings, train, update_batch_norm, rate)
        x = x + 0.5 * FeedForwardModule(self.o)(x, mask, train, rate)
        if self.o.use_post_layer_norm:
            x = LayerNorm(self.o.encoder_dim)(x)
        return x


class Conformer(nn.Module):
    """The whole model; see the module docstring."""

    o: ConformerOptions

    @nn.compact
    def __call__(
        self,
        audio: jax.Array,
        paddings: jax.Array,
        train: bool,
        update_batch_norm: bool | None = None,
        dropout_rate: Any = 0.1,
    ) -> tuple[jax.Array, jax.Array]:
        if update_batch_norm is None:
            update_batch_norm = train
        x, pad = log_mel(audio, paddings)
        o = self.o
        if train and o.use_specaug:
            rng = self.make_rng("dropout")
            x = specaug_jax.spec_augment(rng, x, pad, o.freq_mask_count, o.time_mask_count)
        x, pad = Subsample(self.o)(x, pad, train, dropout_rate)
        for _ in range(self.o.num_encoder_layers):
            x = ConformerBlock(self.o)(x, pad, train, update_batch_norm, dropout_rate)
        x = LayerNorm(self.o.encoder_dim)(x)
        return nn.Dense(self.o.vocab_size, kernel_init=_XAVIER)(x), pad


def build_model(options: Mapping[str, Any]) -> Conformer:
    """The Conformer of ``config.model`` (see `conformer_options`)."""
    return Conformer(conformer_options(options))


def init(model: Conformer, rng: jax.Array, num_samples: int = 320_000) -> Any:
    """Variables ``{"params", "batch_stats"}`` from a (2, num_samples) zero batch; works under
    `jax.eval_shape` (shape-only counting)."""
    x = jnp.zeros((2, num_samples), jnp.float32)
    return model.init({"params": rng}, x, x, train=False)
