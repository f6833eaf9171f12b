"""fastMRI U-Net (and its variants) in JAX: only the model plumbing.

``model_state`` is None (no batch norm). Dropout (channel dropout, default rate 0.0) acts in
TRAIN mode only, from the ``dropout`` stream of `rng`. Eval returns per-slice SSIM and MAE
computed on the device by the shared `workloads.fastmri.metrics` definitions.
"""

from __future__ import annotations

from algoperf import spec
from algoperf.frameworks import jax as fjax
from algoperf.frameworks.jax_workload import JaxWorkload
from workloads.fastmri import model_jax
from workloads.fastmri.common import FastmriData


class FastmriWorkload(FastmriData, JaxWorkload):
    """fastmri, _model_size, _tanh, _layernorm: a U-Net reconstructing 4x-undersampled knees."""

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        self._model = model_jax.build_model(self.config.model)
        params = model_jax.init(self._model, rng)
        self._finish_init(params)
        return fjax.replicate(params), None

    def is_output_params(self, param_key: spec.ParameterKey) -> bool:
        return param_key == "Conv_0"

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
        outputs = self._model.apply(
            {"params": params},
            augmented_and_preprocessed_input_batch["inputs"],
            train=train,
            dropout_rate=rate,
            rngs={"dropout": rng} if train else {},
        )
        return outputs, None
