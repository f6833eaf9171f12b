"""ImageNet ResNet-50 and ViT-S/16 (and their variants) in JAX: only the model plumbing.

`ImagenetWorkload` is the registry entry of the family: instantiating it returns the
`ImagenetResNetWorkload` or `ImagenetVitWorkload` of ``config.model['arch']``. The ResNet
plumbing is `workloads.common.resnet_jax.ResNetModel`, shared with CIFAR.
"""

from __future__ import annotations

import jax

from algoperf import spec
from algoperf.frameworks import jax as fjax
from algoperf.frameworks.jax_workload import JaxClassificationWorkload
from workloads.common.resnet_jax import ResNet, ResNetModel
from workloads.imagenet import resnet_jax, vit_jax
from workloads.imagenet.common import ImagenetData


class ViTModel(JaxClassificationWorkload):
    """A flax ViT: no model state (None); dropout only in TRAIN mode, at the given rate."""

    _output_param_keys = ("head",)
    input_shape: tuple[int, ...] = (1, 224, 224, 3)

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        self._model = vit_jax.build_model(self.config.model)
        # Upstream initialises with the first half of a split key.
        params_rng, _ = jax.random.split(rng)
        params, variables = vit_jax.init(self._model, params_rng, self.input_shape)
        if variables:
            raise RuntimeError(f"the ViT has unexpected variable collections {list(variables)}")
        self._finish_init(params)
        # None rather than upstream's empty dict: `model_fn` returns None, and a state whose
        # structure changed after the first step would make a jitted train step compile again.
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
        use_running_average_bn: bool | None = None,
    ) -> tuple[spec.Tensor, spec.ModelAuxiliaryState]:
        del model_state, update_batch_norm, use_running_average_bn  # no batch norm
        train = mode == spec.ForwardPassMode.TRAIN
        rate = self.dropout_rate if dropout_rate is None else dropout_rate
        logits = vit_jax.forward(
            self._model,
            params,
            augmented_and_preprocessed_input_batch["inputs"],
            train=train,
            rng=rng if train else None,
            dropout_rate=rate if train else 0.0,
        )
        return logits, None


class ImagenetWorkload(ImagenetData, JaxClassificationWorkload):
    """Registry entry: ``ImagenetWorkload(config=...)`` is the ResNet or ViT workload of
    ``config.model['arch']`` (one class per architecture; variants are config data)."""


class ImagenetResNetWorkload(ResNetModel, ImagenetWorkload):
    """imagenet_resnet, _silu, _gelu, _large_bn_init: ResNet-50 on ImageNet."""

    def _build_model(self) -> ResNet:
        return resnet_jax.build_model(self.config.model)


class ImagenetVitWorkload(ViTModel, ImagenetWorkload):
    """imagenet_vit, _glu, _post_ln, _map: ViT-S/16 on ImageNet (RandAugment + mixup)."""


ImagenetWorkload.architectures = {"resnet": ImagenetResNetWorkload, "vit": ImagenetVitWorkload}
