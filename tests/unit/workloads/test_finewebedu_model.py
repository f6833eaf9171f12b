"""finewebedu_lm decoder: shape-only parameter counts, upstream's names and widths, init, options."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
import torch

from algoperf import registry
from workloads.finewebedu_lm import model_jax, model_pytorch, param_map
from workloads.finewebedu_lm.spec import FAMILY, FINEWEBEDU_LM

FULL = FINEWEBEDU_LM.model
UPSTREAM_COUNT = 252_815_372
SMALL = {**FULL, "vocab_size": 97, "model_dim": 64, "num_heads": 4, "num_layers": 3}
SMALL.update(mlp_dim=100, seq_len=32, compute_dtype="float32")


def test_full_size_counts_are_upstreams_shape_only():
    """12 x 16,779,265 + tied embedding 51,463,168 + 1,024, in both frameworks, no memory."""
    shapes = model_jax.param_shapes(FULL)
    assert sum(math.prod(x.shape) for x in jax.tree.leaves(shapes)) == UPSTREAM_COUNT
    assert {str(x.dtype) for x in jax.tree.leaves(shapes)} == {"float32"}
    pt = model_pytorch.param_shapes(FULL)
    assert sum(math.prod(s) for s in pt.values()) == UPSTREAM_COUNT
    layout = param_map.lm_layout(FULL)
    assert param_map.param_count(layout) == UPSTREAM_COUNT == FAMILY.param_counts["finewebedu_lm"]
    block = shapes["blocks_0"]
    per_block = sum(math.prod(x.shape) for x in jax.tree.leaves(block))
    assert per_block == 16_779_265
    assert shapes["embed"]["embedding"].shape == (50_257, 1024)
    assert block["CausalAttn_0"]["query"]["kernel"].shape == (1024, 8, 128)
    assert block["Mlp_0"]["Dense_0"]["kernel"].shape == (1024, 8192)
    assert block["Mlp_0"]["Dense_1"]["kernel"].shape == (4096, 1024)
    assert block["CausalAttn_0"]["attn_scale"].shape == ()
    assert pt["layers.0.attn.w_qkv.weight"] == (3072, 1024)
    assert "lm_head.weight" not in pt  # tied: the embedding is the output layer


def test_untied_layout_adds_an_output_layer():
    untied = {**SMALL, "tie_embeddings": False}
    layout = param_map.lm_layout(untied)
    jax_count = sum(math.prod(x.shape) for x in jax.tree.leaves(model_jax.param_shapes(untied)))
    pt_count = sum(math.prod(s) for s in model_pytorch.param_shapes(untied).values())
    assert jax_count == pt_count == param_map.param_count(layout)
    assert jax_count - param_map.param_count(param_map.lm_layout(SMALL)) == 97 * 64


def test_registered_workload_declares_the_model_and_both_frameworks():
    config = registry.get_config("finewebedu_lm")
    assert dict(config.model) == dict(FULL)
    assert param_map.lm_layout(config.model).compute_dtype == "bfloat16"
    assert set(FAMILY.implementations) == {"jax", "pytorch"}


def test_glu_width_rounds_up_to_multiple_of():
    assert param_map.lm_layout(SMALL).hidden_dim == 256  # 100 -> 256 (multiple_of 256)
    assert param_map.lm_layout({**SMALL, "multiple_of": 16}).hidden_dim == 112
    assert param_map.lm_layout(FULL).hidden_dim == 4096


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"width": 3}, r"spec\.py: unknown finewebedu_lm model option\(s\) \['width'\]"),
        ({"compute_dtype": "float16"}, "compute_dtype 'float16'"),
        ({"num_heads": 3}, "must split into 3 heads"),
        ({"attention": "flash"}, "attention 'flash'"),
    ],
)
def test_bad_options_are_refused_naming_the_spec(change, match):
    with pytest.raises(ValueError, match=match):
        param_map.lm_layout({**SMALL, **change})


def test_init_follows_upstream_in_both_frameworks():
    """normal(0.02), residual outputs normal(0.02/sqrt(2L)), norms 1, attn_scale log2(L^2-L)."""
    layout = param_map.lm_layout(SMALL)
    params = model_jax.init(model_jax.build_model(SMALL), jax.random.PRNGKey(0))
    torch.manual_seed(0)
    state = {k: v.numpy() for k, v in model_pytorch.build_model(SMALL).state_dict().items()}
    assert all(v.dtype == np.float32 for v in state.values())
    residual = layout.residual_init_std
    as_jax = param_map.pytorch_to_jax_params(state, SMALL)
    for tree in (jax.tree.map(np.asarray, params), as_jax):
        b = tree["blocks_1"]
        assert np.std(tree["embed"]["embedding"]) == pytest.approx(0.02, rel=0.05)
        assert np.std(b["CausalAttn_0"]["query"]["kernel"]) == pytest.approx(0.02, rel=0.1)
        assert np.std(b["Mlp_0"]["Dense_0"]["kernel"]) == pytest.approx(0.02, rel=0.1)
        assert np.std(b["Mlp_0"]["Dense_1"]["kernel"]) == pytest.approx(residual, rel=0.1)
        out_proj = b["CausalAttn_0"]["attn_out_proj"]["kernel"]
        assert np.std(out_proj) == pytest.approx(residual, rel=0.1)
        assert float(b["CausalAttn_0"]["attn_scale"]) == pytest.approx(math.log2(32 * 32 - 32))
        np.testing.assert_array_equal(b["RMSNorm_0"]["scale"], np.ones(64, np.float32))
        np.testing.assert_array_equal(tree["out_ln"]["scale"], np.ones(64, np.float32))


def test_rope_table_rotates_pairs_by_position():
    layout = param_map.lm_layout(SMALL)
    table = param_map.rope_table(layout)
    assert table.shape == (32, 8, 2) and table.dtype == np.float32
    np.testing.assert_array_equal(table[0], np.stack([np.ones(8), np.zeros(8)], -1))
    # Pair 1 of head width 16 turns by 1 / theta ** (2 / 16) per position.
    np.testing.assert_allclose(table[5, 1, 1], np.sin(5 / 500_000 ** (2 / 16)), rtol=1e-6)
    x = np.random.default_rng(0).standard_normal((1, 32, 4, 16)).astype(np.float32)
    rotated_j = np.asarray(model_jax.apply_rope(jax.numpy.asarray(x), jax.numpy.asarray(table)))
    rotated_t = model_pytorch.apply_rope(torch.from_numpy(x), torch.from_numpy(table)).numpy()
    np.testing.assert_allclose(rotated_j, rotated_t, atol=1e-6)
    # A rotation keeps every pair's length.
    norms = np.linalg.norm(x.reshape(1, 32, 4, 8, 2), axis=-1)
    np.testing.assert_allclose(
        np.linalg.norm(rotated_j.reshape((*norms.shape, 2)), axis=-1), norms, rtol=1e-5
    )


def test_qk_norm_is_the_jax_definition():
    """x / (||x|| + eps) in both frameworks, not upstream PyTorch's x / ||x|| + eps."""
    x = np.array([[3.0, 4.0]], np.float32)
    expected = x / 5.5  # eps 0.5 makes the two readings far apart
    np.testing.assert_allclose(np.asarray(model_jax.qk_norm(jax.numpy.asarray(x), 0.5)), expected)
    np.testing.assert_allclose(model_pytorch.qk_norm(torch.from_numpy(x), 0.5).numpy(), expected)
    assert not np.allclose(expected, x / 5.0 + 0.5)


def test_attention_runs_on_the_cpu_unless_cudnn_is_asked_for():
    """``auto``: XLA's implementation off a GPU (upstream's JAX always asks for cuDNN in bf16)."""
    assert jax.default_backend() == "cpu"
    layout = param_map.lm_layout(FULL)
    assert layout.attention == "auto"
    assert model_jax.attention_implementation(layout) is None
    forced = param_map.lm_layout({**FULL, "attention": "cudnn"})
    assert model_jax.attention_implementation(forced) == "cudnn"


def test_parameter_types_name_every_tensor():
    from algoperf import spec

    workload = registry.get_workload("finewebedu_lm", "pytorch")
    workload.config = workload.config.variant("finewebedu_lm", model=SMALL)
    workload.init_model_fn(np.array([0, 0], np.uint32))
    types = workload.model_params_types
    pt = spec.ParameterType
    assert types["layers.0.attn.w_qkv.weight"] == pt.ATTENTION_QKV
    assert types["layers.0.attn.w_out.weight"] == pt.ATTENTION_OUT
    assert types["embed_tokens.weight"] == pt.EMBEDDING
    assert types["layers.0.attn_norm.weight"] == pt.LAYER_NORM_SCALE
    assert set(types) == set(workload.param_shapes)
    assert workload.is_output_params("embed_tokens.weight")


def test_perplexity_of_a_diverged_run_is_inf_not_an_error() -> None:
    """A loss past exp's float range (a diverged run) gives ppl inf, and the eval row is written."""
    from algoperf import metrics
    from workloads.finewebedu_lm import common

    assert common.perplexity(2.0) == math.exp(2.0)
    assert common.perplexity(1e4) == math.inf
    assert math.isnan(common.perplexity(math.nan))
    empty = np.zeros(0)
    values = metrics.SplitValues(
        num_examples=10,
        sums={"loss_sum": np.float64(3.0e6), "num_tokens": np.float64(1000.0)},
        arrays={},
        groups=empty,
        group_counts=empty,
        group_sums={},
    )
    assert common._finalize(values) == {"loss": 3000.0, "ppl": math.inf}
