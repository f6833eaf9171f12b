"""Training-step time of every workload's model, JAX vs PyTorch, measured side by side in one run.

One step = forward in train mode + the workload's loss + backward + a plain SGD update
(``optax.sgd`` / ``torch.optim.SGD``, lr 0.01) on a fixed synthetic batch (no input pipeline is
timed). JAX: one jitted step with donated params, model state and optimizer state, the batch and
the dropout rate arguments of the compiled step as in a workload (so nothing that depends only on
the inputs is constant-folded away); compilation and ``--warmup`` steps are excluded.
PyTorch: eager, ``torch.get_num_threads()`` threads. Per model:

* ``cifar``, ``resnet50``, ``vit_s16``: random images (JAX NHWC, PyTorch NCHW), softmax CE;
  batch norm on batch statistics updating its running statistics; ViT dropout at rate 0.
* ``ogbg``: the GNN on ``--ogbg-batch`` graph slots (one device shard with upstream's static
  budgets), dropout rate 0, masked sigmoid CE.
* ``fastmri``: the U-Net on (B, 320, 320) slices, dropout rate 0, per-slice mean absolute error.
* ``conformer``, ``deepspeech``: ``--speech-batch`` utterances of synthetic int16-scale audio
  padded to ``--speech-samples`` samples (valid lengths uniform in [half, all] of them; the
  upstream shape is 320,000), one target token per 3,200 valid samples (about LibriSpeech's rate)
  padded to 256; the model's log-mel front-end and SpecAugment run inside the step as in
  training; dropout at the workload's rate (0.1); BatchNorm in train mode; CTC loss.
* ``wmt``: the base Transformer (133.5M parameters) on ``--wmt-batch`` packed rows of
  ``--wmt-length`` tokens (two pairs per row, with upstream's segment ids and positions),
  dropout 0.1, softmax CE with label smoothing 0.1 over the real target tokens.
* ``dlrm``: DLRM-small at ``criteo1tb_test`` size (vocabulary 65,536: 10.8M parameters) on
  ``--criteo-batch`` rows (13 dense features, 26 ids), dropout 0 (the workload's rate), sigmoid
  CE on the (B,) click labels.
* ``lm``: the finewebedu_lm decoder (252.8M parameters, bfloat16 compute on float32 parameters)
  on ``--lm-batch`` random windows of ``--lm-length`` tokens, token-mean softmax CE.

For each model the frameworks alternate in ``--repeats`` blocks of ``--steps`` steps (so that
drift in machine load hits both alike); the table shows the median step time over all timed
steps and the PyTorch/JAX ratio (> 1: JAX is faster).

Usage::

    python benchmarks/model_step.py [--models cifar,resnet50,...,lm] [--steps 5] [--repeats 2]
        [--warmup 2] [--imagenet-batch 8] [--cifar-batch 32] [--ogbg-batch 64]
        [--fastmri-batch 2] [--speech-batch 2] [--speech-samples 32000] [--wmt-batch 2]
        [--wmt-length 256] [--criteo-batch 4096] [--lm-batch 1] [--lm-length 256] [--json PATH]

`bench` takes ``model_options`` (overrides of the workload's ``config.model``) so that tests can
time the same step on tiny models.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from algoperf.registry import get_config  # noqa: E402

LR = 0.01
WMT_LABEL_SMOOTHING = 0.1  # upstream's baseline search spaces for wmt
SAMPLES_PER_TOKEN = 3_200  # ~5 SentencePiece tokens per second of 16 kHz speech
TARGET_TOKENS = 256  # upstream's padded target length (speech)

Step = Callable[[], None]
Options = Mapping[str, Any]


@dataclass(frozen=True)
class Sizes:
    """The batch shape knobs of one run (the command-line flags)."""

    imagenet_batch: int = 8
    cifar_batch: int = 32
    ogbg_batch: int = 64
    fastmri_batch: int = 2
    speech_batch: int = 2
    speech_samples: int = 32_000
    wmt_batch: int = 2
    wmt_length: int = 256
    criteo_batch: int = 4_096
    lm_batch: int = 1
    lm_length: int = 256


def _model_options(workload: str, overrides: Options | None) -> dict[str, Any]:
    return {**get_config(workload).model, **(overrides or {})}


def _dropout(workload: str) -> float:
    return float(get_config(workload).dropout_rate or 0.0)


# ---------------------------------------------------------------------------------------------
# Shared step builders: every model below only defines its batch and its loss.


def _jax_sgd(loss_fn: Callable, params: Any, state: Any, batch: Any, rate: float) -> Step:
    """A closure running one jitted SGD step of ``loss_fn(params, state, batch, rng, rate) ->
    (loss, new_state)``; params, state and optimizer state are donated, the rate is traced.

    The batch is an argument of the compiled step, not a constant captured by it: XLA would
    otherwise fold whatever depends only on the inputs (e.g. the speech models' log-mel
    front-end) into the compiled program, and the timed step would skip that work.
    """
    tx = optax.sgd(LR)

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def step(params, state, opt_state, batch, rng, rate):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, state, batch, rng, rate
        )
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss

    carry = {"state": (params, state, tx.init(params)), "rng": jax.random.key(1)}
    traced_rate = jnp.float32(rate)

    def run() -> None:
        carry["rng"], rng = jax.random.split(carry["rng"])
        *new, loss = step(*carry["state"], batch, rng, traced_rate)
        carry["state"] = tuple(new)
        jax.block_until_ready((new, loss))

    return run


def _pytorch_sgd(model: torch.nn.Module, loss_fn: Callable[[], torch.Tensor]) -> Step:
    """A closure running one eager SGD step of ``loss_fn()`` (the model already in train mode)."""
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()

    return run


def _torch_batch(batch: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def _jax_batch(batch: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
    return {k: jnp.asarray(v) for k, v in batch.items()}


def _flax_model(module: Any, workload: str, overrides: Options | None) -> tuple[dict, Any, Any]:
    """``(options, model, params)`` of a family's flax ``build_model`` / ``init`` (key 0)."""
    options = _model_options(workload, overrides)
    model = module.build_model(options)
    return options, model, module.init(model, jax.random.key(0))


def _torch_model(module: Any, workload: str, overrides: Options | None) -> tuple[dict, Any]:
    """``(options, model)``: a family's PyTorch ``build_model`` (seed 0) in train mode."""
    options = _model_options(workload, overrides)
    torch.manual_seed(0)
    return options, module.build_model(options).train()


def _mean(out: Mapping[str, Any]) -> Any:
    """The workload's scalar training loss: summed loss over the valid entries."""
    return out["summed"] / out["n_valid_examples"]


# ---------------------------------------------------------------------------------------------
# Vision: ResNets (CIFAR, ImageNet) and ViT.

VISION = {  # model key -> (workload, kind, image size)
    "cifar": ("cifar", "resnet", 32),
    "resnet50": ("imagenet_resnet", "resnet", 224),
    "vit_s16": ("imagenet_vit", "vit", 224),
}


def _image_batch(size: int, batch: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, 3)).astype(np.float32)
    return x, rng.integers(0, num_classes, batch).astype(np.int32)


def _vision_jax(key: str, batch: int, overrides: Options | None) -> Step:
    from workloads.cifar import model_jax as cifar_jax
    from workloads.imagenet import resnet_jax, vit_jax

    workload, kind, size = VISION[key]
    options = _model_options(workload, overrides)
    module = cifar_jax if key == "cifar" else resnet_jax if kind == "resnet" else vit_jax
    model = module.build_model(options)
    params, model_state = module.init(model, jax.random.key(0), (1, size, size, 3))
    x_np, y_np = _image_batch(size, batch, options["num_classes"])
    b = (jnp.asarray(x_np), jnp.asarray(y_np))

    def loss_fn(params, model_state, b, rng, rate):
        x, y = b
        if kind == "vit":
            logits = vit_jax.forward(model, params, x, train=True, rng=rng, dropout_rate=rate)
        else:
            logits, model_state = resnet_jax.forward(
                model, params, model_state, x, update_batch_norm=True
            )
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), model_state

    return _jax_sgd(loss_fn, params, model_state, b, 0.0)


def _vision_pytorch(key: str, batch: int, overrides: Options | None) -> Step:
    from workloads.cifar import model_pytorch as cifar_pt
    from workloads.imagenet import resnet_pytorch, vit_pytorch

    workload, kind, size = VISION[key]
    options = _model_options(workload, overrides)
    torch.manual_seed(0)
    module = cifar_pt if key == "cifar" else resnet_pytorch if kind == "resnet" else vit_pytorch
    model = module.build_model(options)
    if kind == "resnet":
        resnet_pytorch.set_mode(model, train=True, update_batch_norm=True)
    else:
        model.train()
    x_np, y_np = _image_batch(size, batch, options["num_classes"])
    x = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(y_np).long()

    def loss_fn() -> torch.Tensor:
        logits = model(x) if kind == "resnet" else model(x, dropout_rate=0.0)
        return F.cross_entropy(logits, y)

    return _pytorch_sgd(model, loss_fn)


# ---------------------------------------------------------------------------------------------
# ogbg (GNN) and fastMRI (U-Net).


def _gnn_batch(batch: int) -> dict[str, np.ndarray]:
    from workloads.ogbg import data as ogbg_data

    return ogbg_data.synthetic_batch(get_config("ogbg"), batch, seed=0)


def _gnn_jax(key: str, batch: int, overrides: Options | None) -> Step:
    """Dropout through the traced-rate path at rate 0, masked sigmoid CE."""
    from algoperf.frameworks.losses_jax import sigmoid_cross_entropy
    from workloads.ogbg import model_jax
    from workloads.ogbg.workload_jax import to_graphs_tuple

    _, model, params = _flax_model(model_jax, "ogbg", overrides)
    b = jax.tree.map(jnp.asarray, to_graphs_tuple(_gnn_batch(batch)))

    def loss_fn(params, state, b, rng, rate):
        logits = model.apply(
            {"params": params}, b["inputs"], train=True, dropout_rate=rate, rngs={"dropout": rng}
        )
        out = sigmoid_cross_entropy(b["targets"], logits, b["weights"])
        return _mean(out), state

    return _jax_sgd(loss_fn, params, {}, b, 0.0)


def _gnn_pytorch(key: str, batch: int, overrides: Options | None) -> Step:
    from algoperf.frameworks.losses_pytorch import sigmoid_cross_entropy
    from workloads.ogbg import model_pytorch

    _, model = _torch_model(model_pytorch, "ogbg", overrides)
    b = _torch_batch(_gnn_batch(batch))
    for k in ("senders", "receivers", "n_node", "n_edge"):
        b[k] = b[k].long()
    graph = model_pytorch.Graphs(
        b["nodes"], b["edges"], b["receivers"], b["senders"], {}, b["n_node"], b["n_edge"]
    )

    def loss_fn() -> torch.Tensor:
        out = sigmoid_cross_entropy(b["targets"], model(graph, 0.0), b["weights"])
        return _mean(out)

    return _pytorch_sgd(model, loss_fn)


def _unet_batch(batch: int) -> dict[str, np.ndarray]:
    from workloads.fastmri import data as mri_data

    return mri_data.synthetic_batch(None, batch, 0)


def _unet_jax(key: str, batch: int, overrides: Options | None) -> Step:
    from algoperf.frameworks.losses_jax import mean_absolute_error
    from workloads.fastmri import model_jax

    _, model, params = _flax_model(model_jax, "fastmri", overrides)
    b = _jax_batch(_unet_batch(batch))

    def loss_fn(params, state, b, rng, rate):
        out = model.apply(
            {"params": params}, b["inputs"], train=True, dropout_rate=rate, rngs={"dropout": rng}
        )
        return mean_absolute_error(b["targets"], out)["per_example"].mean(), state

    return _jax_sgd(loss_fn, params, {}, b, 0.0)


def _unet_pytorch(key: str, batch: int, overrides: Options | None) -> Step:
    from algoperf.frameworks.losses_pytorch import mean_absolute_error
    from workloads.fastmri import model_pytorch

    _, model = _torch_model(model_pytorch, "fastmri", overrides)
    b = _torch_batch(_unet_batch(batch))

    def loss_fn() -> torch.Tensor:
        out = model(b["inputs"], dropout_rate=0.0)
        return mean_absolute_error(b["targets"], out)["per_example"].mean()

    return _pytorch_sgd(model, loss_fn)


# ---------------------------------------------------------------------------------------------
# LibriSpeech: Conformer and DeepSpeech (CTC).

SPEECH = {"conformer": "librispeech_conformer", "deepspeech": "librispeech_deepspeech"}


def speech_batch(batch: int, samples: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Synthetic utterances padded to `samples`: audio, audio paddings, targets, target paddings.

    Valid lengths are uniform in [samples / 2, samples]; audio is int16-scale noise (float32);
    each utterance has one token id in [3, 1024) per 3,200 valid samples, padded to 256.
    """
    from workloads.common.sequences import pad_sequences

    rng = np.random.default_rng(seed)
    lengths = rng.integers(samples // 2, samples + 1, batch)
    audio = [rng.integers(-3000, 3000, n).astype(np.float32) for n in lengths]
    tokens = [rng.integers(3, 1024, max(1, n // SAMPLES_PER_TOKEN)) for n in lengths]
    x, x_pad = pad_sequences(audio, samples, dtype=np.float32)
    y, y_pad = pad_sequences(tokens, TARGET_TOKENS, dtype=np.int32)
    return {
        "audio": x,
        "audio_paddings": x_pad.astype(np.float32),
        "targets": y,
        "target_paddings": y_pad.astype(np.float32),
    }


def _speech_jax(key: str, sizes: Sizes, overrides: Options | None) -> Step:
    from algoperf.frameworks.losses_jax import ctc_loss
    from workloads.librispeech import conformer_jax, deepspeech_jax

    workload = SPEECH[key]
    module = conformer_jax if key == "conformer" else deepspeech_jax
    model = module.build_model(_model_options(workload, overrides))
    variables = module.init(model, jax.random.key(0), sizes.speech_samples)
    b = _jax_batch(speech_batch(sizes.speech_batch, sizes.speech_samples))

    def loss_fn(params, batch_stats, b, rng, rate):
        (logits, pad), new_state = model.apply(
            {"params": params, "batch_stats": batch_stats},
            b["audio"],
            b["audio_paddings"],
            train=True,
            dropout_rate=rate,
            rngs={"dropout": rng},
            mutable=["batch_stats"],
        )
        out = ctc_loss((b["targets"], b["target_paddings"]), (logits, pad))
        return _mean(out), new_state["batch_stats"]

    return _jax_sgd(loss_fn, variables["params"], variables["batch_stats"], b, _dropout(workload))


def _speech_pytorch(key: str, sizes: Sizes, overrides: Options | None) -> Step:
    from algoperf.frameworks.losses_pytorch import ctc_loss
    from workloads.librispeech import conformer_pytorch, deepspeech_pytorch

    workload = SPEECH[key]
    module = conformer_pytorch if key == "conformer" else deepspeech_pytorch
    _, model = _torch_model(module, workload, overrides)
    b = _torch_batch(speech_batch(sizes.speech_batch, sizes.speech_samples))
    rate = _dropout(workload)

    def loss_fn() -> torch.Tensor:
        logits, pad = model(b["audio"], b["audio_paddings"], dropout_rate=rate)
        out = ctc_loss((b["targets"], b["target_paddings"]), (logits, pad))
        return _mean(out)

    return _pytorch_sgd(model, loss_fn)


# ---------------------------------------------------------------------------------------------
# WMT Transformer (packed rows, label-smoothed CE).


def wmt_batch(batch: int, length: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Packed rows as the train pipeline yields them: two pairs per row, each side filling its
    row up to a random point, EOS-terminated, with segment ids (1, 2; 0 = padding), positions
    and per-token ``weights`` (targets > 0)."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for side in ("inputs", "targets"):
        ids = rng.integers(3, vocab, (batch, length)).astype(np.int32)
        seg = np.zeros((batch, length), np.int32)
        pos = np.zeros((batch, length), np.int32)
        for r in range(batch):
            used = int(rng.integers(length // 2, length + 1))
            cut = int(rng.integers(1, used)) if used > 1 else used
            for s, (a, z) in enumerate(((0, cut), (cut, used)), start=1):
                seg[r, a:z] = s
                pos[r, a:z] = np.arange(z - a)
                if z > a:
                    ids[r, z - 1] = 2  # EOS
            ids[r, used:] = 0
        out[side], out[f"{side}_segmentation"], out[f"{side}_position"] = ids, seg, pos
    out["weights"] = (out["targets"] > 0).astype(np.float32)
    return out


_WMT_KEYS = (
    "inputs_position",
    "targets_position",
    "inputs_segmentation",
    "targets_segmentation",
)


def _wmt_jax(key: str, sizes: Sizes, overrides: Options | None) -> Step:
    from algoperf.frameworks.losses_jax import softmax_cross_entropy
    from workloads.wmt import model_jax

    options, model, params = _flax_model(model_jax, "wmt", overrides)
    np_batch = wmt_batch(sizes.wmt_batch, sizes.wmt_length, options["vocab_size"])
    b = _jax_batch(np_batch)

    def loss_fn(params, state, b, rng, rate):
        logits = model.apply(
            {"params": params},
            b["inputs"],
            b["targets"],
            *(b[k] for k in _WMT_KEYS),
            train=True,
            dropout_rate=rate,
            rngs={"dropout": rng},
        )
        out = softmax_cross_entropy(b["targets"], logits, b["weights"], WMT_LABEL_SMOOTHING)
        return _mean(out), state

    return _jax_sgd(loss_fn, params, {}, b, _dropout("wmt"))


def _wmt_pytorch(key: str, sizes: Sizes, overrides: Options | None) -> Step:
    from algoperf.frameworks.losses_pytorch import softmax_cross_entropy
    from workloads.wmt import model_pytorch

    options, model = _torch_model(model_pytorch, "wmt", overrides)
    np_batch = wmt_batch(sizes.wmt_batch, sizes.wmt_length, options["vocab_size"])
    b = _torch_batch(np_batch)
    rate = _dropout("wmt")

    def loss_fn() -> torch.Tensor:
        logits = model(b["inputs"], b["targets"], *(b[k] for k in _WMT_KEYS), dropout_rate=rate)
        out = softmax_cross_entropy(b["targets"], logits, b["weights"], WMT_LABEL_SMOOTHING)
        return _mean(out)

    return _pytorch_sgd(model, loss_fn)


# ---------------------------------------------------------------------------------------------
# Criteo DLRM-small at criteo1tb_test size (sigmoid CE).

DLRM_WORKLOAD = "criteo1tb_test"


def criteo_batch(batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Rows in upstream's (B, 39) float32 layout (13 log-scaled dense values, 26 raw ids) and
    (B,) click labels."""
    rng = np.random.default_rng(seed)
    dense = np.log1p(rng.exponential(10.0, (batch, 13))).astype(np.float32)
    ids = rng.integers(0, 40_000_000, (batch, 26)).astype(np.float32)
    labels = (rng.random(batch) < 0.25).astype(np.float32)
    return {"inputs": np.concatenate([dense, ids], axis=1), "targets": labels}


def _dlrm_jax(key: str, sizes: Sizes, overrides: Options | None) -> Step:
    from algoperf.frameworks.losses_jax import sigmoid_cross_entropy
    from workloads.criteo1tb import model_jax

    _, model, params = _flax_model(model_jax, DLRM_WORKLOAD, overrides)
    b = _jax_batch(criteo_batch(sizes.criteo_batch))

    def loss_fn(params, state, b, rng, rate):
        logits = model.apply(
            {"params": params}, b["inputs"], train=True, dropout_rate=rate, rngs={"dropout": rng}
        )
        out = sigmoid_cross_entropy(b["targets"], logits.reshape(-1), apply_label_smoothing=False)
        return _mean(out), state

    return _jax_sgd(loss_fn, params, {}, b, _dropout(DLRM_WORKLOAD))


def _dlrm_pytorch(key: str, sizes: Sizes, overrides: Options | None) -> Step:
    from algoperf.frameworks.losses_pytorch import sigmoid_cross_entropy
    from workloads.criteo1tb import model_pytorch

    _, model = _torch_model(model_pytorch, DLRM_WORKLOAD, overrides)
    b = _torch_batch(criteo_batch(sizes.criteo_batch))
    rate = _dropout(DLRM_WORKLOAD)

    def loss_fn() -> torch.Tensor:
        logits = model(b["inputs"], dropout_rate=rate).reshape(-1)
        out = sigmoid_cross_entropy(b["targets"], logits, apply_label_smoothing=False)
        return _mean(out)

    return _pytorch_sgd(model, loss_fn)


# ---------------------------------------------------------------------------------------------
# finewebedu_lm decoder (bfloat16 compute, token-mean CE).


def lm_batch(batch: int, length: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random windows of ``length + 1`` tokens: inputs ``w[:-1]``, targets ``w[1:]``."""
    w = np.random.default_rng(seed).integers(0, vocab, (batch, length + 1)).astype(np.int32)
    return {"inputs": w[:, :-1], "targets": w[:, 1:]}


def _lm_jax(key: str, sizes: Sizes, overrides: Options | None) -> Step:
    from algoperf.frameworks.losses_jax import softmax_cross_entropy
    from workloads.finewebedu_lm import model_jax

    options, model, params = _flax_model(model_jax, "finewebedu_lm", overrides)
    np_batch = lm_batch(sizes.lm_batch, sizes.lm_length, options["vocab_size"])
    b = _jax_batch(np_batch)

    def loss_fn(params, state, b, rng, rate):
        logits = model_jax.apply(model, params, b["inputs"]).astype(jnp.float32)
        out = softmax_cross_entropy(b["targets"], logits)
        return _mean(out), state

    return _jax_sgd(loss_fn, params, {}, b, 0.0)


def _lm_pytorch(key: str, sizes: Sizes, overrides: Options | None) -> Step:
    from algoperf.frameworks.losses_pytorch import softmax_cross_entropy
    from workloads.finewebedu_lm import model_pytorch

    options, model = _torch_model(model_pytorch, "finewebedu_lm", overrides)
    np_batch = lm_batch(sizes.lm_batch, sizes.lm_length, options["vocab_size"])
    b = _torch_batch(np_batch)

    def loss_fn() -> torch.Tensor:
        out = softmax_cross_entropy(b["targets"].long(), model(b["inputs"]).float())
        return _mean(out)

    return _pytorch_sgd(model, loss_fn)


# ---------------------------------------------------------------------------------------------
# The table of models and the shared timing code.

StepBuilder = Callable[[str, Sizes, "Options | None"], Step]


def _by_batch(fn: Callable[[str, int, Options | None], Step], field: str) -> StepBuilder:
    """Adapt a builder taking one batch size to the `Sizes` interface."""
    return lambda key, sizes, overrides: fn(key, getattr(sizes, field), overrides)


@dataclass(frozen=True)
class Model:
    """One benchmarked model pair: its step builders and the size its table row reports."""

    jax: StepBuilder
    pytorch: StepBuilder
    describe: Callable[[Sizes], str]


MODELS: dict[str, Model] = {
    "cifar": Model(
        _by_batch(_vision_jax, "cifar_batch"),
        _by_batch(_vision_pytorch, "cifar_batch"),
        lambda s: f"{s.cifar_batch} x 32^2",
    ),
    "resnet50": Model(
        _by_batch(_vision_jax, "imagenet_batch"),
        _by_batch(_vision_pytorch, "imagenet_batch"),
        lambda s: f"{s.imagenet_batch} x 224^2",
    ),
    "vit_s16": Model(
        _by_batch(_vision_jax, "imagenet_batch"),
        _by_batch(_vision_pytorch, "imagenet_batch"),
        lambda s: f"{s.imagenet_batch} x 224^2",
    ),
    "ogbg": Model(
        _by_batch(_gnn_jax, "ogbg_batch"),
        _by_batch(_gnn_pytorch, "ogbg_batch"),
        lambda s: f"{s.ogbg_batch} graphs",
    ),
    "fastmri": Model(
        _by_batch(_unet_jax, "fastmri_batch"),
        _by_batch(_unet_pytorch, "fastmri_batch"),
        lambda s: f"{s.fastmri_batch} x 320^2",
    ),
    "conformer": Model(
        _speech_jax, _speech_pytorch, lambda s: f"{s.speech_batch} x {s.speech_samples} samples"
    ),
    "deepspeech": Model(
        _speech_jax, _speech_pytorch, lambda s: f"{s.speech_batch} x {s.speech_samples} samples"
    ),
    "wmt": Model(_wmt_jax, _wmt_pytorch, lambda s: f"{s.wmt_batch} x {s.wmt_length} tokens"),
    "dlrm": Model(_dlrm_jax, _dlrm_pytorch, lambda s: f"{s.criteo_batch} rows"),
    "lm": Model(_lm_jax, _lm_pytorch, lambda s: f"{s.lm_batch} x {s.lm_length} tokens"),
}


def _time(step: Step, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        out.append(time.perf_counter() - t0)
    return out


def bench(
    key: str,
    sizes: Sizes,
    steps: int,
    repeats: int,
    warmup: int,
    model_options: Options | None = None,
) -> dict[str, Any]:
    """Median seconds per step for both frameworks on one model, plus the JAX compile time.

    `model_options` override the workload's ``config.model`` (tests use tiny models).
    """
    entry = MODELS[key]
    t0 = time.perf_counter()
    j = entry.jax(key, sizes, model_options)
    j()  # compile + first step
    compile_s = time.perf_counter() - t0
    p = entry.pytorch(key, sizes, model_options)
    _time(j, warmup)
    _time(p, warmup)
    times: dict[str, list[float]] = {"jax": [], "pytorch": []}
    for r in range(repeats):
        order = [("jax", j), ("pytorch", p)] if r % 2 == 0 else [("pytorch", p), ("jax", j)]
        for name, step in order:
            times[name] += _time(step, steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "model": key,
        "batch": entry.describe(sizes),
        "jax_s": med["jax"],
        "pytorch_s": med["pytorch"],
        "ratio_pt_over_jax": med["pytorch"] / med["jax"],
        "jax_compile_s": compile_s,
        "steps_timed": steps * repeats,
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    helps = {
        "ogbg_batch": "graphs per ogbg batch",
        "fastmri_batch": "320x320 slices per batch",
        "speech_samples": "audio samples per utterance (upstream: 320000)",
        "criteo_batch": "rows per DLRM batch",
    }
    for name, default in Sizes().__dict__.items():
        flag = "--" + name.replace("_", "-")
        ap.add_argument(flag, type=int, default=default, help=helps.get(name))
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    args.keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in args.keys if k not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    sizes = Sizes(**{name: getattr(args, name) for name in Sizes().__dict__})
    warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), jax {jax.__version__} "
        f"({jax.devices()[0].platform}); median of {args.steps * args.repeats} steps after "
        f"{args.warmup} warm-up steps"
    )
    print(f"{'model':<11}{'batch':>24}{'JAX s/step':>12}{'PyTorch s/step':>16}{'PT/JAX':>8}"
          f"{'JAX compile s':>15}")  # fmt: skip
    results = []
    for key in args.keys:
        r = bench(key, sizes, args.steps, args.repeats, args.warmup)
        results.append(r)
        print(
            f"{key:<11}{r['batch']:>24}{r['jax_s']:>12.3f}{r['pytorch_s']:>16.3f}"
            f"{r['ratio_pt_over_jax']:>8.2f}{r['jax_compile_s']:>15.1f}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
