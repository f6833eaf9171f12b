"""Upstream's ogbg graph network in PyTorch (same structure as `workloads.ogbg.model_jax`).

Batches are `Graphs` (a NamedTuple with ``jraph.GraphsTuple``'s fields, so code written for
upstream's PyTorch batches reads them the same way, without importing JAX). Sums over edges and
nodes are ``index_add_`` into zeros (on CUDA an atomic, non-deterministic sum, as upstream's
``scatter_add_``). Module names are upstream's, so state dicts load either way. Init: upstream's
``pytorch_default_init`` (truncated LeCun normal, zero bias) on every Linear.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, NamedTuple

import torch
from torch import nn

from algoperf.frameworks.pytorch import CustomDropout, SequentialWithDropout, pytorch_default_init
from workloads.ogbg.param_map import EDGE_FEATURES, NODE_FEATURES, GnnLayout, gnn_layout

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": partial(nn.GELU, approximate="tanh"),
    "silu": nn.SiLU,
}


class Graphs(NamedTuple):
    """A batch of graphs (fields and meaning of ``jraph.GraphsTuple``)."""

    nodes: torch.Tensor
    edges: torch.Tensor
    receivers: torch.Tensor
    senders: torch.Tensor
    globals: Any
    n_node: torch.Tensor
    n_edge: torch.Tensor


def _mlp(in_dim: int, layout: GnnLayout) -> SequentialWithDropout:
    layers = SequentialWithDropout()
    for i, dim in enumerate(layout.hidden_dims):
        layers.add_module(f"dense_{i}", nn.Linear(in_dim, dim))
        layers.add_module(f"norm_{i}", nn.LayerNorm(dim, eps=1e-6))
        layers.add_module(f"activation_fn_{i}", _ACTIVATIONS[layout.activation]())
        layers.add_module(f"dropout_{i}", CustomDropout())
        in_dim = dim
    return layers


def segment_sum(values: torch.Tensor, segments: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Sum of the rows of `values` per segment id (rows of absent segments are zero)."""
    out = values.new_zeros((num_segments, *values.shape[1:]))
    return out.index_add_(0, segments, values)


class GraphNetwork(nn.Module):
    """One message-passing step: edge, node and global updates with sum aggregation."""

    def __init__(self, in_dims: tuple[int, int, int], layout: GnnLayout) -> None:
        super().__init__()
        self.update_edge_fn = _mlp(in_dims[0], layout)
        self.update_node_fn = _mlp(in_dims[1], layout)
        self.update_global_fn = _mlp(in_dims[2], layout)
        self._supports_custom_dropout = True

    def forward(self, state: tuple, dropout_rate: float) -> tuple:
        nodes, edges, globals_, senders, receivers, node_graph, edge_graph = state
        n_nodes, n_graph = nodes.shape[0], globals_.shape[0]
        edges = self.update_edge_fn(
            torch.cat([edges, nodes[senders], nodes[receivers], globals_[edge_graph]], dim=-1),
            dropout_rate,
        )
        sent = segment_sum(edges, senders, n_nodes)
        received = segment_sum(edges, receivers, n_nodes)
        nodes = self.update_node_fn(
            torch.cat([nodes, sent, received, globals_[node_graph]], dim=-1), dropout_rate
        )
        globals_ = self.update_global_fn(
            torch.cat(
                [
                    segment_sum(nodes, node_graph, n_graph),
                    segment_sum(edges, edge_graph, n_graph),
                    globals_,
                ],
                dim=-1,
            ),
            dropout_rate,
        )
        return nodes, edges, globals_, senders, receivers, node_graph, edge_graph


class GNN(nn.Module):
    """The graph network; ``forward(graph, dropout_rate)`` returns (graphs, num_outputs) logits."""

    def __init__(self, layout: GnnLayout) -> None:
        super().__init__()
        self.layout = layout
        self.node_embedder = nn.Linear(NODE_FEATURES, layout.latent_dim)
        self.edge_embedder = nn.Linear(EDGE_FEATURES, layout.latent_dim)
        self.graph_network = SequentialWithDropout(
            *(
                GraphNetwork(layout.mlp_input_dims(step), layout)
                for step in range(layout.num_message_passing_steps)
            )
        )
        self.decoder = nn.Linear(layout.hidden_dims[-1], layout.num_outputs)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                pytorch_default_init(m)

    def forward(self, graph: Graphs, dropout_rate: float = 0.0) -> torch.Tensor:
        n_graph = graph.n_node.shape[0]
        nodes = self.node_embedder(graph.nodes)
        edges = self.edge_embedder(graph.edges)
        globals_ = nodes.new_zeros((n_graph, self.layout.num_outputs))
        graph_ids = torch.arange(n_graph, device=nodes.device)
        node_graph = torch.repeat_interleave(graph_ids, graph.n_node, output_size=nodes.shape[0])
        edge_graph = torch.repeat_interleave(graph_ids, graph.n_edge, output_size=edges.shape[0])
        state = (nodes, edges, globals_, graph.senders, graph.receivers, node_graph, edge_graph)
        _, _, globals_, *_ = self.graph_network(state, dropout_rate)
        return self.decoder(globals_)


def build_model(options: Mapping[str, Any]) -> GNN:
    """The PyTorch GNN of a ``config.model`` mapping."""
    return GNN(gnn_layout(options))
