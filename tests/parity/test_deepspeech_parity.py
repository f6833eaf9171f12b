"""JAX vs PyTorch parity of the DeepSpeech models on identical weights and batches (fp32, CPU).

For every variant (base, _tanh, _no_resnet, _norm_and_spec_aug) at a tiny size (encoder 16,
two LSTM and two feed-forward blocks, vocabulary 10; the full-size layout is checked shape-only
in the unit tests), the flax model is initialised, every parameter made random (norm scales
and biases too, so none is trivially 0) and BatchNorm running statistics made random (variance
positive); the parameter map (LSTM gates i, f, g, o as row blocks; PyTorch's two LSTM biases
folded into flax's one) copies them into the PyTorch model, whose ``load_state_dict`` is strict.
A batch of two utterances of 8,000 samples, the second padded after 5,123 samples, goes through
both front-ends and models, in EVAL mode (running statistics) and in TRAIN mode with dropout 0
(batch statistics over valid frames; SpecAugment off, its two implementations are checked
on identical draws in the Conformer's tests). Compared: logits at
valid frames only (the LSTMs treat padded frames differently by design: flax runs over them,
PyTorch's packed sequences zero them), output paddings exactly, and the updated BatchNorm
running statistics after the train-mode pass.

Tolerance: logits 1e-4 absolute (outputs O(1); seen 5e-7 to 2.3e-5 over the variants and
modes, float32 FFT and LSTM rounding, while padded frames differ by O(1) as they may);
running statistics 1e-5. A mis-mapped gate or a missing bias moves the logits by O(0.1-1)
(`test_a_wrong_gate_order_is_caught`). The base workload runs by default; the variants are
marked slow.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
import torch

from workloads.librispeech import deepspeech_jax, deepspeech_param_map, deepspeech_pytorch
from workloads.librispeech.spec import VARIANTS

LOGIT_ATOL = 1e-4
STATS_ATOL = 1e-5
TINY = {
    "use_specaug": False,
    "encoder_dim": 16,
    "num_lstm_layers": 2,
    "num_ffn_layers": 2,
    "vocab_size": 10,
}
SAMPLES, VALID = 8000, 5123
NAMES = [
    "librispeech_deepspeech",
    "librispeech_deepspeech_tanh",
    "librispeech_deepspeech_no_resnet",
    "librispeech_deepspeech_norm_and_spec_aug",
]
CASES = [pytest.param(NAMES[0], id=NAMES[0])] + [
    pytest.param(name, id=name, marks=pytest.mark.slow) for name in NAMES[1:]
]


def _options(name: str) -> dict:
    return {**VARIANTS[name].model, **TINY}


def _randomised(variables, seed: int):
    rng = np.random.default_rng(seed)
    out = {}
    for collection, tree in variables.items():

        def leaf(path, x, collection=collection):
            if collection == "batch_stats":
                if path[-1].key == "var":
                    return rng.uniform(0.5, 2.0, x.shape).astype(np.float32)
                return (0.3 * rng.standard_normal(x.shape)).astype(np.float32)
            if len(x.shape) >= 2:
                fan_in = int(np.prod(x.shape[:-1]))
                return (rng.standard_normal(x.shape) / np.sqrt(fan_in)).astype(np.float32)
            return (0.2 * rng.standard_normal(x.shape)).astype(np.float32)

        out[collection] = jax.tree_util.tree_map_with_path(leaf, tree)
    return out


def _batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    audio = rng.normal(0, 3000, (2, SAMPLES)).astype(np.float32)
    paddings = np.zeros((2, SAMPLES), np.float32)
    paddings[1, VALID:] = 1.0
    return audio, paddings


@functools.cache
def _jax_side(name: str, seed: int = 0):
    options = _options(name)
    jmodel = deepspeech_jax.build_model(options)
    # Every value is replaced, so only the shapes of an init are needed (no init compile).
    shapes = jax.eval_shape(lambda r: deepspeech_jax.init(jmodel, r, SAMPLES), jax.random.key(0))
    variables = _randomised(shapes, seed)
    return options, jmodel, variables


def _models(name: str, seed: int = 0):
    """(options, flax model, variables, PyTorch model loaded through the map); cached flax side."""
    options, jmodel, variables = _jax_side(name, seed)
    pmodel = deepspeech_pytorch.build_model(options)
    sd = deepspeech_param_map.jax_to_pytorch(variables, options)
    pmodel.load_state_dict({k: torch.tensor(v) for k, v in sd.items()}, strict=True)
    return options, jmodel, variables, pmodel


def _run_both(jmodel, variables, pmodel, train: bool):
    audio, paddings = _batch(1)
    jout, jstate = jmodel.apply(
        variables, audio, paddings, train=train, dropout_rate=0.0, mutable=["batch_stats"]
    )
    pmodel.train(train)
    with torch.no_grad():
        pout = pmodel(torch.tensor(audio), torch.tensor(paddings), dropout_rate=0.0)
    return jout, jstate, pout


def _assert_valid_logits_close(jout, pout, atol: float) -> None:
    (jlogits, jpad), (plogits, ppad) = jout, pout
    np.testing.assert_array_equal(np.asarray(jpad), ppad.numpy())
    valid = np.asarray(jpad) == 0
    assert valid[1].sum() < valid[0].sum()  # the padded utterance has padded output frames
    np.testing.assert_allclose(
        np.asarray(jlogits)[valid], plogits.numpy()[valid], atol=atol, rtol=0
    )


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_outputs_match_on_identical_weights(name, train):
    options, jmodel, variables, pmodel = _models(name)
    jout, jstate, pout = _run_both(jmodel, variables, pmodel, train)
    _assert_valid_logits_close(jout, pout, LOGIT_ATOL)
    if train and not options["layernorm_everywhere"]:
        updated = deepspeech_param_map.jax_to_pytorch(
            {"params": variables["params"], **jstate}, options
        )
        for key, value in pmodel.state_dict().items():
            if "running_" in key:
                np.testing.assert_allclose(value.numpy(), updated[key], atol=STATS_ATOL, rtol=0)
                assert not np.allclose(updated[key], deepspeech_param_map.jax_to_pytorch(
                    variables, options
                )[key])  # fmt: skip


def test_maps_round_trip_and_fold_the_lstm_biases():
    options, _, _, pmodel = _models("librispeech_deepspeech")
    sd = {k: v.numpy() for k, v in pmodel.state_dict().items()}
    rng = np.random.default_rng(3)
    for key in [k for k in sd if ".bias_ih_l0" in k]:
        sd[key] = rng.standard_normal(sd[key].shape).astype(np.float32)
    back = deepspeech_param_map.pytorch_to_jax(sd, options)
    cell = back["params"]["BatchRNN_0"]["LSTM_0"]["LSTM"]["LSTMSequenceEncoder_1"]["cell"]
    h = TINY["encoder_dim"] // 2
    folded = sd["lstms.0.lstm.bias_ih_l0_reverse"] + sd["lstms.0.lstm.bias_hh_l0_reverse"]
    np.testing.assert_allclose(cell["hf"]["bias"], folded[h : 2 * h], rtol=1e-6)
    again = deepspeech_param_map.pytorch_to_jax(
        deepspeech_param_map.jax_to_pytorch(back, options), options
    )
    jax.tree.map(np.testing.assert_array_equal, again, back)


def test_a_wrong_gate_order_is_caught():
    """Swapping the forget and cell gates of one LSTM moves the logits far beyond tolerance."""
    _, jmodel, variables, pmodel = _models("librispeech_deepspeech")
    sd = pmodel.state_dict()
    h = TINY["encoder_dim"] // 2
    w = sd["lstms.0.lstm.weight_ih_l0"].clone()
    w[h : 2 * h], w[2 * h : 3 * h] = sd["lstms.0.lstm.weight_ih_l0"][2 * h : 3 * h], w[h : 2 * h]
    sd["lstms.0.lstm.weight_ih_l0"] = w
    pmodel.load_state_dict(sd)
    jout, _, pout = _run_both(jmodel, variables, pmodel, train=False)
    with pytest.raises(AssertionError):
        _assert_valid_logits_close(jout, pout, 100 * LOGIT_ATOL)


def test_specaugment_masks_features_in_train_mode_only():
    """With SpecAugment on, train-mode logits move (masked features) in both frameworks; PyTorch's
    eval mode is unchanged (JAX applies it under ``train`` only, visibly in the model)."""
    name = "librispeech_deepspeech"
    options = {**_options(name), "use_specaug": True, "freq_mask_count": 2, "time_mask_count": 2}
    _, jmodel, variables = _jax_side(name)
    audio, paddings = _batch(1)
    kwargs = {"train": True, "dropout_rate": 0.0, "mutable": ["batch_stats"]}
    (on, _), _ = deepspeech_jax.build_model(options).apply(
        variables, audio, paddings, rngs={"dropout": jax.random.PRNGKey(5)}, **kwargs
    )
    (off, _), _ = jmodel.apply(variables, audio, paddings, **kwargs)
    assert np.abs(np.asarray(on) - np.asarray(off)).max() > 1e-2
    _, _, _, pmodel = _models(name)
    spec = deepspeech_pytorch.build_model(options)
    spec.load_state_dict(pmodel.state_dict())
    torch.manual_seed(5)
    for train in (False, True):
        spec.train(train)
        pmodel.train(train)
        with torch.no_grad():
            on = spec(torch.tensor(audio), torch.tensor(paddings), dropout_rate=0.0)[0]
            off = pmodel(torch.tensor(audio), torch.tensor(paddings), dropout_rate=0.0)[0]
        if train:
            assert (on - off).abs().max() > 1e-2
        else:
            torch.testing.assert_close(on, off, rtol=0, atol=0)
