"""Logging: a rotating file in the platformdirs log dir; stderr only when asked."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

import platformdirs

APP = "Shotsketch"
_configured = False


def log_file() -> Path:
    base = os.environ.get("SHOTSKETCH_LOG_DIR") or platformdirs.user_log_dir(APP, appauthor=False)
    return Path(base) / "shotsketch.log"


def setup_logging(verbose: bool = False) -> None:
    global _configured
    if _configured:
        return
    _configured = True
    root = logging.getLogger("shotsketch")
    root.setLevel(logging.DEBUG)
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    except OSError:
        pass  # an unwritable log dir must not stop the app
    if verbose:
        console = logging.StreamHandler()
        console.setLevel(logging.INFO)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(console)
