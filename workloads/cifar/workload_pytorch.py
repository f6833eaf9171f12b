"""CIFAR-10 ResNet-18 in PyTorch: the shared ResNet plumbing with the CIFAR data and model."""

from __future__ import annotations

import torch

from workloads.cifar import model_pytorch
from workloads.cifar.common import CifarData
from workloads.common.resnet_pytorch import ResNetModel


class CifarWorkload(CifarData, ResNetModel):
    def _build_model(self) -> torch.nn.Module:
        return model_pytorch.build_model(self.config.model)
