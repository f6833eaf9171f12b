"""download_file against a local HTTP server on 127.0.0.1 (no network): resume, checksums,
mirrors, idempotency; the disk-space preflight and the manifest."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import socket
import threading
import time
from collections import namedtuple
from pathlib import Path

import pytest

from algoperf.data import download
from algoperf.data.download import (
    ChecksumError,
    DiskSpaceError,
    DownloadError,
    check_free_space,
    download_file,
    manifest_status,
    verify_checksum,
    write_manifest,
)

PAYLOAD = bytes(range(256)) * 400  # 100 KiB, not a multiple of the chunk size
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `server.files`; honours Range unless `server.ignore_range`; paths in
    `server.truncate_once` send only half the body on their first request, then drop the
    connection (a broken transfer). Every request is logged in `server.log`."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        srv = self.server
        srv.log.append((self.path, self.headers.get("Range")))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and not srv.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if self.path in srv.truncate_once:
            srv.truncate_once.discard(self.path)
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(chunk)


Server = namedtuple("Server", "url server")


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files = {}
    srv.log = []
    srv.truncate_once = set()
    srv.ignore_range = False
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{srv.server_address[1]}", srv)
    finally:
        srv.shutdown()
        srv.server_close()


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/file.bin"


def test_download_verifies_and_renames(server, tmp_path):
    server.server.files["/a/file.bin"] = PAYLOAD
    dest = tmp_path / "out" / "file.bin"
    got = download_file([server.url + "/a/file.bin"], dest, sha256=SHA256, md5=MD5, progress=False)
    assert got == dest
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "out" / "file.bin.part").exists()


def test_second_call_is_idempotent(server, tmp_path):
    server.server.files["/f"] = PAYLOAD
    dest = tmp_path / "f"
    download_file(server.url + "/f", dest, sha256=SHA256, progress=False)
    n = len(server.server.log)
    mtime = dest.stat().st_mtime_ns
    download_file(server.url + "/f", dest, sha256=SHA256, progress=False)
    assert len(server.server.log) == n  # no request at all
    assert dest.stat().st_mtime_ns == mtime


def test_truncated_transfer_is_resumed_with_range(server, tmp_path):
    server.server.files["/f"] = PAYLOAD
    server.server.truncate_once.add("/f")
    dest = tmp_path / "f"
    download_file(server.url + "/f", dest, sha256=SHA256, size=len(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    ranges = [r for _, r in server.server.log]
    assert ranges[0] is None
    assert ranges[1] == f"bytes={len(PAYLOAD) // 2}-"  # continued where the transfer broke
    assert len(ranges) == 2


def test_part_file_from_an_interrupted_run_is_resumed(server, tmp_path):
    server.server.files["/f"] = PAYLOAD
    dest = tmp_path / "f"
    (tmp_path / "f.part").write_bytes(PAYLOAD[:1000])
    download_file(server.url + "/f", dest, sha256=SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.server.log == [("/f", "bytes=1000-")]


def test_server_ignoring_range_gives_a_fresh_transfer(server, tmp_path):
    server.server.files["/f"] = PAYLOAD
    server.server.ignore_range = True
    (tmp_path / "f.part").write_bytes(PAYLOAD[:1000])
    download_file(server.url + "/f", tmp_path / "f", sha256=SHA256, progress=False)
    assert (tmp_path / "f").read_bytes() == PAYLOAD


def test_complete_part_file_answered_416_is_verified(server, tmp_path):
    server.server.files["/f"] = PAYLOAD
    (tmp_path / "f.part").write_bytes(PAYLOAD)
    download_file(server.url + "/f", tmp_path / "f", sha256=SHA256, progress=False)
    assert (tmp_path / "f").read_bytes() == PAYLOAD


def test_bad_part_prefix_is_refetched_from_scratch(server, tmp_path):
    server.server.files["/f"] = PAYLOAD
    (tmp_path / "f.part").write_bytes(b"\xff" * 1000)  # garbage left by some other download
    download_file(server.url + "/f", tmp_path / "f", sha256=SHA256, progress=False)
    assert (tmp_path / "f").read_bytes() == PAYLOAD
    assert [r for _, r in server.server.log] == ["bytes=1000-", None]


def test_checksum_mismatch_raises_and_leaves_nothing(server, tmp_path):
    server.server.files["/f"] = PAYLOAD[:-1] + b"\x00"
    dest = tmp_path / "f"
    with pytest.raises(DownloadError, match="sha256") as info:
        download_file(server.url + "/f", dest, sha256=SHA256, progress=False)
    assert server.url + "/f" in str(info.value)
    assert "\n" not in str(info.value)
    assert not dest.exists()
    assert not (tmp_path / "f.part").exists()


def test_size_mismatch_raises(server, tmp_path):
    server.server.files["/f"] = PAYLOAD
    with pytest.raises(DownloadError, match="size"):
        download_file(server.url + "/f", tmp_path / "f", size=len(PAYLOAD) + 1, progress=False)


def test_mirror_fallback(server, tmp_path):
    server.server.files["/good/f"] = PAYLOAD
    server.server.files["/bad/f"] = b"not it"
    urls = [server.url + "/missing/f", server.url + "/bad/f", server.url + "/good/f"]
    download_file(urls, tmp_path / "f", md5=MD5, progress=False)
    assert (tmp_path / "f").read_bytes() == PAYLOAD
    assert [p for p, _ in server.server.log] == ["/missing/f", "/bad/f", "/good/f"]


def test_all_mirrors_failing_names_each(server, tmp_path):
    urls = [server.url + "/missing/f", _closed_port_url()]
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download_file(urls, tmp_path / "f", sha256=SHA256, timeout=2, progress=False)
    assert time.monotonic() - start < 5  # an unreachable host fails fast
    message = str(info.value)
    assert "HTTP 404" in message
    assert urls[0] in message and urls[1] in message
    assert "\n" not in message


def test_existing_bad_file_is_replaced(server, tmp_path):
    server.server.files["/f"] = PAYLOAD
    dest = tmp_path / "f"
    dest.write_bytes(b"corrupt")
    download_file(server.url + "/f", dest, sha256=SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_existing_bad_file_is_reported_when_no_replacement(tmp_path):
    dest = tmp_path / "f"
    dest.write_bytes(b"corrupt")
    with pytest.raises(DownloadError, match=r"existing .* is bad"):
        download_file(_closed_port_url(), dest, sha256=SHA256, timeout=2, progress=False)
    assert dest.read_bytes() == b"corrupt"  # kept: nothing better was found


def test_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    download_file(src.as_uri(), tmp_path / "dst.bin", sha256=SHA256, progress=False)
    assert (tmp_path / "dst.bin").read_bytes() == PAYLOAD


def test_progress_bar_goes_to_stderr(server, tmp_path, capsys):
    server.server.files["/f"] = PAYLOAD
    download_file(server.url + "/f", tmp_path / "f", sha256=SHA256, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""


def test_verify_checksum(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(PAYLOAD)
    verify_checksum(path, sha256=SHA256, md5=MD5, size=len(PAYLOAD))
    verify_checksum(path, sha256=SHA256.upper())
    with pytest.raises(ChecksumError, match="md5"):
        verify_checksum(path, md5="0" * 32)
    with pytest.raises(ChecksumError, match="size"):
        verify_checksum(path, size=1)
    with pytest.raises(ChecksumError, match="not found"):
        verify_checksum(tmp_path / "missing", sha256=SHA256)


def test_check_free_space(tmp_path, monkeypatch):
    check_free_space(tmp_path / "not" / "yet", 1, "a test")  # probes the nearest existing parent
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: usage._replace(free=10 * 2**20))
    check_free_space(tmp_path, 10 * 2**20, "a test")
    with pytest.raises(DiskSpaceError, match=r"a test needs 20\.0 MiB free .* only 10\.0 MiB"):
        check_free_space(tmp_path / "sub", 20 * 2**20, "a test")


def test_manifest_status(tmp_path):
    d = tmp_path / "ds"
    assert manifest_status(d) == "missing"
    d.mkdir()
    assert manifest_status(d) == "missing"
    (d / "a").write_bytes(b"123")
    (d / "b").write_bytes(b"4567")
    assert manifest_status(d) == "unverified"
    write_manifest(d, [d / "a", "b"], dataset="ds")
    assert manifest_status(d) == "ready"
    (d / "b").write_bytes(b"45")
    assert manifest_status(d) == "incomplete"
    (d / "b").write_bytes(b"4567")
    (d / "a").unlink()
    assert manifest_status(d) == "incomplete"


def test_format_bytes():
    assert download.format_bytes(512) == "512 B"
    assert download.format_bytes(1536) == "1.5 KiB"
    assert download.format_bytes(3 * 2**30) == "3.0 GiB"


def test_no_urls_is_an_error(tmp_path):
    with pytest.raises(ValueError):
        download_file([], tmp_path / "f")


def test_part_path_keeps_suffix(server, tmp_path, monkeypatch):
    # The part file sits beside dest with ".part" appended (not replacing ".gz").
    server.server.files["/x.gz"] = PAYLOAD
    server.server.truncate_once.add("/x.gz")
    seen: list[Path] = []
    real = download._stream

    def spy(response, part, *args):
        seen.append(part)
        return real(response, part, *args)

    monkeypatch.setattr(download, "_stream", spy)
    download_file(server.url + "/x.gz", tmp_path / "x.gz", sha256=SHA256, progress=False)
    assert seen and all(p.name == "x.gz.part" for p in seen)
