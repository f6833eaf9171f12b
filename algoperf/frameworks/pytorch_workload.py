"""The PyTorch side shared by all workloads: per-rank batches, per-example eval, losses by `LossType`."""

from __future__ import annotations

import abc
import inspect
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from algoperf import metrics, param_utils, spec
from algoperf.data.loader import default_num_workers
from algoperf.frameworks import losses_pytorch
from algoperf.frameworks import pytorch as fpt
from algoperf.workload_base import ConfiguredWorkload


class PyTorchWorkload(ConfiguredWorkload):
    """Each DDP rank gets its contiguous slice of the global batch; the model lives on its device."""

    framework = "pytorch"
    loss_functions = losses_pytorch.LOSSES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dist = fpt.setup()

    @property
    def device(self) -> torch.device:
        return self._dist.device

    def _eval_num_shards(self) -> int:
        return self._dist.world_size

    def _layout_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Numpy inputs -> the model's layout (images: NHWC -> NCHW). Identity by default."""
        if inputs.ndim == 4:
            return inputs.transpose(0, 3, 1, 2)
        return inputs

    # Per-rank loading: a family whose `_numpy_batches` takes ``shard`` (and ``num_workers``)
    # decodes only this rank's rows of every train and eval batch; others decode whole batches
    # and keep their slice.

    def _data_shard(self) -> tuple[int, int] | None:
        world = self._dist.world_size
        if world > 1 and _accepts(self._numpy_batches, "shard"):
            return self._dist.rank, world
        return None

    def _loader_options(self, split: str) -> dict[str, Any]:
        """This rank's shard; DDP ranks share the cores: each rank's loader gets
        ``default_num_workers() // world_size`` workers unless a count is set."""
        shard = self._data_shard()
        if shard is None:
            return {}
        options: dict[str, Any] = {"shard": shard}
        explicit = os.environ.get("ALGOPERF_NUM_DATA_WORKERS") or (
            split != "train" and self.eval_num_workers is not None
        )
        if not explicit and _accepts(self._numpy_batches, "num_workers"):
            options["num_workers"] = max(1, default_num_workers() // shard[1])
        return options

    def _to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        world, rank = self._dist.world_size, self._dist.rank
        if world > 1:
            per_rank = len(next(iter(batch.values()))) // world
            batch = {k: v[rank * per_rank : (rank + 1) * per_rank] for k, v in batch.items()}
        return self._local_to_device(batch)

    def _local_to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """This rank's rows on its device, inputs in the model's layout."""
        out = {}
        for key, value in batch.items():
            if key == "inputs":
                value = self._layout_inputs(value)
            tensor = torch.from_numpy(np.ascontiguousarray(value))
            out[key] = tensor.to(self.device, non_blocking=True)
        return out

    def _gather_eval_parts(self, local: Any) -> list[Any]:
        if self._dist.world_size > 1 and dist.is_initialized():
            gathered: list[Any] = [None] * self._dist.world_size
            dist.all_gather_object(gathered, local)
            return gathered
        return [local]

    @abc.abstractmethod
    def _per_example_metrics(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, torch.Tensor]:
        """Per-example metric tensors for this rank's slice of one batch."""

    def _eval_local(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, np.ndarray]:
        with torch.no_grad():
            values = self._per_example_metrics(params, model_state, batch, rng)
        return {k: v.detach().float().cpu().numpy() for k, v in values.items()}

    def _eval_batch(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, np.ndarray]:
        with torch.no_grad():
            values = self._per_example_metrics(params, model_state, batch, rng)
        out = {}
        for key, value in values.items():
            value = value.detach().float()
            if self._dist.world_size > 1 and dist.is_initialized():
                # Ranks hold contiguous slices, so gathering in rank order restores example order.
                parts = [torch.empty_like(value) for _ in range(self._dist.world_size)]
                dist.all_gather(parts, value)
                value = torch.cat(parts)
            out[key] = value.cpu().numpy()
        return out

    def _finish_init(self, model: torch.nn.Module) -> None:
        """Record param shapes and types (the `spec.Workload` contract of `init_model_fn`)."""
        self._param_shapes = param_utils.pytorch_param_shapes(model)
        self._param_types = param_utils.pytorch_param_types(self._param_shapes)

    def _wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move to this rank's device; wrap in DDP when several processes share the batch."""
        model.to(self.device)
        if self._dist.use_ddp and dist.is_initialized():
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        return model


class PyTorchClassificationWorkload(PyTorchWorkload):
    """Softmax cross-entropy classification: per-example accuracy and loss, reported as means."""

    eval_accumulation = metrics.CLASSIFICATION

    @property
    def num_classes(self) -> int:
        return int(self.config.model["num_classes"])

    def _per_example_metrics(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, torch.Tensor]:
        logits, _ = self.model_fn(
            params,
            batch,
            model_state,
            spec.ForwardPassMode.EVAL,
            rng,
            update_batch_norm=False,
            dropout_rate=0.0,
        )
        labels = batch["targets"]
        if labels.dim() == logits.dim():
            labels = labels.argmax(dim=-1)
        loss = self.loss_fn(labels, logits)["per_example"]
        correct = (logits.argmax(dim=-1) == labels).float()
        return {"accuracy": correct, "loss": loss}


def _accepts(numpy_batches: Any, keyword: str) -> bool:
    """Whether a family's `_numpy_batches` takes `keyword` (``shard``, ``num_workers``)."""
    params = inspect.signature(numpy_batches).parameters.values()
    return any(p.kind is p.VAR_KEYWORD or p.name == keyword for p in params)
