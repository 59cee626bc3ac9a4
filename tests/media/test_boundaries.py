import subprocess
import sys


def test_media_and_its_cli_import_no_qt_torch_or_engine():
    code = (
        "import sys\n"
        "import shotsketch.media.encode, shotsketch.media.sidecar, shotsketch.media.probe\n"
        "import shotsketch.media.timeline, shotsketch.media.thumbnail, shotsketch.cli.timeline\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'torch', 'diffusers')"
        " or m.startswith('shotsketch.engine') or m.startswith('shotsketch.ui'))\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
