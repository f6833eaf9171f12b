"""finewebedu_lm in JAX: the flax decoder on window batches.

``batch`` holds int32 (batch, 1024) ``inputs`` and ``targets`` and, in eval batches, float32
per-token ``weights``; all sharded along the leading axis, params (float32) replicated. No model
state (None), no dropout. `model_fn` casts the parameters to the compute dtype (bfloat16 in the
registered config), runs the decoder and returns float32 logits (batch, 1024, vocab).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from algoperf import spec
from algoperf.frameworks import jax as fjax
from algoperf.frameworks.jax_workload import JaxWorkload
from workloads.finewebedu_lm import model_jax
from workloads.finewebedu_lm.common import LmData


class LmWorkload(LmData, JaxWorkload):
    """Registry entry of the finewebedu_lm family; ``config.model`` configures the decoder."""

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        self._model = model_jax.build_model(self.config.model)
        params_rng, _ = jax.random.split(rng)  # as upstream, which splits off a key it never uses
        params = model_jax.init(self._model, params_rng)
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
        del mode, rng, update_batch_norm, dropout_rate  # no dropout, no batch norm
        if model_state is not None:
            raise ValueError(f"finewebedu_lm has no model state; got {type(model_state).__name__}")
        inputs = augmented_and_preprocessed_input_batch["inputs"]
        logits = model_jax.apply(self._model, params, inputs)
        return logits.astype(jnp.float32), None
