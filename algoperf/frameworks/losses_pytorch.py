"""The AlgoPerf losses in PyTorch, one function per `spec.LossType`, shared by every family.

Same contract, shapes and conventions as `algoperf.frameworks.losses_jax` (read its docstring);
the PyTorch forms are upstream's PyTorch ones:

* `softmax_cross_entropy`: ``F.cross_entropy(..., label_smoothing=a)`` with the class axis moved
  next to the batch axis for sequences (upstream's WMT transposes the same way);
* `sigmoid_cross_entropy`: ``F.binary_cross_entropy_with_logits`` elementwise (upstream's ogbg);
* `ctc_loss`: ``F.ctc_loss(blank=0, reduction='none')`` on the time-major log-softmax. Unlike
  upstream's PyTorch workload, whose ``n_valid_examples`` counts target tokens without a mask
  but utterances with one, it always counts target tokens (JAX's rule), so the two frameworks
  normalise alike;
* `mean_absolute_error` / `mean_squared_error`: per-example means over the non-batch axes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from algoperf import spec

LossOutput = dict[str, Any]


def _masked(
    per_example: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero the padded entries; the number of valid entries."""
    if mask is None:
        n = torch.tensor(per_example.numel(), dtype=per_example.dtype, device=per_example.device)
        return per_example, n
    mask = mask.reshape(*mask.shape, *(1,) * (per_example.dim() - mask.dim()))
    kept = torch.where(mask != 0, per_example * mask, 0.0)
    return kept, mask.sum()


def _output(per_example: torch.Tensor, n_valid: torch.Tensor) -> LossOutput:
    return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}


def softmax_cross_entropy(
    label_batch: torch.Tensor,
    logits_batch: torch.Tensor,
    mask_batch: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """Softmax cross-entropy over the last axis; ids or one-hot/soft labels."""
    soft = label_batch.dim() == logits_batch.dim()
    if not soft and label_batch.dim() != logits_batch.dim() - 1:
        raise ValueError(
            f"softmax cross-entropy: labels {tuple(label_batch.shape)} do not fit logits "
            f"{tuple(logits_batch.shape)} (class ids drop the last axis; soft labels keep it)"
        )
    logits = logits_batch.movedim(-1, 1) if logits_batch.dim() > 2 else logits_batch
    if soft:
        labels = label_batch.to(logits.dtype)
        labels = labels.movedim(-1, 1) if labels.dim() > 2 else labels
    else:
        labels = label_batch.long()
    per_example = F.cross_entropy(
        logits, labels, reduction="none", label_smoothing=float(label_smoothing)
    )
    return _output(*_masked(per_example, mask_batch))


def sigmoid_cross_entropy(
    label_batch: torch.Tensor,
    logits_batch: torch.Tensor,
    mask_batch: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    *,
    apply_label_smoothing: bool = True,
) -> LossOutput:
    """Elementwise sigmoid cross-entropy; ``per_example`` has the logits' shape."""
    if label_batch.shape != logits_batch.shape:
        raise ValueError(
            f"sigmoid cross-entropy: labels {tuple(label_batch.shape)} and logits "
            f"{tuple(logits_batch.shape)} must have the same shape"
        )
    labels = label_batch.to(logits_batch.dtype)
    if mask_batch is not None:
        full = mask_batch.reshape(*mask_batch.shape, *(1,) * (labels.dim() - mask_batch.dim()))
        # Masked labels (NaN in ogbg) must not reach the gradient: replace them (upstream: -1).
        labels = torch.where(full != 0, labels, -1.0)
    if apply_label_smoothing and label_smoothing:
        labels = (1.0 - label_smoothing) * labels + label_smoothing / labels.shape[-1]
    per_example = F.binary_cross_entropy_with_logits(logits_batch, labels, reduction="none")
    return _output(*_masked(per_example, mask_batch))


def ctc_loss(
    label_batch: tuple[torch.Tensor, torch.Tensor],
    logits_batch: tuple[torch.Tensor, torch.Tensor],
    mask_batch: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    *,
    blank_id: int = 0,
) -> LossOutput:
    """Per-utterance CTC loss; ``n_valid_examples`` counts target tokens."""
    del label_smoothing  # upstream ignores it
    targets, target_paddings = label_batch
    logits, logit_paddings = logits_batch
    logprobs = torch.log_softmax(logits, dim=-1)
    input_lengths = (1 - logit_paddings).sum(dim=1).long()
    target_lengths = (1 - target_paddings).sum(dim=1).long()
    per_seq = F.ctc_loss(
        logprobs.permute(1, 0, 2),
        targets.long(),
        input_lengths,
        target_lengths,
        blank=blank_id,
        reduction="none",
    )
    tokens = target_lengths.to(per_seq.dtype)
    if mask_batch is not None:
        per_seq = torch.where(mask_batch != 0, per_seq * mask_batch, 0.0)
        tokens = tokens * mask_batch
    return _output(per_seq, torch.clamp(tokens.sum(), min=1))


def _per_example_mean(values: torch.Tensor) -> torch.Tensor:
    return values.mean(dim=tuple(range(1, values.dim()))) if values.dim() > 1 else values


def _per_example_error(
    label_batch: Any, logits_batch: Any, mask_batch: Any, label_smoothing: float, squared: bool
) -> LossOutput:
    del label_smoothing  # upstream ignores it
    if squared:
        error = F.mse_loss(logits_batch, label_batch, reduction="none")
    else:
        error = F.l1_loss(logits_batch, label_batch, reduction="none")
    return _output(*_masked(_per_example_mean(error), mask_batch))


def mean_absolute_error(
    label_batch: Any, logits_batch: Any, mask_batch: Any = None, label_smoothing: float = 0.0
) -> LossOutput:
    """Per-example mean |output - target| over the non-batch axes (fastMRI's per-slice L1)."""
    return _per_example_error(label_batch, logits_batch, mask_batch, label_smoothing, False)


def mean_squared_error(
    label_batch: Any, logits_batch: Any, mask_batch: Any = None, label_smoothing: float = 0.0
) -> LossOutput:
    """Per-example mean squared error over the non-batch axes."""
    return _per_example_error(label_batch, logits_batch, mask_batch, label_smoothing, True)


LOSSES: dict[spec.LossType, Callable[..., LossOutput]] = {
    spec.LossType.SOFTMAX_CROSS_ENTROPY: softmax_cross_entropy,
    spec.LossType.SIGMOID_CROSS_ENTROPY: sigmoid_cross_entropy,
    spec.LossType.CTC_LOSS: ctc_loss,
    spec.LossType.MEAN_ABSOLUTE_ERROR: mean_absolute_error,
    spec.LossType.MEAN_SQUARED_ERROR: mean_squared_error,
}


def loss_fn_for(loss_type: spec.LossType) -> Callable[..., LossOutput]:
    """The PyTorch loss function of `loss_type`."""
    return LOSSES[loss_type]
