"""LibriSpeech Conformer and DeepSpeech (and their variants) in PyTorch: only the model plumbing.

``config.model['arch']`` picks `conformer_pytorch` or `deepspeech_pytorch`. BatchNorm running
statistics live in the module (``model_state`` None); TRAIN mode normalises with the valid
frames of the global batch (all DDP ranks together, `batchnorm_pytorch`) and updates the running
statistics only when ``update_batch_norm``; EVAL uses them, without gradients. Under DDP every
rank takes its contiguous rows of the global batch. Dropout and SpecAugment draw from torch's
global generator in TRAIN mode only. ``model_fn`` returns ``((logits, logit_paddings), None)``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from algoperf import spec
from algoperf.frameworks.pytorch_workload import PyTorchWorkload
from workloads.librispeech import conformer_pytorch, deepspeech_pytorch
from workloads.librispeech.common import (
    LibrispeechData,
    architecture,
    device_layout,
    flat_batch,
)
from workloads.librispeech.conformer_param_map import conformer_options

_BATCH_NORMS = (conformer_pytorch.BatchNorm, deepspeech_pytorch.BatchNorm)


def build_model(config_model: dict[str, Any], arch: str) -> torch.nn.Module:
    """The model of ``config.model`` on the current default device (meta when counting)."""
    if arch == "conformer":
        return conformer_pytorch.ConformerEncoderDecoder(conformer_options(config_model))
    return deepspeech_pytorch.DeepspeechEncoderDecoder(config_model)


class LibrispeechWorkload(LibrispeechData, PyTorchWorkload):
    """Registry entry of the LibriSpeech family (both architectures, every variant)."""

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        torch.random.manual_seed(int(rng[0]))
        model = build_model(dict(self.config.model), architecture(self.config))
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
        del model_state, rng  # torch's global generator draws dropout and SpecAugment
        model = params
        train = mode == spec.ForwardPassMode.TRAIN
        rate = self.dropout_rate if dropout_rate is None else float(dropout_rate)
        model.train(train)
        for module in model.modules():
            if isinstance(module, _BATCH_NORMS):
                module.update_running_stats = bool(update_batch_norm)
        audio, paddings = augmented_and_preprocessed_input_batch["inputs"]
        with contextlib.nullcontext() if train else torch.no_grad():
            logits, logit_paddings = model(audio, paddings, dropout_rate=rate if train else 0.0)
        return (logits, logit_paddings), None

    def _to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        return super()._to_device(flat_batch(batch))

    def _local_to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        return device_layout(super()._local_to_device(batch))
