"""ogbg GNN layout and its JAX <-> PyTorch parameter map (framework-free).

Names: flax creates ``node_embedding``, ``edge_embedding``, then per step the edge, node and
global MLPs (``Dense_k`` / ``LayerNorm_k`` numbered in creation order), then the decoder
``Dense_{3 L S}``; upstream's PyTorch model names them ``node_embedder``, ``edge_embedder``,
``graph_network.<step>.update_{edge,node,global}_fn.{dense,norm}_<layer>`` and ``decoder``.
A torch ``Linear`` weight is the transposed flax kernel; LayerNorm ``weight`` is flax's ``scale``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from algoperf.parity import Rule, dense_rule, jax_to_pytorch, pytorch_to_jax, vector_rule

ACTIVATIONS = ("relu", "gelu", "silu")
_ALLOWED = {"activation", "latent_dim", "hidden_dims", "num_message_passing_steps", "num_outputs"}
NODE_FEATURES = 9
EDGE_FEATURES = 3


@dataclasses.dataclass(frozen=True)
class GnnLayout:
    """What fixes the GNN's parameters (and its activation)."""

    latent_dim: int = 256
    hidden_dims: tuple[int, ...] = (256,)
    num_message_passing_steps: int = 5
    num_outputs: int = 128
    activation: str = "relu"

    def mlp_input_dims(self, step: int) -> tuple[int, int, int]:
        """Input widths of the (edge, node, global) MLPs of message-passing step `step`."""
        h, g = self.hidden_dims[-1], self.num_outputs
        if step == 0:
            d = self.latent_dim
            return 3 * d + g, d + 2 * h + g, 2 * h + g
        return 4 * h, 4 * h, 3 * h


def gnn_layout(options: Mapping[str, Any]) -> GnnLayout:
    """The layout of an ogbg ``config.model`` (unknown keys and activations are refused)."""
    unknown = sorted(set(options) - _ALLOWED)
    if unknown:
        raise ValueError(
            f"workloads/ogbg/spec.py: unknown ogbg model option(s) {unknown}; "
            f"allowed: {sorted(_ALLOWED)}"
        )
    activation = str(options.get("activation", "relu"))
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"workloads/ogbg/spec.py: activation {activation!r} is not one of {ACTIVATIONS}"
        )
    hidden = tuple(int(h) for h in options.get("hidden_dims", (256,)))
    if not hidden:
        raise ValueError("workloads/ogbg/spec.py: hidden_dims must name at least one width")
    return GnnLayout(
        latent_dim=int(options.get("latent_dim", 256)),
        hidden_dims=hidden,
        num_message_passing_steps=int(options.get("num_message_passing_steps", 5)),
        num_outputs=int(options.get("num_outputs", 128)),
        activation=activation,
    )


def output_dense(layout: GnnLayout) -> str:
    """flax name of the decoder (the output layer)."""
    return f"Dense_{3 * len(layout.hidden_dims) * layout.num_message_passing_steps}"


def rules(layout: GnnLayout) -> list[Rule]:
    """One rule per parameter tensor, PyTorch key <-> flax path."""

    def dense(pt: str, name: str) -> list[Rule]:
        return [
            dense_rule(f"{pt}.weight", ("params", name, "kernel")),
            vector_rule(f"{pt}.bias", ("params", name, "bias")),
        ]

    out = dense("node_embedder", "node_embedding") + dense("edge_embedder", "edge_embedding")
    k = 0
    for step in range(layout.num_message_passing_steps):
        for fn in ("update_edge_fn", "update_node_fn", "update_global_fn"):
            for i in range(len(layout.hidden_dims)):
                pt = f"graph_network.{step}.{fn}"
                out += dense(f"{pt}.dense_{i}", f"Dense_{k}")
                out += [
                    vector_rule(f"{pt}.norm_{i}.weight", ("params", f"LayerNorm_{k}", "scale")),
                    vector_rule(f"{pt}.norm_{i}.bias", ("params", f"LayerNorm_{k}", "bias")),
                ]
                k += 1
    return out + dense("decoder", output_dense(layout))


def pytorch_to_jax_params(state_dict: Mapping[str, Any], options: Mapping[str, Any]) -> dict:
    """PyTorch state dict -> flax ``params`` tree (numpy)."""
    return pytorch_to_jax(state_dict, rules(gnn_layout(options)))["params"]


def jax_to_pytorch_params(
    params: Mapping[str, Any], options: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """flax ``params`` -> a complete PyTorch state dict (numpy)."""
    return jax_to_pytorch({"params": params}, rules(gnn_layout(options)))
