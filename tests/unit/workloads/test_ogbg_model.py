"""ogbg GNN: parameter counts, upstream's layer names and shapes, init, loss, padding invariance."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from algoperf import spec
from algoperf.registry import get_config
from workloads.ogbg import data, model_jax, model_pytorch, param_map
from workloads.ogbg.workload_jax import OgbgWorkload as JaxOgbg
from workloads.ogbg.workload_pytorch import OgbgWorkload as TorchOgbg
from workloads.ogbg.workload_pytorch import rank_shard

COUNTS = {"ogbg": 3_554_176, "ogbg_gelu": 3_554_176, "ogbg_silu": 3_554_176}
COUNTS["ogbg_model_size"] = 2_571_648


def _jax_params(name: str):
    model = model_jax.build_model(get_config(name).model)
    return jax.eval_shape(lambda r: model_jax.init(model, r), jax.random.PRNGKey(0))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_trainable_parameter_counts_are_upstreams(name):
    shapes = _jax_params(name)
    assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes)) == COUNTS[name]
    with torch.device("meta"):
        pt = model_pytorch.build_model(get_config(name).model)
    assert sum(p.numel() for p in pt.parameters() if p.requires_grad) == COUNTS[name]


@pytest.mark.parametrize(("name", "dense", "first", "later"), [
    ("ogbg", 16, (896, 896, 640), (1024, 1024, 768)),
    ("ogbg_model_size", 19, (512, 768, 640), (1024, 1024, 768)),
])  # fmt: skip
def test_flax_names_and_input_widths_are_upstreams(name, dense, first, later):
    """Dense_0.. in creation order (edge, node, global MLP per step), decoder last."""
    params = _jax_params(name)
    layout = param_map.gnn_layout(get_config(name).model)
    hidden = len(layout.hidden_dims)
    assert set(params) == {
        "node_embedding",
        "edge_embedding",
        *(f"Dense_{k}" for k in range(dense)),
        *(f"LayerNorm_{k}" for k in range(dense - 1)),
    }
    assert param_map.output_dense(layout) == f"Dense_{dense - 1}"
    assert params[f"Dense_{dense - 1}"]["kernel"].shape == (layout.hidden_dims[-1], 128)
    for step, widths in ((0, first), (1, later)):
        for fn, width in enumerate(widths):
            k = (3 * step + fn) * hidden
            assert params[f"Dense_{k}"]["kernel"].shape[0] == width
    assert params["node_embedding"]["kernel"].shape == (9, layout.latent_dim)


def test_pytorch_names_are_upstreams():
    with torch.device("meta"):
        pt = model_pytorch.build_model(get_config("ogbg").model)
    keys = set(pt.state_dict())
    for key in (
        "node_embedder.weight",
        "edge_embedder.bias",
        "graph_network.0.update_edge_fn.dense_0.weight",
        "graph_network.4.update_global_fn.norm_0.bias",
        "decoder.weight",
    ):
        assert key in keys
    # The map covers every tensor both ways.
    rules = param_map.rules(param_map.gnn_layout(get_config("ogbg").model))
    assert {r.pt for r in rules} == keys


def test_init_is_lecun_normal_with_zero_biases_in_both_frameworks():
    params = model_jax.init(model_jax.build_model(get_config("ogbg").model), jax.random.PRNGKey(1))
    kernel = np.asarray(params["Dense_3"]["kernel"])  # fan_in 1024
    assert kernel.std() == pytest.approx(1 / np.sqrt(1024), rel=0.05)
    assert not np.asarray(params["Dense_3"]["bias"]).any()
    np.testing.assert_array_equal(params["LayerNorm_3"]["scale"], 1.0)
    torch.manual_seed(1)
    pt = model_pytorch.build_model(get_config("ogbg").model)
    w = pt.graph_network[1].update_edge_fn.dense_0.weight.detach().numpy()
    assert w.std() == pytest.approx(1 / np.sqrt(1024), rel=0.05)
    # Truncated at two (corrected) standard deviations, as upstream's pytorch_default_init.
    assert np.abs(w).max() <= 2 / np.sqrt(1024) / 0.87962566103423978 + 1e-6
    assert not pt.decoder.bias.detach().numpy().any()


def test_unknown_model_options_name_the_spec():
    with pytest.raises(ValueError, match=r"workloads/ogbg/spec.py.*'swish'"):
        param_map.gnn_layout({"activation": "swish"})
    with pytest.raises(ValueError, match=r"unknown ogbg model option.*'width'"):
        param_map.gnn_layout({"width": 3})


# Loss --------------------------------------------------------------------------------------------


def jax_bce(*args):
    return JaxOgbg(config=get_config("ogbg")).loss_fn(*args)


def torch_bce(*args):
    return TorchOgbg(config=get_config("ogbg")).loss_fn(*args)


def test_loss_is_the_sigmoid_one_though_upstream_declares_softmax():
    assert JaxOgbg(config=get_config("ogbg")).loss_type == spec.LossType.SOFTMAX_CROSS_ENTROPY


def _loss_inputs(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (6, 128)).astype(np.float32)
    labels = (rng.random((6, 128)) < 0.3).astype(np.float32)
    mask = (rng.random((6, 128)) < 0.5).astype(np.float32)
    return logits, labels * mask, mask


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_masked_sigmoid_cross_entropy_in_both_frameworks(smoothing):
    logits, labels, mask = _loss_inputs()
    z = (1 - smoothing) * labels + smoothing / 128
    expected = (np.maximum(logits, 0) - logits * z + np.log1p(np.exp(-np.abs(logits)))) * mask
    j = jax_bce(jnp.asarray(labels), jnp.asarray(logits), jnp.asarray(mask), smoothing)
    t = torch_bce(
        torch.from_numpy(labels), torch.from_numpy(logits), torch.from_numpy(mask), smoothing
    )
    for out in (j, t):
        per = np.asarray(out["per_example"])
        np.testing.assert_allclose(per, expected, rtol=1e-5, atol=1e-6)
        assert float(out["summed"]) == pytest.approx(expected.sum(), rel=1e-5)
        assert float(out["n_valid_examples"]) == mask.sum()
        assert not per[mask == 0].any()


def test_unlabelled_entries_give_no_loss_and_no_gradient():
    logits, labels, mask = _loss_inputs(1)
    labels = np.where(
        mask > 0, labels, np.nan
    )  # what raw NaN labels would be without the batch's 0

    def summed(x):
        return jax_bce(jnp.nan_to_num(jnp.asarray(labels)), x, jnp.asarray(mask))["summed"]

    grad = np.asarray(jax.grad(summed)(jnp.asarray(logits)))
    assert np.isfinite(grad).all() and not grad[mask == 0].any()
    x = torch.from_numpy(logits).requires_grad_()
    torch_bce(torch.from_numpy(np.nan_to_num(labels)), x, torch.from_numpy(mask))[
        "summed"
    ].backward()
    assert np.isfinite(x.grad.numpy()).all() and not x.grad.numpy()[mask == 0].any()


def test_loss_shape_mismatch_is_refused():
    logits, labels, mask = _loss_inputs()
    with pytest.raises(ValueError, match="same"):
        jax_bce(jnp.asarray(labels[:, :5]), jnp.asarray(logits), jnp.asarray(mask))


# Graph semantics ---------------------------------------------------------------------------------


def _graphs(seed=0, n=6):
    return data.random_graphs(np.random.default_rng(seed), n, max_nodes=20)


@pytest.mark.parametrize("framework", ["jax", "pytorch"])
def test_a_graphs_logits_do_not_depend_on_its_batch(framework):
    """Padding and other graphs are computation preserving: each graph alone = in a batch.

    (A narrow two-step GNN: the same code as the registered ones, cheaper to compile.)"""
    config = get_config("ogbg_model_size").variant(
        "ogbg_model_size",
        model={"latent_dim": 32, "hidden_dims": (48, 32), "num_message_passing_steps": 2},
    )
    workload = (JaxOgbg if framework == "jax" else TorchOgbg)(config=config)
    rng = jax.random.PRNGKey(0) if framework == "jax" else np.array([0, 0], np.uint32)
    params, _ = workload.init_model_fn(rng)
    graphs = _graphs()
    forward = workload.model_fn
    if framework == "jax":
        forward = jax.jit(workload.model_fn, static_argnums=(3, 5))

    def logits(ids, budget):
        batch = workload._to_device(data.gather_shard(graphs, np.array(ids), budget))
        out, _ = forward(params, batch, None, spec.ForwardPassMode.EVAL, rng, False)
        return np.asarray(out)[: len(ids)]

    together = logits(range(6), data.Budget(8))
    for g in range(6):
        np.testing.assert_allclose(logits([g], data.Budget(2))[0], together[g], atol=2e-5)


def test_pytorch_rank_shards_have_local_indices():
    graphs = _graphs(n=8)
    budget = data.Budget(4)
    shards = [data.gather_shard(graphs, ids, budget) for ids in (np.arange(4), np.arange(4, 8))]
    batch = data.concat_shards(shards)
    for rank, shard in enumerate(shards):
        local = rank_shard(batch, rank, 2)
        for key in shard:
            np.testing.assert_array_equal(local[key], shard[key])


def test_output_params_and_model_state():
    for cls, key in ((JaxOgbg, "Dense_15"), (TorchOgbg, "decoder.weight")):
        workload = cls(config=get_config("ogbg"))
        assert workload.is_output_params(key)
        assert not workload.is_output_params("Dense_0")
    assert JaxOgbg(config=get_config("ogbg_model_size")).is_output_params("Dense_18")
    for cls in (JaxOgbg, TorchOgbg):
        workload = cls(config=get_config("ogbg"))
        batch = workload._to_device(data.synthetic_batch(workload.config, 4, 0))
        with pytest.raises(ValueError, match="no model state"):
            workload.model_fn(None, batch, {}, spec.ForwardPassMode.EVAL, None, False)
