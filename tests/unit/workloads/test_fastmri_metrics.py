"""fastMRI: SSIM as upstream against scikit-image on real MRI images, MAE, parameter counts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from algoperf.registry import get_config
from workloads.fastmri import data, metrics, model_jax, model_pytorch

COUNTS = {
    "fastmri": 7_756_097,
    "fastmri_model_size": 7_692_929,
    "fastmri_tanh": 7_756_097,
    "fastmri_layernorm": 7_761_985,
}


def _pairs(n: int, seed: int):
    """(prediction, target) pairs from the real MRI slice: noisy, blurred and shifted copies."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    target = data.mri_slice() * 3e-4
    preds = [target + rng.normal(0, s, target.shape) for s in rng.uniform(5e-6, 5e-5, n - 2)] + [
        ndimage.uniform_filter(target, 5),
        np.roll(target, 3, axis=1),
    ]
    return np.stack(preds), np.stack([target] * n)


def test_ssim_matches_scikit_image_on_a_real_mri_slice():
    preds, targets = _pairs(6, 0)
    mean = targets.reshape(len(targets), -1).mean(1)
    std = targets.reshape(len(targets), -1).std(1)
    vmax = np.full(len(targets), targets.max() * 1.1)  # a volume max above the slice max
    norm = lambda x: (x - mean[:, None, None]) / std[:, None, None]  # noqa: E731
    ours = metrics.reference_ssim(norm(preds), norm(targets), mean, std, vmax)
    expected = [
        structural_similarity(
            p, t, data_range=v, win_size=7, gaussian_weights=False, use_sample_covariance=True
        )
        for p, t, v in zip(preds, targets, vmax)
    ]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
    assert len(set(np.round(expected, 6))) == len(expected)  # the cases really differ
    # float32 on the devices: the same definition in JAX and PyTorch.
    args32 = [np.asarray(a, np.float32) for a in (norm(preds), norm(targets), mean, std, vmax)]
    j = metrics.ssim_per_example(*map(jnp.asarray, args32))
    t = metrics.ssim_per_example(*map(torch.from_numpy, args32))
    np.testing.assert_allclose(np.asarray(j), expected, atol=2e-5)
    np.testing.assert_allclose(t.numpy(), expected, atol=2e-5)


def test_ssim_padding_rows_and_clipping():
    z = np.zeros((1, 16, 16))
    # A padding row (all zeros, volume max 0) is finite: data range 1, SSIM 1.
    assert metrics.reference_ssim(z, z, np.zeros(1), np.zeros(1), np.zeros(1))[0] == 1.0
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 16, 16))
    s = metrics.reference_ssim(5 + a, 5 - a + 0.01 * b, np.zeros(3), np.ones(3), np.full(3, 1e-3))
    assert (s >= -1).all() and (s <= 1).all() and (s < 0).all()


def test_workload_loss_is_the_per_slice_mae():
    """The workloads' loss_fn (LossType.MEAN_ABSOLUTE_ERROR) is upstream's per-slice mean L1."""
    from algoperf.registry import get_workload

    rng = np.random.default_rng(1)
    p, t = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    expected = np.abs(p - t).mean(axis=(1, 2))
    workload = get_workload("fastmri", "pytorch")
    out = workload.loss_fn(torch.from_numpy(t), torch.from_numpy(p), torch.tensor([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(out["per_example"].numpy(), expected * [1, 1, 0], rtol=1e-6)
    assert float(out["n_valid_examples"]) == 2.0
    np.testing.assert_allclose(float(out["summed"]), expected[:2].sum(), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_counts_are_upstreams(name):
    options = get_config(name).model
    flax_model = model_jax.build_model(options)
    shapes = jax.eval_shape(lambda r: model_jax.init(flax_model, r), jax.random.key(0))
    assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes)) == COUNTS[name]
    with torch.device("meta"):
        torch_model = model_pytorch.build_model(options)
    assert sum(p.numel() for p in torch_model.parameters()) == COUNTS[name]


def test_unknown_model_option_is_a_clear_error():
    with pytest.raises(ValueError, match=r"workloads/fastmri/spec\.py: unknown fastMRI model"):
        model_pytorch.build_model({"num_chanels": 3})
