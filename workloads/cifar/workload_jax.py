"""CIFAR-10 ResNet-18 in JAX: the shared flax ResNet plumbing with the CIFAR data and model.

``model_state`` holds the batch statistics (upstream's JAX CIFAR workload returned the params
there by mistake).
"""

from __future__ import annotations

from typing import Any

from workloads.cifar import model_jax
from workloads.cifar.common import CifarData
from workloads.common.resnet_jax import ResNetModel


class CifarWorkload(CifarData, ResNetModel):
    input_shape = (1, 32, 32, 3)

    def _build_model(self) -> Any:
        return model_jax.build_model(self.config.model)
