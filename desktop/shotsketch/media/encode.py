"""Clip encoding through imageio-ffmpeg's ffmpeg binary, run as a subprocess.

Every encode writes to a temporary name beside the destination and moves it into place
only when ffmpeg succeeded, so a crash, a cancel or an ffmpeg failure never leaves a
half-written file (or, for a PNG sequence, a half-filled folder) under the final name.

Formats (see :class:`ClipFormat`):

* MP4  - H.264, yuv420p, CRF 18, ``+faststart``; odd sizes are padded to even.
* PRORES - MOV, ProRes 422 HQ (prores_ks profile 3), yuv422p10le, vendor ``apl0``.
* DNXHR - MOV, DNxHR HQ, yuv422p. ffmpeg's encoder refuses frames smaller than 256x120, so
  smaller clips (the demo model's) are enlarged by a whole-number factor, pixel for pixel.
* PNG  - a folder of ``frame_00001.png`` ... (RGB, lossless).
* GIF  - one palette per clip (palettegen + paletteuse in one filter graph), for previews.
  GIF frame delays are whole hundredths of a second, so a GIF is written at the nearest rate it
  can hold with every frame shown for the same time (:func:`gif_rate`: 24 fps -> 25 fps, 4/100 s
  a frame) rather than 24 fps on average with a 4/4/5 stutter; that rate is the one reported.

Video formats are converted to Y'CbCr with the BT.709 matrix and tagged as BT.709, limited
range, which is what editors assume for HD material.
"""

from __future__ import annotations

import collections
import enum
import errno
import logging
import math
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from shotsketch.core import leftovers
from shotsketch.core.atomic import default_file_mode

log = logging.getLogger(__name__)

OnExists = Literal["error", "overwrite", "number"]
ON_EXISTS_CHOICES: tuple[str, ...] = ("error", "overwrite", "number")

PNG_PATTERN = "frame_%05d.png"
PNG_GLOB = "frame_*.png"

# Container tags every MP4/MOV player knows; anything else needs +use_metadata_tags.
_STANDARD_TAGS = frozenset({"title", "comment", "artist", "album", "date", "description", "copyright", "genre"})


class ClipFormat(enum.Enum):
    MP4 = "mp4"
    PRORES = "prores"
    DNXHR = "dnxhr"
    PNG = "png"
    GIF = "gif"

    @classmethod
    def parse(cls, value: str | ClipFormat) -> ClipFormat:
        """A format from its name, any case (``"mp4"``, ``"ProRes"``, ``"dnxhr"``, ``"png"``, ``"gif"``;
        also ``"mov"`` = ProRes, ``"h264"`` = MP4); raises ValueError listing the choices."""
        if isinstance(value, ClipFormat):
            return value
        key = str(value).strip().lower().lstrip(".")
        aliases = {"h264": "mp4", "mov": "prores", "prores422hq": "prores", "dnxhd": "dnxhr", "png-sequence": "png"}
        key = aliases.get(key, key)
        try:
            return cls(key)
        except ValueError:
            names = ", ".join(f.value for f in cls)
            raise ValueError(f"unknown clip format {value!r}; choose one of {names}") from None

    @property
    def extension(self) -> str:
        """The file extension with its dot; empty for a PNG sequence, which is a folder."""
        return _EXTENSIONS[self]

    @property
    def is_sequence(self) -> bool:
        return self is ClipFormat.PNG

    @property
    def has_container_tags(self) -> bool:
        """Whether the recipe can travel inside the file (MP4/MOV tags)."""
        return self in (ClipFormat.MP4, ClipFormat.PRORES, ClipFormat.DNXHR)

    @property
    def label(self) -> str:
        return _LABELS[self]


_EXTENSIONS = {
    ClipFormat.MP4: ".mp4",
    ClipFormat.PRORES: ".mov",
    ClipFormat.DNXHR: ".mov",
    ClipFormat.PNG: "",
    ClipFormat.GIF: ".gif",
}
_LABELS = {
    ClipFormat.MP4: "MP4 (H.264)",
    ClipFormat.PRORES: "MOV (ProRes 422 HQ)",
    ClipFormat.DNXHR: "MOV (DNxHR HQ)",
    ClipFormat.PNG: "PNG sequence",
    ClipFormat.GIF: "GIF (preview)",
}

_BT709 = "scale=out_color_matrix=bt709:out_range=tv,format={pix},setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709"

# Output arguments per format (after the input and before the metadata / output name).
_CODEC_ARGS: dict[ClipFormat, list[str]] = {
    ClipFormat.MP4: ["-vf", _BT709.format(pix="yuv420p"), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18",
                     "-preset", "medium", "-movflags", "+faststart", "-f", "mp4"],
    ClipFormat.PRORES: ["-vf", _BT709.format(pix="yuv422p10le"), "-c:v", "prores_ks", "-profile:v", "3",
                        "-vendor", "apl0", "-pix_fmt", "yuv422p10le", "-f", "mov"],
    ClipFormat.DNXHR: ["-vf", _BT709.format(pix="yuv422p"), "-c:v", "dnxhd", "-profile:v", "dnxhr_hq",
                       "-pix_fmt", "yuv422p", "-f", "mov"],
    ClipFormat.PNG: ["-c:v", "png", "-pix_fmt", "rgb24", "-start_number", "1", "-f", "image2"],
    ClipFormat.GIF: ["-filter_complex", "[0:v]split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=sierra2_4a",
                     "-loop", "0", "-f", "gif"],
}

DNXHR_MIN_SIZE = (256, 120)


# ----------------------------------------------------------------------------- errors
class EncodeError(RuntimeError):
    """An encode failed; the message is one sentence meant for a person."""


class EncodeCancelled(RuntimeError):
    pass


class DestinationExists(EncodeError):
    def __init__(self, path: Path):
        super().__init__(f"{path} already exists; choose another name, or allow overwriting or numbering")
        self.path = path


class DestinationNotWritable(EncodeError):
    pass


class DiskFull(EncodeError):
    pass


class FfmpegFailed(EncodeError):
    """ffmpeg exited with an error; its last stderr lines are in ``details`` and in the log."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details


class MissingSource(EncodeError):
    pass


# ----------------------------------------------------------------------------- helpers
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class FrameGeometry:
    """How source frames are fitted to what a codec accepts: scale (whole number), then pad."""

    width: int
    height: int
    scale: int = 1
    pad_right: int = 0
    pad_bottom: int = 0

    @property
    def out_width(self) -> int:
        return self.width * self.scale + self.pad_right

    @property
    def out_height(self) -> int:
        return self.height * self.scale + self.pad_bottom

    @property
    def changes_frames(self) -> bool:
        return self.scale != 1 or self.pad_right != 0 or self.pad_bottom != 0

    def apply(self, frame: np.ndarray) -> np.ndarray:
        if self.scale != 1:
            frame = np.repeat(np.repeat(frame, self.scale, axis=0), self.scale, axis=1)
        if self.pad_right or self.pad_bottom:
            frame = np.pad(frame, ((0, self.pad_bottom), (0, self.pad_right), (0, 0)), mode="edge")
        return frame


def frame_geometry(fmt: ClipFormat, width: int, height: int) -> FrameGeometry:
    """The size a ``width`` x ``height`` clip gets in ``fmt``.

    Chroma-subsampled formats (4:2:0 H.264, 4:2:2 ProRes / DNxHR) get even sizes by
    repeating the last row / column; DNxHR below 256x120 is enlarged by a whole factor
    first (nearest neighbour, so no new detail is invented and no edge is blurred).
    """
    if fmt in (ClipFormat.PNG, ClipFormat.GIF):
        return FrameGeometry(width, height)
    scale = 1
    if fmt is ClipFormat.DNXHR:
        min_w, min_h = DNXHR_MIN_SIZE
        scale = max(1, math.ceil(min_w / width), math.ceil(min_h / height))
    w, h = width * scale, height * scale
    return FrameGeometry(width, height, scale, w % 2, h % 2)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise EncodeError(f"expected frames shaped [count, height, width, 3], got {list(frames.shape)}")
    if frames.dtype != np.uint8:
        raise EncodeError(f"expected 8-bit frames, got {frames.dtype}")
    return frames


def _check_fps(fps: float) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise EncodeError(f"frame rate must be a number, got {fps!r}") from None
    if not math.isfinite(value) or not 0 < value <= 1000:
        raise EncodeError(f"frame rate must be between 0 and 1000 frames per second, got {fps!r}")
    return value


GIF_MIN_DELAY_CS = 2  # browsers show a GIF frame of 0 or 1 hundredths for 10 hundredths


def gif_rate(fps: float) -> Fraction:
    """The rate a GIF really plays at when ``fps`` is asked: 100 / whole hundredths per frame."""
    delay = min(65535, max(GIF_MIN_DELAY_CS, round(100 / _check_fps(fps))))
    return Fraction(100, delay)


def written_rate(fmt: ClipFormat | str, fps: float) -> Fraction | float:
    """The frame rate a file in ``fmt`` has when written at ``fps`` (only GIF differs)."""
    return gif_rate(fps) if ClipFormat.parse(fmt) is ClipFormat.GIF else fps


def rate_note(fmt: ClipFormat | str, fps: float) -> str:
    """One sentence when ``fmt`` cannot hold ``fps`` exactly (a GIF), else ``""``."""
    real = written_rate(fmt, fps)
    if real == fps or float(real) == float(fps):
        return ""
    return (f"GIF frame times are whole hundredths of a second, so it plays at {float(real):.4g} fps "
            f"({100 / float(real):.0f}/100 s a frame) instead of {float(fps):.4g} fps")


def _fps_arg(fps: float) -> str:
    """ffmpeg rate text; NTSC rates as exact fractions (23.976 -> 24000/1001)."""
    for base in (24, 30, 48, 60, 120):
        if abs(fps - base * 1000 / 1001) < 0.005:
            return f"{base * 1000}/1001"
    return f"{fps:g}" if fps == round(fps, 6) else repr(fps)


def numbered_name(path: Path, n: int) -> Path:
    """``clip.mp4`` -> ``clip (n).mp4``; a folder ``frames`` -> ``frames (n)``."""
    suffix = path.suffix if path.suffix and not path.is_dir() else ""
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f"{stem} ({n}){suffix}")


def free_name(path: str | os.PathLike[str]) -> Path:
    """``path`` if nothing is there, else the first free ``name (2).ext``, ``name (3).ext``..."""
    dest = Path(path)
    if not os.path.lexists(dest):
        return dest
    n = 2
    while os.path.lexists(numbered_name(dest, n)):
        n += 1
    return numbered_name(dest, n)


def _os_error(exc: OSError, dest: Path, doing: str) -> EncodeError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"the disk holding {dest.parent} is full; free some space or choose another folder")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DestinationNotWritable(f"cannot write into {dest.parent} (no permission or read-only); "
                                      "choose another folder")
    if exc.errno == errno.ENOENT:
        return DestinationNotWritable(f"folder {dest.parent} does not exist; create it or choose another folder")
    return EncodeError(f"could not {doing} {dest}: {exc.strerror or exc}")


def write_failure(exc: OSError, dest: Path, doing: str) -> EncodeError:
    """The one-line error for an OSError while writing ``dest`` (a full disk, no permission)."""
    return _os_error(exc, dest, doing)


def _check_destination(dest: Path, fmt: ClipFormat, on_exists: str) -> Path:
    if on_exists not in ON_EXISTS_CHOICES:
        raise ValueError(f"on_exists must be one of {', '.join(ON_EXISTS_CHOICES)}, got {on_exists!r}")
    folder = dest.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DestinationNotWritable(f"cannot write {dest.name}: {folder} {what}; choose another folder")
    if os.path.lexists(dest):
        if on_exists == "error":
            raise DestinationExists(dest)
        if on_exists == "number":
            return free_name(dest)
        if dest.is_dir() != fmt.is_sequence:
            kind = "a folder" if dest.is_dir() else "a file"
            raise EncodeError(f"{dest} is {kind}; it cannot be replaced by a {fmt.label}")
    return dest


def _place(tmp: Path, dest: Path, on_exists: str, fmt: ClipFormat) -> Path:
    """Move a finished temp file / folder to its final name; returns the name used."""
    while True:
        if on_exists == "overwrite":
            if tmp.is_dir() and dest.is_dir():
                old = dest.with_name(leftovers.owned_name(dest.name, "old"))
                os.rename(dest, old)
                os.rename(tmp, dest)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, dest)
            return dest
        if os.path.lexists(dest):  # appeared while encoding
            if on_exists == "error":
                raise DestinationExists(dest)
            dest = free_name(dest)
            continue
        if tmp.is_dir():
            os.rename(tmp, dest)  # fails rather than replaces when dest is a non-empty folder
            return dest
        try:  # a hard link never replaces an existing file, so a racing writer is not clobbered
            os.link(tmp, dest)
        except FileExistsError:
            continue
        except OSError:  # file systems without hard links (FAT, some network shares)
            os.replace(tmp, dest)
            return dest
        tmp.unlink()
        return dest


class _StderrTail:
    """Drains a pipe on a thread (so ffmpeg never blocks on a full stderr) keeping the last lines."""

    def __init__(self, stream, lines: int = 40):  # noqa: ANN001
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream) -> None:  # noqa: ANN001
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            if line:
                self._lines.append(line)
        stream.close()

    def text(self) -> str:
        self._thread.join(timeout=5)
        return "\n".join(self._lines)


def _ffmpeg_failure(stderr: str, returncode: int | None, dest: Path, fmt: ClipFormat) -> EncodeError:
    log.error("ffmpeg failed writing %s (exit %s); last lines:\n%s", dest, returncode, stderr or "(nothing on stderr)")
    if "No space left on device" in stderr:
        return DiskFull(f"the disk holding {dest.parent} is full; free some space or choose another folder")
    if "Permission denied" in stderr or "Read-only file system" in stderr:
        return DestinationNotWritable(f"cannot write into {dest.parent} (no permission or read-only); "
                                      "choose another folder")
    return FfmpegFailed(f"ffmpeg could not write the {fmt.label} file {dest.name}; the details are in the log",
                        stderr)


def _metadata_file(metadata: Mapping[str, str], folder: Path) -> Path:
    """An ffmetadata file: no length limit and no quoting trouble, unlike ``-metadata k=v`` arguments."""

    def esc(text: str) -> str:
        out = str(text)
        for ch in ("\\", "=", ";", "#", "\n"):
            out = out.replace(ch, "\\" + ch)
        return out

    lines = [";FFMETADATA1"] + [f"{esc(k)}={esc(v)}" for k, v in metadata.items()]
    # text that is not valid Unicode (a lone surrogate from a shell) is written with a stand-in
    data = ("\n".join(lines) + "\n").encode("utf-8", "replace")
    path = leftovers.create_file(folder, "shotsketch-meta", "meta", ".txt")
    try:
        path.write_bytes(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


# ----------------------------------------------------------------------------- encode
def write_clip(
    frames: np.ndarray,
    path: str | os.PathLike[str],
    *,
    fmt: ClipFormat | str = ClipFormat.MP4,
    fps: float = 24.0,
    metadata: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_exists: OnExists = "error",
) -> Path:
    """Encode ``frames`` (uint8, [count, height, width, 3]) to ``path`` atomically.

    Returns the path written (a numbered one with ``on_exists="number"``). ``metadata``
    becomes container tags where the format has them (MP4 / MOV). ``progress(done, total)``
    is called after each frame; ``cancelled()`` is polled before each frame and, when true,
    stops ffmpeg, removes the temporary output and raises :class:`EncodeCancelled`.
    """
    frames = _check_frames(frames)
    count, height, width, _ = frames.shape
    return _encode(iter(frames), count, width, height, path, ClipFormat.parse(fmt), fps, metadata,
                   progress, cancelled, on_exists)


def _encode(
    frames: Iterator[np.ndarray],
    count: int,
    width: int,
    height: int,
    path: str | os.PathLike[str],
    fmt: ClipFormat,
    fps: float,
    metadata: Mapping[str, str] | None,
    progress: Callable[[int, int], None] | None,
    cancelled: Callable[[], bool] | None,
    on_exists: str,
) -> Path:
    fps = _check_fps(fps)
    rate_arg = _fps_arg(fps)
    if fmt is ClipFormat.GIF:
        real = gif_rate(fps)
        rate_arg = f"{real.numerator}/{real.denominator}"
    dest = _check_destination(Path(path), fmt, on_exists)
    geometry = frame_geometry(fmt, width, height)
    if geometry.changes_frames:
        log.info("%s: %dx%d frames written as %dx%d for %s", dest.name, width, height,
                 geometry.out_width, geometry.out_height, fmt.label)
    folder = dest.parent
    tmp: Path | None = None
    meta_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    ok = False
    try:
        try:
            # the temporary names carry this process's id: a kill leaves them, the next encode in
            # this folder removes them (core/leftovers.py)
            leftovers.clean(folder)
            if fmt.is_sequence:
                tmp = target = leftovers.create_folder(folder, dest.name, "part")
                target = tmp / PNG_PATTERN
            else:
                tmp = target = leftovers.create_file(folder, dest.name, "part", dest.suffix, default_file_mode())
            tags = dict(metadata or {}) if fmt.has_container_tags else {}
            if tags:
                meta_file = _metadata_file(tags, folder)
        except OSError as exc:
            raise _os_error(exc, dest, "write") from exc

        cmd = [ffmpeg_exe(), "-y", "-hide_banner", "-nostats", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{geometry.out_width}x{geometry.out_height}",
               "-r", rate_arg, "-i", "-"]
        if meta_file is not None:
            cmd += ["-f", "ffmetadata", "-i", str(meta_file), "-map", "0:v", "-map_metadata", "1"]
            if any(k not in _STANDARD_TAGS for k in tags):
                cmd += ["-movflags", "+use_metadata_tags"]
        else:
            cmd += ["-map_metadata", "-1"]
        cmd += [*_CODEC_ARGS[fmt], str(target)]
        log.debug("ffmpeg: %s", " ".join(cmd))
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.stdin is not None and proc.stderr is not None
        stderr = _StderrTail(proc.stderr)
        done = 0
        broken = False
        try:
            for frame in frames:
                if cancelled is not None and cancelled():
                    raise EncodeCancelled("encode cancelled")
                frame = np.asarray(frame)
                if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                    raise EncodeError(f"frame {done + 1} is {frame.dtype} {list(frame.shape)}; "
                                      f"expected uint8 [{height}, {width}, 3] like the first")
                proc.stdin.write(np.ascontiguousarray(geometry.apply(frame)).tobytes())
                done += 1
                if progress is not None:
                    progress(done, max(count, done))
            if cancelled is not None and cancelled():
                raise EncodeCancelled("encode cancelled")
            if done == 0:
                raise EncodeError("there are no frames to write")
            proc.stdin.close()
        except BrokenPipeError:
            broken = True  # ffmpeg stopped reading: its exit status and stderr say why
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # Windows reports a closed pipe as EINVAL
                raise
            broken = True
        returncode = proc.wait()
        if returncode != 0 or broken:
            raise _ffmpeg_failure(stderr.text(), returncode, dest, fmt)
        if fmt.is_sequence:
            written = sorted(tmp.glob(PNG_GLOB))
            if len(written) != done:
                raise FfmpegFailed(f"ffmpeg wrote {len(written)} of {done} frames of {dest.name}; "
                                   "the details are in the log", stderr.text())
        try:
            dest = _place(tmp, dest, on_exists, fmt)
        except OSError as exc:
            raise _os_error(exc, dest, "move the finished file to") from exc
        ok = True
        return dest
    finally:
        if proc is not None and not ok:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if proc is not None and proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except OSError:
                pass
        if meta_file is not None:
            meta_file.unlink(missing_ok=True)
        if tmp is not None and not ok:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- decode
def _source_input(path: Path) -> tuple[str, list[str]]:
    """ffmpeg input name and input options for a clip file or a PNG sequence folder."""
    if path.is_dir():
        if not any(path.glob(PNG_GLOB)):
            raise MissingSource(f"{path} holds no {PNG_GLOB} frames; is it a Shotsketch PNG sequence?")
        return str(path / PNG_PATTERN), ["-start_number", "1"]
    return str(path), []


def _require_source(path: str | os.PathLike[str]) -> Path:
    src = Path(path)
    if not src.exists():
        raise MissingSource(f"the take's file {src} is missing (deleted or moved?); "
                            "generate it again from its recipe or pick another take")
    return src


def iter_frames(path: str | os.PathLike[str]) -> tuple[dict, Iterator[np.ndarray]]:
    """Metadata (imageio-ffmpeg's: size, fps, duration...) and a lazy iterator of RGB frames."""
    import imageio_ffmpeg

    src = _require_source(path)
    name, input_params = _source_input(src)
    reader = imageio_ffmpeg.read_frames(name, pix_fmt="rgb24", input_params=input_params or None)
    try:
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        log.error("could not open %s for decoding: %s", src, exc)
        raise EncodeError(f"{src.name} could not be read as a video; is it a clip Shotsketch wrote?") from exc
    width, height = meta["size"]

    def frames() -> Iterator[np.ndarray]:
        try:
            for buf in reader:
                yield np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3)
        finally:
            reader.close()

    return meta, frames()


def read_frames(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a clip (or a PNG sequence folder) to uint8 RGB frames [count, height, width, 3]."""
    meta, frames = iter_frames(path)
    width, height = meta["size"]
    out = list(frames)
    return np.stack(out) if out else np.zeros((0, height, width, 3), np.uint8)


def count_frames(path: str | os.PathLike[str]) -> int:
    """Exact frame count, by decoding (fast for short clips)."""
    import imageio_ffmpeg

    src = _require_source(path)
    if src.is_dir():
        return len(list(src.glob(PNG_GLOB)))
    try:
        frames, _secs = imageio_ffmpeg.count_frames_and_secs(str(src))
    except (OSError, RuntimeError) as exc:
        log.error("could not count frames of %s: %s", src, exc)
        raise EncodeError(f"{src.name} could not be read as a video; is it a clip Shotsketch wrote?") from exc
    return int(frames)


def read_container_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The container's global tags (title, comment, ...) as ffmpeg reads them."""
    src = _require_source(path)
    if src.is_dir():
        return {}
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(src),
                           "-f", "ffmetadata", "-"], capture_output=True)
    if proc.returncode != 0:
        log.error("ffmpeg could not read the tags of %s: %s", src, proc.stderr.decode(errors="replace")[-2000:])
        raise EncodeError(f"could not read the tags of {src.name}; is it a video file?")
    return _parse_ffmetadata(proc.stdout.decode("utf-8", errors="replace"))


def _parse_ffmetadata(text: str) -> dict[str, str]:
    """Parse ffmpeg's ffmetadata (backslash escapes ``= ; # \\`` and newline), global section only."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line or line.startswith((";", "#")):
            continue
        if line.startswith("["):
            break  # [STREAM] / [CHAPTER] sections
        # join continuation lines: an escaped newline ends the line with an odd run of backslashes
        while (len(line) - len(line.rstrip("\\"))) % 2 == 1 and i < len(lines):
            line = line + "\n" + lines[i]
            i += 1
        key_chars: list[str] = []
        value_chars: list[str] = []
        target = key_chars
        j = 0
        while j < len(line):
            ch = line[j]
            if ch == "\\" and j + 1 < len(line):
                target.append(line[j + 1])
                j += 2
                continue
            if ch == "=" and target is key_chars:
                target = value_chars
            else:
                target.append(ch)
            j += 1
        if target is value_chars:
            out["".join(key_chars)] = "".join(value_chars)
    return out


# ----------------------------------------------------------------------------- export
def export_take(
    source_clip: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    fmt: ClipFormat | str = ClipFormat.MP4,
    *,
    fps: float | None = None,
    metadata: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_exists: OnExists = "error",
) -> Path:
    """Re-encode an existing clip (file or PNG sequence folder) to ``dest`` in ``fmt``.

    Frames are decoded with imageio-ffmpeg and streamed into the encoder, so a long clip is
    never held in memory whole. ``fps`` defaults to the source's rate; giving another one
    re-times the clip (the same frames, played faster or slower), it does not drop or add
    frames. ``metadata`` defaults to the source's own title / comment tags.
    """
    fmt = ClipFormat.parse(fmt)
    src = _require_source(source_clip)
    if Path(dest).resolve() == src.resolve():
        raise EncodeError(f"{src.name} cannot be exported onto itself; choose another destination")
    if metadata is None:
        try:
            tags = read_container_metadata(src)
        except EncodeError:
            tags = {}
        metadata = {k: v for k, v in tags.items() if k in ("title", "comment")}
    total = count_frames(src)
    meta, frames = iter_frames(src)
    width, height = meta["size"]
    rate = fps if fps is not None else (meta.get("fps") or 24.0)
    try:
        return _encode(frames, total, width, height, dest, fmt, rate, metadata, progress, cancelled, on_exists)
    finally:
        frames.close()  # type: ignore[attr-defined]


def suggested_name(stem: str, fmt: ClipFormat | str) -> str:
    """A file (or folder) name for a clip in ``fmt``: ``stem.mp4``, ``stem.mov``, ``stem`` (PNG)."""
    fmt = ClipFormat.parse(fmt)
    return stem + fmt.extension


def clip_formats() -> Iterable[ClipFormat]:
    return tuple(ClipFormat)
