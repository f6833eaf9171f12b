"""LibriSpeech data: OpenSLR 12 tarballs -> compact int16 audio shards + SentencePiece token ids.

``algoperf datasets prepare librispeech`` downloads the six OpenSLR 12 tarballs upstream uses
(train-clean-100, train-clean-360, train-other-500, dev-clean, dev-other, test-clean; resumable,
sha256-verified, disk-space preflight, progress), streams each tarball once (no extraction to
disk), decodes every FLAC with ``soundfile`` (libsndfile; no ffmpeg) and applies upstream's
filters (``datasets/librispeech_preprocess.py``): an utterance is dropped when its transcript has
more than 256 characters or its audio more than 320,000 samples. The tokenizer is upstream's
recipe (`workloads.common.tokenizer`: unigram, 1,024 pieces, coverage 1.0) trained on the
train-clean-100 transcripts (sorted by utterance id; upstream uses the file system's listing
order, which it does not fix), or the model given with ``--librispeech_tokenizer_vocab_path``.
It is saved as ``spm_model.vocab`` (upstream's name) in the dataset directory.

On-disk layout of ``<data_dir>/librispeech/`` (both frameworks read it through this module):

- ``<subset>/audio-NNNNN.npy``: int16 samples of up to `SHARD_UTTERANCES` utterances, concatenated
  (97 GB for the whole set instead of upstream's 387 GB of int64 ``.npy`` files).
- ``<subset>.index.npz``: utterance ``ids``, ``transcripts``, ``shard`` / ``start`` / ``length`` of
  each utterance's audio, ``tokens`` (int32, all utterances concatenated) and ``token_offsets``.
- ``spm_model.vocab`` and the manifest; the tarballs are kept (delete them once ready).

A directory already prepared by upstream (``<subset>.csv`` + ``<subset>/<id>_audio.npy`` int64 +
``<id>_targets.npy``) is read as is (`load_subset`). Splits as upstream: train = the three train
subsets (263,840 utterances), validation = dev-clean + dev-other (5,348), test = test-clean
(2,472); eval_train = the first `num_eval_train_examples` of train.

Batches (`numpy_batches`) have upstream's shapes: ``inputs = (audio float32 (B, 320000),
paddings float32 (B, 320000))``, ``targets = (ids int32 (B, 256), paddings float32 (B, 256))``,
padding 1.0, audio and ids padded with 0; eval batches add per-row ``weights`` (0 for the rows
that fill the last batch: all paddings 1.0, audio and ids 0, so they hold no reference words;
upstream's JAX pipeline fills such rows with 1.0 everywhere, ids included).
Upstream's loader casts the ids to float32; here they stay int32 (the same values).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import sys
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path, PurePosixPath

import numpy as np

from algoperf.data import DatasetError, iterators
from algoperf.data.download import (
    MANIFEST_NAME,
    check_free_space,
    download_file,
    manifest_status,
    write_manifest,
)
from algoperf.workload_config import WorkloadConfig
from workloads.common import sequences

DATASET = "librispeech"
MAX_TRANSCRIPT_CHARS = 256
MAX_AUDIO_SAMPLES = 320_000
MAX_TARGET_TOKENS = 256
SAMPLE_RATE = 16_000
SHARD_UTTERANCES = 2048
TOKENIZER_FILE = "spm_model.vocab"
VOCAB_SIZE = 1024  # pieces of upstream's tokenizer = the models' outputs
FORMAT_VERSION = 1

TRAIN_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500")
SUBSETS = (*TRAIN_SUBSETS, "dev-clean", "dev-other", "test-clean")
SPLIT_SUBSETS = {
    "train": TRAIN_SUBSETS,
    "eval_train": TRAIN_SUBSETS,
    "validation": ("dev-clean", "dev-other"),
    "test": ("test-clean",),
}
# Utterances per tarball (upstream's assertion, from TFDS) and per split after the filters.
RAW_COUNTS = {
    "train-clean-100": 28_539,
    "train-clean-360": 104_014,
    "train-other-500": 148_688,
    "dev-clean": 2_703,
    "dev-other": 2_864,
    "test-clean": 2_620,
}
EXPECTED_COUNTS = {"train": 263_840, "validation": 5_348, "test": 2_472}

BASE_URLS = (
    "https://www.openslr.org/resources/12/",
    "https://us.openslr.org/resources/12/",
    "https://openslr.elda.org/resources/12/",
)
SHA256 = {
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
}
# Approximate tarball sizes (bytes), for the free-space preflight only.
APPROX_SIZES = {
    "train-clean-100": 6_387_309_499,
    "train-clean-360": 23_049_477_885,
    "train-other-500": 30_593_501_606,
    "dev-clean": 337_926_286,
    "dev-other": 314_305_928,
    "test-clean": 346_663_984,
}
# int16 output / FLAC tarball (97 GB from about 60 GB), with a margin.
OUTPUT_RATIO = 1.8

Batch = dict[str, object]


@dataclasses.dataclass(frozen=True)
class Source:
    """Where `prepare` downloads the tarballs from and what they must verify as.

    ``expected_raw`` / ``expected_counts``: utterances per tarball and per split after the
    filters (None: not checked; fixtures give their own).
    """

    base_urls: tuple[str, ...] = BASE_URLS
    sha256: Mapping[str, str] | None = dataclasses.field(default_factory=lambda: dict(SHA256))
    approx_sizes: Mapping[str, int] = dataclasses.field(default_factory=lambda: dict(APPROX_SIZES))
    expected_raw: Mapping[str, int] | None = dataclasses.field(
        default_factory=lambda: dict(RAW_COUNTS)
    )
    expected_counts: Mapping[str, int] | None = dataclasses.field(
        default_factory=lambda: dict(EXPECTED_COUNTS)
    )


SOURCE = Source()


def _fix_hint(data_dir: Path | str) -> str:
    return f"run `algoperf datasets prepare {DATASET} --data_dir {data_dir}`"


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def dataset_dir(data_dir: Path | str) -> Path:
    """``<data_dir>/librispeech``, or `data_dir` itself when it already is a prepared directory."""
    data_dir = Path(data_dir)
    if _has_subsets(data_dir):
        return data_dir
    return data_dir / DATASET


def _has_subsets(directory: Path) -> bool:
    return any(
        (directory / f"{s}.index.npz").is_file() or (directory / f"{s}.csv").is_file()
        for s in SUBSETS
    )


# Reading a tarball ------------------------------------------------------------------------------


def decode_flac(data: bytes, name: str) -> np.ndarray:
    """int16 samples of a 16 kHz mono FLAC file's bytes (`name` is used in errors)."""
    import soundfile

    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise DatasetError(
            f"{name}: cannot decode FLAC ({error}); the tarball is corrupt"
        ) from None
    if rate != SAMPLE_RATE or samples.shape[1] != 1:
        raise DatasetError(
            f"{name}: {rate} Hz x {samples.shape[1]} channels, expected 16 kHz mono; not LibriSpeech"
        )
    return np.ascontiguousarray(samples[:, 0])


def parse_transcripts(text: str, name: str) -> dict[str, str]:
    """``{utterance id: transcript}`` of a ``<spk>-<ch>.trans.txt`` (upstream's split of each
    stripped line at its first space; the transcript is kept as is, upper case)."""
    out = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(" ", 1)
        if len(parts) != 2:
            raise DatasetError(f"{name}:{number}: expected '<utterance id> <TRANSCRIPT>'")
        out[parts[0]] = parts[1]
    return out


class _ShardWriter:
    """Appends int16 utterances to ``audio-NNNNN.npy`` files of `SHARD_UTTERANCES` each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending: list[np.ndarray] = []
        self.shard = 0
        self.offset = 0
        self.positions: dict[str, tuple[int, int, int]] = {}

    def add(self, utt_id: str, samples: np.ndarray) -> None:
        self.positions[utt_id] = (self.shard, self.offset, len(samples))
        self.pending.append(samples)
        self.offset += len(samples)
        if len(self.pending) == SHARD_UTTERANCES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        np.save(self.directory / f"audio-{self.shard:05d}.npy", np.concatenate(self.pending))
        self.pending, self.shard, self.offset = [], self.shard + 1, 0


@dataclasses.dataclass
class _Scanned:
    transcripts: dict[str, str]  # every transcript line with audio (unfiltered), by id
    positions: dict[str, tuple[int, int, int]]  # kept utterances' audio
    raw_count: int


def scan_tarball(tarball: Path, subset: str, out: Path, progress: bool = False) -> _Scanned:
    """Stream `tarball` once: write audio shards of the utterances that pass the filters into
    `out`; return the transcripts and shard positions."""
    out.mkdir(parents=True, exist_ok=True)
    writer = _ShardWriter(out)
    transcripts: dict[str, str] = {}
    audio_ids: set[str] = set()
    try:
        with tarfile.open(tarball, "r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                parts = PurePosixPath(member.name).parts
                name = parts[-1]
                if not (name.endswith(".flac") or name.endswith(".trans.txt")):
                    continue
                if len(parts) < 5 or parts[-4] != subset:
                    raise DatasetError(
                        f"{tarball}: member {member.name} is not under LibriSpeech/{subset}/; not "
                        f"the OpenSLR {subset} tarball: delete it and {_fix_hint(out.parent.parent)}"
                    )
                f = tar.extractfile(member)
                assert f is not None
                data = f.read()
                if name.endswith(".trans.txt"):
                    transcripts.update(parse_transcripts(data.decode("utf-8"), member.name))
                    continue
                utt_id = name[: -len(".flac")]
                audio_ids.add(utt_id)
                samples = decode_flac(data, f"{tarball}:{member.name}")
                if len(samples) <= MAX_AUDIO_SAMPLES:
                    writer.add(utt_id, samples)
                if progress and len(audio_ids) % 5000 == 0:
                    _say(progress, f"librispeech: {subset}: {len(audio_ids)} utterances decoded")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DatasetError(
            f"{tarball}: not a readable tar.gz ({error}); delete it and "
            f"{_fix_hint(out.parent.parent)}"
        ) from None
    writer.flush()
    # As upstream: an utterance is a transcript line whose FLAC exists.
    transcripts = {k: v for k, v in transcripts.items() if k in audio_ids}
    return _Scanned(transcripts, writer.positions, len(transcripts))


def _write_index(path: Path, scanned: _Scanned, tokenizer) -> int:
    """Apply the transcript filter, tokenize, and write ``<subset>.index.npz``; returns the count."""
    ids = sorted(
        k
        for k, text in scanned.transcripts.items()
        if len(text) <= MAX_TRANSCRIPT_CHARS and k in scanned.positions
    )
    tokens = [tokenizer.encode(scanned.transcripts[k]) for k in ids]
    too_long = [k for k, t in zip(ids, tokens) if len(t) > MAX_TARGET_TOKENS]
    if too_long:
        raise DatasetError(
            f"{path}: {len(too_long)} transcripts (e.g. {too_long[0]}) exceed {MAX_TARGET_TOKENS} "
            "tokens with this tokenizer; use upstream's 1,024-piece model"
        )
    pos = np.array([scanned.positions[k] for k in ids], np.int64).reshape(-1, 3)
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in tokens])]).astype(np.int64)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        ids=np.array(ids, dtype=str),
        transcripts=np.array([scanned.transcripts[k] for k in ids], dtype=str),
        shard=pos[:, 0].astype(np.int32),
        start=pos[:, 1],
        length=pos[:, 2],
        tokens=np.concatenate(tokens) if tokens else np.zeros(0, np.int32),
        token_offsets=offsets,
        raw_count=np.int64(scanned.raw_count),
    )
    os.replace(tmp, path)
    return len(ids)


# Preparing --------------------------------------------------------------------------------------


def _tokenizer(dest: Path, scanned: _Scanned | None, vocab_path: Path | None):
    from workloads.common.tokenizer import Tokenizer, train_sentencepiece

    target = dest / TOKENIZER_FILE
    if vocab_path is not None:
        given = Tokenizer.load(vocab_path)
        if target.is_file() and Tokenizer.load(target).sha256 != given.sha256:
            raise DatasetError(
                f"{target}: the prepared token ids come from another tokenizer than {vocab_path}; "
                f"delete {dest} and prepare again"
            )
        given.save(target)
        return given
    if target.is_file():
        return Tokenizer.load(target)
    if scanned is None:
        raise DatasetError(f"{target} missing although train-clean-100 is prepared; delete {dest}")
    lines = [scanned.transcripts[k] for k in sorted(scanned.transcripts)]
    tokenizer = train_sentencepiece(lines)
    tokenizer.save(target)
    return tokenizer


def prepare(
    data_dir: Path | str,
    *,
    source: Source | None = None,
    tokenizer_vocab_path: Path | str | None = None,
    progress: bool = True,
    timeout: float = 20.0,
) -> Path:
    """Download, verify and convert the six tarballs into ``<data_dir>/librispeech``.

    Idempotent and resumable per tarball: a subset whose index exists is skipped, a partial
    download is resumed, a half-converted subset is converted again. Raises `DatasetError` when
    the utterance counts differ from upstream's (`RAW_COUNTS`, `EXPECTED_COUNTS`).
    """
    source = SOURCE if source is None else source
    dest = Path(data_dir) / DATASET
    vocab_path = Path(tokenizer_vocab_path) if tokenizer_vocab_path else None
    if vocab_path is not None and not vocab_path.is_file():
        raise DatasetError(
            f"{vocab_path}: no such tokenizer file; pass upstream's spm_model.vocab or omit "
            "--librispeech_tokenizer_vocab_path to train one"
        )
    if manifest_status(dest) == "ready" and _manifest_format(dest) == FORMAT_VERSION:
        if vocab_path is not None:
            _tokenizer(dest, None, vocab_path)  # refuses a different model
        return dest
    todo = [s for s in SUBSETS if not (dest / f"{s}.index.npz").is_file()]
    need = sum(
        int(source.approx_sizes.get(s, 0) * OUTPUT_RATIO)
        + (0 if (dest / f"{s}.tar.gz").is_file() else source.approx_sizes.get(s, 0))
        for s in todo
    )
    check_free_space(dest, need, f"{DATASET} ({len(todo)} OpenSLR tarballs and their audio)")
    dest.mkdir(parents=True, exist_ok=True)
    known = vocab_path is not None or (dest / TOKENIZER_FILE).is_file()
    tokenizer = _tokenizer(dest, None, vocab_path) if known else None
    counts: dict[str, int] = {}
    for subset in SUBSETS:
        index = dest / f"{subset}.index.npz"
        if index.is_file():
            counts[subset] = len(np.load(index)["ids"])
            continue
        tarball = dest / f"{subset}.tar.gz"
        download_file(
            [u + f"{subset}.tar.gz" for u in source.base_urls],
            tarball,
            sha256=(source.sha256 or {}).get(subset),
            timeout=timeout,
            progress=progress,
        )
        _say(progress, f"librispeech: converting {subset}")
        partial = dest / f"{subset}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        scanned = scan_tarball(tarball, subset, partial, progress)
        want = (source.expected_raw or {}).get(subset)
        if want is not None and scanned.raw_count != want:
            raise DatasetError(
                f"{tarball}: {scanned.raw_count} utterances, upstream expects {want}; not the "
                f"complete OpenSLR {subset} tarball: delete it and {_fix_hint(data_dir)}"
            )
        if tokenizer is None:
            if subset != "train-clean-100":
                raise DatasetError(f"{dest / TOKENIZER_FILE} missing; delete {dest} and prepare")
            tokenizer = _tokenizer(dest, scanned, None)
        shutil.rmtree(dest / subset, ignore_errors=True)
        os.replace(partial, dest / subset)
        counts[subset] = _write_index(index, scanned, tokenizer)
    splits = {
        split: sum(counts[s] for s in subs)
        for split, subs in SPLIT_SUBSETS.items()
        if split != "eval_train"
    }
    for split, want in (source.expected_counts or {}).items():
        if splits.get(split) != want:
            raise DatasetError(
                f"{dest}: {split} has {splits.get(split)} utterances after the filters, upstream "
                f"has {want}; delete {dest} and {_fix_hint(data_dir)}"
            )
    write_manifest(
        dest,
        [TOKENIZER_FILE, *(f"{s}.index.npz" for s in SUBSETS)],
        dataset=DATASET,
        format_version=FORMAT_VERSION,
        tokenizer_sha256=tokenizer.sha256 if tokenizer else None,
        splits=splits,
    )
    load_subset.cache_clear()
    _say(progress, f"librispeech: ready in {dest} ({splits})")
    return dest


def _manifest_format(dest: Path) -> int | None:
    try:
        return json.loads((dest / MANIFEST_NAME).read_text()).get("format_version")
    except (OSError, ValueError):
        return None


def prepare_dataset(
    dataset: str,
    data_dir: Path | str,
    *,
    offline_fallback: bool = True,
    progress: bool = True,
    **kwargs: object,
) -> Path:
    """`algoperf datasets prepare librispeech` entry; LibriSpeech has no offline source."""
    del offline_fallback
    if dataset != DATASET:
        raise ValueError(f"workloads.librispeech.data prepares {DATASET!r}, not {dataset!r}")
    return prepare(data_dir, progress=progress, **kwargs)  # type: ignore[arg-type]


# Reading ----------------------------------------------------------------------------------------


class Subset:
    """The utterances of one OpenSLR subset: int16 audio and int32 token ids by position."""

    def __init__(
        self, name: str, ids: np.ndarray, audio: Sequence, tokens: Sequence[np.ndarray]
    ) -> None:
        self.name = name
        self.ids = ids
        self._audio = audio
        self._tokens = tokens

    def __len__(self) -> int:
        return len(self.ids)

    def audio(self, i: int) -> np.ndarray:
        """Samples of utterance `i` (int16 values; int64 in upstream's layout)."""
        return self._audio[i]

    def tokens(self, i: int) -> np.ndarray:
        """int32 token ids of utterance `i` (EOS included)."""
        return self._tokens[i]


class _ShardAudio:
    def __init__(self, directory: Path, shard, start, length) -> None:
        self.directory, self.shard, self.start, self.length = directory, shard, start, length
        self.arrays: dict[int, np.ndarray] = {}

    def __getitem__(self, i: int) -> np.ndarray:
        k = int(self.shard[i])
        if k not in self.arrays:
            path = self.directory / f"audio-{k:05d}.npy"
            try:
                self.arrays[k] = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as error:
                raise DatasetError(f"{path}: unreadable ({error}); delete the subset") from None
        a, n = int(self.start[i]), int(self.length[i])
        out = self.arrays[k][a : a + n]
        if len(out) != n:
            raise DatasetError(f"{self.directory}: shard {k} is truncated; delete the subset")
        return out


class _UpstreamFiles:
    def __init__(self, directory: Path, ids: np.ndarray, suffix: str) -> None:
        self.directory, self.ids, self.suffix = directory, ids, suffix

    def __getitem__(self, i: int) -> np.ndarray:
        path = self.directory / f"{self.ids[i]}{self.suffix}"
        try:
            return np.load(path)
        except (OSError, ValueError) as error:
            raise DatasetError(f"{path}: unreadable ({error}); prepare the subset again") from None


@cache
def load_subset(directory: Path, subset: str) -> Subset:
    """One subset from a prepared directory: this module's layout, or upstream's ``.csv`` +
    ``.npy`` layout."""
    index = directory / f"{subset}.index.npz"
    if index.is_file():
        with np.load(index) as f:
            arrays = {k: f[k] for k in f.files}
        offsets = arrays["token_offsets"]
        tokens = np.split(arrays["tokens"], offsets[1:-1]) if len(offsets) > 1 else []
        audio = _ShardAudio(directory / subset, arrays["shard"], arrays["start"], arrays["length"])
        return Subset(subset, arrays["ids"], audio, tokens)
    table = directory / f"{subset}.csv"
    if table.is_file():
        with open(table, newline="") as f:
            rows = list(csv.reader(f))
        if not rows or "id" not in rows[0]:
            raise DatasetError(f"{table}: no 'id' column; not upstream's preprocessed csv")
        column = rows[0].index("id")
        ids = np.array([r[column] for r in rows[1:]], dtype=str)
        folder = directory / subset
        return Subset(
            subset,
            ids,
            _UpstreamFiles(folder, ids, "_audio.npy"),
            _UpstreamFiles(folder, ids, "_targets.npy"),
        )
    raise DatasetError(f"{directory}: {subset} is not prepared; {_fix_hint(directory.parent)}")


def load_tokenizer(data_dir: Path | str):
    """The SentencePiece model the prepared token ids come from (``spm_model.vocab`` in the
    dataset directory: the trained one, or the ``--librispeech_tokenizer_vocab_path`` model
    prepare copied there), checked against the sha256 the manifest records. The eval
    detokenises with it, so WER is computed with the tokenizer the dataset was prepared with."""
    from workloads.common.tokenizer import Tokenizer

    directory = dataset_dir(data_dir)
    path = directory / TOKENIZER_FILE
    if not path.is_file():
        raise DatasetError(
            f"{path}: missing; the eval detokenises with the dataset's SentencePiece model: "
            f"{_fix_hint(directory.parent)} (for a directory in upstream's layout, put "
            f"upstream's {TOKENIZER_FILE} beside its .csv files)"
        )
    tokenizer = Tokenizer.load(path)
    try:
        recorded = json.loads((directory / MANIFEST_NAME).read_text()).get("tokenizer_sha256")
    except (OSError, ValueError):
        recorded = None
    if recorded and recorded != tokenizer.sha256:
        raise DatasetError(
            f"{path}: not the tokenizer the token ids were prepared with (sha256 "
            f"{tokenizer.sha256[:12]}, manifest {recorded[:12]}); delete {directory} and prepare again"
        )
    return tokenizer


def split_subsets(data_dir: Path | str, split: str) -> list[Subset]:
    """The subsets of `split` (train, eval_train, validation, test)."""
    if split not in SPLIT_SUBSETS:
        raise ValueError(f"unknown librispeech split {split!r}; one of {sorted(SPLIT_SUBSETS)}")
    directory = dataset_dir(data_dir)
    return [load_subset(directory, s) for s in SPLIT_SUBSETS[split]]


def make_batch(audio: Sequence[np.ndarray], tokens: Sequence[np.ndarray], rows: int) -> Batch:
    """Upstream's batch of `rows` rows: the given utterances, then all-padding rows."""
    audio, audio_pad = sequences.pad_sequences(
        list(audio) + [np.zeros(0, np.int16)] * (rows - len(audio)),
        MAX_AUDIO_SAMPLES,
        dtype=np.float32,
    )
    ids, id_pad = sequences.pad_sequences(
        list(tokens) + [np.zeros(0, np.int32)] * (rows - len(tokens)),
        MAX_TARGET_TOKENS,
        dtype=np.int32,
    )
    return {"inputs": (audio, audio_pad), "targets": (ids, id_pad)}


def numpy_batches(
    data_dir: Path | str,
    config: WorkloadConfig,
    split: str,
    global_batch_size: int,
    seed: int,
    start_step: int = 0,
) -> Iterator[Batch]:
    """Host batches: 'train' infinite and shuffled per epoch (`iterators.epoch_permutation`,
    the incomplete last batch dropped, ``start_step`` resumes); other splits cover their first
    ``num_<split>_examples`` once in order, the last batch filled with padding rows of weight 0."""
    subsets = split_subsets(data_dir, split)
    where = [(k, i) for k, s in enumerate(subsets) for i in range(len(s))]
    total = len(where)
    if split == "train":
        if global_batch_size > total:
            raise ValueError(f"batch size {global_batch_size} exceeds the {total} utterances")
        per_epoch = total // global_batch_size
        step = start_step
        while True:
            epoch, i = divmod(step, per_epoch)
            perm = iterators.epoch_permutation(total, seed, epoch)
            rows = [where[j] for j in perm[i * global_batch_size : (i + 1) * global_batch_size]]
            yield make_batch(
                [subsets[k].audio(j) for k, j in rows],
                [subsets[k].tokens(j) for k, j in rows],
                global_batch_size,
            )
            step += 1
    wanted = {
        "eval_train": config.num_eval_train_examples,
        "validation": config.num_validation_examples,
        "test": config.num_test_examples,
    }[split]
    if wanted > total:
        raise DatasetError(
            f"{dataset_dir(data_dir)}: {split} has {total} utterances, the config wants {wanted}"
        )
    for a in range(0, wanted, global_batch_size):
        rows = where[a : min(a + global_batch_size, wanted)]
        batch = make_batch(
            [subsets[k].audio(j) for k, j in rows],
            [subsets[k].tokens(j) for k, j in rows],
            global_batch_size,
        )
        weights = np.zeros(global_batch_size, np.float32)
        weights[: len(rows)] = 1.0
        batch["weights"] = weights
        yield batch


def synthetic_batch(config: WorkloadConfig, batch_size: int, seed: int) -> Batch:
    """Random utterances of upstream's shapes (random lengths, token ids 3..1023)."""
    del config
    rng = np.random.default_rng(iterators._seed_word(seed))
    lengths = rng.integers(MAX_AUDIO_SAMPLES // 4, MAX_AUDIO_SAMPLES + 1, batch_size)
    audio = [rng.integers(-3000, 3000, n).astype(np.int16) for n in lengths]
    tokens = [rng.integers(3, 1024, rng.integers(10, 100)).astype(np.int32) for _ in lengths]
    return make_batch(audio, tokens, batch_size)
