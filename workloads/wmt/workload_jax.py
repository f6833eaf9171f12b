"""wmt (and _post_ln, _attention_temp, _glu_tanh) in JAX: the flax Transformer on packed batches.

``batch`` holds int32 (batch, 256) ``inputs`` and ``targets``, optionally the packed
``*_segmentation`` / ``*_position`` arrays (training), and float32 per-token ``weights``; all
sharded along the leading axis, params replicated. No model state (None); dropout only in TRAIN
mode, from the ``dropout`` rng stream, its rate a traced argument. Translation for BLEU is
`workloads.wmt.decode_jax.translate` on the eval chunk, sharded like any batch.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from algoperf import spec
from algoperf.frameworks import jax as fjax
from algoperf.frameworks.jax_workload import JaxWorkload
from workloads.wmt import decode_jax, model_jax
from workloads.wmt.common import WmtData

# Batch key (upstream's names) -> the model's keyword.
_PACKED = {
    "inputs_position": "inputs_positions",
    "targets_position": "targets_positions",
    "inputs_segmentation": "inputs_segmentation",
    "targets_segmentation": "targets_segmentation",
}


class WmtWorkload(WmtData, JaxWorkload):
    """Registry entry of the wmt family; the variant's ``config.model`` configures the model."""

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        self._model = model_jax.build_model(self.config.model)
        params_rng, _ = jax.random.split(rng)  # upstream splits off a dropout key it never uses
        params = jax.jit(model_jax.init, static_argnums=0)(self._model, params_rng)
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
            raise ValueError(f"wmt has no model state; got {type(model_state).__name__}")
        batch = augmented_and_preprocessed_input_batch
        train = mode == spec.ForwardPassMode.TRAIN
        rate = self.dropout_rate if dropout_rate is None else dropout_rate
        logits = self._model.apply(
            {"params": params},
            batch["inputs"],
            batch["targets"],
            **{arg: batch.get(key) for key, arg in _PACKED.items()},
            train=train,
            dropout_rate=rate if train else 0.0,
            rngs={"dropout": rng} if train else {},
        )
        return logits, None

    def _translate(self, params: Any, inputs: np.ndarray) -> np.ndarray:
        return decode_jax.translate(
            self._model,
            params,
            fjax.shard_batch(np.asarray(inputs, np.int32)),
            beam_size=self.beam_size,
            alpha=self.decode_alpha,
            max_decode_len=self.max_decode_len,
        )
