"""JAX vs PyTorch MNIST MLP on identical weights and batches: logits and loss within 1e-5."""

import numpy as np
import pytest
import torch

from algoperf import registry, spec
from workloads.mnist import param_map


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
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
        "inputs": rng.normal(size=(16, 28, 28, 1)).astype(np.float32),
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
