"""The JSON header of a ``.safetensors`` file, read and checked without loading any weights.

One reader for every place that looks at a weight file before it is loaded (a model folder's
files, a LoRA the person adds, the memory planner's parameter counts); each says in its own words
what :class:`HeaderProblem` it met.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

MAX_HEADER_BYTES = 100 * 2**20  # the safetensors library's own limit on a header


class HeaderProblem(ValueError):
    """Why a file's header cannot be used. ``kind``: "short" (fewer than 8 bytes; ``size`` 0 is an
    empty file), "damaged" (the length is impossible for the file), "not-json", "not-a-table", or
    "unreadable" (``os_error`` holds the OSError)."""

    def __init__(self, kind: str, size: int = -1, os_error: OSError | None = None) -> None:
        super().__init__(kind)
        self.kind, self.size, self.os_error = kind, size, os_error


def read_header(path: str | os.PathLike[str]) -> tuple[dict, int, int]:
    """(header, header length, file size) of a safetensors file; HeaderProblem when it cannot be."""
    try:
        with open(Path(path), "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            if len(head) < 8:
                raise HeaderProblem("short", size)
            (length,) = struct.unpack("<Q", head)
            if length < 2 or length > MAX_HEADER_BYTES or 8 + length > size:
                raise HeaderProblem("damaged", size)
            header = json.loads(fh.read(length).decode("utf-8"))
    except OSError as exc:
        raise HeaderProblem("unreadable", os_error=exc) from exc
    except (UnicodeDecodeError, RecursionError) as exc:
        raise HeaderProblem("not-json", size) from exc
    except HeaderProblem:
        raise
    except ValueError as exc:  # json.JSONDecodeError
        raise HeaderProblem("not-json", size) from exc
    if not isinstance(header, dict):
        raise HeaderProblem("not-a-table", size)
    return header, length, size
