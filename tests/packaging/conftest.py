import sys
from pathlib import Path

# The launcher is its own package (frozen apart from the app); its tests import it from the source.
LAUNCHER = Path(__file__).resolve().parents[2] / "packaging" / "launcher"
if str(LAUNCHER) not in sys.path:
    sys.path.insert(0, str(LAUNCHER))
