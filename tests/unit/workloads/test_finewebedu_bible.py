"""lm_bible: the World English Bible as SentencePiece windows for the finewebedu_lm family.

Fast tests use the fixture (English-like chapters through the real `bible.write_dataset`); the
real prepare on Debian's sword-text-web is slow (pysword reads every verse: about a minute).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentencepiece", reason="needs sentencepiece: pip install 'algoperf[text]'")

from algoperf import registry
from algoperf.data import DataError, DatasetError
from algoperf.data import cli as data_cli
from workloads.common import sword, tokenizer
from workloads.finewebedu_lm import bible, common, data, testing
from workloads.finewebedu_lm.param_map import lm_layout, param_count
from workloads.finewebedu_lm.spec import FAMILY, LM_BIBLE, LM_BIBLE_VALIDATION_WINDOWS


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    """``algoperf datasets prepare lm_bible --fixture``."""
    root = tmp_path_factory.mktemp("lm_bible")
    assert data_cli.main(["prepare", "lm_bible", "--fixture", f"--data_dir={root}", "--quiet"]) == 0
    return root


def test_variant_is_a_small_dev_decoder_on_its_own_dataset():
    c = LM_BIBLE
    assert (c.dataset, c.family, c.dev_only, c.benchmark) == ("lm_bible", "finewebedu_lm", 1, 0)
    layout = lm_layout(c.model)
    assert (layout.vocab_size, layout.seq_len, layout.compute_dtype) == (2048, 128, "float32")
    assert layout.seq_len + 1 == bible.DEFAULT_WINDOW
    assert layout.vocab_size == bible.DEFAULT_VOCAB_SIZE
    assert FAMILY.param_count("lm_bible", "jax") == param_count(layout) == 262_466
    assert c.num_test_examples is None and c.max_allowed_runtime_sec <= 120
    # Sized for the mini benchmark: whole eval chunks (eval_batch_size // 8 windows) per split.
    chunk = c.eval_batch_size // 8
    assert c.num_eval_train_examples == chunk and c.num_validation_examples == 2 * chunk
    assert c.num_validation_examples < LM_BIBLE_VALIDATION_WINDOWS
    # The budget leaves an eval period <= 5% of it (rule of the mini benchmark, TARGETS.md).
    assert c.eval_period_time_sec <= 0.05 * c.max_allowed_runtime_sec


def test_fixture_is_the_real_layout(fixture_root):
    dest = fixture_root / "lm_bible"
    meta = json.loads((dest / "meta.json").read_text())
    sizes = registry.fixture_overrides("lm_bible", fixture_root)
    spm = tokenizer.Tokenizer.load(dest / bible.TOKENIZER_FILE)
    assert meta["tokenizer_sha256"] == spm.sha256 and meta["vocab_size"] == spm.vocab_size
    for split in data.SPLITS:
        w = data.load_windows(fixture_root, split, "lm_bible")
        assert w.dtype == np.uint16 and w.shape == (meta["splits"][split], 129)
        assert int(w.max()) < spm.vocab_size
    assert sizes["num_validation_examples"] == meta["splits"]["validation"]
    # The train stream is the fixture's chapters in order, each followed by EOS.
    chapters = testing.bible_like_chapters(24, seed=0)
    stream = data.load_windows(fixture_root, "train", "lm_bible").reshape(-1)
    first_eos = int(np.flatnonzero(stream == spm.eos_id)[0])
    assert spm.decode(stream[:first_eos]) == " ".join(chapters[0])
    # finewebedu's own windows are untouched by the generalisation: 1,025 tokens.
    assert data.WINDOW == 1025


def test_windows_are_the_chapter_stream_cut_whole(tmp_path):
    chapters = testing.bible_like_chapters(6, seed=3)
    spm = tokenizer.train_sentencepiece(
        [v for c in chapters for v in c], vocab_size=64, hard_vocab_limit=False, num_threads=1
    )
    stream = np.concatenate([spm.encode(" ".join(c)) for c in chapters])
    w = bible.windows_of(spm, chapters, 17)
    assert w.shape == (len(stream) // 17, 17)
    np.testing.assert_array_equal(w.reshape(-1), stream[: w.size])
    b = data.window_batch(w, np.array([1, 0]))
    assert b["inputs"].shape == (2, 16)
    np.testing.assert_array_equal(b["inputs"][0, 1:], b["targets"][0, :-1])
    evals = list(common.eval_batches(w, 3, 4))
    assert evals[0]["weights"].shape == (3, 16) and evals[1]["weights"].sum() == 16


def test_validation_reads_an_even_spread_of_the_split():
    """A config evaluating fewer windows than the split holds reads them spread over it (every
    held-out book), in order; the whole split when the sizes match (finewebedu)."""
    np.testing.assert_array_equal(common.spread_rows(158, 32)[:4], [0, 4, 9, 14])
    spread = common.spread_rows(158, 32)
    assert len(set(spread)) == 32 and spread[-1] >= 158 - 158 // 32 - 1
    assert np.all(np.diff(spread) > 0)
    np.testing.assert_array_equal(common.spread_rows(10, 10), np.arange(10))
    np.testing.assert_array_equal(common.spread_rows(5, 8), np.arange(5))
    windows = np.arange(20 * 5, dtype=np.uint16).reshape(20, 5)
    (batch,) = common.eval_batches(windows, 4, 4, spread=True)
    np.testing.assert_array_equal(batch["inputs"][:, 0], windows[[0, 5, 10, 15], 0])
    (batch,) = common.eval_batches(windows, 4, 4)
    np.testing.assert_array_equal(batch["inputs"][:, 0], windows[:4, 0])


def test_prepare_is_idempotent_and_redoes_other_options(tmp_path):
    train, val = testing.bible_like_chapters(8, seed=0), testing.bible_like_chapters(2, seed=1)
    dest = bible.write_dataset(tmp_path, train, val, window=33, hard_vocab_limit=False)
    before = (dest / "train.bin").read_bytes()
    missing = tmp_path / "no_sword"
    # Ready with the same options: returned without reading the source.
    assert bible.prepare(tmp_path, window=33, sword_dir=missing, progress=False) == dest
    assert (dest / "train.bin").read_bytes() == before
    # Other options: prepared again, so the (absent) Bible is read and its absence named.
    with pytest.raises(DatasetError, match=r"no_sword: SWORD module engWEB2015eb not found"):
        bible.prepare(tmp_path, window=65, sword_dir=missing, progress=False)
    with pytest.raises(DataError, match=r"--lm_bible_window 1"):
        bible.write_dataset(tmp_path, train, val, window=1)
    with pytest.raises(DataError, match=r"no window of 100000 tokens"):
        bible.write_dataset(tmp_path, train, val, window=100_000, hard_vocab_limit=False)


def test_check_data_names_sizes_windows_and_vocabulary(fixture_root, tmp_path):
    jax_workload = registry.workload_class("lm_bible", "jax")
    with pytest.raises(DatasetError, match=r"validation.bin: \d+ windows, but lm_bible expects 32"):
        jax_workload(config=LM_BIBLE).check_data(str(fixture_root))
    sized = registry.get_config("lm_bible", data_dir=fixture_root)
    jax_workload(config=sized).check_data(str(fixture_root))  # fits
    # Evaluating fewer windows than the split holds is allowed (a spread of them is read).
    fewer = sized.variant("lm_bible", num_validation_examples=sized.num_validation_examples - 3)
    jax_workload(config=fewer).check_data(str(fixture_root))
    longer = sized.variant("lm_bible", model={**sized.model, "seq_len": 256})
    with pytest.raises(DatasetError, match=r"windows of 129 tokens.*reads 256"):
        jax_workload(config=longer).check_data(str(fixture_root))
    narrow = sized.variant("lm_bible", model={**sized.model, "vocab_size": 16})
    with pytest.raises(DatasetError, match=r"\d+ token ids.*embeds only 16"):
        jax_workload(config=narrow).check_data(str(fixture_root))
    with pytest.raises(DatasetError, match=r"datasets prepare lm_bible --data_dir"):
        data.load_windows(tmp_path, "train", "lm_bible")


@pytest.mark.slow
@pytest.mark.skipif(
    not sword.available(sword.ENGLISH),
    reason="needs Debian's sword-text-web (scripts/debian_testdata.sh)",
)
def test_real_prepare_gives_the_registered_sizes(tmp_path):
    """The real World English Bible: held-out books, 2,048 pieces, the spec's split sizes."""
    dest = bible.prepare(tmp_path, progress=False)
    meta = json.loads((dest / "meta.json").read_text())
    assert meta["vocab_size"] == 2048 and meta["window"] == 129
    assert meta["splits"] == {
        "train": LM_BIBLE.num_train_examples,
        "validation": LM_BIBLE_VALIDATION_WINDOWS,
    }
    assert set(meta["sources"]["validation_books"]) == set(bible.VALIDATION_BOOKS)
    assert not set(meta["sources"]["train_books"]) & set(bible.VALIDATION_BOOKS)
    spm = tokenizer.Tokenizer.load(dest / bible.TOKENIZER_FILE)
    validation = data.load_windows(tmp_path, "validation", "lm_bible").reshape(-1)
    text = spm.decode(validation[:4000])
    assert "Naomi" in text  # Ruth comes first
    train = spm.decode(data.load_windows(tmp_path, "train", "lm_bible")[:4].reshape(-1))
    assert train.startswith("In the beginning, God created the heavens and the earth.")
    # Registered config accepts the real data as is.
    registry.workload_class("lm_bible", "jax")(config=LM_BIBLE).check_data(str(tmp_path))
