import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own settings, data, cache and log folders: nothing touches the user's."""
    base = tmp_path_factory.mktemp("home")
    for name in ("CONFIG", "DATA", "CACHE", "LOG"):
        monkeypatch.setenv(f"SHOTSKETCH_{name}_DIR", str(base / name.lower()))
    monkeypatch.setenv("HF_HUB_CACHE", str(base / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def saved_demo_folder(tmp_path_factory):
    """The demo pipeline written with save_pretrained (safetensors), as a user's model folder would be."""
    from shotsketch.engine.demo import build_pipeline

    folder = tmp_path_factory.mktemp("model") / "wan-tiny"
    build_pipeline().save_pretrained(folder, safe_serialization=True)
    return folder
