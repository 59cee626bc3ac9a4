#!/usr/bin/env bash
# The .deb as a creator meets it, on a bare Debian: build the package, install it with apt into a
# fresh `debootstrap --variant=minbase bookworm` chroot, start the launcher under Xvfb with a local
# wheelhouse of the CPU backend (offline), let it build the engine and open the app with the demo
# model (screenshots), generate one demo clip headlessly through the installed app, purge the
# package, and show that the user's library is still there. Prints sizes and times.
#
#   bash packaging/test-deb.sh [WORK_FOLDER]      (root; needs debootstrap, xvfb; ~15 min, ~4 GB)
#   DEB=dist/shotsketch_0.1.0_amd64.deb bash packaging/test-deb.sh   (test a .deb built before)
#   WHEELHOUSE=wheelhouse ...   (the CPU wheels made before; else pip downloads them, torch's CPU
#   build from TORCH_INDEX=https://download.pytorch.org/whl/cpu or a folder pip already finds)
#
# Heavy (debootstrap, PyInstaller): not part of .ci/run.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-/tmp/shotsketch-test-deb}
CHROOT=$WORK/chroot
DISPLAY_NUM=${DISPLAY_NUM:-97}
USER_HOME=/home/creator
LOCK=$REPO/packaging/locks/linux-cpu-py311.txt   # bookworm's Python is 3.11
mkdir -p "$WORK"
say() { printf '\n== %s\n' "$*"; }
seconds() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.1f}')"; }

for tool in debootstrap Xvfb dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "test-deb.sh: $tool is missing: apt-get install -y debootstrap xvfb dpkg-dev"; exit 2; }
done

cleanup() {
    set +e
    [ -n "${XVFB_PID:-}" ] && kill "$XVFB_PID" 2>/dev/null
    for m in tmp/.X11-unix dev/shm dev/pts dev proc sys; do
        mountpoint -q "$CHROOT/$m" && umount -l "$CHROOT/$m"
    done
}
trap cleanup EXIT

say "build tools (PyInstaller, PySide6, uv) in $WORK/build-venv"
if [ ! -x "$WORK/build-venv/bin/pyinstaller" ]; then
    python3 -m venv "$WORK/build-venv"
    "$WORK/build-venv/bin/pip" install -q pyinstaller uv platformdirs \
        "pyside6-essentials>=6.7,!=6.12.0"
fi
export PATH="$WORK/build-venv/bin:$PATH"

if [ -n "${DEB:-}" ]; then
    say "the .deb given: $DEB"
    rm -rf "$WORK/build/deb-root" && mkdir -p "$WORK/build/deb-root" && dpkg-deb -x "$DEB" "$WORK/build/deb-root"
else
    say "build the .deb"
    t0=$(seconds)
    rm -rf "$WORK/dist"
    # FROZEN=dir reuses a launcher frozen before (PyInstaller takes minutes on a busy machine)
    python packaging/build.py --target deb --out "$WORK/dist" --work "$WORK/build" ${FROZEN:+--frozen "$FROZEN"} 2>&1 | grep -v "^WARNING: Location" | tail -3
    DEB=$(ls "$WORK"/dist/shotsketch_*_amd64.deb)
    echo "built in $(elapsed "$t0" "$(seconds)") s"
fi

grep -E '^[A-Za-z0-9_.-]+==' "$LOCK" | sed 's/ *;.*//' > "$WORK/pins.txt"
if [ -n "${WHEELHOUSE:-}" ]; then
    # WHEELHOUSE=dir: the wheels made before (the release workflow's offline bundle)
    say "the wheelhouse given: $WHEELHOUSE"
    rm -rf "$WORK/wheelhouse" && cp -a "$WHEELHOUSE" "$WORK/wheelhouse"
else
    # torch's CPU wheel comes from the lock's CPU index, or from a folder pip is set up to find
    say "wheelhouse of the CPU backend (from $(basename "$LOCK"))"
    mkdir -p "$WORK/wheelhouse"
    pip download -q --no-deps --only-binary :all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform linux_x86_64 \
        ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} \
        -d "$WORK/wheelhouse" -r "$WORK/pins.txt" 2>&1 | grep -v "^WARNING: Location" || true
fi
# every pin must be there: a missing one (torch's CPU build where no index has it) fails here, not
# as a failed engine build minutes later
missing=$(python3 - "$WORK/pins.txt" "$WORK/wheelhouse" <<'PY'
import re, sys
from pathlib import Path
norm = lambda s: re.sub(r"[-_.]+", "_", s).lower()
have = {(norm(w.name.split("-")[0]), w.name.split("-")[1]) for w in Path(sys.argv[2]).glob("*.whl")}
pins = [l.strip().split("==") for l in open(sys.argv[1]) if "==" in l]
print(" ".join(f"{n}=={v}" for n, v in pins if (norm(n), v) not in have))
PY
)
[ -z "$missing" ] || { echo "test-deb.sh: the wheelhouse lacks $missing (TORCH_INDEX=https://download.pytorch.org/whl/cpu, or WHEELHOUSE=dir)"; exit 1; }
echo "$(ls "$WORK/wheelhouse" | wc -l) wheels, $(du -sh "$WORK/wheelhouse" | cut -f1)"

say "fresh chroot: debootstrap --variant=minbase bookworm"
t0=$(seconds)
rm -rf "$CHROOT"
debootstrap --variant=minbase bookworm "$CHROOT" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
echo "made in $(elapsed "$t0" "$(seconds)") s, $(du -sh "$CHROOT" | cut -f1)"
mount -t proc proc "$CHROOT/proc"
mount --bind /dev "$CHROOT/dev"
mount -t tmpfs tmpfs "$CHROOT/dev/shm"
# Xvfb's socket folder, shared with the chroot (on a host that never ran an X server it is not there yet)
mkdir -p /tmp/.X11-unix && chmod 1777 /tmp/.X11-unix
mkdir -p "$CHROOT/tmp/.X11-unix"
mount --bind /tmp/.X11-unix "$CHROOT/tmp/.X11-unix"
chroot "$CHROOT" useradd -m -u 4242 -s /bin/bash creator
in_chroot_user() { chroot --userspec=4242:4242 "$CHROOT" env -i HOME=$USER_HOME USER=creator LANG=C.UTF-8 \
    PATH=/usr/local/bin:/usr/bin:/bin DISPLAY=:$DISPLAY_NUM "$@"; }

say "Xvfb :$DISPLAY_NUM"
Xvfb ":$DISPLAY_NUM" -screen 0 1600x1000x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
XVFB_PID=$!
sleep 2

say "the launcher on the bare system (before apt brings the libraries): its own one-line check"
mkdir -p "$CHROOT/opt/bare"
cp -a "$WORK/build/deb-root/opt/shotsketch/." "$CHROOT/opt/bare/"
in_chroot_user /opt/bare/shotsketch || echo "(exit status $?)"
rm -rf "$CHROOT/opt/bare"

say "apt-get install ./$(basename "$DEB")"
cp "$DEB" "$CHROOT/tmp/"
t0=$(seconds)
chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$DEB")" >"$WORK/apt-install.log" 2>&1 \
    || { tail -20 "$WORK/apt-install.log"; exit 1; }
T_INSTALL=$(elapsed "$t0" "$(seconds)")
grep -E "^(Need to get|After this operation|Setting up shotsketch)" "$WORK/apt-install.log" || true
echo "installed in $T_INSTALL s"

say "first start: the launcher builds the engine from the wheelhouse, checks it, opens the app (demo model)"
cp -a "$WORK/wheelhouse" "$CHROOT/srv/wheelhouse"
t0=$(seconds)
in_chroot_user shotsketch --backend cpu --install-now --wheelhouse /srv/wheelhouse \
    --launcher-screenshot $USER_HOME/launcher.png -- --demo --screenshot $USER_HOME/app.png --size 1600x1000
T_FIRST=$(elapsed "$t0" "$(seconds)")
cp "$CHROOT$USER_HOME/app.png" "$WORK/app.png"
[ -f "$CHROOT$USER_HOME/launcher.png" ] && cp "$CHROOT$USER_HOME/launcher.png" "$WORK/launcher.png"
echo "first start (engine build + check + app screenshot) in $T_FIRST s; screenshots in $WORK/app.png, $WORK/launcher.png"
in_chroot_user shotsketch --engine-status

say "later start: the launcher goes straight to the app"
ENGINE_PY=$(ls -d "$CHROOT$USER_HOME"/.local/share/shotsketch-engine/envs/*/bin/python | head -1)
ENGINE_PY=${ENGINE_PY#$CHROOT}
t0=$(seconds); in_chroot_user shotsketch --launcher-help >/dev/null; T_LAUNCHER=$(elapsed "$t0" "$(seconds)")
t0=$(seconds); in_chroot_user "$ENGINE_PY" -m shotsketch --version >/dev/null; T_APP_ONLY=$(elapsed "$t0" "$(seconds)")
t0=$(seconds); in_chroot_user shotsketch --version; T_LATER=$(elapsed "$t0" "$(seconds)")
t0=$(seconds)
in_chroot_user shotsketch --demo --screenshot $USER_HOME/app-again.png --size 1600x1000 >/dev/null
T_LATER_WINDOW=$(elapsed "$t0" "$(seconds)")
echo "frozen launcher start $T_LAUNCHER s; shotsketch --version through the launcher $T_LATER s (the engine's"
echo "Python alone $T_APP_ONLY s); window + two demo takes + screenshot through the launcher $T_LATER_WINDOW s"

say "a demo clip, headless, through the installed app; and the user's library"
in_chroot_user mkdir -p $USER_HOME/Videos
in_chroot_user env -u DISPLAY shotsketch generate "a yellow ball rolls from left to right" --model demo \
    --width 256 --height 256 --frames 9 --steps 2 --out $USER_HOME/Videos/ball.mp4 --quiet
in_chroot_user "$ENGINE_PY" -c "from shotsketch.core.library import Library; lib = Library.open(); print('library:', lib.path)"
ls -la "$CHROOT$USER_HOME/Videos/ball.mp4"

say "sizes"
PKG_MB=$(du -m "$DEB" | cut -f1)
LAUNCHER_MB=$(du -sm --exclude=payload "$CHROOT/opt/shotsketch" | cut -f1)
PAYLOAD_MB=$(du -sm "$CHROOT/opt/shotsketch/payload" | cut -f1)
ENGINE_MB=$(du -sm "$CHROOT$USER_HOME/.local/share/shotsketch-engine" | cut -f1)
ENV_MB=$(du -sm "$CHROOT$USER_HOME"/.local/share/shotsketch-engine/envs | cut -f1)
echo "package $PKG_MB MB; installed launcher $LAUNCHER_MB MB + payload (uv, locks, app wheel) $PAYLOAD_MB MB;"
echo "engine folder $ENGINE_MB MB (environment $ENV_MB MB); wheelhouse $(du -sm "$WORK/wheelhouse" | cut -f1) MB"

say "apt-get purge shotsketch: the user's library and clip stay"
chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q shotsketch 2>&1 | grep -vE "^(Reading|Building)" | tail -6
[ ! -e "$CHROOT/opt/shotsketch" ] && [ ! -e "$CHROOT/usr/bin/shotsketch" ] && echo "package files: gone"
ls -la "$CHROOT$USER_HOME/.local/share/Shotsketch" "$CHROOT$USER_HOME/Videos"
echo "engine still at ~/.local/share/shotsketch-engine ($(du -sm "$CHROOT$USER_HOME/.local/share/shotsketch-engine" | cut -f1) MB)"

say "summary"
echo "package ${PKG_MB} MB | launcher ${LAUNCHER_MB} MB (+${PAYLOAD_MB} MB payload) | environment ${ENV_MB} MB"
echo "apt install ${T_INSTALL} s | first start ${T_FIRST} s | later start: launcher ${T_LAUNCHER} s, to app --version ${T_LATER} s (app alone ${T_APP_ONLY} s)"
