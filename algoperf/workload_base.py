"""`ConfiguredWorkload`: the framework-free part every workload shares.

A concrete workload class is ``family data (numpy) + framework model``. This base fills every
`spec.Workload` property from the workload's frozen `WorkloadConfig`, implements the target checks,
and drives evaluation through two hooks the framework layer provides:

* `_numpy_batches(split, ...)`: framework-free numpy batches from the family's `data.py`;
* `_eval_batch(params, model_state, batch, rng)`: per-example metric arrays for one padded batch.

Evaluation is deterministic by construction, so eval metrics are bit-identical whatever the eval
batch size, the padding of the last batch, or the number of loader workers:

* the loader's batches (any size, any worker count; loaders return batches in order) are
  re-cut on the host into **fixed-shape device chunks** of ``eval_rows_per_device`` real examples
  per device, in example order, the last one zero-padded with weight 0. A model's per-example
  outputs can change in the last bits with the shape it runs on (matrix-multiply blocking
  depends on the batch dimension), so every example always runs in a chunk of the same shape,
  at the same position. The eval batch size then only sets how much the loader hands over at
  once; device memory is bounded by the chunk;
* per-example values come back to the host, padding rows are dropped (`_eval_example_rows`),
  and an `algoperf.metrics.Accumulator` built from the family's ``eval_accumulation`` keeps
  exact sums (streamed, the correctly rounded sum of all per-example values: independent of
  order and chunking), arrays concatenated in example order, and exact
  per-group sums, which its ``finalize`` turns into metrics in numpy (see `algoperf.metrics`
  for the declaration, with an example);
* every split must count exactly its number of examples (checked).

``eval_rows_per_device`` defaults to ``eval_batch_size // 8``: the rows each of the 8 devices of
upstream's reference system computes per eval call, so device memory per eval call matches
upstream's. Families may override it. With per-example values fixed, every accumulated metric
is the same whatever the batch size, padding or worker count; across device counts only the
model's per-example outputs can change, by the device program's rounding (the stated tolerance
in `tests/unit/test_eval_determinism.py`: relative 1e-6 on float32 models), and on GPUs
non-deterministic kernels add theirs.

Loader workers: families whose eval loaders decode in parallel read ``self.eval_num_workers``
(None: the family's default), set by the runner from ``--pytorch_eval_num_workers``.

Per-process loading is the framework layer's: `_data_shard` says which rows of every batch this
process decodes (PyTorch DDP: rank r of W, for families whose ``_numpy_batches`` takes
``shard=(r, W)``), `_loader_options` passes the shard and the worker count, and the eval then
runs `_eval_sharded` (each rank decodes and evaluates only its rows of every device chunk, and
the kept per-example values are gathered once). Families only implement ``shard`` in their
loader.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from algoperf import metrics, spec
from algoperf.workload_config import WorkloadConfig

# Devices of upstream's reference system (8 GPUs): the eval batch size is split over them.
REFERENCE_DEVICES = 8


class ConfiguredWorkload(spec.Workload):
    """A `spec.Workload` whose numbers come from a `WorkloadConfig`."""

    framework: str = ""
    # Eval loader workers (None: the family's default); results do not depend on it.
    eval_num_workers: int | None = None
    # How the eval accumulates and finalises per-example values (`algoperf.metrics`); None:
    # the mean over examples of every key `_per_example_metrics` returns.
    eval_accumulation: metrics.Accumulation | None = None
    # Keyword options of the `LossType`'s loss (e.g. ``{"apply_label_smoothing": False}``).
    loss_options: Mapping[str, Any] = MappingProxyType({})
    # The loss computed when it is not the declared `loss_type` (upstream's ogbg declares
    # SOFTMAX_CROSS_ENTROPY but computes a sigmoid loss); None: `loss_type`.
    loss_function_type: spec.LossType | None = None
    # `LossType` -> loss function (the framework layer's `algoperf.frameworks.losses_*.LOSSES`).
    loss_functions: Mapping[spec.LossType, Callable[..., dict[str, Any]]] = MappingProxyType({})

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
        return self.config.num_eval_train_examples_for(self.framework)

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

    def loss_fn(
        self,
        label_batch: spec.Tensor,
        logits_batch: spec.Tensor,
        mask_batch: spec.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, spec.Tensor]:
        """Upstream's ``loss_fn`` contract, chosen by ``self.loss_type`` from the framework's
        losses (`algoperf.frameworks.losses_jax` / ``losses_pytorch``), with ``loss_options``."""
        fn = self.loss_functions[self.loss_function_type or self.loss_type]
        return fn(label_batch, logits_batch, mask_batch, label_smoothing, **self.loss_options)

    def has_reached_validation_target(self, eval_result: dict[str, float]) -> bool:
        key = f"validation/{self.target_metric_name}"
        return self.config.reached(eval_result[key], self.validation_target_value)

    def has_reached_test_target(self, eval_result: dict[str, float]) -> bool:
        if self.config.num_test_examples is None:
            # No test split (finewebedu_lm, lm_bible): the test goal holds vacuously, so a run
            # stops once the validation target is reached instead of training to the budget.
            return True
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

    @property
    def eval_rows_per_device(self) -> int:
        """Examples per device in every eval computation (the fixed device chunk)."""
        return max(1, self.eval_batch_size // REFERENCE_DEVICES)

    def _eval_num_shards(self) -> int:
        """Devices (or DDP ranks) an eval chunk is split over (framework layers override)."""
        return 1

    def check_data(self, data_dir: str) -> None:
        """Fail early (before any log is written) if the training data cannot be read."""
        next(iter(self._numpy_batches("train", data_dir, 1, seed=0)))

    def _host_eval_values(
        self, outputs: dict[str, np.ndarray], chunk: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Numpy hook between the device and the accumulator (e.g. decode, count n-grams).

        `outputs` are `_eval_batch`'s per-example arrays, `chunk` the numpy chunk they came from;
        returns the per-example values `eval_accumulation` reads (default: `outputs`).
        """
        del chunk
        return outputs

    def _eval_example_rows(self, chunk: dict[str, np.ndarray]) -> np.ndarray:
        """Boolean (rows,) mask of the chunk's real examples (default: any non-zero weight)."""
        return _real_rows(chunk["weights"])

    def _eval_accumulation_for(self, outputs: dict[str, Any]) -> metrics.Accumulation:
        """The family's declaration, or upstream's default: the mean of every returned key."""
        if self.eval_accumulation is not None:
            return self.eval_accumulation
        return metrics.Accumulation(means=tuple(outputs))

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
        chunk_rows = self.eval_rows_per_device * self._eval_num_shards()
        if self._data_shard() is not None:
            return self._eval_sharded(
                split, num_examples, chunk_rows, params, model_state, rng, data_dir
            )
        batches = self._numpy_batches(
            split,
            data_dir,
            global_batch_size,
            seed=0,
            num_examples=num_examples,
            **self._loader_options(split),
        )
        acc: metrics.Accumulator | None = None
        for chunk in fixed_shape_chunks(batches, chunk_rows):
            outputs = self._eval_batch(params, model_state, self._to_device(chunk), rng)
            values = self._host_eval_values(outputs, chunk)
            if acc is None:
                acc = metrics.Accumulator(self._eval_accumulation_for(values))
            acc.add({**chunk, **values}, self._eval_example_rows(chunk))
        return self._checked_result(acc, split, num_examples)

    def _checked_result(
        self, acc: metrics.Accumulator | None, split: str, num_examples: int
    ) -> dict[str, float]:
        counted = 0 if acc is None else acc.num_examples
        if acc is None or counted != num_examples:
            raise RuntimeError(
                f"{self.config.name}: evaluated {counted} examples of split {split!r}, "
                f"expected {num_examples}"
            )
        return acc.result()

    def _eval_sharded(
        self,
        split: str,
        num_examples: int,
        chunk_rows: int,
        params: Any,
        model_state: Any,
        rng: Any,
        data_dir: str,
    ) -> dict[str, float]:
        """Each process decodes and evaluates only its rows of every device chunk.

        The loader cuts the split into global batches of exactly `chunk_rows` (the fixed device
        chunk; only the last is padded) and hands this process its ``eval_rows_per_device``
        rows of each, so every example runs at the same position of a chunk of the same shape
        as in the unsharded path. The kept per-example values of every process are gathered
        once at the end and accumulated chunk by chunk in rank order, i.e. in example order.
        """
        batches = self._numpy_batches(
            split,
            data_dir,
            chunk_rows,
            seed=0,
            num_examples=num_examples,
            **self._loader_options(split),
        )
        parts: list[dict[str, np.ndarray]] = []
        declared: metrics.Accumulation | None = None
        for local in batches:
            outputs = self._eval_local(params, model_state, self._local_to_device(local), rng)
            host = self._host_eval_values(outputs, local)
            declared = declared or self._eval_accumulation_for(host)
            values = {**local, **host}
            rows = self._eval_example_rows(local)
            parts.append({k: np.asarray(values[k])[rows] for k in declared.keys})
        # Every process cuts the same global batches, so all have as many parts.
        gathered = self._gather_eval_parts(parts)
        if declared is None:
            return self._checked_result(None, split, num_examples)
        acc = metrics.Accumulator(declared)
        for i in range(len(parts)):
            for rank_parts in gathered:
                acc.add(rank_parts[i])
        return self._checked_result(acc, split, num_examples)

    # Data sharding: the framework layer decides (PyTorch DDP ranks decode only their rows).

    def _data_shard(self) -> tuple[int, int] | None:
        """``(index, count)`` when this process decodes only its rows of every batch."""
        return None

    def _loader_options(self, split: str) -> dict[str, Any]:
        """Extra `_numpy_batches` keywords from the framework layer (shard, worker count)."""
        del split
        return {}

    def _local_to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        """Move this process's own rows (already sharded by the loader) to its device."""
        return self._to_device(batch)

    def _eval_local(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, np.ndarray]:
        """Per-example values of this process's rows only (no gather across processes)."""
        return self._eval_batch(params, model_state, batch, rng)

    def _gather_eval_parts(self, local: Any) -> list[Any]:
        """Every process's `local` object, in rank order (one process: ``[local]``)."""
        return [local]

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
            split,
            data_dir,
            global_batch_size,
            seed,
            start_step=start_step,
            **self._loader_options(split),
        )
        put = self._to_device if self._data_shard() is None else self._local_to_device
        for i, batch in enumerate(batches):
            if num_batches is not None and i >= num_batches:
                return
            yield put(batch)


def _real_rows(weights: np.ndarray) -> np.ndarray:
    """Rows that hold an example (any non-zero weight; padding rows are all zero)."""
    w = np.asarray(weights)
    return w.reshape(len(w), -1).any(axis=1) if w.ndim > 1 else w != 0


def fixed_shape_chunks(
    batches: Iterator[dict[str, np.ndarray]], rows: int
) -> Iterator[dict[str, np.ndarray]]:
    """Re-cut eval batches into chunks of exactly `rows` rows, in example order.

    Padding rows (all weights 0) of the input batches are dropped; only the last chunk is padded
    (zeros, weight 0). The chunks are therefore the same whatever size, padding or number of
    loader workers produced `batches`.
    """
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    pending: list[dict[str, np.ndarray]] = []
    buffered = 0
    for batch in batches:
        real = _real_rows(batch["weights"])
        if not real.all():
            batch = {k: v[real] for k, v in batch.items()}
        n = int(real.sum())
        if n == 0:
            continue
        pending.append(batch)
        buffered += n
        if buffered < rows:
            continue
        joined = _concat(pending)
        start = 0
        while buffered - start >= rows:
            yield {k: v[start : start + rows] for k, v in joined.items()}
            start += rows
        pending = [{k: v[start:] for k, v in joined.items()}] if buffered > start else []
        buffered -= start
    if buffered:
        tail = _concat(pending)
        yield {k: _pad_rows(v, rows) for k, v in tail.items()}


def _concat(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(batches) == 1:
        return batches[0]
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def _pad_rows(value: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, *value.shape[1:]), value.dtype)
    out[: len(value)] = value
    return out


def seed_from_rng(rng: Any) -> int:
    """A 32-bit integer seed from a JAX key or a NumPy-emulated key (as upstream seeds tf.data)."""
    if type(rng).__module__.startswith("jax"):
        import jax

        if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
            rng = jax.random.key_data(rng)
    arr = np.asarray(rng).reshape(-1)
    return int(arr[0]) & 0xFFFFFFFF
