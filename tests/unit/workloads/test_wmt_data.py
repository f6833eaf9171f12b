"""wmt data: SGM and line-aligned sources, upstream's tokenizer text, 256-token filter, packing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "sentencepiece", reason="sentencepiece not installed: pip install 'algoperf[text]'"
)

from algoperf.data import DataError
from workloads.common.tokenizer import Tokenizer
from workloads.wmt import data, testing


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("wmt")
    src = testing.write_source(root / "src", num_train=150, num_eval=10)
    return data.prepare(root / "data", source_dir=src, vocab_size=64, progress=False), src


def test_sgm_segments_in_order(tmp_path):
    p = testing.write_sgm(tmp_path / "x.sgm", ["Erste &amp; Zeile", "zweite"], "de")
    assert data.read_sgm(p) == ["Erste &amp; Zeile", "zweite"]  # no unescaping, as TFDS
    (tmp_path / "bad.sgm").write_text("<doc>\nno segments\n</doc>\n")
    with pytest.raises(DataError, match=r"bad\.sgm: no <seg> lines"):
        data.read_sgm(tmp_path / "bad.sgm")


def test_misaligned_and_missing_sources_are_named(tmp_path):
    (tmp_path / "a.de").write_text("eins\nzwei\n")
    (tmp_path / "a.en").write_text("one\n")
    with pytest.raises(DataError, match=r"a\.de has 2 segments but .*a\.en has 1"):
        data.read_pair(tmp_path / "a.de", tmp_path / "a.en")
    with pytest.raises(DataError, match="no training corpus"):
        data.prepare(tmp_path / "d", source_dir=tmp_path, progress=False)
    (tmp_path / "europarl-v7.de-en.de").write_text("eins\n")
    (tmp_path / "europarl-v7.de-en.en").write_text("one\n")
    with pytest.raises(DataError, match=r"validation set missing \(newstest2013-src\.de\.sgm"):
        data.prepare(tmp_path / "d", source_dir=tmp_path, progress=False)


def test_tokenizer_text_is_upstreams_alternating_lines_by_byte_budget():
    pairs = [("ä" * 3, "b" * 4), ("c", "d"), ("e", "f")]
    # Pair 1: 7 + 5 = 12 bytes >= 12: stop before pair 2 (budget checked after whole pairs).
    assert data.tokenizer_lines(pairs, max_bytes=12) == ["ä" * 3, "b" * 4]
    assert data.tokenizer_lines(pairs, max_bytes=13) == ["ä" * 3, "b" * 4, "c", "d"]


def test_packing_matches_a_greedy_reference():
    rng = np.random.default_rng(0)
    pairs = [
        (
            rng.integers(3, 60, size=int(rng.integers(1, 120))),
            rng.integers(3, 60, size=int(rng.integers(1, 200))),
        )
        for _ in range(80)
    ]
    packed = data.pack(pairs, length=256)
    # Recover the pairs from the rows: segments in order, positions restart per segment.
    got, rows_used = [], []
    for r in range(len(packed["inputs"])):
        segs = {}
        for side in ("inputs", "targets"):
            seg, pos, ids = (
                packed[f"{side}_segmentation"][r],
                packed[f"{side}_position"][r],
                packed[side][r],
            )
            for s in range(1, seg.max() + 1):
                m = seg == s
                np.testing.assert_array_equal(pos[m], np.arange(m.sum()))
                segs.setdefault(s, []).append(ids[m])
            assert (ids[seg == 0] == 0).all()
        got += [tuple(v) for _, v in sorted(segs.items())]
        rows_used.append(len(segs))
    assert len(got) == len(pairs)
    for (a, b), (x, y) in zip(pairs, got, strict=True):
        np.testing.assert_array_equal(a, x)
        np.testing.assert_array_equal(b, y)
    # Greedy: each row was closed only because the next pair did not fit.
    start = 0
    for n in rows_used[:-1]:
        row = pairs[start : start + n]
        nxt = pairs[start + n]
        assert (
            sum(len(p[0]) for p in row) + len(nxt[0]) > 256
            or sum(len(p[1]) for p in row) + len(nxt[1]) > 256
        )
        start += n
    with pytest.raises(ValueError, match="exceeds 256: filter first"):
        data.pack([(np.ones(257, np.int32), np.ones(3, np.int32))])


def test_prepared_arrays(prepared):
    dest, src = prepared
    tok = Tokenizer.load(dest / "spm_32k.model")
    assert (tok.eos_id, tok.vocab_size) == (data.EOS_ID, 64)
    train = data.load_split(dest.parent, "train")
    assert set(train) == set(data.PACKED_KEYS)
    assert all(a.dtype == np.int32 and a.shape[1] == 256 for a in train.values())
    test = data.load_split(dest.parent, "test")
    refs = data.read_sgm(src / "newstest2014-deen-ref.en.sgm")
    assert len(refs) == 11 and len(test["targets"]) == 10  # the over-long pair is dropped
    # Every sequence ends with EOS; detokenised target ids give back the reference text.
    from workloads.wmt import metrics as wm

    decoded = wm.decode_ids(np.asarray(test["targets"]), tok.decode)
    assert decoded == refs[:10]
    assert wm.corpus_bleu(decoded, refs[:10]) == pytest.approx(100.0)
    first = np.asarray(train["inputs"][0])
    seg = np.asarray(train["inputs_segmentation"][0])
    assert first[seg == 1][-1] == data.EOS_ID
    lines = (src / "europarl-v7.de-en.de").read_text().splitlines()
    assert tok.decode(first[seg == 1]) == lines[0]


def test_prepare_is_idempotent(prepared):
    dest, src = prepared
    mtime = os.stat(dest / "train_inputs.npy").st_mtime_ns
    assert data.prepare(dest.parent, source_dir=src, vocab_size=64, progress=False) == dest
    assert os.stat(dest / "train_inputs.npy").st_mtime_ns == mtime
