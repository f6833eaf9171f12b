"""What the JAX and PyTorch criteo1tb workloads share: batches, the loss rule, the eval.

Batches come from `workloads.criteo1tb.data` (``inputs`` (B, 39) float32: 13 dense features then
26 categorical ids as floats; ``targets`` (B,) float32 click labels; eval batches add
``weights``, 0 on padding rows). Under PyTorch DDP each rank reads only its rows of every global
batch (``shard``), as the platform's per-rank loading asks.

Loss: upstream's Criteo ``loss_fn`` flattens labels, logits and mask to (B,) and computes the
sigmoid binary cross-entropy per example, ignoring label smoothing; ``summed`` is the masked
sum, ``n_valid_examples`` the mask's sum. Submissions therefore pass (B,) targets with the
model's (B, 1) logits.

Eval metric: ``loss`` = the sum over the split's real rows of the per-example loss, divided by
the split's number of examples, as upstream (its padded rows carry weight 0 and add nothing to
the sum, and it divides by ``num_examples``). Here padding rows are dropped before an exact sum
(`algoperf.metrics`), which gives the same value up to float rounding (upstream sums float32 per
batch, then float64 over batches). eval_train covers upstream's per-framework count: the
validation size rounded up to whole eval batches (`WorkloadConfig.num_eval_train_examples_for`).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import numpy as np

from algoperf import metrics, spec
from algoperf.data import DataError
from algoperf.workload_config import WorkloadConfig
from workloads.criteo1tb import data
from workloads.criteo1tb.param_map import DlrmLayout, dlrm_layout


class CriteoData:
    """Mixin: criteo1tb batches, the fail-early data check, the loss and the per-example eval."""

    config: WorkloadConfig
    eval_accumulation = metrics.Accumulation(means=("loss",))
    # Upstream's Criteo loss ignores ``label_smoothing``.
    loss_options = MappingProxyType({"apply_label_smoothing": False})

    @property
    def layout(self) -> DlrmLayout:
        """The model's layout from ``config.model`` (vocabulary, LayerNorm, ResNet)."""
        return dlrm_layout(self.config.model)

    def _numpy_batches(
        self,
        split: str,
        data_dir: str,
        global_batch_size: int,
        seed: int,
        num_examples: int | None = None,
        start_step: int = 0,
        *,
        shard: tuple[int, int] = (0, 1),
    ) -> Iterator[dict[str, np.ndarray]]:
        """`data.train_batches` / `data.eval_batches`; `shard` = (rank, world) under DDP."""
        if split == "train":
            return data.train_batches(
                data_dir, global_batch_size, seed, start_step=start_step, shard=shard
            )
        return data.eval_batches(data_dir, split, global_batch_size, num_examples, shard=shard)

    def check_data(self, data_dir: str) -> None:
        """Fail before any log is written if the split sizes differ from the config's."""
        sizes = data.split_sizes(data_dir)
        expected = {
            "train": self.config.num_train_examples,
            "validation": self.config.num_validation_examples,
            "test": self.config.num_test_examples,
        }
        for split, rows in sizes.items():
            if rows != expected[split]:
                raise DataError(
                    f"{data_dir}: criteo1tb {split} has {rows:,} rows, {self.config.name} "
                    f"expects {expected[split]:,}; prepare the complete 24 day files again"
                )
        eval_train = self.num_eval_train_examples  # type: ignore[attr-defined]
        if eval_train > sizes["train"]:
            raise DataError(
                f"{data_dir}: criteo1tb eval_train needs {eval_train:,} train rows, the data "
                f"has {sizes['train']:,}"
            )

    def loss_fn(
        self,
        label_batch: spec.Tensor,
        logits_batch: spec.Tensor,
        mask_batch: spec.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, spec.Tensor]:
        """Per-example sigmoid cross-entropy on (B,) labels and logits (upstream's reshape)."""
        n = label_batch.shape[0]
        mask = None if mask_batch is None else mask_batch.reshape(n)
        return super().loss_fn(  # type: ignore[misc]
            label_batch.reshape(n), logits_batch.reshape(n), mask, label_smoothing
        )

    def _per_example_metrics(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, Any]:
        """Per example: the loss (0 on padding rows, which the eval drops)."""
        logits, _ = self.model_fn(  # type: ignore[attr-defined]
            params, batch, model_state, spec.ForwardPassMode.EVAL, rng, False, 0.0
        )
        loss = self.loss_fn(batch["targets"], logits, batch.get("weights"))
        return {"loss": loss["per_example"]}
