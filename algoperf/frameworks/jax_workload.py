"""The JAX side shared by all workloads: device layout, jitted per-example eval, losses by `LossType`."""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from algoperf import metrics, spec
from algoperf.frameworks import jax as fjax
from algoperf.frameworks import losses_jax
from algoperf.workload_base import ConfiguredWorkload


class JaxWorkload(ConfiguredWorkload):
    """Global batches sharded on their leading axis; params and model state replicated."""

    framework = "jax"
    loss_functions = losses_jax.LOSSES

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
        return fjax.to_host(self._jitted_eval(params, model_state, batch, rng))

    def _finish_init(self, params: Any) -> None:
        """Record param shapes and types (the `spec.Workload` contract of `init_model_fn`)."""
        self._param_shapes = fjax.param_shapes(params)
        self._param_types = fjax.param_types(params)


class JaxClassificationWorkload(JaxWorkload):
    """Softmax cross-entropy classification: per-example accuracy and loss, reported as means."""

    eval_accumulation = metrics.CLASSIFICATION

    @property
    def num_classes(self) -> int:
        return int(self.config.model["num_classes"])

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
