"""Resumable, checksummed, mirror-aware downloads and the checks around them (stdlib only).

`download_file` fetches one file from the first mirror that works: it streams into
``<dest>.part`` (resuming an earlier partial transfer with an HTTP ``Range`` request), verifies the
size and checksum, then renames the part file onto `dest` atomically, so `dest` is either absent
or complete and verified. A `dest` that already verifies is not downloaded again, which makes
every prepare step idempotent. Errors are one line: the URLs tried, why each failed, what to do.

`check_free_space` is the preflight a prepare function runs before it starts writing, and
`write_manifest` / `manifest_status` record and report a dataset directory whose files were all
verified (what ``algoperf datasets list`` shows).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from algoperf.data import DataError

MANIFEST_NAME = ".algoperf_manifest.json"
_CHUNK = 1 << 20
_USER_AGENT = "algoperf-datasets/0.6 (+python urllib)"
# Attempts to continue one URL's transfer after it broke off, as long as each attempt made progress.
_MAX_RESUMES = 5


class DownloadError(DataError):
    """No mirror delivered a verified file."""


class ChecksumError(DownloadError):
    """A file's size or checksum differs from the expected one."""


class DiskSpaceError(DataError):
    """Not enough free disk space for the work about to start."""


class _TransferError(Exception):
    """One URL failed (network, HTTP status, broken transfer); the next mirror may work."""


def format_bytes(n: float) -> str:
    """Human-readable byte count (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def file_digests(path: Path, algorithms: Iterable[str] = ("sha256",)) -> dict[str, str]:
    """Hex digests of a file, read once in chunks for every algorithm."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {name: h.hexdigest() for name, h in hashers.items()}


def verify_checksum(
    path: Path | str,
    sha256: str | None = None,
    md5: str | None = None,
    *,
    size: int | None = None,
) -> None:
    """Raise `ChecksumError` unless `path` has the given size and checksums (None: not checked)."""
    path = Path(path)
    if not path.is_file():
        raise ChecksumError(f"{path}: file not found")
    if size is not None and (actual := path.stat().st_size) != size:
        raise ChecksumError(
            f"{path}: size {actual} bytes, expected {size}; the file is incomplete or not the "
            "expected one: delete it and download it again"
        )
    wanted = {name: value.lower() for name, value in (("sha256", sha256), ("md5", md5)) if value}
    if not wanted:
        return
    got = file_digests(path, wanted)
    for name, expected in wanted.items():
        if got[name] != expected:
            raise ChecksumError(
                f"{path}: {name} {got[name]} does not match the expected {expected}; the file is "
                "corrupt or not the expected one: delete it and download it again"
            )


def check_free_space(path: Path | str, required_bytes: int, what: str) -> None:
    """Raise `DiskSpaceError` if the file system holding `path` has less than `required_bytes` free.

    `path` need not exist yet: its nearest existing parent is probed. `what` names the work in
    the message, e.g. ``"mnist (4 files)"``.
    """
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < required_bytes:
        raise DiskSpaceError(
            f"{what} needs {format_bytes(required_bytes)} free under {probe}, only "
            f"{format_bytes(free)} available; free some space or choose another --data_dir"
        )


def download_file(
    urls: Sequence[str] | str,
    dest: Path | str,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    timeout: float = 20.0,
    progress: bool = True,
) -> Path:
    """Download `dest` from the first of `urls` that delivers a verified file; return `dest`.

    Args:
        urls: mirror URLs of the same file, tried in order (http, https or file).
        dest: final path; the transfer goes to ``dest + ".part"`` and is renamed when verified.
        sha256, md5, size: expected checksums / byte size (None: not checked).
        timeout: seconds for connecting and for each read; an unreachable host fails fast.
        progress: show a progress bar on stderr.

    Resumes a ``.part`` file left by an interrupted run with an HTTP Range request (a server
    that ignores Range gets a fresh transfer). If `dest` exists and verifies it is returned as
    is. Raises `DownloadError` naming every URL tried and why it failed.
    """
    if isinstance(urls, str):
        urls = [urls]
    if not urls:
        raise ValueError("download_file needs at least one URL")
    dest = Path(dest)
    stale = ""
    if dest.exists():
        try:
            verify_checksum(dest, sha256, md5, size=size)
            return dest
        except ChecksumError as e:
            # Keep it until a verified replacement exists; say so if none can be had.
            stale = f"; the existing {dest} is bad ({_reason(e)})"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures: list[str] = []
    for url in urls:
        for fresh_retry in (False, True):
            resumed = part.exists() and part.stat().st_size > 0
            try:
                _fetch(url, part, size=size, timeout=timeout, progress=progress, name=dest.name)
            except _TransferError as e:
                failures.append(f"{url}: {e}")
                break
            try:
                verify_checksum(part, sha256, md5, size=size)
            except ChecksumError as e:
                part.unlink(missing_ok=True)
                if resumed and not fresh_retry:
                    # The kept prefix may be what was bad; try this mirror once from scratch.
                    continue
                failures.append(f"{url}: {_reason(e)}")
                break
            os.replace(part, dest)
            return dest
    raise DownloadError(
        f"could not download {dest.name}: " + "; ".join(failures) + stale + ". Check the network "
        f"(or a proxy via $https_proxy), or copy a verified {dest.name} to {dest}"
    )


def _reason(error: Exception) -> str:
    """The message of a `ChecksumError` without its leading path and trailing advice."""
    text = str(error).split(": ", 1)[-1]
    return text.split("; ", 1)[0]


def _fetch(url: str, part: Path, *, size: int | None, timeout: float, progress: bool, name: str):
    """Stream `url` into `part`, resuming what is there; raise `_TransferError` if nothing came."""
    for _ in range(_MAX_RESUMES + 1):
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:
            part.unlink()
            offset = 0
        if size is not None and offset == size:
            return  # already complete; the caller verifies it
        headers = {"User-Agent": _USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=timeout
            )
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:
                return  # the part file already holds everything the server has; verify decides
            raise _TransferError(f"HTTP {e.code} {e.reason}") from None
        except urllib.error.URLError as e:
            raise _TransferError(str(e.reason)) from None
        except (OSError, http.client.HTTPException) as e:
            raise _TransferError(f"{type(e).__name__}: {e}") from None
        with response:
            status = getattr(response, "status", None)
            content_range = response.headers.get("Content-Range", "")
            if offset and status == 206 and content_range.startswith(f"bytes {offset}-"):
                mode = "ab"
            else:
                offset, mode = 0, "wb"  # the server sent the whole file
            length = response.headers.get("Content-Length")
            expected = offset + int(length) if length and length.isdigit() else size
            received = _stream(response, part, mode, offset, expected, progress, name)
        if expected is None or offset + received >= expected:
            return
        if received == 0:
            raise _TransferError(f"transfer broke off at byte {offset} of {expected}")
        # The transfer broke off after making progress: resume it from where it stopped.
    raise _TransferError(f"transfer kept breaking off (gave up after {_MAX_RESUMES} resumes)")


def _stream(response, part: Path, mode: str, offset: int, total, progress: bool, name: str) -> int:
    """Copy the response body into `part`; return the bytes received (a broken body ends early)."""
    from tqdm import tqdm  # only needed while downloading

    received = 0
    bar = tqdm(
        total=total,
        initial=offset,
        desc=name,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not progress,
        mininterval=0.5,
        leave=False,
    )
    with bar, open(part, mode) as out:
        try:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        except (OSError, http.client.HTTPException):
            pass  # a broken transfer; the caller resumes it
    return received


def write_manifest(directory: Path | str, files: Iterable[Path | str], **info: Any) -> Path:
    """Record that `files` in `directory` are complete and verified (atomically written JSON)."""
    directory = Path(directory)
    entries = {}
    for f in files:
        p = directory / Path(f).name
        entries[p.name] = {"size": p.stat().st_size}
    path = directory / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"files": entries, **info}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def manifest_status(directory: Path | str) -> str:
    """``ready`` (manifest and files agree), ``incomplete`` (files changed or missing since),
    ``unverified`` (files but no manifest) or ``missing`` (no directory or nothing in it)."""
    directory = Path(directory)
    if not directory.is_dir():
        return "missing"
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return "unverified" if any(directory.iterdir()) else "missing"
    try:
        entries = json.loads(path.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return "incomplete"
    for name, entry in entries.items():
        f = directory / name
        if not f.is_file() or f.stat().st_size != entry.get("size"):
            return "incomplete"
    return "ready"
