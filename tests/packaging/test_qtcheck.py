"""The app's own check before Qt starts: missing X11 libraries named in one line, with the command."""

import os
import stat

from shotsketch import qtcheck
from shotsketch.qtcheck import WindowCheck, check_window, parse_ldd, uses_x11

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd5a3f2000)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibQt6Gui.so.6 => /opt/shotsketch/_internal/PySide6/Qt/lib/libQt6Gui.so.6 (0x00007f0d1c000000)
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f0d1bfd0000)
"""


def test_ldd_not_found_lines():
    assert parse_ldd(LDD_OUTPUT) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]


def test_one_line_with_the_libraries_and_the_apt_command():
    line = WindowCheck(("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libGL.so.1"), fonts_missing=True).message()
    assert "\n" not in line
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4, libGL.so.1" in line
    assert "sudo apt-get install fonts-dejavu-core libgl1 libxcb-cursor0 libxcb-icccm4" in line


def test_only_the_x11_window_is_checked():
    assert uses_x11({"DISPLAY": ":0"}) == os.sys.platform.startswith("linux")
    assert not uses_x11({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"})
    assert not uses_x11({"WAYLAND_DISPLAY": "wayland-0"})
    assert uses_x11({"QT_QPA_PLATFORM": "xcb"}) == os.sys.platform.startswith("linux")


def test_missing_libraries_found_through_ldd(tmp_path, monkeypatch):
    pyside = tmp_path / "PySide6"
    (pyside / "Qt" / "plugins" / "platforms").mkdir(parents=True)
    (pyside / "Qt" / "plugins" / "platforms" / "libqxcb.so").write_bytes(b"")
    ldd = tmp_path / "ldd"
    ldd.write_text("#!/bin/sh\ncat <<'X'\n" + LDD_OUTPUT + "X\n")
    ldd.chmod(ldd.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(qtcheck.shutil, "which", lambda name: str(ldd) if name == "ldd" else None)
    monkeypatch.setattr(qtcheck, "fonts_installed", lambda *a: True)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(qtcheck.sys, "platform", "linux")
    assert check_window(pyside) == WindowCheck(("libxcb-cursor.so.0", "libxcb-icccm.so.4"))


def test_the_gui_entry_prints_the_line_instead_of_starting_qt(monkeypatch, capsys):
    from shotsketch.cli import main

    monkeypatch.setattr(qtcheck, "check_window", lambda: WindowCheck(("libxcb-cursor.so.0",)))
    assert main([]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("shotsketch: the window cannot open: missing system libraries libxcb-cursor.so.0")
    assert "apt-get install libxcb-cursor0" in err
