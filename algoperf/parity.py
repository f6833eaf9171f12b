"""Framework-free JAX <-> PyTorch parameter maps: name rules plus kernel transposes.

A model family describes its parameters once as a list of `Rule`s (one PyTorch state-dict key
<-> one leaf of the flax variables dict, with the reshape/transpose each way); `pytorch_to_jax`
and `jax_to_pytorch` then convert whole models and fail loudly on any key left over or missing,
so a map cannot silently skip a layer. Everything here is numpy: values may be numpy arrays or
anything `np.asarray` accepts (CPU torch tensors from ``state_dict()``, jax arrays).

Layout conventions: PyTorch convs are OIHW and flax convs HWIO; a torch ``Linear`` weight is
(out, in) and a flax ``Dense`` kernel (in, out); flax attention projections are ``DenseGeneral``
with kernels (d, heads, head_dim) for query/key/value and (heads, head_dim, d) for the output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

Array = np.ndarray
Transform = Callable[[Array], Array]


def _identity(x: Array) -> Array:
    return x


@dataclasses.dataclass(frozen=True)
class Rule:
    """One PyTorch tensor (or a row block of one) <-> one flax leaf.

    Attributes:
        pt: PyTorch state-dict key, e.g. ``layer1.0.conv1.weight``.
        jax: path into the flax variables dict, collection first, e.g.
            ``("params", "BottleneckResNetBlock_0", "Conv_0", "kernel")``.
        to_jax / to_pt: value transforms in each direction (inverse of each other).
        rows: for fused PyTorch tensors (e.g. a key/value projection), the (start, stop) row
            block of ``pt`` this leaf corresponds to; None means the whole tensor.
    """

    pt: str
    jax: tuple[str, ...]
    to_jax: Transform = _identity
    to_pt: Transform = _identity
    rows: tuple[int, int] | None = None


# Value transforms ----------------------------------------------------------------------------


def conv_to_jax(w: Array) -> Array:
    """OIHW (torch Conv2d weight) -> HWIO (flax Conv kernel)."""
    return np.transpose(w, (2, 3, 1, 0))


def conv_to_pt(k: Array) -> Array:
    """HWIO (flax Conv kernel) -> OIHW (torch Conv2d weight)."""
    return np.transpose(k, (3, 2, 0, 1))


def dense_to_jax(w: Array) -> Array:
    """(out, in) torch Linear weight -> (in, out) flax Dense kernel."""
    return np.transpose(w)


def dense_to_pt(k: Array) -> Array:
    return np.transpose(k)


def conv_rule(pt: str, jax: tuple[str, ...]) -> Rule:
    return Rule(pt, jax, conv_to_jax, conv_to_pt)


def dense_rule(pt: str, jax: tuple[str, ...]) -> Rule:
    return Rule(pt, jax, dense_to_jax, dense_to_pt)


def vector_rule(pt: str, jax: tuple[str, ...]) -> Rule:
    return Rule(pt, jax)


def attention_in_rules(
    pt_prefix: str,
    jax_prefix: tuple[str, ...],
    num_heads: int,
    rows: tuple[int, int] | None = None,
) -> list[Rule]:
    """A query/key/value projection: torch (d, d) Linear <-> flax (d, heads, head_dim) kernel."""

    def kernel_to_jax(w: Array) -> Array:
        return np.transpose(w).reshape(w.shape[1], num_heads, -1)

    def kernel_to_pt(k: Array) -> Array:
        return np.transpose(k.reshape(k.shape[0], -1))

    def bias_to_jax(b: Array) -> Array:
        return b.reshape(num_heads, -1)

    def bias_to_pt(b: Array) -> Array:
        return b.reshape(-1)

    return [
        Rule(f"{pt_prefix}.weight", (*jax_prefix, "kernel"), kernel_to_jax, kernel_to_pt, rows),
        Rule(f"{pt_prefix}.bias", (*jax_prefix, "bias"), bias_to_jax, bias_to_pt, rows),
    ]


def attention_out_rules(pt_prefix: str, jax_prefix: tuple[str, ...], num_heads: int) -> list[Rule]:
    """The output projection: torch (d, d) Linear <-> flax (heads, head_dim, d) kernel."""

    def kernel_to_jax(w: Array) -> Array:
        return np.transpose(w).reshape(num_heads, -1, w.shape[0])

    def kernel_to_pt(k: Array) -> Array:
        return np.transpose(k.reshape(-1, k.shape[-1]))

    return [
        Rule(f"{pt_prefix}.weight", (*jax_prefix, "kernel"), kernel_to_jax, kernel_to_pt),
        vector_rule(f"{pt_prefix}.bias", (*jax_prefix, "bias")),
    ]


# Nested dict helpers ---------------------------------------------------------------------------


def flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """``{path_tuple: leaf}`` for a nested mapping (flax FrozenDicts included)."""
    out: dict[tuple[str, ...], Any] = {}
    for key, value in tree.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping):
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def unflatten(flat: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
    """Inverse of `flatten` (plain nested dicts)."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


# Conversions -----------------------------------------------------------------------------------


def pytorch_to_jax(
    state_dict: Mapping[str, Any],
    rules: Iterable[Rule],
    ignore: Callable[[str], bool] = lambda key: False,
) -> dict[str, Any]:
    """Convert a PyTorch state dict into a nested flax variables dict ``{collection: tree}``.

    Raises:
        KeyError: a rule names a missing key, or a state-dict key (not ignored) has no rule.
        ValueError: a converted array does not have the row count a rule expects.
    """
    rules = list(rules)
    missing = sorted({r.pt for r in rules} - set(state_dict))
    if missing:
        raise KeyError(f"state dict lacks {len(missing)} mapped keys, e.g. {missing[:3]}")
    unmapped = sorted(k for k in set(state_dict) - {r.pt for r in rules} if not ignore(k))
    if unmapped:
        raise KeyError(f"no parameter-map rule for {len(unmapped)} keys, e.g. {unmapped[:3]}")
    flat = {}
    for rule in rules:
        value = np.asarray(state_dict[rule.pt])
        if rule.rows is not None:
            start, stop = rule.rows
            if stop > value.shape[0]:
                raise ValueError(f"{rule.pt}: rows {rule.rows} exceed shape {value.shape}")
            value = value[start:stop]
        flat[rule.jax] = np.ascontiguousarray(rule.to_jax(value))
    return unflatten(flat)


def jax_to_pytorch(
    variables: Mapping[str, Any],
    rules: Iterable[Rule],
) -> dict[str, Array]:
    """Convert a flax variables dict ``{collection: tree}`` into a PyTorch state dict (numpy).

    Row blocks of fused tensors are concatenated in row order.

    Raises:
        KeyError: a rule names a missing leaf, or a leaf has no rule.
    """
    rules = list(rules)
    flat = flatten(variables)
    missing = sorted("/".join(r.jax) for r in rules if r.jax not in flat)
    if missing:
        raise KeyError(f"flax variables lack {len(missing)} mapped leaves, e.g. {missing[:3]}")
    unmapped = sorted("/".join(p) for p in set(flat) - {r.jax for r in rules})
    if unmapped:
        raise KeyError(f"no parameter-map rule for {len(unmapped)} leaves, e.g. {unmapped[:3]}")
    pieces: dict[str, list[tuple[int, Array]]] = {}
    for rule in rules:
        value = rule.to_pt(np.asarray(flat[rule.jax]))
        start = rule.rows[0] if rule.rows is not None else 0
        pieces.setdefault(rule.pt, []).append((start, value))
    out = {}
    for key, parts in pieces.items():
        parts.sort(key=lambda p: p[0])
        out[key] = np.ascontiguousarray(
            parts[0][1] if len(parts) == 1 else np.concatenate([p[1] for p in parts], axis=0)
        )
    return out
