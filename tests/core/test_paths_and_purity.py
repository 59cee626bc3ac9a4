from __future__ import annotations

import subprocess
import sys

from shotsketch.core import paths


def test_dirs_follow_the_environment(tmp_path, monkeypatch):
    assert paths.data_dir() == tmp_path / "data" and (tmp_path / "data").is_dir()
    assert paths.config_dir() == tmp_path / "config"
    assert paths.cache_dir() == tmp_path / "cache"
    assert paths.media_dir() == tmp_path / "data" / "media" and paths.media_dir().is_dir()
    monkeypatch.setenv("SHOTSKETCH_DATA_DIR", str(tmp_path / "elsewhere"))
    assert paths.data_dir(create=False) == tmp_path / "elsewhere" and not (tmp_path / "elsewhere").exists()


def test_default_dirs_are_platformdirs_shotsketch(monkeypatch):
    for var in ("SHOTSKETCH_DATA_DIR", "SHOTSKETCH_CONFIG_DIR", "SHOTSKETCH_CACHE_DIR"):
        monkeypatch.delenv(var)
    assert paths.data_dir(create=False).name == "Shotsketch"
    assert "Shotsketch" in paths.cache_dir(create=False).parts


def test_core_imports_no_qt_torch_or_numpy():
    code = (
        "import sys\n"
        "import shotsketch.core.layout, shotsketch.core.phrasing, shotsketch.core.lint, shotsketch.core.library\n"
        "import shotsketch.core.paths, shotsketch.core.examples, shotsketch.core.atomic\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'torch', 'numpy', 'diffusers'))\n"
        "ours = sorted(m for m in sys.modules if m.startswith('shotsketch.') and not m.startswith('shotsketch.core'))\n"
        "print(bad, ours)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"


def test_a_damaged_settings_file_is_set_aside_and_defaults_are_used(tmp_path):
    """Not overwritten by the next save: the person's file is kept beside it as settings.json.damaged."""
    from shotsketch.core.settings import AppSettings, load_settings, save_settings

    path = tmp_path / "settings.json"
    path.write_text('{"default_steps": 30, ')  # cut off mid-write by an older version
    assert load_settings(path) == AppSettings()
    assert not path.exists()
    assert (tmp_path / "settings.json.damaged").read_text() == '{"default_steps": 30, '
    save_settings(AppSettings(), path)
    assert (tmp_path / "settings.json.damaged").read_text() == '{"default_steps": 30, '
