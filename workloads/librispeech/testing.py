"""LibriSpeech fixtures in OpenSLR 12's real format: ``<subset>.tar.gz`` holding
``LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<nnnn>.flac`` and
``<speaker>-<chapter>.trans.txt`` (upper-case transcripts), FLAC-encoded with ``soundfile``.

`write_tarballs` writes the six subsets upstream uses. Synthetic utterances are tone
sequences (one 0.3 s tone per word, so audio and text are related, and every transcript's CTC
alignment fits its frames as in real speech) with transcripts drawn from a
generated lexicon rich enough for upstream's 1,024-piece tokenizer; each subset also holds one
transcript over 256 characters and one recording over 320,000 samples, which the filters must
drop. With ``librivox=True`` the five real LibriVox recordings of Debian's
``pocketsphinx-testdata`` (`workloads.common.librivox_testdata`) are added to train-clean-100,
dev-clean and test-clean. `write_fixture` prepares them through the real prepare path
(``file://`` URLs stand in for OpenSLR's host).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from workloads.librispeech import data

# Kept utterances per subset (each subset also gets two that the filters drop).
FIXTURE_SIZES = {
    "train-clean-100": 120,
    "train-clean-360": 8,
    "train-other-500": 8,
    "dev-clean": 6,
    "dev-other": 6,
    "test-clean": 8,
}
LIBRIVOX_SUBSETS = ("train-clean-100", "dev-clean", "test-clean")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _lexicon(rng: np.random.Generator, size: int = 1500) -> list[str]:
    words = set()
    while len(words) < size:
        n = int(rng.integers(2, 9))
        word = "".join(rng.choice(list(_LETTERS), n))
        words.add(word + ("'S" if rng.random() < 0.05 else ""))
    return sorted(words)


def _tones(rng: np.random.Generator, words: list[str], samples_per_word: int = 4800) -> np.ndarray:
    t = np.arange(samples_per_word) / data.SAMPLE_RATE
    parts = [np.sin(2 * np.pi * (200 + 40 * (sum(map(ord, w)) % 40)) * t) * 8000 for w in words]
    audio = np.concatenate(parts) + rng.normal(0, 50, len(words) * samples_per_word)
    return np.clip(audio, -32768, 32767).astype(np.int16)


def _flac(samples: np.ndarray) -> bytes:
    import soundfile

    out = io.BytesIO()
    soundfile.write(out, samples, data.SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_tarball(path: Path, subset: str, utterances: list[tuple[str, np.ndarray, str]]) -> Path:
    """Write `utterances` ``(id, int16 samples, TRANSCRIPT)`` as an OpenSLR ``<subset>.tar.gz``;
    ids are ``<speaker>-<chapter>-<nnnn>``, one ``.trans.txt`` per chapter."""
    chapters: dict[tuple[str, str], list[tuple[str, np.ndarray, str]]] = {}
    for utt in utterances:
        speaker, chapter, _ = utt[0].split("-")
        chapters.setdefault((speaker, chapter), []).append(utt)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for (speaker, chapter), utts in sorted(chapters.items()):
            folder = f"LibriSpeech/{subset}/{speaker}/{chapter}"
            for utt_id, samples, _ in utts:
                _add(tar, f"{folder}/{utt_id}.flac", _flac(samples))
            lines = "".join(f"{u} {text}\n" for u, _, text in utts)
            _add(tar, f"{folder}/{speaker}-{chapter}.trans.txt", lines.encode())
        _add(tar, "LibriSpeech/README.TXT", b"LibriSpeech-format fixture\n")
    return path


def fixture_utterances(
    subset: str, count: int, seed: int = 0, *, librivox: bool = False
) -> list[tuple[str, np.ndarray, str]]:
    """`count` kept synthetic utterances of `subset`, one over-long transcript, one over-long
    recording (and the real LibriVox ones when asked)."""
    rng = np.random.default_rng([seed, data.SUBSETS.index(subset)])
    lexicon = _lexicon(np.random.default_rng(seed))
    speaker = 100 + data.SUBSETS.index(subset) * 10
    out = []
    for i in range(count):
        words = list(rng.choice(lexicon, int(rng.integers(20, 36))))
        while len(" ".join(words)) > data.MAX_TRANSCRIPT_CHARS:
            words.pop()
        out.append((f"{speaker}-{i // 8}-{i % 8:04d}", _tones(rng, words), " ".join(words)))
    long_text = " ".join(rng.choice(lexicon, 80))[: data.MAX_TRANSCRIPT_CHARS + 20]
    out.append((f"{speaker + 1}-0-0000", _tones(rng, ["A"]), long_text.strip()))
    long_audio = np.resize(_tones(rng, ["LONG"]), data.MAX_AUDIO_SAMPLES + 1)
    out.append((f"{speaker + 1}-0-0001", long_audio, "LONG"))
    if librivox and subset in LIBRIVOX_SUBSETS:
        from workloads.common import librivox_testdata

        for i, utt in enumerate(librivox_testdata.load()):
            out.append((f"{speaker + 2}-0-{i:04d}", utt.samples(), utt.transcript.upper()))
    return out


def write_tarballs(
    directory: Path, sizes: Mapping[str, int] = FIXTURE_SIZES, *, librivox: bool = False
) -> data.Source:
    """Write the six tarballs into `directory`; return the `data.Source` that prepares them
    (``file://`` URL, their sha256, and the counts a correct prepare must find)."""
    sha, raw, kept = {}, {}, {}
    for subset in data.SUBSETS:
        utts = fixture_utterances(subset, sizes[subset], librivox=librivox)
        path = write_tarball(directory / f"{subset}.tar.gz", subset, utts)
        sha[subset] = hashlib.sha256(path.read_bytes()).hexdigest()
        raw[subset] = len(utts)
        kept[subset] = len(utts) - 2
    counts = {
        split: sum(kept[s] for s in subs)
        for split, subs in data.SPLIT_SUBSETS.items()
        if split != "eval_train"
    }
    return data.Source(
        base_urls=(directory.absolute().as_uri() + "/",),
        sha256=sha,
        approx_sizes={s: (directory / f"{s}.tar.gz").stat().st_size for s in data.SUBSETS},
        expected_raw=raw,
        expected_counts=counts,
    )


def write_fixture(dataset: str, data_dir: Path | str) -> Mapping[str, Any]:
    """Write the synthetic tarballs and prepare them into ``<data_dir>/librispeech`` through the
    real prepare path; return the config fields that fit (split sizes, eval batch cap 8)."""
    if dataset != data.DATASET:
        raise ValueError(f"workloads.librispeech.testing writes {data.DATASET!r}, not {dataset!r}")
    with tempfile.TemporaryDirectory() as tmp:
        source = write_tarballs(Path(tmp))
        data.prepare(data_dir, source=source, progress=False)
    counts = dict(source.expected_counts or {})
    return {
        "num_train_examples": counts["train"],
        "num_eval_train_examples": 8,
        "num_validation_examples": counts["validation"],
        "num_test_examples": counts["test"],
        "eval_batch_size": 8,
    }
