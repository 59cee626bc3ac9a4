"""Resumable downloads: a server that drops the connection halfway, one that ignores ranges,
a damaged file, and Cancel."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shotsketch_launcher.download import (DownloadCancelled, DownloadFailed, Progress, WheelFile, download_all)

BODY = bytes(range(256)) * 4096 * 3  # 3 MiB, three read chunks


class FileServer:
    """Serves BODY; ``drop_first`` requests send half of what they promised, then hang up."""

    def __init__(self, drop_first: int = 0, honour_range: bool = True):
        self.requests: list[str | None] = []
        self.drops_left = drop_first
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                rng = self.headers.get("Range")
                server.requests.append(rng)
                start = int(rng.split("=")[1].rstrip("-")) if rng and server.honour_range else 0
                data = BODY[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if server.drops_left > 0:
                    server.drops_left -= 1
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

        self.honour_range = honour_range
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/torch-2.13.0-cp312-cp312-linux_x86_64.whl"


def wheel(url: str, sha: str | None = None) -> WheelFile:
    return WheelFile(url, "torch-2.13.0-cp312-cp312-linux_x86_64.whl", sha or hashlib.sha256(BODY).hexdigest(), len(BODY))


def test_a_dropped_connection_resumes_where_it_stopped(tmp_path):
    seen: list[Progress] = []
    with FileServer(drop_first=2) as server:
        (path,) = download_all([wheel(server.url)], tmp_path, seen.append, sleep=lambda s: None)
    assert path.read_bytes() == BODY
    assert server.requests[0] is None
    # Each retry asked only for the rest, from further on each time.
    offsets = [int(r.split("=")[1].rstrip("-")) for r in server.requests[1:]]
    assert len(offsets) == 2 and 0 < offsets[0] < offsets[1] < len(BODY)
    assert seen[-1].done_bytes == len(BODY) and seen[-1].done_files == 1
    assert not list(tmp_path.glob("*.part"))


def test_a_server_that_ignores_ranges_is_read_again_from_the_start(tmp_path):
    with FileServer(drop_first=1, honour_range=False) as server:
        (path,) = download_all([wheel(server.url)], tmp_path, sleep=lambda s: None)
    assert path.read_bytes() == BODY
    assert len(server.requests) == 2


def test_a_damaged_file_is_refused_and_not_kept(tmp_path):
    with FileServer() as server, pytest.raises(DownloadFailed, match="damaged"):
        download_all([wheel(server.url, sha="0" * 64)], tmp_path, sleep=lambda s: None)
    assert not list(tmp_path.iterdir())


def test_a_whole_file_in_the_cache_is_not_downloaded_again(tmp_path):
    (tmp_path / "torch-2.13.0-cp312-cp312-linux_x86_64.whl").write_bytes(BODY)
    with FileServer() as server:
        download_all([wheel(server.url)], tmp_path)
    assert server.requests == []


def test_cancel_keeps_what_arrived(tmp_path):
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.done_bytes > 0:
            cancel.set()

    with FileServer() as server, pytest.raises(DownloadCancelled):
        download_all([wheel(server.url)], tmp_path, on_progress, cancel)
    part = tmp_path / "torch-2.13.0-cp312-cp312-linux_x86_64.whl.part"
    assert 0 < part.stat().st_size < len(BODY)
