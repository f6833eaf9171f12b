"""JAX back-end: a 1-D device mesh, replicated params, batch sharded on its leading axis.

This is upstream AlgoPerf's current layout (jit + `NamedSharding`, no pmap): parameters,
model state and optimizer state are replicated; a batch is one global array of shape
(global_batch_size, ...) partitioned along axis 0 over the mesh axis ``'batch'``.

Several hosts (one process per host, `initialize_distributed`): the mesh spans every process's
devices. Every process builds the same global host batch (same data, same seed), and each places
only the rows of its own devices (`shard_batch`); replicated values are placed the same way, and
`to_host` gathers sharded outputs (per-example eval metrics) from all processes. Process 0
writes the logs.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from algoperf import param_utils, spec

MESH_AXIS = "batch"

# Multi-process JAX: where the processes of one run meet (`initialize_distributed`).
COORDINATOR_ENV = "ALGOPERF_COORDINATOR_ADDRESS"  # host:port of process 0, or "auto"
NUM_PROCESSES_ENV = "ALGOPERF_NUM_PROCESSES"
PROCESS_ID_ENV = "ALGOPERF_PROCESS_ID"


def initialize_distributed() -> bool:
    """`jax.distributed.initialize` from the environment; True when this run is multi-process.

    ``ALGOPERF_COORDINATOR_ADDRESS=host:port`` with ``ALGOPERF_NUM_PROCESSES`` and
    ``ALGOPERF_PROCESS_ID`` (what `algoperf sweep` sets on each node), or ``=auto`` to let JAX read
    the cluster itself (SLURM: one task per node under ``srun``). Must run before anything touches
    a JAX device; without the variable it does nothing (one process, all local devices).
    """
    address = os.environ.get(COORDINATOR_ENV, "").strip()
    if not address:
        return False
    if jax.distributed.is_initialized():
        return True
    if address == "auto":
        jax.distributed.initialize()
        return True
    try:
        num = int(os.environ[NUM_PROCESSES_ENV])
        pid = int(os.environ[PROCESS_ID_ENV])
    except (KeyError, ValueError):
        raise ValueError(
            f"{COORDINATOR_ENV}={address} needs integer {NUM_PROCESSES_ENV} and {PROCESS_ID_ENV} "
            f"(or set {COORDINATOR_ENV}=auto under SLURM)"
        ) from None
    jax.distributed.initialize(address, num_processes=num, process_id=pid)
    return True


def initialize_for_run(argv: list[str]) -> None:
    """`initialize_distributed` before `algoperf run`; a multi-process run needs a fixed seed.

    Every process must draw the same batches and keys, so ``--rng_seed`` must be given (and not
    0, which means "random" and would differ per process); `algoperf sweep` always passes one.
    """
    if not os.environ.get(COORDINATOR_ENV, "").strip():
        return
    seeds = [a.split("=", 1)[1] for a in argv if a.startswith("--rng_seed=")]
    seeds += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--rng_seed"]
    if not seeds or seeds[-1].strip() in ("", "0"):
        raise ValueError(
            f"a multi-process JAX run ({COORDINATOR_ENV} is set) needs --rng_seed=N (N != 0), "
            "the same on every process"
        )
    initialize_distributed()


def multi_process() -> bool:
    return jax.process_count() > 1


def _place_global(tree: Any, sharding: NamedSharding) -> Any:
    """Place identical host values held by every process: each process fills its own devices."""

    def place(x: Any) -> jax.Array:
        value = np.asarray(x)
        return jax.make_array_from_callback(value.shape, sharding, lambda idx: value[idx])

    return jax.tree.map(place, tree)


def to_host(tree: Any) -> Any:
    """Numpy values of `tree`, gathering sharded arrays from every process when multi-process."""
    if not multi_process():
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    def fetch(x: Any) -> Any:
        if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return jax.device_get(x)

    return jax.tree.map(fetch, tree)


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
    if multi_process():
        return _place_global(tree, replicate_sharding())
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
    if multi_process():
        return _place_global(tree, sharding)
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
