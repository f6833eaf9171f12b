"""WMT17 de-en on disk: line-aligned corpora and SGM test sets -> SentencePiece ids -> packed arrays.

Sources, downloaded and verified by `workloads.wmt.download` (the default), or from a local
folder (``--wmt_source_dir``) holding what the WMT17 release archives extract to (statmt.org
``training-parallel-europarl-v7.tgz``, ``training-parallel-commoncrawl.tgz``,
``training-parallel-nc-v12.tgz``, ``rapid2016.tgz``, ``dev.tgz``, ``test-full.tgz``):

* training pairs: line-aligned files ``<corpus>.de-en.de`` / ``<corpus>.de-en.en`` (Europarl v7,
  Common Crawl, News Commentary v12, Rapid 2016), any that are present, in sorted name order;
* validation: newstest2013 (``newstest2013-src.de.sgm`` / ``newstest2013-ref.en.sgm``, or the plain
  ``newstest2013.de`` / ``newstest2013.en``); test: newstest2014 (``newstest2014-deen-src.de.sgm``
  / ``newstest2014-deen-ref.en.sgm``), as upstream (TFDS ``wmt17_translate/de-en`` validation,
  ``wmt14_translate/de-en`` test). SGM segments are the text of each ``<seg id="N">...</seg>``
  line, unescaped no further (as TFDS; the 13a BLEU tokenizer unescapes ``&amp;`` and friends).

Tokeniser: upstream's recipe (flax WMT example): a 32k unigram SentencePiece model, character
coverage 1.0, trained on training pairs written as alternating source and target lines until the
byte count (each line plus newline) reaches 1e7, checked after each whole pair; ids unk 0, bos 1,
eos 2, EOS appended to every sequence, padding 0. Upstream's pairs come in TFDS's order, which is
not reproducible here; we take them in file order (a recorded difference in the trained model,
not in the recipe). ``--wmt_spm_model`` takes an existing model file instead (upstream's).

Then, in every split, pairs whose source or target exceeds 256 ids (with EOS) are dropped; train
pairs are packed as upstream's ``pack_dataset`` (greedily, in order, into rows of 256 for both
sides: a pair joins the current row when both sides still fit, else the row is closed), with
``*_segmentation`` (1, 2, ... per pair, 0 padding) and ``*_position`` (0.. within each pair);
eval pairs are padded to 256. (``max_length`` makes rows, filter and padding shorter for a
dataset of short pairs, as `workloads.wmt.bible`; recorded in ``meta.json``.) Written to
``<data_dir>/wmt/`` (``<data_dir>/<dataset>/`` for another ``dataset`` name, the variant's
``config.dataset``) as int32 ``.npy`` (both frameworks memory-map them): ``train_{inputs,targets,inputs_segmentation,targets_segmentation,
inputs_position,targets_position}.npy``, ``{validation,test}_{inputs,targets}.npy``, the model
``spm_32k.model``, ``meta.json`` and, last, ``manifest.json`` (idempotent: a ready directory is
returned as is).
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from algoperf.data import DataError, DatasetError
from algoperf.data.download import check_free_space, manifest_status, write_manifest
from workloads.common.prepare_entry import prepare_entry

DATASET = "wmt"
MAX_LENGTH = 256
VOCAB_SIZE = 32_000
TOKENIZER_MAX_BYTES = 10_000_000
EOS_ID = 2
PAD_ID = 0
FORMAT_VERSION = 1
TRAIN_CORPORA = ("europarl-v7", "commoncrawl", "news-commentary-v12", "rapid2016")
EVAL_SOURCES = {
    "validation": (
        ("newstest2013-src.de.sgm", "newstest2013-ref.en.sgm"),
        ("newstest2013.de", "newstest2013.en"),
    ),
    "test": (("newstest2014-deen-src.de.sgm", "newstest2014-deen-ref.en.sgm"),),
}
PACKED_KEYS = (
    "inputs",
    "targets",
    "inputs_segmentation",
    "targets_segmentation",
    "inputs_position",
    "targets_position",
)
_SEG = re.compile(r'\s*<seg id="?[^">]*"?>(.*)</seg>\s*$')


def _open_text(path: Path) -> Any:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def read_lines(path: Path | str) -> list[str]:
    """The lines of a plain or gzipped UTF-8 file, newline removed."""
    path = Path(path)
    try:
        with _open_text(path) as f:
            return [line.rstrip("\n").rstrip("\r") for line in f]
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e}); download the file again") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e}); check the path") from e


def read_sgm(path: Path | str) -> list[str]:
    """The segments of an SGM file: the text of each ``<seg id=...>...</seg>`` line, in order."""
    segs = []
    for line in read_lines(path):
        m = _SEG.match(line)
        if m:
            segs.append(m.group(1))
    if not segs:
        raise DataError(f"{path}: no <seg> lines; expected a WMT .sgm test set")
    return segs


def read_pair(src: Path, tgt: Path) -> list[tuple[str, str]]:
    """Aligned (source, target) pairs of two line-aligned or two SGM files."""
    read = read_sgm if src.name.endswith(".sgm") else read_lines
    a, b = read(src), read(tgt)
    if len(a) != len(b):
        raise DataError(
            f"{src} has {len(a)} segments but {tgt} has {len(b)}; the files are not aligned: "
            "download both again"
        )
    return list(zip(a, b, strict=True))


def train_files(source_dir: Path) -> list[tuple[Path, Path]]:
    """The (de, en) file pairs of the training corpora present in `source_dir`."""
    found = []
    for corpus in TRAIN_CORPORA:
        for ext in ("", ".gz"):
            de = source_dir / f"{corpus}.de-en.de{ext}"
            en = source_dir / f"{corpus}.de-en.en{ext}"
            if de.is_file() and en.is_file():
                found.append((de, en))
                break
    if not found:
        names = ", ".join(f"{c}.de-en.{{de,en}}" for c in TRAIN_CORPORA)
        raise DataError(
            f"{source_dir}: no training corpus ({names}); extract the WMT17 archives there"
        )
    return found


def eval_files(source_dir: Path, split: str) -> tuple[Path, Path]:
    """The (de, en) files of an eval split (SGM preferred)."""
    for de, en in EVAL_SOURCES[split]:
        if (source_dir / de).is_file() and (source_dir / en).is_file():
            return source_dir / de, source_dir / en
    want = " or ".join(f"{de} + {en}" for de, en in EVAL_SOURCES[split])
    raise DataError(
        f"{source_dir}: {split} set missing ({want}); extract WMT17 dev.tgz / test-full.tgz there"
    )


def tokenizer_lines(
    pairs: Iterable[tuple[str, str]], max_bytes: int = TOKENIZER_MAX_BYTES
) -> list[str]:
    """Upstream's tokenizer text: source, target, source, ... until `max_bytes` (UTF-8, with
    newlines) is reached, checked after each whole pair."""
    out: list[str] = []
    count = 0
    for src, tgt in pairs:
        if count >= max_bytes:
            break
        for line in (src, tgt):
            out.append(line)
            count += len(line.encode("utf-8")) + 1
    return out


def encode_pairs(
    tokenizer: Any, pairs: Sequence[tuple[str, str]], max_length: int = MAX_LENGTH
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ids (EOS appended) of each pair, dropping pairs with either side over `max_length`."""
    out = []
    for src, tgt in pairs:
        a, b = tokenizer.encode(src), tokenizer.encode(tgt)
        if len(a) <= max_length and len(b) <= max_length:
            out.append((a.astype(np.int32), b.astype(np.int32)))
    return out


def pack(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], length: int = MAX_LENGTH
) -> dict[str, np.ndarray]:
    """Upstream's greedy packing of pairs into rows of `length` (see the module docstring)."""
    rows: list[list[tuple[np.ndarray, np.ndarray]]] = []
    cur: list[tuple[np.ndarray, np.ndarray]] = []
    used = [0, 0]
    for a, b in pairs:
        if len(a) > length or len(b) > length:
            raise ValueError(f"a pair of lengths {len(a)}, {len(b)} exceeds {length}: filter first")
        if cur and (used[0] + len(a) > length or used[1] + len(b) > length):
            rows.append(cur)
            cur, used = [], [0, 0]
        cur.append((a, b))
        used = [used[0] + len(a), used[1] + len(b)]
    if cur:
        rows.append(cur)
    out = {k: np.zeros((len(rows), length), np.int32) for k in PACKED_KEYS}
    for r, row in enumerate(rows):
        for side, key in ((0, "inputs"), (1, "targets")):
            at = 0
            for seg, pair in enumerate(row, start=1):
                ids = pair[side]
                n = len(ids)
                out[key][r, at : at + n] = ids
                out[f"{key}_segmentation"][r, at : at + n] = seg
                out[f"{key}_position"][r, at : at + n] = np.arange(n)
                at += n
    return out


def pad(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], length: int = MAX_LENGTH
) -> dict[str, np.ndarray]:
    """Eval arrays: each pair's ids padded with 0 to `length`."""
    out = {k: np.full((len(pairs), length), PAD_ID, np.int32) for k in ("inputs", "targets")}
    for i, (a, b) in enumerate(pairs):
        out["inputs"][i, : len(a)] = a
        out["targets"][i, : len(b)] = b
    return out


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _read_meta(dest: Path) -> dict[str, Any]:
    try:
        return json.loads((dest / "meta.json").read_text())
    except (OSError, ValueError):
        return {}


def prepare(
    data_dir: Path | str,
    *,
    source_dir: Path | str | None = None,
    spm_model: Path | str | None = None,
    vocab_size: int = VOCAB_SIZE,
    tokenizer_max_bytes: int = TOKENIZER_MAX_BYTES,
    max_length: int = MAX_LENGTH,
    dataset: str = DATASET,
    progress: bool = True,
) -> Path:
    """Tokenise, filter and pack WMT17 de-en from `source_dir` into ``<data_dir>/<dataset>``.

    Without `source_dir` the release archives are downloaded first (`workloads.wmt.download`:
    verified, resumable) into ``<data_dir>/<dataset>/source``. `max_length`: the packed row
    length, the longest pair kept and the eval padding (upstream: 256).
    """
    from workloads.common.tokenizer import Tokenizer, train_sentencepiece

    dest = Path(data_dir) / dataset
    meta = _read_meta(dest)
    if (
        manifest_status(dest) == "ready"
        and meta.get("format_version") == FORMAT_VERSION
        and meta.get("max_length") == max_length
    ):
        return dest
    if source_dir is None:
        from workloads.wmt.download import download_sources

        source_dir = download_sources(dest / "source", progress=progress)
    src_dir = Path(source_dir)
    if not src_dir.is_dir():
        raise DataError(f"{src_dir}: no such directory; pass --wmt_source_dir")
    files = train_files(src_dir)
    evals = {s: eval_files(src_dir, s) for s in EVAL_SOURCES}
    source_bytes = sum(p.stat().st_size for pair in files for p in pair)
    # int32 ids: about 4 bytes per 4 characters, x2 for the packed metadata arrays, plus margin.
    check_free_space(dest, 4 * source_bytes, f"{dataset} (tokenised and packed arrays)")
    dest.mkdir(parents=True, exist_ok=True)
    train_pairs = [p for de, en in files for p in read_pair(de, en)]
    _say(progress, f"{dataset}: {len(train_pairs):,} training pairs from {len(files)} corpora")
    if spm_model is not None:
        tok = Tokenizer.load(spm_model)
    else:
        lines = tokenizer_lines(train_pairs, tokenizer_max_bytes)
        tok = train_sentencepiece(
            lines,
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=1.0,
            max_chars=None,
        )
    if tok.eos_id != EOS_ID:
        raise DataError(
            f"{spm_model}: EOS id {tok.eos_id}, expected {EOS_ID} (SentencePiece default)"
        )
    tok.save(dest / "spm_32k.model")
    sizes: dict[str, int] = {}
    written = ["spm_32k.model"]
    encoded = encode_pairs(tok, train_pairs, max_length)
    arrays = pack(encoded, max_length)
    sizes["train_pairs"] = len(encoded)
    sizes["train"] = len(arrays["inputs"])
    for key, arr in arrays.items():
        np.save(dest / f"train_{key}.npy", arr)
        written.append(f"train_{key}.npy")
    for split, (de, en) in evals.items():
        padded = pad(encode_pairs(tok, read_pair(de, en), max_length), max_length)
        sizes[split] = len(padded["inputs"])
        for key, arr in padded.items():
            np.save(dest / f"{split}_{key}.npy", arr)
            written.append(f"{split}_{key}.npy")
    meta = {
        "format_version": FORMAT_VERSION,
        "max_length": max_length,
        "vocab_size": tok.vocab_size,
        "tokenizer_sha256": tok.sha256,
        "sources": [p.name for pair in files for p in pair],
        "splits": sizes,
    }
    (dest / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    write_manifest(dest, [*written, "meta.json"], dataset=dataset)
    _say(progress, f"{dataset}: ready in {dest} ({sizes})")
    return dest


# `algoperf datasets prepare wmt` (the registry's prepare signature).
prepare_dataset = prepare_entry(prepare, DATASET)


def load_split(data_dir: Path | str, split: str, dataset: str = DATASET) -> dict[str, np.ndarray]:
    """A prepared split's arrays, memory-mapped (train: packed keys; eval: inputs, targets)."""
    dest = Path(data_dir) / dataset
    if manifest_status(dest) != "ready":
        raise DatasetError(
            f"{dest}: missing or incomplete; run `algoperf datasets prepare {dataset}`"
        )
    if split not in ("train", "validation", "test"):
        raise ValueError(f"wmt has splits train, validation, test; not {split!r}")
    keys = PACKED_KEYS if split == "train" else ("inputs", "targets")
    return {k: np.load(dest / f"{split}_{k}.npy", mmap_mode="r") for k in keys}
