"""criteo1tb (and _layernorm, _embed_init, _resnet, _test) in JAX: the flax DLRM.

``inputs`` (B, 39) float32 and ``targets`` (B,) are sharded along the batch axis; the
parameters, the (vocab, 128) table included, are replicated on every device (as upstream). No
model state (None); dropout (rate 0 by default) only in TRAIN mode.
"""

from __future__ import annotations

from algoperf import spec
from algoperf.frameworks import jax as fjax
from algoperf.frameworks.jax_workload import JaxWorkload
from workloads.criteo1tb import model_jax
from workloads.criteo1tb.common import CriteoData
from workloads.criteo1tb.param_map import output_dense


class Criteo1TbWorkload(CriteoData, JaxWorkload):
    """Registry entry of the criteo1tb family; ``config.model`` configures the DLRM."""

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        self._model = model_jax.build_model(self.config.model)
        params = model_jax.init(self._model, rng)
        self._finish_init(params)
        return fjax.replicate(params), None

    def is_output_params(self, param_key: spec.ParameterKey) -> bool:
        return param_key == output_dense(self.layout)

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
        del model_state, update_batch_norm  # no batch norm
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
