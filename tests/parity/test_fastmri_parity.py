"""JAX vs PyTorch parity of the fastMRI U-Nets on identical weights and batches (fp32, CPU).

For every variant (fastmri, _model_size, _tanh, _layernorm) the flax model is initialised, its
kernels made random (LayerNorm scales and biases too, so none is trivially 1 or 0), the
parameter map (with its transposed-conv kernel flip) copies them into the PyTorch model, and a
batch of 2 images of 64 x 40 goes through both (40 is not a multiple of 16, so the 4-pool
decoder's reflect padding runs), in EVAL mode and in TRAIN mode with dropout rate 0 (the
traced-rate dropout path): outputs, per-slice MAE loss and per-slice SSIM agree.

Tolerances (outputs are O(1)): outputs 5e-5 absolute (seen about 1e-5: instance norm's one-pass
variance in JAX vs two-pass in PyTorch, and the conv libraries' rounding); MAE 1e-5; SSIM 1e-4.
A model whose kernels are mis-mapped (e.g. the transposed conv without the flip) differs by O(1).
The base workload runs by default (a few seconds); the variants are marked slow.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from algoperf.frameworks import losses_jax, losses_pytorch
from algoperf.registry import get_config
from workloads.fastmri import metrics, model_jax, model_pytorch, param_map

OUT_ATOL = 5e-5
LOSS_ATOL = 1e-5
SSIM_ATOL = 1e-4
SHAPE = (2, 64, 40)

CASES = [pytest.param("fastmri", id="fastmri")] + [
    pytest.param(name, id=name, marks=pytest.mark.slow)
    for name in ("fastmri_model_size", "fastmri_tanh", "fastmri_layernorm")
]


def _randomised(params, seed: int):
    rng = np.random.default_rng(seed)

    def leaf(x):
        if len(x.shape) >= 2:
            fan_in = int(np.prod(x.shape[:-1]))
            return (rng.standard_normal(x.shape) / np.sqrt(fan_in)).astype(np.float32)
        return (1.0 + 0.2 * rng.standard_normal(x.shape)).astype(np.float32)

    return jax.tree.map(leaf, params)


def _batch(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "inputs": rng.standard_normal(SHAPE).astype(np.float32),
        "targets": rng.standard_normal(SHAPE).astype(np.float32),
        "mean": rng.uniform(1e-5, 5e-5, SHAPE[0]).astype(np.float32),
        "std": rng.uniform(1e-5, 5e-5, SHAPE[0]).astype(np.float32),
        "volume_max": rng.uniform(2e-4, 4e-4, SHAPE[0]).astype(np.float32),
    }


def _both(name: str, train: bool, flip: bool = True):
    options = get_config(name).model
    flax_model = model_jax.build_model(options)
    shapes = jax.eval_shape(lambda r: model_jax.init(flax_model, r, SHAPE[1:]), jax.random.key(0))
    params = _randomised(shapes, 1)
    sd = param_map.jax_to_pytorch(params, options)
    if not flip:  # what a map without the transposed-conv flip would load
        for key in sd:
            if "up_transpose_conv" in key:
                sd[key] = np.ascontiguousarray(sd[key][:, :, ::-1, ::-1])
    torch_model = model_pytorch.build_model(options)
    torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    b = _batch(2)
    rngs = {"dropout": jax.random.PRNGKey(3)} if train else {}
    out_j = np.asarray(
        flax_model.apply({"params": params}, b["inputs"], train=train, dropout_rate=0.0, rngs=rngs)
    )
    torch_model.train(train)
    with torch.set_grad_enabled(train):
        out_t = torch_model(torch.from_numpy(b["inputs"]), dropout_rate=0.0).detach().numpy()
    return out_j, out_t, b


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_outputs_loss_and_ssim_agree(name, train):
    out_j, out_t, b = _both(name, train)
    assert out_j.shape == out_t.shape == SHAPE
    np.testing.assert_allclose(out_j, out_t, atol=OUT_ATOL, rtol=0)
    mae_j = losses_jax.mean_absolute_error(jax.numpy.asarray(b["targets"]), out_j)["per_example"]
    mae_t = losses_pytorch.mean_absolute_error(
        torch.from_numpy(b["targets"]), torch.from_numpy(out_t)
    )["per_example"]
    np.testing.assert_allclose(mae_j, mae_t.numpy(), atol=LOSS_ATOL, rtol=0)
    args = [b[k] for k in ("targets", "mean", "std", "volume_max")]
    ssim_j = np.asarray(
        metrics.ssim_per_example(jax.numpy.asarray(out_j), *map(jax.numpy.asarray, args))
    )
    ssim_t = metrics.ssim_per_example(torch.from_numpy(out_t), *map(torch.from_numpy, args)).numpy()
    np.testing.assert_allclose(ssim_j, ssim_t, atol=SSIM_ATOL, rtol=0)


def test_the_transposed_conv_flip_matters():
    out_j, out_t, _ = _both("fastmri", train=False, flip=False)
    assert np.abs(out_j - out_t).max() > 100 * OUT_ATOL


@pytest.mark.parametrize("name", ["fastmri", "fastmri_model_size", "fastmri_layernorm"])
def test_map_round_trips(name):
    options = get_config(name).model
    torch_model = model_pytorch.build_model(options)
    sd = {k: v.numpy() for k, v in torch_model.state_dict().items()}
    back = param_map.jax_to_pytorch(param_map.pytorch_to_jax(sd, options), options)
    assert set(back) == set(sd)
    for key, value in sd.items():
        np.testing.assert_array_equal(back[key], value)
