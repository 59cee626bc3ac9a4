"""Core tests: no display, no GPU. Every test gets its own data/config/cache dirs."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOTSKETCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SHOTSKETCH_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SHOTSKETCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SHOTSKETCH_LOG_DIR", str(tmp_path / "logs"))
