"""Upstream's ogbg graph network in flax, on `jraph.GraphsTuple` batches.

Structure (Battaglia et al.'s GraphNetwork, as upstream's JAX model through ``jraph``): node and
edge features embedded by Dense layers (``node_embedding`` 9 -> latent, ``edge_embedding`` 3 ->
latent), globals start as zeros (graphs, num_outputs: 128 for ogbg); then ``num_message_passing_steps`` steps, each with
its own edge, node and global MLPs (Dense -> LayerNorm(eps 1e-6) -> activation -> dropout, per
hidden width), applied to

* edges: concat[edge, sender node, receiver node, its graph's global];
* nodes: concat[node, sum of outgoing edges, sum of incoming edges, its graph's global];
* globals: concat[sum of the graph's nodes, sum of its edges, global];

and a final Dense (num_outputs) on the globals gives the logits. Sums are `jax.ops.segment_sum`. flax
names the layers in creation order exactly as upstream does (``Dense_0`` .. ``Dense_{3 L S - 1}``
for S steps of L hidden layers, the decoder ``Dense_{3 L S}``, ``LayerNorm_k``), so parameter
trees match upstream's. Init: flax defaults (LeCun normal kernels, zero biases).

Dropout's rate is a call argument (a traced value under jit, so changing it does not compile
again) and draws from the ``dropout`` rng stream; GELU is the tanh approximation (flax default).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph

from workloads.ogbg.param_map import ACTIVATIONS, GnnLayout, gnn_layout

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "gelu": nn.gelu,  # approximate=True: tanh, as upstream
    "silu": nn.silu,
}
assert set(_ACTIVATIONS) == set(ACTIVATIONS)


def _dropout(module: nn.Module, x: jax.Array, train: bool, rate: Any) -> jax.Array:
    """Inverted dropout at `rate` in training; a concrete zero rate needs no mask."""
    if not train or (isinstance(rate, int | float) and rate == 0):
        return x
    keep = 1.0 - rate
    mask = jax.random.bernoulli(module.make_rng("dropout"), keep, x.shape)
    return jnp.where(mask, x / keep, 0).astype(x.dtype)


class GNN(nn.Module):
    """The graph network; ``__call__(graph, train, dropout_rate)`` returns (graphs, num_outputs) logits."""

    layout: GnnLayout

    def _mlp(self, x: jax.Array, train: bool, rate: Any) -> jax.Array:
        act = _ACTIVATIONS[self.layout.activation]
        for width in self.layout.hidden_dims:
            x = nn.Dense(width)(x)
            x = nn.LayerNorm(epsilon=1e-6)(x)
            x = _dropout(self, act(x), train, rate)
        return x

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool, dropout_rate: Any = 0.0) -> jax.Array:
        layout = self.layout
        n_graph = graph.n_node.shape[0]
        n_nodes, n_edges = graph.nodes.shape[0], graph.edges.shape[0]
        nodes = nn.Dense(layout.latent_dim, name="node_embedding")(graph.nodes)
        edges = nn.Dense(layout.latent_dim, name="edge_embedding")(graph.edges)
        globals_ = jnp.zeros((n_graph, layout.num_outputs), nodes.dtype)
        graph_ids = jnp.arange(n_graph)
        node_graph = jnp.repeat(graph_ids, graph.n_node, total_repeat_length=n_nodes)
        edge_graph = jnp.repeat(graph_ids, graph.n_edge, total_repeat_length=n_edges)
        senders, receivers = graph.senders, graph.receivers
        for _ in range(layout.num_message_passing_steps):
            edges = self._mlp(
                jnp.concatenate(
                    [edges, nodes[senders], nodes[receivers], globals_[edge_graph]], axis=-1
                ),
                train,
                dropout_rate,
            )
            sent = jax.ops.segment_sum(edges, senders, n_nodes)
            received = jax.ops.segment_sum(edges, receivers, n_nodes)
            nodes = self._mlp(
                jnp.concatenate([nodes, sent, received, globals_[node_graph]], axis=-1),
                train,
                dropout_rate,
            )
            globals_ = self._mlp(
                jnp.concatenate(
                    [
                        jax.ops.segment_sum(nodes, node_graph, n_graph),
                        jax.ops.segment_sum(edges, edge_graph, n_graph),
                        globals_,
                    ],
                    axis=-1,
                ),
                train,
                dropout_rate,
            )
        return nn.Dense(layout.num_outputs)(globals_)


def build_model(options: Mapping[str, Any]) -> GNN:
    """The flax GNN of a ``config.model`` mapping."""
    return GNN(gnn_layout(options))


def init_graph(num_outputs: int = 128) -> jraph.GraphsTuple:
    """Upstream's one-node, one-edge init batch (parameters do not depend on it)."""
    del num_outputs
    return jraph.GraphsTuple(
        nodes=jnp.ones((1, 9)),
        edges=jnp.ones((1, 3)),
        senders=jnp.asarray([0]),
        receivers=jnp.asarray([0]),
        n_node=jnp.asarray([1]),
        n_edge=jnp.asarray([1]),
        globals={},
    )


def init(model: GNN, rng: jax.Array) -> Any:
    """Parameters as upstream: the second half of a split `rng` initialises them."""
    _, params_rng = jax.random.split(rng)
    variables = jax.jit(lambda r: model.init({"params": r}, init_graph(), train=False))(params_rng)
    return variables["params"]
