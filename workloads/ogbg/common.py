"""What the JAX and PyTorch ogbg workloads share: graph batches, the masked loss rule, the eval.

Train batches are built for the devices (or DDP ranks) there are: ``num_shards`` device shards of
``global_batch_size // num_shards`` graphs each, as upstream (`workloads.ogbg.data`).

Evaluation covers every graph of a split exactly once, on any device count. Each device shard
holds at most ``eval_rows_per_device`` graphs (``eval_batch_size // 8`` = 4,096, the per-device
size of upstream's 8-GPU reference system), packed in index order; shards go to the devices in
groups, the last group filled with empty shards. A graph's shard is therefore the same whatever
the device count or the eval batch size passed to `eval_model`, and the model's logits for it are
the same up to the device program's rounding. The logits, labels and masks of the real graphs are
concatenated over the split and the metrics finalised once in numpy (`workloads.ogbg.metrics`).

Upstream instead evaluates ``ceil(num_examples / eval_batch_size)`` global batches of
``eval_batch_size // num_devices`` graphs per device from an ``itertools.cycle``d iterator that
drops an incomplete last group of shards; on 8 devices that is the first ~32.7k of the 43,793
validation (and test) graphs, each evaluated twice, and the other ~11k never (README: the ogbg
entry of "Deviations from upstream" and the "ogbg" workload section).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from algoperf import metrics as eval_metrics
from algoperf import spec
from algoperf.workload_config import WorkloadConfig
from workloads.ogbg import data, metrics
from workloads.ogbg.param_map import gnn_layout, output_dense


def _finalize(values: eval_metrics.SplitValues) -> dict[str, float]:
    a = values.arrays
    return metrics.finalize(a["logits"], a["targets"], a["weights"])


# Per graph: logits, labels and label mask, concatenated over the split; metrics in numpy.
EVAL_ACCUMULATION = eval_metrics.Accumulation(
    concat=("logits", "targets", "weights"), finalize=_finalize
)


class OgbgData:
    """Mixin: ogbg graph batches, the data check, the whole-split evaluation."""

    config: WorkloadConfig
    eval_rows_per_device: int

    _eval_num_shards: Any  # the framework layer's device (JAX) or DDP-rank (PyTorch) count
    _to_device: Any
    loss_functions: Any
    eval_accumulation = EVAL_ACCUMULATION

    # Masked sigmoid cross-entropy over (graphs, tasks) labels, as upstream's ogbg computes it
    # (``per_example`` 0 where the mask is 0, ``n_valid_examples`` the labelled entries). Upstream
    # declares ``loss_type`` SOFTMAX_CROSS_ENTROPY for ogbg; the declaration is kept (submissions
    # read it) and the framework layer's ``loss_fn`` computes this one instead.
    loss_function_type = spec.LossType.SIGMOID_CROSS_ENTROPY

    def _num_data_shards(self) -> int:
        """Device shards per global batch: the devices (JAX) or DDP ranks (PyTorch)."""
        return self._eval_num_shards()

    def _numpy_batches(
        self,
        split: str,
        data_dir: str,
        global_batch_size: int,
        seed: int,
        num_examples: int | None = None,
        start_step: int = 0,
    ) -> Iterator[dict[str, np.ndarray]]:
        del num_examples  # eval splits are always covered whole
        return data.numpy_batches(
            data_dir,
            self.config,
            split,
            global_batch_size,
            seed,
            num_shards=self._num_data_shards(),
            start_step=start_step,
        )

    def check_data(self, data_dir: str) -> None:
        """Fail before any log is written if a split is missing or has the wrong size, or the
        labels are not the model's tasks."""
        graphs = data.load(data_dir, self.config.dataset)
        data.check_num_tasks(graphs, self.config, data_dir)
        for split in data.SPLITS:
            data.split_indices(graphs, self.config, split, data_dir)

    def is_output_params(self, param_key: Any) -> bool:
        """The decoder. (Upstream's JAX workload names ``Dense_17``, which is no layer of the
        base model, whose decoder is ``Dense_15``; its PyTorch one names the decoder.)"""
        layout = gnn_layout(self.config.model)
        return param_key in (output_dense(layout), "decoder.weight", "decoder.bias")

    def _per_example_metrics(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, Any]:
        """Per graph: the logits (what the eval keeps) and the summed masked loss (for
        ``algoperf check``; the reported loss is the mean over labelled entries)."""
        logits, _ = self.model_fn(
            params, batch, model_state, spec.ForwardPassMode.EVAL, rng, False, 0.0
        )
        loss = self.loss_fn(batch["targets"], logits, batch["weights"])["per_example"]
        return {"logits": logits, "loss": loss.sum(-1)}

    def _eval_batch(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, np.ndarray]:
        """Per-graph scalars of one device batch on the host: the summed masked loss (what
        generic callers such as ``algoperf check`` read; the split's metrics need the logits,
        which `_eval_logits` returns from the same computation)."""
        return {"loss": super()._eval_batch(params, model_state, batch, rng)["loss"]}  # type: ignore[misc]

    def _eval_logits(self, params: Any, model_state: Any, batch: dict[str, np.ndarray], rng: Any):
        """(graph slots, tasks) logits of one global eval batch, on the host."""
        device_batch = self._to_device(batch)
        return super()._eval_batch(params, model_state, device_batch, rng)["logits"]  # type: ignore[misc]

    def _eval_model_on_split(
        self,
        split: str,
        num_examples: int,
        global_batch_size: int,
        params: Any,
        model_state: Any,
        rng: Any,
        data_dir: str,
        global_step: int = 0,
    ) -> dict[str, float]:
        del global_batch_size, global_step  # the device shards do not depend on them
        graphs = data.load(data_dir, self.config.dataset)
        ids = data.split_indices(graphs, self.config, split, data_dir)
        budget = data.budget_for(self.config.dataset, self.eval_rows_per_device, graphs)
        num_shards = self._eval_num_shards()
        acc = eval_metrics.Accumulator(self.eval_accumulation)
        slots = np.arange(budget.max_graphs)
        for group in data.eval_groups(graphs, ids, budget, num_shards):
            batch = data.concat_shards([shard for shard, _ in group])
            out = np.asarray(self._eval_logits(params, model_state, batch, rng))
            out = out.reshape(num_shards, budget.max_graphs, -1)
            for i, (shard, k) in enumerate(group):
                # The real graphs of a shard are its slots before the padding graph.
                values = {
                    "logits": out[i],
                    "targets": shard["targets"],
                    "weights": shard["weights"],
                }
                acc.add(values, slots < k)
        if acc.num_examples != num_examples:
            raise RuntimeError(
                f"{self.config.name}: evaluated {acc.num_examples} graphs of split {split!r}, "
                f"expected {num_examples}"
            )
        return acc.result()
