"""Atomic file writes: a temporary file in the same folder, fsync, then rename over the target."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def default_file_mode() -> int:
    """The mode a plain new file gets under the current umask (mkstemp would give 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    dest = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent or ".")
    try:
        os.chmod(tmp, default_file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


CLAIM_SUFFIX = ".claim"


class OutputTaken(Exception):
    """Another running process is writing the same output file; ``pid`` is that process."""

    def __init__(self, path: Path, pid: int):
        super().__init__(f"another Shotsketch (process {pid}) is writing {path} right now; choose another name")
        self.pid = pid


def claim_path(path: str | os.PathLike[str]) -> Path:
    dest = Path(path)
    return dest.with_name(f".{dest.name}{CLAIM_SUFFIX}")


@contextmanager
def claim_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Claim an output name before the work that will write it: a small file beside it
    (``.NAME.claim``, holding this process's id) made with O_EXCL, so that a second command
    aiming at the same name is refused at once instead of after its whole generation. A claim
    whose process is gone (killed) is taken over. Never a partial file under the final name."""
    from shotsketch.core import leftovers

    claim = claim_path(path)
    for _ in range(3):
        # the claim appears whole (a hard link of a file already holding the id): a reader never
        # finds it empty
        ready = leftovers.create_file(claim.parent, claim.name, "new")
        try:
            ready.write_text(f"{os.getpid()}\n")
            os.link(ready, claim)
            break
        except FileExistsError:
            owner = leftovers.claim_owner(claim)
            if owner is not None and leftovers.is_running(owner) and owner != os.getpid():
                raise OutputTaken(Path(path), owner) from None
            claim.unlink(missing_ok=True)  # a killed run's claim
        finally:
            ready.unlink(missing_ok=True)
    else:
        raise OutputTaken(Path(path), leftovers.claim_owner(claim) or 0)
    try:
        yield claim
    finally:
        if leftovers.claim_owner(claim) == os.getpid():
            claim.unlink(missing_ok=True)


def set_aside(path: str | os.PathLike[str], suffix: str = ".damaged") -> Path:
    """Rename a file that could not be read to ``<name><suffix>`` beside it (best effort: a file that
    cannot be moved stays), so that the next save does not overwrite what the person may want back.
    Returns the name it was given (or would have been)."""
    path = Path(path)
    aside = path.with_name(path.name + suffix)
    try:
        os.replace(path, aside)
    except OSError:
        pass
    return aside


def read_json_file(path: Path, parse: Callable[[Any], T], default: Callable[[], T], what: str,
                   log: logging.Logger, fallback: str = "using defaults") -> T:
    """``parse`` of the JSON in ``path``; ``default()`` when there is no file. A file that cannot be
    read, is not JSON or that ``parse`` refuses (ValueError) is set aside (:func:`set_aside`, never
    lost) and logged as "<what> <path> is damaged (...); kept as <aside>, <fallback>"."""
    if not path.exists():
        return default()
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        aside = set_aside(path)
        log.warning("%s %s is damaged (%s); kept as %s, %s", what, path, exc, aside, fallback)
        return default()
