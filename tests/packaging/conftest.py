import importlib.util
import sys
from pathlib import Path

import pytest

# The launcher is its own package (frozen apart from the app); its tests import it from the source.
LAUNCHER = Path(__file__).resolve().parents[2] / "packaging" / "launcher"
if str(LAUNCHER) not in sys.path:
    sys.path.insert(0, str(LAUNCHER))


def load_packaging_script(name: str):  # noqa: ANN201
    """packaging/<name>.py (a script, not a package) as a module."""
    spec = importlib.util.spec_from_file_location(f"_packaging_{name}", LAUNCHER.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def packaging_script():  # noqa: ANN201
    """load_packaging_script, for tests that read packaging/build.py or packaging/make_locks.py."""
    return load_packaging_script
