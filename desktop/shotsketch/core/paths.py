"""Where Shotsketch keeps its files: platformdirs' user folders for "Shotsketch",
each overridable by an environment variable (tests point them at temporary folders)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "Shotsketch"

DATA_DIR_ENV = "SHOTSKETCH_DATA_DIR"
CONFIG_DIR_ENV = "SHOTSKETCH_CONFIG_DIR"
CACHE_DIR_ENV = "SHOTSKETCH_CACHE_DIR"


def _resolve(env: str, default: str, create: bool) -> Path:
    path = Path(os.environ.get(env) or default).expanduser()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(create: bool = True) -> Path:
    """The library database and the media folder live here."""
    return _resolve(DATA_DIR_ENV, platformdirs.user_data_dir(APP, appauthor=False), create)


def config_dir(create: bool = True) -> Path:
    return _resolve(CONFIG_DIR_ENV, platformdirs.user_config_dir(APP, appauthor=False), create)


def cache_dir(create: bool = True) -> Path:
    return _resolve(CACHE_DIR_ENV, platformdirs.user_cache_dir(APP, appauthor=False), create)


def media_dir(create: bool = True) -> Path:
    """Generated clips and thumbnails, beside the library database."""
    path = data_dir(create=create) / "media"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
