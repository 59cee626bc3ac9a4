"""A sequence of takes as an editor timeline: OpenTimelineIO (.otio), FCP 7 XML (.xml), CMX 3600 EDL (.edl).

One video track, the clips end to end in the order given, each at its full length. All three
formats start the sequence at 01:00:00:00, as editors expect: OTIO's global start time, the FCP 7
XML sequence timecode, and the EDL's record timecodes (the cmx_3600 adapter writes them from
00:00:00:00 whatever the start, so they are moved by one hour after it has written them).

FCP 7 XML: the adapter leaves the sequence's ``<format/>`` empty and writes ``<rate>`` twice in
each clip item; Premiere and Resolve take the sequence's frame size and rate from
``<format><samplecharacteristics>`` (width, height, rate, pixel aspect ratio, field dominance),
so those are filled in from the first clip, each file gets its own ``samplecharacteristics``,
the second ``<rate>`` goes, and so does the empty ``<audio/>`` that claimed a sound track the
clips do not have.

Frame rates: a sequence has one rate, and an EDL or FCP XML cannot say "this clip plays at
16 fps" inside a 24 fps sequence without the editor re-timing it. So clips whose rates differ
are refused with a message naming the clip and a complete ``shotsketch export`` command that
writes a copy at the sequence rate (same frames, re-timed), rather than silently changing any
clip's duration. GIFs are refused the same way (a GIF is a 256-colour preview whose rate is
rounded to hundredths of a second; the advice writes an MP4 at the sequence rate), as are rates
that EDL and FCP 7 XML timecode cannot express (16 fps: write .otio, or re-time the clips).

Media references: OTIO and FCP XML get ``file://`` URLs (what their readers resolve); the EDL
gets plain absolute paths in ``* FROM CLIP:`` comments (the Avid style the cmx_3600 adapter
writes and reads), next to ``* FROM CLIP NAME:``.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from shotsketch.core.atomic import write_text_atomic
from shotsketch.media.encode import ClipFormat, EncodeError, MissingSource, free_name
from shotsketch.media.probe import probe_video

log = logging.getLogger(__name__)

# extension -> (OTIO adapter name, writer keyword arguments)
TIMELINE_FORMATS: dict[str, str] = {".otio": "otio_json", ".xml": "fcp_xml", ".edl": "cmx_3600"}
SEQUENCE_START = "01:00:00:00"


class TimelineError(EncodeError):
    """A timeline could not be written; the message says what to change."""


class MissingClip(TimelineError, MissingSource):
    pass


class UnknownTimelineFormat(TimelineError):
    pass


class MixedFrameRates(TimelineError):
    pass


class TimelineExists(TimelineError):
    pass


class NotForEditors(TimelineError):
    """A clip an editor timeline should not hold (a GIF preview); ``clip`` is its path."""

    def __init__(self, message: str, clip: Path):
        super().__init__(message)
        self.clip = clip


class RateWithoutTimecode(TimelineError):
    pass


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    frames: int
    fps: float
    width: int
    height: int
    rate: Fraction = field(default=Fraction(0), compare=False)  # exact (24000/1001, a GIF's 50/3)
    codec: str = field(default="", compare=False)  # ffmpeg's decoder name: h264, prores, gif...

    def __post_init__(self) -> None:
        if not self.rate:
            from shotsketch.media.probe import exact_rate

            object.__setattr__(self, "rate", exact_rate(self.fps))

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


def probe_clip(path: str | os.PathLike[str]) -> ClipInfo:
    """Frame count (decoded, exact), rate and size of a clip file; absolute path."""
    src = Path(path)
    if not src.exists():
        raise MissingClip(f"clip {src} does not exist (deleted or moved?)")
    if src.is_dir():
        raise TimelineError(f"{src} is a folder (a PNG sequence?); put MP4 or MOV clips on a timeline")
    try:
        info = probe_video(src)
    except EncodeError as exc:
        raise TimelineError(f"cannot place {src.name} on a timeline: {exc}") from exc
    if info.frames < 1:
        raise TimelineError(f"{src.name} has no frames")
    return ClipInfo(src.resolve(), info.frames, float(info.rate), info.width, info.height, info.rate, info.codec)


# ffmpeg decoder name -> the export format that keeps a clip's kind when it is re-timed
_FORMAT_OF_CODEC = {"prores": ClipFormat.PRORES, "dnxhd": ClipFormat.DNXHR}


def _rate_text(rate: Fraction) -> str:
    return f"{float(rate):.6g}"


def retime_command(source: Path, rate: Fraction, *, fmt: ClipFormat = ClipFormat.MP4,
                   beside: Path | None = None) -> str:
    """A complete ``shotsketch export`` command that writes ``source`` at ``rate`` (same frames,
    re-timed) beside ``beside`` (default: ``source``), named after it, under a name nothing has yet."""
    near = beside or source
    stem = near.stem if beside is not None else f"{source.stem} at {_rate_text(rate)} fps"
    out = free_name(near.with_name(stem + fmt.extension))
    return (f"shotsketch export {shlex.quote(str(source))} --format {fmt.value} --fps {_rate_text(rate)} "
            f"--out {shlex.quote(str(out))}")


def gif_advice(gif: Path, rate: Fraction, source: Path | None = None) -> str:
    """Why a GIF stays off a timeline and the command that makes a clip for it at ``rate``.

    ``source`` is the take the GIF was exported from, when known: exporting that again keeps its
    full colour; otherwise the GIF itself is converted."""
    head = (f"{gif.name} is a GIF, a 256-colour preview whose frame times are rounded to hundredths of a "
            f"second; editors need MP4 or MOV clips: ")
    if source is not None:
        command = retime_command(source, rate, beside=gif)
        return head + f"export its take again with `{command}` and put that on the timeline"
    return head + f"make one with `{retime_command(gif, rate, beside=gif)}` and put that on the timeline"


def _check_clips(clips: Sequence[ClipInfo]) -> Fraction:
    """The sequence rate; refuses GIFs and clips at another rate with a command that fixes it."""
    editable = [c for c in clips if c.codec != "gif"]
    rate = (editable or clips)[0].rate
    for clip in clips:
        if clip.codec == "gif":
            raise NotForEditors(gif_advice(clip.path, editable[0].rate if editable else clip.rate), clip.path)
    first = clips[0]
    for clip in clips[1:]:
        if clip.rate != rate:
            fmt = _FORMAT_OF_CODEC.get(clip.codec, ClipFormat.MP4)
            raise MixedFrameRates(
                f"{clip.path.name} is {_rate_text(clip.rate)} fps but {first.path.name} is {_rate_text(rate)} fps; "
                f"a timeline has one rate: write a copy at {_rate_text(rate)} fps (same frames, re-timed) with "
                f"`{retime_command(clip.path, rate, fmt=fmt)}` and put that on the timeline")
    return rate


def _check_timecode_rate(clips: Sequence[ClipInfo], adapter: str, out: Path) -> None:
    """EDL and FCP 7 XML count time in SMPTE timecode, which has no 12 or 16 fps."""
    import opentimelineio as otio

    if adapter == "otio_json":
        return
    rate = clips[0].rate
    try:
        otio.opentime.to_timecode(otio.opentime.RationalTime(0, float(rate)), float(rate))
    except ValueError:
        raise RateWithoutTimecode(
            f"{out.suffix} timelines count time in SMPTE timecode, which has no {_rate_text(rate)} fps; "
            f"write {out.stem}.otio instead, or re-time the clips to 24 fps, e.g. "
            f"`{retime_command(clips[0].path, Fraction(24), fmt=_FORMAT_OF_CODEC.get(clips[0].codec, ClipFormat.MP4))}`"
        ) from None


def timeline_adapter(out: str | os.PathLike[str]) -> str:
    ext = Path(out).suffix.lower()
    try:
        return TIMELINE_FORMATS[ext]
    except KeyError:
        raise UnknownTimelineFormat(f"cannot tell the timeline format from {Path(out).name!r}; "
                                    "end the name in .otio, .xml (FCP 7 XML) or .edl (CMX 3600)") from None


def reel_name(path: Path) -> str:
    """An EDL reel: at most 8 letters, digits or underscores (EDL fields are split on spaces)."""
    reel = re.sub(r"[^A-Za-z0-9_]+", "_", path.stem).strip("_")[:8]
    return reel or "AX"


def build_timeline(clips: Sequence[ClipInfo], name: str, *, plain_paths: bool = False):  # noqa: ANN201
    """An ``otio.schema.Timeline`` with one video track holding ``clips`` end to end."""
    import opentimelineio as otio

    if not clips:
        raise TimelineError("a timeline needs at least one clip")
    rate = float(_check_clips(clips))
    timeline = otio.schema.Timeline(name=name)
    try:
        timeline.global_start_time = otio.opentime.from_timecode(SEQUENCE_START, rate)
    except ValueError:  # OTIO's timecode parser knows only the broadcast rates (not 8, 12, 16 fps...)
        timeline.global_start_time = otio.opentime.from_seconds(3600, rate)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for info in clips:
        length = otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                         otio.opentime.RationalTime(info.frames, rate))
        target = str(info.path) if plain_paths else info.path.as_uri()
        ref = otio.schema.ExternalReference(target_url=target, available_range=length)
        ref.name = info.path.name
        clip = otio.schema.Clip(name=info.path.name, media_reference=ref, source_range=length)
        clip.metadata["cmx_3600"] = {"reel": reel_name(info.path)}
        clip.metadata["shotsketch"] = {"path": str(info.path), "frames": info.frames, "fps": info.fps,
                                       "width": info.width, "height": info.height}
        track.append(clip)
    return timeline


def timeline_text(clips: Sequence[ClipInfo], out: str | os.PathLike[str], name: str) -> str:
    """The timeline as the text of the format ``out``'s extension names."""
    import opentimelineio as otio

    adapter = timeline_adapter(out)
    timeline = build_timeline(clips, name, plain_paths=adapter == "cmx_3600")
    _check_timecode_rate(clips, adapter, Path(out))
    kwargs = {"style": "avid"} if adapter == "cmx_3600" else {}
    try:
        text = otio.adapters.write_to_string(timeline, adapter, **kwargs)
    except Exception as exc:  # noqa: BLE001 - adapters raise many kinds; the log keeps the detail
        log.exception("the %s adapter could not write %s", adapter, out)
        hint = " (is otio-fcp-adapter / otio-cmx3600-adapter installed?)" if "adapter" in str(exc).lower() else ""
        raise TimelineError(f"could not write {Path(out).name} as {adapter}{hint}: {exc}") from exc
    if adapter == "cmx_3600":
        return edl_from_one_hour(text, float(clips[0].rate))
    if adapter == "fcp_xml":
        return fcp_xml_for_editors(text, clips)
    return text


_EDL_EVENT = re.compile(r"^(\d{3}\s.*?)(\d\d:\d\d:\d\d[:;]\d\d) (\d\d:\d\d:\d\d[:;]\d\d)\s*$")


def edl_from_one_hour(text: str, rate: float) -> str:
    """Move every event's record in / out (its last two timecodes) to start at 01:00:00:00."""
    import opentimelineio as otio

    def shifted(tc: str) -> str:
        drop = ";" in tc  # 29.97 / 59.94 are written drop-frame: there one hour is 01:00:00;00
        hour = otio.opentime.from_timecode(SEQUENCE_START[:-3] + (";" if drop else ":") + "00", rate)
        return otio.opentime.to_timecode(otio.opentime.from_timecode(tc, rate) + hour, rate, drop_frame=drop)

    lines = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        match = _EDL_EVENT.match(body)
        if match:
            line = f"{match.group(1)}{shifted(match.group(2))} {shifted(match.group(3))}" + line[len(body):]
        lines.append(line)
    return "".join(lines)


def _rate_element(rate: Fraction) -> ET.Element:
    """FCP 7's rate: a whole timebase, NTSC flagged (23.976 = timebase 24, ntsc TRUE)."""
    element = ET.Element("rate")
    ntsc = rate.denominator == 1001
    ET.SubElement(element, "timebase").text = str(round(rate * Fraction(1001, 1000)) if ntsc else round(rate))
    ET.SubElement(element, "ntsc").text = "TRUE" if ntsc else "FALSE"
    return element


def _video_characteristics(clip: ClipInfo, *, sequence: bool) -> ET.Element:
    chars = ET.Element("samplecharacteristics")
    chars.append(_rate_element(clip.rate))
    ET.SubElement(chars, "width").text = str(clip.width)
    ET.SubElement(chars, "height").text = str(clip.height)
    ET.SubElement(chars, "anamorphic").text = "FALSE"
    ET.SubElement(chars, "pixelaspectratio").text = "square"
    ET.SubElement(chars, "fielddominance").text = "none"
    if sequence:
        ET.SubElement(chars, "colordepth").text = "24"
    return chars


def fcp_xml_for_editors(text: str, clips: Sequence[ClipInfo]) -> str:
    """The adapter's FCP 7 XML with the sequence format, each file's picture size and one rate
    per clip item (parses only the text the adapter just wrote)."""
    root = ET.fromstring(text)
    for fmt in root.iter("format"):
        fmt.clear()
        fmt.append(_video_characteristics(clips[0], sequence=True))
    by_url = {c.path.as_uri(): c for c in clips}
    for item in root.iter("clipitem"):
        rates = item.findall("rate")
        for extra in rates[1:]:
            item.remove(extra)
    for file in root.iter("file"):
        clip = by_url.get(file.findtext("pathurl") or "")
        media = file.find("media")
        if clip is None or media is None:
            continue
        for audio in media.findall("audio"):
            if len(audio) == 0:
                media.remove(audio)
        video = media.find("video")
        if video is not None and video.find("samplecharacteristics") is None:
            video.append(_video_characteristics(clip, sequence=False))
    ET.indent(root, space="    ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_timeline(
    clips: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    name: str | None = None,
    *,
    overwrite: bool = True,
) -> Path:
    """Write ``clips`` (paths, in order) as an editor timeline chosen by ``out``'s extension.

    Every clip is probed first, so a missing or unreadable clip, an unknown extension or
    mixed frame rates fail before anything is written; the file is written atomically.
    """
    dest = Path(out)
    timeline_adapter(dest)
    if not clips:
        raise TimelineError("a timeline needs at least one clip")
    if not dest.parent.is_dir():
        raise TimelineError(f"cannot write {dest.name}: folder {dest.parent} does not exist")
    if not overwrite and dest.exists():
        raise TimelineExists(f"{dest} already exists; choose another name or allow overwriting")
    infos = [probe_clip(c) for c in clips]
    text = timeline_text(infos, dest, name or dest.stem)
    try:
        return write_text_atomic(dest, text)
    except OSError as exc:
        raise TimelineError(f"could not write {dest}: {exc.strerror or exc}") from exc
