"""SpecAugment in PyTorch; the same definition as `workloads.librispeech.specaug_jax`."""

from __future__ import annotations

import torch

FREQ_MASK_MAX_BINS = 27  # as `specaug_jax` (not imported: this module must not load JAX)
TIME_MASK_MAX_RATIO = 0.05


def _mask(u_len, u_start, choose_range, size: int, max_length, max_ratio: float):
    cr = choose_range.to(torch.int32)[:, None]
    top = cr.float() * max_ratio if max_length is None else float(max_length)
    width = (top * u_len).to(torch.int32)
    width = torch.minimum(width, torch.clamp((max_ratio * cr).to(torch.int32), min=1))
    start = (u_start * (cr - width + 1)).to(torch.int32)
    end = start + width - 1
    pos = torch.arange(size, device=u_len.device)[None, None]
    inside = (pos > start[..., None] - 0.1) & (pos < end[..., None] + 0.1)
    return 1.0 - inside.any(dim=1).float()


def masks(uniforms, paddings: torch.Tensor, num_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Time (B, T) and frequency (B, num_bins) masks from draws (time len, time start, freq
    len, freq start), each (B, count)."""
    t_len, t_start, f_len, f_start = uniforms
    b, t = paddings.shape
    lengths = (1.0 - paddings).sum(dim=1).to(torch.int32)
    time = _mask(t_len, t_start, lengths, t, None, TIME_MASK_MAX_RATIO)
    bins = torch.full((b,), num_bins, dtype=torch.int32, device=paddings.device)
    freq = _mask(f_len, f_start, bins, num_bins, FREQ_MASK_MAX_BINS, 1.0)
    return time, freq


def spec_augment(
    features: torch.Tensor, paddings: torch.Tensor, freq_count: int, time_count: int
) -> torch.Tensor:
    """Masked (B, T, F) features (zero where masked), draws from torch's default generator."""
    b, _, f = features.shape
    counts = (time_count, time_count, freq_count, freq_count)
    draws = tuple(torch.rand(b, c, device=features.device) for c in counts)
    time, freq = masks(draws, paddings, f)
    return features * time[:, :, None] * freq[:, None, :]
