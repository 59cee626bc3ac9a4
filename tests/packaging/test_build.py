"""packaging/build.py refuses a Linux launcher frozen without Qt's xcb platform library, and the
release workflow installs what the build machine needs for PyInstaller to collect it."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build(packaging_script):
    return packaging_script("build")


def test_a_launcher_without_the_xcb_platform_library_stops_the_build(build, tmp_path):
    frozen = tmp_path / "shotsketch"
    plugins = frozen / "_internal" / "PySide6" / "Qt" / "plugins" / "platforms"
    plugins.mkdir(parents=True)
    (plugins / "libqxcb.so").write_bytes(b"")  # the plugin alone, as a build on a bare Ubuntu 22.04 left it
    with pytest.raises(SystemExit, match="lacks libQt6XcbQpa.so.6.*apt-get install libgl1 .*libxcb-cursor0"):
        build.check_frozen_for_linux(frozen)
    (frozen / "_internal" / "libQt6XcbQpa.so.6").write_bytes(b"")
    build.check_frozen_for_linux(frozen)


def test_the_release_workflow_installs_the_build_machine_packages(build):
    workflow = (REPO / ".github" / "workflows" / "release.yml").read_text()
    linux_job = workflow[workflow.index("\n  linux:"):workflow.index("\n  windows:")]
    installed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", " ".join(
        line for line in linux_job.splitlines() if "apt-get install" in line or line.strip().startswith("lib"))))
    missing = [p for p in build.BUILD_MACHINE_PACKAGES if p not in installed]
    assert not missing, f"release.yml's linux job does not install {missing}"
    # the build runs after they are installed
    assert linux_job.index("libxcb-cursor0") < linux_job.index("build.py --target deb")
