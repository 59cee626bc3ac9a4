"""Resumable downloads of the large wheels (torch and its CUDA libraries, 2-3 GiB).

uv does not resume a partial wheel, and a dropped connection at 2.5 of 3 GiB is the first complaint
of these launchers' users. Here each file goes to ``<name>.part`` in the cache; after a break the
next request asks for the rest (HTTP ``Range: bytes=N-``), a server that ignores the range sends it
all again, and the finished file is checked against its sha256 before it takes its real name.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
RETRIES = 8
TIMEOUT_S = 60


class DownloadCancelled(Exception):
    pass


class DownloadFailed(Exception):
    """One line a person can act on."""


@dataclass(frozen=True)
class WheelFile:
    url: str
    filename: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class Progress:
    """Bytes and files so far, of the whole set."""

    done_bytes: int
    total_bytes: int
    done_files: int
    total_files: int
    current: str = ""


ProgressCallback = Callable[[Progress], None]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_all(files: list[WheelFile], cache: Path, on_progress: ProgressCallback | None = None,
                 cancel: threading.Event | None = None, sleep: Callable[[float], None] = time.sleep) -> list[Path]:
    """Fetch each file into ``cache`` (skipping those already there and whole); return their paths."""
    cache.mkdir(parents=True, exist_ok=True)
    cancel = cancel or threading.Event()
    total = sum(f.size or 0 for f in files)
    finished: list[Path] = []
    done_before = 0
    for index, wheel in enumerate(files):
        target = cache / wheel.filename
        if not (target.exists() and sha256_of(target) == wheel.sha256):
            target.unlink(missing_ok=True)

            def report(got: int, _wheel: WheelFile = wheel, _base: int = done_before, _index: int = index) -> None:
                if on_progress:
                    on_progress(Progress(_base + got, total, _index, len(files), _wheel.filename))

            download_one(wheel, target, report, cancel, sleep)
        done_before += wheel.size or target.stat().st_size
        finished.append(target)
        if on_progress:
            on_progress(Progress(done_before, max(total, done_before), index + 1, len(files)))
    return finished


def download_one(wheel: WheelFile, target: Path, report: Callable[[int], None],
                 cancel: threading.Event, sleep: Callable[[float], None] = time.sleep) -> None:
    """Download one file, resuming after each dropped connection, then check its sha256."""
    part = target.with_name(target.name + ".part")
    failures = 0
    while True:
        if cancel.is_set():
            raise DownloadCancelled()
        have = part.stat().st_size if part.exists() else 0
        if wheel.size is not None and have >= wheel.size:
            break
        try:
            if _fetch_rest(wheel.url, part, have, report, cancel):
                break
            failures = 0  # the connection ended early but moved forward: resume at once
        except DownloadCancelled:
            raise
        except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:
            failures += 1
            if failures > RETRIES:
                raise DownloadFailed(f"could not download {wheel.filename} ({_reason(exc)}); what arrived is kept, "
                                     "try again to continue where it stopped") from exc
            sleep(min(2 ** failures, 30))
    got = sha256_of(part)
    if got != wheel.sha256:
        part.unlink(missing_ok=True)
        raise DownloadFailed(f"{wheel.filename} arrived damaged (checksum differs); try again to download it anew")
    os.replace(part, target)


def _fetch_rest(url: str, part: Path, have: int, report: Callable[[int], None], cancel: threading.Event) -> bool:
    """Append what is missing; True when the server said the file is complete."""
    request = urllib.request.Request(url, headers={"User-Agent": "shotsketch-launcher"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310 - https URLs from the lock
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the file is whole
            return True
        raise
    with response:
        status = response.status
        if have and status != 206:
            have = 0  # the server ignored the range: start over
        length = response.headers.get("Content-Length")
        expected = have + int(length) if length and length.isdigit() else None
        received = have
        with part.open("ab" if have else "wb") as out:
            while True:
                if cancel.is_set():
                    raise DownloadCancelled()
                block = response.read(CHUNK)
                if not block:
                    break
                out.write(block)
                received += len(block)
                report(received)
        return expected is None or received >= expected


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"no connection: {exc.reason}"
    return str(exc) or type(exc).__name__
