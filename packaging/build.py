"""Build Shotsketch's installers.

    python packaging/build.py --target deb|tarball|nsis|macos-app --out dist/
    python packaging/build.py --target tarball --wheelhouse DIR --out dist/   # the offline bundle

Every target carries the same three things: the launcher (frozen with PyInstaller on the OS it is
for: PyInstaller does not cross-build), and a payload folder with the lock files for that OS, the
app's wheel and uv. ``deb`` and ``tarball`` freeze the launcher here (Linux). ``nsis`` and
``macos-app`` take a launcher frozen on Windows / a Mac (``--frozen DIR``; the release workflow does
that); without it they wrap a stand-in payload, which checks the installer script and nothing more.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGING = REPO / "packaging"
sys.path.insert(0, str(PACKAGING / "launcher"))
sys.path.insert(0, str(REPO / "desktop"))

from shotsketch import __version__ as VERSION  # noqa: E402

# What the frozen launcher and the app's PySide6 window need on Debian/Ubuntu: the launcher in a
# bare `debootstrap --variant=minbase bookworm` chroot lacked libGL, libEGL, libxcb and fonts
# (packaging/test-deb.sh prints it; PyInstaller bundles the other X libraries), and `ldd` on the
# PySide6 wheel's Qt libraries (shotsketch.qtcheck) names the xcb set the app in the engine needs;
# plus python3 for an engine built offline. Without fonts every letter is a box.
DEB_DEPENDS = [ "libgl1", "libegl1", "libopengl0", "libglib2.0-0", "libfontconfig1", "libfreetype6",
    "fontconfig", "fonts-dejavu-core", "libdbus-1-3", "libx11-6", "libx11-xcb1", "libxcb1", "libxcb-cursor0",
    "libxcb-icccm4", "libxcb-image0", "libxcb-keysyms1", "libxcb-randr0", "libxcb-render-util0",
    "libxcb-render0", "libxcb-shape0", "libxcb-shm0", "libxcb-sync1", "libxcb-xfixes0", "libxcb-xkb1",
    "libxcb-util1", "libxkbcommon0", "libxkbcommon-x11-0", "zlib1g",
    "python3 (>= 3.11) | python3.12 | python3.13", "ca-certificates",
]
DEB_RECOMMENDS = ["libxcb-xinput0", "xdg-utils"]
# PyInstaller collects Qt's xcb platform library (libQt6XcbQpa) and the xcb libraries beside it only
# where the build machine can load the xcb plugin: built on a bare Ubuntu 22.04 the launcher opened
# no window on Ubuntu 24.04 or Debian 13 ("Could not load the Qt platform plugin xcb", exit 134).
# The build machine needs these (the release workflow installs them); build.py checks the result.
BUILD_MACHINE_PACKAGES = ["libgl1", "libegl1", "libopengl0", "libfontconfig1", "libdbus-1-3", "libxkbcommon-x11-0",
                          "libxcb-cursor0", "libxcb-icccm4", "libxcb-image0", "libxcb-keysyms1", "libxcb-randr0",
                          "libxcb-render-util0", "libxcb-shape0", "libxcb-xkb1", "libxcb-xinput0"]
QT_XCB_LIBRARY = "libQt6XcbQpa.so.6"
DESKTOP_ENTRY = """[Desktop Entry]
Type=Application
Name=Shotsketch
GenericName=Video generator
Comment=Sketch a shot and generate it on your GPU
Exec={exec} %F
Icon={icon}
Terminal=false
Categories=AudioVideo;Video;
StartupWMClass=shotsketch
Actions=engine-settings;

[Desktop Action engine-settings]
Name=Video engine settings (Repair, switch GPU backend, remove the engine)
Exec={exec} --engine-settings
"""
POSTRM = """#!/bin/sh
set -e
if [ "$1" = purge ]; then
    echo "Shotsketch was removed. Each user's video engine stays in ~/.local/share/shotsketch-engine"
    echo "(remove it from Shotsketch's engine settings before uninstalling, or delete that folder);"
    echo "the library, clips and models in ~/.local/share/Shotsketch and the Hugging Face cache stay too."
fi
exit 0
"""


def run(command: list[str], **kwargs) -> None:
    print("+", " ".join(str(c) for c in command), flush=True)
    subprocess.run([str(c) for c in command], check=True, **kwargs)


# -- the pieces every target carries ------------------------------------------------------------

def freeze_launcher(work: Path, windowed: bool = False) -> Path:
    """PyInstaller one-folder launcher named ``shotsketch``; returns its folder."""
    spec_dir = work / "spec"
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--onedir", "--name", "shotsketch",
               "--distpath", work / "frozen", "--workpath", work / "pyi", "--specpath", spec_dir,
               "--paths", PACKAGING / "launcher", "--paths", REPO / "desktop",
               "--hidden-import", "shotsketch.qtcheck", "--collect-submodules", "shotsketch_launcher",
               "--exclude-module", "torch", "--exclude-module", "numpy", "--exclude-module", "tkinter",
               "--exclude-module", "PySide6.QtNetwork", "--exclude-module", "PySide6.QtQml",
               "--exclude-module", "PySide6.QtQuick", "--exclude-module", "PySide6.QtPdf",
               "--exclude-module", "PySide6.QtOpenGL", "--exclude-module", "PySide6.QtSvg"]
    if sys.platform.startswith("linux"):
        command.append("--strip")
    if windowed:
        command.append("--windowed")
    icon = PACKAGING / "icons" / ("shotsketch.ico" if os.name == "nt" else "shotsketch-256.png")
    if icon.exists() and sys.platform != "linux":
        command += ["--icon", icon]
    command.append(PACKAGING / "launcher" / "shotsketch_launcher" / "__main__.py")
    run(command)
    frozen = work / "frozen" / ("shotsketch.app" if windowed and sys.platform == "darwin" else "shotsketch")
    return frozen


def check_frozen_for_linux(frozen: Path) -> None:
    """A Linux launcher that lacks Qt's xcb platform library opens no window anywhere: stop the build."""
    if not any(frozen.rglob(QT_XCB_LIBRARY)):
        raise SystemExit(f"build.py: the frozen launcher in {frozen} lacks {QT_XCB_LIBRARY} (Qt's xcb platform: "
                         "PyInstaller leaves it out where this machine cannot load the xcb plugin); install "
                         f"`sudo apt-get install {' '.join(BUILD_MACHINE_PACKAGES)}` and build again")


def app_wheel(work: Path) -> Path:
    out = work / "wheels"
    out.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, REPO])
    return next(out.glob("shotsketch-*.whl"))


def uv_binary(os_name: str, work: Path) -> Path:
    """uv for the target OS: this machine's for Linux, the PyPI wheel's for another OS."""
    if os_name == "linux" and sys.platform.startswith("linux"):
        found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
        if Path(found).exists():
            return Path(found)
    platform_tag = {"windows": "win_amd64", "macos": "macosx_11_0_arm64", "linux": "manylinux_2_17_x86_64"}[os_name]
    folder = work / f"uv-{os_name}"
    run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
         "--platform", platform_tag, "-d", folder, "uv"])
    wheel = next(folder.glob("uv-*.whl"))
    name = "uv.exe" if os_name == "windows" else "uv"
    with zipfile.ZipFile(wheel) as archive:
        member = next(m for m in archive.namelist() if m.endswith(f".data/scripts/{name}"))
        target = folder / name
        target.write_bytes(archive.read(member))
    target.chmod(0o755)
    return target


def make_payload(dest: Path, os_name: str, work: Path, wheelhouse: Path | None = None) -> Path:
    """payload/{locks, wheels/shotsketch-*.whl, uv[, wheelhouse]} for one OS."""
    payload = dest / "payload"
    (payload / "locks").mkdir(parents=True, exist_ok=True)
    (payload / "wheels").mkdir(exist_ok=True)
    for lock in sorted((PACKAGING / "locks").glob(f"{os_name}-*")):
        shutil.copy2(lock, payload / "locks" / lock.name)
    shutil.copy2(app_wheel(work), payload / "wheels")
    uv_name = "uv.exe" if os_name == "windows" else "uv"
    shutil.copy2(uv_binary(os_name, work), payload / uv_name)
    if wheelhouse is not None:
        shutil.copytree(wheelhouse, payload / "wheelhouse")
    return payload


def stand_in_launcher(dest: Path, os_name: str) -> Path:
    """A placeholder where the launcher frozen on its own OS would go (checks the installer script only)."""
    dest.mkdir(parents=True, exist_ok=True)
    name = {"windows": "shotsketch.exe", "macos": "shotsketch", "linux": "shotsketch"}[os_name]
    (dest / name).write_text("stand-in: the launcher frozen with PyInstaller on this OS goes here\n")
    (dest / "STAND-IN.txt").write_text("This package wraps a stand-in payload; build it on its OS for a real one.\n")
    return dest


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# -- targets ------------------------------------------------------------------------------------

def build_deb(out: Path, work: Path, args: argparse.Namespace) -> Path:
    root = work / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    opt = root / "opt" / "shotsketch"
    frozen = args.frozen or freeze_launcher(work)
    check_frozen_for_linux(frozen)
    shutil.copytree(frozen, opt, symlinks=True)
    make_payload(opt, "linux", work, args.wheelhouse)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "shotsketch").symlink_to("/opt/shotsketch/shotsketch")
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    (apps / "shotsketch.desktop").write_text(DESKTOP_ENTRY.format(exec="/usr/bin/shotsketch", icon="shotsketch"))
    for size, src in (("256x256", "shotsketch-256.png"), ("scalable", "shotsketch.svg")):
        icons = root / "usr" / "share" / "icons" / "hicolor" / size / "apps"
        icons.mkdir(parents=True)
        shutil.copy2(PACKAGING / "icons" / src, icons / ("shotsketch" + Path(src).suffix))
    doc = root / "usr" / "share" / "doc" / "shotsketch"
    doc.mkdir(parents=True)
    shutil.copy2(PACKAGING / "README.md", doc / "README.packaging.md")
    debian = root / "DEBIAN"
    debian.mkdir()
    installed_kb = _size(root) // 1024
    glibc = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]  # the frozen launcher needs the build machine's
    depends = [f"libc6 (>= {glibc})", *DEB_DEPENDS]
    (debian / "control").write_text(
        f"Package: shotsketch\nVersion: {VERSION}\nArchitecture: amd64\nMaintainer: Shotsketch <shotsketch@localhost>\n"
        f"Installed-Size: {installed_kb}\nDepends: {', '.join(depends)}\nRecommends: {', '.join(DEB_RECOMMENDS)}\n"
        "Section: video\nPriority: optional\nDescription: Sketch a shot, generate it locally with Wan2.2 TI2V-5B\n"
        " The launcher sets up the video engine (PyTorch for this computer's GPU) on first start,\n"
        " in the user's data folder, and keeps it up to date.\n")
    postrm = debian / "postrm"
    postrm.write_text(POSTRM)
    postrm.chmod(0o755)
    deb = out / f"shotsketch_{VERSION}_amd64.deb"
    # zstd: xz took over 7 minutes on a busy 2-core machine; dpkg reads zstd since Debian 12 and Ubuntu 21.10
    run(["dpkg-deb", "--root-owner-group", "-Zzstd", "-z9", "--build", root, deb])
    return deb


def build_tarball(out: Path, work: Path, args: argparse.Namespace) -> Path:
    name = f"shotsketch-{VERSION}-linux-x86_64" + ("-offline" if args.wheelhouse else "")
    top = work / "tar" / name
    shutil.rmtree(top.parent, ignore_errors=True)
    frozen = args.frozen or freeze_launcher(work)
    check_frozen_for_linux(frozen)
    shutil.copytree(frozen, top, symlinks=True)
    make_payload(top, "linux", work, args.wheelhouse)
    shutil.copy2(PACKAGING / "icons" / "shotsketch-256.png", top / "shotsketch.png")
    # Exec is relative here; `./shotsketch --install-desktop-entry` writes one with this folder's path.
    (top / "shotsketch.desktop").write_text(DESKTOP_ENTRY.format(exec="shotsketch", icon="shotsketch"))
    tarball = out / f"{name}.tar.gz"
    with tarfile.open(tarball, "w:gz", compresslevel=6) as tar:
        tar.add(top, arcname=name)
    return tarball


def build_nsis(out: Path, work: Path, args: argparse.Namespace) -> Path:
    stage = work / "nsis"
    shutil.rmtree(stage, ignore_errors=True)
    if args.frozen or os.name == "nt":
        shutil.copytree(args.frozen or freeze_launcher(work, windowed=True), stage / "app")
    else:
        stand_in_launcher(stage / "app", "windows")
    make_payload(stage / "app", "windows", work, args.wheelhouse)
    shutil.copy2(PACKAGING / "windows" / "shotsketch.nsi", stage / "shotsketch.nsi")
    _write_ico(PACKAGING / "icons" / "shotsketch-256.png", stage / "shotsketch.ico")
    exe = out.resolve() / f"Shotsketch-{VERSION}-setup.exe"
    run(["makensis", "-V2", f"-DVERSION={VERSION}", f"-DOUTFILE={exe}", stage / "shotsketch.nsi"])
    return exe


def _write_ico(png: Path, ico: Path) -> None:
    """A one-image .ico holding the 256 px PNG (Windows Vista and newer read PNG inside .ico)."""
    data = png.read_bytes()
    header = (0).to_bytes(2, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
    entry = bytes([0, 0, 0, 0]) + (1).to_bytes(2, "little") + (32).to_bytes(2, "little") \
        + len(data).to_bytes(4, "little") + (22).to_bytes(4, "little")
    ico.write_bytes(header + entry + data)


INFO_PLIST = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>CFBundleName</key><string>Shotsketch</string>
<key>CFBundleDisplayName</key><string>Shotsketch</string>
<key>CFBundleIdentifier</key><string>org.shotsketch.Shotsketch</string>
<key>CFBundleVersion</key><string>{version}</string>
<key>CFBundleShortVersionString</key><string>{version}</string>
<key>CFBundleExecutable</key><string>shotsketch</string>
<key>CFBundlePackageType</key><string>APPL</string>
<key>CFBundleIconFile</key><string>shotsketch.png</string>
<key>LSMinimumSystemVersion</key><string>14.0</string>
<key>LSArchitecturePriority</key><array><string>arm64</string></array>
<key>NSHighResolutionCapable</key><true/>
</dict></plist>
"""


def build_macos_app(out: Path, work: Path, args: argparse.Namespace) -> Path:
    app = out / "Shotsketch.app"
    shutil.rmtree(app, ignore_errors=True)
    macos = app / "Contents" / "MacOS"
    if args.frozen:
        shutil.copytree(args.frozen, macos, symlinks=True)
    elif sys.platform == "darwin":
        shutil.copytree(freeze_launcher(work), macos, symlinks=True)
    else:
        stand_in_launcher(macos, "macos")
    make_payload(macos, "macos", work, args.wheelhouse)
    resources = app / "Contents" / "Resources"
    resources.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PACKAGING / "icons" / "shotsketch-256.png", resources / "shotsketch.png")
    (app / "Contents" / "Info.plist").write_text(INFO_PLIST.format(version=VERSION))
    return app


TARGETS = {"deb": build_deb, "tarball": build_tarball, "nsis": build_nsis, "macos-app": build_macos_app}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, choices=sorted(TARGETS))
    parser.add_argument("--out", type=Path, default=Path("dist"))
    parser.add_argument("--frozen", type=Path, help="a launcher already frozen with PyInstaller on the target OS")
    parser.add_argument("--wheelhouse", type=Path, help="wheels to ship for installs with no network (offline bundle)")
    parser.add_argument("--work", type=Path, help="build folder (default: a temporary one)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="shotsketch-build-"))
    started = time.monotonic()
    result = TARGETS[args.target](args.out, work, args)
    print(f"built {result} ({_size(result) / 1e6:.1f} MB) in {time.monotonic() - started:.0f} s")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
