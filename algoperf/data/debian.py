"""Offline fallback: take data files from a Debian package (installed, or fetched without root).

Some datasets are packaged by Debian (e.g. ``dataset-fashion-mnist`` ships the Fashion-MNIST IDX
files under ``/usr/share/datasets/fashion-mnist/``). Where the dataset's own hosts cannot be
reached but a Debian mirror can, `fetch_package_files` gets the files from

1. the installed package, if it is installed (``dpkg-query -L``), else
2. ``apt-get download <pkg>`` into a temporary directory (needs no root) unpacked with
   ``dpkg-deb -x``.

The caller verifies the copied files against its own checksums: a package may recompress or
otherwise change them.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from algoperf.data import DataError
from algoperf.data.download import check_free_space


class DebianPackageError(DataError):
    """The package could not be found, fetched or unpacked, or lacks the wanted files."""


def installed_files(pkg: str) -> list[str] | None:
    """Paths the installed package `pkg` owns, or None if it is not installed (or no dpkg)."""
    if shutil.which("dpkg-query") is None:
        return None
    status = _run(["dpkg-query", "-W", "-f=${Status}", pkg], timeout=30, check=False)
    if status.returncode != 0 or not status.stdout.strip().endswith(" installed"):
        return None
    listing = _run(["dpkg-query", "-L", pkg], timeout=30, check=False)
    if listing.returncode != 0:
        return None
    return [line for line in listing.stdout.splitlines() if line.startswith("/")]


def apt_download(pkg: str, directory: Path, *, timeout: float = 600.0) -> Path:
    """``apt-get download pkg`` into `directory` (no root needed); return the .deb path."""
    if shutil.which("apt-get") is None:
        raise DebianPackageError(f"cannot fetch Debian package {pkg}: apt-get is not available")
    cmd = [
        "apt-get",
        "download",
        "-q",
        "-o",
        "Acquire::Retries=0",
        "-o",
        "Acquire::http::Timeout=15",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # As root apt would try to drop to its sandbox user, which cannot write to a private
        # temporary directory; it then warns and downloads as root anyway.
        cmd += ["-o", "APT::Sandbox::User=root"]
    result = _run([*cmd, pkg], timeout=timeout, cwd=directory, check=False)
    debs = sorted(directory.glob("*.deb"))
    if result.returncode != 0 or not debs:
        detail = _last_line(result.stderr) or _last_line(result.stdout) or "no .deb written"
        hint = (
            "run `apt-get update` first"
            if "locate package" in result.stderr or "no installation candidate" in result.stderr
            else "check that a Debian mirror is reachable"
        )
        raise DebianPackageError(f"apt-get download {pkg} failed ({detail}); {hint}")
    return debs[-1]


def _package_bytes(pkg: str) -> int | None:
    """Download size plus unpacked size of `pkg` from ``apt-cache show`` (None if unknown)."""
    if shutil.which("apt-cache") is None:
        return None
    result = _run(["apt-cache", "show", "--no-all-versions", pkg], timeout=60, check=False)
    fields: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep and key in ("Size", "Installed-Size"):
            fields.setdefault(key, value.strip())
    try:
        return int(fields["Size"]) + int(fields["Installed-Size"]) * 1024
    except (KeyError, ValueError):
        return None


def _matches(path: str, patterns: Sequence[str]) -> str | None:
    """The first pattern matching `path` (by full path if it has a '/', else by file name)."""
    name = path.rsplit("/", 1)[-1]
    for pattern in patterns:
        if fnmatch.fnmatchcase(path if "/" in pattern else name, pattern):
            return pattern
    return None


def _copy_matching(paths: Sequence[tuple[str, Path]], patterns, dest: Path, pkg: str) -> list[Path]:
    """Copy every (package path, local file) whose package path matches into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    used: set[str] = set()
    for pkg_path, local in paths:
        pattern = _matches(pkg_path, patterns)
        if pattern is None or not local.is_file():
            continue
        used.add(pattern)
        target = dest / local.name
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(local, tmp)
        os.replace(tmp, target)
        copied.append(target)
    missing = [p for p in patterns if p not in used]
    if missing:
        raise DebianPackageError(f"Debian package {pkg} has no file matching {', '.join(missing)}")
    return copied


def fetch_package_files(
    pkg: str,
    patterns: Sequence[str],
    dest: Path | str,
    *,
    timeout: float = 600.0,
) -> list[Path]:
    """Copy the files of Debian package `pkg` that match `patterns` into `dest`.

    Args:
        pkg: Debian package name, e.g. ``dataset-fashion-mnist``.
        patterns: shell patterns; one with a '/' matches the installed path (e.g.
            ``/usr/share/datasets/*/train-*.gz``), one without matches the file name. Every
            pattern must match at least one file.
        dest: directory the files are copied into (flat, by file name).
        timeout: seconds allowed for ``apt-get download``.

    Returns the copied paths. Raises `DebianPackageError` (one line, with the fix) when the package
    is neither installed nor downloadable, or lacks a wanted file.
    """
    dest = Path(dest)
    owned = installed_files(pkg)
    if owned is not None:
        return _copy_matching([(p, Path(p)) for p in owned], patterns, dest, pkg)
    if shutil.which("dpkg-deb") is None:
        raise DebianPackageError(f"cannot unpack Debian package {pkg}: dpkg-deb is not available")
    tmp_root = Path(tempfile.gettempdir())
    needed = _package_bytes(pkg)
    if needed is not None:
        check_free_space(tmp_root, needed, f"Debian package {pkg} (download and unpack)")
    with tempfile.TemporaryDirectory(prefix="algoperf-deb-", dir=tmp_root) as tmp:
        work = Path(tmp)
        deb = apt_download(pkg, work, timeout=timeout)
        root = work / "root"
        result = _run(["dpkg-deb", "-x", str(deb), str(root)], timeout=timeout, check=False)
        if result.returncode != 0:
            raise DebianPackageError(
                f"dpkg-deb -x {deb.name} failed ({_last_line(result.stderr)}); the downloaded "
                "package is damaged, try again"
            )
        files = [
            ("/" + str(p.relative_to(root)), p) for p in sorted(root.rglob("*")) if p.is_file()
        ]
        return _copy_matching(files, patterns, dest, pkg)


def _run(cmd: list[str], *, timeout: float, check: bool, cwd: Path | None = None):
    try:
        return subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            env={**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"},
        )
    except subprocess.TimeoutExpired:
        raise DebianPackageError(
            f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s"
        ) from None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
