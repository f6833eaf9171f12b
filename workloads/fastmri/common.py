"""What the JAX and PyTorch fastMRI workloads share: numpy batches, the data check, output params.

Batches come from `workloads.fastmri.data.numpy_batches` ('inputs' and 'targets' float32
(B, 320, 320), 'mean', 'std', 'volume_max' (B,), eval 'weights'); split sizes come from the
config (upstream's counts; tests use `data.fixture_config`), and `FastmriData.check_data` refuses
data whose slice counts differ from them, so no eval repeats or skips a slice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from algoperf import metrics as accumulation
from algoperf import spec
from algoperf.workload_config import WorkloadConfig
from workloads.fastmri import data, metrics


class FastmriData:
    """Mixin: fastMRI numpy batches, the fail-early data check and the per-slice eval metrics.

    The loss is the framework layer's `LossType.MEAN_ABSOLUTE_ERROR` (per-slice mean L1); the
    eval reports the mean over slices of SSIM and loss, as upstream.
    """

    eval_accumulation = accumulation.Accumulation(means=("ssim", "loss"))

    config: WorkloadConfig
    eval_num_workers: int | None

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
        """`data.numpy_batches` (options: ``shard``, ``num_workers``); eval splits process with
        ``eval_num_workers`` loader workers unless the framework layer sets a count."""
        if split != "train":
            options.setdefault("num_workers", self.eval_num_workers)
        return data.numpy_batches(
            data_dir,
            self.config,
            split,
            global_batch_size,
            seed,
            num_examples,
            start_step,
            **options,
        )

    def check_data(self, data_dir: str) -> None:
        """Fail before any log is written if a split is missing or its slice count is not the
        config's (`data.check_split_sizes`; reads the index only)."""
        data.check_split_sizes(data_dir, self.config)

    @property
    def num_pool_layers(self) -> int:
        return int(self.config.model.get("num_pool_layers", 4))

    def _per_example_metrics(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, Any]:
        """Per-slice SSIM and MAE on the device (the shared definitions work in both frameworks)."""
        outputs, _ = self.model_fn(  # type: ignore[attr-defined]
            params,
            batch,
            model_state,
            spec.ForwardPassMode.EVAL,
            rng,
            update_batch_norm=False,
            dropout_rate=0.0,
        )
        targets = batch["targets"]
        ssim = metrics.ssim_per_example(
            outputs, targets, batch["mean"], batch["std"], batch["volume_max"]
        )
        loss = self.loss_fn(targets, outputs)["per_example"]  # type: ignore[attr-defined]
        return {"ssim": ssim, "loss": loss}
