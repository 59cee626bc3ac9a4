"""The one-way import rule of DESIGN.md and the package list of pyproject.toml."""

import ast
import pathlib
import subprocess
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "desktop" / "shotsketch"


def _imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _violations(layer, forbidden):
    found = []
    for path in (PKG / layer).rglob("*.py"):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_core_imports_nothing_of_ours_and_no_qt_or_torch():
    assert _violations("core", ["PySide6", "torch", "diffusers", "transformers", "shotsketch.engine",
                                "shotsketch.media", "shotsketch.ui", "shotsketch.cli"]) == []


def test_engine_and_media_import_no_qt():
    assert _violations("engine", ["PySide6", "shotsketch.ui", "shotsketch.cli", "shotsketch.media"]) == []
    assert _violations("media", ["PySide6", "shotsketch.ui", "shotsketch.cli", "shotsketch.engine", "torch"]) == []


def test_import_linter_contracts_hold():
    exe = pathlib.Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken" in result.stdout


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"shotsketch." + ".".join(p.parent.relative_to(PKG).parts) if p.parent != PKG else "shotsketch"
               for p in PKG.rglob("__init__.py")}
    assert on_disk | {"shotsketch.resources"} == listed
