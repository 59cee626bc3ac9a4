import json
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from shotsketch.media.encode import write_clip
from shotsketch.media.timeline import (
    ClipInfo,
    MissingClip,
    MixedFrameRates,
    TimelineError,
    TimelineExists,
    UnknownTimelineFormat,
    probe_clip,
    reel_name,
    write_timeline,
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("takes")
    a = write_clip(np.full((9, 48, 64, 3), 60, np.uint8), folder / "fox runs left.mp4")
    b = write_clip(np.full((13, 49, 65, 3), 120, np.uint8), folder / "b.mov", fmt="prores")
    c = write_clip(np.full((17, 48, 64, 3), 200, np.uint8), folder / "c.mov", fmt="dnxhr")
    return [a, b, c]


def test_probe_clip(clips):
    info = probe_clip(clips[1])
    assert info == ClipInfo(clips[1].resolve(), 13, 24.0, 66, 50)
    assert info.duration_s == pytest.approx(13 / 24)


def test_otio_round_trip(clips, tmp_path):
    out = write_timeline([clips[0], clips[1], clips[2], clips[0]], tmp_path / "cut.otio", name="Fox cut")
    tl = otio.adapters.read_from_file(str(out))
    assert tl.name == "Fox cut"
    items = list(tl.find_clips())
    assert [c.source_range.duration.value for c in items] == [9, 13, 17, 9]
    assert {c.source_range.duration.rate for c in items} == {24}
    paths = [Path(otio.url_utils.filepath_from_url(c.media_reference.target_url)) for c in items]
    assert paths == [clips[0], clips[1], clips[2], clips[0]] and all(p.is_absolute() for p in paths)
    assert tl.global_start_time == otio.opentime.from_timecode("01:00:00:00", 24)
    assert tl.duration().value == 48


def test_fcp_xml_round_trip(clips, tmp_path):
    out = write_timeline(clips, tmp_path / "cut.xml")
    assert out.read_text().startswith("<?xml")
    tl = otio.adapters.read_from_file(str(out), adapter_name="fcp_xml")
    items = list(tl.find_clips())
    assert [c.name for c in items] == [p.name for p in clips]
    assert [c.source_range.duration.value for c in items] == [9, 13, 17]
    urls = [c.media_reference.target_url for c in items]
    assert urls == [p.resolve().as_uri() for p in clips]


def test_edl_round_trip(clips, tmp_path):
    out = write_timeline(clips, tmp_path / "cut.edl", name="Fox")
    text = out.read_text()
    assert text.startswith("TITLE: Fox")
    assert f"* FROM CLIP: {clips[0]}" in text and "* FROM CLIP NAME:  fox runs left.mp4" in text
    tl = otio.adapters.read_from_file(str(out), adapter_name="cmx_3600", rate=24)
    items = list(tl.find_clips())
    assert [c.source_range.duration.value for c in items] == [9, 13, 17]
    assert [c.media_reference.target_url for c in items] == [str(p) for p in clips]


def test_reel_names_have_no_spaces():
    assert reel_name(Path("/x/fox runs left.mp4")) == "fox_runs"
    assert reel_name(Path("/x/%%%.mov")) == "AX"


def test_mixed_frame_rates_are_refused(clips, tmp_path):
    slow = write_clip(np.zeros((9, 48, 64, 3), np.uint8), tmp_path / "slow.mp4", fps=16)
    with pytest.raises(MixedFrameRates, match=r"slow.mp4 is 16 fps .* 24 fps.*--fps 24"):
        write_timeline([clips[0], slow], tmp_path / "cut.edl")
    assert not (tmp_path / "cut.edl").exists()


def test_missing_clip_is_named(clips, tmp_path):
    with pytest.raises(MissingClip, match="gone.mp4 does not exist"):
        write_timeline([clips[0], tmp_path / "gone.mp4"], tmp_path / "cut.otio")
    assert not (tmp_path / "cut.otio").exists()


def test_unknown_extension(clips, tmp_path):
    with pytest.raises(UnknownTimelineFormat, match=r"\.otio, \.xml .* \.edl"):
        write_timeline(clips, tmp_path / "cut.aaf")
    assert list(tmp_path.iterdir()) == []


def test_not_a_video_and_png_folder(clips, tmp_path):
    note = tmp_path / "note.mp4"
    note.write_text("hello")
    with pytest.raises(TimelineError, match="note.mp4"):
        write_timeline([note], tmp_path / "cut.otio")
    seq = write_clip(np.zeros((3, 8, 8, 3), np.uint8), tmp_path / "seq", fmt="png")
    with pytest.raises(TimelineError, match="folder"):
        write_timeline([seq], tmp_path / "cut.otio")
    assert not (tmp_path / "cut.otio").exists()


def test_existing_timeline_respects_overwrite(clips, tmp_path):
    out = tmp_path / "cut.otio"
    out.write_text("keep")
    with pytest.raises(TimelineExists):
        write_timeline(clips, out, overwrite=False)
    assert out.read_text() == "keep"
    write_timeline(clips, out)
    assert json.loads(out.read_text())["OTIO_SCHEMA"].startswith("Timeline")


def test_write_is_atomic_when_the_adapter_fails(clips, tmp_path, monkeypatch):
    out = tmp_path / "cut.xml"
    out.write_text("previous")

    def broken(*a, **k):
        raise RuntimeError("adapter exploded")

    monkeypatch.setattr(otio.adapters, "write_to_string", broken)
    with pytest.raises(TimelineError, match="could not write cut.xml"):
        write_timeline(clips, out)
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.xml"]
