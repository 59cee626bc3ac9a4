"""The library keeps the clips exported from takes (issue 13, defect 14): what, where, for which timeline, when."""

from __future__ import annotations

import sqlite3

import pytest

from shotsketch.core.library import DB_NAME, Library, LibraryError


@pytest.fixture
def lib(tmp_path):
    library = Library.open(tmp_path / "lib" / DB_NAME)
    yield library
    library.close()


def a_take(lib: Library, prompt: str = "a red kite over the dunes"):
    project = lib.create_project("Film")
    shot = lib.create_shot(project.id, "Kite")
    variant = lib.create_variant(shot.id, prompt)
    clip = lib.new_media_path()
    clip.write_bytes(b"clip")
    return variant, lib.add_take(variant.id, clip)


def test_an_export_is_recorded_listed_and_updated_when_written_again(lib, tmp_path):
    _variant, take = a_take(lib)
    out = tmp_path / "exports"
    out.mkdir()
    (out / "kite.mov").write_bytes(b"x")
    first = lib.add_export(take.id, "prores", out / "kite.mov", fps=24)
    assert (first.take_id, first.format, first.file, first.fps, first.timeline) == (
        take.id, "prores", (out / "kite.mov").resolve(), 24.0, None)
    assert not first.missing and first.created_at
    gif = lib.add_export(take.id, "gif", out / "kite.gif", fps=25)
    assert [e.id for e in lib.list_exports(take.id)] == [gif.id, first.id]  # newest first
    lib.set_export_timeline([first.id], out / "cut.xml")
    assert lib.get_export(first.id).timeline == (out / "cut.xml").resolve()
    again = lib.add_export(take.id, "prores", out / "kite.mov", fps=24)  # a re-export: same row
    assert again.id == first.id and again.timeline == (out / "cut.xml").resolve()
    assert [e.id for e in lib.list_exports(take.id)] == [first.id, gif.id]
    assert lib.exports_of_file(out / "kite.gif") == [gif]
    assert gif.missing  # nothing was written there
    lib.forget_export(gif.id)
    assert [e.id for e in lib.list_exports(take.id)] == [first.id]


def test_an_export_needs_a_take_and_goes_with_it(lib, tmp_path):
    with pytest.raises(LibraryError, match="Take 99"):
        lib.add_export(99, "mp4", tmp_path / "x.mp4")
    variant, take = a_take(lib)
    lib.add_export(take.id, "mp4", tmp_path / "x.mp4")
    lib.delete_shot(lib.get_variant(variant.id).shot_id)
    assert lib.exports_of_file(tmp_path / "x.mp4") == []


def test_search_finds_exports_and_their_variant(lib, tmp_path):
    variant, take = a_take(lib)
    other, _ = a_take(lib, "a blue boat")
    export = lib.add_export(take.id, "prores", tmp_path / "Final Grade v2.mov", timeline=tmp_path / "Festival cut.xml")
    assert lib.search_exports("final grade") == [export]
    assert lib.search_exports("festival") == [export]
    assert lib.search_exports("prores") == [export]
    assert lib.search_exports("boat") == [] and lib.search_exports("  ") == []
    assert [v.id for v in lib.search("final grade")] == [variant.id]  # the library panel's search
    assert [v.id for v in lib.search("boat")] == [other.id]


def test_the_take_of_a_clip_file(lib, tmp_path):
    _variant, take = a_take(lib)
    assert lib.find_take_by_file(take.file) == take
    assert lib.find_take_by_file(tmp_path / "elsewhere.mp4") is None


def test_an_older_library_gains_the_exports_table(tmp_path):
    path = tmp_path / DB_NAME
    with Library.open(path) as library:
        _variant, take = a_take(library)
    raw = sqlite3.connect(path)
    raw.executescript("DROP TABLE exports; PRAGMA user_version = 3;")
    raw.close()
    with Library.open(path) as library:
        assert library.list_exports(take.id) == []
        assert library.add_export(take.id, "mp4", tmp_path / "a.mp4").take_id == take.id


def test_a_re_export_in_the_same_millisecond_still_lists_first(lib, tmp_path, monkeypatch):
    """Two writes in one millisecond (a fast machine): the re-export is still the most recent."""
    from shotsketch.core import library as library_module

    monkeypatch.setattr(library_module, "_now", lambda: "2026-12-07T04:00:00.000+00:00")
    _variant, take = a_take(lib)
    out = tmp_path / "exports"
    out.mkdir()
    first = lib.add_export(take.id, "prores", out / "kite.mov", fps=24)
    gif = lib.add_export(take.id, "gif", out / "kite.gif", fps=25)
    assert [e.id for e in lib.list_exports(take.id)] == [gif.id, first.id]
    again = lib.add_export(take.id, "prores", out / "kite.mov", fps=24)
    assert [e.id for e in lib.list_exports(take.id)] == [again.id, gif.id]
    assert again.created_at > gif.created_at > first.created_at == "2026-12-07T04:00:00.000+00:00"
