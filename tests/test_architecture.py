"""The import rules (pyproject.toml's import-linter contracts: the one set of rules, explained in
docs/DESIGN.md) hold, and pyproject's package list names every package folder."""

import pathlib
import subprocess
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "desktop" / "shotsketch"


def test_import_linter_contracts_hold():
    exe = pathlib.Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 broken" in result.stdout
    for layer in ("core", "engine", "media", "application layer"):  # every layer has its rule
        assert f"{layer} imports no" in result.stdout or f"{layer} imports nothing" in result.stdout


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"shotsketch." + ".".join(p.parent.relative_to(PKG).parts) if p.parent != PKG else "shotsketch"
               for p in PKG.rglob("__init__.py")}
    assert on_disk | {"shotsketch.resources"} == listed
