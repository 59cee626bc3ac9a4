"""Can the window open on this machine? Checked before Qt starts.

On Linux, Qt aborts with "Could not load the Qt platform plugin "xcb"" when a system library of its
X11 plugin is missing (a bare Debian has no libxcb-cursor0, libxcb-icccm4, ...), and draws every
letter as a box when no font is installed. This module finds those libraries (with ``ldd`` on
PySide6's own files, or by loading them where ``ldd`` is absent) and says in one line what is
missing and the command that installs it. It imports no Qt, so it also runs in the launcher.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# The Debian/Ubuntu package of each shared library PySide6's X11 window needs (names from
# `ldd` on PySide6's Qt libraries and the xcb plugin, package names from `dpkg -S`).
DEBIAN_PACKAGES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-util.so.1": "libxcb-util1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libpcre2-8.so.0": "libpcre2-8-0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libz.so.1": "zlib1g",
}
FONTS_PACKAGE = "fonts-dejavu-core"
FONT_FOLDERS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".pfb", ".pcf", ".pcf.gz")
# PySide6's files whose libraries the X11 window loads (relative to the PySide6 folder).
QT_FILES = ("Qt/lib/libQt6Gui.so.6", "Qt/lib/libQt6Widgets.so.6", "Qt/lib/libQt6XcbQpa.so.6",
            "Qt/lib/libQt6DBus.so.6", "Qt/plugins/platforms/libqxcb.so")


@dataclass(frozen=True)
class WindowCheck:
    """What stops the window from opening well: missing libraries (by soname) and fonts."""

    missing_libraries: tuple[str, ...] = ()
    fonts_missing: bool = False

    @property
    def ok(self) -> bool:
        return not self.missing_libraries and not self.fonts_missing

    def packages(self) -> list[str]:
        names = [DEBIAN_PACKAGES.get(lib, lib) for lib in self.missing_libraries]
        if self.fonts_missing:
            names.append(FONTS_PACKAGE)
        return sorted(dict.fromkeys(names))

    def message(self, program: str = "shotsketch") -> str:
        """One line a person can act on."""
        what = []
        if self.missing_libraries:
            what.append("missing system libraries " + ", ".join(self.missing_libraries))
        if self.fonts_missing:
            what.append("no fonts installed")
        return (f"{program}: the window cannot open: {'; '.join(what)}. "
                f"Install them with: sudo apt-get install {' '.join(self.packages())} "
                "(other distributions: the packages that provide these files)")


def uses_x11(environ: dict[str, str] | None = None) -> bool:
    """Whether Qt will use its X11 (xcb) plugin here."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(";")[0].split(":")[0] == "xcb"
    return bool(env.get("DISPLAY"))


def pyside_folder() -> Path | None:
    """PySide6's folder, found without importing Qt (also inside a frozen launcher)."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen and (Path(frozen) / "PySide6").is_dir():
        return Path(frozen) / "PySide6"
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def parse_ldd(output: str) -> list[str]:
    """Sonames ``ldd`` reports as ``not found``."""
    missing = []
    for line in output.splitlines():
        name, sep, rest = line.strip().partition("=>")
        if sep and rest.strip().startswith("not found"):
            missing.append(name.strip())
    return missing


def _missing_by_ldd(files: list[Path], ldd: str) -> list[str]:
    missing: list[str] = []
    for file in files:
        try:
            out = subprocess.run([ldd, str(file)], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        missing += parse_ldd(out)
    return missing


def _missing_by_loading() -> list[str]:
    missing = []
    for soname in DEBIAN_PACKAGES:
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(soname)
    return missing


def fonts_installed(folders: tuple[str, ...] = FONT_FOLDERS) -> bool:
    """Whether fontconfig knows a font (asked with ``fc-list`` where it exists)."""
    fc_list = shutil.which("fc-list")
    if fc_list:
        try:
            return bool(subprocess.run([fc_list], capture_output=True, text=True, timeout=20).stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    for folder in folders:
        root = Path(folder).expanduser()
        if not root.is_dir():
            continue
        for _dir, _subdirs, names in os.walk(root):
            if any(name.lower().endswith(FONT_SUFFIXES) for name in names):
                return True
    return False


def check_window(pyside: Path | None = None) -> WindowCheck:
    """Find what the X11 window lacks on this machine (nothing is checked elsewhere)."""
    if not uses_x11():
        return WindowCheck()
    pyside = pyside or pyside_folder()
    files = [pyside / name for name in QT_FILES] if pyside else []
    files = [f for f in files if f.exists()]
    ldd = shutil.which("ldd")
    missing = _missing_by_ldd(files, ldd) if ldd and files else _missing_by_loading()
    # Qt's own libraries are found through its RPATH when it runs; only system ones matter.
    missing = [m for m in dict.fromkeys(missing) if not m.startswith("libQt6")]
    return WindowCheck(tuple(missing), fonts_missing=not fonts_installed())


def window_problem(program: str = "shotsketch") -> str | None:
    """One line naming the missing libraries and the command that installs them, or None when the
    window can open. A machine without fonts gets the line too (every letter would be a box)."""
    if os.environ.get("SHOTSKETCH_SKIP_QT_CHECK") == "1":
        return None
    result = check_window()
    return None if result.ok else result.message(program)


if __name__ == "__main__":
    line = window_problem()
    print(line or "shotsketch: the window can open here")
    sys.exit(3 if line else 0)
