"""The pmap-era JAX layout, for submissions written against upstream's v0.5 / early-v0.6 runner.

Before upstream moved to ``jit`` + ``NamedSharding`` its JAX runner handed submissions:

* parameters, optimizer state and model state **replicated with a leading device axis**, as
  ``flax.jax_utils.replicate`` makes them (shape ``(n_devices, *shape)``); submissions unreplicate
  them in ``init_optimizer_state`` and ``jax.pmap`` their update with ``axis_name='batch'``;
* batches **reshaped to** ``(n_devices, per_device_batch, ...)``;
* evaluation on the unreplicated parameters.

`PmapWorkload` wraps any JAX workload so that it presents exactly that, through three methods
(``init_model_fn``, ``_build_input_queue``, ``eval_model``); everything else (``model_fn``,
``loss_fn``, ``param_shapes`` of the unreplicated parameters, targets, budgets, the metrics
logger) is the wrapped workload's. The batches, the model and the metrics are therefore the same
as in the jit layout: the same update rule gives the same numbers (tested on 1 and 2 devices).

With the layout come JAX 0.4's ``jax.tree_map`` & co. (`install_legacy_tree_aliases`), which
pmap-era submissions call and JAX 0.6 removed: aliases of the same `jax.tree_util` functions.

The layout is chosen per run (``--jax_layout``): ``auto`` (default) picks ``pmap`` when the
submission's source calls ``pmap`` or ``jax_utils.replicate``, else ``jit``; the chosen layout is
in the run record. Single-process only (upstream's pmap runner fed each host its local devices;
multi-host pmap runs are refused with a clear error), and graph batches (ogbg) only on one
device: their leaves index nodes globally, so they cannot be split along axis 0.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from algoperf import spec

LAYOUTS = ("auto", "jit", "pmap")
# What a pmap-era submission's source does: pmap its step, or replicate state the flax way.
_PMAP_SOURCE = re.compile(r"\bpmap\b|jax_utils\.replicate\b|device_put_replicated\b")


def uses_pmap(module: ModuleType) -> bool:
    """Whether the submission's source is written for the pmap layout (see module docstring)."""
    path = getattr(module, "__file__", None)
    if not path:
        return False
    try:
        source = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(_PMAP_SOURCE.search(source))


def resolve_layout(requested: str, framework: str, module: ModuleType) -> str:
    """The layout a run uses: ``jit`` or ``pmap`` for JAX (``auto`` resolved), ``none`` for PyTorch."""
    if requested not in LAYOUTS:
        raise ValueError(f"--jax_layout must be one of {', '.join(LAYOUTS)}, got {requested!r}")
    if framework != "jax":
        if requested == "pmap":
            raise ValueError("--jax_layout=pmap applies to --framework=jax only")
        return "none"
    if requested == "auto":
        return "pmap" if uses_pmap(module) else "jit"
    return requested


def apply_layout(config: Any, module: ModuleType, workload: Any) -> tuple[Any, Any, Any]:
    """`(config with jax_layout resolved, workload, submission)` in that layout; the runner's hook."""
    layout = resolve_layout(getattr(config, "jax_layout", "auto"), config.framework, module)
    if layout == "pmap":
        install_legacy_tree_aliases()
        workload = PmapWorkload(workload)
        module = PmapSubmission(module)
    if dataclasses.is_dataclass(config) and hasattr(config, "jax_layout"):
        config = dataclasses.replace(config, jax_layout=layout)
    return config, workload, module


# JAX 0.4's top-level tree functions, which pmap-era submissions call; JAX 0.6 removed them.
_LEGACY_TREE_ALIASES = (
    "tree_map",
    "tree_leaves",
    "tree_flatten",
    "tree_unflatten",
    "tree_structure",
    "tree_transpose",
)


def install_legacy_tree_aliases() -> list[str]:
    """Restore ``jax.tree_map`` & co. as the `jax.tree_util` functions they were; names added.

    Only names JAX no longer has are added, each bound to the very function it was an alias of
    in JAX 0.4 (so nothing computes differently); the pmap layout installs them.
    """
    import jax

    added = []
    for name in _LEGACY_TREE_ALIASES:
        if not hasattr(jax, name):
            setattr(jax, name, getattr(jax.tree_util, name))
            added.append(name)
    return added


def replicate(tree: Any) -> Any:
    """Stack `tree` on every local device (a leading device axis), as ``flax.jax_utils.replicate``."""
    from flax import jax_utils

    return jax_utils.replicate(tree)


def unreplicate(tree: Any) -> Any:
    """The first replica of every leaf, placed replicated over the jit mesh (eval's layout)."""
    import jax

    from algoperf.frameworks import jax as fjax

    return fjax.replicate(jax.tree.map(lambda x: x[0], tree))


@functools.cache
def _split_fn(n: int) -> Any:
    import jax
    from jax.sharding import PartitionSpec as P

    from algoperf.frameworks import jax as fjax

    # Each device keeps its own rows: a per-device reshape, no data moves between devices.
    out = jax.sharding.NamedSharding(fjax.get_mesh(), P(fjax.MESH_AXIS))
    return jax.jit(
        lambda tree: jax.tree.map(lambda x: x.reshape((n, -1, *x.shape[1:])), tree),
        out_shardings=out,
    )


def shard_batch(batch: Any) -> Any:
    """A global batch (leading axis sharded over the devices) as ``(devices, per_device, ...)``."""
    import jax

    return _split_fn(jax.local_device_count())(batch)


class PmapWorkload:
    """A JAX workload seen in the pmap layout; every other attribute is the wrapped workload's."""

    layout = "pmap"

    def __init__(self, workload: Any) -> None:
        import jax

        if jax.process_count() > 1:
            raise ValueError(
                "--jax_layout=pmap runs in a single process only; run pmap-era submissions on one "
                "host (or port them to jit, upstream's current layout)"
            )
        object.__setattr__(self, "_workload", workload)

    @property
    def wrapped(self) -> Any:
        """The workload in its own (jit) layout."""
        return self._workload

    def __getattr__(self, name: str) -> Any:
        return getattr(self._workload, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._workload, name, value)

    def __repr__(self) -> str:
        return f"PmapWorkload({self._workload!r})"

    def init_model_fn(self, rng: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Parameters and model state replicated with a leading device axis."""
        params, model_state = self._workload.init_model_fn(rng, *args, **kwargs)
        return replicate(params), replicate(model_state)

    def _build_input_queue(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped workload's batches, each reshaped to ``(devices, per_device, ...)``."""
        import jax

        for batch in self._workload._build_input_queue(*args, **kwargs):
            inputs = batch.get("inputs") if isinstance(batch, dict) else None
            if jax.local_device_count() > 1 and hasattr(inputs, "senders"):
                # Graph batches index nodes globally; splitting their leaves would cut edges.
                raise ValueError(
                    f"{self._workload.workload_name}: the pmap layout splits batches along "
                    "axis 0, which graph batches do not allow on several devices; run on one "
                    "device or pass --jax_layout=jit"
                )
            yield shard_batch(batch)

    def eval_model(
        self,
        global_batch_size: int,
        params: Any,
        model_state: Any,
        rng: Any,
        data_dir: str,
        imagenet_v2_data_dir: str | None,
        global_step: int,
    ) -> dict[str, float]:
        """Evaluate the first replica of the parameters (as upstream's pmap runner reported)."""
        return self._workload.eval_model(
            global_batch_size,
            unreplicate(params),
            unreplicate(model_state),
            rng,
            data_dir,
            imagenet_v2_data_dir,
            global_step,
        )


spec.Workload.register(PmapWorkload)


def host_key(rng: Any) -> Any:
    """`rng` as an uncommitted key (host values), as upstream's pmap runner passed it.

    The runner's keys live replicated over the jit mesh; JAX's shard_map-based ``pmap`` (0.8 on)
    refuses a committed argument whose sharding is not its own, so ``pmap(f)(split(rng, n))``
    would fail on several devices. Same key values, no device placement.
    """
    import jax
    import numpy as np

    if isinstance(rng, jax.Array) and jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(np.asarray(jax.random.key_data(rng)))
    return np.asarray(rng) if isinstance(rng, jax.Array) else rng


def _with_host_rng(fn: Any, position: int) -> Any:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if "rng" in kwargs:
            kwargs["rng"] = host_key(kwargs["rng"])
        elif len(args) > position:
            args = (*args[:position], host_key(args[position]), *args[position + 1 :])
        return fn(*args, **kwargs)

    return call


# Where each submission function takes `rng` (upstream's signatures).
_RNG_POSITION = {
    "init_optimizer_state": 4,
    "update_params": 10,
    "prepare_for_eval": 9,
    "data_selection": 7,
}


class PmapSubmission:
    """A pmap-era submission module whose functions get keys as upstream's pmap runner gave them."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module
        for name, position in _RNG_POSITION.items():
            fn = getattr(module, name, None)
            if callable(fn):
                setattr(self, name, _with_host_rng(fn, position))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def __repr__(self) -> str:
        return f"PmapSubmission({self._module!r})"
