"""JAX <-> PyTorch parameter map for the MNIST MLP (Dense kernels are transposed Linear weights)."""

from collections.abc import Mapping

import numpy as np

# flax path -> PyTorch state-dict prefix
LAYERS = {"Dense_0": "net.layer1", "Dense_1": "net.layer2"}


def pytorch_to_jax(state_dict: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """PyTorch state dict (numpy values) -> flax params."""
    return {
        jax_name: {
            "kernel": np.asarray(state_dict[f"{pt}.weight"]).T.copy(),
            "bias": np.asarray(state_dict[f"{pt}.bias"]).copy(),
        }
        for jax_name, pt in LAYERS.items()
    }


def jax_to_pytorch(params: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """flax params -> PyTorch state dict (numpy values)."""
    out = {}
    for jax_name, pt in LAYERS.items():
        out[f"{pt}.weight"] = np.asarray(params[jax_name]["kernel"]).T.copy()
        out[f"{pt}.bias"] = np.asarray(params[jax_name]["bias"]).copy()
    return out
