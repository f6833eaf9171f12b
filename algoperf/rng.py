"""Seed derivation of a run, identical to upstream AlgoPerf's ``submission_runner.py``.

The chain, so that a seed means the same thing here and in upstream logs (``--rng_seed``,
``meta_data_*.json``):

1. Seed: ``--rng_seed`` if truthy, else drawn from ``os.urandom`` (`resolve_seed`). As upstream, a
   seed of **0 counts as "no seed"** and a random one is drawn; upstream reuses one drawn seed for
   every trial of a process, and so should the caller.
2. Trial key (`trial_rng`): external tuning ``split(PRNGKey(seed), 2)[0]`` (mixes in the all-zero
   high word of a JAX key made from a 32-bit seed); self-tuning ``PRNGKey(seed)``.
3. Run keys (`train_rngs`): ``data, opt_init, model_init, loop = split(trial_key, 4)``.
4. Step keys (`step_rngs`): ``data_select, update, prep_eval, eval = split(fold_in(loop, step), 4)``
   for ``step = global_step`` before the update (0 for the first step).

JAX keys come from ``jax.random`` with ``jax_default_prng_impl='threefry2x32'`` and
``jax_threefry_partitionable=True`` (`configure_jax_prng`, set by upstream at import); PyTorch runs
use the NumPy emulation in `algoperf.random_utils`. Functions taking a key pick the backend from the
key's type, so they need no framework argument.
"""

from __future__ import annotations

import os
import struct
from typing import Any, NamedTuple

from algoperf import random_utils, step_keys

RULESETS = ("external", "self")

Key = Any  # jax.Array (uint32, shape (2,)) or the NumPy emulation's int32 array / [seed, data] list


class TrainRngs(NamedTuple):
    """The four keys `train_once` splits from the trial key, in upstream's order."""

    data: Key
    opt_init: Key
    model_init: Key
    loop: Key


class StepRngs(NamedTuple):
    """The four per-step keys, in upstream's order (v0.6: four-way split with prep_eval)."""

    data_select: Key
    update: Key
    prep_eval: Key
    eval: Key


def _check_ruleset(ruleset: str) -> None:
    if ruleset not in RULESETS:
        raise ValueError(f"tuning ruleset must be one of {RULESETS}, got {ruleset!r}")


def _backend(framework: str) -> tuple[Any, Any, Any]:
    """(PRNGKey, split, fold_in) of one framework, independent of the process-wide setting."""
    if framework == "jax":
        import jax.random

        return jax.random.PRNGKey, jax.random.split, jax.random.fold_in
    if framework == "pytorch":
        return random_utils.numpy_prng_key, random_utils.numpy_split, random_utils.numpy_fold_in
    raise ValueError(f"framework must be one of {random_utils.FRAMEWORKS}, got {framework!r}")


def _framework_of(key: Key) -> str:
    return "jax" if random_utils.is_jax_key(key) else "pytorch"


def configure_jax_prng() -> None:
    """Set the JAX PRNG options upstream's runner sets at import (call before making any key)."""
    import jax

    jax.config.update("jax_default_prng_impl", "threefry2x32")
    jax.config.update("jax_threefry_partitionable", True)


def configure_process(framework: str) -> None:
    """Process-wide RNG setup for a run: the `random_utils` backend, and JAX's PRNG options."""
    random_utils.set_framework(framework)
    if framework == "jax":
        configure_jax_prng()


def draw_seed(ruleset: str) -> int:
    """A hardware-random seed as upstream draws it.

    External tuning: unsigned 32-bit (``struct.unpack('I', os.urandom(4))``); self-tuning: signed
    64-bit (``struct.unpack('q', os.urandom(8))``), which may be negative.
    """
    _check_ruleset(ruleset)
    if ruleset == "external":
        return struct.unpack("I", os.urandom(4))[0]
    return struct.unpack("q", os.urandom(8))[0]


def resolve_seed(rng_seed: int | None, ruleset: str) -> int:
    """``rng_seed`` if truthy, else `draw_seed` (upstream's ``if not rng_seed``: 0 means unset)."""
    _check_ruleset(ruleset)
    return rng_seed if rng_seed else draw_seed(ruleset)


def trial_rng(seed: int, framework: str, ruleset: str) -> Key:
    """The key a trial's `train_once` starts from.

    External: ``split(PRNGKey(seed), 2)[0]``; self-tuning: ``PRNGKey(seed)``.
    """
    _check_ruleset(ruleset)
    prng_key, split, _ = _backend(framework)
    key = prng_key(seed)
    if ruleset == "external":
        key = split(key, 2)[0]
    return key


def train_rngs(rng: Key) -> TrainRngs:
    """``data, opt_init, model_init, loop = split(rng, 4)``, in the backend of `rng`."""
    _, split, _ = _backend(_framework_of(rng))
    return TrainRngs(*split(rng, 4))


def step_rngs(loop_rng: Key, global_step: int) -> StepRngs:
    """``split(fold_in(loop_rng, global_step), 4)`` as the four named per-step keys.

    Keys are computed a block of steps at a time (`algoperf.step_keys`, same values); the block
    cache follows the last loop key seen. The runner's loop holds its own `step_keys_for`.
    """
    global _STEP_KEYS
    cache = _STEP_KEYS
    if cache is None or cache.loop_key is not loop_rng:
        cache = _STEP_KEYS = step_keys_for(loop_rng)
    return StepRngs(*cache.get(global_step))


def step_keys_for(loop_rng: Key) -> step_keys.StepKeys:
    """A per-step key source for one loop key (``train(step)``, ``at_eval(step)``)."""
    return step_keys.StepKeys(loop_rng, _framework_of(loop_rng))


_STEP_KEYS: step_keys.StepKeys | None = None
