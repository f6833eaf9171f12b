"""ImageNet ResNet-50 and ViT-S/16 (and their variants) in PyTorch: only the model plumbing.

`ImagenetWorkload` is the registry entry of the family: instantiating it returns the
`ImagenetResNetWorkload` or `ImagenetVitWorkload` of ``config.model['arch']``. The ResNet
plumbing is `workloads.common.resnet_pytorch.ResNetModel`, shared with CIFAR.

Under DDP every rank decodes only its rows of every train and eval batch (the loader's
``shard``, passed by `algoperf.frameworks.pytorch_workload`); the rows are identical to the same
rows of the unsharded batch, so the global batch does not depend on the number of ranks.
"""

from __future__ import annotations

import contextlib

import torch

from algoperf import spec
from algoperf.frameworks.pytorch_workload import PyTorchClassificationWorkload
from workloads.common.resnet_pytorch import ResNet, ResNetModel
from workloads.imagenet import resnet_pytorch, vit_pytorch
from workloads.imagenet.common import ImagenetData


def _grad_context(train: bool) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext() if train else torch.no_grad()


class ViTModel(PyTorchClassificationWorkload):
    """A PyTorch ViT: no model state; dropout only in TRAIN mode, at the given rate."""

    _output_param_keys = ("head.weight", "head.bias")

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        torch.random.manual_seed(int(rng[0]))
        model = vit_pytorch.build_model(self.config.model)
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
        del model_state, rng, update_batch_norm  # no batch norm
        model = params
        train = mode == spec.ForwardPassMode.TRAIN
        rate = self.dropout_rate if dropout_rate is None else float(dropout_rate)
        model.train(train)
        with _grad_context(train):
            logits = model(
                augmented_and_preprocessed_input_batch["inputs"],
                dropout_rate=rate if train else 0.0,
            )
        return logits, None


class ImagenetWorkload(ImagenetData, PyTorchClassificationWorkload):
    """Registry entry: ``ImagenetWorkload(config=...)`` is the ResNet or ViT workload of
    ``config.model['arch']`` (one class per architecture; variants are config data)."""


class ImagenetResNetWorkload(ResNetModel, ImagenetWorkload):
    """imagenet_resnet, _silu, _gelu, _large_bn_init: ResNet-50 on ImageNet."""

    def _build_model(self) -> ResNet:
        return resnet_pytorch.build_model(self.config.model)


class ImagenetVitWorkload(ViTModel, ImagenetWorkload):
    """imagenet_vit, _glu, _post_ln, _map: ViT-S/16 on ImageNet (RandAugment + mixup)."""


ImagenetWorkload.architectures = {"resnet": ImagenetResNetWorkload, "vit": ImagenetVitWorkload}
