"""JAX vs PyTorch parity of the ogbg GNN on identical weights and batches (fp32, CPU).

For every variant (ogbg, _gelu, _silu, _model_size) the PyTorch model gets random weights (every
tensor random, LayerNorm scales and biases included, so no layer is an identity), the parameter
map copies them into flax, and the same two-shard batch of random molecule-like graphs (global
node indices across shards, padding graphs, NaN labels masked) goes through both workloads'
`model_fn` and `loss_fn`:

* eval mode: logits and the masked per-label loss agree;
* train mode at dropout rate 0, passed as a traced value in JAX (the dropout mask path runs,
  keeping everything): logits, the summed loss and every parameter's gradient agree;
* train mode at rate 0.5: each framework drops (outputs differ from eval) and eval mode ignores
  the rate; the masks are each framework's own random draws, so they are not compared.

Tolerances (logits are O(1)-O(10)): logits and per-label loss 1e-4 absolute (seen up to 9e-6);
gradients 1e-4 of the largest gradient entry of their tensor (seen up to 3e-6). ogbg and
ogbg_model_size run by default (about 10 s each on 2 cores); _gelu and _silu, which differ from
ogbg only in the activation, are marked slow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from algoperf import spec
from algoperf.registry import get_config
from workloads.ogbg import data, param_map
from workloads.ogbg.workload_jax import OgbgWorkload as JaxOgbg
from workloads.ogbg.workload_pytorch import OgbgWorkload as TorchOgbg

VARIANTS = ["ogbg", "ogbg_gelu", "ogbg_silu", "ogbg_model_size"]
_SLOW = {"ogbg_gelu", "ogbg_silu"}
ATOL = 1e-4
GRAD_RTOL = 1e-4
TRAIN, EVAL = spec.ForwardPassMode.TRAIN, spec.ForwardPassMode.EVAL


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


def two_shard_batch(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    graphs = data.random_graphs(rng, 10, max_nodes=20)
    budget = data.Budget(6)
    shards = [data.gather_shard(graphs, ids, budget) for ids in (np.arange(5), np.arange(5, 10))]
    return data.concat_shards(shards)


@pytest.fixture(
    scope="module",
    params=[pytest.param(n, id=n, marks=pytest.mark.slow if n in _SLOW else ()) for n in VARIANTS],
)
def case(request):
    name = request.param
    config = get_config(name)
    jw, tw = JaxOgbg(config=config), TorchOgbg(config=config)
    torch.manual_seed(0)
    model, _ = tw.init_model_fn(np.array([0, 0], np.uint32))
    jw.init_model_fn(jax.random.PRNGKey(0))  # builds the flax module
    state = random_state_dict(model, seed=1)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    params = jax.tree.map(jnp.asarray, param_map.pytorch_to_jax_params(state, config.model))
    batch = two_shard_batch(seed=2)
    return name, jw, tw, params, model, batch


def _pt(tw, model, batch, mode, rate):
    dev = tw._to_device(batch)
    logits, _ = tw.model_fn(model, dev, None, mode, None, False, rate)
    loss = tw.loss_fn(dev["targets"], logits, dev["weights"])
    return logits, loss


def _jax(jw, params, batch, mode, rate, seed=3):
    rng = jax.random.PRNGKey(seed)
    dev = jw._to_device(batch)
    logits, _ = jw.model_fn(params, dev, None, mode, rng, False, rate)
    return logits, jw.loss_fn(dev["targets"], logits, dev["weights"])


def test_eval_logits_and_loss_agree(case):
    _, jw, tw, params, model, batch = case
    pt_logits, pt_loss = _pt(tw, model, batch, EVAL, 0.1)
    j_logits, j_loss = _jax(jw, params, batch, EVAL, 0.1)
    assert np.abs(j_logits).max() > 0.1
    np.testing.assert_allclose(np.asarray(j_logits), pt_logits.numpy(), atol=ATOL)
    np.testing.assert_allclose(
        np.asarray(j_loss["per_example"]), pt_loss["per_example"].numpy(), atol=ATOL
    )
    assert float(j_loss["n_valid_examples"]) == float(pt_loss["n_valid_examples"])
    assert float(j_loss["n_valid_examples"]) == batch["weights"].sum() > 0


def test_train_mode_logits_loss_and_gradients_agree(case):
    name, jw, tw, params, model, batch = case
    model.zero_grad()
    pt_logits, pt_loss = _pt(tw, model, batch, TRAIN, 0.0)
    pt_loss["summed"].backward()
    pt_grads = {k: p.grad.numpy() for k, p in model.named_parameters()}

    def loss(p, rate):
        logits, out = _jax(jw, p, batch, TRAIN, rate)
        return out["summed"], logits

    (j_loss, j_logits), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(
        params, jnp.float32(0.0)
    )
    np.testing.assert_allclose(np.asarray(j_logits), pt_logits.detach().numpy(), atol=ATOL)
    assert float(j_loss) == pytest.approx(float(pt_loss["summed"].detach()), rel=1e-5)
    mapped = param_map.pytorch_to_jax_params(pt_grads, get_config(name).model)
    flat_j = jax.tree_util.tree_leaves_with_path(grads)
    assert len(flat_j) == len(pt_grads)
    for path, g in flat_j:
        ref = mapped
        for key in path:
            ref = ref[key.key]
        scale = max(np.abs(ref).max(), 1e-6)
        np.testing.assert_allclose(np.asarray(g), ref, atol=GRAD_RTOL * scale, err_msg=str(path))


def test_dropout_acts_in_train_mode_only(case):
    _, jw, tw, params, model, batch = case
    pt_eval, _ = _pt(tw, model, batch, EVAL, 0.5)
    pt_train, _ = _pt(tw, model, batch, TRAIN, 0.5)
    j_eval, _ = _jax(jw, params, batch, EVAL, 0.5)
    j_train, _ = _jax(jw, params, batch, TRAIN, 0.5)
    j_again, _ = _jax(jw, params, batch, TRAIN, 0.5)
    j_other, _ = _jax(jw, params, batch, TRAIN, 0.5, seed=4)
    assert np.abs(pt_train.detach().numpy() - pt_eval.numpy()).max() > 1e-2
    assert np.abs(np.asarray(j_train) - np.asarray(j_eval)).max() > 1e-2
    np.testing.assert_array_equal(np.asarray(j_train), np.asarray(j_again))  # rng decides
    assert np.abs(np.asarray(j_train) - np.asarray(j_other)).max() > 1e-3
