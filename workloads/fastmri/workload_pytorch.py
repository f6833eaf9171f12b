"""fastMRI U-Net (and its variants) in PyTorch: only the model plumbing.

``model_state`` is None. Dropout (channel dropout, default 0.0) acts in TRAIN mode only; EVAL
runs without gradients. Eval returns per-slice SSIM and MAE computed on the device by the shared
`workloads.fastmri.metrics` definitions.
"""

from __future__ import annotations

import contextlib

import torch

from algoperf import spec
from algoperf.frameworks.pytorch_workload import PyTorchWorkload
from workloads.fastmri import model_pytorch
from workloads.fastmri.common import FastmriData


class FastmriWorkload(FastmriData, PyTorchWorkload):
    """fastmri, _model_size, _tanh, _layernorm: a U-Net reconstructing 4x-undersampled knees."""

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        torch.random.manual_seed(int(rng[0]))
        model = model_pytorch.build_model(self.config.model)
        self._finish_init(model)
        return self._wrap_model(model), None

    def is_output_params(self, param_key: spec.ParameterKey) -> bool:
        last = f"up_conv.{self.num_pool_layers - 1}.1"
        return param_key in (f"{last}.weight", f"{last}.bias")

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
        del model_state, rng, update_batch_norm  # no batch norm; torch's own dropout stream
        model = params
        train = mode == spec.ForwardPassMode.TRAIN
        rate = self.dropout_rate if dropout_rate is None else float(dropout_rate)
        if model.training != train:
            model.train(train)
        context = contextlib.nullcontext() if train else torch.no_grad()
        with context:
            outputs = model(augmented_and_preprocessed_input_batch["inputs"], dropout_rate=rate)
        return outputs, None
