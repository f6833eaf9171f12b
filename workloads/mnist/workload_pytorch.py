"""MNIST, Fashion-MNIST and MNIST-1D in PyTorch: only the model plumbing; data and numbers are shared."""

from __future__ import annotations

import contextlib

import torch

from algoperf import spec
from algoperf.frameworks.pytorch_workload import PyTorchClassificationWorkload
from workloads.mnist.common import MnistData, num_dense_layers
from workloads.mnist.model_pytorch import build_model


class MnistWorkload(MnistData, PyTorchClassificationWorkload):
    @property
    def _output_param_keys(self) -> tuple[str, ...]:
        last = num_dense_layers(self.config.model)
        return (f"net.layer{last}.weight", f"net.layer{last}.bias")

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        torch.random.manual_seed(int(rng[0]))
        model = build_model(self.config.model)
        if getattr(self, "_initialised_once", False):
            model.reset_parameters()  # upstream re-initialises with its LeCun-normal init
        self._initialised_once = True
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
        dropout_rate: float = 0.0,
    ) -> tuple[spec.Tensor, spec.ModelAuxiliaryState]:
        del model_state, rng, update_batch_norm, dropout_rate
        model = params
        train = mode == spec.ForwardPassMode.TRAIN
        if model.training != train:  # nn.Module.train() walks every submodule: skip if set
            model.train(train)
        context = contextlib.nullcontext() if train else torch.no_grad()
        with context:
            logits = model(augmented_and_preprocessed_input_batch["inputs"])
        return logits, None
