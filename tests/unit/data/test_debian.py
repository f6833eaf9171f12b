"""The Debian-package fallback with a locally built tiny .deb (the apt step is replaced; no
network)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from algoperf.data import debian
from algoperf.data.debian import DebianPackageError, fetch_package_files

needs_dpkg_deb = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


def build_deb(tmp_path: Path, pkg: str, files: dict[str, bytes]) -> Path:
    """A minimal binary package holding `files` (absolute install paths -> content)."""
    root = tmp_path / f"{pkg}-build"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {pkg}\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
        "Description: test package\n"
    )
    for path, content in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    deb = tmp_path / f"{pkg}_1.0_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


@pytest.fixture
def fake_apt(monkeypatch):
    """Make `pkg` look not installed and let `apt_download` copy a prebuilt .deb instead."""
    debs: dict[str, Path] = {}
    calls: list[str] = []

    def apt_download(pkg, directory, *, timeout=600.0):
        calls.append(pkg)
        if pkg not in debs:
            raise DebianPackageError(f"apt-get download {pkg} failed (test: no such package)")
        return Path(shutil.copy(debs[pkg], directory))

    monkeypatch.setattr(debian, "installed_files", lambda pkg: None)
    monkeypatch.setattr(debian, "apt_download", apt_download)
    monkeypatch.setattr(debian, "_package_bytes", lambda pkg: None)
    return debs, calls


@needs_dpkg_deb
def test_fetch_from_downloaded_package(tmp_path, fake_apt):
    debs, calls = fake_apt
    debs["toy-data"] = build_deb(
        tmp_path,
        "toy-data",
        {
            "/usr/share/datasets/toy/a.gz": b"AAA",
            "/usr/share/datasets/toy/b.gz": b"BBBB",
            "/usr/share/doc/toy-data/README": b"doc",
        },
    )
    dest = tmp_path / "dest"
    got = fetch_package_files("toy-data", ["*.gz"], dest)
    assert sorted(p.name for p in got) == ["a.gz", "b.gz"]
    assert (dest / "a.gz").read_bytes() == b"AAA"
    assert (dest / "b.gz").read_bytes() == b"BBBB"
    assert not (dest / "README").exists()
    assert calls == ["toy-data"]


@needs_dpkg_deb
def test_full_path_patterns_and_missing_files(tmp_path, fake_apt):
    debs, _ = fake_apt
    debs["toy-data"] = build_deb(
        tmp_path, "toy-data", {"/usr/share/datasets/toy/a.gz": b"A", "/opt/a2.gz": b"Z"}
    )
    got = fetch_package_files("toy-data", ["/usr/share/datasets/*/a*.gz"], tmp_path / "d")
    assert [p.name for p in got] == ["a.gz"]
    with pytest.raises(DebianPackageError, match=r"no file matching missing\.gz"):
        fetch_package_files("toy-data", ["a.gz", "missing.gz"], tmp_path / "e")


def test_installed_package_is_used_without_download(tmp_path, monkeypatch):
    installed = tmp_path / "usr" / "share" / "datasets" / "toy"
    installed.mkdir(parents=True)
    (installed / "a.gz").write_bytes(b"installed")
    monkeypatch.setattr(
        debian, "installed_files", lambda pkg: [str(installed), str(installed / "a.gz")]
    )

    def no_download(*args, **kwargs):
        raise AssertionError("must not download an installed package")

    monkeypatch.setattr(debian, "apt_download", no_download)
    got = fetch_package_files("toy-data", ["a.gz"], tmp_path / "dest")
    assert got == [tmp_path / "dest" / "a.gz"]
    assert got[0].read_bytes() == b"installed"


def test_apt_failure_says_what_to_do(tmp_path, monkeypatch):
    def fake_run(cmd, *, timeout, check, cwd=None):
        return subprocess.CompletedProcess(cmd, 100, "", "E: Unable to locate package nope\n")

    monkeypatch.setattr(debian, "_run", fake_run)
    monkeypatch.setattr(debian.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(DebianPackageError, match=r"Unable to locate package nope.*apt-get update"):
        debian.apt_download("nope", tmp_path)


def test_no_apt_get(tmp_path, monkeypatch):
    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    with pytest.raises(DebianPackageError, match="apt-get is not available"):
        debian.apt_download("toy-data", tmp_path)
    assert debian.installed_files("toy-data") is None


def test_download_failure_propagates(tmp_path, fake_apt):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("needs dpkg-deb")
    with pytest.raises(DebianPackageError, match="no such package"):
        fetch_package_files("absent-pkg", ["*"], tmp_path / "dest")


def test_installed_files_of_a_package_that_is_not_installed():
    if shutil.which("dpkg-query") is None:
        pytest.skip("needs dpkg-query")
    assert debian.installed_files("algoperf-no-such-package-xyz") is None
