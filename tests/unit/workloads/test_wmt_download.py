"""workloads.wmt.download: verified, resumable download of the release archives, then prepare."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from algoperf.data import DataError
from algoperf.data.download import DownloadError
from workloads.wmt import data, download, testing


def _archives(root, served):
    """Zip the fixture's WMT files the way the mirror does (files under a folder)."""
    src = testing.write_source(root / "files")
    layout = {
        "training.zip": [
            "europarl-v7.de-en.de",
            "europarl-v7.de-en.en",
            "news-commentary-v12.de-en.de",
            "news-commentary-v12.de-en.en",
        ],
        "dev.zip": [
            "newstest2013-src.de.sgm",
            "newstest2013-ref.en.sgm",
            "newstest2014-deen-src.de.sgm",
            "newstest2014-deen-ref.en.sgm",
        ],
    }
    served.mkdir()
    out = []
    for name, members in layout.items():
        path = served / name
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("unrelated/readme.txt", "not extracted")
            for m in members:
                z.write(src / m, f"{name[:-4]}/{m}")
        blob = path.read_bytes()
        out.append((name, len(blob), hashlib.sha256(blob).hexdigest(), tuple(members)))
    return out


def _specs(base, archives):
    return [
        download.Archive(name, (f"{base}/{name}",), size, sha, members)
        for name, size, sha, members in archives
    ]


def test_download_extracts_and_prepare_reads_it(tmp_path, serve_directory, monkeypatch):
    archives = _archives(tmp_path, tmp_path / "served")
    specs = _specs(serve_directory(tmp_path / "served"), archives)
    monkeypatch.setattr(download, "ARCHIVES", tuple(specs))
    dest = data.prepare(tmp_path / "data", vocab_size=64, progress=False)
    source = dest / "source"
    assert (source / "newstest2014-deen-ref.en.sgm").is_file()
    assert not (source / "readme.txt").exists() and not (source / "archives" / "dev.zip").exists()
    assert data._read_meta(dest)["splits"]["validation"] == 12
    # Re-running skips extracted archives: no server is needed any more.
    assert (
        download.download_sources(
            source,
            [download.Archive("dev.zip", ("http://127.0.0.1:9/x",), 1, "0" * 64, ())],
            progress=False,
        )
        == source
    )


def test_a_corrupt_archive_is_refused_and_nothing_is_extracted(tmp_path, serve_directory):
    archives = _archives(tmp_path, tmp_path / "served")
    name, size, _, members = archives[1]
    spec = download.Archive(
        name, (f"{serve_directory(tmp_path / 'served')}/{name}",), size, "f" * 64, members
    )
    with pytest.raises(DownloadError, match="does not match the expected"):
        download.download_sources(tmp_path / "src", [spec], progress=False)
    assert not (tmp_path / "src" / "newstest2013-src.de.sgm").exists()
    assert not (tmp_path / "src" / download.DONE).exists()


def test_an_archive_without_a_needed_file_is_named(tmp_path):
    path = tmp_path / "dev.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("dev/newstest2013-src.de.sgm", "x")
    with pytest.raises(DataError, match=r"dev\.zip: has no newstest2013-ref\.en\.sgm"):
        download.extract(path, ("newstest2013-src.de.sgm", "newstest2013-ref.en.sgm"), tmp_path)
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"bad\.zip: not a zip archive"):
        download.extract(tmp_path / "bad.zip", ("a",), tmp_path)


def test_the_release_archives_are_pinned():
    names = {m for a in download.ARCHIVES for m in a.members}
    for corpus in data.TRAIN_CORPORA:
        assert {f"{corpus}.de-en.de", f"{corpus}.de-en.en"} <= names
    for pairs in data.EVAL_SOURCES.values():
        assert set(pairs[0]) <= names  # the SGM sets upstream's splits come from
    assert all(len(a.sha256) == 64 and a.size > 10_000_000 for a in download.ARCHIVES)
