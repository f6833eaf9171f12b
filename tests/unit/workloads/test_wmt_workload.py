"""wmt workload classes: packed batches, eval_train pairs, the data check, loss/accuracy/BLEU eval.

Runs on the real fixture (``write_fixture``: WMT-format text through the real prepare code) with
a narrow one-layer model over the fixture's 64-piece vocabulary. The eval checks use PyTorch
(cheap to build on a CPU); JAX runs the same mixin (its end-to-end run and the slow parity test
here cover it).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from algoperf import registry
from algoperf.data import DatasetError
from workloads.wmt import common, data, metrics

SMALL_MODEL = {"vocab_size": 64, "emb_dim": 32, "num_heads": 2, "num_layers": 1, "mlp_dim": 64}
DECODE_LEN = 32


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("wmt")
    registry.write_fixture("wmt", root)
    return root


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(common.WmtData, "max_decode_len", DECODE_LEN)
    yield
    torch.set_num_threads(threads)


def _workload(framework: str, root, **model):
    workload = registry.get_workload("wmt", framework, data_dir=root)
    workload.config = workload.config.variant("wmt", model={**SMALL_MODEL, **model})
    return workload


def _torch_model(root, seed: int = 0):
    workload = _workload("pytorch", root)
    params, state = workload.init_model_fn(np.array([seed, 0], np.uint32))
    return workload, params, state


# Data --------------------------------------------------------------------------------------------


def test_unpack_rows_recovers_the_packed_pairs():
    rng = np.random.default_rng(0)
    pairs = [
        (rng.integers(3, 60, rng.integers(1, 40)).astype(np.int32), rng.integers(3, 60, n))
        for n in rng.integers(1, 40, 50)
    ]
    pairs = [(a, b.astype(np.int32)) for a, b in pairs]
    packed = data.pack(pairs, length=64)
    assert len(packed["inputs"]) < len(pairs)  # several pairs per row
    out = common.unpack_rows(packed, np.arange(len(packed["inputs"])), 45)
    assert out["inputs"].shape == out["targets"].shape == (45, 64)
    for i, (a, b) in enumerate(pairs[:45]):
        assert (
            np.array_equal(out["inputs"][i, : len(a)], a) and not out["inputs"][i, len(a) :].any()
        )
        assert (
            np.array_equal(out["targets"][i, : len(b)], b) and not out["targets"][i, len(b) :].any()
        )
    assert len(common.unpack_rows(packed, np.arange(len(packed["inputs"])), 999)["inputs"]) == 50


def test_train_batches_are_packed_rows_with_token_weights_resumable_and_sharded(root):
    workload = _workload("pytorch", root)
    first = workload._numpy_batches("train", str(root), 8, seed=5)
    batches = [next(first) for _ in range(15)]  # 104 rows: 13 batches per epoch, then a new one
    assert set(batches[0]) == {*data.PACKED_KEYS, "weights"}
    for batch in batches:
        assert batch["inputs"].shape == (8, data.MAX_LENGTH)
        assert np.array_equal(batch["weights"], (batch["targets"] > 0).astype(np.float32))
        assert batch["inputs_segmentation"].max() > 1  # packed: several pairs per row
    resumed = next(workload._numpy_batches("train", str(root), 8, seed=5, start_step=14))
    assert all(np.array_equal(resumed[k], batches[14][k]) for k in resumed)
    shard = next(workload._numpy_batches("train", str(root), 8, seed=5, shard=(1, 2)))
    assert all(np.array_equal(shard[k], batches[0][k][4:]) for k in shard)


def test_eval_train_pairs_are_training_pairs_the_same_at_every_eval(root):
    arrays = common.eval_arrays(root, "eval_train", 8)
    assert arrays["inputs"].shape == (8, data.MAX_LENGTH)
    assert np.array_equal(arrays["weights"], (arrays["targets"] > 0).astype(np.float32))
    train = data.load_split(root, "train")
    everything = common.unpack_rows(train, np.arange(len(train["inputs"])), 10**6)
    known = {(a.tobytes(), b.tobytes()) for a, b in zip(*everything.values(), strict=True)}
    assert len(everything["inputs"]) == data._read_meta(root / "wmt")["splits"]["train_pairs"]
    pairs = list(zip(arrays["inputs"], arrays["targets"], strict=True))
    assert all((a.tobytes(), b.tobytes()) in known for a, b in pairs)
    # Spread over the training rows, not the first row's pairs only.
    assert len({a.tobytes() for a, _ in pairs}) == 8
    again = common.eval_arrays(root, "eval_train", 8)
    assert all(np.array_equal(again[k], arrays[k]) for k in arrays)
    with pytest.raises(DatasetError, match=r"eval_train needs 5000 training pairs.*holds 600"):
        common.eval_arrays(root, "eval_train", 5000)


def test_synthetic_batch_has_eos_terminated_padded_rows():
    config = registry.get_config("wmt")
    batch = common.synthetic_batch(config, 6, seed=3)
    assert batch["inputs"].shape == batch["targets"].shape == (6, 256)
    for ids in (*batch["inputs"], *batch["targets"]):
        n = int((ids > 0).sum())
        assert ids[n - 1] == metrics.EOS_ID and not ids[n:].any() and (ids[: n - 1] > 2).all()
        assert ids.max() < config.model["vocab_size"]
    assert np.array_equal(batch["weights"], (batch["targets"] > 0).astype(np.float32))
    again = common.synthetic_batch(config, 6, seed=3)
    assert all(np.array_equal(batch[k], again[k]) for k in batch)


def test_check_data_names_the_file_and_the_fix(root, tmp_path):
    _workload("pytorch", root).check_data(str(root))  # the fixture, sized for it: fine
    with pytest.raises(DatasetError, match=r"spm_32k.model: 64 pieces.*embeds only 32"):
        _workload("pytorch", root, vocab_size=32).check_data(str(root))
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    # Another tokenizer recorded (same file size, so the manifest still holds).
    meta = copy / "wmt" / "meta.json"
    recorded = json.loads(meta.read_text())["tokenizer_sha256"]
    meta.write_text(meta.read_text().replace(recorded, "0" * 64))
    with pytest.raises(DatasetError, match=r"spm_32k.model: sha256 .* recorded in meta.json"):
        _workload("pytorch", copy).check_data(str(copy))
    with pytest.raises(DatasetError, match=r"missing or incomplete"):
        _workload("pytorch", root).check_data(str(tmp_path / "nothing"))


# Evaluation --------------------------------------------------------------------------------------


def _split_strings(root, split, translate):
    """Hypotheses and references of a whole split, straight from the arrays (no chunking)."""
    tok = common.load_tokenizer(str((root / "wmt").resolve()))
    arrays = common.eval_arrays(root, split, len(data.load_split(root, split)["inputs"]))
    hyps = metrics.decode_ids(translate(arrays["inputs"], arrays["targets"]), tok.decode)
    return hyps, metrics.decode_ids(arrays["targets"], tok.decode)


def test_bleu_is_upstreams_corpus_bleu_of_the_translations(root, monkeypatch):
    """With the translator replaced: the oracle (the reference ids) scores 100; a translator
    that drops each reference's second half scores exactly sacreBLEU's corpus BLEU of the
    detokenised split, whatever the eval batch size."""
    workload, params, state = _torch_model(root)
    references = {}

    def halves(inputs, targets):
        out = np.zeros_like(targets)
        for i, row in enumerate(targets):
            n = int((row > 0).sum())
            out[i, : max(1, n // 2)] = row[: max(1, n // 2)]
            out[i, max(1, n // 2)] = metrics.EOS_ID
        return out

    def by_source(translate):
        # The chunk's targets are not passed to `_translate`: look them up by source row.
        def fake(_params, inputs):
            return translate(inputs, np.stack([references[r.tobytes()] for r in inputs]))

        return fake

    arrays = data.load_split(root, "validation")
    references = {a.tobytes(): b for a, b in zip(arrays["inputs"], arrays["targets"], strict=True)}
    references[np.zeros_like(arrays["inputs"][0]).tobytes()] = np.zeros_like(arrays["targets"][0])
    monkeypatch.setattr(workload, "_translate", by_source(lambda i, t: t))
    oracle = workload._eval_model_on_split("validation", 12, 5, params, state, None, str(root))
    assert oracle["bleu"] == pytest.approx(100.0, abs=1e-9)
    monkeypatch.setattr(workload, "_translate", by_source(halves))
    expected = metrics.corpus_bleu(*_split_strings(root, "validation", halves))
    assert 5.0 < expected < 90.0
    for batch_size in (3, 12, 64):
        result = workload._eval_model_on_split(
            "validation", 12, batch_size, params, state, None, str(root)
        )
        assert result["bleu"] == expected


def test_loss_and_accuracy_are_token_means_over_real_targets(root):
    workload, model, state = _torch_model(root, seed=1)
    result = workload._eval_model_on_split("test", 12, 7, model, state, None, str(root))
    arrays = data.load_split(root, "test")
    with torch.no_grad():
        model.eval()
        logits = model(torch.from_numpy(np.array(arrays["inputs"])).long(),
                       torch.from_numpy(np.array(arrays["targets"])).long()).double().numpy()  # fmt: skip
    targets = np.asarray(arrays["targets"])
    weights = targets > 0
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    assert result["loss"] == pytest.approx(nll[weights].mean(), rel=1e-5)
    hits = logits.argmax(-1) == targets
    assert result["accuracy"] == pytest.approx(hits[weights].mean(), abs=1e-12)
    assert set(result) == {"loss", "accuracy", "bleu"}


def test_eval_with_real_decoding_does_not_depend_on_the_eval_batch_size(root):
    workload, params, state = _torch_model(root, seed=2)
    results = [workload.eval_model(b, params, state, None, str(root), None, 0) for b in (3, 8, 64)]
    assert results[0] == results[1] == results[2]
    assert results[0]["validation/num_examples"] == 12 and results[0]["test/num_examples"] == 12
    assert all(0.0 <= results[0][f"{s}/bleu"] <= 100.0 for s in ("train", "validation", "test"))


def test_eval_batch_values_are_per_example_with_per_example_or_token_weights(root):
    workload, params, state = _torch_model(root)
    batch = common.synthetic_batch(workload.config, 4, seed=0)
    by_token = workload._eval_batch(params, state, workload._to_device(batch), None)
    batch["weights"] = np.ones(4, np.float32)  # `algoperf check` passes per-example weights
    by_example = workload._eval_batch(params, state, workload._to_device(batch), None)
    assert set(by_token) == {"loss_sum", "correct_sum", "num_tokens", "loss"}
    for values in (by_token, by_example):
        assert all(v.shape == (4,) for v in values.values())
        assert np.array_equal(values["num_tokens"], (batch["targets"] > 0).sum(-1))
    assert np.allclose(by_token["loss"], by_token["loss_sum"] / by_token["num_tokens"])
    assert np.array_equal(by_token["loss_sum"], by_example["loss_sum"])


def test_output_params_are_the_shared_embedding(root):
    workload, _, _ = _torch_model(root)
    outputs = [k for k in workload.model_params_types if workload.is_output_params(k)]
    assert outputs == ["shared_embedding.weight"]


@pytest.mark.slow
def test_jax_and_pytorch_evaluate_alike_on_identical_weights(root):
    """The same weights in both frameworks: loss and accuracy within float32 rounding, and the
    same greedy and beam translations, hence the same BLEU."""
    import jax
    import jax.numpy as jnp

    from algoperf.frameworks import jax as fjax
    from workloads.wmt import param_map

    pt_workload, model, _ = _torch_model(root, seed=3)
    jax_workload = _workload("jax", root)
    jax_workload.init_model_fn(jax.random.PRNGKey(0))
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    params = fjax.replicate(
        jax.tree.map(jnp.asarray, param_map.pytorch_to_jax_params(state, jax_workload.config.model))
    )
    for beam in (1, 4):
        for w in (pt_workload, jax_workload):
            w.config = w.config.variant(w.config.name, model={"beam_size": beam})
        assert pt_workload.beam_size == jax_workload.beam_size == beam
        pt = pt_workload._eval_model_on_split("validation", 12, 12, model, None, None, str(root))
        jx = jax_workload._eval_model_on_split("validation", 12, 12, params, None, None, str(root))
        assert jx["loss"] == pytest.approx(pt["loss"], rel=1e-5)
        assert jx["accuracy"] == pytest.approx(pt["accuracy"], abs=1e-3)
        assert jx["bleu"] == pytest.approx(pt["bleu"], abs=1e-9)


def test_decoding_length_is_upstreams_unless_the_model_is_shorter():
    """256 for the registered wmt models; capped at ``max_len``; a ``max_decode_len`` option wins
    (wmt_bible's 96) and is not a layout option."""
    from workloads.wmt.param_map import transformer_layout

    assert common.decode_length(registry.get_config("wmt").model) == common.MAX_DECODE_LEN == 256
    assert common.decode_length({"max_len": 128}) == 128
    bible = registry.get_config("wmt_bible").model
    assert common.decode_length(bible) == 96
    assert transformer_layout(bible).max_len == 128


def test_beam_size_is_upstreams_unless_the_variant_sets_one(root):
    """Beam 4 for every full-size wmt variant; wmt_bible's option says greedy; 0 is refused."""
    for name in ("wmt", "wmt_post_ln", "wmt_attention_temp", "wmt_glu_tanh"):
        assert common.decode_beam_size(registry.get_config(name).model) == common.BEAM_SIZE == 4
        assert registry.get_config(name).model.get("eval_bleu", True)
    assert common.decode_beam_size(registry.get_config("wmt_bible").model) == 1
    assert _workload("pytorch", root).beam_size == 4
    assert _workload("pytorch", root, beam_size=1).beam_size == 1
    with pytest.raises(ValueError, match=r"spec.py: beam_size 0 must be at least 1"):
        _ = _workload("pytorch", root, beam_size=0).beam_size


def test_eval_without_bleu_reports_the_same_loss_and_accuracy_and_never_translates(root):
    """``eval_bleu`` False: the same loss and accuracy as with BLEU, no ``bleu`` key, and the
    translator is never called (the eval's cost is one forward pass per chunk)."""
    with_bleu, params, state = _torch_model(root, seed=4)
    without = _workload("pytorch", root, eval_bleu=False)

    def refuse(*_args):
        raise AssertionError("translated although eval_bleu is False")

    without._translate = refuse
    full = with_bleu._eval_model_on_split("test", 12, 7, params, state, None, str(root))
    cut = without._eval_model_on_split("test", 12, 7, params, state, None, str(root))
    assert set(cut) == {"loss", "accuracy"}
    assert cut["loss"] == full["loss"] and cut["accuracy"] == full["accuracy"]


def test_eval_prefix_evaluates_the_first_held_out_pairs(root):
    """With ``eval_prefix`` the data check accepts held-out splits longer than the config's
    sizes and the eval counts only those; without it the sizes must match."""
    prefix = _workload("pytorch", root, eval_prefix=True)
    prefix.config = prefix.config.variant("wmt", num_validation_examples=5, num_test_examples=4)
    prefix.check_data(str(root))
    exact = _workload("pytorch", root)
    exact.config = prefix.config.variant("wmt", model={"eval_prefix": False})
    with pytest.raises(DatasetError, match=r"validation_inputs.npy: 12 examples.*expects 5"):
        exact.check_data(str(root))
    params, state = prefix.init_model_fn(np.array([5, 0], np.uint32))
    result = prefix.eval_model(8, params, state, None, str(root), None, 0)
    assert (result["validation/num_examples"], result["test/num_examples"]) == (5, 4)
