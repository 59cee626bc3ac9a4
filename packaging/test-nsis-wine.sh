#!/usr/bin/env bash
# The Windows installer under wine: compile it (around a stand-in payload unless --frozen came from a
# Windows build), install silently, check the files, the Start menu entries and the uninstall key,
# uninstall silently, and check that nothing is left (a fake engine folder is kept: a silent
# uninstall answers "no" to removing the engine; a fake library is never touched).
#
#   bash packaging/test-nsis-wine.sh [WORK_FOLDER]     (needs makensis and wine64)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-/tmp/shotsketch-test-nsis}
export WINEPREFIX=$WORK/wine WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
WINE=$(command -v wine64 || command -v wine || echo /usr/lib/wine/wine64)
mkdir -p "$WORK"
cd "$REPO"
if [ -z "${SETUP:-}" ]; then
    PATH="${BUILD_VENV:+$BUILD_VENV/bin:}$PATH" python packaging/build.py --target nsis --out "$WORK/dist" --work "$WORK/build" \
        2>&1 | grep -v "^WARNING: Location" | tail -2
    SETUP=$(ls "$WORK"/dist/Shotsketch-*-setup.exe)
fi
"$WINE" wineboot --init >/dev/null 2>&1 || true
LOCAL=$("$WINE" cmd /c echo %LOCALAPPDATA% 2>/dev/null | tr -d '\r')
LOCAL_UNIX=$(winepath -u "$LOCAL" 2>/dev/null || "$WINE" winepath -u "$LOCAL" | tr -d '\r')
APPDATA_UNIX=$(dirname "$LOCAL_UNIX")
mkdir -p "$LOCAL_UNIX/shotsketch-engine/envs/x" "$LOCAL_UNIX/Shotsketch"
echo "the user's library" > "$LOCAL_UNIX/Shotsketch/library.db"
KEY='HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Shotsketch'

echo "== silent install"
"$WINE" "$SETUP" /S
INSTDIR="$LOCAL_UNIX/Programs/Shotsketch"
ls "$INSTDIR" "$INSTDIR/payload"
find "$APPDATA_UNIX" -path "*Start Menu*" -name "*.lnk" -printf "start menu: %P\n" | grep -i shotsketch
"$WINE" reg query "$KEY" /v DisplayName | tr -d '\r' | grep DisplayName

echo "== silent uninstall"
"$WINE" "$INSTDIR/uninstall.exe" /S
sleep 5  # the uninstaller copies itself to a temporary folder and finishes from there
left=0
[ -e "$INSTDIR" ] && { echo "LEFT: $INSTDIR"; find "$INSTDIR"; left=1; }
find "$APPDATA_UNIX" -path "*Start Menu*" -iname "*shotsketch*" | grep . && left=1
"$WINE" reg query "$KEY" >/dev/null 2>&1 && { echo "LEFT: registry key $KEY"; left=1; }
[ -f "$LOCAL_UNIX/Shotsketch/library.db" ] && echo "library kept: $LOCAL_UNIX/Shotsketch/library.db"
[ -d "$LOCAL_UNIX/shotsketch-engine" ] && echo "engine kept (silent uninstall answers no): $LOCAL_UNIX/shotsketch-engine"
[ $left = 0 ] && echo "nothing of the installer left: no files, no Start menu entries, no registry key"
exit $left
