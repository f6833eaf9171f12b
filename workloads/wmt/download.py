"""Download the WMT17 de-en sources `workloads.wmt.data.prepare` reads, verified and resumable.

The archives are the Hugging Face mirror of the statmt.org releases (``huggingface.co/datasets/
wmt/...``, zip repackagings of ``training-parallel-europarl-v7.tgz`` ...), whose byte sizes and
SHA-256 are published with the mirror (Hugging Face ``datasets``' wmt17 ``dataset_infos.json``);
statmt.org publishes no checksums for its tarballs. They hold the same files as the tarballs
(upstream reads them through TFDS, which downloads the tarballs): the four training corpora of
TFDS ``wmt17_translate/de-en`` and WMT19's ``dev`` archive, which has newstest2013 (validation)
and newstest2014 (test) among every earlier test set.

Each archive is downloaded with `algoperf.data.download.download_file` (resumes a ``.part``,
verifies size and SHA-256, tries mirrors in order, progress on stderr) into ``<source>/archives/``
and the needed files are extracted next to it under their release names, found by base name
whatever folder the archive keeps them in. Re-running skips archives already extracted. Disk
space for the archives and the extracted text is checked before the first byte.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

from algoperf.data import DataError
from algoperf.data.download import check_free_space, download_file

_HF = "https://huggingface.co/datasets/wmt"


@dataclasses.dataclass(frozen=True)
class Archive:
    """One zip archive: mirrors, size, SHA-256, and the base names of the files it provides."""

    name: str
    urls: tuple[str, ...]
    size: int
    sha256: str
    members: tuple[str, ...]
    # Extracted text is about this many times the compressed size (measured on the releases).
    expansion: float = 3.0


ARCHIVES = (
    Archive(
        "training-parallel-europarl-v7.zip",
        (f"{_HF}/wmt13/resolve/main-zip/training-parallel-europarl-v7.zip",),
        658_092_427,
        "5b2d8b32c2396da739b4e731871c597fcc6e75729becd74619d0712eecf7770e",
        ("europarl-v7.de-en.de", "europarl-v7.de-en.en"),
    ),
    Archive(
        "training-parallel-commoncrawl.zip",
        (f"{_HF}/wmt13/resolve/main-zip/training-parallel-commoncrawl.zip",),
        918_734_483,
        "5ffe980072ea29adfd84568d099bea366d9f72772b988e670794ae851b4e5627",
        ("commoncrawl.de-en.de", "commoncrawl.de-en.en"),
    ),
    Archive(
        "training-parallel-nc-v12.zip",
        (f"{_HF}/wmt17/resolve/main-zip/translation-task/training-parallel-nc-v12.zip",),
        168_699_339,
        "a3e922fd19485a25870e628fdecb81b7d621f545e16df21a38fae15127413122",
        ("news-commentary-v12.de-en.de", "news-commentary-v12.de-en.en"),
    ),
    Archive(
        "rapid2016.zip",
        (f"{_HF}/wmt18/resolve/main-zip/translation-task/rapid2016.zip",),
        161_141_713,
        "93217093c624d9e16023fee98afb089208cca5937c2c08ee7edc707196d09a28",
        ("rapid2016.de-en.de", "rapid2016.de-en.en"),
    ),
    Archive(
        "dev.zip",
        (f"{_HF}/wmt19/resolve/main-zip/translation-task/dev.zip",),
        38_714_274,
        "d796e363740fdc4261aa6f5a3d2f8223e3adaee7d737b7724863325b8956dfd1",
        (
            "newstest2013-src.de.sgm",
            "newstest2013-ref.en.sgm",
            "newstest2014-deen-src.de.sgm",
            "newstest2014-deen-ref.en.sgm",
        ),
        expansion=0.1,
    ),
)
DONE = "extracted.json"


def _done(source: Path) -> dict[str, list[str]]:
    try:
        return json.loads((source / DONE).read_text())
    except (OSError, ValueError):
        return {}


def extract(archive: Path, members: Sequence[str], dest: Path) -> list[str]:
    """Copy the files named `members` (base names) out of `archive` into `dest`, atomically."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DataError(
            f"{archive}: not a zip archive ({exc}); delete it and prepare again"
        ) from exc
    with zf:
        by_name = {Path(i.filename).name: i for i in zf.infolist() if not i.is_dir()}
        missing = [m for m in members if m not in by_name]
        if missing:
            raise DataError(f"{archive}: has no {', '.join(missing)}; delete it and prepare again")
        for member in members:
            tmp = dest / f"{member}.tmp"
            with zf.open(by_name[member]) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            os.replace(tmp, dest / member)
    return list(members)


def download_sources(
    source: Path | str,
    archives: Sequence[Archive] | None = None,
    *,
    progress: bool = True,
    timeout: float = 20.0,
    keep_archives: bool = False,
) -> Path:
    """Download and extract every archive (default `ARCHIVES`) into `source`; return `source`."""
    archives = ARCHIVES if archives is None else archives
    source = Path(source)
    done = _done(source)
    todo = [a for a in archives if a.name not in done]
    if not todo:
        return source
    store = source / "archives"
    need = sum(
        (0 if (store / a.name).is_file() else a.size) + int(a.size * a.expansion) for a in todo
    )
    check_free_space(source, need, f"wmt sources ({len(todo)} archives and their text)")
    store.mkdir(parents=True, exist_ok=True)
    for archive in todo:
        path = download_file(
            archive.urls,
            store / archive.name,
            sha256=archive.sha256,
            size=archive.size,
            timeout=timeout,
            progress=progress,
        )
        done[archive.name] = extract(path, archive.members, source)
        tmp = source / f"{DONE}.tmp"
        tmp.write_text(json.dumps(done, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, source / DONE)
        if not keep_archives:
            path.unlink()
    return source
