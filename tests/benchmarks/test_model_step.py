"""benchmarks/model_step.py: its synthetic batches have the documented shapes, and every model
entry times a real training step in both frameworks (tiny models: JAX compile dominates)."""

import math

import numpy as np
import pytest

from tests.benchmarks.loader import load_benchmark

model_step = load_benchmark("model_step")

TINY = {
    "ogbg": {"latent_dim": 8, "hidden_dims": (8,), "num_message_passing_steps": 1},
    "fastmri": {"num_channels": 2, "num_pool_layers": 1},
    "conformer": {"encoder_dim": 16, "num_encoder_layers": 1, "num_attention_heads": 2},
    "deepspeech": {"encoder_dim": 16, "num_lstm_layers": 1, "num_ffn_layers": 1},
    "wmt": {"vocab_size": 64, "emb_dim": 16, "num_heads": 2, "num_layers": 1, "mlp_dim": 16},
    "dlrm": {"vocab_size": 64},
    "lm": {
        "vocab_size": 64,
        "model_dim": 32,
        "num_heads": 2,
        "num_layers": 1,
        "mlp_dim": 64,
        "seq_len": 32,
    },
}
TINY_SIZES = model_step.Sizes(
    ogbg_batch=4,
    fastmri_batch=1,
    speech_batch=2,
    speech_samples=8_000,
    wmt_batch=2,
    wmt_length=16,
    criteo_batch=32,
    lm_batch=2,
    lm_length=16,
)


def test_speech_batch_pads_audio_and_targets():
    b = model_step.speech_batch(3, 32_000)
    assert b["audio"].shape == (3, 32_000) and b["targets"].shape == (3, 256)
    valid = (1 - b["audio_paddings"]).sum(axis=1)
    assert np.all((valid >= 16_000) & (valid <= 32_000))
    tokens = (1 - b["target_paddings"]).sum(axis=1)
    np.testing.assert_array_equal(tokens, valid // model_step.SAMPLES_PER_TOKEN)
    assert np.all(b["audio"][b["audio_paddings"] == 1] == 0)


def test_wmt_batch_is_packed_like_the_train_pipeline():
    b = model_step.wmt_batch(4, 64, vocab=100)
    for side in ("inputs", "targets"):
        ids, seg, pos = b[side], b[f"{side}_segmentation"], b[f"{side}_position"]
        assert ids.shape == seg.shape == pos.shape == (4, 64)
        np.testing.assert_array_equal(ids == 0, seg == 0)  # padding exactly where no segment
        for r in range(4):
            for s in (1, 2):
                where = np.flatnonzero(seg[r] == s)
                if where.size:
                    np.testing.assert_array_equal(pos[r, where], np.arange(where.size))
                    assert ids[r, where[-1]] == 2  # each pair ends in EOS
    np.testing.assert_array_equal(b["weights"], b["targets"] > 0)


def test_criteo_and_lm_batches():
    c = model_step.criteo_batch(8)
    assert c["inputs"].shape == (8, 39) and c["targets"].shape == (8,)
    lm = model_step.lm_batch(2, 16, vocab=50)
    np.testing.assert_array_equal(lm["inputs"][:, 1:], lm["targets"][:, :-1])


def test_ogbg_and_fastmri_batches_have_upstreams_static_shapes():
    """One device shard of B graph slots: 26 (B - 1) + 1 nodes, 56 (B - 1) edges, B graphs (the
    last one padding), 128 tasks; fastMRI: (B, 320, 320) slices with per-slice statistics."""
    g = model_step._gnn_batch(8)
    assert g["nodes"].shape == (26 * 7 + 1, 9) and g["edges"].shape == (56 * 7, 3)
    assert g["senders"].shape == g["receivers"].shape == (56 * 7,)
    assert g["n_node"].shape == g["n_edge"].shape == (8,)
    assert g["n_node"].sum() == 26 * 7 + 1 and g["n_edge"].sum() == 56 * 7
    assert g["targets"].shape == g["weights"].shape == (8, 128)
    m = model_step._unet_batch(3)
    assert m["inputs"].shape == m["targets"].shape == (3, 320, 320)
    assert m["mean"].shape == m["std"].shape == m["volume_max"].shape == (3,)


def test_every_model_but_the_vision_ones_has_a_tiny_entry():
    """A new model entry needs its tiny options here, or its step goes untested."""
    assert set(TINY) == set(model_step.MODELS) - set(model_step.VISION)


def test_unknown_model_is_refused(capsys):
    with pytest.raises(SystemExit):
        model_step.main(["--models", "wmt,nope"])
    assert "nope" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(TINY))
def test_each_new_model_times_a_step_in_both_frameworks(key):
    r = model_step.bench(key, TINY_SIZES, steps=1, repeats=2, warmup=0, model_options=TINY[key])
    assert r["model"] == key and r["steps_timed"] == 2
    assert r["jax_s"] > 0 and r["pytorch_s"] > 0
    assert math.isclose(r["ratio_pt_over_jax"], r["pytorch_s"] / r["jax_s"])
