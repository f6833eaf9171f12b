"""Real LibriVox speech shipped by Debian's ``pocketsphinx-testdata``, for tests and fixtures.

The package (``apt-get install pocketsphinx-testdata``) holds five 16 kHz, 16-bit mono WAV
utterances from a LibriVox recording of *Sense and Sensibility* with their reference
transcripts (``transcription``) and pocketsphinx's own recognition output for them
(``test-lm.match``): real audio, real transcripts and real ASR errors. Set
``ALGOPERF_LIBRIVOX_TESTDATA`` to a directory laid out like the package's ``librivox/`` folder
to use a copy elsewhere.
"""

from __future__ import annotations

import dataclasses
import os
import re
import wave
from pathlib import Path

import numpy as np

ENV_VAR = "ALGOPERF_LIBRIVOX_TESTDATA"
DEBIAN_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")
INSTALL_HINT = (
    "install Debian's pocketsphinx-testdata (apt-get install pocketsphinx-testdata) or set "
    f"{ENV_VAR} to its librivox/ directory"
)

_LINE = re.compile(r"^(?P<text>.*?)\s*\((?P<id>[^\s()]+)(?:\s+-?\d+)?\)\s*$")


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One recording: id, WAV path, reference transcript, pocketsphinx's hypothesis (lower case)."""

    utt_id: str
    wav: Path
    transcript: str
    hypothesis: str

    def samples(self) -> np.ndarray:
        """int16 samples of the recording (16 kHz mono)."""
        with wave.open(str(self.wav), "rb") as f:
            if (f.getnchannels(), f.getsampwidth(), f.getframerate()) != (1, 2, 16000):
                raise ValueError(f"{self.wav}: expected 16 kHz 16-bit mono PCM")
            return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.int16)


def find_dir() -> Path | None:
    """The librivox/ test-data directory, or None when neither the env var nor Debian's exists."""
    configured = os.environ.get(ENV_VAR)
    candidates = [Path(configured)] if configured else []
    candidates.append(DEBIAN_DIR)
    for candidate in candidates:
        if (candidate / "transcription").is_file():
            return candidate
    return None


def _read_lines(path: Path) -> dict[str, str]:
    out = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"{path}:{number}: expected '<text> (<utterance id>)', got {line!r}")
        text = match["text"].replace("<s>", " ").replace("</s>", " ")
        out[match["id"]] = " ".join(text.split())
    return out


def load(directory: Path | None = None) -> list[Utterance]:
    """The utterances in file-id order.

    Raises:
        FileNotFoundError: no test data (the message says how to install it).
    """
    directory = directory or find_dir()
    if directory is None:
        raise FileNotFoundError(f"no LibriVox test data: {INSTALL_HINT}")
    references = _read_lines(directory / "transcription")
    match_file = directory / "test-lm.match"
    hypotheses = _read_lines(match_file) if match_file.is_file() else {}
    return [
        Utterance(utt_id, directory / f"{utt_id}.wav", text, hypotheses.get(utt_id, ""))
        for utt_id, text in references.items()
    ]
