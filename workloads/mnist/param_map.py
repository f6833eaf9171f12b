"""JAX <-> PyTorch parameter map for the MNIST-family MLP (Dense kernels are transposed Linear
weights): flax ``Dense_<k>`` is PyTorch ``net.layer<k+1>``, for any number of layers."""

from collections.abc import Mapping

import numpy as np


def layer_names(num_layers: int) -> dict[str, str]:
    """flax module name -> PyTorch state-dict prefix, for an MLP of `num_layers` Dense layers."""
    return {f"Dense_{k}": f"net.layer{k + 1}" for k in range(num_layers)}


def pytorch_to_jax(state_dict: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """PyTorch state dict (numpy values) -> flax params."""
    num_layers = sum(key.endswith(".weight") for key in state_dict)
    return {
        jax_name: {
            "kernel": np.asarray(state_dict[f"{pt}.weight"]).T.copy(),
            "bias": np.asarray(state_dict[f"{pt}.bias"]).copy(),
        }
        for jax_name, pt in layer_names(num_layers).items()
    }


def jax_to_pytorch(params: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """flax params -> PyTorch state dict (numpy values)."""
    out = {}
    for jax_name, pt in layer_names(len(params)).items():
        out[f"{pt}.weight"] = np.asarray(params[jax_name]["kernel"]).T.copy()
        out[f"{pt}.bias"] = np.asarray(params[jax_name]["bias"]).copy()
    return out
