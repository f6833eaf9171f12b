"""`ConfiguredWorkload`: the framework-free part every workload shares.

A concrete workload class is ``family data (numpy) + framework model``. This base fills every
`spec.Workload` property from the workload's frozen `WorkloadConfig`, implements the target checks,
and drives evaluation through two hooks the framework layer provides:

* `_numpy_batches(split, ...)`: framework-free numpy batches from the family's `data.py`;
* `_eval_batch(params, model_state, batch, rng)`: per-example metric arrays for one padded batch.

Evaluation is deterministic by construction: batches have a fixed order and a fixed padded shape,
per-example values come back to the host and are summed in float64 in example order, so results
do not depend on how examples are split into batches or on loader worker counts.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any

import numpy as np

from algoperf import spec
from algoperf.workload_config import WorkloadConfig


class ConfiguredWorkload(spec.Workload):
    """A `spec.Workload` whose numbers come from a `WorkloadConfig`."""

    framework: str = ""

    def __init__(self, config: WorkloadConfig, **kwargs: Any) -> None:
        super().__init__()
        self.config = config
        self._options = kwargs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.name!r}, framework={self.framework!r})"

    # Properties from the config -------------------------------------------------------------

    @property
    def workload_name(self) -> str:
        return self.config.name

    @property
    def target_metric_name(self) -> str:
        return self.config.target_metric_name

    @property
    def validation_target_value(self) -> float:
        return self.config.validation_target_value

    @property
    def test_target_value(self) -> float:
        return self.config.test_target_value

    @property
    def loss_type(self) -> spec.LossType:
        return self.config.loss_type

    @property
    def num_train_examples(self) -> int:
        return self.config.num_train_examples

    @property
    def eval_batch_size(self) -> int:
        return self.config.eval_batch_size_for(self.framework)

    @property
    def num_eval_train_examples(self) -> int:
        return self.config.num_eval_train_examples

    @property
    def num_validation_examples(self) -> int:
        return self.config.num_validation_examples

    @property
    def num_test_examples(self) -> int | None:
        return self.config.num_test_examples

    @property
    def train_mean(self) -> Any:
        return self.config.train_mean

    @property
    def train_stddev(self) -> Any:
        return self.config.train_stddev

    @property
    def max_allowed_runtime_sec(self) -> int:
        return self.config.max_allowed_runtime_sec

    @property
    def eval_period_time_sec(self) -> int:
        return self.config.eval_period_time_sec

    @property
    def step_hint(self) -> int:
        return self.config.step_hint

    @property
    def dropout_rate(self) -> float:
        """Default dropout rate of `model_fn` (0.0 for models without dropout)."""
        return self.config.dropout_rate or 0.0

    def has_reached_validation_target(self, eval_result: dict[str, float]) -> bool:
        key = f"validation/{self.target_metric_name}"
        return self.config.reached(eval_result[key], self.validation_target_value)

    def has_reached_test_target(self, eval_result: dict[str, float]) -> bool:
        key = f"test/{self.target_metric_name}"
        return self.config.reached(eval_result[key], self.test_target_value)

    # Data and evaluation ---------------------------------------------------------------------

    @abc.abstractmethod
    def _numpy_batches(
        self,
        split: str,
        data_dir: str,
        global_batch_size: int,
        seed: int,
        num_examples: int | None = None,
        start_step: int = 0,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Framework-free batches: infinite and shuffled for 'train', finite and padded otherwise."""

    @abc.abstractmethod
    def _to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """Move a numpy batch to the device(s) in the framework's layout."""

    @abc.abstractmethod
    def _eval_batch(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, np.ndarray]:
        """Per-example float arrays (e.g. 'loss', 'accuracy') for one device batch, on the host."""

    def check_data(self, data_dir: str) -> None:
        """Fail early (before any log is written) if the training data cannot be read."""
        next(iter(self._numpy_batches("train", data_dir, 1, seed=0)))

    def _finalize_metrics(self, sums: dict[str, float], num_examples: int) -> dict[str, float]:
        """Turn per-split sums into the reported metrics (default: means over examples)."""
        return {k: v / num_examples for k, v in sums.items()}

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
        del global_step
        chunks: dict[str, list[np.ndarray]] = {}
        weights: list[np.ndarray] = []
        for batch in self._numpy_batches(
            split, data_dir, global_batch_size, seed=0, num_examples=num_examples
        ):
            per_example = self._eval_batch(params, model_state, self._to_device(batch), rng)
            w = batch["weights"].astype(bool)
            weights.append(w)
            for k, v in per_example.items():
                chunks.setdefault(k, []).append(np.asarray(v)[w])
        sums = {k: float(np.sum(np.concatenate(v), dtype=np.float64)) for k, v in chunks.items()}
        counted = int(sum(w.sum() for w in weights))
        if counted != num_examples:
            raise RuntimeError(
                f"{self.config.name}: evaluated {counted} examples of split {split!r}, "
                f"expected {num_examples}"
            )
        return self._finalize_metrics(sums, num_examples)

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
        del cache, repeat_final_dataset
        seed = seed_from_rng(data_rng)
        batches = self._numpy_batches(
            split, data_dir, global_batch_size, seed, start_step=start_step
        )
        for i, batch in enumerate(batches):
            if num_batches is not None and i >= num_batches:
                return
            yield self._to_device(batch)


def seed_from_rng(rng: Any) -> int:
    """A 32-bit integer seed from a JAX key or a NumPy-emulated key (as upstream seeds tf.data)."""
    if type(rng).__module__.startswith("jax"):
        import jax

        if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
            rng = jax.random.key_data(rng)
    arr = np.asarray(rng).reshape(-1)
    return int(arr[0]) & 0xFFFFFFFF
