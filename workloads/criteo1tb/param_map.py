"""DLRM-small layout and its JAX <-> PyTorch parameter map (framework-free).

Upstream has two models: ``DlrmSmall`` (bottom MLP 512-256-128, dot interaction of the bottom
output with the 26 embeddings, diagonal included, top MLP 1024-1024-512-256-1, optional
LayerNorms) and ``DLRMResNet`` (``use_resnet``: bottom 256-256-256 and top 256-256-256-256-1
with residual connections, embeddings concatenated instead of interacted; upstream ignores
``use_layer_norm`` and ``embedding_init_multiplier`` there, and so does this layout).

Names: flax numbers ``Dense_k`` / ``LayerNorm_k`` in creation order (bottom MLP, then the
embedding LayerNorm, then the top MLP) and calls the table ``embedding_table``. Upstream's
PyTorch models index ``nn.Sequential`` s: ``bot_mlp.<i>`` / ``top_mlp.<i>`` (``DlrmSmall``) or
``bot_mlp.<i>.module.0`` / ``top_mlp.<i>.module.0`` (``DLRMResNet``), ``embed_ln``. The table:
upstream's PyTorch keeps it as four row blocks ``embedding_chunk_{0..3}`` and concatenates them
(a 2 GiB copy at full size) on every forward pass; here it is one ``embedding_table`` tensor
(the flax leaf, untransposed), and `from_upstream_pytorch` / `to_upstream_pytorch` convert
state dicts to and from upstream's chunked layout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from algoperf.parity import Rule, dense_rule, jax_to_pytorch, pytorch_to_jax, vector_rule

_ALLOWED = {"vocab_size", "embed_dim", "use_layer_norm", "embedding_init_multiplier", "use_resnet"}
NUM_DENSE_FEATURES = 13
NUM_SPARSE_FEATURES = 26
UPSTREAM_NUM_CHUNKS = 4  # row blocks of upstream's PyTorch embedding table
TABLE = "embedding_table"


@dataclasses.dataclass(frozen=True)
class DlrmLayout:
    """What fixes DLRM-small's parameters."""

    vocab_size: int = 4_194_304
    embed_dim: int = 128
    use_layer_norm: bool = False
    embedding_init_multiplier: float | None = None
    use_resnet: bool = False

    @property
    def bottom_dims(self) -> tuple[int, ...]:
        return (256, 256, 256) if self.use_resnet else (512, 256, self.embed_dim)

    @property
    def top_dims(self) -> tuple[int, ...]:
        return (256, 256, 256, 256, 1) if self.use_resnet else (1024, 1024, 512, 256, 1)

    @property
    def layer_norm(self) -> bool:
        """LayerNorms are used (never in the ResNet model, as upstream)."""
        return self.use_layer_norm and not self.use_resnet

    @property
    def top_input_dim(self) -> int:
        """Width of the top MLP's input."""
        n = NUM_SPARSE_FEATURES + 1
        if self.use_resnet:
            return self.bottom_dims[-1] + NUM_SPARSE_FEATURES * self.embed_dim
        return self.bottom_dims[-1] + n * (n + 1) // 2  # 128 + 378 = 506

    @property
    def embedding_scale(self) -> float:
        """The table is uniform in [0, scale): 1/sqrt(vocab) unless a multiplier is given."""
        if self.embedding_init_multiplier is None or self.use_resnet:
            return 1.0 / float(np.sqrt(self.vocab_size))
        return float(self.embedding_init_multiplier)


def dlrm_layout(options: Mapping[str, Any]) -> DlrmLayout:
    """The layout of a criteo1tb ``config.model`` (unknown keys are refused)."""
    unknown = sorted(set(options) - _ALLOWED)
    if unknown:
        raise ValueError(
            f"workloads/criteo1tb/spec.py: unknown criteo1tb model option(s) {unknown}; "
            f"allowed: {sorted(_ALLOWED)}"
        )
    layout = DlrmLayout(
        vocab_size=int(options.get("vocab_size", 4_194_304)),
        embed_dim=int(options.get("embed_dim", 128)),
        use_layer_norm=bool(options.get("use_layer_norm", False)),
        embedding_init_multiplier=options.get("embedding_init_multiplier"),
        use_resnet=bool(options.get("use_resnet", False)),
    )
    if layout.vocab_size < 1 or layout.vocab_size % UPSTREAM_NUM_CHUNKS:
        raise ValueError(
            f"workloads/criteo1tb/spec.py: vocab_size {layout.vocab_size} must be a positive "
            f"multiple of {UPSTREAM_NUM_CHUNKS} (upstream's PyTorch table has that many blocks)"
        )
    return layout


def pytorch_dense_names(layout: DlrmLayout) -> tuple[list[str], list[str], list[str]]:
    """PyTorch module names of the bottom Linears, top Linears and bottom/top LayerNorms."""
    if layout.use_resnet:
        bottom = [f"bot_mlp.{i}.module.0" for i in range(len(layout.bottom_dims))]
        top = [f"top_mlp.{i}.module.0" for i in range(len(layout.top_dims))]
        return bottom, top, []
    step = 3 if layout.layer_norm else 2  # Linear, ReLU[, LayerNorm]
    bottom = [f"bot_mlp.{step * i}" for i in range(len(layout.bottom_dims))]
    top, norms = [], [f"bot_mlp.{step * i + 2}" for i in range(len(layout.bottom_dims))]
    k = 0
    for i in range(len(layout.top_dims)):
        top.append(f"top_mlp.{k}")
        k += 1
        if i < len(layout.top_dims) - 1:
            k += 1  # ReLU
            if layout.layer_norm:
                norms.append(f"top_mlp.{k}")
                k += 1
        if i == len(layout.top_dims) - 2:
            k += 1  # dropout
    return bottom, top, norms if layout.layer_norm else []


def output_dense(layout: DlrmLayout) -> str:
    """flax name of the output layer (upstream's ``is_output_params``: ``Dense_7``)."""
    return f"Dense_{len(layout.bottom_dims) + len(layout.top_dims) - 1}"


def rules(layout: DlrmLayout) -> list[Rule]:
    """One rule per parameter tensor, PyTorch key <-> flax path."""
    bottom, top, norms = pytorch_dense_names(layout)
    out = [vector_rule(TABLE, ("params", TABLE))]
    for k, pt in enumerate(bottom + top):
        out += [
            dense_rule(f"{pt}.weight", ("params", f"Dense_{k}", "kernel")),
            vector_rule(f"{pt}.bias", ("params", f"Dense_{k}", "bias")),
        ]
    if layout.layer_norm:
        # flax order: bottom norms, the embedding norm, then the top norms.
        nb = len(layout.bottom_dims)
        ordered = [*norms[:nb], "embed_ln", *norms[nb:]]
        for k, pt in enumerate(ordered):
            out += [
                vector_rule(f"{pt}.weight", ("params", f"LayerNorm_{k}", "scale")),
                vector_rule(f"{pt}.bias", ("params", f"LayerNorm_{k}", "bias")),
            ]
    return out


def pytorch_to_jax_params(state_dict: Mapping[str, Any], options: Mapping[str, Any]) -> dict:
    """PyTorch state dict (this layout or upstream's chunked one) -> flax ``params`` (numpy)."""
    return pytorch_to_jax(from_upstream_pytorch(state_dict), rules(dlrm_layout(options)))["params"]


def jax_to_pytorch_params(
    params: Mapping[str, Any], options: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """flax ``params`` -> a complete PyTorch state dict of this layout (numpy)."""
    return jax_to_pytorch({"params": params}, rules(dlrm_layout(options)))


def from_upstream_pytorch(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Upstream's ``embedding_chunk_{0..3}`` row blocks -> one ``embedding_table`` (else as is)."""
    chunks = sorted(k for k in state_dict if k.startswith("embedding_chunk_"))
    if not chunks:
        return dict(state_dict)
    expected = [f"embedding_chunk_{i}" for i in range(UPSTREAM_NUM_CHUNKS)]
    if chunks != expected or TABLE in state_dict:
        raise ValueError(
            f"criteo1tb state dict: embedding keys {chunks} are neither upstream's {expected} "
            f"nor one {TABLE!r}; save the checkpoint from either model unchanged"
        )
    out = {k: v for k, v in state_dict.items() if k not in expected}
    out[TABLE] = np.concatenate([np.asarray(state_dict[k]) for k in expected], axis=0)
    return out


def to_upstream_pytorch(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """One ``embedding_table`` -> upstream's four equal row blocks (other keys unchanged)."""
    out = {k: v for k, v in state_dict.items() if k != TABLE}
    blocks = np.split(np.asarray(state_dict[TABLE]), UPSTREAM_NUM_CHUNKS, axis=0)
    out.update({f"embedding_chunk_{i}": b for i, b in enumerate(blocks)})
    return out
