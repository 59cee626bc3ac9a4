"""`shotsketch timeline` (takes -> OTIO / FCP 7 XML / CMX 3600 EDL) and `shotsketch export` (re-encode a take)."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from shotsketch.cli import CliError

if TYPE_CHECKING:
    from shotsketch.core.library import Library

FORMAT_NAMES = ("mp4", "prores", "dnxhr", "png", "gif")


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "timeline", help="put clips on an editor timeline (.otio, .xml, .edl)",
        description="Write clips, in order and at full length, as an OpenTimelineIO (.otio), "
                    "Final Cut Pro 7 XML (.xml) or CMX 3600 EDL (.edl) timeline. All clips must share one frame rate.")
    t.add_argument("clips", nargs="+", metavar="CLIP", help="clip files, in timeline order")
    t.add_argument("--out", required=True, metavar="FILE.otio|FILE.xml|FILE.edl", help="timeline file to write")
    t.add_argument("--name", help="sequence name (default: the output file's name)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing timeline file")
    t.set_defaults(func=run_timeline)

    e = sub.add_parser(
        "export", help="re-encode a clip to another format",
        description="Re-encode a clip as MP4 (H.264), MOV (ProRes 422 HQ or DNxHR HQ), a PNG sequence or a GIF. "
                    "The recipe sidecar (CLIP.json) comes along when there is one. A GIF is written at the rate it "
                    "can hold (frame times are whole hundredths of a second: 24 fps becomes 25 fps). When CLIP is a "
                    "take in the library, the export is recorded there.")
    e.add_argument("clip", metavar="CLIP", help="the clip to export (a file, or a PNG sequence folder)")
    e.add_argument("--format", required=True, metavar="|".join(FORMAT_NAMES), help="format to write")
    e.add_argument("--out", required=True, metavar="PATH",
                   help="file to write (a folder for png); an existing folder takes a file named after the clip")
    e.add_argument("--fps", help="frames per second of the new file (default: the clip's); re-times, keeps every frame")
    e.add_argument("--on-exists", choices=["error", "overwrite", "number"], default="error",
                   help="when PATH exists: stop (default), replace it, or write 'NAME (2).EXT'")
    e.add_argument("--quiet", action="store_true", help="no progress")
    e.set_defaults(func=run_export)


# ----------------------------------------------------------------------------- library
@contextlib.contextmanager
def user_library() -> Iterator[tuple[Library | None, str]]:
    """The user's library, when there is one (exports of its takes are recorded there), and why
    not otherwise. A command never creates a library just to record an export."""
    from shotsketch.core import paths
    from shotsketch.core.library import DB_NAME, Library, LibraryError

    path = paths.data_dir(create=False) / DB_NAME
    if not path.exists():
        yield None, ""
        return
    try:
        library = Library.open(path)
    except LibraryError as exc:
        yield None, str(exc)
        return
    try:
        yield library, ""
    finally:
        library.close()


def _say_why_not(why_not: str) -> None:
    """A library that could not be opened (busy, damaged and kept aside...) is said, not hidden."""
    if why_not:
        print(f"shotsketch: note: {why_not} This command goes on without recording in the library.",
              file=sys.stderr)


# ----------------------------------------------------------------------------- timeline
def run_timeline(args: argparse.Namespace) -> int:
    from shotsketch.app.exports import export_of_gif_source, record_timeline_clips
    from shotsketch.core.library import LibraryError
    from shotsketch.media.encode import EncodeError
    from shotsketch.media.timeline import NotForEditors, TimelineError, gif_advice, timeline_adapter, write_timeline

    out = Path(args.out)
    clips = [Path(c) for c in args.clips]
    with user_library() as (library, why_not):
        _say_why_not(why_not)
        try:
            timeline_adapter(out)
            written = write_timeline(clips, out, args.name, overwrite=args.overwrite)
        except NotForEditors as exc:
            source = export_of_gif_source(library, exc.clip) if library is not None else None
            if source is None:
                raise CliError(str(exc)) from None
            raise CliError(gif_advice(exc.clip, _sequence_rate(clips, exc.clip), source)) from None
        except TimelineError as exc:
            raise CliError(str(exc)) from None
        except EncodeError as exc:
            raise CliError(str(exc), code=1) from None
        note = ""
        if library is not None:
            try:
                known = record_timeline_clips(library, [c.resolve() for c in clips], written)
            except LibraryError as exc:
                note = f"; not noted in the library: {exc}"
            else:
                note = f"; {known} of them noted in the library" if known else ""
    print(f"wrote {written} ({len(clips)} clip{'s' if len(clips) != 1 else ''}{note})")
    return 0


def _sequence_rate(clips: list[Path], gif: Path) -> Fraction:
    """The rate of the first clip that is not ``gif`` (the GIF's own rate when there is none)."""
    from shotsketch.media.timeline import probe_clip

    for clip in clips:
        if clip.resolve() != gif.resolve():
            info = probe_clip(clip)
            if info.codec != "gif":
                return info.rate
    return probe_clip(gif).rate


# ----------------------------------------------------------------------------- export
def _fps(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise CliError(f"--fps must be a number (got {text!r})") from None
    if not math.isfinite(value) or not 0 < value <= 1000:
        raise CliError(f"--fps must be between 0 and 1000 (got {text!r})")
    return value


def _destination(out: Path, clip: Path, fmt) -> Path:  # noqa: ANN001
    """--out as given; inside it when it is an existing folder (not for PNG); the right extension."""
    if fmt.is_sequence:
        if out.suffix.lower() in (".mp4", ".mov", ".gif", ".png"):
            raise CliError(f"a PNG sequence is a folder; give --out a folder name without {out.suffix}")
        return out
    if out.is_dir():
        out = out / (clip.name[: -len(clip.suffix)] if clip.suffix else clip.name)
        out = out.with_name(out.name + fmt.extension)
    if not out.suffix:
        return out.with_name(out.name + fmt.extension)
    if out.suffix.lower() != fmt.extension:
        raise CliError(f"--out {out.name} does not match --format {fmt.value}; name it "
                       f"{out.name[: -len(out.suffix)]}{fmt.extension}")
    return out


def run_export(args: argparse.Namespace) -> int:
    from shotsketch.app.exports import ExportRequest, export_clip
    from shotsketch.media.encode import (
        ClipFormat, DestinationExists, DestinationNotWritable, EncodeCancelled, EncodeError, MissingSource, free_name,
    )

    try:
        fmt = ClipFormat.parse(args.format)
    except ValueError:
        raise CliError(f"--format {args.format!r} is not known; choose one of {', '.join(FORMAT_NAMES)}") from None
    fps = _fps(args.fps)
    src = Path(args.clip)
    if not src.exists():
        raise CliError(f"clip {src} does not exist (deleted or moved?)")
    dest = _destination(Path(args.out), src, fmt)
    if args.on_exists == "number":
        dest = free_name(dest)

    with user_library() as (library, why_not):
        _say_why_not(why_not)
        take = library.find_take_by_file(src) if library is not None else None
        request = ExportRequest(src, dest, fmt, fps=fps, on_exists=args.on_exists,
                                take_id=take.id if take is not None else None,
                                recipe=take.recipe if take is not None and take.recipe else None)
        bar = _Progress(args.quiet, f"exporting {src.name} as {fmt.label}")
        t0 = time.perf_counter()
        try:
            done = export_clip(request, library=library, progress=bar.update)
            bar.done()
        except EncodeCancelled:
            raise CliError("cancelled; no file was written", code=130) from None
        except DestinationExists as exc:
            raise CliError(f"{exc.path} already exists; choose another --out or pass --on-exists overwrite "
                           "(replace it) or number (write a numbered copy)") from None
        except (MissingSource, DestinationNotWritable) as exc:
            raise CliError(str(exc)) from None
        except EncodeError as exc:  # SidecarNotWritten too: the clip is there, its recipe is not
            raise CliError(str(exc), code=1) from None

    sidecar = f" and {done.sidecar.name}" if done.sidecar is not None else ""
    print(f"wrote {done.path}{sidecar} in {time.perf_counter() - t0:.1f}s "
          f"({done.frames} frames at {float(done.rate):.4g} fps)")
    if done.note:
        print(f"note: {done.note}")
    if done.export is not None:
        print(f"recorded in the library as an export of take {done.export.take_id}")
    elif take is not None and done.not_recorded:
        print(f"note: not recorded in the library: {done.not_recorded}")
    return 0


class _Progress:
    def __init__(self, quiet: bool, title: str):
        self.quiet = quiet or not sys.stderr.isatty()
        self.title = title
        self._last = 0.0

    def update(self, done: int, total: int) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if done == total or now - self._last > 0.1:
            self._last = now
            sys.stderr.write(f"\r{self.title}: {done}/{total} frames")
            sys.stderr.flush()

    def done(self) -> None:
        if not self.quiet:
            sys.stderr.write("\n")
