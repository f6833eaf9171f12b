"""criteo1tb (and _layernorm, _embed_init, _resnet, _test) in PyTorch: the DLRM module.

Under DDP every rank reads and computes only its rows of each global batch and the model is
wrapped in ``DistributedDataParallel`` (the table's dense gradient is all-reduced like any
other). No model state (None); dropout (rate 0 by default) only in TRAIN mode; EVAL runs
without gradients.
"""

from __future__ import annotations

import contextlib

import torch

from algoperf import spec
from algoperf.frameworks.pytorch_workload import PyTorchWorkload
from workloads.criteo1tb import model_pytorch
from workloads.criteo1tb.common import CriteoData
from workloads.criteo1tb.param_map import pytorch_dense_names


class Criteo1TbWorkload(CriteoData, PyTorchWorkload):
    """Registry entry of the criteo1tb family; ``config.model`` configures the DLRM."""

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        torch.random.manual_seed(int(rng[0]))
        model = model_pytorch.build_model(self.config.model)
        self._finish_init(model)
        return self._wrap_model(model), None

    def is_output_params(self, param_key: spec.ParameterKey) -> bool:
        """The last top Linear (upstream names ``top_mlp.4``, a position of its own layout)."""
        last = pytorch_dense_names(self.layout)[1][-1]
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
        with contextlib.nullcontext() if train else torch.no_grad():
            logits = model(
                augmented_and_preprocessed_input_batch["inputs"],
                dropout_rate=rate if train else 0.0,
            )
        return logits, None
