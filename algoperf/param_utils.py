"""Parameter shapes and types, with upstream's names (`pytorch_param_types`, `jax_param_types`, ...).

A parameter's `spec.ParameterType` is inferred from its name the way upstream AlgoPerf does, so
submissions that special-case, say, batch-norm scales see the same types here. The rules are
plain string logic (framework-free); only the shape helpers touch framework objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from algoperf import spec

PT = spec.ParameterType


def pytorch_param_type(name: str) -> spec.ParameterType:
    """Type of a PyTorch parameter from its `named_parameters()` name."""
    if "bn" in name:
        if "weight" in name or "scale" in name:
            return PT.BATCH_NORM_SCALE
        if "bias" in name:
            return PT.BATCH_NORM_BIAS
        raise ValueError(f"Unrecognized batch norm parameter: {name}.")
    if "norm" in name or "ln" in name:
        if "weight" in name or "scale" in name:
            return PT.LAYER_NORM_SCALE
        if "bias" in name:
            return PT.LAYER_NORM_BIAS
        raise ValueError(f"Unrecognized layer norm parameter: {name}.")
    if "conv" in name:
        return PT.BIAS if "bias" in name else PT.CONV_WEIGHT
    if ("embedding" in name or "embed" in name) and "weight" in name:
        return PT.EMBEDDING
    if "attn" in name or "attention" in name:
        rules = (
            ("bias", PT.ATTENTION_BIAS),
            ("in_proj", PT.ATTENTION_QKV),
            ("kv_proj", PT.ATTENTION_KV),
            ("k_proj", PT.ATTENTION_K),
            ("key", PT.ATTENTION_K),
            ("q_proj", PT.ATTENTION_Q),
            ("query", PT.ATTENTION_Q),
            ("v_proj", PT.ATTENTION_V),
            ("value", PT.ATTENTION_V),
        )
        for needle, ptype in rules:
            if needle in name:
                return ptype
        if "out" in name and "weight" in name:
            return PT.ATTENTION_OUT
        if "scale" in name:
            return PT.WEIGHT
        raise ValueError(f"Unrecognized attention parameter: {name}.")
    if "bias" in name:
        return PT.BIAS
    return PT.WEIGHT


def infer_param_type(path: Sequence[str]) -> spec.ParameterType:
    """Type of a JAX (flax) parameter from its path of dict keys, e.g. ('Dense_0', 'kernel')."""
    name = path[-1].lower()
    parent = "/" + "/".join(p.lower() for p in path[:-1])
    if "batchnorm" in parent or "bn" in parent:
        if name == "scale":
            return PT.BATCH_NORM_SCALE
        if name == "bias":
            return PT.BATCH_NORM_BIAS
        raise ValueError(f"Unrecognized batch norm parameter: {parent}/{name}.")
    if "layernorm" in parent or "ln" in parent:
        if name == "scale":
            return PT.LAYER_NORM_SCALE
        if name == "bias":
            return PT.LAYER_NORM_BIAS
        raise ValueError(f"Unrecognized layer norm parameter: {parent}/{name}.")
    if "conv" in parent:
        return PT.BIAS if "bias" in name else PT.CONV_WEIGHT
    if "embedding" in name or ("embedding" in parent and name == "kernel"):
        return PT.EMBEDDING
    if "attention" in parent:
        if name == "bias":
            return PT.ATTENTION_BIAS
        for needle, ptype in (
            ("key", PT.ATTENTION_K),
            ("query", PT.ATTENTION_Q),
            ("value", PT.ATTENTION_V),
            ("out", PT.ATTENTION_OUT),
        ):
            if needle in parent and name == "kernel":
                return ptype
        if "scale" in name:
            return PT.WEIGHT
        if "in_proj_weight" in name:
            return PT.ATTENTION_QKV
        raise ValueError(f"Unrecognized attention parameter: {parent}/{name}.")
    if "bias" in name:
        return PT.BIAS
    return PT.WEIGHT


def pytorch_param_shapes(model: Any) -> dict[str, spec.ShapeTuple]:
    """`{name: ShapeTuple}` for every parameter of a torch module."""
    return {k: spec.ShapeTuple(tuple(v.shape)) for k, v in model.named_parameters()}


def pytorch_param_types(param_shapes: Mapping[str, Any]) -> dict[str, spec.ParameterType]:
    """`{name: ParameterType}` for a flat PyTorch shape dict."""
    return {name: pytorch_param_type(name) for name in param_shapes}


def jax_param_shapes(params: Any) -> Any:
    """Pytree of `ShapeTuple` leaves mirroring `params`."""
    from algoperf.frameworks import jax as _jax

    return _jax.param_shapes(params)


def jax_param_types(param_shapes: Mapping[str, Any], parent_name: str = "") -> dict[str, Any]:
    """Nested dict of `ParameterType` mirroring a (nested-dict) JAX shape tree."""
    parents = [p for p in parent_name.split("/") if p]
    out: dict[str, Any] = {}
    for name, value in param_shapes.items():
        if isinstance(value, Mapping):
            out[name] = jax_param_types(value, parent_name + "/" + name)
        else:
            out[name] = infer_param_type([*parents, name])
    return out
