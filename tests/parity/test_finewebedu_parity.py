"""JAX vs PyTorch parity of the finewebedu_lm decoder on identical weights and batches (CPU).

A tiny layout (vocab 61, width 32, 4 heads of 8, 2 layers, GLU hidden 48, sequence 16) in
float32 compute: the PyTorch model gets random weights (every tensor random: RMSNorm scales and
``attn_scale`` included), the parameter map copies them into flax, and the same token batch goes
through both. Logits agree, the project's two softmax cross-entropy losses on them agree, and the
loss gradients of every parameter agree. Also: the map round-trips, and in bfloat16 compute (the
benchmark's setting) both frameworks stay close to the float32 logits.

Tolerances (logits are O(1)-O(10)): 1e-4 absolute on float32 logits (seen about 1e-6), 1e-5
relative on the loss sum, gradients 1e-4 of the largest entry of their tensor; bfloat16 logits
within 0.15 of the float32 ones in each framework (bfloat16 keeps 8 mantissa bits).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from algoperf.frameworks import losses_jax, losses_pytorch
from algoperf.registry import get_config
from workloads.finewebedu_lm import model_jax, model_pytorch, param_map

TINY = {
    "vocab_size": 61,
    "model_dim": 32,
    "num_heads": 4,
    "num_layers": 2,
    "mlp_dim": 48,
    "multiple_of": 16,
    "seq_len": 16,
    "compute_dtype": "float32",
}
ATOL = 1e-4
LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-4
BF16_ATOL = 0.15


def random_state_dict(model: torch.nn.Module, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for key, value in model.state_dict().items():
        shape = tuple(value.shape)
        if len(shape) == 2:
            x = rng.standard_normal(shape) / np.sqrt(shape[1])
        elif key.endswith("norm.weight"):
            x = 1.0 + 0.2 * rng.standard_normal(shape)
        else:  # attn_scale
            x = 4.0 + rng.standard_normal(shape)
        out[key] = np.asarray(x, np.float32)
    return out


def _options(**changes) -> dict:
    return {**get_config("finewebedu_lm").model, **TINY, **changes}


@pytest.fixture(scope="module")
def case():
    options = _options()
    torch.manual_seed(0)
    pt = model_pytorch.build_model(options)
    state = random_state_dict(pt, seed=1)
    pt.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    params = jax.tree.map(jnp.asarray, param_map.pytorch_to_jax_params(state, options))
    return model_jax.build_model(options), params, pt, options, state


_JITTED: dict[int, object] = {}


def _jax_logits(model, params, ids: np.ndarray):
    """Jit-compiled forward pass (one compile per model)."""
    fn = _JITTED.setdefault(id(model), jax.jit(lambda p, x: model_jax.apply(model, p, x)))
    return fn(params, jnp.asarray(ids))


def _tokens(seed: int, shape=(3, 16)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, TINY["vocab_size"], shape).astype(np.int32)


def test_map_round_trips_and_covers_every_tensor(case):
    _, params, _, options, state = case
    back = param_map.jax_to_pytorch_params(jax.tree.map(np.asarray, params), options)
    assert back.keys() == state.keys()
    for key, value in state.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)
    shapes = jax.tree.map(lambda x: x.shape, model_jax.param_shapes(options))
    assert jax.tree.map(lambda x: x.shape, params) == shapes


def test_logits_loss_and_gradients_agree(case):
    jm, params, pt, options, _ = case
    ids, targets = _tokens(2), _tokens(3)
    weights = np.ones(targets.shape, np.float32)
    weights[2, 9:] = 0.0  # a padded tail, as the eval's padding rows

    def jax_loss(p):
        logits = model_jax.apply(jm, p, jnp.asarray(ids))
        out = losses_jax.softmax_cross_entropy(jnp.asarray(targets), logits, jnp.asarray(weights))
        return out["summed"], logits

    (sum_j, lj), grads = jax.jit(jax.value_and_grad(jax_loss, has_aux=True))(params)
    pt.zero_grad()
    lt = pt(torch.from_numpy(ids).long())
    out_t = losses_pytorch.softmax_cross_entropy(
        torch.from_numpy(targets).long(), lt, torch.from_numpy(weights)
    )
    out_t["summed"].backward()
    assert lj.shape == (*ids.shape, TINY["vocab_size"]) and lj.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(lj), lt.detach().numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(
        float(sum_j), float(out_t["summed"].detach()), rtol=LOSS_RTOL, atol=0
    )
    assert float(out_t["summed"].detach()) > 0

    torch_grads = {k: v.grad.numpy() for k, v in pt.named_parameters()}
    mapped = param_map.pytorch_to_jax_params(torch_grads, options)
    flat_j = dict(jax.tree_util.tree_leaves_with_path(grads))
    flat_t = dict(jax.tree_util.tree_leaves_with_path(mapped))
    assert flat_j.keys() == flat_t.keys()
    for path, gj in flat_j.items():
        gt, gj = flat_t[path], np.asarray(gj)
        scale = max(np.abs(gt).max(), 1e-12)
        assert scale > 1e-8, jax.tree_util.keystr(path)  # every parameter gets a gradient
        assert np.abs(gj - gt).max() <= GRAD_RTOL * scale, jax.tree_util.keystr(path)


def test_attention_is_causal(case):
    """Changing a later token changes no earlier position's logits (both frameworks)."""
    jm, params, pt, _, _ = case
    ids = _tokens(4, (1, 16))
    later = ids.copy()
    later[0, 10:] = (later[0, 10:] + 1) % TINY["vocab_size"]
    a, b = (np.asarray(_jax_logits(jm, params, x)) for x in (ids, later))
    np.testing.assert_array_equal(a[:, :10], b[:, :10])
    assert np.abs(a[:, 10:] - b[:, 10:]).max() > 1e-3
    with torch.no_grad():
        c, d = (pt(torch.from_numpy(x).long()).numpy() for x in (ids, later))
    np.testing.assert_allclose(c[:, :10], d[:, :10], atol=1e-6, rtol=0)


def test_bfloat16_compute_stays_close_to_float32(case):
    """The benchmark's compute dtype: bfloat16 activations, float32 parameters, both frameworks."""
    _, params, _, _, state = case
    bf = _options(compute_dtype="bfloat16")
    ids = _tokens(5)
    lj32 = np.asarray(_jax_logits(case[0], params, ids))
    lj = _jax_logits(model_jax.build_model(bf), params, ids)
    assert lj.dtype == jnp.bfloat16
    pt = model_pytorch.build_model(bf)
    pt.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    assert all(p.dtype == torch.float32 for p in pt.parameters())
    with torch.no_grad():
        lt = pt(torch.from_numpy(ids).long())
    assert lt.dtype == torch.bfloat16
    np.testing.assert_allclose(np.asarray(lj, np.float32), lj32, atol=BF16_ATOL, rtol=0)
    np.testing.assert_allclose(lt.float().numpy(), lj32, atol=BF16_ATOL, rtol=0)
