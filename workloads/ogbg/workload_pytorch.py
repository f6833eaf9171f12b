"""ogbg (and _gelu, _silu, _model_size, _solubility) in PyTorch: the GNN on `Graphs` batches.

``batch['inputs']`` is a `workloads.ogbg.model_pytorch.Graphs` (``jraph.GraphsTuple``'s fields;
indices int64), ``targets`` / ``weights`` float32 (graphs, tasks), tasks = the model's ``num_outputs``. Under DDP every rank takes its own
device shard of the global batch (the numpy batch holds one shard per rank, node indices made
local again), so no graph crosses ranks. No model state (None); dropout only in TRAIN mode.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from algoperf import spec
from algoperf.frameworks.pytorch_workload import PyTorchWorkload
from workloads.ogbg import model_pytorch
from workloads.ogbg.common import OgbgData

_INDEX_KEYS = ("senders", "receivers", "n_node", "n_edge")


def rank_shard(batch: dict[str, np.ndarray], rank: int, world: int) -> dict[str, np.ndarray]:
    """Device shard `rank` of a global batch of `world` shards, with shard-local node indices."""
    if world == 1:
        return batch
    out = {}
    for key, value in batch.items():
        per = len(value) // world
        out[key] = value[rank * per : (rank + 1) * per]
    nodes_per_shard = len(batch["nodes"]) // world
    for key in ("senders", "receivers"):
        out[key] = out[key] - np.int32(rank * nodes_per_shard)
    return out


class OgbgWorkload(OgbgData, PyTorchWorkload):
    """Registry entry of the ogbg family; the variant's ``config.model`` configures the GNN."""

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        torch.random.manual_seed(int(rng[0]))
        model = model_pytorch.build_model(self.config.model)
        self._finish_init(model)
        return self._wrap_model(model), None

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
        del rng, update_batch_norm  # torch's global generator draws dropout; no batch norm
        if model_state is not None:
            raise ValueError(f"ogbg has no model state; got {type(model_state).__name__}")
        model = params
        train = mode == spec.ForwardPassMode.TRAIN
        rate = self.dropout_rate if dropout_rate is None else float(dropout_rate)
        model.train(train)
        with contextlib.nullcontext() if train else torch.no_grad():
            logits = model(
                augmented_and_preprocessed_input_batch["inputs"],
                dropout_rate=rate if train else 0.0,
            )
        return logits, None

    def _to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        local = rank_shard(batch, self._dist.rank, self._dist.world_size)
        tensors = {}
        for key, value in local.items():
            tensor = torch.from_numpy(np.ascontiguousarray(value))
            if key in _INDEX_KEYS:
                tensor = tensor.long()
            tensors[key] = tensor.to(self.device, non_blocking=True)
        graph = model_pytorch.Graphs(
            nodes=tensors["nodes"],
            edges=tensors["edges"],
            receivers=tensors["receivers"],
            senders=tensors["senders"],
            globals={},
            n_node=tensors["n_node"],
            n_edge=tensors["n_edge"],
        )
        return {"inputs": graph, "targets": tensors["targets"], "weights": tensors["weights"]}
