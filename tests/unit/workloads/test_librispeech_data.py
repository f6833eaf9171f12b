"""LibriSpeech data: OpenSLR-format tarballs served over HTTP, prepared, read back, batched."""

from __future__ import annotations

import csv
import dataclasses
import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("soundfile", reason="LibriSpeech decoding needs soundfile (algoperf[text])")
pytest.importorskip("sentencepiece", reason="the tokenizer needs sentencepiece (algoperf[text])")

from algoperf.data import DatasetError
from algoperf.data.download import DiskSpaceError
from workloads.common import librivox_testdata, sequences
from workloads.common.tokenizer import Tokenizer
from workloads.librispeech import data, testing
from workloads.librispeech.spec import CONFORMER


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The fixture tarballs behind a local HTTP server; yields (source, tarball dir)."""
    folder = tmp_path_factory.mktemp("openslr")
    source = testing.write_tarballs(folder)
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield dataclasses.replace(source, base_urls=(url,)), folder
    server.shutdown()


@pytest.fixture(scope="module")
def prepared(served, tmp_path_factory):
    source, _ = served
    root = tmp_path_factory.mktemp("data")
    return data.prepare(root, source=source, progress=False), source


def _generated(subset: str) -> dict[str, tuple[np.ndarray, str]]:
    size = testing.FIXTURE_SIZES[subset]
    return {u: (a, t) for u, a, t in testing.fixture_utterances(subset, size)}


def test_prepare_applies_upstream_filters_and_keeps_audio_and_text_exact(prepared):
    dest, source = prepared
    tokenizer = Tokenizer.load(dest / data.TOKENIZER_FILE)
    assert tokenizer.vocab_size == 1024 and tokenizer.eos_id == 2
    for subset in data.SUBSETS:
        generated = _generated(subset)
        loaded = data.load_subset(dest, subset)
        kept = {u for u, (a, t) in generated.items() if len(t) <= 256 and len(a) <= 320_000}
        assert len(generated) - len(kept) == 2  # one long transcript, one long recording
        assert set(loaded.ids) == kept
        for i, utt in enumerate(loaded.ids):
            audio, text = generated[utt]
            np.testing.assert_array_equal(loaded.audio(i), audio)  # FLAC is lossless
            assert loaded.audio(i).dtype == np.int16
            tokens = loaded.tokens(i)
            assert tokens[-1] == tokenizer.eos_id and tokenizer.decode(tokens) == text
    splits = {
        s: sum(len(data.load_subset(dest, x)) for x in data.SPLIT_SUBSETS[s])
        for s in ("train", "validation", "test")
    }
    assert splits == source.expected_counts


def test_expected_counts_are_upstreams():
    assert data.EXPECTED_COUNTS == {"train": 263_840, "validation": 5_348, "test": 2_472}
    assert sum(data.RAW_COUNTS[s] for s in data.TRAIN_SUBSETS) == 281_241


def test_prepare_is_idempotent_and_redoes_only_a_missing_subset(prepared, tmp_path):
    dest, source = prepared
    offline = dataclasses.replace(source, base_urls=("http://127.0.0.1:9/",))
    before = (dest / "dev-other.index.npz").stat().st_mtime_ns
    assert data.prepare(dest.parent, source=offline, progress=False) == dest  # no network needed
    assert (dest / "dev-other.index.npz").stat().st_mtime_ns == before
    (dest / "test-clean.index.npz").unlink()
    data.load_subset.cache_clear()
    data.prepare(dest.parent, source=offline, progress=False)  # the kept tarball is reused
    assert len(data.load_subset(dest, "test-clean")) == source.expected_counts["test"]
    assert (dest / "dev-other.index.npz").stat().st_mtime_ns == before


def test_a_wrong_utterance_count_names_the_tarball(served, tmp_path):
    source, _ = served
    wrong = dataclasses.replace(source, expected_raw={**source.expected_raw, "train-clean-100": 7})
    with pytest.raises(DatasetError, match=r"train-clean-100\.tar\.gz: \d+ utterances, upstream"):
        data.prepare(tmp_path, source=wrong, progress=False)


def test_a_corrupt_tarball_is_refused_with_its_name(served, tmp_path):
    source, _ = served
    (tmp_path / "librispeech").mkdir()
    bad = tmp_path / "librispeech" / "train-clean-100.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(DatasetError, match=r"train-clean-100\.tar\.gz: not a readable tar\.gz"):
        data.prepare(tmp_path, source=dataclasses.replace(source, sha256=None), progress=False)


def test_preflight_refuses_without_disk_space(served, tmp_path):
    source, _ = served
    huge = dataclasses.replace(source, approx_sizes={s: 1 << 60 for s in data.SUBSETS})
    with pytest.raises(DiskSpaceError, match="free some space"):
        data.prepare(tmp_path, source=huge, progress=False)
    assert not (tmp_path / "librispeech").exists()


def test_a_given_tokenizer_is_used_and_a_different_one_refused(prepared, served, tmp_path):
    dest, _ = prepared
    source, _ = served
    given = dest / data.TOKENIZER_FILE
    out = data.prepare(tmp_path, source=source, tokenizer_vocab_path=given, progress=False)
    assert (out / data.TOKENIZER_FILE).read_bytes() == given.read_bytes()
    other = tmp_path / "other.model"
    from workloads.common.tokenizer import train_sentencepiece

    train_sentencepiece(["SOME OTHER TEXT", "AND MORE"], vocab_size=15).save(other)
    with pytest.raises(DatasetError, match="another tokenizer"):
        data.prepare(tmp_path, source=source, tokenizer_vocab_path=other, progress=False)
    with pytest.raises(DatasetError, match="no such tokenizer file"):
        data.prepare(tmp_path, source=source, tokenizer_vocab_path=tmp_path / "x", progress=False)


def _write_upstream_layout(dest: Path, target: Path) -> None:
    """What upstream's librispeech_preprocess.py writes: <subset>.csv + int64/int32 .npy files."""
    for subset in data.SUBSETS:
        loaded = data.load_subset(dest, subset)
        (target / subset).mkdir(parents=True)
        with open(target / f"{subset}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["", "id"])
            for i, utt in enumerate(loaded.ids):
                writer.writerow([i, utt])
                np.save(target / subset / f"{utt}_audio.npy", loaded.audio(i).astype(np.int64))
                np.save(target / subset / f"{utt}_targets.npy", loaded.tokens(i))


def test_batches_have_upstreams_shapes_and_upstream_layout_reads_the_same(prepared, tmp_path):
    dest, source = prepared
    upstream = tmp_path / "upstream"
    _write_upstream_layout(dest, upstream)
    config = dataclasses.replace(
        CONFORMER, num_validation_examples=source.expected_counts["validation"]
    )
    ours = list(data.numpy_batches(dest, config, "validation", 5, seed=0))
    theirs = list(data.numpy_batches(upstream, config, "validation", 5, seed=0))
    assert len(ours) == -(-config.num_validation_examples // 5)
    for a, b in zip(ours, theirs, strict=True):
        (audio, audio_pad), (ids, id_pad) = a["inputs"], a["targets"]
        assert audio.shape == audio_pad.shape == (5, 320_000) and audio.dtype == np.float32
        assert ids.shape == id_pad.shape == (5, 256) and ids.dtype == np.int32
        lengths = sequences.lengths_from_paddings(audio_pad)
        assert np.all(audio[np.arange(320_000)[None] >= lengths[:, None]] == 0)
        assert np.all(lengths[a["weights"] == 0] == 0)  # filling rows: all padding
        for x, y in zip(
            (*a["inputs"], *a["targets"], a["weights"]), (*b["inputs"], *b["targets"], b["weights"])
        ):
            np.testing.assert_array_equal(x, y)
    assert sum(b["weights"].sum() for b in ours) == config.num_validation_examples


def test_train_batches_are_seeded_and_resume(prepared):
    dest, _ = prepared
    first = data.numpy_batches(dest, CONFORMER, "train", 4, seed=3)
    batches = [next(first) for _ in range(3)]
    resumed = next(data.numpy_batches(dest, CONFORMER, "train", 4, seed=3, start_step=2))
    np.testing.assert_array_equal(batches[2]["inputs"][0], resumed["inputs"][0])
    other = next(data.numpy_batches(dest, CONFORMER, "train", 4, seed=4))
    assert not np.array_equal(batches[0]["targets"][0], other["targets"][0])


def test_synthetic_batch_shapes():
    batch = data.synthetic_batch(CONFORMER, 2, seed=0)
    assert batch["inputs"][0].shape == (2, 320_000) and batch["targets"][0].shape == (2, 256)


def test_an_unprepared_directory_says_how_to_prepare(tmp_path):
    with pytest.raises(DatasetError, match="algoperf datasets prepare librispeech"):
        data.split_subsets(tmp_path, "test")


@pytest.mark.skipif(librivox_testdata.find_dir() is None, reason=librivox_testdata.INSTALL_HINT)
def test_real_librivox_recordings_survive_prepare(tmp_path):
    """Real speech (Debian's pocketsphinx-testdata) in OpenSLR tarballs, prepared and read back."""
    source = testing.write_tarballs(tmp_path / "openslr", librivox=True)
    dest = data.prepare(tmp_path / "data", source=source, progress=False)
    tokenizer = Tokenizer.load(dest / data.TOKENIZER_FILE)
    real = librivox_testdata.load()
    for subset in testing.LIBRIVOX_SUBSETS:
        loaded = data.load_subset(dest, subset)
        found = {tokenizer.decode(loaded.tokens(i)): loaded.audio(i) for i in range(len(loaded))}
        for utt in real:
            np.testing.assert_array_equal(found[utt.transcript.upper()], utt.samples())


def test_cli_prepares_the_fixture_and_forwards_the_tokenizer_option(
    prepared, served, tmp_path, monkeypatch, capsys
):
    from algoperf.data import cli as data_cli

    assert data_cli.main(["prepare", "librispeech", "--fixture", f"--data_dir={tmp_path}"]) == 0
    assert "librispeech: fixture ready" in capsys.readouterr().out
    assert len(data.split_subsets(tmp_path, "test")[0]) == testing.FIXTURE_SIZES["test-clean"]
    dest, _ = prepared
    source, _ = served
    monkeypatch.setattr(data, "SOURCE", source)
    given = dest / data.TOKENIZER_FILE
    root = tmp_path / "real"
    argv = ["prepare", "librispeech", f"--data_dir={root}"]
    assert data_cli.main([*argv, f"--librispeech_tokenizer_vocab_path={given}"]) == 0
    assert (root / "librispeech" / data.TOKENIZER_FILE).read_bytes() == given.read_bytes()
