"""PyTorch back-end: device choice, DDP set-up, device sync and the max-reduced clock.

One process per accelerator under `torchrun` (DDP is on iff ``LOCAL_RANK`` is set): NCCL on CUDA,
gloo on CPU. Each rank sees its slice of the global batch. Nothing here runs at import time.

Several hosts: start one ``torchrun`` per host with a rendezvous, e.g. under SLURM
``srun torchrun --nnodes=$SLURM_NNODES --nproc_per_node=8 --rdzv_backend=c10d
--rdzv_endpoint=$HEAD:29500 --rdzv_id=$SLURM_JOB_ID -m algoperf.cli run ...``. The rank of a
process is then the global ``RANK`` (it picks its rows of the batch, and rank 0 writes the logs)
and its device is ``cuda:<LOCAL_RANK>``; on one host the two are equal, as upstream assumes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """Where this process runs and how many processes share the batch."""

    use_ddp: bool
    rank: int  # global rank (``RANK``): rows of the batch, rank 0 writes
    world_size: int
    device: torch.device
    n_gpus: int
    local_rank: int = 0  # rank on this host (``LOCAL_RANK``): the CUDA device index


def setup() -> DistInfo:
    """Detect DDP from the environment (as upstream's `pytorch_setup`), without initialising it.

    Upstream reads only ``LOCAL_RANK`` (one host); the global ``RANK`` torchrun also sets is used
    when present, so that a multi-host run has one rank 0 and distinct batch shards.
    """
    use_ddp = "LOCAL_RANK" in os.environ
    local_rank = int(os.environ["LOCAL_RANK"]) if use_ddp else 0
    rank = int(os.environ.get("RANK", local_rank)) if use_ddp else 0
    world_size = int(os.environ.get("WORLD_SIZE", "1")) if use_ddp else 1
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    return DistInfo(use_ddp, rank, world_size, device, torch.cuda.device_count(), local_rank)


def init(info: DistInfo) -> None:
    """Process set-up before a run: cuDNN autotuning, this rank's device, the process group."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    torch.backends.cudnn.benchmark = True
    if info.use_ddp and not dist.is_initialized():
        if info.device.type == "cuda":
            torch.cuda.set_device(info.device)
        dist.init_process_group("nccl" if info.device.type == "cuda" else "gloo")


def sync(device: torch.device | None = None) -> None:
    """Wait for queued device work before a clock is read."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize(device)


def max_across_ranks(value: float, device: torch.device) -> float:
    """The maximum of `value` over DDP ranks (the slowest rank defines the clock)."""
    return max_across_ranks_many([value], device)[0]


def max_across_ranks_many(values: Sequence[float], device: torch.device) -> list[float]:
    """Element-wise maximum of `values` over DDP ranks, in one all-reduce (float64, exact)."""
    if not distributed():
        return [float(v) for v in values]
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def broadcast_int(value: int, device: torch.device) -> int:
    """Rank 0's `value` on every rank (exact for any signed 64-bit integer)."""
    if not distributed():
        return int(value)
    t = torch.tensor([int(value)], dtype=torch.int64, device=device)
    dist.broadcast(t, src=0)
    return int(t.item())


def distributed() -> bool:
    """True when a process group is up (several ranks share the run)."""
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if distributed():
        dist.barrier()


def shutdown() -> None:
    """Tear the process group down at the end of a run (as upstream's runner does)."""
    if distributed():
        dist.destroy_process_group()


def update_batch_norm_fn(module: nn.Module, update_batch_norm: bool) -> None:
    """Freeze (momentum 0) or restore batch-norm running statistics of one module."""
    if not isinstance(module, nn.modules.batchnorm._BatchNorm) and not getattr(
        module, "_is_batch_norm", False
    ):
        return
    if not update_batch_norm:
        if not hasattr(module, "momentum_backup"):
            module.momentum_backup = module.momentum
        if torch.is_tensor(module.momentum_backup):
            module.momentum = torch.zeros_like(module.momentum_backup)
        else:
            module.momentum = 0.0
    elif hasattr(module, "momentum_backup"):
        module.momentum = module.momentum_backup


class CustomDropout(nn.Module):
    """Dropout whose rate is an argument of `forward`, so it can change every step."""

    def __init__(self) -> None:
        super().__init__()
        self._supports_custom_dropout = True

    def forward(self, x: torch.Tensor, p: float) -> torch.Tensor:
        return F.dropout(x, p, training=self.training)


class CustomDropout2d(nn.Module):
    """Channel dropout whose rate is an argument of `forward`."""

    def __init__(self) -> None:
        super().__init__()
        self._supports_custom_dropout = True

    def forward(self, x: torch.Tensor, p: float) -> torch.Tensor:
        return F.dropout2d(x, p, training=self.training)


class SequentialWithDropout(nn.Sequential):
    """`nn.Sequential` that forwards the dropout rate to the layers that take one."""

    def __init__(self, *args: nn.Module, **kwargs: nn.Module) -> None:
        super().__init__(*args, **kwargs)
        self._supports_custom_dropout = True

    def forward(self, x: torch.Tensor, p: float) -> torch.Tensor:
        for module in self:
            x = module(x, p) if getattr(module, "_supports_custom_dropout", False) else module(x)
        return x


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP / DataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in unwrap(model).parameters() if p.requires_grad)


def pytorch_default_init(module: nn.Module) -> None:
    """Upstream's default init: LeCun normal truncated at +-2 std (std corrected), zero bias."""
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
    std = (1.0 / fan_in) ** 0.5 / 0.87962566103423978
    nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
    if module.bias is not None:
        nn.init.constant_(module.bias, 0.0)
