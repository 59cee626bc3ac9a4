"""`shotsketch timeline` (takes -> OTIO / FCP 7 XML / CMX 3600 EDL) and `shotsketch export` (re-encode a take)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from shotsketch.cli import CliError

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
                    "The recipe sidecar (CLIP.json) comes along when there is one.")
    e.add_argument("clip", metavar="CLIP", help="the clip to export (a file, or a PNG sequence folder)")
    e.add_argument("--format", required=True, metavar="|".join(FORMAT_NAMES), help="format to write")
    e.add_argument("--out", required=True, metavar="PATH",
                   help="file to write (a folder for png); an existing folder takes a file named after the clip")
    e.add_argument("--fps", help="frames per second of the new file (default: the clip's); re-times, keeps every frame")
    e.add_argument("--on-exists", choices=["error", "overwrite", "number"], default="error",
                   help="when PATH exists: stop (default), replace it, or write 'NAME (2).EXT'")
    e.add_argument("--quiet", action="store_true", help="no progress")
    e.set_defaults(func=run_export)


# ----------------------------------------------------------------------------- timeline
def run_timeline(args: argparse.Namespace) -> int:
    from shotsketch.media.encode import EncodeError
    from shotsketch.media.timeline import TimelineError, timeline_adapter, write_timeline

    out = Path(args.out)
    try:
        timeline_adapter(out)
        written = write_timeline([Path(c) for c in args.clips], out, args.name, overwrite=args.overwrite)
    except TimelineError as exc:
        raise CliError(str(exc)) from None
    except EncodeError as exc:
        raise CliError(str(exc), code=1) from None
    print(f"wrote {written} ({len(args.clips)} clip{'s' if len(args.clips) != 1 else ''})")
    return 0


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
    from shotsketch.media.encode import (
        ClipFormat, DestinationExists, DestinationNotWritable, EncodeCancelled, EncodeError, MissingSource,
        export_take, frame_geometry, free_name, read_container_metadata,
    )
    from shotsketch.media.probe import probe_video
    from shotsketch.media.sidecar import (
        container_tags, exported_recipe, read_sidecar, recipe_from_tags, sidecar_path, write_sidecar,
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

    try:
        info = probe_video(src)
        recipe = read_sidecar(src)
        if recipe is None and not src.is_dir():
            recipe = recipe_from_tags(read_container_metadata(src))
        rate = fps if fps is not None else float(info.rate)
        geometry = frame_geometry(fmt, info.width, info.height)

        def recipe_for(path: Path) -> dict | None:
            if recipe is None:
                return None
            return exported_recipe(recipe, path, fmt.value, fps=rate, frames=info.frames,
                                   width=geometry.out_width, height=geometry.out_height)

        planned = recipe_for(dest)
        metadata = container_tags(planned) if planned is not None else None
        bar = _Progress(args.quiet, f"exporting {src.name} as {fmt.label}")
        t0 = time.perf_counter()
        written = export_take(src, dest, fmt, fps=fps, metadata=metadata, progress=bar.update,
                              on_exists=args.on_exists)
        bar.done()
    except EncodeCancelled:
        raise CliError("cancelled; no file was written", code=130) from None
    except DestinationExists as exc:
        raise CliError(f"{exc.path} already exists; choose another --out or pass --on-exists overwrite "
                       "(replace it) or number (write a numbered copy)") from None
    except (MissingSource, DestinationNotWritable) as exc:
        raise CliError(str(exc)) from None
    except EncodeError as exc:
        raise CliError(str(exc), code=1) from None

    note = ""
    final_recipe = recipe_for(written)
    if final_recipe is not None:
        try:
            write_sidecar(written, final_recipe)
            note = f" and {sidecar_path(written).name}"
        except OSError as exc:
            raise CliError(f"wrote {written} but not its recipe {sidecar_path(written).name}: "
                           f"{exc.strerror or exc}", code=1) from None
    print(f"wrote {written}{note} in {time.perf_counter() - t0:.1f}s")
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
