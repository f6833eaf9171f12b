"""wmt (and _post_ln, _attention_temp, _glu_tanh) in PyTorch: the Transformer on packed batches.

``batch`` holds ``inputs`` / ``targets`` (int64 on the device), optionally the packed
``*_segmentation`` / ``*_position`` arrays (training), and float32 per-token ``weights``. Under
DDP every rank loads only its rows of each global batch (`WmtData._numpy_batches` takes the
shard). No model state (None); dropout only in TRAIN mode, drawn from torch's global generator.
Translation for BLEU is `workloads.wmt.decode_pytorch.translate` on this rank's eval rows.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from algoperf import spec
from algoperf.frameworks import pytorch as fpt
from algoperf.frameworks.pytorch_workload import PyTorchWorkload
from workloads.wmt import decode_pytorch, model_pytorch
from workloads.wmt.common import WmtData

# Batch key (upstream's names) -> the model's keyword.
_PACKED = {
    "inputs_position": "inputs_positions",
    "targets_position": "targets_positions",
    "inputs_segmentation": "inputs_segmentation",
    "targets_segmentation": "targets_segmentation",
}
# Ids and positions index embeddings and tables: int64 on the device.
_INDEX_KEYS = ("inputs", "targets", "inputs_position", "targets_position")


class WmtWorkload(WmtData, PyTorchWorkload):
    """Registry entry of the wmt family; the variant's ``config.model`` configures the model."""

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
            raise ValueError(f"wmt has no model state; got {type(model_state).__name__}")
        model = params
        batch = augmented_and_preprocessed_input_batch
        train = mode == spec.ForwardPassMode.TRAIN
        rate = self.dropout_rate if dropout_rate is None else float(dropout_rate)
        model.train(train)
        with contextlib.nullcontext() if train else torch.no_grad():
            logits = model(
                batch["inputs"],
                batch["targets"],
                **{arg: batch.get(key) for key, arg in _PACKED.items()},
                dropout_rate=rate if train else 0.0,
            )
        return logits, None

    def _local_to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        out = {}
        for key, value in batch.items():
            tensor = torch.from_numpy(np.ascontiguousarray(value))
            if key in _INDEX_KEYS:
                tensor = tensor.long()
            out[key] = tensor.to(self.device, non_blocking=True)
        return out

    def _translate(self, params: Any, inputs: np.ndarray) -> np.ndarray:
        tokens = torch.from_numpy(np.ascontiguousarray(inputs)).long().to(self.device)
        return decode_pytorch.translate(
            fpt.unwrap(params),  # the plain module (DDP / torch.compile wrappers removed)
            tokens,
            beam_size=self.beam_size,
            alpha=self.decode_alpha,
            max_decode_len=self.max_decode_len,
        )
