"""The JAX side shared by all workloads: device layout, jitted per-example eval, classification loss."""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from algoperf import spec
from algoperf.frameworks import jax as fjax
from algoperf.workload_base import ConfiguredWorkload


class JaxWorkload(ConfiguredWorkload):
    """Global batches sharded on their leading axis; params and model state replicated."""

    framework = "jax"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._jitted_eval = jax.jit(self._per_example_metrics)

    def _to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        return fjax.shard_batch(batch)

    def _eval_num_shards(self) -> int:
        return fjax.num_devices()

    @abc.abstractmethod
    def _per_example_metrics(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, jax.Array]:
        """Traced: per-example metric arrays for one batch (padding included, masked later)."""

    def _eval_batch(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, np.ndarray]:
        return jax.device_get(self._jitted_eval(params, model_state, batch, rng))

    def _finish_init(self, params: Any) -> None:
        """Record param shapes and types (the `spec.Workload` contract of `init_model_fn`)."""
        self._param_shapes = fjax.param_shapes(params)
        self._param_types = fjax.param_types(params)


class JaxClassificationWorkload(JaxWorkload):
    """Softmax cross-entropy classification: loss with label smoothing, accuracy and loss metrics."""

    @property
    def num_classes(self) -> int:
        return int(self.config.model["num_classes"])

    def loss_fn(
        self,
        label_batch: spec.Tensor,
        logits_batch: spec.Tensor,
        mask_batch: spec.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, spec.Tensor]:
        """Softmax CE; `label_batch` holds class ids (B,) or one-hot/soft labels (B, C)."""
        if label_batch.ndim == logits_batch.ndim:
            targets = label_batch
        else:
            targets = jax.nn.one_hot(label_batch, self.num_classes)
        targets = optax.smooth_labels(targets, label_smoothing)
        per_example = -jnp.sum(targets * jax.nn.log_softmax(logits_batch), axis=-1)
        if mask_batch is not None:
            per_example = per_example * mask_batch
            n_valid = mask_batch.sum()
        else:
            n_valid = per_example.shape[0]
        return {
            "summed": per_example.sum(),
            "n_valid_examples": n_valid,
            "per_example": per_example,
        }

    def _per_example_metrics(
        self, params: Any, model_state: Any, batch: dict[str, Any], rng: Any
    ) -> dict[str, jax.Array]:
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
        if labels.ndim == logits.ndim:
            labels = jnp.argmax(labels, axis=-1)
        loss = self.loss_fn(labels, logits)["per_example"]
        correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
        return {"accuracy": correct, "loss": loss}
