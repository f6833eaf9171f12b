"""Compatibility module: upstream's `algoperf.pytorch_utils` names, backed by our PyTorch back-end.

Upstream submissions do `USE_PYTORCH_DDP, RANK, DEVICE, N_GPUS = pytorch_setup()` at import time;
that only reads the environment here (no process group is created on import).
"""

from __future__ import annotations

from typing import Any

import torch

from algoperf.frameworks import pytorch as _pt
from algoperf.frameworks.pytorch import (  # noqa: F401  (re-exported upstream names)
    CustomDropout,
    CustomDropout2d,
    SequentialWithDropout,
    update_batch_norm_fn,
)


def pytorch_setup() -> tuple[bool, int, torch.device, int]:
    """(use_pytorch_ddp, rank, device, n_gpus) from the environment."""
    info = _pt.setup()
    return info.use_ddp, info.rank, info.device, info.n_gpus


def pytorch_init(use_pytorch_ddp: bool, rank: int, profiler: Any = None) -> None:
    """Initialise cuDNN autotuning, this rank's device and the DDP process group."""
    del use_pytorch_ddp, rank, profiler
    _pt.init(_pt.setup())


def sync_ddp_time(time: float, device: torch.device) -> float:
    """The maximum of `time` over DDP ranks."""
    return _pt.max_across_ranks(time, device)
