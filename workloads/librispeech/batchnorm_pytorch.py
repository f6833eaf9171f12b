"""Padding-aware BatchNorm statistics for the PyTorch speech models, global under DDP.

The rules' single definition (the JAX models', where the sharded global batch is one program):
in training, a BatchNorm normalises with the mean and (biased) variance of the valid frames of
the whole global batch. Under PyTorch DDP each rank holds only its rows, so `masked_moments`
all-reduces the frame count and the per-channel sums, then the sums of squared deviations from
the global mean (two differentiable all-reduces, `torch.distributed.nn.functional.all_reduce`,
so gradients flow to every rank's frames as in the single-program computation). Upstream's
PyTorch DeepSpeech all-reduces too; its PyTorch Conformer keeps per-rank statistics, which made
its two frameworks' Conformers differ; here both models share this function.

The running statistics then follow the same global moments on every rank, so they stay equal
across ranks without a broadcast. ``update_running_stats`` (set by the workload's ``model_fn``
from ``update_batch_norm``) freezes them; the momentum is lingvo's (``running = m * running +
(1 - m) * batch``, m = 0.999), so PyTorch's ``momentum = 0`` convention does not apply.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist


def _world() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    """Differentiable sum over ranks (its backward all-reduces the gradient)."""
    # Deprecated in favour of the functional collectives, which have no autograd rule here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from torch.distributed.nn.functional import all_reduce

        return all_reduce(t, op=dist.ReduceOp.SUM)


def masked_moments(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance over the valid frames of (batch, time, channels).

    Args:
        x: (batch, time, channels) activations.
        mask: (batch, time, 1), 1.0 at valid frames.

    Returns:
        (channels,) mean and variance of the valid frames of the global batch (all DDP ranks
        together when a process group is up), a frame count of 0 treated as 1.
    """
    count = mask.sum(dim=(0, 1))
    total = (x * mask).sum(dim=(0, 1))
    synced = _world() > 1
    if synced:
        both = _all_reduce(torch.cat([count, total]))
        count, total = both[:1], both[1:]
    count = count.clamp(min=1.0)
    mean = total / count
    squares = (torch.square(x - mean) * mask).sum(dim=(0, 1))
    if synced:
        squares = _all_reduce(squares)
    return mean, squares / count


def update_running(
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    momentum: float,
) -> None:
    """lingvo's running averages in place (no gradient)."""
    with torch.no_grad():
        running_mean.mul_(momentum).add_((1 - momentum) * mean.detach())
        running_var.mul_(momentum).add_((1 - momentum) * var.detach())
