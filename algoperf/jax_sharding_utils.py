"""Compatibility module: upstream's `algoperf.jax_sharding_utils` names, backed by our JAX back-end."""

from typing import Any

import jax

from algoperf.frameworks import jax as _jax


def get_replicate_sharding() -> jax.sharding.NamedSharding:
    """Sharding that replicates data on all devices."""
    return _jax.replicate_sharding()


def get_batch_dim_sharding() -> jax.sharding.NamedSharding:
    """Sharding that partitions data along its first axis."""
    return _jax.batch_sharding()


def get_mesh() -> jax.sharding.Mesh:
    return _jax.get_mesh()


def shard_along_batch_dim(x: Any) -> Any:
    """Shard every leaf of `x` along its first axis."""
    return _jax.shard_batch(x)


def replicate(x: Any) -> Any:
    """Replicate every leaf of `x` on all devices."""
    return _jax.replicate(x)


def display_shard_info(x: jax.Array) -> None:
    """Print where each shard of `x` lives."""
    for shard in x.addressable_shards:
        print(
            f"shard.device: {shard.device}, index: {shard.index}, replica_id: {shard.replica_id}."
        )
