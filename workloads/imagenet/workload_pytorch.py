"""ImageNet ResNet-50 and ViT-S/16 (and their variants) in PyTorch: only the model plumbing.

`ImagenetWorkload` is the registry entry of the family: instantiating it returns the
`ImagenetResNetWorkload` or `ImagenetVitWorkload` of ``config.model['arch']``. The ResNet
plumbing is `workloads.common.resnet_pytorch.ResNetModel`, shared with CIFAR.

Under DDP every rank decodes only its rows of each training batch (the loader's ``shard``);
the rows are identical to the same rows of the unsharded batch, so the global batch does not
depend on the number of ranks. Eval batches are decoded whole by every rank, which then keeps
its slice of each device chunk (the shared eval path). The ranks' loaders share the cores.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from algoperf import spec
from algoperf.data.loader import default_num_workers
from algoperf.frameworks.pytorch_workload import PyTorchClassificationWorkload
from algoperf.workload_base import seed_from_rng
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

    def _numpy_batches(
        self,
        split: str,
        data_dir: str,
        global_batch_size: int,
        seed: int,
        num_examples: int | None = None,
        start_step: int = 0,
        **options: Any,
    ) -> Iterator[dict[str, np.ndarray]]:
        """As `ImagenetData`, but DDP ranks share the cores: each rank's loaders get
        ``default_num_workers() // world_size`` workers unless a count is set."""
        world = self._dist.world_size
        explicit = os.environ.get("ALGOPERF_NUM_DATA_WORKERS") or (
            split != "train" and self.eval_num_workers is not None
        )
        if world > 1 and not explicit:
            options.setdefault("num_workers", max(1, default_num_workers() // world))
        return super()._numpy_batches(
            split, data_dir, global_batch_size, seed, num_examples, start_step, **options
        )

    def _build_input_queue(
        self,
        data_rng: spec.RandomState,
        split: str,
        data_dir: str,
        global_batch_size: int,
        cache: bool | None = None,
        repeat_final_dataset: bool | None = None,
        num_batches: int | None = None,
        start_step: int = 0,
    ) -> Iterator[dict[str, Any]]:
        """As the base class, but each DDP rank decodes only its own rows of every batch."""
        world, rank = self._dist.world_size, self._dist.rank
        if world == 1:
            yield from super()._build_input_queue(
                data_rng,
                split,
                data_dir,
                global_batch_size,
                cache,
                repeat_final_dataset,
                num_batches,
                start_step,
            )
            return
        batches = self._numpy_batches(
            split,
            data_dir,
            global_batch_size,
            seed_from_rng(data_rng),
            start_step=start_step,
            shard=(rank, world),
        )
        for i, batch in enumerate(batches):
            if num_batches is not None and i >= num_batches:
                return
            yield self._local_to_device(batch)

    def _local_to_device(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """This rank's rows (already sliced by the loader) on its device, in the model layout."""
        out = {}
        for key, value in batch.items():
            if key == "inputs":
                value = self._layout_inputs(value)
            tensor = torch.from_numpy(np.ascontiguousarray(value))
            out[key] = tensor.to(self.device, non_blocking=True)
        return out


class ImagenetResNetWorkload(ResNetModel, ImagenetWorkload):
    """imagenet_resnet, _silu, _gelu, _large_bn_init: ResNet-50 on ImageNet."""

    def _build_model(self) -> ResNet:
        return resnet_pytorch.build_model(self.config.model)


class ImagenetVitWorkload(ViTModel, ImagenetWorkload):
    """imagenet_vit, _glu, _post_ln, _map: ViT-S/16 on ImageNet (RandAugment + mixup)."""


ImagenetWorkload.architectures = {"resnet": ImagenetResNetWorkload, "vit": ImagenetVitWorkload}
