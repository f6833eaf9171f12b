"""SpecAugment (lingvo's, as upstream's speech models apply it in train mode) in JAX.

Time masks: ``time_mask_count`` masks per utterance, each of ``int(u * 0.05 * length)`` frames
(dynamic maximum, ``length`` = the utterance's valid frames), at most ``max(int(0.05 * length),
1)``, starting at ``int(u' * (length - width + 1))``; frequency masks: ``freq_mask_count`` masks
of ``int(u * 27)`` bins starting at ``int(u' * (80 - width + 1))``; masked entries are zeroed
and paddings unchanged. ``u, u'`` are uniform draws in [0, 1): `masks` takes them as arguments
so the JAX and PyTorch versions can be checked on identical draws. upstream's per-frame mask
count option (``time_masks_per_frame``) is 0 in every workload and not offered.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

FREQ_MASK_MAX_BINS = 27  # upstream's defaults, in every workload
TIME_MASK_MAX_RATIO = 0.05


def _mask(u_len, u_start, choose_range, size: int, max_length, max_ratio: float):
    """(B, size) float mask, 0 inside any of the (B, M) sampled spans."""
    cr = choose_range.astype(jnp.int32)[:, None]
    top = cr.astype(jnp.float32) * max_ratio if max_length is None else float(max_length)
    width = (top * u_len).astype(jnp.int32)
    width = jnp.minimum(width, jnp.maximum((max_ratio * cr).astype(jnp.int32), 1))
    start = (u_start * (cr - width + 1)).astype(jnp.int32)
    end = start + width - 1
    pos = jnp.arange(size)[None, None]
    inside = (pos > start[..., None] - 0.1) & (pos < end[..., None] + 0.1)
    return 1.0 - jnp.any(inside, axis=1).astype(jnp.float32)


def masks(
    uniforms: tuple[jax.Array, jax.Array, jax.Array, jax.Array],
    paddings: jax.Array,
    num_bins: int,
) -> tuple[jax.Array, jax.Array]:
    """Time (B, T) and frequency (B, num_bins) masks from draws (time len, time start, freq
    len, freq start), each (B, count)."""
    t_len, t_start, f_len, f_start = uniforms
    b, t = paddings.shape
    lengths = jnp.sum(1.0 - paddings, axis=1).astype(jnp.int32)
    time = _mask(t_len, t_start, lengths, t, None, TIME_MASK_MAX_RATIO)
    bins = jnp.full((b,), num_bins, jnp.int32)
    freq = _mask(f_len, f_start, bins, num_bins, FREQ_MASK_MAX_BINS, 1.0)
    return time, freq


def spec_augment(
    rng: jax.Array, features: jax.Array, paddings: jax.Array, freq_count: int, time_count: int
) -> jax.Array:
    """Masked (B, T, F) features (zero where masked)."""
    b, _, f = features.shape
    keys = jax.random.split(rng, 4)
    counts = (time_count, time_count, freq_count, freq_count)
    draws = tuple(jax.random.uniform(k, (b, c)) for k, c in zip(keys, counts, strict=True))
    time, freq = masks(draws, paddings, f)
    return features * time[:, :, None] * freq[:, None, :]
