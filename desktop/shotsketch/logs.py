"""Logging: a rotating file in the platformdirs log dir; stderr only when asked."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

import platformdirs

APP = "Shotsketch"
_file_handler: logging.Handler | None = None
_file_path: Path | None = None
_console: logging.Handler | None = None


def log_file() -> Path:
    base = os.environ.get("SHOTSKETCH_LOG_DIR") or platformdirs.user_log_dir(APP, appauthor=False)
    return Path(base) / "shotsketch.log"


def setup_logging(verbose: bool = False) -> None:
    """Log to :func:`log_file`. Calling it again after the log dir changed moves the file handler."""
    global _file_handler, _file_path, _console
    root = logging.getLogger("shotsketch")
    root.setLevel(logging.DEBUG)
    path = log_file()
    if path != _file_path:
        if _file_handler is not None:
            root.removeHandler(_file_handler)
            _file_handler.close()
            _file_handler = None
        _file_path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root.addHandler(handler)
            _file_handler = handler
        except OSError:
            pass  # an unwritable log dir must not stop the app
    if verbose and _console is None:
        _console = logging.StreamHandler()
        _console.setLevel(logging.INFO)
        _console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(_console)
