"""Upstream's LibriSpeech Conformer in PyTorch: audio in, per-frame logits out.

``model(audio, paddings, dropout_rate=...)`` mirrors `workloads.librispeech.conformer_jax`
(same front-end, structure and the same single definition where upstream's frameworks differ:
feed-forward inner dropout at the main rate, tanh GELU everywhere, BatchNorm over the whole
global batch, all DDP ranks together); module names are upstream's (``subsample``, ``conformers.<i>.{ff1,mhsa,conv,ff2,
ln}``, ``ln``, ``lin``) so state dicts line up with upstream's, less its constant buffers. Train
mode (``model.train()``) uses batch statistics and updates the running ones, and applies
SpecAugment (`workloads.librispeech.specaug_pytorch`) when ``use_specaug`` is on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workloads.common import logmel
from workloads.librispeech import specaug_pytorch
from workloads.librispeech.batchnorm_pytorch import masked_moments, update_running
from workloads.librispeech.conformer_param_map import ConformerOptions, conformer_options


class LogMel(nn.Module):
    """float32 normalised log-mel features and frame paddings (the numpy reference's steps)."""

    def __init__(self, config: logmel.LogMelConfig = logmel.LIBRISPEECH) -> None:
        super().__init__()
        c = self.config = config
        w = c.window_size
        window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(w) / w)
        self.register_buffer("window", torch.tensor(window, dtype=torch.float32), persistent=False)
        mel = torch.tensor(logmel.mel_weight_matrix(c), dtype=torch.float32)
        self.register_buffer("mel", mel, persistent=False)
        mean = torch.tensor(logmel.LIBRISPEECH_MEAN, dtype=torch.float32)
        self.register_buffer("mean", mean, persistent=False)
        std = torch.tensor(logmel.LIBRISPEECH_STD, dtype=torch.float32)
        self.register_buffer("std", std, persistent=False)

    def forward(self, audio: torch.Tensor, paddings: torch.Tensor):
        c = self.config
        x = audio.float() * (1.0 - paddings.float()) * c.input_scale
        frames = x.unfold(-1, c.frame_size, c.frame_step)
        p = c.preemph
        frames = torch.cat(
            [frames[..., :1] * (1.0 - p), frames[..., 1:-1] - p * frames[..., :-2]], dim=-1
        )
        spectrum = torch.fft.rfft(frames * self.window, n=c.fft_size, dim=-1)
        power = spectrum.real**2 + spectrum.imag**2
        features = torch.log(torch.clamp(power @ self.mel, min=c.output_floor))
        features = (features - self.mean) / self.std
        frame_pad = paddings.unfold(-1, c.frame_size, c.frame_step).amin(dim=-1)
        return features, frame_pad


def _activation(name: str):
    return F.silu if name == "swish" else (lambda x: F.gelu(x, approximate="tanh"))


class LayerNorm(nn.Module):
    def __init__(self, dim: int, epsilon: float = 1e-6) -> None:
        super().__init__()
        self.dim, self.epsilon = dim, epsilon
        self.scale = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (self.dim,), 1 + self.scale, self.bias, self.epsilon)


class Conv2dSubsampling(nn.Module):
    """3x3 stride-2 TF-'SAME' conv + ReLU on NCHW (time, freq); paddings every other frame."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        nn.init.xavier_uniform_(self.kernel)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    @staticmethod
    def _same(n: int) -> tuple[int, int]:
        total = max(3 - (2 if n % 2 == 0 else 1), 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor, paddings: torch.Tensor):
        (t0, t1), (f0, f1) = self._same(x.shape[2]), self._same(x.shape[3])
        y = F.relu(F.conv2d(F.pad(x, (f0, f1, t0, t1)), self.kernel, self.bias, stride=2))
        out_pad = paddings[:, ::2]
        return y * (1 - out_pad[:, None, :, None]), out_pad


def positional_embedding(length: int, dim: int, device: torch.device) -> torch.Tensor:
    num = dim // 2
    increment = math.log(10_000.0) / max(num - 1, 1)
    inv = torch.exp(torch.arange(num, dtype=torch.float32, device=device) * -increment)
    t = torch.arange(length, dtype=torch.float32, device=device)[None, :, None] * inv
    return F.pad(torch.cat([torch.sin(t), torch.cos(t)], dim=2), (0, dim % 2))


class Subsample(nn.Module):
    def __init__(self, o: ConformerOptions) -> None:
        super().__init__()
        d = o.encoder_dim
        self.conv1 = Conv2dSubsampling(1, d)
        self.conv2 = Conv2dSubsampling(d, d)
        freq = (o.num_bins + 1) // 2
        self.linear = nn.Linear(d * ((freq + 1) // 2), d)

    def forward(self, x, paddings, rate):
        y, pad = self.conv1(x[:, None], paddings)
        y, pad = self.conv2(y, pad)
        b, c, t, f = y.shape
        y = self.linear(y.permute(0, 2, 3, 1).reshape(b, t, f * c))
        y = y + positional_embedding(t, y.shape[-1], y.device)
        return F.dropout(y, rate, self.training), pad


class FeedForwardModule(nn.Module):
    def __init__(self, o: ConformerOptions) -> None:
        super().__init__()
        self.o = o
        inner = o.encoder_dim * o.feed_forward_expansion_factor
        self.ln = LayerNorm(o.encoder_dim)
        self.linear1 = nn.Linear(o.encoder_dim, inner)
        self.linear2 = nn.Linear(inner, o.encoder_dim)

    def forward(self, x, mask, rate):
        y = _activation(self.o.activation)(self.linear1(self.ln(x)))
        y = F.dropout(y, rate, self.training) * mask
        y = self.linear2(y) * mask
        return F.dropout(y, rate, self.training)


class QueryScaler(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(dim))

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return q * (1.442695041 * F.softplus(self.scale))


class MHSAwithQS(nn.Module):
    """Self-attention with a fused q/k/v projection and the query scaler (upstream's names)."""

    def __init__(self, o: ConformerOptions) -> None:
        super().__init__()
        self.o = o
        self.in_proj = nn.Linear(o.encoder_dim, 3 * o.encoder_dim)
        self.out_proj = nn.Linear(o.encoder_dim, o.encoder_dim)
        self.qs = QueryScaler(o.head_dim)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.o.num_attention_heads
        q, k, v = (z.view(b, t, h, -1).transpose(1, 2) for z in self.in_proj(x).split(d, dim=2))
        q = self.qs(q.transpose(1, 2)).transpose(1, 2)
        both = valid[:, None, :, None] & valid[:, None, None, :]
        bias = torch.zeros(both.shape, dtype=x.dtype, device=x.device)
        bias = bias.masked_fill(~both, torch.finfo(x.dtype).min)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        y = y.transpose(1, 2).reshape(b, t, d) * self.o.attention_temperature
        return self.out_proj(y)


class MultiHeadedSelfAttention(nn.Module):
    def __init__(self, o: ConformerOptions) -> None:
        super().__init__()
        self.ln = LayerNorm(o.encoder_dim)
        self.self_attention = MHSAwithQS(o)

    def forward(self, x, paddings, rate):
        y = self.self_attention(self.ln(x), paddings < 0.5)
        return F.dropout(y, rate, self.training)


class BatchNorm(nn.Module):
    """BatchNorm over valid frames (of the global batch under DDP: `batchnorm_pytorch`),
    ``1 + scale``; running stats updated in train mode unless ``update_running_stats`` is off."""

    def __init__(self, o: ConformerOptions) -> None:
        super().__init__()
        d = o.encoder_dim
        self.register_buffer("running_mean", torch.zeros(d))
        self.register_buffer("running_var", torch.ones(d))
        self.scale = nn.Parameter(torch.zeros(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.momentum, self.epsilon = o.batch_norm_momentum, o.batch_norm_epsilon
        self.update_running_stats = True

    def forward(self, x: torch.Tensor, paddings: torch.Tensor) -> torch.Tensor:
        mask = 1 - paddings[..., None]
        if self.training:
            mean, var = masked_moments(x, mask)
            if self.update_running_stats:
                update_running(self.running_mean, self.running_var, mean, var, self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean) * ((1 + self.scale) * torch.rsqrt(var + self.epsilon)) + self.bias
        return y * mask


class ConvolutionBlock(nn.Module):
    def __init__(self, o: ConformerOptions) -> None:
        super().__init__()
        d = self.dim = o.encoder_dim
        self.o = o
        self.ln = LayerNorm(d)
        self.lin1 = nn.Linear(d, d)
        self.lin2 = nn.Linear(d, d)
        self.conv1 = nn.Conv1d(
            d, d, o.convolution_kernel_size, padding="same", bias=False, groups=d
        )
        self.bn = BatchNorm(o)
        self.lin3 = nn.Linear(d, d)

    def forward(self, x, paddings, rate):
        y = self.ln(x)
        y = self.lin1(y) * torch.sigmoid(self.lin2(y))
        y = y * (1 - paddings[..., None])
        y = self.conv1(y.permute(0, 2, 1)).permute(0, 2, 1)
        y = self.lin3(_activation(self.o.activation)(self.bn(y, paddings)))
        return F.dropout(y, rate, self.training)


class ConformerBlock(nn.Module):
    def __init__(self, o: ConformerOptions) -> None:
        super().__init__()
        self.ff1 = FeedForwardModule(o)
        self.mhsa = MultiHeadedSelfAttention(o)
        self.conv = ConvolutionBlock(o)
        self.ff2 = FeedForwardModule(o)
        self.ln = LayerNorm(o.encoder_dim) if o.use_post_layer_norm else None

    def forward(self, x, paddings, rate):
        mask = (1 - paddings)[..., None]
        x = x + 0.5 * self.ff1(x, mask, rate)
        x = x + self.mhsa(x, paddings, rate)
        x = x + self.conv(x, paddings, rate)
        x = x + 0.5 * self.ff2(x, mask, rate)
        return self.ln(x) if self.ln is not None else x


class ConformerEncoderDecoder(nn.Module):
    """The whole model; see the module docstring."""

    def __init__(self, o: ConformerOptions) -> None:
        super().__init__()
        self.o = o
        self.preprocessor = LogMel()
        self.subsample = Subsample(o)
        self.conformers = nn.ModuleList(ConformerBlock(o) for _ in range(o.num_encoder_layers))
        self.ln = LayerNorm(o.encoder_dim)
        self.lin = nn.Linear(o.encoder_dim, o.vocab_size)
        for m in self.modules():  # upstream's `initialize`: xavier-uniform weights, zero biases
            if isinstance(m, (nn.Linear, nn.Conv1d)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, audio: torch.Tensor, paddings: torch.Tensor, dropout_rate: float = 0.1):
        x, pad = self.preprocessor(audio, paddings)
        o = self.o
        if self.training and o.use_specaug:
            x = specaug_pytorch.spec_augment(x, pad, o.freq_mask_count, o.time_mask_count)
        x, pad = self.subsample(x, pad, dropout_rate)
        for block in self.conformers:
            x = block(x, pad, dropout_rate)
        return self.lin(self.ln(x)), pad


def build_model(options: Mapping[str, Any], device: Any = None) -> ConformerEncoderDecoder:
    """The Conformer of ``config.model``; ``device="meta"`` builds it shape-only."""
    with torch.device(device or "cpu"):
        return ConformerEncoderDecoder(conformer_options(options))
