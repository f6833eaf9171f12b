"""LibriSpeech workload pieces: batch layout, eval values, the dataset's tokenizer, global
BatchNorm under DDP, and what upstream's eval would report on the same fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("soundfile", reason="LibriSpeech decoding needs soundfile (algoperf[text])")
pytest.importorskip("sentencepiece", reason="the tokenizer needs sentencepiece (algoperf[text])")

from algoperf import registry
from algoperf.data import DatasetError
from workloads.common import wer
from workloads.common.tokenizer import train_sentencepiece
from workloads.librispeech import common, data, testing

REPO = Path(__file__).resolve().parents[3]
SMALL = {"encoder_dim": 32, "num_attention_heads": 2, "num_encoder_layers": 1}


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("librispeech")
    registry.write_fixture("librispeech", root)
    return root


def _small_workload(root: Path, name: str = "librispeech_conformer"):
    import torch

    torch.set_num_threads(1)
    workload = registry.get_workload(name, "pytorch", data_dir=root)
    workload.config = workload.config.variant(name, model=SMALL)
    return workload


def test_flat_batch_takes_both_layouts_and_empties_filler_rows():
    batch = data.make_batch([np.ones(5, np.int16)], [np.array([7, 2], np.int32)], rows=3)
    flat = common.flat_batch(batch)
    assert flat["inputs"].shape == (3, data.MAX_AUDIO_SAMPLES)
    assert flat["targets"].shape == flat["target_paddings"].shape == (3, data.MAX_TARGET_TOKENS)
    # A re-cut eval chunk's filler rows are zeros (paddings 0 = "256 real targets"); weight 0
    # marks them, and their targets become all padding.
    chunk = {**flat, "target_paddings": np.zeros_like(flat["target_paddings"])}
    chunk["weights"] = np.array([1.0, 0.0, 0.0], np.float32)
    out = common.flat_batch(chunk)
    assert (out["target_paddings"][1:] == 1).all() and (out["target_paddings"][0] == 0).all()
    assert (chunk["target_paddings"] == 0).all()  # the caller's arrays are not modified
    layout = common.device_layout(out)
    assert layout["inputs"][0] is out["inputs"] and layout["targets"][1] is out["target_paddings"]


def test_speech_values_count_words_of_real_rows_only():
    tokenizer = train_sentencepiece(
        ["THE CAT SAT ON THE MAT", "A DOG RAN FAR AWAY", "THE END"] * 20, vocab_size=20
    )
    ref = tokenizer.encode("THE CAT SAT")
    hyp = tokenizer.encode("THE CAT")[:-1]  # no EOS in a hypothesis
    frames = np.zeros((2, 24), np.int64)
    frames[0, : 2 * len(hyp) : 2] = hyp  # tokens separated by blanks
    targets = np.zeros((2, 16), np.int64)
    target_paddings = np.ones((2, 16), np.float32)
    targets[0, : len(ref)] = ref
    target_paddings[0, : len(ref)] = 0
    out = {
        "ctc_loss": np.array([6.0, 0.0]),
        "target_tokens": (1 - target_paddings).sum(-1),
        "frame_ids": frames.astype(np.float32),  # PyTorch hands back floats
        "frame_paddings": np.zeros((2, 24), np.float32),
        "target_ids": targets.astype(np.float32),
        "target_paddings": target_paddings,
    }
    values = common.speech_values(out, tokenizer)
    assert values["word_errors"].tolist() == [1, 0]  # one deletion
    assert values["reference_words"].tolist() == [3, 0]  # an empty row counts no word
    assert values["loss"][0] == pytest.approx(6.0 / len(ref))
    assert set(common.speech_values(out, None)) == {"loss", "ctc_loss", "target_tokens"}


def test_eval_reads_the_tokenizer_the_dataset_was_prepared_with(tmp_path):
    """``--librispeech_tokenizer_vocab_path``: prepare copies the given model and records its
    sha256; the eval detokenises with exactly that model, and a swapped file is refused."""
    texts = [t for _, _, t in testing.fixture_utterances("train-clean-100", 120)]
    # Another 1,024-piece model of the same text (the unigram trainer's pieces depend on the
    # thread count), so it differs from the one prepare would train.
    given = train_sentencepiece(texts[::-1], num_threads=1)
    given_path = given.save(tmp_path / "given.model")
    with_given = tmp_path / "with_given"
    source = testing.write_tarballs(tmp_path / "tarballs")
    data.prepare(with_given, source=source, tokenizer_vocab_path=given_path, progress=False)
    assert data.load_tokenizer(with_given).sha256 == given.sha256
    # The prepared ids are the given model's: they decode to the transcripts.
    subset = data.load_subset(data.dataset_dir(with_given), "dev-clean")
    transcripts = {u: t for u, _, t in testing.fixture_utterances("dev-clean", 6)}
    assert given.decode(subset.tokens(0)) == transcripts[str(subset.ids[0])]

    # Prepared without --fixture (no fixture record): size the config by hand.
    workload = _small_workload(with_given)
    config = workload.config
    workload.config = config.variant(
        config.name,
        num_train_examples=136,
        num_eval_train_examples=8,
        num_validation_examples=12,
        num_test_examples=8,
        eval_batch_size=8,
    )
    workload.check_data(str(with_given))
    params, state = workload.init_model_fn(np.array([0, 0], np.uint32))
    result = workload.eval_model(8, params, state, None, str(with_given), None, 0)
    assert np.isfinite(result["validation/wer"])
    assert workload._tokenizer.sha256 == given.sha256

    default = data.load_tokenizer(prepared_default(tmp_path, source))
    assert default.sha256 != given.sha256

    # A model with fewer pieces than the model's outputs cannot detokenise them: refused.
    small_vocab = train_sentencepiece(texts, vocab_size=200)
    (data.dataset_dir(with_given) / ".algoperf_manifest.json").rename(tmp_path / "manifest")
    small_vocab.save(data.dataset_dir(with_given) / data.TOKENIZER_FILE)
    with pytest.raises(DatasetError, match="200 pieces, the model predicts 1024"):
        workload.check_data(str(with_given))
    (tmp_path / "manifest").rename(data.dataset_dir(with_given) / ".algoperf_manifest.json")

    other = train_sentencepiece(texts, vocab_size=1024)
    other.save(data.dataset_dir(with_given) / data.TOKENIZER_FILE)
    with pytest.raises(DatasetError, match="not the tokenizer the token ids were prepared with"):
        workload.check_data(str(with_given))
    (data.dataset_dir(with_given) / data.TOKENIZER_FILE).unlink()
    with pytest.raises(DatasetError, match=r"spm_model.vocab: missing"):
        data.load_tokenizer(with_given)


def prepared_default(tmp_path: Path, source) -> Path:
    """The same tarballs prepared without a given tokenizer (prepare trains one)."""
    root = tmp_path / "default"
    data.prepare(root, source=source, progress=False)
    return root


def _upstream_figures(workload, root: Path, result: dict, eval_batch_size: int, devices: int):
    """What upstream's JAX eval would report for the same per-utterance values.

    Its eval pads the last batch with rows of paddings 1.0 (no frames, no targets), and counts
    ``len(''.split(' ')) == 1`` reference word for each (`wer.word_error_counts` with
    ``empty_reference_words=1``, applied to the very rows of the padded batches); its summed
    loss is divided by devices x tokens.
    """
    tokenizer = data.load_tokenizer(root)
    words = errors = padded_words = 0
    for batch in data.numpy_batches(root, workload.config, "validation", eval_batch_size, 0):
        ids, paddings = batch["targets"]
        refs = wer.word_error_counts(ids, paddings, ids, paddings, tokenizer.decode)
        words += int(refs["reference_words"].sum())
        filler = batch["weights"] == 0
        empty = wer.word_error_counts(
            ids[filler],
            paddings[filler],
            ids[filler],
            paddings[filler],
            tokenizer.decode,
            empty_reference_words=1,
        )
        padded_words += int(empty["reference_words"].sum())
        assert int(empty["word_errors"].sum()) == 0
    errors = round(result["validation/wer"] * words)
    return {
        "words": words,
        "padded_rows": padded_words,
        "wer": errors / words,
        "upstream_wer": errors / (words + padded_words),
        "ctc_loss": result["validation/ctc_loss"],
        "upstream_ctc_loss": result["validation/ctc_loss"] / devices,
    }


def test_upstream_eval_figures_on_the_fixture(fixture_root, capsys):
    """Measured: upstream's WER denominator grows by the padded rows of the last batch (4 of 16
    at eval batch 8 on the fixture's 12 validation utterances), and its loss shrinks by the
    device count; ours does not depend on the eval batch size."""
    workload = _small_workload(fixture_root)
    params, state = workload.init_model_fn(np.array([0, 0], np.uint32))
    result = workload.eval_model(8, params, state, None, str(fixture_root), None, 0)
    figures = _upstream_figures(workload, fixture_root, result, eval_batch_size=8, devices=8)
    assert figures["padded_rows"] == 4
    assert figures["wer"] == pytest.approx(result["validation/wer"])
    ratio = figures["upstream_wer"] / figures["wer"]
    assert ratio == pytest.approx(figures["words"] / (figures["words"] + 4))
    assert ratio < 1
    with capsys.disabled():
        print("\nupstream figures on the fixture:", json.dumps(figures))


# Global BatchNorm under DDP: two gloo ranks, each with half of the batch, against one process.
_DDP_SCRIPT = """
import json, os, sys
import numpy as np
import torch
import torch.distributed as dist
from workloads.librispeech import deepspeech_pytorch
from workloads.librispeech.batchnorm_pytorch import masked_moments

rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
if world > 1:
    dist.init_process_group("gloo")
torch.manual_seed(0)
x = torch.randn(4, 6, 3, dtype=torch.float64)
mask = torch.ones(4, 6, 1, dtype=torch.float64)
mask[1, 4:] = 0
mask[3, 2:] = 0
rows = slice(rank * 4 // world, (rank + 1) * 4 // world)
xl = x[rows].clone().requires_grad_(True)
mean, var = masked_moments(xl, mask[rows])
(mean.square().sum() + var.sum()).backward()
torch.manual_seed(1)
model = deepspeech_pytorch.build_model(
    {"arch": "deepspeech", "encoder_dim": 8, "num_lstm_layers": 1, "num_ffn_layers": 1,
     "use_specaug": False}
).double()
audio = torch.randn(4, 8000, dtype=torch.float64) * 1000
paddings = torch.zeros(4, 8000, dtype=torch.float64)
paddings[1, 5000:] = 1
paddings[3, 3000:] = 1
model.train()
logits, out_pad = model(audio[rows], paddings[rows], dropout_rate=0.0)
valid = (out_pad == 0).numpy()
bn = model.lstms[0].bn_normalization_layer
result = {
    "mean": mean.tolist(), "var": var.tolist(), "grad": xl.grad.tolist(),
    "logits": [r[v].tolist() for r, v in zip(logits.detach().numpy(), valid)],
    "running_mean": bn.running_mean.tolist(),
}
parts = [None] * world
if world > 1:
    dist.all_gather_object(parts, result)
else:
    parts = [result]
if rank == 0:
    print("RESULT", json.dumps(parts), flush=True)
if world > 1:
    # Leave the group before exiting: a gloo group torn down at interpreter exit can abort
    # ("terminate called without an active exception").
    dist.barrier()
    dist.destroy_process_group()
"""


def _run(cmd: list[str], env: dict[str, str]) -> list[dict]:
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    assert len(line) == 1, out.stdout[-2000:]
    return json.loads(line[0][len("RESULT ") :])


@pytest.mark.multi_device
def test_batch_norm_statistics_are_global_under_ddp(tmp_path):
    """Two DDP ranks (torchrun, gloo) with two utterances each normalise with the moments of
    all four, as one process with the whole batch: same moments, logits of the valid frames and
    running statistics. Gradients: each rank's loss is the same function of the global moments
    and the all-reduce's backward sums what every rank's loss sends back, so a rank's input
    gradient is the world size times the single process's (DDP then averages parameter
    gradients over the ranks: the gradient of the one-process loss, as SyncBatchNorm)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    script = tmp_path / "ddp_bn.py"
    script.write_text(_DDP_SCRIPT)
    (one,) = _run([sys.executable, str(script)], env)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    two = _run([*cmd, str(script)], env)
    for part in two:
        np.testing.assert_allclose(part["mean"], one["mean"], rtol=1e-12)
        np.testing.assert_allclose(part["var"], one["var"], rtol=1e-12)
        np.testing.assert_allclose(part["running_mean"], one["running_mean"], rtol=1e-12)
    grads = np.concatenate([p["grad"] for p in two])
    np.testing.assert_allclose(grads / 2, one["grad"], rtol=1e-10, atol=1e-14)
    logits = [np.asarray(r) for p in two for r in p["logits"]]
    for got, want in zip(logits, one["logits"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


_SMALL_MODELS = {
    "librispeech_conformer": SMALL,
    "librispeech_deepspeech": {"encoder_dim": 16, "num_lstm_layers": 1, "num_ffn_layers": 1},
}


@pytest.mark.parametrize("framework", ["pytorch", pytest.param("jax", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", sorted(_SMALL_MODELS))
def test_update_batch_norm_false_freezes_the_running_statistics(name, framework):
    """TRAIN mode with ``update_batch_norm=False`` leaves the running statistics as they were
    (both models, both frameworks; upstream's JAX DeepSpeech ignores the flag)."""
    from algoperf import spec

    workload = registry.get_workload(name, framework)
    workload.config = workload.config.variant(name, model=_SMALL_MODELS[name])
    batch = workload._to_device(data.synthetic_batch(workload.config, 2, seed=0))
    train = spec.ForwardPassMode.TRAIN
    if framework == "pytorch":
        import torch

        torch.set_num_threads(1)
        params, state = workload.init_model_fn(np.array([0, 0], np.uint32))

        def stats():
            return [b.clone() for n, b in params.named_buffers() if n.endswith("running_mean")]

        before = stats()
        workload.model_fn(params, batch, state, train, None, False, 0.0)
        assert all(torch.equal(a, b) for a, b in zip(before, stats(), strict=True))
        workload.model_fn(params, batch, state, train, None, True, 0.0)
        assert not any(torch.equal(a, b) for a, b in zip(before, stats(), strict=True))
        return
    import jax

    rng = jax.random.PRNGKey(0)
    params, state = workload.init_model_fn(rng)
    step = jax.jit(
        lambda p, b, s, r, update: workload.model_fn(p, b, s, train, r, update, 0.0),
        static_argnums=4,
    )
    _, frozen = step(params, batch, state, rng, False)
    _, updated = step(params, batch, state, rng, True)
    leaves = jax.tree.leaves
    assert all(np.array_equal(a, b) for a, b in zip(leaves(state), leaves(frozen), strict=True))
    assert not any(
        np.array_equal(a, b) for a, b in zip(leaves(state), leaves(updated), strict=True)
    )
