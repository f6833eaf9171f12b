"""JAX vs PyTorch parity of the wmt Transformer on identical weights and batches (fp32, CPU).

For every variant's switches (pre/post-LN, attention temperature, ReLU or tanh GLU) on a tiny
size (vocab 61, width 32, 4 heads, 2+2 layers, MLP 48 so the GLU gate's input and output widths
differ), the PyTorch model gets random weights (every tensor random, LayerNorm scales and biases
included), the parameter map copies them into flax, and the same batches go through both:

* eval mode on a padded batch (padding id 0 in sources and targets) and on a packed batch
  (two segments per row with their own positions): logits agree, and so do the masked token
  cross-entropy sums of the project's two loss functions;
* train mode at dropout rate 0, the rate a traced value under ``jax.jit`` (the mask path runs):
  logits agree with eval mode in both frameworks, and the loss gradients of every parameter agree;
* train mode at rate 0.5: each framework drops (logits change); masks are each framework's own
  draws, so they are not compared.

Tolerances (logits are O(1)-O(10)): 1e-4 absolute on logits (seen about 2e-6), 1e-4 relative on
the loss sum, gradients 1e-4 of the largest entry of their tensor. Only ``wmt``'s eval and
gradient checks run by default (about 35 s on 2 loaded cores, mostly XLA compiles); the other
three variants and the rate-0.5 check (another compile) are marked slow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from algoperf.frameworks import losses_jax, losses_pytorch
from algoperf.registry import get_config
from workloads.wmt import model_jax, model_pytorch, param_map

TINY = {"vocab_size": 61, "emb_dim": 32, "num_heads": 4, "num_layers": 2, "mlp_dim": 48}
TINY["max_len"] = 24
VARIANTS = ["wmt", "wmt_post_ln", "wmt_attention_temp", "wmt_glu_tanh"]
ATOL = 1e-4
GRAD_RTOL = 1e-4


def random_state_dict(model: torch.nn.Module, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for key, value in model.state_dict().items():
        shape = tuple(value.shape)
        if len(shape) == 2:
            x = rng.standard_normal(shape) / np.sqrt(shape[1])
        elif "norm" in key and key.endswith("weight"):
            x = 1.0 + 0.2 * rng.standard_normal(shape)
        else:
            x = 0.1 * rng.standard_normal(shape)
        out[key] = x.astype(np.float32)
    return out


def padded_batch(rng: np.random.Generator) -> dict[str, np.ndarray]:
    src = rng.integers(1, TINY["vocab_size"], (3, 14))
    tgt = rng.integers(1, TINY["vocab_size"], (3, 11))
    src[0, 9:], src[2, 12:], tgt[1, 5:], tgt[2, 10:] = 0, 0, 0, 0
    return {"inputs": src, "targets": tgt}


def packed_batch(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Two rows, each two packed examples (segments 1, 2) and trailing padding (segment 0)."""
    out = {k: np.zeros((2, 16), np.int64) for k in ("inputs", "targets")}
    for k in ("inputs", "targets"):
        out[f"{k}_positions"] = np.zeros((2, 16), np.int64)
        out[f"{k}_segmentation"] = np.zeros((2, 16), np.int64)
    for row, (a, b, c, d) in enumerate([(5, 7, 6, 4), (9, 4, 3, 8)]):
        for key, (n1, n2) in (("inputs", (a, b)), ("targets", (c, d))):
            out[key][row, : n1 + n2] = rng.integers(1, TINY["vocab_size"], n1 + n2)
            out[f"{key}_positions"][row, : n1 + n2] = np.r_[np.arange(n1), np.arange(n2)]
            out[f"{key}_segmentation"][row, : n1 + n2] = np.r_[np.ones(n1), np.full(n2, 2)]
    return out


def _kwargs(batch: dict[str, np.ndarray], convert) -> dict:
    return {k: convert(v) for k, v in batch.items() if k not in ("inputs", "targets")}


_JITTED: dict[int, object] = {}


def _jax_logits(model, params, batch, train=False, rate=0.0, rng=None):
    apply = _JITTED.setdefault(id(model), jax.jit(model.apply, static_argnames="train"))
    return apply(
        {"params": params},
        jnp.asarray(batch["inputs"]),
        jnp.asarray(batch["targets"]),
        **_kwargs(batch, jnp.asarray),
        train=train,
        dropout_rate=rate,
        rngs=None if rng is None else {"dropout": rng},
    )


def _torch_logits(model, batch, rate=0.0):
    return model(
        torch.from_numpy(batch["inputs"]),
        torch.from_numpy(batch["targets"]),
        **_kwargs(batch, torch.from_numpy),
        dropout_rate=rate,
    )


@pytest.fixture(
    scope="module",
    params=[pytest.param(n, id=n, marks=() if n == "wmt" else pytest.mark.slow) for n in VARIANTS],
)
def case(request):
    options = {**get_config(request.param).model, **TINY}
    torch.manual_seed(0)
    pt = model_pytorch.build_model(options)
    state = random_state_dict(pt, seed=1)
    pt.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    params = jax.tree.map(jnp.asarray, param_map.pytorch_to_jax_params(state, options))
    return model_jax.build_model(options), params, pt, options


@pytest.mark.parametrize("make_batch", [padded_batch, packed_batch])
def test_eval_logits_and_loss_agree(case, make_batch):
    jm, params, pt, _ = case
    batch = make_batch(np.random.default_rng(2))
    pt.eval()
    lj = np.asarray(_jax_logits(jm, params, batch))
    with torch.no_grad():
        lt = _torch_logits(pt, batch).numpy()
    assert lj.shape == (*batch["targets"].shape, TINY["vocab_size"])
    np.testing.assert_allclose(lj, lt, atol=ATOL, rtol=0)
    mask = batch["targets"] > 0
    loss_j = losses_jax.softmax_cross_entropy(
        jnp.asarray(batch["targets"]), jnp.asarray(lj), jnp.asarray(mask)
    )
    loss_t = losses_pytorch.softmax_cross_entropy(
        torch.from_numpy(batch["targets"]), torch.from_numpy(lt), torch.from_numpy(mask)
    )
    np.testing.assert_allclose(
        float(loss_j["summed"]), float(loss_t["summed"]), rtol=GRAD_RTOL, atol=0
    )
    assert float(loss_t["summed"]) > 0


def test_train_mode_at_rate_zero_agrees_with_gradients(case):
    jm, params, pt, options = case
    batch = padded_batch(np.random.default_rng(3))
    mask = batch["targets"] > 0

    @jax.jit
    def jax_loss(p, rate):
        logits = _jax_logits(jm, p, batch, True, rate, jax.random.PRNGKey(0))
        out = losses_jax.softmax_cross_entropy(
            jnp.asarray(batch["targets"]), logits, jnp.asarray(mask)
        )
        return out["summed"], logits

    (_, lj), grads = jax.value_and_grad(jax_loss, has_aux=True)(params, 0.0)
    pt.train()
    pt.zero_grad()
    lt = _torch_logits(pt, batch, rate=0.0)
    losses_pytorch.softmax_cross_entropy(
        torch.from_numpy(batch["targets"]), lt, torch.from_numpy(mask)
    )["summed"].backward()
    np.testing.assert_allclose(np.asarray(lj), lt.detach().numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(
        np.asarray(lj), np.asarray(_jax_logits(jm, params, batch)), atol=1e-6, rtol=0
    )
    torch_grads = {k: v.grad.numpy() for k, v in pt.named_parameters()}
    mapped = param_map.pytorch_to_jax_params(torch_grads, options)
    flat_j = dict(jax.tree_util.tree_leaves_with_path(grads))
    flat_t = dict(jax.tree_util.tree_leaves_with_path(mapped))
    assert flat_j.keys() == flat_t.keys()
    for path, gj in flat_j.items():
        gt, gj = flat_t[path], np.asarray(gj)
        scale = max(np.abs(gt).max(), 1e-12)
        assert np.abs(gj - gt).max() <= GRAD_RTOL * scale, jax.tree_util.keystr(path)


@pytest.mark.slow
def test_dropout_changes_train_logits_only(case):
    jm, params, pt, _ = case
    batch = padded_batch(np.random.default_rng(4))
    eval_j = np.asarray(_jax_logits(jm, params, batch))
    drop_j = np.asarray(_jax_logits(jm, params, batch, True, 0.5, jax.random.PRNGKey(1)))
    assert np.abs(drop_j - eval_j).max() > 1e-2
    pt.eval()
    with torch.no_grad():
        eval_t = _torch_logits(pt, batch, rate=0.5).numpy()
        pt.train()
        drop_t = _torch_logits(pt, batch, rate=0.5).numpy()
    np.testing.assert_allclose(eval_t, eval_j, atol=ATOL, rtol=0)
    assert np.abs(drop_t - eval_t).max() > 1e-2
