import errno
import json
import logging
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from shotsketch.media import encode
from shotsketch.media.encode import (
    ClipFormat,
    DestinationExists,
    DestinationNotWritable,
    DiskFull,
    EncodeCancelled,
    EncodeError,
    FfmpegFailed,
    MissingSource,
    export_take,
    frame_geometry,
    free_name,
    read_container_metadata,
    read_frames,
    write_clip,
)
from shotsketch.media.probe import parse_stream_line, probe_video

# format -> (codec, profile, pix_fmt, expected size for 65x49 input)
EXPECTED = {
    ClipFormat.MP4: ("h264", "High", "yuv420p", (66, 50)),
    ClipFormat.PRORES: ("prores", "HQ", "yuv422p10le", (66, 50)),
    ClipFormat.DNXHR: ("dnxhd", "DNXHR HQ", "yuv422p", (260, 196)),
    ClipFormat.GIF: ("gif", "", None, (65, 49)),
}


@pytest.mark.parametrize("fmt", list(EXPECTED), ids=lambda f: f.value)
def test_each_format_decodes_with_the_right_codec_profile_pixfmt_size_and_count(tmp_path, frames, fmt, media_helpers):
    codec, profile, pix_fmt, (w, h) = EXPECTED[fmt]
    dest = tmp_path / f"clip{fmt.extension}"
    calls = []
    out = write_clip(frames, dest, fmt=fmt, progress=lambda d, t: calls.append((d, t)))
    assert out == dest and dest.is_file()
    assert calls == [(i, 9) for i in range(1, 10)]
    info = probe_video(dest)
    assert (info.codec, info.profile, info.width, info.height, info.frames) == (codec, profile, w, h, 9)
    # GIF delays are whole 1/100 s: 24 fps becomes 4/100 s a frame, i.e. 25 fps
    assert info.fps == pytest.approx(25.0 if fmt is ClipFormat.GIF else 24.0)
    if pix_fmt:
        assert info.pix_fmt == pix_fmt
    raw = media_helpers.ffmpeg_stderr(dest)
    assert f"Video: {codec}" in raw and f"{w}x{h}" in raw
    if fmt is not ClipFormat.GIF:
        assert "bt709" in raw  # tagged, so editors decode with the matrix we encoded with
    assert media_helpers.leftovers(tmp_path) == []


def test_prores_is_written_with_apple_vendor_id(tmp_path, frames, media_helpers):
    dest = write_clip(frames, tmp_path / "c.mov", fmt="prores")
    assert b"apl0" in dest.read_bytes()
    assert "prores (HQ) (apch" in media_helpers.ffmpeg_stderr(dest)


def test_mp4_has_faststart_moov_before_mdat(tmp_path, frames):
    data = write_clip(frames, tmp_path / "c.mp4").read_bytes()
    assert 0 < data.index(b"moov") < data.index(b"mdat")


def test_png_sequence_is_a_folder_of_numbered_lossless_frames(tmp_path, frames, media_helpers):
    dest = write_clip(frames, tmp_path / "shot", fmt=ClipFormat.PNG)
    names = sorted(p.name for p in dest.iterdir())
    assert names == [f"frame_{i:05d}.png" for i in range(1, 10)]
    np.testing.assert_array_equal(read_frames(dest), frames)
    assert media_helpers.leftovers(tmp_path) == []


def test_lossy_formats_keep_the_picture_and_the_colours(tmp_path, frames):
    for fmt in (ClipFormat.MP4, ClipFormat.PRORES, ClipFormat.DNXHR):
        decoded = read_frames(write_clip(frames, tmp_path / f"c-{fmt.value}{fmt.extension}", fmt=fmt))
        g = frame_geometry(fmt, 65, 49)
        crop = decoded[:, : 49 * g.scale : g.scale, : 65 * g.scale : g.scale]
        err = np.abs(crop.astype(int) - frames.astype(int)).mean()
        assert err < 4, (fmt, err)  # a BT.601/709 mismatch alone gives ~5-10


def test_gif_palette_is_made_from_the_clip(tmp_path):
    # a few flat colours fit in one palette, so a per-clip palette reproduces them exactly
    colours = np.array([[200, 30, 90], [10, 120, 240], [250, 250, 20], [30, 30, 30]], np.uint8)
    frames = np.empty((5, 49, 65, 3), np.uint8)
    for i in range(5):
        frames[i, :, :32] = colours[i % 4]
        frames[i, :, 32:] = colours[(i + 1) % 4]
    decoded = read_frames(write_clip(frames, tmp_path / "c.gif", fmt="gif"))
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames.astype(int)).max() <= 3


def test_frame_rate_is_written(tmp_path, frames):
    assert probe_video(write_clip(frames, tmp_path / "c16.mp4", fps=16)).fps == pytest.approx(16)
    ntsc = probe_video(write_clip(frames, tmp_path / "c.mov", fmt="prores", fps=24000 / 1001))
    assert float(ntsc.rate) == pytest.approx(24000 / 1001)


@pytest.mark.parametrize("fps", [0, -5, float("nan"), "fast"])
def test_bad_frame_rate_is_refused_before_anything_is_written(tmp_path, frames, fps):
    with pytest.raises(EncodeError, match="frame rate"):
        write_clip(frames, tmp_path / "c.mp4", fps=fps)
    assert list(tmp_path.iterdir()) == []


def test_geometry_rules():
    assert frame_geometry(ClipFormat.MP4, 64, 48) == encode.FrameGeometry(64, 48)
    g = frame_geometry(ClipFormat.MP4, 65, 49)
    assert (g.out_width, g.out_height) == (66, 50)
    g = frame_geometry(ClipFormat.DNXHR, 832, 480)
    assert (g.scale, g.out_width, g.out_height) == (1, 832, 480)
    g = frame_geometry(ClipFormat.DNXHR, 64, 48)
    assert (g.scale, g.out_width, g.out_height) == (4, 256, 192)
    g = frame_geometry(ClipFormat.GIF, 65, 49)
    assert not g.changes_frames
    frame = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = encode.FrameGeometry(3, 2, 2, 0, 1).apply(frame)
    assert out.shape == (5, 6, 3)
    np.testing.assert_array_equal(out[4], out[3])  # padding repeats the edge, no black line


def test_format_parse_and_extensions():
    assert ClipFormat.parse("ProRes") is ClipFormat.PRORES
    assert ClipFormat.parse(" MP4 ") is ClipFormat.MP4
    assert ClipFormat.parse(ClipFormat.GIF) is ClipFormat.GIF
    assert [f.extension for f in ClipFormat] == [".mp4", ".mov", ".mov", "", ".gif"]
    assert ClipFormat.PNG.is_sequence and not ClipFormat.MP4.is_sequence
    with pytest.raises(ValueError, match="mp4, prores, dnxhr, png, gif"):
        ClipFormat.parse("webm")


def test_bad_frames_are_refused(tmp_path):
    with pytest.raises(EncodeError, match=r"\[count, height, width, 3\]"):
        write_clip(np.zeros((4, 8, 8), np.uint8), tmp_path / "c.mp4")
    with pytest.raises(EncodeError, match="8-bit"):
        write_clip(np.zeros((2, 8, 8, 3), np.float32), tmp_path / "c.mp4")


# ----------------------------------------------------------------------------- metadata
RECIPE = {"schema_version": 1, "request": {"prompt": "a fox = fast; #1 \\ runs é\nleft to right", "seed": 7}}


@pytest.mark.parametrize("fmt", [ClipFormat.MP4, ClipFormat.PRORES, ClipFormat.DNXHR], ids=lambda f: f.value)
def test_recipe_round_trips_through_container_tags(tmp_path, frames, fmt):
    from shotsketch.media.sidecar import container_tags, recipe_from_tags

    tags = container_tags(RECIPE)
    dest = write_clip(frames, tmp_path / f"c{fmt.extension}", fmt=fmt, metadata=tags)
    back = read_container_metadata(dest)
    assert back["title"] == RECIPE["request"]["prompt"]
    assert recipe_from_tags(back) == RECIPE


def test_custom_tags_survive_too(tmp_path, frames):
    dest = write_clip(frames, tmp_path / "c.mp4", metadata={"shotsketch_take": "t-42"})
    assert read_container_metadata(dest)["shotsketch_take"] == "t-42"


def test_ffmetadata_parser_handles_escapes():
    text = ";FFMETADATA1\ntitle=a\\=b\\;c\\#d\\\\e\\\nsecond line\nempty=\n[STREAM]\ntitle=stream\n"
    assert encode._parse_ffmetadata(text) == {"title": "a=b;c#d\\e\nsecond line", "empty": ""}


def test_stream_line_parser_reads_ffmpeg_output():
    line = ("  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), "
            "66x50 [SAR 1:1 DAR 33:25], 47 kb/s, 23.98 fps, 23.98 tbr, 24k tbn (default)")
    assert parse_stream_line(line) == {"codec": "h264", "profile": "High", "pix_fmt": "yuv420p",
                                       "width": 66, "height": 50, "fps": 23.98}


# ----------------------------------------------------------------------------- destinations
def test_existing_destination_is_an_error_by_default_and_untouched(tmp_path, frames, media_helpers):
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"precious")
    with pytest.raises(DestinationExists, match="already exists") as info:
        write_clip(frames, dest)
    assert info.value.path == dest
    assert dest.read_bytes() == b"precious"
    assert media_helpers.leftovers(tmp_path) == []


def test_overwrite_replaces_the_file(tmp_path, frames):
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"old")
    assert write_clip(frames, dest, on_exists="overwrite") == dest
    assert probe_video(dest).frames == 9


def test_number_picks_the_next_free_name(tmp_path, frames):
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"one")
    second = write_clip(frames, dest, on_exists="number")
    third = write_clip(frames, dest, on_exists="number")
    assert (second.name, third.name) == ("clip (2).mp4", "clip (3).mp4")
    assert dest.read_bytes() == b"one" and probe_video(third).frames == 9


def test_png_folder_number_and_overwrite(tmp_path, frames, media_helpers):
    first = write_clip(frames, tmp_path / "seq", fmt="png")
    second = write_clip(frames[:3], tmp_path / "seq", fmt="png", on_exists="number")
    assert second.name == "seq (2)" and len(list(second.iterdir())) == 3
    with pytest.raises(DestinationExists):
        write_clip(frames, first, fmt="png")
    write_clip(frames[:2], first, fmt="png", on_exists="overwrite")
    assert sorted(p.name for p in first.iterdir()) == ["frame_00001.png", "frame_00002.png"]
    assert media_helpers.leftovers(tmp_path) == []


def test_overwrite_will_not_swap_a_folder_for_a_file(tmp_path, frames):
    (tmp_path / "x.mp4").mkdir()
    with pytest.raises(EncodeError, match="is a folder"):
        write_clip(frames, tmp_path / "x.mp4", on_exists="overwrite")


def test_free_name():
    assert free_name(Path("/nonexistent-dir/a.mp4")) == Path("/nonexistent-dir/a.mp4")


def test_missing_folder_is_a_clear_error(tmp_path, frames):
    with pytest.raises(DestinationNotWritable, match="does not exist"):
        write_clip(frames, tmp_path / "nope" / "c.mp4")


def test_unwritable_folder_simulated(tmp_path, frames, monkeypatch):
    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(encode.leftovers, "create_file", denied)
    with pytest.raises(DestinationNotWritable, match="cannot write into .*choose another folder"):
        write_clip(frames, tmp_path / "c.mp4")
    assert list(tmp_path.iterdir()) == []


def test_read_only_mount_is_a_clear_error(tmp_path, frames, media_helpers):
    with media_helpers.tiny_tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        with pytest.raises(DestinationNotWritable, match="read-only"):
            write_clip(frames, ro / "c.mp4")
        assert list(ro.iterdir()) == []


@pytest.mark.parametrize("fmt", [ClipFormat.PRORES, ClipFormat.PNG], ids=lambda f: f.value)
def test_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path, fmt, media_helpers):
    # a real ENOSPC from a 64 KiB tmpfs; ffmpeg sees it first and says so on stderr
    big = np.random.default_rng(1).integers(0, 256, (9, 120, 160, 3), dtype=np.uint8)  # noise: incompressible
    with media_helpers.tiny_tmpfs(tmp_path / "small", "64k") as small:
        with pytest.raises(DiskFull, match="is full; free some space"):
            write_clip(big, small / f"c{fmt.extension}", fmt=fmt)
        assert list(small.iterdir()) == []


def test_full_disk_reported_by_ffmpeg_simulated(tmp_path, frames, monkeypatch):
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'av_interleaved_write_frame(): No space left on device' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(encode, "ffmpeg_exe", lambda: str(fake))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DiskFull):
        write_clip(frames, out / "c.mp4")
    assert list(out.iterdir()) == []


def test_full_disk_on_the_final_rename_simulated(tmp_path, frames, monkeypatch):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(encode.os, "link", full)
    monkeypatch.setattr(encode.os, "replace", full)
    with pytest.raises(DiskFull):
        write_clip(frames, tmp_path / "c.mp4")
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_failure_is_one_sentence_and_the_detail_is_logged(tmp_path, frames, monkeypatch, caplog):
    args = dict(encode._CODEC_ARGS)
    args[ClipFormat.MP4] = ["-c:v", "no_such_codec_xyz", "-f", "mp4"]
    monkeypatch.setattr(encode, "_CODEC_ARGS", args)
    with caplog.at_level(logging.ERROR, logger="shotsketch.media.encode"):
        with pytest.raises(FfmpegFailed) as info:
            write_clip(frames, tmp_path / "c.mp4")
    message = str(info.value)
    assert "\n" not in message and "c.mp4" in message and "log" in message
    assert "no_such_codec_xyz" in caplog.text  # ffmpeg's own words go to the log
    assert "no_such_codec_xyz" in info.value.details
    assert list(tmp_path.iterdir()) == []


def test_cancel_stops_and_leaves_nothing(tmp_path, frames):
    seen = []
    with pytest.raises(EncodeCancelled):
        write_clip(frames, tmp_path / "c.mp4", progress=lambda d, t: seen.append(d), cancelled=lambda: len(seen) >= 3)
    assert seen == [1, 2, 3]
    assert list(tmp_path.iterdir()) == []


def test_cancel_png_sequence_leaves_no_folder(tmp_path, frames):
    with pytest.raises(EncodeCancelled):
        write_clip(frames, tmp_path / "seq", fmt="png", cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- export
def test_export_take_reencodes_and_keeps_tags(tmp_path, frames):
    src = write_clip(frames, tmp_path / "take.mp4", metadata={"title": "fox", "comment": json.dumps(RECIPE)})
    seen = []
    out = export_take(src, tmp_path / "take.mov", "dnxhr", progress=lambda d, t: seen.append((d, t)))
    info = probe_video(out)
    assert (info.codec, info.profile, info.frames) == ("dnxhd", "DNXHR HQ", 9)
    assert seen[-1] == (9, 9)
    assert read_container_metadata(out)["title"] == "fox"


def test_export_take_can_retime(tmp_path, frames):
    src = write_clip(frames, tmp_path / "take.mp4")
    out = export_take(src, tmp_path / "slow.mp4", ClipFormat.MP4, fps=16)
    info = probe_video(out)
    assert info.fps == pytest.approx(16) and info.frames == 9


def test_export_from_png_sequence(tmp_path, frames):
    seq = write_clip(frames, tmp_path / "seq", fmt="png")
    out = export_take(seq, tmp_path / "seq.gif", "gif")
    assert probe_video(out).frames == 9


def test_export_of_a_deleted_take_is_a_clear_error(tmp_path):
    with pytest.raises(MissingSource, match="missing .deleted or moved"):
        export_take(tmp_path / "gone.mp4", tmp_path / "out.mov", "prores")
    assert list(tmp_path.iterdir()) == []


def test_export_of_a_non_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(EncodeError, match="could not be read as a video"):
        export_take(bad, tmp_path / "out.mp4", "mp4")
    assert sorted(os.listdir(tmp_path)) == ["notes.mp4"]


def test_export_onto_itself_is_refused(tmp_path, frames):
    src = write_clip(frames, tmp_path / "take.mp4")
    with pytest.raises(EncodeError, match="onto itself"):
        export_take(src, src, "mp4", on_exists="overwrite")
    assert probe_video(src).frames == 9


def test_outputs_get_ordinary_permissions_not_temp_file_ones(tmp_path, frames):
    old = os.umask(0o022)
    try:
        clip = write_clip(frames, tmp_path / "c.mp4")
        seq = write_clip(frames[:2], tmp_path / "seq", fmt="png")
    finally:
        os.umask(old)
    assert stat.S_IMODE(clip.stat().st_mode) == 0o644
    assert stat.S_IMODE(seq.stat().st_mode) == 0o755
