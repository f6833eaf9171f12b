"""JAX back-end: a 1-D device mesh, replicated params, batch sharded on its leading axis.

This is upstream AlgoPerf's current layout (jit + `NamedSharding`, no pmap): parameters,
model state and optimizer state are replicated; a batch is one global array of shape
(global_batch_size, ...) partitioned along axis 0 over the mesh axis ``'batch'``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from algoperf import param_utils, spec

MESH_AXIS = "batch"


def configure() -> None:
    """Process-wide JAX settings upstream's runner makes (PRNG implementation)."""
    jax.config.update("jax_default_prng_impl", "threefry2x32")
    jax.config.update("jax_threefry_partitionable", True)


@functools.cache
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.array(devices), (MESH_AXIS,))


def get_mesh() -> Mesh:
    """The mesh over all devices (cached: building shardings is off the hot path)."""
    return _mesh(tuple(jax.devices()))


@functools.cache
def _replicated(devices: tuple) -> NamedSharding:
    return NamedSharding(_mesh(devices), P())


@functools.cache
def _batch_sharded(devices: tuple) -> NamedSharding:
    return NamedSharding(_mesh(devices), P(MESH_AXIS))


def replicate_sharding() -> NamedSharding:
    return _replicated(tuple(jax.devices()))


def batch_sharding() -> NamedSharding:
    return _batch_sharded(tuple(jax.devices()))


def replicate(tree: Any) -> Any:
    """Place every leaf of `tree` on all devices."""
    return jax.device_put(tree, replicate_sharding())


# Host batches up to this size go through jit's C++ argument path (see `shard_batch`).
SMALL_BATCH_BYTES = 256 * 1024


def shard_batch(tree: Any) -> Any:
    """Place a global batch (numpy or jax arrays) sharded along its leading axis.

    `jax.device_put` spends about 30 us per leaf in Python, a fifth of a small model's step on a
    CPU. A small host batch (all leaves numpy, at most `SMALL_BATCH_BYTES`; MNIST's is 50 KB)
    therefore goes through a jitted identity with the batch sharding, whose C++ argument path
    copies it onto the devices in about 17 us instead of 89 (`benchmarks/jax_batch_transfer.py`).
    Larger batches keep `device_put`: on a CPU it places numpy memory without copying, which
    beats any copy from a few hundred KB on. Values, dtypes and sharding are the same either way.
    """
    sharding = batch_sharding()
    leaves = jax.tree.leaves(tree)
    if (
        leaves
        and all(type(leaf) is np.ndarray for leaf in leaves)
        and sum(leaf.nbytes for leaf in leaves) <= SMALL_BATCH_BYTES
    ):
        return _host_to_device(sharding)(tree)
    return jax.device_put(tree, sharding)


@functools.cache
def _host_to_device(sharding: NamedSharding) -> Any:
    return jax.jit(lambda tree: tree, in_shardings=sharding, out_shardings=sharding)


def num_devices() -> int:
    return jax.device_count()


def sync(tree: Any = None) -> None:
    """Wait for all dispatched device work (on `tree`, or everything) before a clock is read."""
    if tree is not None:
        jax.block_until_ready(tree)
    else:
        # Effects barrier waits for every computation dispatched so far.
        jax.effects_barrier()


def param_shapes(params: Any) -> Any:
    """Parameter shapes as a pytree of `spec.ShapeTuple` leaves (upstream convention)."""
    return jax.tree.map(lambda x: spec.ShapeTuple(tuple(x.shape)), params)


def param_types(params: Any) -> Any:
    """`spec.ParameterType` of every leaf, inferred from the parameter path like upstream."""
    return param_utils.jax_param_types(jax.tree.map(lambda x: x, params))


def count_params(params: Any) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
