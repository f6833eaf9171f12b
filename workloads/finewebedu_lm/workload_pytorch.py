"""finewebedu_lm in PyTorch: the decoder on window batches.

``batch`` holds ``inputs`` / ``targets`` (int64 on the device) and, in eval batches, float32
per-token ``weights``. Under DDP every rank loads only its rows of each global batch
(`LmData._numpy_batches` takes the shard). No model state (None), no dropout. The model computes
in the compute dtype (bfloat16 in the registered config) from float32 parameters; `model_fn`
returns float32 logits (batch, 1024, vocab).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from algoperf import param_utils, spec
from algoperf.frameworks.pytorch_workload import PyTorchWorkload
from workloads.finewebedu_lm import model_pytorch
from workloads.finewebedu_lm.common import LmData

# Token ids index the embedding and the loss: int64 on the device.
_INDEX_KEYS = ("inputs", "targets")


class LmWorkload(LmData, PyTorchWorkload):
    """Registry entry of the finewebedu_lm family; ``config.model`` configures the decoder."""

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        torch.random.manual_seed(int(rng[0]))
        model = model_pytorch.build_model(self.config.model)
        self._finish_init(model)
        return self._wrap_model(model), None

    def _finish_init(self, model: torch.nn.Module) -> None:
        """Shapes and types; the fused ``attn.w_qkv`` is ATTENTION_QKV (upstream's name rules
        know ``in_proj`` only and would refuse it), every other name by the shared rules."""
        self._param_shapes = param_utils.pytorch_param_shapes(model)
        self._param_types = {
            name: spec.ParameterType.ATTENTION_QKV
            if name.endswith("w_qkv.weight")
            else param_utils.pytorch_param_type(name)
            for name in self._param_shapes
        }

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
        del rng, update_batch_norm, dropout_rate  # no dropout, no batch norm
        if model_state is not None:
            raise ValueError(f"finewebedu_lm has no model state; got {type(model_state).__name__}")
        model = params
        train = mode == spec.ForwardPassMode.TRAIN
        model.train(train)
        with contextlib.nullcontext() if train else torch.no_grad():
            logits = model(augmented_and_preprocessed_input_batch["inputs"])
        return logits.float(), None

    def _local_to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        out = {}
        for key, value in batch.items():
            tensor = torch.from_numpy(np.ascontiguousarray(value))
            if key in _INDEX_KEYS:
                tensor = tensor.long()
            out[key] = tensor.to(self.device, non_blocking=True)
        return out
