"""A SentencePiece tokenizer: train, load, encode with EOS, decode (numpy ids).

Framework-free; needs the ``sentencepiece`` package (``pip install 'algoperf[text]'``, part of
``full``). Used by the speech family (upstream's LibriSpeech tokenizer) and again by
translation and the language model.

Upstream's LibriSpeech tokenizer (``datasets/librispeech_tokenizer.py``) is trained with
``vocab_size=1024``, ``model_type=unigram``, ``character_coverage=1.0`` on the transcript lines of
train-clean-100, keeping lines while the running count of characters (each line plus its
newline) stays at most 1e7; every other trainer option is SentencePiece's default. It is then
used with ``add_bos=False, add_eos=True``, default ids unk 0, bos 1, eos 2 (no pad id), so CTC's
blank 0 coincides with unk. `train_sentencepiece` reproduces that recipe with these defaults;
the order of the transcript lines is the caller's (upstream's is the file system's listing
order, which it does not fix).

The trained model is kept as bytes (the serialized ``ModelProto``), so a tokenizer is
identified by the sha256 of those bytes (`Tokenizer.sha256`) and written where asked.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Upstream's LibriSpeech settings (datasets/librispeech_tokenizer.py).
LIBRISPEECH_VOCAB_SIZE = 1024
LIBRISPEECH_MODEL_TYPE = "unigram"
LIBRISPEECH_CHARACTER_COVERAGE = 1.0
LIBRISPEECH_MAX_CHARS = 10_000_000


def _spm() -> Any:
    try:
        import sentencepiece
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "the SentencePiece tokenizer needs the sentencepiece package: "
            "pip install 'algoperf[text]' (or 'sentencepiece==0.2.3')"
        ) from error
    return sentencepiece


def _limited(texts: Iterable[str], max_chars: int | None) -> Iterator[str]:
    """Upstream's character budget: stop before the line that takes the count over `max_chars`."""
    count = 0
    for text in texts:
        if "\n" in text:
            raise ValueError(f"training text holds a newline (one line per transcript): {text!r}")
        count += len(text) + 1  # upstream counts the line's newline too
        if max_chars is not None and count > max_chars:
            return
        yield text


class Tokenizer:
    """A loaded SentencePiece model; `encode` appends EOS as upstream's speech and text inputs."""

    def __init__(self, model: bytes, *, add_eos: bool = True, add_bos: bool = False) -> None:
        """Wrap a serialized SentencePiece model (the bytes of a ``.model`` file)."""
        spm = _spm()
        self._model = bytes(model)
        self._processor = spm.SentencePieceProcessor(model_proto=self._model)
        self.add_eos = add_eos
        self.add_bos = add_bos

    @classmethod
    def load(cls, path: str | os.PathLike[str], **options: bool) -> Tokenizer:
        """Read a ``.model`` file (upstream's ``spm_model.vocab`` is one, despite its name)."""
        path = Path(path)
        try:
            model = path.read_bytes()
        except OSError as error:
            raise FileNotFoundError(
                f"{path}: cannot read the SentencePiece model ({error.strerror}); "
                "prepare the dataset or pass the path of an existing model"
            ) from error
        try:
            return cls(model, **options)
        except RuntimeError as error:
            raise ValueError(f"{path}: not a SentencePiece model file ({error})") from error

    @property
    def model(self) -> bytes:
        """The serialized model."""
        return self._model

    @property
    def sha256(self) -> str:
        """Hex sha256 of the serialized model: the tokenizer's identity in run records."""
        return hashlib.sha256(self._model).hexdigest()

    @property
    def vocab_size(self) -> int:
        """Number of pieces, control symbols included."""
        return int(self._processor.get_piece_size())

    @property
    def eos_id(self) -> int:
        """Id of the end-of-sequence symbol (2 with SentencePiece's defaults)."""
        return int(self._processor.eos_id())

    @property
    def bos_id(self) -> int:
        """Id of the beginning-of-sequence symbol (1 with the defaults)."""
        return int(self._processor.bos_id())

    @property
    def unk_id(self) -> int:
        """Id of the unknown piece (0 with the defaults, which is also CTC's blank)."""
        return int(self._processor.unk_id())

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model atomically (temporary file, then rename); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self._model)
        os.replace(tmp, path)
        return path

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of `text`, with BOS/EOS as configured (default: EOS appended)."""
        ids = list(self._processor.encode(text, out_type=int))
        if self.add_bos:
            ids.insert(0, self.bos_id)
        if self.add_eos:
            ids.append(self.eos_id)
        return np.asarray(ids, dtype=np.int32)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """`encode` of each text."""
        return [self.encode(text) for text in texts]

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The text of `ids`; control symbols (BOS, EOS) decode to nothing, as in tf-text."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and not np.array_equal(ids, np.round(ids)):
            raise ValueError("token ids must be integers")
        ids = ids.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(
                f"token ids must lie in [0, {self.vocab_size}), got {ids.min()}..{ids.max()}"
            )
        return str(self._processor.decode(ids.tolist()))


def train_sentencepiece(
    texts: Iterable[str],
    *,
    vocab_size: int = LIBRISPEECH_VOCAB_SIZE,
    model_type: str = LIBRISPEECH_MODEL_TYPE,
    character_coverage: float = LIBRISPEECH_CHARACTER_COVERAGE,
    max_chars: int | None = LIBRISPEECH_MAX_CHARS,
    num_threads: int = 16,
    **trainer_options: Any,
) -> Tokenizer:
    """Train a SentencePiece model on `texts` (one transcript or sentence each, no newlines).

    Defaults are upstream's LibriSpeech recipe (module docstring). Training sees the lines in
    the given order; the same lines and thread count give the same model bytes, and the same
    model as upstream's file-based ``SentencePieceTrainer.Train(--input=...)``.

    Args:
        texts: training lines, consumed in order until `max_chars` is reached.
        vocab_size: number of pieces (upstream: 1,024 for LibriSpeech, 32,000 for WMT).
        model_type: ``unigram``, ``bpe``, ``char`` or ``word``.
        character_coverage: share of characters the pieces must cover.
        max_chars: character budget counted as upstream (None: every line).
        num_threads: trainer threads. The trained unigram model depends on it (measured:
            1 and 4 threads give different pieces), so the default is upstream's, which is
            SentencePiece's default of 16. For a given count, training is deterministic.
        trainer_options: further ``SentencePieceTrainer`` options, passed through.

    Raises:
        ValueError: no text, or a line holding a newline, or SentencePiece's own complaint
            (e.g. a vocabulary larger than the text supports).
    """
    spm = _spm()
    lines = list(_limited(texts, max_chars))
    if not lines:
        raise ValueError("no training text for the SentencePiece tokenizer")
    out = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=out,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            num_threads=num_threads,
            minloglevel=2,
            **trainer_options,
        )
    except RuntimeError as error:
        raise ValueError(f"SentencePiece training failed: {error}") from error
    return Tokenizer(out.getvalue())
