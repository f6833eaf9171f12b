"""SentencePiece tokenizer wrapper (workloads.common.tokenizer) trained on real English text."""

import re

import numpy as np
import pytest

pytest.importorskip("sentencepiece", reason="needs sentencepiece: pip install 'algoperf[text]'")

from workloads.common import librivox_testdata
from workloads.common.tokenizer import Tokenizer, _limited, train_sentencepiece


def _transcripts() -> list[str]:
    """LibriSpeech-style lines (upper case words and apostrophes) from the Python docs' prose.

    ``pydoc_data.topics`` ships with every CPython: a few hundred kB of real English text.
    """
    from pydoc_data.topics import topics

    words = re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)?", " ".join(topics[k] for k in sorted(topics)))
    return [" ".join(words[i : i + 17]).upper() for i in range(0, len(words), 17)]


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return _transcripts()


@pytest.fixture(scope="module")
def tokenizer(lines) -> Tokenizer:
    # Upstream's LibriSpeech recipe: unigram, 1,024 pieces, character coverage 1.0.
    return train_sentencepiece(lines[: len(lines) * 9 // 10])


def test_upstream_vocabulary_and_ids(tokenizer):
    assert tokenizer.vocab_size == 1024
    assert (tokenizer.unk_id, tokenizer.bos_id, tokenizer.eos_id) == (0, 1, 2)
    assert tokenizer.add_eos and not tokenizer.add_bos


def test_round_trip_on_held_out_text_with_eos(tokenizer, lines):
    held_out = lines[len(lines) * 9 // 10 :]
    assert len(held_out) > 100
    for line in held_out:
        ids = tokenizer.encode(line)
        assert ids.dtype == np.int32 and ids[-1] == tokenizer.eos_id
        assert tokenizer.eos_id not in ids[:-1] and tokenizer.bos_id not in ids
        assert tokenizer.unk_id not in ids  # coverage 1.0 over these letters
        assert tokenizer.decode(ids) == line  # EOS decodes to nothing
    # Pieces are longer than letters: the model learnt something from the text.
    n_ids = sum(len(tokenizer.encode(line)) for line in held_out)
    assert n_ids < 0.4 * sum(len(line) for line in held_out)


def test_real_speech_transcripts_round_trip(tokenizer):
    directory = librivox_testdata.find_dir()
    if directory is None:
        pytest.skip(f"no LibriVox transcripts: {librivox_testdata.INSTALL_HINT}")
    for utterance in librivox_testdata.load(directory):
        text = utterance.transcript.upper()
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_deterministic_and_save_load(tokenizer, lines, tmp_path):
    again = train_sentencepiece(lines[: len(lines) * 9 // 10])
    assert again.model == tokenizer.model and again.sha256 == tokenizer.sha256
    path = tokenizer.save(tmp_path / "sub" / "spm_model.vocab")
    loaded = Tokenizer.load(path)
    assert loaded.sha256 == tokenizer.sha256
    for line in lines[-20:]:
        np.testing.assert_array_equal(loaded.encode(line), tokenizer.encode(line))
    no_eos = Tokenizer.load(path, add_eos=False, add_bos=True)
    ids = no_eos.encode(lines[0])
    assert ids[0] == 1 and ids[-1] != 2
    np.testing.assert_array_equal(ids[1:], tokenizer.encode(lines[0])[:-1])


def _pieces(tok: Tokenizer) -> list[tuple[str, float]]:
    p = tok._processor
    return [(p.id_to_piece(i), p.get_score(i)) for i in range(tok.vocab_size)]


def test_same_model_as_upstreams_file_based_training(tokenizer, lines, tmp_path):
    # Upstream writes the lines to a file and passes this argument string (its defaults).
    import sentencepiece as spm

    corpus = tmp_path / "ds_chars"
    corpus.write_bytes("".join(f"{x}\n" for x in lines[: len(lines) * 9 // 10]).encode())
    prefix = tmp_path / "sp_tmp"
    spm.SentencePieceTrainer.Train(
        f"--input={corpus} --vocab_size=1024 --character_coverage=1.0 "
        f"--model_prefix={prefix} --model_type=unigram --minloglevel=2"
    )
    upstream = Tokenizer.load(f"{prefix}.model")
    assert _pieces(upstream) == _pieces(tokenizer)


def test_character_budget_is_upstreams(lines):
    # Upstream counts each line plus its newline and stops before the line that goes over.
    budget = sum(len(line) + 1 for line in lines[:5])
    assert list(_limited(lines, budget)) == lines[:5]
    assert list(_limited(lines, budget - 1)) == lines[:4]
    a = train_sentencepiece(lines, vocab_size=300, max_chars=sum(len(x) + 1 for x in lines[:800]))
    b = train_sentencepiece(lines[:800], vocab_size=300)
    assert a.sha256 == b.sha256


def test_bad_input_errors(tokenizer, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.model"):
        Tokenizer.load(tmp_path / "missing.model")
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"junk\.model: not a SentencePiece model"):
        Tokenizer.load(junk)
    with pytest.raises(ValueError, match="newline"):
        train_sentencepiece(["A B\nC"])
    with pytest.raises(ValueError, match="no training text"):
        train_sentencepiece([])
    with pytest.raises(ValueError, match="lie in"):
        tokenizer.decode([5, 1024])
