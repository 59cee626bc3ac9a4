"""What a clip file is: codec, profile, pixel format, size, rate and frame count, read from ffmpeg.

imageio-ffmpeg ships ffmpeg but not ffprobe, so this parses the stream line ``ffmpeg -i`` prints
on stderr (``Video: prores (HQ) (apch / 0x...), yuv422p10le(tv, bt709, progressive), 66x50, ...``)
and counts frames by decoding.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from shotsketch.media.encode import PNG_PATTERN, EncodeError, _require_source, count_frames, ffmpeg_exe, gif_rate

log = logging.getLogger(__name__)


class ProbeError(EncodeError):
    pass


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    codec: str        # ffmpeg's decoder name: h264, prores, dnxhd, png, gif
    profile: str      # "High", "HQ", "DNXHR HQ"; "" when ffmpeg names none
    pix_fmt: str      # yuv420p, yuv422p10le, rgb24, ...
    width: int
    height: int
    fps: float
    frames: int

    @property
    def rate(self) -> Fraction:
        if self.codec == "gif":  # frame times in whole hundredths: ffmpeg prints 16.67 for 100/6
            return gif_rate(self.fps)
        return exact_rate(self.fps)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


_NTSC = {23.976: Fraction(24000, 1001), 29.97: Fraction(30000, 1001), 47.952: Fraction(48000, 1001),
         59.94: Fraction(60000, 1001), 119.88: Fraction(120000, 1001)}


def exact_rate(fps: float) -> Fraction:
    """24.0 -> 24; 23.98 / 23.976 -> 24000/1001 (ffmpeg prints NTSC rates rounded)."""
    for approx, exact in _NTSC.items():
        if abs(fps - approx) < 0.006:
            return exact
    return Fraction(fps).limit_denominator(1001)


def _split_top(text: str) -> list[str]:
    """Split on ', ' outside parentheses / brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def parse_stream_line(stderr: str) -> dict[str, object]:
    """Codec, profile, pix_fmt, width, height, fps of the first video stream in ``ffmpeg -i`` output."""
    match = re.search(r"Stream #\d+:\d+[^:]*: Video: (.*)", stderr)
    if not match:
        raise ValueError("no video stream")
    parts = _split_top(match.group(1))
    head = parts[0]
    codec = head.split()[0]
    groups = re.findall(r"\(([^()]*)\)", head)
    profile = groups[0] if groups and " / 0x" not in groups[0] else ""
    pix_fmt = parts[1].split("(")[0].strip() if len(parts) > 1 else ""
    size = next((m for part in parts[1:] if (m := re.match(r"(\d+)x(\d+)\b", part))), None)
    fps = re.search(r"([\d.]+)(k?) fps", match.group(1)) or re.search(r"([\d.]+)(k?) tbr", match.group(1))
    if not size or not fps:
        raise ValueError("no size or frame rate")
    rate = float(fps.group(1)) * (1000 if fps.group(2) else 1)
    return {"codec": codec, "profile": profile, "pix_fmt": pix_fmt,
            "width": int(size.group(1)), "height": int(size.group(2)), "fps": rate}


def probe_video(path: str | os.PathLike[str], *, frames: bool = True) -> VideoInfo:
    """Describe a clip file (or a PNG sequence folder); ``frames=False`` skips the decode to count."""
    src = _require_source(path)
    args = ["-start_number", "1", "-i", str(src / PNG_PATTERN)] if src.is_dir() else ["-i", str(src)]
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args], capture_output=True)
    stderr = proc.stderr.decode(errors="replace")
    try:
        fields = parse_stream_line(stderr)
    except ValueError:
        log.error("ffmpeg could not describe %s:\n%s", src, stderr[-2000:])
        raise ProbeError(f"{src.name} is not a video ffmpeg can read") from None
    count = count_frames(src) if frames else 0
    return VideoInfo(path=src, frames=count, **fields)  # type: ignore[arg-type]
