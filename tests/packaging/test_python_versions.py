"""The Python versions the metadata, the locks, the launcher and the .deb name agree, and are ones
the pinned libraries install on."""

import importlib.metadata
import importlib.util
import sys
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


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"_packaging_{name}", REPO / "packaging" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_requires_python_starts_at_the_oldest_python_the_locks_are_made_for():
    spec = requires_python()
    made_for = sorted({lock.python for lock in all_locks(REPO / "packaging" / "locks")}, key=Version)
    assert made_for and lowest_admitted(spec) == made_for[0]
    assert all(spec.contains(Version(v)) for v in made_for)
    assert spec.contains(Version(MANAGED_PYTHON)) and all(spec.contains(Version(v)) for v in PYTHON_VERSIONS)
    assert set(load("make_locks").PYTHONS) == set(PYTHON_VERSIONS)


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


def test_the_deb_asks_for_the_same_python():
    depends = ", ".join(load("build").DEB_DEPENDS)
    assert f"python3 (>= {lowest_admitted(requires_python())})" in depends
