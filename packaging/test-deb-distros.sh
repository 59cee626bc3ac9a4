#!/usr/bin/env bash
# Which distributions the .deb installs and starts on: for each suite, a fresh `debootstrap
# --variant=minbase` chroot, `apt-get install ./shotsketch_*.deb` (apt's answer is the result when it
# refuses), then the frozen launcher: --launcher-help and --engine-status (its Python and bundled
# libraries load), and its engine window under Xvfb (still open after 20 s, screenshot with xwd).
# The engine is not built (test-deb.sh does that on bookworm): the CPU locks made outside the release
# workflow are for Python 3.11 only.
#
#   DEB=dist/shotsketch_0.1.0_amd64.deb bash packaging/test-deb-distros.sh [WORK_FOLDER]
#   SUITES="jammy noble trixie" (default)      root; needs debootstrap, xvfb, x11-apps, netpbm
# Exit status 1 when the window does not open where the package installed, or apt refuses it on a
# suite not in REFUSED_OK (default "jammy": its python3 is 3.10, the .deb depends on >= 3.11).
set -uo pipefail
WORK=${1:-/tmp/shotsketch-test-distros}
SUITES=${SUITES:-jammy noble trixie}
REFUSED_OK=${REFUSED_OK:-jammy}
FAILED=0
DISPLAY_NUM=${DISPLAY_NUM:-98}
DEB=${DEB:?DEB=path/to/shotsketch_VERSION_amd64.deb}
DEB=$(cd "$(dirname "$DEB")" && pwd)/$(basename "$DEB")
mkdir -p "$WORK"
say() { printf '\n== %s\n' "$*"; }
for tool in debootstrap Xvfb xwd xwdtopnm pnmtopng; do
    command -v "$tool" >/dev/null || { echo "test-deb-distros.sh: $tool is missing: apt-get install -y debootstrap xvfb x11-apps netpbm"; exit 2; }
done

CHROOT=
unmount() {
    [ -n "$CHROOT" ] && for m in tmp/.X11-unix dev/shm dev proc; do
        mountpoint -q "$CHROOT/$m" && umount -l "$CHROOT/$m"
    done
    return 0
}
trap 'unmount; [ -n "${XVFB_PID:-}" ] && kill "$XVFB_PID" 2>/dev/null' EXIT
mkdir -p /tmp/.X11-unix && chmod 1777 /tmp/.X11-unix
Xvfb ":$DISPLAY_NUM" -screen 0 1280x800x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
XVFB_PID=$!
sleep 2

RESULTS=()
for suite in $SUITES; do
    unmount
    CHROOT=$WORK/$suite
    case $suite in
        jammy|noble) mirror=http://archive.ubuntu.com/ubuntu; extra=(--components=main,universe); script=/usr/share/debootstrap/scripts/gutsy ;;
        *) mirror=http://deb.debian.org/debian; extra=(); script= ;;
    esac
    # an older debootstrap (Ubuntu 22.04's) has no script named for a newer Debian suite: sid's fits
    [ -z "$script" ] && [ ! -e "/usr/share/debootstrap/scripts/$suite" ] && script=/usr/share/debootstrap/scripts/sid
    say "$suite: debootstrap --variant=minbase"
    rm -rf "$CHROOT"
    if ! debootstrap --variant=minbase "${extra[@]}" "$suite" "$CHROOT" "$mirror" $script >"$WORK/$suite-debootstrap.log" 2>&1; then
        tail -3 "$WORK/$suite-debootstrap.log"; RESULTS+=("$suite: debootstrap failed"); FAILED=1; continue
    fi
    cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
    mount -t proc proc "$CHROOT/proc"; mount --bind /dev "$CHROOT/dev"; mount -t tmpfs tmpfs "$CHROOT/dev/shm"
    mkdir -p "$CHROOT/tmp/.X11-unix"; mount --bind /tmp/.X11-unix "$CHROOT/tmp/.X11-unix"
    chroot "$CHROOT" useradd -m -u 4242 -s /bin/bash creator
    glibc=$(chroot "$CHROOT" ldd --version | head -1 | grep -oE '[0-9]+\.[0-9]+$')
    python=$(chroot "$CHROOT" sh -c 'apt-cache policy python3 | sed -n "s/ *Candidate: //p"')
    echo "glibc $glibc; python3 candidate $python"

    say "$suite: apt-get install ./$(basename "$DEB")"
    cp "$DEB" "$CHROOT/tmp/"
    if ! chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$DEB")" >"$WORK/$suite-apt.log" 2>&1; then
        grep -E "Depends:|but|E: " "$WORK/$suite-apt.log" | head -8
        RESULTS+=("$suite (glibc $glibc, python3 $python): apt refuses the package")
        case " $REFUSED_OK " in *" $suite "*) ;; *) FAILED=1 ;; esac
        continue
    fi
    grep -E "^(Need to get|After this operation)" "$WORK/$suite-apt.log"

    say "$suite: the launcher"
    as_creator() { chroot --userspec=4242:4242 "$CHROOT" env -i HOME=/home/creator USER=creator LANG=C.UTF-8 \
        PATH=/usr/local/bin:/usr/bin:/bin DISPLAY=:$DISPLAY_NUM "$@"; }
    as_creator shotsketch --launcher-help >/dev/null && help=ok || help="failed ($?)"
    as_creator shotsketch --engine-status
    as_creator timeout 20 shotsketch --engine-settings >"$WORK/$suite-window.log" 2>&1 &
    pid=$!
    sleep 15
    xwd -root -display ":$DISPLAY_NUM" -silent | xwdtopnm 2>/dev/null | pnmtopng >"$WORK/$suite-window.png"
    wait "$pid"
    status=$?
    [ "$status" = 124 ] && window="open after 20 s" || { window="exited with $status"; FAILED=1; }
    [ -s "$WORK/$suite-window.log" ] && { echo "its output:"; head -5 "$WORK/$suite-window.log"; }
    RESULTS+=("$suite (glibc $glibc, python3 $python): installs; launcher --launcher-help $help; window $window ($WORK/$suite-window.png)")
done

say "summary"
printf '%s\n' "${RESULTS[@]}"
exit $FAILED
