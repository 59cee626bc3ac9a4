"""Editor interchange as editors read it (issue 13, defect 12).

- the EDL's record timecode starts at 01:00:00:00, like the OTIO and FCP 7 XML sequences;
- the FCP 7 XML has a real ``<format><samplecharacteristics>`` (width, height, rate) and one
  ``<rate>`` per clip item;
- a GIF is written at a rate a GIF can hold (frame times are whole hundredths of a second), and
  that rate is the one reported;
- a GIF on a timeline, or clips at two rates, get advice that works when it is followed.
"""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from shotsketch.cli import main
from shotsketch.media.encode import write_clip
from shotsketch.media.probe import probe_video
from shotsketch.media.timeline import TimelineError, write_timeline

W, H = 64, 48


def clip(path: Path, frames: int = 9, fps: float = 24, fmt: str = "mp4", size: tuple[int, int] = (W, H)) -> Path:
    data = np.zeros((frames, size[1], size[0], 3), np.uint8)
    for i in range(frames):
        data[i, :, : 4 + 3 * i] = 200  # frames differ
    return write_clip(data, path, fmt=fmt, fps=fps)


def gif_delays(path: Path) -> list[int]:
    """Each frame's delay in hundredths of a second, read from the GIF's graphic control blocks."""
    data = path.read_bytes()
    return [int.from_bytes(data[m.start() + 4:m.start() + 6], "little")
            for m in re.finditer(rb"\x21\xf9\x04", data)]


def edl_events(text: str) -> list[list[str]]:
    return [line.split()[-4:] for line in text.splitlines() if re.match(r"^\d{3}\s", line)]


# ----------------------------------------------------------------------------- EDL
def test_edl_record_timecode_starts_at_one_hour_like_otio_and_xml(tmp_path):
    a, b = clip(tmp_path / "a.mp4", 9), clip(tmp_path / "b.mp4", 13)
    events = edl_events(write_timeline([a, b], tmp_path / "cut.edl").read_text())
    assert events == [["00:00:00:00", "00:00:00:09", "01:00:00:00", "01:00:00:09"],
                      ["00:00:00:00", "00:00:00:13", "01:00:00:09", "01:00:00:22"]]
    otio_tl = otio.adapters.read_from_file(str(write_timeline([a, b], tmp_path / "cut.otio")))
    assert otio.opentime.to_timecode(otio_tl.global_start_time, 24) == "01:00:00:00"
    # editors (and OTIO's reader) still see the clips end to end at their full length
    read = otio.adapters.read_from_file(str(tmp_path / "cut.edl"), adapter_name="cmx_3600", rate=24)
    assert [c.source_range.duration.value for c in read.find_clips()] == [9, 13]
    assert [c.range_in_parent().start_time.value for c in read.find_clips()] == [0, 9]


def test_edl_at_29_97_keeps_drop_frame_timecode(tmp_path):
    a = clip(tmp_path / "a.mp4", 9, fps=30000 / 1001)
    events = edl_events(write_timeline([a, a], tmp_path / "cut.edl").read_text())
    assert [e[2:] for e in events] == [["01:00:00;00", "01:00:00;09"], ["01:00:00;09", "01:00:00;18"]]


# ----------------------------------------------------------------------------- FCP 7 XML
def test_fcp_xml_has_a_real_format_and_one_rate_per_clip_item(tmp_path):
    a = clip(tmp_path / "a.mp4", 9, size=(96, 64))
    b = clip(tmp_path / "b.mov", 13, fmt="prores", size=(96, 64))
    root = ET.fromstring(write_timeline([a, b], tmp_path / "cut.xml").read_bytes())
    chars = root.find("./project/children/sequence/media/video/format/samplecharacteristics")
    assert chars is not None, "the sequence's <format> is empty"
    assert (chars.findtext("width"), chars.findtext("height")) == ("96", "64")
    assert (chars.findtext("rate/timebase"), chars.findtext("rate/ntsc")) == ("24", "FALSE")
    assert chars.findtext("pixelaspectratio") == "square"
    items = root.findall(".//clipitem")
    assert len(items) == 2
    for item in items:
        assert len(item.findall("rate")) == 1, ET.tostring(item).decode()[:400]
        media = item.find("file/media")
        assert media.findtext("video/samplecharacteristics/width") == "96"
        assert media.find("audio") is None  # the clips have no sound; an empty <audio/> claims a track
    # still the same timeline for OTIO's own reader
    read = otio.adapters.read_from_file(str(tmp_path / "cut.xml"), adapter_name="fcp_xml")
    assert [c.source_range.duration.value for c in read.find_clips()] == [9, 13]
    assert otio.opentime.to_timecode(read.global_start_time, 24) == "01:00:00:00"


def test_fcp_xml_ntsc_rate_is_flagged(tmp_path):
    a = clip(tmp_path / "a.mp4", 9, fps=24000 / 1001)
    root = ET.fromstring(write_timeline([a], tmp_path / "cut.xml").read_bytes())
    chars = root.find("./project/children/sequence/media/video/format/samplecharacteristics")
    assert (chars.findtext("rate/timebase"), chars.findtext("rate/ntsc")) == ("24", "TRUE")


# ----------------------------------------------------------------------------- GIF rate
@pytest.mark.parametrize("asked, written, delay", [(24, Fraction(25), 4), (16, Fraction(50, 3), 6),
                                                   (12.5, Fraction(25, 2), 8), (60, Fraction(50), 2)])
def test_gif_is_written_at_a_rate_a_gif_can_hold_and_probed_as_such(tmp_path, asked, written, delay):
    from shotsketch.media.encode import gif_rate

    assert gif_rate(asked) == written
    gif = clip(tmp_path / "a.gif", 17, fps=asked, fmt="gif")
    assert set(gif_delays(gif)) == {delay}  # every frame shows for the same time: no 4/4/5 stutter
    assert probe_video(gif).rate == written


def test_cli_gif_export_reports_the_rate_the_file_has_and_says_why(tmp_path, capsys):
    take = clip(tmp_path / "take.mp4", 17)
    assert main(["export", str(take), "--format", "gif", "--out", str(tmp_path / "prev.gif")]) == 0
    out = capsys.readouterr().out
    assert "25 fps" in out and "hundredths of a second" in out
    import json

    sidecar = tmp_path / "prev.gif.json"
    if sidecar.exists():
        assert json.loads(sidecar.read_text())["output"]["fps"] == 25


# ----------------------------------------------------------------------------- advice that works
def advised_command(message: str) -> list[str]:
    found = re.search(r"`shotsketch (export [^`]+)`", message)
    assert found, f"no command in: {message}"
    return shlex.split(found.group(1))


def test_mixed_rates_advice_is_a_command_that_works(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)  # not the clips' folder: the advice must name whole paths
    fast, slow = clip(tmp_path / "fast.mp4", 9, fps=24), clip(tmp_path / "slow.mp4", 9, fps=16)
    out = tmp_path / "cut.edl"
    assert main(["timeline", str(fast), str(slow), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    command = advised_command(err)
    assert main(command) == 0, capsys.readouterr().err  # the advice runs as written
    fixed = Path(command[command.index("--out") + 1])
    assert f"wrote {fixed}" in capsys.readouterr().out
    assert probe_video(fixed).rate == 24
    assert main(["timeline", str(fast), str(fixed), "--out", str(out)]) == 0  # and it helps


def test_a_gif_on_a_timeline_gets_advice_that_works(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    take = clip(tmp_path / "take.mp4", 9)
    gif = clip(tmp_path / "preview.gif", 9, fmt="gif")
    out = tmp_path / "cut.xml"
    with pytest.raises(TimelineError, match="GIF"):
        write_timeline([take, gif], out)
    assert main(["timeline", str(take), str(gif), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "GIF" in err and not out.exists()
    command = advised_command(err)
    assert main(command) == 0, capsys.readouterr().err
    fixed = Path(command[command.index("--out") + 1])
    assert f"wrote {fixed}" in capsys.readouterr().out
    assert fixed.suffix in (".mp4", ".mov")
    assert main(["timeline", str(take), str(fixed), "--out", str(out)]) == 0


def test_a_rate_without_smpte_timecode_gets_advice_that_works(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    slow = clip(tmp_path / "slow.mp4", 9, fps=16)
    out = tmp_path / "cut.edl"
    assert main(["timeline", str(slow), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cut.otio" in err and "16 fps" in err and "Traceback" not in err and not out.exists()
    assert main(["timeline", str(slow), "--out", str(tmp_path / "cut.otio")]) == 0  # the first way out
    command = advised_command(err)  # the second: re-time to 24 fps
    assert main(command) == 0, capsys.readouterr().err
    fixed = Path(command[command.index("--out") + 1])
    assert main(["timeline", str(fixed), "--out", str(out)]) == 0
