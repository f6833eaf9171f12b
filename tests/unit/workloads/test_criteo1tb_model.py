"""criteo1tb DLRM-small: parameter counts, upstream's names, init, table layout and lookup.

Full-size counts are shape-only (`jax.eval_shape`, torch meta device): the 4,194,304 x 128
table (2 GiB) is never allocated. Everything that runs uses a small vocabulary.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from algoperf.parity import flatten
from algoperf.registry import get_config
from workloads.criteo1tb import model_jax, model_pytorch, param_map, spec

COUNTS = {
    "criteo1tb": 539_267_457,
    "criteo1tb_layernorm": 539_275_137,
    "criteo1tb_embed_init": 539_267_457,
    "criteo1tb_resnet": 538_121_473,
    "criteo1tb_test": 10_785_153,
}
SMALL_VOCAB = 1024


def _options(name: str):
    return spec.CRITEO1TB_TEST.model if name == "criteo1tb_test" else get_config(name).model


def _small(name: str) -> dict:
    return {**get_config(name).model, "vocab_size": SMALL_VOCAB}


def _jax_shapes(options) -> dict:
    model = model_jax.build_model(options)
    return jax.eval_shape(lambda r: model_jax.init(model, r), jax.random.PRNGKey(0))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_trainable_parameter_counts_are_upstreams(name):
    options = _options(name)
    shapes = _jax_shapes(options)
    assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes)) == COUNTS[name]
    with torch.device("meta"):
        pt = model_pytorch.build_model(options)
    assert sum(p.numel() for p in pt.parameters() if p.requires_grad) == COUNTS[name]


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_map_covers_both_trees_exactly(name):
    options = _options(name)
    layout = param_map.dlrm_layout(options)
    rules = param_map.rules(layout)
    with torch.device("meta"):
        pt = model_pytorch.build_model(options)
    assert {r.pt for r in rules} == set(pt.state_dict())
    assert {r.jax for r in rules} == set(flatten({"params": _jax_shapes(options)}))
    assert len(rules) == len(set(pt.state_dict()))


def test_flax_names_and_widths_are_upstreams():
    params = _jax_shapes(get_config("criteo1tb_layernorm").model)
    assert set(params) == {
        "embedding_table",
        *(f"Dense_{k}" for k in range(8)),
        *(f"LayerNorm_{k}" for k in range(8)),
    }
    assert params["embedding_table"].shape == (4_194_304, 128)
    widths = [params[f"Dense_{k}"]["kernel"].shape for k in range(8)]
    assert widths == [
        (13, 512), (512, 256), (256, 128),
        (506, 1024), (1024, 1024), (1024, 512), (512, 256), (256, 1),
    ]  # fmt: skip
    assert params["LayerNorm_3"]["scale"].shape == (128,)  # the embedding LayerNorm
    assert param_map.output_dense(param_map.dlrm_layout({})) == "Dense_7"
    resnet = _jax_shapes(get_config("criteo1tb_resnet").model)
    assert set(resnet) == {"embedding_table", *(f"Dense_{k}" for k in range(8))}
    assert resnet["Dense_3"]["kernel"].shape == (26 * 128 + 256, 256)


def test_pytorch_names_are_upstreams():
    expected = {
        "criteo1tb": {"bot_mlp.4.weight", "top_mlp.6.weight", "top_mlp.9.bias"},
        "criteo1tb_layernorm": {"bot_mlp.8.weight", "top_mlp.11.bias", "top_mlp.13.weight",
                                "embed_ln.weight"},
        "criteo1tb_resnet": {"bot_mlp.2.module.0.weight", "top_mlp.4.module.0.bias"},
    }  # fmt: skip
    for name, keys in expected.items():
        with torch.device("meta"):
            pt = model_pytorch.build_model(get_config(name).model)
        assert keys <= set(pt.state_dict()), name
        assert "embedding_table" in pt.state_dict()
        assert not any(k.startswith("embedding_chunk") for k in pt.state_dict())


def test_variants_are_data():
    assert param_map.dlrm_layout(spec.CRITEO1TB_TEST.model).vocab_size == 65_536
    assert param_map.dlrm_layout(get_config("criteo1tb_embed_init").model).embedding_scale == 1.0
    assert param_map.dlrm_layout({}).embedding_scale == pytest.approx(1 / 2048)
    # Upstream's ResNet model ignores both options.
    resnet = param_map.dlrm_layout({"use_resnet": True, "use_layer_norm": True,
                                    "embedding_init_multiplier": 1.0})  # fmt: skip
    assert not resnet.layer_norm and resnet.embedding_scale == pytest.approx(1 / 2048)
    with pytest.raises(ValueError, match=r"spec\.py: unknown criteo1tb model option.*'widht'"):
        param_map.dlrm_layout({"widht": 3})
    with pytest.raises(ValueError, match="multiple of 4"):
        param_map.dlrm_layout({"vocab_size": 1022})


def test_num_eval_train_examples_per_framework_as_upstream():
    config = get_config("criteo1tb")
    assert config.num_eval_train_examples_for("jax") == 83_361_792
    assert config.num_eval_train_examples_for("pytorch") == 83_279_872
    # The recorded size is upstream's starting point: the validation size before rounding.
    assert config.num_eval_train_examples == config.num_validation_examples == 83_274_637


def _check_init(table, bottom_w, top_w, top_b, scale):
    """Table uniform [0, scale); Glorot-uniform bottom kernel; normal top kernel and bias."""
    table = np.asarray(table)
    assert table.min() >= 0 and table.max() < scale
    assert table.mean() == pytest.approx(scale / 2, rel=0.02)
    limit = np.sqrt(6 / sum(bottom_w.shape))
    assert np.abs(bottom_w).max() <= limit and np.abs(bottom_w).max() > 0.9 * limit
    assert np.std(top_w) == pytest.approx(np.sqrt(2 / sum(top_w.shape)), rel=0.05)
    assert np.std(top_b) == pytest.approx(np.sqrt(1 / top_b.size), rel=0.15)


@pytest.fixture(scope="module")
def small_jax():
    """criteo1tb's flax model at vocab 1,024 and its upstream-style init (compiled once)."""
    model = model_jax.build_model(_small("criteo1tb"))
    return model, model_jax.init(model, jax.random.PRNGKey(0))


def test_init_is_upstreams_in_both_frameworks(small_jax):
    _, params = small_jax
    _check_init(
        params["embedding_table"],
        np.asarray(params["Dense_0"]["kernel"]),
        np.asarray(params["Dense_4"]["kernel"]),
        np.asarray(params["Dense_4"]["bias"]),
        1 / np.sqrt(SMALL_VOCAB),
    )
    for name in ("criteo1tb", "criteo1tb_embed_init"):
        options = _small(name)
        scale = param_map.dlrm_layout(options).embedding_scale
        torch.manual_seed(0)
        sd = {k: v.numpy() for k, v in model_pytorch.build_model(options).state_dict().items()}
        _check_init(
            sd["embedding_table"], sd["bot_mlp.0.weight"].T, sd["top_mlp.2.weight"].T,
            sd["top_mlp.2.bias"], scale,
        )  # fmt: skip
    # _embed_init's table in flax: the same init function at its scale (1.0).
    table = model_jax.table_init(1.0)(jax.random.PRNGKey(1), (SMALL_VOCAB, 128))
    assert float(table.min()) >= 0 and float(table.max()) < 1.0
    assert float(table.mean()) == pytest.approx(0.5, rel=0.02)


def test_upstream_chunked_state_dicts_convert_both_ways():
    torch.manual_seed(0)
    sd = {
        k: v.numpy() for k, v in model_pytorch.build_model(_small("criteo1tb")).state_dict().items()
    }
    upstream = param_map.to_upstream_pytorch(sd)
    assert "embedding_table" not in upstream
    assert [upstream[f"embedding_chunk_{i}"].shape for i in range(4)] == [(256, 128)] * 4
    np.testing.assert_array_equal(upstream["embedding_chunk_1"], sd["embedding_table"][256:512])
    back = param_map.from_upstream_pytorch(upstream)
    assert set(back) == set(sd)
    np.testing.assert_array_equal(back["embedding_table"], sd["embedding_table"])
    params = param_map.pytorch_to_jax_params(upstream, _small("criteo1tb"))
    np.testing.assert_array_equal(params["embedding_table"], sd["embedding_table"])
    del upstream["embedding_chunk_3"]
    with pytest.raises(ValueError, match="neither upstream's"):
        param_map.from_upstream_pytorch(upstream)


def _batch(rng: np.random.Generator, n: int) -> np.ndarray:
    dense = np.log1p(rng.exponential(3.0, (n, 13)))
    ids = rng.integers(0, 2**30, (n, 26)).astype(np.float32)  # upstream's float32 ids
    return np.concatenate([dense, ids], axis=1).astype(np.float32)


def test_pytorch_lookup_is_id_mod_vocab_without_copying_the_table(monkeypatch):
    """One gather per step: the table is never concatenated (upstream's cat of 4 chunks)."""
    torch.manual_seed(0)
    model = model_pytorch.build_model(_small("criteo1tb"))
    x = torch.from_numpy(_batch(np.random.default_rng(0), 8))
    ids = x[:, 13:].to(torch.int32) % SMALL_VOCAB
    with torch.no_grad():
        np.testing.assert_array_equal(model.embed(x[:, 13:]), model.embedding_table[ids.long()])
    real_cat = torch.cat
    seen: list[int] = []

    def recording_cat(tensors, *args, **kwargs):
        seen.extend(t.shape[0] for t in tensors)
        return real_cat(tensors, *args, **kwargs)

    monkeypatch.setattr(torch, "cat", recording_cat)
    model(x).sum().backward()
    assert seen and SMALL_VOCAB // 4 not in seen and SMALL_VOCAB not in seen
    grad = model.embedding_table.grad
    assert grad.shape == (SMALL_VOCAB, 128) and not grad.is_sparse
    touched = torch.nonzero(grad.abs().sum(dim=1)).flatten()
    assert set(touched.tolist()) <= set(ids.flatten().tolist())


def test_lookup_is_id_mod_vocab_in_jax_and_the_model_ignores_whole_vocabs(small_jax):
    model, params = small_jax
    x = _batch(np.random.default_rng(1), 4)
    rows = model_jax.embedding_lookup(params["embedding_table"], jnp.asarray(x[:, 13:]))
    ids = x[:, 13:].astype(np.int32) % SMALL_VOCAB
    np.testing.assert_array_equal(rows, np.asarray(params["embedding_table"])[ids])
    apply = jax.jit(lambda p, x: model.apply({"params": p}, x, train=False))
    shifted = x.copy()
    shifted[:, 13:] = (ids + SMALL_VOCAB * np.arange(26)).astype(np.float32)
    out = apply(params, x)
    np.testing.assert_array_equal(out, apply(params, shifted))
    other = shifted.copy()
    other[0, 13] += 1  # a different row changes that example only
    changed = apply(params, other)
    assert changed[0, 0] != out[0, 0]
    np.testing.assert_array_equal(changed[1:], out[1:])
