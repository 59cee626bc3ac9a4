"""Checks at the door for what a person hands the app: files (layouts, recipes), JSON and text.

Every check ends in :class:`InputError` with one sentence, before any work starts:
- a file must be a regular file of a sane size (a FIFO would hang the read, ``/dev/zero`` never
  ends, a 600 MB "layout" fills the memory);
- JSON must be shallow (100,000 nested lists used to end in "maximum recursion depth exceeded")
  and its whole numbers short (a 400-digit number overflowed later, converted to a float);
- text must be valid Unicode without NUL (a lone surrogate, which is how Python passes a 0xff byte
  from the shell, failed only when the finished take's recipe was written);
- values echoed in a message are cut (a 10 MB name was printed whole).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

MAX_JSON_FILE_BYTES = 8 * 1024 * 1024  # a layout or a recipe: a few KB in practice
MAX_JSON_DEPTH = 64
MAX_INT_DIGITS = 40  # a seed is at most 20 digits
MAX_TEXT_CHARS = 20_000  # a prompt: the text encoder reads 512 tokens


class InputError(ValueError):
    """Input that is refused; the message says what is wrong, in one line."""


def shorten(value: Any, limit: int = 60) -> str:
    """``repr``-like text of a value for a message, cut to about ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # printable whatever it holds
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text):,} characters)"
    return text


def read_file(path: str | os.PathLike[str], what: str, limit: int = MAX_JSON_FILE_BYTES) -> bytes:
    """The bytes of a regular file no larger than ``limit``; anything else is refused."""
    p = Path(path)
    name = shorten(str(p), 200)
    try:
        info = p.stat()
    except FileNotFoundError:
        raise InputError(f"the {what} {name} does not exist") from None
    except OSError as exc:
        raise InputError(f"cannot read the {what} {name}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"the {what} {name} is a folder; give a file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"the {what} {name} is not a regular file (a pipe or a device?); save it as a file first")
    if info.st_size > limit:
        raise InputError(f"the {what} {name} is {info.st_size:,} bytes; a {what} is at most {limit:,}")
    try:
        with open(p, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read the {what} {name}: {exc.strerror or exc}") from None
    if len(data) > limit:  # it grew while being read
        raise InputError(f"the {what} {name} is larger than {limit:,} bytes")
    return data


def _short_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise InputError(f"it holds a number with {len(digits):,} digits")
    return int(digits)


def _no_constant(name: str) -> Any:
    raise InputError(f"it holds {name}, which is not a number")


def parse_json(data: str | bytes, what: str) -> Any:
    """JSON with short whole numbers, no NaN/Infinity, at most :data:`MAX_JSON_DEPTH` deep, and
    valid text throughout (keys too)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, parse_int=_short_int, parse_constant=_no_constant)
    except InputError as exc:
        raise InputError(f"the {what} is not usable: {exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"the {what} is not UTF-8 text") from None
    except RecursionError:
        raise InputError(f"the {what} is nested too deeply (at most {MAX_JSON_DEPTH} levels)") from None
    except ValueError as exc:
        raise InputError(f"the {what} is not valid JSON ({shorten(str(exc), 120)})") from None
    check_tree(value, what)
    return value


def read_json(path: str | os.PathLike[str], what: str, limit: int = MAX_JSON_FILE_BYTES) -> Any:
    return parse_json(read_file(path, what, limit), f"{what} {shorten(str(path), 200)}")


def check_tree(value: Any, what: str) -> None:
    """Depth and text of a parsed JSON value (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InputError(f"the {what} is nested too deeply (at most {MAX_JSON_DEPTH} levels)")
        if isinstance(item, str):
            problem = text_problem(item, "a text in it")
            if problem:
                raise InputError(f"the {what} is not usable: {problem}")
        elif isinstance(item, dict):
            for key, inner in item.items():
                stack.append((key, depth + 1))
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)


def text_problem(value: str, what: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    """Why ``value`` cannot be used as text (a prompt, a name), or ``None``."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        hint = f" (the byte 0x{ord(bad) - 0xDC00:02x} from the shell?)" if 0xDC80 <= ord(bad) <= 0xDCFF else ""
        return (f"{what} has a character that is not valid text at position {exc.start + 1}{hint}; "
                "type it again or save it as UTF-8")
    if "\x00" in value:
        return f"{what} contains a NUL character at position {value.index(chr(0)) + 1}"
    if len(value) > limit:
        return f"{what} is {len(value):,} characters long; at most {limit:,}"
    return None


def check_text(value: str, what: str, limit: int = MAX_TEXT_CHARS) -> str:
    problem = text_problem(value, what, limit)
    if problem:
        raise InputError(problem)
    return value


def one_line(message: str, limit: int = 500) -> str:
    """A message as the single line a refusal is: line breaks folded, cut to about ``limit``
    characters (an echoed 10 MB value never reaches the terminal whole)."""
    text = " ".join(str(message).encode("utf-8", "backslashreplace").decode("utf-8").split())
    if len(text) > limit:
        text = f"{text[:limit - 60]} … {text[-50:]}"
    return text


def path_problem(text: str, what: str) -> str | None:
    """Why ``text`` cannot name a file at all (NUL, a name longer than file systems allow), or
    ``None``; such names used to fail deep inside a command with "File name too long"."""
    if "\x00" in text:
        return f"{what} contains a NUL character"
    try:
        encoded = os.fsencode(text)
    except UnicodeEncodeError:  # a lone surrogate no file system name can hold
        return f"{what} {shorten(text, 40)} has a character that cannot be in a file name"
    if len(encoded) > 4096 or any(len(part) > 255 for part in encoded.replace(b"\\", b"/").split(b"/")):
        return f"{what} {shorten(text, 40)} is too long to be a file name"
    return None
