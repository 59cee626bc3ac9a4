"""Exporting takes as files and editor timelines: one service for the window and the CLI.

``shotsketch export``, the window's export dialog and the exports view all call
:func:`export_clip`: it re-encodes a clip (``media.encode.export_take``) with the take's recipe in
the container tags and (optionally) in a sidecar beside it, reports the frame rate the file really
has (a GIF's frame times are whole hundredths of a second: 24 fps is written as 25 fps, and says
so), and, when the clip is a library take, records the export in the library
(:meth:`Library.add_export`). :func:`record_timeline` notes the editor timeline the exports were put
on; :func:`reexport` writes a recorded export again where it was (its file moved or deleted).

Encoding is slow: call these off the window's main thread (they touch no model). Failures are the
encoder's :class:`EncodeError` family, each one sentence a person can act on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from shotsketch.core.library import Export, Library, LibraryError, Take
from shotsketch.media.encode import (
    ClipFormat, DestinationNotWritable, EncodeError, MissingSource, OnExists, export_take, frame_geometry,
    rate_note, read_container_metadata, written_rate,
)
from shotsketch.media.sidecar import (
    container_tags, exported_recipe, read_sidecar, recipe_from_tags, sidecar_path, write_sidecar,
)

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
Cancelled = Callable[[], bool]


class SidecarNotWritten(EncodeError):
    """The clip was written but its recipe sidecar was not; ``path`` is the clip."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class ExportRequest:
    """One clip to write: ``source`` (a take's clip, or any clip) to ``dest`` in ``fmt``.

    ``fps`` re-times (the same frames, played faster or slower); None keeps the source's rate.
    ``take_id`` is the library take the source is, when known (the export is then recorded);
    ``recipe`` its recipe, when known (else it is read from the source's sidecar or tags)."""

    source: Path
    dest: Path
    fmt: ClipFormat
    fps: float | None = None
    on_exists: OnExists = "error"
    sidecar: bool = True
    take_id: int | None = None
    recipe: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ExportedClip:
    """What was written: the file, its real frame rate, its sidecar, its library row."""

    path: Path
    fmt: ClipFormat
    rate: Fraction | float
    asked_fps: float
    frames: int
    sidecar: Path | None
    export: Export | None
    not_recorded: str = ""  # why a take's export is not in the library (the library was busy...)

    @property
    def note(self) -> str:
        """One sentence when the file's rate differs from the one asked (a GIF), else ``""``."""
        return rate_note(self.fmt, self.asked_fps)


def recipe_of(source: Path, known: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The take's recipe: ``known`` (the library's), else the sidecar beside the clip, else its tags."""
    if known:
        return dict(known)
    recipe = read_sidecar(source)
    if recipe is None and source.is_file():
        try:
            recipe = recipe_from_tags(read_container_metadata(source))
        except EncodeError:
            recipe = None
    return recipe


def export_clip(request: ExportRequest, *, library: Library | None = None, progress: Progress | None = None,
                cancelled: Cancelled | None = None) -> ExportedClip:
    """Write one clip (see :class:`ExportRequest`); record it when it is a library take."""
    from shotsketch.media.probe import probe_video

    src, fmt = request.source, request.fmt
    if not src.exists():
        raise MissingSource(f"the take's file {src} is missing (deleted or moved?); "
                            "generate it again from its recipe or pick another take")
    info = probe_video(src, frames=True)
    asked = float(request.fps) if request.fps is not None else float(info.rate)
    rate = written_rate(fmt, asked)
    recipe = recipe_of(src, request.recipe)
    geometry = frame_geometry(fmt, info.width, info.height)

    def recipe_at(path: Path) -> dict[str, Any] | None:
        if recipe is None:
            return None
        return exported_recipe(recipe, path, fmt.value, fps=_plain(rate), frames=info.frames,
                               width=geometry.out_width, height=geometry.out_height)

    planned = recipe_at(request.dest)
    metadata = container_tags(planned) if planned is not None else None
    written = export_take(src, request.dest, fmt, fps=request.fps, metadata=metadata, progress=progress,
                          cancelled=cancelled, on_exists=request.on_exists)
    export, why = _record(library, request.take_id, fmt, written, _plain(rate))  # before the sidecar can fail
    sidecar: Path | None = None
    final = recipe_at(written)
    if request.sidecar and final is not None:
        try:
            sidecar = write_sidecar(written, final)
        except OSError as exc:
            raise SidecarNotWritten(f"wrote {written.name} but not its recipe {sidecar_path(written).name}: "
                                    f"{exc.strerror or exc}", written) from exc
    return ExportedClip(written, fmt, rate, asked, info.frames, sidecar, export, why)


def _plain(rate: Fraction | float) -> float:
    """A rate for JSON and the library: 25 rather than Fraction(25, 1); 16.666666666666668 for 50/3."""
    value = float(rate)
    return int(value) if value == int(value) else value


def _record(library: Library | None, take_id: int | None, fmt: ClipFormat, path: Path,
            fps: float) -> tuple[Export | None, str]:
    if library is None or take_id is None:
        return None, ""
    try:
        return library.add_export(take_id, fmt.value, path, fps=fps), ""
    except LibraryError as exc:  # the file is written and fine; say why the library does not list it
        log.warning("export %s of take %s not recorded: %s", path, take_id, exc)
        return None, str(exc)


def record_timeline(library: Library | None, exported: Sequence[ExportedClip], timeline: Path) -> None:
    """Note, for each recorded export, the editor timeline it was put on."""
    ids = [e.export.id for e in exported if e.export is not None]
    if library is None or not ids:
        return
    try:
        library.set_export_timeline(ids, timeline)
    except LibraryError as exc:
        log.warning("timeline %s not noted on its exports: %s", timeline, exc)


def record_timeline_clips(library: Library, clips: Sequence[Path], timeline: Path) -> int:
    """After ``shotsketch timeline``: each clip that is a recorded export, or a take's own clip,
    gets the timeline noted on its export row. Returns how many clips the library knows."""
    known = 0
    for clip in clips:
        exports = library.exports_of_file(clip)
        if exports:
            library.set_export_timeline([exports[0].id], timeline)
            known += 1
            continue
        take = library.find_take_by_file(clip)
        if take is not None:
            fmt = _format_of_file(clip)
            library.add_export(take.id, fmt.value, clip, fps=_recorded_fps(take), timeline=timeline)
            known += 1
    return known


_FORMAT_OF_CODEC = {"prores": ClipFormat.PRORES, "dnxhd": ClipFormat.DNXHR, "gif": ClipFormat.GIF,
                    "png": ClipFormat.PNG}


def _format_of_file(clip: Path) -> ClipFormat:
    from shotsketch.media.probe import probe_video

    try:
        return _FORMAT_OF_CODEC.get(probe_video(clip, frames=False).codec, ClipFormat.MP4)
    except EncodeError:
        return ClipFormat.PNG if clip.is_dir() else ClipFormat.MP4


def _recorded_fps(take: Take) -> float | None:
    output = take.recipe.get("output") if isinstance(take.recipe, dict) else None
    fps = output.get("fps") if isinstance(output, dict) else None
    return float(fps) if isinstance(fps, (int, float)) and not isinstance(fps, bool) else None


def reexport(library: Library, export_id: int, *, create_folder: bool = False, progress: Progress | None = None,
             cancelled: Cancelled | None = None) -> ExportedClip:
    """Write a recorded export again, from its take, to the same place, in the same format and
    rate (replacing the file if it is still there). ``create_folder`` makes its folder again when
    that was removed too; otherwise a missing folder is refused with a message."""
    try:
        export = library.get_export(export_id)
        take = library.get_take(export.take_id)
    except LibraryError as exc:
        raise EncodeError(str(exc)) from None
    fmt = ClipFormat.parse(export.format)
    folder = export.file.parent
    if not folder.is_dir():
        if not create_folder:
            raise DestinationNotWritable(f"the folder {folder} is gone too; create it again or export elsewhere")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DestinationNotWritable(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
    if export.file.resolve() == take.file.resolve():
        raise EncodeError(f"{export.file.name} is the take's own clip, not an export; it cannot be written again "
                          "from itself (generate the take again from its recipe)")
    request = ExportRequest(take.file, export.file, fmt, fps=export.fps, on_exists="overwrite",
                            sidecar=sidecar_path(export.file).exists() or export.missing,
                            take_id=take.id, recipe=take.recipe or None)
    return export_clip(request, library=library, progress=progress, cancelled=cancelled)


def export_of_gif_source(library: Library, gif: Path) -> Path | None:
    """The take clip a GIF was exported from, when the library recorded it and the clip is there."""
    for export in library.exports_of_file(gif):
        try:
            take = library.get_take(export.take_id)
        except LibraryError:
            continue
        if take.file.exists():
            return take.file
    return None


__all__ = [
    "ExportRequest", "ExportedClip", "SidecarNotWritten", "export_clip", "export_of_gif_source", "record_timeline",
    "record_timeline_clips", "recipe_of", "reexport",
]
