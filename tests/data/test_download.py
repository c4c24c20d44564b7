"""Download logic against a local HTTP server on 127.0.0.1 (no other address is used)."""

import hashlib
import http.server
import io
import json
import threading
import zipfile

import pytest
from .layouts import write_microscopy

from rawdrift.data.download import (
    RemoteFile,
    download_dataset,
    download_file,
    extract_archive,
    record_files,
    select_files,
)
from rawdrift.data.real import RawMicroscopy


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    honour_range = True
    log: list = []

    def do_GET(self):
        path = self.path.split("?")[0]
        self.log.append((path, self.headers.get("Range")))
        if path not in self.files:
            self.send_error(404)
            return
        body = self.files[path]
        rng = self.headers.get("Range")
        if rng and self.honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            chunk = body[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            chunk = body
            self.send_response(200)
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        self.wfile.write(chunk)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.log, _Handler.honour_range = {}, [], True
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler
    httpd.shutdown()
    httpd.server_close()


def _sha(b):
    return hashlib.sha256(b).hexdigest()


def test_download_verifies_and_renames(server, tmp_path):
    url, h = server
    data = bytes(range(256)) * 40
    h.files["/f.bin"] = data
    dest = download_file(url + "/f.bin", tmp_path / "f.bin", size=len(data), sha256=_sha(data), progress=False)
    assert dest.read_bytes() == data and not (tmp_path / "f.bin.part").exists()
    # a good existing file is not fetched again
    n = len(h.log)
    download_file(url + "/f.bin", dest, size=len(data), sha256=_sha(data), progress=False)
    assert len(h.log) == n


def test_resume_after_truncated_part(server, tmp_path):
    url, h = server
    data = b"0123456789" * 1000
    h.files["/f.bin"] = data
    (tmp_path / "f.bin.part").write_bytes(data[:3333])
    dest = download_file(url + "/f.bin", tmp_path / "f.bin", size=len(data), md5=hashlib.md5(data).hexdigest(), progress=False)
    assert dest.read_bytes() == data
    assert h.log[-1] == ("/f.bin", "bytes=3333-")


def test_resume_when_server_ignores_range(server, tmp_path):
    url, h = server
    h.honour_range = False
    data = b"abc" * 500
    h.files["/f.bin"] = data
    (tmp_path / "f.bin.part").write_bytes(b"garbage")
    dest = download_file(url + "/f.bin", tmp_path / "f.bin", sha256=_sha(data), progress=False)
    assert dest.read_bytes() == data


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    url, h = server
    h.files["/f.bin"] = b"corrupted content"
    with pytest.raises(ValueError, match="f.bin.part: sha256 checksum mismatch"):
        download_file(url + "/f.bin", tmp_path / "f.bin", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="f.bin.part: size mismatch: expected 5 bytes, got 17"):
        download_file(url + "/f.bin", tmp_path / "f.bin", size=5, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_final_file_is_replaced(server, tmp_path):
    url, h = server
    data = b"good data"
    h.files["/f.bin"] = data
    (tmp_path / "f.bin").write_bytes(b"bad")
    assert download_file(url + "/f.bin", tmp_path / "f.bin", sha256=_sha(data), progress=False).read_bytes() == data


def test_http_errors(server, tmp_path):
    url, _ = server
    with pytest.raises(ConnectionError, match="HTTP 404"):
        download_file(url + "/missing", tmp_path / "m.bin", progress=False)
    with pytest.raises(ConnectionError, match="cannot reach the Zenodo record"):
        record_files("1", api="http://127.0.0.1:9/api/records/", timeout=2)
    assert not (tmp_path / "m.bin").exists()


def test_extract_archive_rejects_escaping_members(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../evil.txt", "x")
    with pytest.raises(ValueError, match="refusing member '../evil.txt'"):
        extract_archive(bad, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.zip: not a readable archive"):
        extract_archive(junk, tmp_path / "out")


def _zip_of(folder):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(folder).as_posix())
    return buf.getvalue()


@pytest.mark.parametrize("with_top", [True, False])
def test_dataset_download_end_to_end(server, tmp_path, with_top):
    url, h = server
    src = tmp_path / "src"
    write_microscopy(src)
    blob = _zip_of(src if with_top else src / "microscopy")  # with or without the 'microscopy/' folder
    h.files["/records/5235536/files/Raw-Microscopy.zip"] = blob
    h.files["/api/records/5235536"] = json.dumps({"files": [
        {"key": "Raw-Microscopy.zip", "size": len(blob), "checksum": "md5:" + hashlib.md5(blob).hexdigest(),
         "links": {"self": url + "/records/5235536/files/Raw-Microscopy.zip"}},
        {"key": "Raw-Drone.zip", "size": 1, "checksum": "md5:0", "links": {"self": url + "/nope"}},
    ]}).encode()
    files = record_files(api=url + "/api/records/")
    assert [f.name for f in files] == ["Raw-Microscopy.zip", "Raw-Drone.zip"] and files[0].size == len(blob)
    assert select_files(files, "microscopy") == [files[0]]
    with pytest.raises(ValueError, match="no file of the record looks like the drone data"):
        select_files(files[:1], "drone")

    root = tmp_path / "data"
    with pytest.raises(FileNotFoundError, match="data not found"):
        RawMicroscopy(root)
    download_dataset("microscopy", root, api=url + "/api/records/", progress=False)
    ds = RawMicroscopy(root)
    assert len(ds) == 16 and (root / "downloads" / "Raw-Microscopy.zip").is_file()
    assert not list(root.rglob("*.part"))
    # a second run neither downloads nor unpacks again
    n = len(h.log)
    download_dataset("microscopy", root, files=[files[0]], progress=False)
    assert len(h.log) == n


def test_dataset_download_flag_uses_download(monkeypatch, tmp_path):
    calls = []

    def fake(dataset, root, **kw):
        calls.append(dataset)
        write_microscopy(root)

    monkeypatch.setattr("rawdrift.data.download.download_dataset", fake)
    ds = RawMicroscopy(tmp_path, download=True)
    assert calls == ["microscopy"] and len(ds) == 16


def test_remote_file_archive_kinds():
    assert RemoteFile("a.tar.gz", "u").is_archive and not RemoteFile("a.dat", "u").is_archive
