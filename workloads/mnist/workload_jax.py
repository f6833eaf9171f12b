"""MNIST, Fashion-MNIST and MNIST-1D in JAX: only the model plumbing; data and numbers are shared."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from algoperf import spec
from algoperf.frameworks import jax as fjax
from algoperf.frameworks.jax_workload import JaxClassificationWorkload
from workloads.mnist.common import MnistData, check_model_options, num_dense_layers
from workloads.mnist.model_jax import build_model


class MnistWorkload(MnistData, JaxClassificationWorkload):
    @property
    def _output_param_keys(self) -> tuple[str, ...]:
        return (f"Dense_{num_dense_layers(self.config.model) - 1}",)

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        self._model = build_model(self.config.model)
        shape = tuple(check_model_options(self.config.model)["input_shape"])
        params = jax.jit(self._model.init)({"params": rng}, jnp.ones((1, *shape)))["params"]
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
        dropout_rate: float = 0.0,
    ) -> tuple[spec.Tensor, spec.ModelAuxiliaryState]:
        del model_state, mode, rng, update_batch_norm, dropout_rate
        logits = self._model.apply(
            {"params": params}, augmented_and_preprocessed_input_batch["inputs"]
        )
        return logits, None
