"""ogbg (and _gelu, _silu, _model_size, _solubility) in JAX: the flax GNN on `jraph.GraphsTuple` batches.

``batch['inputs']`` is a ``jraph.GraphsTuple`` (nodes (N, 9), edges (E, 3), senders, receivers,
n_node, n_edge; globals ``{}``) as in upstream's JAX workload, sharded along the leading axis of
every array (each device holds its own shard's nodes, edges and graph slots; node indices are
global, as ``jraph.batch_np`` makes them). ``targets`` / ``weights`` are (graphs, tasks):
128 for ogbg, the dataset's task count (the model's ``num_outputs``) for ``ogbg_solubility``.
No model state (None); dropout only in TRAIN mode.
"""

from __future__ import annotations

from typing import Any

import jraph
import numpy as np

from algoperf import spec
from algoperf.frameworks import jax as fjax
from algoperf.frameworks.jax_workload import JaxWorkload
from workloads.ogbg import model_jax
from workloads.ogbg.common import OgbgData


def to_graphs_tuple(batch: dict[str, Any]) -> dict[str, Any]:
    """A flat numpy batch -> ``{'inputs': GraphsTuple, 'targets', 'weights'}``."""
    graph = jraph.GraphsTuple(
        nodes=batch["nodes"],
        edges=batch["edges"],
        receivers=batch["receivers"],
        senders=batch["senders"],
        globals={},
        n_node=batch["n_node"],
        n_edge=batch["n_edge"],
    )
    return {"inputs": graph, "targets": batch["targets"], "weights": batch["weights"]}


class OgbgWorkload(OgbgData, JaxWorkload):
    """Registry entry of the ogbg family; the variant's ``config.model`` configures the GNN."""

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        self._model = model_jax.build_model(self.config.model)
        params = model_jax.init(self._model, rng)
        self._finish_init(params)
        return fjax.replicate(params), None

    def model_fn(
        self,
        params: spec.ParameterContainer,
        augmented_and_preprocessed_input_batch: dict[str, spec.Tensor],
        model_state: spec.ModelAuxiliaryState,
        mode: spec.ForwardPassMode,
        rng: spec.RandomState,
        update_batch_norm: bool,
        dropout_rate: float | None = None,
    ) -> tuple[spec.Tensor, spec.ModelAuxiliaryState]:
        del update_batch_norm  # no batch norm
        if model_state is not None:
            raise ValueError(f"ogbg has no model state; got {type(model_state).__name__}")
        train = mode == spec.ForwardPassMode.TRAIN
        rate = self.dropout_rate if dropout_rate is None else dropout_rate
        logits = self._model.apply(
            {"params": params},
            augmented_and_preprocessed_input_batch["inputs"],
            train=train,
            dropout_rate=rate if train else 0.0,
            rngs={"dropout": rng} if train else {},
        )
        return logits, None

    def _to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        return fjax.shard_batch(to_graphs_tuple(batch))
