"""A sequence of takes as an editor timeline: OpenTimelineIO (.otio), FCP 7 XML (.xml), CMX 3600 EDL (.edl).

One video track, the clips end to end in the order given, each at its full length. The OTIO and
FCP XML sequences start at 01:00:00:00, as editors expect (the cmx_3600 adapter writes EDL record
timecodes from 00:00:00:00 whatever the start; editors re-base an imported EDL anyway).

Frame rates: a sequence has one rate, and an EDL or FCP XML cannot say "this clip plays at
16 fps" inside a 24 fps sequence without the editor re-timing it. So clips whose rates differ
are refused with a message naming the clip and the fix (re-export it at the sequence rate with
``shotsketch export CLIP --fps N``), rather than silently changing any clip's duration.

Media references: OTIO and FCP XML get ``file://`` URLs (what their readers resolve); the EDL
gets plain absolute paths in ``* FROM CLIP:`` comments (the Avid style the cmx_3600 adapter
writes and reads), next to ``* FROM CLIP NAME:``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from shotsketch.core.atomic import write_text_atomic
from shotsketch.media.encode import EncodeError, MissingSource
from shotsketch.media.probe import exact_rate, probe_video

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


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    frames: int
    fps: float
    width: int
    height: int

    @property
    def rate(self) -> Fraction:
        return exact_rate(self.fps)

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
    return ClipInfo(src.resolve(), info.frames, float(info.rate), info.width, info.height)


def timeline_adapter(out: str | os.PathLike[str]) -> str:
    ext = Path(out).suffix.lower()
    try:
        return TIMELINE_FORMATS[ext]
    except KeyError:
        raise UnknownTimelineFormat(f"cannot tell the timeline format from {Path(out).name!r}; "
                                    "end the name in .otio, .xml (FCP 7 XML) or .edl (CMX 3600)") from None


def _check_rates(clips: Sequence[ClipInfo]) -> Fraction:
    rate = clips[0].rate
    for clip in clips[1:]:
        if clip.rate != rate:
            raise MixedFrameRates(
                f"{clip.path.name} is {float(clip.rate):g} fps but {clips[0].path.name} is {float(rate):g} fps; "
                f"a timeline has one rate: re-export it with `shotsketch export {clip.path.name} --fps {float(rate):g}`")
    return rate


def reel_name(path: Path) -> str:
    """An EDL reel: at most 8 letters, digits or underscores (EDL fields are split on spaces)."""
    reel = re.sub(r"[^A-Za-z0-9_]+", "_", path.stem).strip("_")[:8]
    return reel or "AX"


def build_timeline(clips: Sequence[ClipInfo], name: str, *, plain_paths: bool = False):  # noqa: ANN201
    """An ``otio.schema.Timeline`` with one video track holding ``clips`` end to end."""
    import opentimelineio as otio

    if not clips:
        raise TimelineError("a timeline needs at least one clip")
    rate = float(_check_rates(clips))
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
    kwargs = {"style": "avid"} if adapter == "cmx_3600" else {}
    try:
        return otio.adapters.write_to_string(timeline, adapter, **kwargs)
    except Exception as exc:  # noqa: BLE001 - adapters raise many kinds; the log keeps the detail
        log.exception("the %s adapter could not write %s", adapter, out)
        hint = " (is otio-fcp-adapter / otio-cmx3600-adapter installed?)" if "adapter" in str(exc).lower() else ""
        raise TimelineError(f"could not write {Path(out).name} as {adapter}{hint}: {exc}") from exc


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
