"""The Python versions the metadata, the locks, the launcher and the .deb name agree, and are ones
the pinned libraries install on."""

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from shotsketch_launcher.engine import MANAGED_PYTHON
from shotsketch_launcher.locks import PYTHON_VERSIONS, all_locks

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = [f"3.{minor}" for minor in range(6, 20)]


def requires_python() -> SpecifierSet:
    return SpecifierSet(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"])


def lowest_admitted(spec: SpecifierSet) -> str:
    return next(v for v in CANDIDATES if spec.contains(Version(v)))


def test_requires_python_starts_at_the_oldest_python_the_locks_are_made_for(packaging_script):
    spec = requires_python()
    made_for = sorted({lock.python for lock in all_locks(REPO / "packaging" / "locks")}, key=Version)
    assert made_for and lowest_admitted(spec) == made_for[0]
    assert all(spec.contains(Version(v)) for v in made_for)
    assert spec.contains(Version(MANAGED_PYTHON)) and all(spec.contains(Version(v)) for v in PYTHON_VERSIONS)
    assert set(packaging_script("make_locks").PYTHONS) == set(PYTHON_VERSIONS)


@pytest.mark.parametrize("name", ["diffusers", "transformers"])
def test_the_pinned_libraries_install_on_the_oldest_python_the_metadata_admits(name):
    try:
        theirs = importlib.metadata.metadata(name).get("Requires-Python")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{name} is not installed here")
    if not theirs:
        pytest.skip(f"{name} names no Requires-Python")
    oldest = lowest_admitted(requires_python())
    assert SpecifierSet(theirs).contains(Version(oldest)), \
        f"pyproject.toml admits Python {oldest} but {name} requires {theirs}"


def test_the_deb_asks_for_the_same_python(packaging_script):
    depends = ", ".join(packaging_script("build").DEB_DEPENDS)
    assert f"python3 (>= {lowest_admitted(requires_python())})" in depends
