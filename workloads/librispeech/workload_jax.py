"""LibriSpeech Conformer and DeepSpeech (and their variants) in JAX: only the model plumbing.

``config.model['arch']`` picks `conformer_jax` or `deepspeech_jax`. ``model_state`` is
``{"batch_stats": ...}`` (None for DeepSpeech with ``layernorm_everywhere``, which has no
BatchNorm); in TRAIN mode BatchNorm normalises with the statistics of the valid frames of the
whole global batch (the batch is sharded, the computation is one program over it) and updates
the running statistics only when ``update_batch_norm``; EVAL uses the running statistics.
Dropout and SpecAugment draw from `rng` in TRAIN mode only. ``model_fn`` returns
``((logits, logit_paddings), model_state)``, upstream's pair.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from algoperf import spec
from algoperf.frameworks import jax as fjax
from algoperf.frameworks.jax_workload import JaxWorkload
from workloads.librispeech import conformer_jax, deepspeech_jax
from workloads.librispeech.common import (
    LibrispeechData,
    architecture,
    device_layout,
    flat_batch,
)

_MODELS = {"conformer": conformer_jax, "deepspeech": deepspeech_jax}


class LibrispeechWorkload(LibrispeechData, JaxWorkload):
    """Registry entry of the LibriSpeech family (both architectures, every variant)."""

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        module = _MODELS[architecture(self.config)]
        self._model = module.build_model(self.config.model)
        variables = dict(module.init(self._model, rng))
        params = variables.pop("params")
        self._finish_init(params)
        model_state = variables or None
        if model_state is not None:
            model_state = fjax.replicate(model_state)
        return fjax.replicate(params), model_state

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
        train = mode == spec.ForwardPassMode.TRAIN
        update = bool(update_batch_norm) and train and model_state is not None
        rate = self.dropout_rate if dropout_rate is None else dropout_rate
        audio, paddings = augmented_and_preprocessed_input_batch["inputs"]
        variables = {"params": params, **(model_state or {})}
        outputs = self._model.apply(
            variables,
            audio,
            paddings,
            train=train,
            update_batch_norm=update,
            dropout_rate=rate if train else 0.0,
            rngs={"dropout": rng} if train else {},
            mutable=["batch_stats"] if update else False,
        )
        if update:
            (logits, logit_paddings), new_state = outputs
            return (logits, logit_paddings), dict(new_state)
        logits, logit_paddings = outputs
        return (logits, logit_paddings), model_state

    def _to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        return device_layout(fjax.shard_batch(flat_batch(batch)))
