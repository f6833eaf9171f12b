"""JAX vs PyTorch MNIST-family MLPs on identical weights and batches: logits and loss within 1e-5;
parameter names, shapes and init distributions of both frameworks."""

import numpy as np
import pytest
import torch

from algoperf import registry, spec
from workloads.mnist import param_map


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "mnist1d"])
def test_mnist_forward_and_loss_parity(name):
    import jax

    jw = registry.get_workload(name, "jax")
    pw = registry.get_workload(name, "pytorch")
    jparams, _ = jw.init_model_fn(jax.random.PRNGKey(0))
    model, _ = pw.init_model_fn([0, 0])
    # Load the PyTorch initialisation into JAX.
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    jparams = jax.tree.map(np.asarray, param_map.pytorch_to_jax(state))
    rng = np.random.default_rng(0)
    batch = {
        "inputs": rng.normal(size=(16, *jw.config.model["input_shape"])).astype(np.float32),
        "targets": rng.integers(0, 10, 16).astype(np.int32),
    }
    jlogits, _ = jw.model_fn(
        jparams, jw._to_device(batch), None, spec.ForwardPassMode.EVAL, None, False
    )
    plogits, _ = pw.model_fn(
        model, pw._to_device(batch), None, spec.ForwardPassMode.EVAL, None, False
    )
    np.testing.assert_allclose(np.asarray(jlogits), plogits.detach().numpy(), atol=1e-5, rtol=1e-5)
    for smoothing in (0.0, 0.1):
        jl = jw.loss_fn(jw._to_device(batch)["targets"], jlogits, label_smoothing=smoothing)
        pl = pw.loss_fn(torch.from_numpy(batch["targets"]), plogits, label_smoothing=smoothing)
        assert float(jl["summed"]) == pytest.approx(float(pl["summed"]), abs=1e-5, rel=1e-6)
        assert float(jl["n_valid_examples"]) == float(pl["n_valid_examples"]) == 16
    # The round trip of the map is exact.
    back = param_map.jax_to_pytorch(jparams)
    for k, v in state.items():
        np.testing.assert_array_equal(back[k], v)


@pytest.mark.parametrize("name", ["mnist", "mnist1d"])
def test_layer_names_shapes_and_init_distributions(name):
    """Upstream's state-dict keys for mnist; mnist1d draws PyTorch weights from flax's init."""
    import jax

    jw = registry.get_workload(name, "jax")
    pw = registry.get_workload(name, "pytorch")
    jparams, _ = jw.init_model_fn(jax.random.PRNGKey(0))
    model, _ = pw.init_model_fn([0, 0])
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    jax_as_torch = param_map.jax_to_pytorch(jax.tree.map(np.asarray, jparams))
    assert {k: v.shape for k, v in jax_as_torch.items()} == {k: v.shape for k, v in state.items()}
    if name == "mnist":
        assert sorted(state) == [
            "net.layer1.bias",
            "net.layer1.weight",
            "net.layer2.bias",
            "net.layer2.weight",
        ]
        assert pw.is_output_params("net.layer2.weight") and jw.is_output_params("Dense_1")
        return
    assert len(state) == 6 and pw.is_output_params("net.layer3.bias")
    assert jw.is_output_params("Dense_2") and not jw.is_output_params("Dense_1")
    for key, value in state.items():
        if key.endswith(".bias"):
            assert not value.any() and not jax_as_torch[key].any()  # zero in both
            continue
        std = (1.0 / value.shape[1]) ** 0.5  # LeCun normal: 1/sqrt(fan_in)
        for weights in (value, jax_as_torch[key]):
            assert np.abs(weights).max() <= 2 * std / 0.8796 + 1e-6  # truncated at 2 sd
            assert weights.std() == pytest.approx(std, rel=0.1)
