"""DeepSpeech options and the JAX <-> PyTorch parameter map (framework-free, numpy).

Flax names (upstream's): ``Subsample_0/{Conv2dSubsampling_0,Conv2dSubsampling_1}/{kernel,bias}``
and ``Subsample_0/Dense_0``; ``BatchRNN_<i>/{BatchNorm_0|LayerNorm_0}/{scale,bias}`` and
``BatchRNN_<i>/LSTM_0/LSTM/LSTMSequenceEncoder_<d>/cell/{ii,if,ig,io}/kernel`` +
``{hi,hf,hg,ho}/{kernel,bias}`` (d = 0 forward, 1 backward; flax ``OptimizedLSTMCell``);
``FeedForwardModule_<j>/{BatchNorm_0|LayerNorm_0, Dense_0}``; ``LayerNorm_0`` (decoder, when
enabled) and ``Dense_0`` (the output projection). BatchNorm running statistics live in the
``batch_stats`` collection as ``mean``/``var`` (PyTorch buffers ``running_mean``/``running_var``).

LSTM gate order: PyTorch's ``weight_ih_l0`` / ``weight_hh_l0`` stack the input, forget, cell
and output gates (i, f, g, o) as row blocks of ``hidden`` rows, which are flax's
``ii/if/ig/io`` and ``hi/hf/hg/ho`` kernels transposed. PyTorch has two bias vectors per gate
(``bias_ih`` + ``bias_hh``) where flax has one (on the hidden projection): the map to JAX adds
them, the map to PyTorch writes the flax bias into ``bias_hh`` and zeros into ``bias_ih`` (the
same function). That is why PyTorch counts 4 x hidden more parameters per LSTM direction
(18,393,600 vs 18,381,312 at full size).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from algoperf import parity

_DEFAULTS: dict[str, Any] = {
    "arch": "deepspeech",
    "activation": "relu",
    "use_residual": True,
    "layernorm_everywhere": False,
    "enable_decoder_layer_norm": True,
    "use_specaug": True,
    "freq_mask_count": 2,
    "time_mask_count": 10,
    # Sizes (upstream's); tests shrink them.
    "encoder_dim": 512,
    "num_lstm_layers": 6,
    "num_ffn_layers": 3,
    "vocab_size": 1024,
    "num_bins": 80,
}
ACTIVATIONS = ("relu", "tanh")
GATES = ("i", "f", "g", "o")  # PyTorch's row-block order of the stacked LSTM weights

# Upstream's BatchNorm constants (lingvo's): the running averages keep 0.999 of the old value.
BATCH_NORM_MOMENTUM = 0.999
BATCH_NORM_EPSILON = 1e-3
LAYER_NORM_EPSILON = 1e-6


def deepspeech_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validated DeepSpeech options from ``config.model``; unknown keys are an error."""
    unknown = sorted(set(options) - set(_DEFAULTS))
    if unknown:
        raise ValueError(
            f"workloads/librispeech/spec.py: unknown DeepSpeech model option(s) {unknown}; "
            f"allowed: {sorted(_DEFAULTS)}"
        )
    out = {**_DEFAULTS, **options}
    if out["arch"] != "deepspeech":
        raise ValueError(f"workloads/librispeech/spec.py: arch {out['arch']!r} is not deepspeech")
    if out["activation"] not in ACTIVATIONS:
        raise ValueError(
            f"workloads/librispeech/spec.py: activation {out['activation']!r} is not one of "
            f"{', '.join(ACTIVATIONS)}"
        )
    if int(out["encoder_dim"]) % 2:
        raise ValueError("workloads/librispeech/spec.py: encoder_dim must be even (bidirectional)")
    ints = ("freq_mask_count", "time_mask_count", "encoder_dim", "num_lstm_layers")
    ints += ("num_ffn_layers", "vocab_size", "num_bins")
    bools = ("use_residual", "layernorm_everywhere", "enable_decoder_layer_norm", "use_specaug")
    return {
        "arch": "deepspeech",
        "activation": str(out["activation"]),
        **{k: bool(out[k]) for k in bools},
        **{k: int(out[k]) for k in ints},
    }


def subsampled_bins(num_bins: int) -> int:
    """Feature bins after the two stride-2 'SAME' convolutions (80 -> 20)."""
    half = (num_bins + 1) // 2
    return (half + 1) // 2


def _norm_rules(pt: str, jax: tuple[str, ...], layernorm: bool) -> list[parity.Rule]:
    if layernorm:
        name = ("params", *jax, "LayerNorm_0")
        return [
            parity.vector_rule(f"{pt}.normalization_layer.scale", (*name, "scale")),
            parity.vector_rule(f"{pt}.normalization_layer.bias", (*name, "bias")),
        ]
    bn = f"{pt}.bn_normalization_layer"
    return [
        parity.vector_rule(f"{bn}.weight", ("params", *jax, "BatchNorm_0", "scale")),
        parity.vector_rule(f"{bn}.bias", ("params", *jax, "BatchNorm_0", "bias")),
        parity.vector_rule(f"{bn}.running_mean", ("batch_stats", *jax, "BatchNorm_0", "mean")),
        parity.vector_rule(f"{bn}.running_var", ("batch_stats", *jax, "BatchNorm_0", "var")),
    ]


def _lstm_rules(pt: str, jax: tuple[str, ...], hidden: int) -> list[parity.Rule]:
    out = []
    for d, suffix in enumerate(("", "_reverse")):
        cell = ("params", *jax, "LSTM_0", "LSTM", f"LSTMSequenceEncoder_{d}", "cell")
        for g, gate in enumerate(GATES):
            rows = (g * hidden, (g + 1) * hidden)
            for kind in ("ih", "hh"):
                leaf = (*cell, f"{kind[0]}{gate}", "kernel")
                out.append(
                    parity.Rule(
                        f"{pt}.lstm.weight_{kind}_l0{suffix}",
                        leaf,
                        to_jax=np.transpose,
                        to_pt=np.transpose,
                        rows=rows,
                    )
                )
            out.append(
                parity.Rule(f"{pt}.lstm.bias_hh_l0{suffix}", (*cell, f"h{gate}", "bias"), rows=rows)
            )
    return out


def rules(options: Mapping[str, Any]) -> list[parity.Rule]:
    """One `algoperf.parity.Rule` per flax leaf (``params`` and ``batch_stats``) of the model.

    The PyTorch ``bias_ih`` vectors have no rule: use `pytorch_to_jax` / `jax_to_pytorch`.
    """
    o = deepspeech_options(options)
    sub = ("params", "Subsample_0")
    out = [
        parity.conv_rule("subsample.conv1.kernel", (*sub, "Conv2dSubsampling_0", "kernel")),
        parity.vector_rule("subsample.conv1.bias", (*sub, "Conv2dSubsampling_0", "bias")),
        parity.conv_rule("subsample.conv2.kernel", (*sub, "Conv2dSubsampling_1", "kernel")),
        parity.vector_rule("subsample.conv2.bias", (*sub, "Conv2dSubsampling_1", "bias")),
        parity.dense_rule("subsample.lin.weight", (*sub, "Dense_0", "kernel")),
        parity.vector_rule("subsample.lin.bias", (*sub, "Dense_0", "bias")),
    ]
    for i in range(o["num_lstm_layers"]):
        out += _norm_rules(f"lstms.{i}", (f"BatchRNN_{i}",), o["layernorm_everywhere"])
        out += _lstm_rules(f"lstms.{i}", (f"BatchRNN_{i}",), o["encoder_dim"] // 2)
    for j in range(o["num_ffn_layers"]):
        name = f"FeedForwardModule_{j}"
        out += _norm_rules(f"ffns.{j}", (name,), o["layernorm_everywhere"])
        out.append(parity.dense_rule(f"ffns.{j}.lin.weight", ("params", name, "Dense_0", "kernel")))
        out.append(parity.vector_rule(f"ffns.{j}.lin.bias", ("params", name, "Dense_0", "bias")))
    if o["enable_decoder_layer_norm"]:
        out.append(parity.vector_rule("ln.scale", ("params", "LayerNorm_0", "scale")))
        out.append(parity.vector_rule("ln.bias", ("params", "LayerNorm_0", "bias")))
    out.append(parity.dense_rule("lin.weight", ("params", "Dense_0", "kernel")))
    out.append(parity.vector_rule("lin.bias", ("params", "Dense_0", "bias")))
    return out


def _is_bias_ih(key: str) -> bool:
    return ".lstm.bias_ih_l0" in key


def pytorch_to_jax(state_dict: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """PyTorch state dict -> flax ``{params, batch_stats}``; LSTM biases ``bias_ih + bias_hh``."""
    sd = {k: np.asarray(v) for k, v in state_dict.items()}
    for key in [k for k in sd if _is_bias_ih(k)]:
        hh = key.replace("bias_ih", "bias_hh")
        if hh not in sd:
            raise KeyError(f"state dict has {key} but not {hh}")
        sd[hh] = sd[hh] + sd[key]
    return parity.pytorch_to_jax(sd, rules(options), ignore=_is_bias_ih)


def jax_to_pytorch(variables: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """flax ``{params, batch_stats}`` -> PyTorch state dict (numpy), ``bias_ih`` zero."""
    sd = parity.jax_to_pytorch(variables, rules(options))
    for key in [k for k in sd if ".lstm.bias_hh_l0" in k]:
        sd[key.replace("bias_hh", "bias_ih")] = np.zeros_like(sd[key])
    return sd
