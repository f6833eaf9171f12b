"""ResNet v1 in PyTorch (upstream's PyTorch ResNet-50 and CIFAR ResNet-18) and its workload plumbing.

Shared by the ImageNet and CIFAR families (see `workloads.common.resnet_jax`).

Same modules, parameter names (``conv1``, ``bn1``, ``layer<s>.<b>.conv<i>``, ``...downsample.conv``
/ ``.bn``, ``fc``), shapes and initialisation as upstream: convs `pytorch_default_init`
(truncated LeCun normal, as flax's default), batch norm weight 1 / bias 0 except the last batch
norm of every residual branch (weight ``bn_init_scale``), ``fc`` weight N(0, 0.01), bias 0.
Modules are built and initialised in upstream's order, so the same seed draws the same
initial weights as upstream. Inputs are NCHW (the workload transposes the NHWC numpy batch).

Batch norm: running statistics are module buffers. `set_mode` puts the model in train or eval
mode and, in train mode, freezes the running statistics (momentum 0) unless
``update_batch_norm`` (upstream's `update_batch_norm_fn`). Batch norms are named ``bn*`` so
that `algoperf.param_utils.pytorch_param_type` types their weights as batch-norm parameters.

``padding_style="torch"`` (default) pads every 3x3 conv by one pixel on each side, as upstream;
``"flax"`` reproduces flax's "SAME" padding (bottom/right only for stride 2 on even sizes) so
that the parity test can compare against the JAX default. See `resnet_jax` for why they differ.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from algoperf import spec
from algoperf.frameworks.pytorch import pytorch_default_init, update_batch_norm_fn
from algoperf.frameworks.pytorch_workload import PyTorchClassificationWorkload
from workloads.common.resnet_layout import ResNetLayout

PADDING_STYLES = ("flax", "torch")


def make_activation(name: str) -> nn.Module:
    """relu / silu / gelu (tanh approximation, as upstream's GELU variant and flax)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "silu":
        return nn.SiLU(inplace=True)
    if name == "gelu":
        return nn.GELU(approximate="tanh")
    raise ValueError(f"unknown activation {name!r}; use relu, silu or gelu")


class SamePadConv2d(nn.Conv2d):
    """A Conv2d with TensorFlow/flax "SAME" padding (extra pixel at the bottom/right)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def conv3x3(cin: int, cout: int, stride: int, padding_style: str) -> nn.Conv2d:
    if padding_style == "flax" and stride != 1:
        return SamePadConv2d(cin, cout, 3, stride=stride, padding=0, bias=False)
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """3x3 -> BN -> act -> 3x3 -> BN, plus shortcut, then act."""

    expansion = 1

    def __init__(
        self, cin: int, width: int, stride: int, downsample: nn.Module | None,
        act: nn.Module, padding_style: str,
    ) -> None:  # fmt: skip
        super().__init__()
        self.conv1 = conv3x3(cin, width, stride, padding_style)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, 1, padding_style)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample
        self.act = act

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> BN -> act -> 3x3 (stride) -> BN -> act -> 1x1 (x4) -> BN, shortcut, act."""

    expansion = 4

    def __init__(
        self, cin: int, width: int, stride: int, downsample: nn.Module | None,
        act: nn.Module, padding_style: str,
    ) -> None:  # fmt: skip
        super().__init__()
        self.conv1 = conv1x1(cin, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, padding_style)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, width * 4)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.downsample = downsample
        self.act = act

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act(out + identity)


class ResNet(nn.Module):
    """A ResNet v1 described by a `ResNetLayout` (inputs NCHW float, outputs logits)."""

    def __init__(self, layout: ResNetLayout, padding_style: str = "torch") -> None:
        super().__init__()
        if padding_style not in PADDING_STYLES:
            raise ValueError(f"padding_style must be one of {PADDING_STYLES}")
        self.layout = layout
        self.act = make_activation(layout.activation)
        nf = layout.num_filters
        if layout.stem == "imagenet":
            self.conv1 = nn.Conv2d(3, nf, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(3, nf, 3, stride=1, padding=1, bias=False)
            self.maxpool = None
        self.bn1 = nn.BatchNorm2d(nf)

        block_cls = Bottleneck if layout.bottleneck else BasicBlock
        cin = nf
        for s, n in enumerate(layout.stage_sizes):
            blocks = []
            for b in range(n):
                width, stride = layout.width(s), layout.stride(s, b)
                downsample = None
                if layout.has_projection(s, b):
                    cout = width * block_cls.expansion
                    downsample = nn.Sequential(
                        OrderedDict(
                            [("conv", conv1x1(cin, cout, stride)), ("bn", nn.BatchNorm2d(cout))]
                        )
                    )
                blocks.append(block_cls(cin, width, stride, downsample, self.act, padding_style))
                cin = width * block_cls.expansion
            self.add_module(f"layer{s + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, layout.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                pytorch_default_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.fc.weight, std=1e-2)
        nn.init.zeros_(self.fc.bias)
        # The last BN of each residual branch starts at `bn_init_scale` (0: each block starts
        # as the identity, arXiv:1706.02677).
        for m in self.modules():
            if isinstance(m, BasicBlock | Bottleneck):
                nn.init.constant_(m.last_bn.weight, self.layout.bn_init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for s in range(len(self.layout.stage_sizes)):
            x = getattr(self, f"layer{s + 1}")(x)
        if self.layout.stem == "cifar":
            x = F.avg_pool2d(x, 4)
            x = torch.flatten(x, 1)
        else:
            x = torch.mean(x, dim=(2, 3))
        return self.fc(x)


def set_mode(model: nn.Module, *, train: bool, update_batch_norm: bool) -> None:
    """Train or eval mode; in train mode batch-norm running statistics update only if asked.

    Raises:
        ValueError: `update_batch_norm` in eval mode (upstream refuses it too).
    """
    if update_batch_norm and not train:
        raise ValueError("Batch norm statistics cannot be updated during evaluation.")
    model.train(train)
    if train:
        model.apply(functools.partial(update_batch_norm_fn, update_batch_norm=update_batch_norm))


class ResNetModel(PyTorchClassificationWorkload):
    """A PyTorch ResNet workload: batch-norm statistics live in the module; ``model_state`` None.

    TRAIN mode normalises with batch statistics and updates the running statistics only when
    ``update_batch_norm`` (otherwise they are frozen with `update_batch_norm_fn`, as upstream);
    EVAL mode normalises with the running statistics, without gradients. Families implement
    `_build_model` (their ``config.model`` -> `ResNet`).
    """

    _output_param_keys = ("fc.weight", "fc.bias")

    def _build_model(self) -> ResNet:
        raise NotImplementedError(f"{type(self).__name__} must build its ResNet")

    def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
        torch.random.manual_seed(int(rng[0]))
        model = self._build_model()
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
        del model_state, rng, dropout_rate  # no dropout in a ResNet
        model = params
        train = mode == spec.ForwardPassMode.TRAIN
        set_mode(model, train=train, update_batch_norm=update_batch_norm)
        with contextlib.nullcontext() if train else torch.no_grad():
            logits = model(augmented_and_preprocessed_input_batch["inputs"])
        return logits, None
