"""criteo1tb workloads: upstream's loss rule, the whole-split eval loss, the data check.

On the fixture dataset (`workloads.criteo1tb.testing`) with ``criteo1tb_test`` (vocab 65,536),
both frameworks.
"""

from __future__ import annotations

import numpy as np
import pytest

from algoperf import registry, spec
from algoperf.data import DataError
from workloads.criteo1tb import data

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FRAMEWORKS = ("jax", "pytorch")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("criteo_wl")
    registry.write_fixture("criteo1tb", root)
    return root


def _rng(framework):
    if framework == "jax":
        import jax

        return jax.random.PRNGKey(0)
    return np.array([0, 0], np.uint32)


def _tensor(framework, x):
    if framework == "jax":
        import jax.numpy as jnp

        return jnp.asarray(x)
    import torch

    return torch.as_tensor(x)


def _upstream_loss(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Upstream's per-example loss, -(t log sigmoid(x) + (1 - t) log sigmoid(-x)), in float64."""
    x = logits.astype(np.float64).reshape(-1)
    log_p, log_not_p = -np.logaddexp(0, -x), -np.logaddexp(0, x)
    return -(targets * log_p + (1 - targets) * log_not_p)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_loss_flattens_like_upstream_and_ignores_label_smoothing(framework):
    workload = registry.get_workload("criteo1tb_test", framework)
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (6, 1)).astype(np.float32)
    targets = np.array([0, 1, 1, 0, 1, 0], np.float32)
    mask = np.array([1, 1, 1, 1, 0, 0], np.float32)
    out = workload.loss_fn(
        _tensor(framework, targets), _tensor(framework, logits), _tensor(framework, mask), 0.1
    )
    per_example = np.asarray(out["per_example"])
    want = _upstream_loss(logits, targets) * mask
    assert per_example.shape == (6,)
    np.testing.assert_allclose(per_example, want, rtol=1e-6, atol=1e-7)
    assert float(out["summed"]) == pytest.approx(want.sum(), rel=1e-6)
    assert float(out["n_valid_examples"]) == 4
    unmasked = workload.loss_fn(_tensor(framework, targets), _tensor(framework, logits))
    assert float(unmasked["n_valid_examples"]) == 6


def _logits(workload, params, state, batch, rng) -> np.ndarray:
    device = workload._to_device(batch)
    logits, _ = workload.model_fn(params, device, state, spec.ForwardPassMode.EVAL, rng, False, 0.0)
    return np.asarray(logits.detach() if hasattr(logits, "detach") else logits)


def test_eval_loss_is_the_mean_over_every_row_of_the_split(root):
    """validation/loss = the sum of upstream's per-example loss over the split's 522 rows / 522,
    whatever the eval batch size, in both frameworks on the same weights (the PyTorch init
    mapped to flax: relative 1e-5); eval_train covers the validation size rounded up to whole
    eval batches (768 at the fixture's 256), as upstream."""
    import jax

    from algoperf.frameworks import jax as fjax
    from workloads.criteo1tb import model_jax, param_map

    pt = registry.get_workload("criteo1tb_test", "pytorch", data_dir=root)
    rng = _rng("pytorch")
    model, state = pt.init_model_fn(rng)
    results = [pt.eval_model(size, model, state, rng, str(root), None, 0) for size in (64, 256)]
    assert results[0] == results[1]

    jx = registry.get_workload("criteo1tb_test", "jax", data_dir=root)
    jx._model = model_jax.build_model(jx.config.model)
    state_dict = {k: v.numpy() for k, v in model.state_dict().items()}
    params = fjax.replicate(param_map.pytorch_to_jax_params(state_dict, jx.config.model))
    key = jax.random.PRNGKey(0)
    on_jax = jx.eval_model(131_072, params, None, key, str(root), None, 0)

    for workload in (pt, jx):
        assert workload.num_eval_train_examples == 768
    losses = []
    for batch in data.eval_batches(root, "validation", 256):
        real = batch["weights"] == 1
        losses.append(_upstream_loss(_logits(pt, model, state, batch, rng), batch["targets"])[real])
    expected = np.concatenate(losses)
    assert len(expected) == 522
    for result in (results[0], on_jax):
        assert result["validation/loss"] == pytest.approx(expected.mean(), rel=1e-5)
        assert result["validation/num_examples"] == 522
        assert result["test/num_examples"] == 608
        for split in ("train", "test"):
            assert result[f"{split}/loss"] == pytest.approx(results[0][f"{split}/loss"], rel=1e-5)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_registered_config_refuses_the_fixture(framework, root):
    with pytest.raises(DataError, match=r"train has 1,472 rows, criteo1tb_test expects"):
        registry.get_workload("criteo1tb_test", framework).check_data(str(root))
    registry.get_workload("criteo1tb_test", framework, data_dir=root).check_data(str(root))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_output_params_name_the_last_layer_of_every_variant(framework):
    from algoperf.workloads_cli import _torch_meta_device

    for name in ("criteo1tb_test", "criteo1tb_layernorm", "criteo1tb_resnet"):
        config = registry.get_config(name).variant(
            name, model={"vocab_size": 1024}, num_train_examples=1
        )
        workload = registry.get_workload(name, framework)
        workload.config = config
        if framework == "jax":
            import jax

            jax.eval_shape(workload.init_model_fn, _rng(framework))
        else:
            with _torch_meta_device():
                workload.init_model_fn(_rng(framework))
        outputs = [k for k in workload.param_shapes if workload.is_output_params(k)]
        assert len(outputs) == (1 if framework == "jax" else 2), (name, outputs)
        shapes = workload.param_shapes
        key = outputs[0]
        leaf = shapes[key] if framework == "pytorch" else shapes[key]["kernel"]
        assert 1 in tuple(leaf.shape_tuple if hasattr(leaf, "shape_tuple") else leaf), name
