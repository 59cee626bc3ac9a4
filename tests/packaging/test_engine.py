"""Install beside, switch after the check, and roll back when the check fails; the check's
verdicts; the environment children get from a frozen launcher."""

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from shotsketch_launcher.engine import (EngineError, EngineFolder, FoundPython, InstalledEngine, Installer,
                                        InstallPlan, child_environment, env_python, self_test)
from shotsketch_launcher.gpu import Backend
from shotsketch_launcher.locks import all_locks
from shotsketch_launcher.payload import Payload

LOCK = "torch==2.13.0\nnumpy==2.4.6\n"


@pytest.fixture
def payload(tmp_path) -> Payload:
    root = tmp_path / "payload"
    (root / "locks").mkdir(parents=True)
    (root / "wheels").mkdir()
    (root / "locks" / "linux-cpu-py311.txt").write_text(LOCK)
    (root / "wheels" / "shotsketch-0.2.0-py3-none-any.whl").write_bytes(b"new app")
    return Payload(root, os="linux")


class BuildsWithoutUv(Installer):
    """The real install/switch/rollback logic; only the uv calls are replaced by making the files."""

    def find_python(self, plan):
        return FoundPython(Path(sys.executable), "3.11")

    def create_environment(self, env_dir, python):
        env_python(env_dir).parent.mkdir(parents=True)
        env_python(env_dir).write_text("")

    def install_packages(self, env_dir, lock, plan):
        (env_dir / "installed-from").write_text(lock.path.name)


def old_engine(folder: EngineFolder) -> InstalledEngine:
    engine = InstalledEngine("old", "cpu", "3.11", "linux-cpu-py311.txt", "0000", "0.1.0", "passed")
    env_python(folder.envs / "old").parent.mkdir(parents=True)
    env_python(folder.envs / "old").write_text("")
    folder.switch_to(engine)
    return engine


def test_a_failed_check_keeps_the_old_engine_and_removes_the_new_one(tmp_path, payload):
    folder = EngineFolder(tmp_path / "engine")
    old = old_engine(folder)

    def failing_check(python, backend):
        assert python.exists()  # the new environment is checked, beside the old one
        raise EngineError("the engine check failed (kernel): torch sees no GPU")

    installer = BuildsWithoutUv(folder, payload, run_self_test=failing_check)
    with pytest.raises(EngineError, match="kernel"):
        installer.install(InstallPlan(Backend.CPU, wheelhouse=tmp_path))
    assert folder.current() == old
    assert [p.name for p in folder.envs.iterdir()] == ["old"]


def test_a_passed_check_switches_and_removes_the_old_engine(tmp_path, payload):
    folder = EngineFolder(tmp_path / "engine")
    old_engine(folder)
    installer = BuildsWithoutUv(folder, payload, run_self_test=lambda python, backend: "all passed")
    new = installer.install(InstallPlan(Backend.CPU, wheelhouse=tmp_path))
    assert folder.current() == new and new.app_version == "0.2.0" and new.checked == "all passed"
    assert [p.name for p in folder.envs.iterdir()] == [new.id]
    assert new.payload == payload.identity(all_locks(payload.locks)[0])


def test_a_half_written_pointer_means_no_engine(tmp_path):
    folder = EngineFolder(tmp_path / "engine")
    folder.root.mkdir()
    folder.pointer.write_text('{"id": "x"')
    assert folder.current() is None
    folder.pointer.write_text(json.dumps({"id": "../../etc", "backend": "cpu", "python": "3.11", "lock": "l",
                                         "payload": "p", "app_version": "1", "checked": "c"}))
    assert folder.current() is None


def test_remove_the_engine_touches_only_its_folder(tmp_path, monkeypatch):
    library = tmp_path / "data" / "library.db"
    library.parent.mkdir()
    library.write_text("the user's library")
    folder = EngineFolder(tmp_path / "engine")
    old_engine(folder)
    folder.remove()
    assert not folder.root.exists() and library.read_text() == "the user's library"


def fake_python(tmp_path: Path, lines: list[dict], code: int = 0) -> Path:
    script = tmp_path / "python"
    body = "\n".join(f"echo '{json.dumps(line)}'" for line in lines)
    script.write_text(f"#!/bin/sh\n{body}\necho 'Traceback: boom' >&2\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.mark.skipif(os.name == "nt", reason="a shell script stands in for Python")
def test_the_check_names_the_first_failure(tmp_path):
    python = fake_python(tmp_path, [{"check": "imports", "ok": True, "detail": "torch 2.13.0"},
                                    {"check": "ffmpeg", "ok": False, "detail": "ffmpeg is missing"}], code=1)
    with pytest.raises(EngineError, match=r"\(ffmpeg\): ffmpeg is missing"):
        self_test(python, Backend.CPU)


@pytest.mark.skipif(os.name == "nt", reason="a shell script stands in for Python")
def test_a_check_that_stops_early_is_a_failure(tmp_path):
    python = fake_python(tmp_path, [{"check": "imports", "ok": True, "detail": "x"}], code=-6 & 0xFF)
    with pytest.raises(EngineError, match="stopped early"):
        self_test(python, Backend.CPU)


@pytest.mark.slow
def test_the_real_check_passes_in_this_environment():
    summary = self_test(Path(sys.executable), Backend.CPU)
    assert "imports: torch" in summary and "kernel: a matrix product on cpu" in summary
    assert "window: Qt platform" in summary


def test_children_get_the_library_path_from_before_the_bootloader():
    frozen_env = {"LD_LIBRARY_PATH": "/opt/shotsketch/_internal", "LD_LIBRARY_PATH_ORIG": "/usr/local/cuda/lib64",
                  "QT_PLUGIN_PATH": "/opt/shotsketch/_internal/PySide6/Qt/plugins", "HOME": "/home/c"}
    env = child_environment(frozen_env, frozen=True, bundle="/opt/shotsketch/_internal")
    assert env["LD_LIBRARY_PATH"] == "/usr/local/cuda/lib64"
    assert "LD_LIBRARY_PATH_ORIG" not in env and "QT_PLUGIN_PATH" not in env and env["HOME"] == "/home/c"
    none_before = child_environment({"LD_LIBRARY_PATH": "/opt/shotsketch/_internal"}, frozen=True, bundle="/x")
    assert "LD_LIBRARY_PATH" not in none_before
    not_frozen = child_environment({"LD_LIBRARY_PATH": "/mine"}, frozen=False, bundle="")
    assert not_frozen["LD_LIBRARY_PATH"] == "/mine"


def test_the_engine_size_counts_hard_linked_files_once(tmp_path):
    folder = EngineFolder(tmp_path / "engine")
    (folder.root / "uv-cache").mkdir(parents=True)
    (folder.root / "envs").mkdir()
    (folder.root / "uv-cache" / "torch.so").write_bytes(b"x" * 1000)
    os.link(folder.root / "uv-cache" / "torch.so", folder.root / "envs" / "torch.so")
    assert folder.size_bytes() == 1000


class RecordsUv(Installer):
    """find_python with uv replaced by a recorder: `python install` succeeds, `python find` finds
    only what was installed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.installed = [], set()

    def run_uv(self, args, timeout=1800, check=True):
        import subprocess

        self.calls.append(args)
        if args[:2] == ["python", "install"]:
            self.installed.add(args[2])
            return subprocess.CompletedProcess(args, 0, "", "")
        if args[:2] == ["python", "find"] and args[2] in self.installed:
            return subprocess.CompletedProcess(args, 0, f"/managed/python{args[2]}\n", "")
        return subprocess.CompletedProcess(args, 2, "", "error: No interpreter found")


@pytest.mark.parametrize("locks, managed", [(["linux-cpu-py311.txt"], "3.11"),
                                            (["linux-cpu-py311.txt", "linux-cpu-py312.txt"], "3.12")])
def test_online_the_launcher_fetches_a_python_the_locks_are_made_for(tmp_path, payload, locks, managed):
    """With locks for 3.11 only (the CPU lock made outside the release workflow), uv fetches 3.11,
    not 3.12 for which there is no lock; a computer without Python 3.11 still gets an engine."""
    for name in locks:
        (payload.locks / name).write_text(LOCK)
    installer = RecordsUv(EngineFolder(tmp_path / "engine"), payload)
    found = installer.find_python(InstallPlan(Backend.CPU))
    assert ["python", "install", managed] in installer.calls
    assert found == FoundPython(Path(f"/managed/python{managed}"), managed)


def test_offline_the_launcher_fetches_nothing(tmp_path, payload):
    installer = RecordsUv(EngineFolder(tmp_path / "engine"), payload)
    with pytest.raises(EngineError, match="no Python 3.11 here"):
        installer.find_python(InstallPlan(Backend.CPU, wheelhouse=tmp_path))
    assert not [c for c in installer.calls if c[:2] == ["python", "install"]]


def answering_python(folder: Path, level: str, serial: int) -> Path:
    """An executable that answers the version question as a Python of that release would."""
    path = folder / "python3.11"
    path.write_text(f"#!/bin/sh\necho 3.11.0 {level} {serial}\n")
    path.chmod(0o755)
    return path


@pytest.mark.skipif(os.name == "nt", reason="a shell script stands in for the interpreter")
def test_a_pre_release_python_is_passed_over_and_named(tmp_path, payload):
    """Ubuntu 22.04's python3.11 is 3.11.0rc1: an offline engine installed on it failed its check
    (sys.get_int_max_str_digits is missing); the launcher now says why it cannot use it."""
    rc1 = answering_python(tmp_path, "candidate", 1)

    class FindsRc1(RecordsUv):
        def run_uv(self, args, timeout=1800, check=True):
            import subprocess

            if args[:2] == ["python", "find"]:
                return subprocess.CompletedProcess(args, 0, f"{rc1}\n", "")
            return super().run_uv(args, timeout, check)

    installer = FindsRc1(EngineFolder(tmp_path / "engine"), payload)
    with pytest.raises(EngineError, match=r"Python 3\.11\.0rc1 .*python3\.11\) is a pre-release"):
        installer.find_python(InstallPlan(Backend.CPU, wheelhouse=tmp_path))
    answering_python(tmp_path, "final", 0)  # the same path, now a final release
    assert installer.find_python(InstallPlan(Backend.CPU, wheelhouse=tmp_path)) == FoundPython(rc1, "3.11")


@pytest.mark.parametrize("backend, device", [(Backend.CPU, "CPU"), (Backend.CUDA128, "GPU")])
def test_the_check_step_names_the_device_it_computes_on(tmp_path, payload, backend, device):
    (payload.locks / f"linux-{backend.value}-py311.txt").write_text(LOCK)
    steps = []
    installer = BuildsWithoutUv(EngineFolder(tmp_path / "engine"), payload, on_step=steps.append,
                                run_self_test=lambda python, backend: "all passed")
    installer.install(InstallPlan(backend, wheelhouse=tmp_path))
    check = next(step for step in steps if step.phase == "Checking the new engine")
    assert check.detail.endswith(f"a small computation on the {device}")
