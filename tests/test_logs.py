import logging

from shotsketch.logs import log_file, setup_logging


def test_log_file_follows_the_log_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOTSKETCH_LOG_DIR", str(tmp_path / "a"))
    setup_logging()
    logging.getLogger("shotsketch.test").warning("first")
    monkeypatch.setenv("SHOTSKETCH_LOG_DIR", str(tmp_path / "b"))
    setup_logging()
    logging.getLogger("shotsketch.test").warning("second")
    assert "first" in (tmp_path / "a" / "shotsketch.log").read_text()
    second = log_file().read_text()
    assert "second" in second and "first" not in second
