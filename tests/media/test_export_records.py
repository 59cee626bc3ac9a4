"""Exports leave a trace in the library (issue 13, defect 14): `shotsketch export` / `timeline` and the
export service record them, a moved or deleted one is marked, and it can be written again."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from shotsketch.app.exports import ExportRequest, export_clip, reexport
from shotsketch.cli import main
from shotsketch.core import paths
from shotsketch.core.library import DB_NAME, Library
from shotsketch.media.encode import ClipFormat, DestinationNotWritable, write_clip
from shotsketch.media.probe import probe_video
from shotsketch.media.sidecar import read_sidecar

RECIPE = {"schema_version": 1, "request": {"prompt": "a kite rises over the dunes", "seed": 3}}


def frames(count: int = 9) -> np.ndarray:
    data = np.zeros((count, 48, 64, 3), np.uint8)
    for i in range(count):
        data[i, :, : 4 + 4 * i] = 220
    return data


@pytest.fixture
def library_take():
    """A take in the user's library (the one the CLI finds), and the library."""
    lib = Library.open(paths.data_dir() / DB_NAME)
    shot = lib.create_shot(lib.create_project("Film").id, "Kite")
    variant = lib.create_variant(shot.id, RECIPE["request"]["prompt"])
    clip = write_clip(frames(), lib.new_media_path())
    take = lib.add_take(variant.id, clip, RECIPE)
    yield lib, take
    lib.close()


def test_cli_export_of_a_library_take_is_recorded_and_found(library_take, tmp_path, capsys):
    lib, take = library_take
    out = tmp_path / "Kite final.mov"
    assert main(["export", str(take.file), "--format", "prores", "--out", str(out)]) == 0
    assert f"export of take {take.id}" in capsys.readouterr().out
    [export] = lib.list_exports(take.id)
    assert (export.format, export.file, export.fps, export.timeline) == ("prores", out.resolve(), 24, None)
    assert lib.search_exports("kite final") == [export]
    assert [v.id for v in lib.search("final")] == [take.variant_id]
    # the timeline it is put on is noted on it
    assert main(["timeline", str(out), "--out", str(tmp_path / "Cut.xml")]) == 0
    assert "1 of them noted in the library" in capsys.readouterr().out
    assert lib.get_export(export.id).timeline == (tmp_path / "Cut.xml").resolve()


def test_cli_export_of_a_clip_outside_the_library_records_nothing(tmp_path, capsys):
    clip = write_clip(frames(), tmp_path / "loose.mp4")
    assert main(["export", str(clip), "--format", "mp4", "--out", str(tmp_path / "copy.mp4")]) == 0
    assert "library" not in capsys.readouterr().out
    assert not (paths.data_dir(create=False) / DB_NAME).exists()  # no library made just for this


def test_a_take_clip_put_on_a_timeline_is_noted(library_take, tmp_path, capsys):
    lib, take = library_take
    assert main(["timeline", str(take.file), "--out", str(tmp_path / "Cut.otio")]) == 0
    [export] = lib.list_exports(take.id)
    assert export.file == take.file.resolve() and export.timeline == (tmp_path / "Cut.otio").resolve()


def test_reexport_writes_a_deleted_export_again_where_it_was(library_take, tmp_path):
    lib, take = library_take
    folder = tmp_path / "exports"
    folder.mkdir()
    first = export_clip(ExportRequest(take.file, folder / "kite.gif", ClipFormat.GIF, fps=12.5, take_id=take.id),
                        library=lib)
    assert first.export is not None and not first.export.missing
    first.path.unlink()
    [export] = lib.list_exports(take.id)
    assert export.missing  # the view marks it
    again = reexport(lib, export.id)
    assert again.path == folder / "kite.gif" and not lib.get_export(export.id).missing
    info = probe_video(again.path)
    assert info.codec == "gif" and info.frames == 9 and float(info.rate) == 12.5  # same format and rate
    assert read_sidecar(again.path)["request"] == RECIPE["request"]
    assert [e.id for e in lib.list_exports(take.id)] == [export.id]  # the same row, not a second one


def test_reexport_into_a_removed_folder_asks_first(library_take, tmp_path):
    lib, take = library_take
    folder = tmp_path / "gone"
    folder.mkdir()
    done = export_clip(ExportRequest(take.file, folder / "kite.mp4", ClipFormat.MP4, take_id=take.id), library=lib)
    shutil.rmtree(folder)
    with pytest.raises(DestinationNotWritable, match="is gone too"):
        reexport(lib, done.export.id)
    assert not folder.exists()
    assert reexport(lib, done.export.id, create_folder=True).path.is_file()


def test_a_gif_of_a_library_take_on_a_timeline_points_back_to_the_take(library_take, tmp_path, capsys,
                                                                         monkeypatch):
    lib, take = library_take
    monkeypatch.chdir(tmp_path.parent)
    gif = tmp_path / "kite.gif"
    assert main(["export", str(take.file), "--format", "gif", "--out", str(gif)]) == 0
    other = write_clip(frames(), tmp_path / "other.mp4")
    capsys.readouterr()
    assert main(["timeline", str(other), str(gif), "--out", str(tmp_path / "cut.edl")]) == 2
    err = capsys.readouterr().err
    command = shlex.split(re.search(r"`shotsketch (export [^`]+)`", err).group(1))
    assert command[1] == str(take.file)  # the take itself, in full colour, not the GIF
    assert main(command) == 0
    fixed = Path(command[command.index("--out") + 1])
    assert fixed == tmp_path / "kite.mp4"  # beside the GIF, not in the library's media folder
    assert main(["timeline", str(other), str(fixed), "--out", str(tmp_path / "cut.edl")]) == 0


def test_a_library_that_cannot_be_opened_is_said_and_the_export_still_written(tmp_path, capsys):
    library_file = paths.data_dir() / DB_NAME
    library_file.write_bytes(b"this is not a database" * 10)
    clip = write_clip(frames(), tmp_path / "loose.mp4")
    assert main(["export", str(clip), "--format", "mp4", "--out", str(tmp_path / "copy.mp4")]) == 0
    err = capsys.readouterr().err
    assert "damaged" in err and "without recording in the library" in err
    assert (tmp_path / "copy.mp4").is_file()
