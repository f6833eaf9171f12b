"""fastMRI's SSIM as upstream computes it, written once for numpy, JAX and PyTorch arrays.

Upstream (both frameworks) de-normalises prediction and target with the slice's stored mean and
std, and computes per slice ``skimage.metrics.structural_similarity`` with its defaults for
``win_size=7``: a 7x7 uniform window over symmetrically padded images (``scipy.ndimage``'s
``reflect`` mode), K1 = 0.01, K2 = 0.03, the sample-covariance factor 49/48, the data range =
the volume's maximum (0, i.e. a padding row, becomes 1), and the mean of the SSIM map without a
3-pixel border; the result is clipped to [-1, 1]. The split's metric is the mean over slices
(not over volumes).

`ssim_per_example` uses only operators, slicing, integer-array indexing, ``reshape``, ``mean``
and ``clip``, which numpy arrays, JAX arrays and torch tensors share, so the one definition runs
on the device in both frameworks (float32 there) and in float64 numpy in the tests, where it is
checked against scikit-image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

WIN_SIZE = 7
K1 = 0.01
K2 = 0.03


def _symmetric_index(n: int, pad: int) -> list[int]:
    """Indices that pad an axis of length `n` by `pad` on each side, edge values repeated."""
    return [*range(pad - 1, -1, -1), *range(n), *range(n - 1, n - 1 - pad, -1)]


def uniform_filter(images: Any, size: int = WIN_SIZE) -> Any:
    """Mean over a ``size`` x ``size`` window of (B, H, W) images, symmetric padding."""
    _, h, w = images.shape
    pad = size // 2
    rows = images[:, _symmetric_index(h, pad), :]
    acc = rows[:, 0:h, :]
    for k in range(1, size):
        acc = acc + rows[:, k : k + h, :]
    cols = acc[:, :, _symmetric_index(w, pad)]
    out = cols[:, :, 0:w]
    for k in range(1, size):
        out = out + cols[:, :, k : k + w]
    return out / (size * size)


def structural_similarity(im1: Any, im2: Any, data_range: Any, size: int = WIN_SIZE) -> Any:
    """Per-image mean SSIM of (B, H, W) batches; `data_range` is (B,)."""
    num_points = size**2
    cov_norm = num_points / (num_points - 1)
    ux, uy = uniform_filter(im1, size), uniform_filter(im2, size)
    uxx, uyy = uniform_filter(im1 * im1, size), uniform_filter(im2 * im2, size)
    uxy = uniform_filter(im1 * im2, size)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    dr = data_range.reshape(-1, 1, 1)
    c1 = (K1 * dr) ** 2
    c2 = (K2 * dr) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (size - 1) // 2
    crop = s[:, pad:-pad, pad:-pad]
    return crop.reshape(crop.shape[0], -1).mean(-1)


def ssim_per_example(predictions: Any, targets: Any, mean: Any, std: Any, volume_max: Any) -> Any:
    """Upstream's per-slice SSIM of normalised (B, H, W) predictions against targets."""
    m = mean.reshape(-1, 1, 1)
    s = std.reshape(-1, 1, 1)
    data_range = volume_max + (volume_max == 0)  # padding rows have max 0: use 1
    ssim = structural_similarity(predictions * s + m, targets * s + m, data_range)
    return ssim.clip(-1, 1)


def reference_ssim(
    predictions: np.ndarray,
    targets: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    volume_max: np.ndarray,
) -> np.ndarray:
    """`ssim_per_example` in float64 numpy (the oracle the tests compare the devices against)."""
    f64 = [np.asarray(x, np.float64) for x in (predictions, targets, mean, std, volume_max)]
    return ssim_per_example(*f64)
