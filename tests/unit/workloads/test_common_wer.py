"""Greedy CTC decoding and WER (workloads.common.wer), checked against jiwer on real text."""

import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algoperf import metrics
from workloads.common import librivox_testdata
from workloads.common.sequences import pad_sequences
from workloads.common.wer import (
    SPEECH_ACCUMULATION,
    greedy_ctc_decode,
    word_edit_distance,
    word_error_counts,
)

jiwer = pytest.importorskip("jiwer", reason="needs jiwer (dev extra): pip install 'algoperf[dev]'")


def _reference_decode(frames, length, blank=0):
    """Collapse repeats, then drop blanks, by itertools.groupby."""
    return [k for k, _ in itertools.groupby(frames[:length]) if k != blank]


def test_greedy_decode_by_hand():
    frames = np.array(
        [[1, 1, 0, 1, 2, 2, 0, 0, 5], [0, 0, 0, 0, 0, 0, 0, 0, 0], [3, 3, 3, 0, 3, 4, 4, 7, 7]]
    )
    paddings = np.zeros(frames.shape, np.float32)
    paddings[0, 8:] = 1  # the 5 is a padded frame: ignored
    paddings[2, 6:] = 1
    hyp, hyp_paddings = greedy_ctc_decode(frames, paddings)
    assert hyp.dtype == np.int32 and hyp_paddings.dtype == np.float32
    np.testing.assert_array_equal(hyp[0, :4], [1, 1, 2, 0])
    np.testing.assert_array_equal(hyp_paddings[0], [0, 0, 0] + [1] * 6)
    assert not hyp[1].any() and hyp_paddings[1].all()  # all blank: empty hypothesis
    np.testing.assert_array_equal(hyp[2, :4], [3, 3, 4, 0])
    # Logits: argmax per frame first.
    logits = np.eye(8)[frames] + 0.01
    np.testing.assert_array_equal(greedy_ctc_decode(logits, paddings)[0], hyp)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 4), min_size=6, max_size=6), min_size=1, max_size=5),
    st.lists(st.integers(0, 6), min_size=5, max_size=5),
)
def test_greedy_decode_matches_groupby(rows, lengths):
    frames = np.array(rows)
    lengths = np.array(lengths[: len(rows)])
    paddings = (np.arange(6)[None] >= lengths[:, None]).astype(np.float32)
    hyp, hyp_paddings = greedy_ctc_decode(frames, paddings)
    for row, n in enumerate(lengths):
        expected = _reference_decode(list(frames[row]), n)
        assert hyp[row][hyp_paddings[row] == 0].tolist() == expected
        assert not hyp[row][hyp_paddings[row] == 1].any()


_WORDS = st.lists(st.sampled_from(["A", "B", "C", "D"]), max_size=9)


@settings(max_examples=100, deadline=None)
@given(_WORDS, _WORDS)
def test_edit_distance_matches_jiwer(hyp, ref):
    expected = len(hyp) if not ref else _jiwer_errors([" ".join(ref)], [" ".join(hyp)])
    assert word_edit_distance(hyp, ref) == expected
    assert word_edit_distance(ref, hyp) == word_edit_distance(hyp, ref)


def _jiwer_errors(references, hypotheses):
    out = jiwer.process_words(references, hypotheses)
    return out.substitutions + out.deletions + out.insertions


def _pydoc_pairs():
    """Real English lines (the Python docs' prose) and deterministic word-level corruptions."""
    from pydoc_data.topics import topics

    words = re.findall(r"[A-Za-z]+", " ".join(topics[k] for k in sorted(topics)))
    refs = [" ".join(words[i : i + 1 + i % 23]).upper() for i in range(0, 4000, 25)]
    rng = np.random.default_rng(0)
    hyps = []
    for ref in refs:
        out = []
        for word in ref.split():
            r = rng.random()
            if r < 0.08:
                continue  # deletion
            out.append(word[::-1] if r < 0.16 else word)  # substitution
            if rng.random() < 0.05:
                out.append("THE")  # insertion
        hyps.append(" ".join(out))
    return refs, hyps


def _librivox_pairs():
    directory = librivox_testdata.find_dir()
    if directory is None:
        pytest.skip(f"no LibriVox transcripts: {librivox_testdata.INSTALL_HINT}")
    utterances = librivox_testdata.load(directory)
    return [u.transcript.upper() for u in utterances], [u.hypothesis.upper() for u in utterances]


@pytest.fixture(scope="module")
def tokenizer():
    pytest.importorskip("sentencepiece", reason="needs sentencepiece: pip install 'algoperf[text]'")
    from workloads.common.tokenizer import train_sentencepiece

    refs, _ = _pydoc_pairs()
    return train_sentencepiece(refs, vocab_size=400)


def _ctc_frames(token_rows, rng):
    """Frame ids whose greedy decoding is each row: tokens repeated, blanks sprinkled, junk pads."""
    frames, lengths = [], []
    for tokens in token_rows:
        seq = [0] * int(rng.integers(0, 3))
        for i, t in enumerate(tokens):
            if (i and tokens[i - 1] == t) or rng.random() < 0.3:
                seq += [0] * int(rng.integers(1, 3))
            seq += [int(t)] * int(rng.integers(1, 4))
        frames.append(seq)
        lengths.append(len(seq))
    width = max(lengths) + 7
    ids = rng.integers(1, 50, size=(len(frames), width))  # padded frames hold junk
    for row, seq in enumerate(frames):
        ids[row, : len(seq)] = seq
    paddings = (np.arange(width)[None] >= np.array(lengths)[:, None]).astype(np.float32)
    return ids, paddings


@pytest.mark.parametrize("corpus", ["pydoc", "librivox"])
def test_wer_matches_jiwer_end_to_end(corpus, tokenizer):
    refs, hyps = _pydoc_pairs() if corpus == "pydoc" else _librivox_pairs()
    rng = np.random.default_rng(1)
    # Targets as the loader gives them: ids with EOS, padded, float32 (upstream's dtype).
    targets, target_paddings = pad_sequences(tokenizer.encode_batch(refs), dtype=np.float32)
    # Model side: CTC frames whose greedy decoding is the hypothesis' tokens (no EOS).
    frames, frame_paddings = _ctc_frames([tokenizer.encode(h)[:-1] for h in hyps], rng)
    hyp, hyp_paddings = greedy_ctc_decode(frames, frame_paddings)
    counts = word_error_counts(hyp, hyp_paddings, targets, target_paddings, tokenizer.decode)
    per_utt = [_jiwer_errors([r], [h]) for r, h in zip(refs, hyps, strict=True)]
    np.testing.assert_array_equal(counts["word_errors"], per_utt)
    np.testing.assert_array_equal(counts["reference_words"], [len(r.split()) for r in refs])

    # Through the accumulator in uneven chunks, each chunk padded with fake rows.
    acc = metrics.Accumulator(SPEECH_ACCUMULATION)
    n = len(refs)
    for start, stop in [(0, 1), (1, n // 2 + 1), (n // 2 + 1, n)]:
        pad = 2
        chunk = {k: np.concatenate([v[start:stop], np.full(pad, 99)]) for k, v in counts.items()}
        chunk["ctc_loss"] = np.concatenate([np.ones(stop - start), np.full(pad, 1e9)])
        chunk["target_tokens"] = np.concatenate([np.full(stop - start, 2), np.full(pad, 5)])
        acc.add(chunk, rows=np.arange(stop - start + pad) < stop - start)
    result = acc.result()
    assert result["wer"] == pytest.approx(jiwer.wer(refs, hyps), rel=1e-15)
    assert result["ctc_loss"] == pytest.approx(0.5)
    assert corpus == "librivox" or 0.05 < result["wer"] < 0.5  # a real, non-trivial figure


def test_padded_eval_rows_count_nothing_unless_upstreams_rule(tokenizer):
    refs, hyps = _pydoc_pairs()
    refs, hyps = refs[:4], hyps[:4]
    targets, target_paddings = pad_sequences(tokenizer.encode_batch(refs), dtype=np.float32)
    frames, frame_paddings = _ctc_frames(
        [tokenizer.encode(h)[:-1] for h in hyps], np.random.default_rng(2)
    )
    # Upstream's JAX eval pads a short batch with rows whose paddings are all 1.0.
    extra = 3
    targets = np.concatenate([targets, np.ones((extra, targets.shape[1]), np.float32)])
    target_paddings = np.concatenate(
        [target_paddings, np.ones((extra, targets.shape[1]), np.float32)]
    )
    frames = np.concatenate([frames, np.ones((extra, frames.shape[1]), frames.dtype)])
    frame_paddings = np.concatenate([frame_paddings, np.ones((extra, frames.shape[1]), np.float32)])
    hyp, hyp_paddings = greedy_ctc_decode(frames, frame_paddings)
    rules = word_error_counts(hyp, hyp_paddings, targets, target_paddings, tokenizer.decode)
    upstream = word_error_counts(
        hyp, hyp_paddings, targets, target_paddings, tokenizer.decode, empty_reference_words=1
    )
    words = sum(len(r.split()) for r in refs)
    assert rules["reference_words"].sum() == words and not rules["word_errors"][-extra:].any()
    assert upstream["reference_words"].sum() == words + extra
    assert rules["word_errors"].sum() / words == pytest.approx(jiwer.wer(refs, hyps), rel=1e-15)


def test_bad_shapes():
    with pytest.raises(ValueError, match="paddings shape"):
        greedy_ctc_decode(np.zeros((2, 5), int), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="frames must be"):
        greedy_ctc_decode(np.zeros(5, int), np.zeros(5))
