"""Defect 13: started without a person at the screen (offscreen, a screenshot run), a damaged
library is logged and kept aside and the app goes on; no modal window waits for a click."""

from __future__ import annotations

import pytest

from shotsketch.core.library import DB_NAME, Library


@pytest.fixture
def damaged_library():
    from shotsketch.core import paths

    path = paths.data_dir() / DB_NAME
    with Library.open(path) as lib:
        lib.create_project("Film")
    path.write_bytes(b"not a database any more" * 50)
    return path


def test_an_offscreen_start_on_a_damaged_library_goes_on_without_a_modal(qapp, damaged_library, monkeypatch, caplog):
    from PySide6.QtWidgets import QMessageBox

    from shotsketch.ui import app as ui_app

    def modal(*args, **kwargs):
        raise AssertionError("a modal window would wait for a click that never comes")

    monkeypatch.setattr(QMessageBox, "warning", modal)
    monkeypatch.setattr(QMessageBox, "critical", modal)
    library = ui_app.open_library(interactive=ui_app.has_a_person_at_the_screen(screenshot=False))
    assert library is not None and library.recovered_from is None
    assert list(damaged_library.parent.glob(f"{DB_NAME}.damaged-*"))
    assert "damaged" in caplog.text
    library.close()
