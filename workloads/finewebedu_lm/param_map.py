"""finewebedu_lm decoder layout, its parameter count and the JAX <-> PyTorch parameter map.

The layout comes from the family's ``config.model`` dict (`workloads/finewebedu_lm/spec.py`):
sizes (``vocab_size``, ``model_dim``, ``num_heads``, ``num_layers``, ``mlp_dim``, ``seq_len``)
as upstream's `BaseLmWorkload` (50,257 / 1,024 / 8 / 12 / 4,096 / 1,024), epsilons, the tied
embedding, and the compute dtype (``bfloat16`` as upstream; ``float32`` for CPU tests and
parity). Parameters are always float32.

Names are upstream's (commit 4c37f2aa). flax: ``embed/embedding``; ``blocks_<i>`` with
``RMSNorm_0/scale``, ``CausalAttn_0/{query,key,value}/kernel`` (D, H, Dh),
``CausalAttn_0/attn_out_proj/kernel`` (D, D), ``CausalAttn_0/attn_scale`` (scalar),
``RMSNorm_1/scale``, ``Mlp_0/Dense_0/kernel`` (D, 2F) and ``Mlp_0/Dense_1/kernel`` (F, D);
``out_ln/scale``; untied only: ``output_proj/kernel``. PyTorch: ``embed_tokens.weight``;
``layers.<i>.{attn_norm, attn.w_qkv, attn.w_out, attn.attn_scale, mlp_norm, mlp.fc1, mlp.fc2}``
(``w_qkv`` fuses the q, k, v rows); ``out_norm.weight``; untied only: ``lm_head.weight``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from algoperf.parity import (
    Rule,
    attention_in_rules,
    dense_rule,
    jax_to_pytorch,
    pytorch_to_jax,
    vector_rule,
)

COMPUTE_DTYPES = ("bfloat16", "float32")
ATTENTION = ("auto", "xla", "cudnn")
_SIZES = ("vocab_size", "model_dim", "num_heads", "num_layers", "mlp_dim", "seq_len")
_ALLOWED = {
    *_SIZES,
    "multiple_of",
    "rmsnorm_epsilon",
    "qknorm_epsilon",
    "rope_theta",
    "tie_embeddings",
    "compute_dtype",
    "attention",
}
_SPEC = "workloads/finewebedu_lm/spec.py"


@dataclasses.dataclass(frozen=True)
class LmLayout:
    """What fixes the decoder's parameters and its forward pass (upstream's defaults).

    ``attention`` (JAX only): ``auto`` asks `jax.nn.dot_product_attention` for cuDNN on a GPU in
    bfloat16 (as upstream) and for XLA's implementation otherwise (CPU, float32).
    """

    vocab_size: int = 50_257
    model_dim: int = 1024
    num_heads: int = 8
    num_layers: int = 12
    mlp_dim: int = 4096
    seq_len: int = 1024
    multiple_of: int = 256
    rmsnorm_epsilon: float = 1e-6
    qknorm_epsilon: float = 1e-6
    rope_theta: float = 500_000.0
    tie_embeddings: bool = True
    compute_dtype: str = "bfloat16"
    attention: str = "auto"

    @property
    def head_dim(self) -> int:
        return self.model_dim // self.num_heads

    @property
    def hidden_dim(self) -> int:
        """The GLU's hidden width: ``mlp_dim`` rounded up to ``multiple_of`` (as upstream)."""
        return self.multiple_of * -(-self.mlp_dim // self.multiple_of)

    @property
    def residual_init_std(self) -> float:
        """Init std of the residual-branch outputs (attention out, MLP out): 0.02/sqrt(2L)."""
        return 0.02 / math.sqrt(2 * self.num_layers)

    @property
    def attn_scale_init(self) -> float:
        """QK-norm's learned logit scale at init: log2(L^2 - L) (upstream's ``attn_scale0``)."""
        return math.log2(self.seq_len**2 - self.seq_len)


def lm_layout(options: Mapping[str, Any]) -> LmLayout:
    """The layout of a finewebedu_lm ``config.model`` (unknown keys and bad values refused)."""
    unknown = sorted(set(options) - _ALLOWED)
    if unknown:
        raise ValueError(
            f"{_SPEC}: unknown finewebedu_lm model option(s) {unknown}; allowed: {sorted(_ALLOWED)}"
        )
    defaults = LmLayout()
    values: dict[str, Any] = {k: getattr(defaults, k) for k in _ALLOWED}
    values.update(options)
    for key in (*_SIZES, "multiple_of"):
        values[key] = int(values[key])
    for key in ("rmsnorm_epsilon", "qknorm_epsilon", "rope_theta"):
        values[key] = float(values[key])
    values["tie_embeddings"] = bool(values["tie_embeddings"])
    layout = LmLayout(**values)
    if layout.compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"{_SPEC}: compute_dtype {layout.compute_dtype!r} not in {COMPUTE_DTYPES}")
    if layout.attention not in ATTENTION:
        raise ValueError(f"{_SPEC}: attention {layout.attention!r} not in {ATTENTION}")
    if layout.model_dim % layout.num_heads or layout.head_dim % 2:
        raise ValueError(
            f"{_SPEC}: model_dim {layout.model_dim} must split into {layout.num_heads} heads of "
            "even width (RoPE rotates pairs)"
        )
    return layout


def param_count(layout: LmLayout) -> int:
    """Trainable parameters, from the layout alone (what both models hold)."""
    d, f = layout.model_dim, layout.hidden_dim
    per_layer = (
        4 * d * d + 3 * d * f + 2 * d + 1
    )  # q, k, v, out; GLU in (2F) and out; 2 norms; scale
    embed = layout.vocab_size * d * (1 if layout.tie_embeddings else 2)
    return layout.num_layers * per_layer + embed + d


def rope_table(layout: LmLayout) -> np.ndarray:
    """RoPE's (seq_len, head_dim // 2, 2) float32 [cos, sin] table, theta ``rope_theta``.

    Pair ``i`` of a head (elements 2i, 2i+1) turns by ``pos / theta ** (2i / head_dim)``, as in
    both upstream models. Computed once in float64 (both frameworks read this table).
    """
    dh = layout.head_dim
    inv_freq = 1.0 / layout.rope_theta ** (np.arange(0, dh, 2, dtype=np.float64) / dh)
    angles = np.outer(np.arange(layout.seq_len, dtype=np.float64), inv_freq)
    return np.stack([np.cos(angles), np.sin(angles)], axis=-1).astype(np.float32)


def rules(layout: LmLayout) -> list[Rule]:
    """One rule per parameter tensor (or row block), PyTorch key <-> flax path."""
    d, h = layout.model_dim, layout.num_heads
    out = [vector_rule("embed_tokens.weight", ("params", "embed", "embedding"))]
    for i in range(layout.num_layers):
        pt, jx = f"layers.{i}", ("params", f"blocks_{i}")
        attn = (*jx, "CausalAttn_0")
        out.append(vector_rule(f"{pt}.attn_norm.weight", (*jx, "RMSNorm_0", "scale")))
        for k, name in enumerate(("query", "key", "value")):
            rows = (k * d, (k + 1) * d)
            out += attention_in_rules(f"{pt}.attn.w_qkv", (*attn, name), h, rows)[:1]
        out.append(dense_rule(f"{pt}.attn.w_out.weight", (*attn, "attn_out_proj", "kernel")))
        out.append(vector_rule(f"{pt}.attn.attn_scale", (*attn, "attn_scale")))
        out.append(vector_rule(f"{pt}.mlp_norm.weight", (*jx, "RMSNorm_1", "scale")))
        out.append(dense_rule(f"{pt}.mlp.fc1.weight", (*jx, "Mlp_0", "Dense_0", "kernel")))
        out.append(dense_rule(f"{pt}.mlp.fc2.weight", (*jx, "Mlp_0", "Dense_1", "kernel")))
    out.append(vector_rule("out_norm.weight", ("params", "out_ln", "scale")))
    if not layout.tie_embeddings:
        out.append(dense_rule("lm_head.weight", ("params", "output_proj", "kernel")))
    return out


def pytorch_to_jax_params(state_dict: Mapping[str, Any], options: Mapping[str, Any]) -> dict:
    """PyTorch state dict -> flax ``params`` tree (numpy)."""
    params = pytorch_to_jax(state_dict, rules(lm_layout(options)))["params"]
    for name, block in params.items():
        if name.startswith("blocks_"):
            attn = block["CausalAttn_0"]
            attn["attn_scale"] = _scalar(attn["attn_scale"])
    return params


def jax_to_pytorch_params(
    params: Mapping[str, Any], options: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """flax ``params`` -> a complete PyTorch state dict of `model_pytorch.Transformer` (numpy)."""
    state = jax_to_pytorch({"params": params}, rules(lm_layout(options)))
    return {k: _scalar(v) if k.endswith("attn_scale") else v for k, v in state.items()}


def _scalar(value: np.ndarray) -> np.ndarray:
    """``attn_scale`` back to shape () (`np.ascontiguousarray` makes 0-d arrays 1-d)."""
    return np.asarray(value).reshape(())
