; Shotsketch per-user installer (no administrator rights): the launcher and its payload go to
; %LOCALAPPDATA%\Programs\Shotsketch, with Start menu entries and an uninstaller. The uninstaller
; asks before removing the video engine (%LOCALAPPDATA%\shotsketch-engine) and never removes the
; library, clips or models (%LOCALAPPDATA%\Shotsketch, the Hugging Face cache).
; Built by `python packaging/build.py --target nsis --out dist/` from the folder it stages (app\).

Target amd64-unicode  ; the launcher is 64-bit; per-user, so no Program Files redirection
!ifndef VERSION
  !define VERSION "0.0.0"
!endif
!ifndef OUTFILE
  !define OUTFILE "Shotsketch-${VERSION}-setup.exe"
!endif
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Shotsketch"

Name "Shotsketch"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\Shotsketch"
InstallDirRegKey HKCU "Software\Shotsketch" "InstallDir"
SetCompressor /SOLID lzma
Icon "shotsketch.ico"
UninstallIcon "shotsketch.ico"

!include "MUI2.nsh"
!define MUI_ICON "shotsketch.ico"
!define MUI_UNICON "shotsketch.ico"
!define MUI_FINISHPAGE_RUN "$INSTDIR\shotsketch.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start Shotsketch (sets up the video engine on first start)"
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "Shotsketch"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "Shotsketch installer"
VIAddVersionKey "LegalCopyright" "Apache-2.0"

Section "Shotsketch" SecMain
  SetShellVarContext current
  SetOutPath "$INSTDIR"
  File /r "app\*.*"
  File "shotsketch.ico"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateDirectory "$SMPROGRAMS\Shotsketch"
  CreateShortcut "$SMPROGRAMS\Shotsketch\Shotsketch.lnk" "$INSTDIR\shotsketch.exe" "" "$INSTDIR\shotsketch.ico"
  CreateShortcut "$SMPROGRAMS\Shotsketch\Shotsketch engine settings.lnk" "$INSTDIR\shotsketch.exe" "--engine-settings" "$INSTDIR\shotsketch.ico"
  WriteRegStr HKCU "Software\Shotsketch" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "Shotsketch"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "Shotsketch"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\shotsketch.ico"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  SetShellVarContext current
  ; The engine (several GB) is per user and rebuilt on the next install: ask; silent uninstalls keep it.
  IfFileExists "$LOCALAPPDATA\shotsketch-engine\*.*" 0 engine_done
    MessageBox MB_YESNO|MB_ICONQUESTION "Also remove the video engine (PyTorch and its GPU libraries, several GB) in $LOCALAPPDATA\shotsketch-engine?$\r$\n$\r$\nYour library, clips and models are kept either way." /SD IDNO IDNO engine_done
    RMDir /r "$LOCALAPPDATA\shotsketch-engine"
  engine_done:
  ; Never: $LOCALAPPDATA\Shotsketch (the library and clips) or the models.
  Delete "$SMPROGRAMS\Shotsketch\Shotsketch.lnk"
  Delete "$SMPROGRAMS\Shotsketch\Shotsketch engine settings.lnk"
  RMDir "$SMPROGRAMS\Shotsketch"
  RMDir /r "$INSTDIR\_internal"
  RMDir /r "$INSTDIR\payload"
  Delete "$INSTDIR\shotsketch.exe"
  Delete "$INSTDIR\shotsketch.ico"
  Delete "$INSTDIR\STAND-IN.txt"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "Software\Shotsketch"
SectionEnd
