"""The engine: the Python environment (torch, diffusers, the app) the launcher builds with uv.

Layout of the engine folder (apart from the user's library and models, which it never touches)::

    envs/<id>/          one environment per install; a new one is built beside the current one
    current.json        which environment runs (switched atomically, only after its check passed)
    downloads/          the large wheels, fetched with resumable range requests
    python/ uv-cache/   uv's managed Python and its cache

Install, Repair, switch backend and Update are the same steps: build beside, check, switch,
remove the old one. A failed check removes the new environment and leaves the current one running.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from shotsketch_launcher import download
from shotsketch_launcher.gpu import Backend
from shotsketch_launcher.locks import Lock, LockMissing, choose_lock, pythons_for
from shotsketch_launcher.payload import Payload
from shotsketch_launcher.selftest import SELF_TEST

ENGINE_DIR_ENV = "SHOTSKETCH_ENGINE_DIR"
MANAGED_PYTHON = "3.12"
PYTHON_DOWNLOAD_TIMEOUT_S = 600


class EngineError(Exception):
    """One line a person can act on."""


class Cancelled(Exception):
    pass


@dataclass(frozen=True)
class Step:
    """What the launcher shows: a phase, its numbers (bytes or files), and one line of detail."""

    phase: str
    done: int = 0
    total: int = 0
    unit: str = ""  # "bytes", "files" or ""
    detail: str = ""


StepCallback = Callable[[Step], None]


@dataclass(frozen=True)
class InstalledEngine:
    id: str
    backend: str
    python: str
    lock: str
    payload: str
    app_version: str
    checked: str  # the self-test's one-line summary

    def describe(self) -> str:
        return f"{Backend(self.backend).label}, Python {self.python}, Shotsketch {self.app_version}"


def engine_root() -> Path:
    configured = os.environ.get(ENGINE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("shotsketch-engine", appauthor=False))


def child_environment(base: dict[str, str] | None = None, frozen: bool | None = None,
                      bundle: str | None = None) -> dict[str, str]:
    """The environment for uv, Python and the app: the library path as it was before PyInstaller's
    bootloader put its own folder first, and none of the frozen Qt's variables."""
    env = dict(os.environ if base is None else base)
    frozen = getattr(sys, "frozen", False) if frozen is None else frozen
    bundle = getattr(sys, "_MEIPASS", None) if bundle is None else bundle
    if frozen:
        for name in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "LIBPATH"):
            original = env.pop(f"{name}_ORIG", None)
            if original is not None:
                env[name] = original
            else:
                env.pop(name, None)
    if bundle:
        for name in ("QT_PLUGIN_PATH", "QML2_IMPORT_PATH", "QT_QPA_PLATFORM_PLUGIN_PATH", "QTWEBENGINEPROCESS_PATH",
                     "SSL_CERT_FILE", "SSL_CERT_DIR"):
            if env.get(name, "").startswith(bundle):
                env.pop(name)
    return env


def env_python(env_dir: Path) -> Path:
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _write_json_atomic(path: Path, data: dict) -> None:
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with temp.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)


class EngineFolder:
    """The engine folder on disk (see the module docstring)."""

    def __init__(self, root: Path | None = None):
        self.root = root or engine_root()

    envs = property(lambda self: self.root / "envs")
    downloads = property(lambda self: self.root / "downloads")
    pointer = property(lambda self: self.root / "current.json")

    def current(self) -> InstalledEngine | None:
        """The environment that runs, if it is there and whole."""
        try:
            data = json.loads(self.pointer.read_text(encoding="utf-8"))
            engine = InstalledEngine(**{k: str(data[k]) for k in InstalledEngine.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not re.fullmatch(r"[\w.-]+", engine.id) or not env_python(self.envs / engine.id).exists():
            return None
        return engine

    def python_of(self, engine: InstalledEngine) -> Path:
        return env_python(self.envs / engine.id)

    def switch_to(self, engine: InstalledEngine) -> None:
        """Make ``engine`` the one that runs, then remove every other environment."""
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.pointer, asdict(engine))
        for other in self.envs.iterdir() if self.envs.is_dir() else []:
            if other.name != engine.id:
                shutil.rmtree(other, ignore_errors=True)

    def size_bytes(self) -> int:
        """Bytes on disk; a file uv hard-links from its cache into an environment counts once."""
        total, seen = 0, set()
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                try:
                    info = os.lstat(os.path.join(dirpath, name))
                except OSError:
                    continue
                if (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
        return total

    def remove(self) -> None:
        """"Remove the engine": the environments, downloads, uv's Python and cache. Only this folder."""
        if self.root.is_dir():
            shutil.rmtree(self.root)


def check_device(backend: Backend) -> str:
    """What the self-test computes on, in the words the launcher shows."""
    return "CPU" if backend is Backend.CPU else "GPU"


@dataclass(frozen=True)
class InstallPlan:
    backend: Backend
    fast_attention: bool = False
    wheelhouse: Path | None = None  # an offline bundle's wheels: no network at all


class Installer:
    """Builds a new environment beside the current one, checks it, and switches to it."""

    def __init__(self, folder: EngineFolder, payload: Payload, on_step: StepCallback | None = None,
                 cancel: threading.Event | None = None, run_self_test: Callable[[Path, Backend], str] | None = None):
        self.folder = folder
        self.payload = payload
        self.on_step = on_step or (lambda step: None)
        self.cancel = cancel or threading.Event()
        self.run_self_test = run_self_test or self_test
        self.log_lines: list[str] = []

    def install(self, plan: InstallPlan) -> InstalledEngine:
        """Build, check, switch. On any failure the current environment stays as it was."""
        self.folder.envs.mkdir(parents=True, exist_ok=True)
        python = self.find_python(plan)
        lock = choose_lock(self.payload.locks, self.payload.os, plan.backend, python.version, plan.fast_attention)
        new_id = time.strftime("%Y%m%d-%H%M%S") + f"-{plan.backend.value}-{uuid.uuid4().hex[:6]}"
        env_dir = self.folder.envs / new_id
        try:
            if plan.wheelhouse is None:
                self.fetch_large_wheels(lock, python)
            self.create_environment(env_dir, python.path)
            self.install_packages(env_dir, lock, plan)
            self.step(Step("Checking the new engine",
                           detail=f"imports, the window, ffmpeg, a small computation on the {check_device(plan.backend)}"))
            summary = self.run_self_test(env_python(env_dir), plan.backend)
        except BaseException:
            shutil.rmtree(env_dir, ignore_errors=True)
            raise
        engine = InstalledEngine(new_id, plan.backend.value, python.version, lock.path.name,
                                 self.payload.identity(lock), self.payload.app_version, summary)
        self.folder.switch_to(engine)
        self.step(Step("Ready", detail=engine.describe()))
        return engine

    def step(self, step: Step) -> None:
        if self.cancel.is_set():
            raise Cancelled()
        self.on_step(step)

    # -- the steps -------------------------------------------------------------------------

    def find_python(self, plan: InstallPlan) -> FoundPython:
        """uv's managed Python 3.12 where it can be fetched (or the Python the backend's locks are
        made for, where none is for 3.12), else a Python here with a lock made for it."""
        wanted = pythons_for(self.payload.locks, self.payload.os, plan.backend)
        if not wanted:
            raise LockMissing(f"this installer has no engine for {plan.backend.label}: choose another in the list")
        if plan.wheelhouse is None:
            managed = MANAGED_PYTHON if MANAGED_PYTHON in wanted else wanted[0]
            self.step(Step("Getting Python", detail=f"Python {managed} (about 30 MB)"))
            result = self.run_uv(["python", "install", managed], timeout=PYTHON_DOWNLOAD_TIMEOUT_S, check=False)
            if result.returncode != 0:
                self.log("uv could not fetch Python " + managed + "; looking for one on this computer")
        unusable = []
        for version in wanted:
            result = self.run_uv(["python", "find", version], check=False)
            path = result.stdout.strip().splitlines()[-1] if result.returncode == 0 and result.stdout.strip() else ""
            if not path:
                continue
            release = python_release(Path(path))
            if release is not None and not release[1]:
                # Ubuntu 22.04's python3.11 is 3.11.0rc1: the engine installed on it, then its check
                # failed (sys.get_int_max_str_digits is missing before 3.11.0rc2)
                unusable.append(f"Python {release[0]} ({path}) is a pre-release")
                self.log(unusable[-1] + "; looking further")
                continue
            return FoundPython(Path(path), version)
        found = f" ({'; '.join(unusable)})" if unusable else ""
        raise EngineError(f"no Python {' or '.join(wanted)} here{found} and none could be downloaded: "
                          f"connect to the internet once, or install Python {wanted[0]}")

    def fetch_large_wheels(self, lock: Lock, python: FoundPython) -> None:
        files = [download.WheelFile(f["url"], f["filename"], f["sha256"], f.get("size"))
                 for f in lock.large_wheels() if wheel_fits(f["filename"], python.version, platform.machine())]
        if not files:
            return
        total = sum(f.size or 0 for f in files)
        self.step(Step("Downloading the large files", 0, total, "bytes", f"{len(files)} files"))

        def on_progress(p: download.Progress) -> None:
            self.on_step(Step("Downloading the large files", p.done_bytes, p.total_bytes, "bytes",
                              f"file {min(p.done_files + 1, p.total_files)} of {p.total_files}: {p.current}"
                              if p.current else f"{p.done_files} of {p.total_files} files"))

        try:
            download.download_all(files, self.folder.downloads, on_progress, self.cancel)
        except download.DownloadCancelled as exc:
            raise Cancelled() from exc
        except download.DownloadFailed as exc:
            raise EngineError(str(exc)) from exc

    def create_environment(self, env_dir: Path, python: Path) -> None:
        self.step(Step("Creating the environment", detail=str(env_dir)))
        self.run_uv(["venv", "--quiet", "--python", str(python), str(env_dir)])

    def install_packages(self, env_dir: Path, lock: Lock, plan: InstallPlan) -> None:
        total = count_pins(lock.path) + 1
        self.folder.downloads.mkdir(parents=True, exist_ok=True)  # uv refuses a --find-links folder that is not there
        args = ["pip", "install", "--python", str(env_python(env_dir)), "--index-strategy", "unsafe-best-match",
                "--find-links", str(self.folder.downloads), "-r", str(lock.path), str(self.payload.app_wheel)]
        if plan.wheelhouse is not None:
            args += ["--offline", "--no-index", "--find-links", str(plan.wheelhouse)]
        self.step(Step("Installing packages", 0, total, "files", "torch, diffusers, Qt and the app"))
        process = self.start_uv(args)
        while process.poll() is None:
            if self.cancel.wait(0.5):
                _stop(process)
                raise Cancelled()
            self.on_step(Step("Installing packages", min(count_installed(env_dir), total), total, "files",
                              "torch, diffusers, Qt and the app"))
        output = process.stdout.read() if process.stdout else ""
        self.log(output)
        if process.returncode != 0:
            raise EngineError("installing the packages failed: " + last_error_line(output))
        self.on_step(Step("Installing packages", total, total, "files"))

    # -- uv -----------------------------------------------------------------------------------

    def uv_environment(self) -> dict[str, str]:
        env = child_environment()
        env.update({"UV_CACHE_DIR": str(self.folder.root / "uv-cache"),
                    "UV_PYTHON_INSTALL_DIR": str(self.folder.root / "python"),
                    "UV_PYTHON_PREFERENCE": "managed", "UV_NO_CONFIG": "1", "NO_COLOR": "1"})
        if sys.platform.startswith("linux"):
            env.setdefault("UV_CONCURRENT_DOWNLOADS", "2")  # fewer timeouts on the big CUDA wheels
        return env

    def start_uv(self, args: list[str]) -> subprocess.Popen:
        self.log("uv " + " ".join(args))
        return subprocess.Popen([str(self.payload.uv), *args], env=self.uv_environment(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace",
                                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))

    def run_uv(self, args: list[str], timeout: float = 1800, check: bool = True) -> subprocess.CompletedProcess:
        self.log("uv " + " ".join(args))
        try:
            result = subprocess.run([str(self.payload.uv), *args], env=self.uv_environment(), capture_output=True,
                                    text=True, errors="replace", timeout=timeout,
                                    creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        except subprocess.TimeoutExpired as exc:
            if check:
                raise EngineError(f"uv {args[0]} took longer than {timeout:.0f} s") from exc
            return subprocess.CompletedProcess(args, 1, "", "timeout")
        self.log(result.stdout + result.stderr)
        if check and result.returncode != 0:
            raise EngineError(f"uv {args[0]} failed: " + last_error_line(result.stderr or result.stdout))
        return result

    def log(self, text: str) -> None:
        if text.strip():
            self.log_lines.append(text.rstrip())


@dataclass(frozen=True)
class FoundPython:
    path: Path
    version: str


def python_release(python: Path) -> tuple[str, bool] | None:
    """(``3.11.0rc1``, whether it is a final release) of an interpreter; None where it does not answer."""
    code = "import sys; v = sys.version_info; print(f'{v[0]}.{v[1]}.{v[2]}', v.releaselevel, v.serial)"
    try:
        result = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True, timeout=30,
                                env=child_environment(), creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        number, level, serial = result.stdout.split()
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if level == "final":
        return number, True
    short = {"alpha": "a", "beta": "b", "candidate": "rc"}.get(level, level)
    return f"{number}{short}{serial}", False


def wheel_fits(filename: str, python: str, machine: str) -> bool:
    """Whether a wheel's tags fit this Python (``3.12``) and machine (x86_64, AMD64, arm64, aarch64)."""
    parts = filename[:-4].split("-") if filename.endswith(".whl") else []
    if len(parts) < 5:
        return False
    py_tags, abi_tags, plat_tags = parts[-3].split("."), parts[-2].split("."), parts[-1].split(".")
    cp = "cp" + python.replace(".", "")
    py_ok = cp in py_tags or "py3" in py_tags or ("abi3" in abi_tags and any(
        t.startswith("cp3") and int(t[3:] or 0) <= int(cp[3:]) for t in py_tags))
    machine = {"amd64": "x86_64", "arm64": "arm64", "aarch64": "aarch64"}.get(machine.lower(), machine.lower())
    names = {"x86_64": ("x86_64", "amd64"), "aarch64": ("aarch64", "arm64"), "arm64": ("arm64", "aarch64")}
    plat_ok = any(t == "any" or any(n in t.lower() for n in names.get(machine, (machine,))) for t in plat_tags)
    return py_ok and plat_ok


def count_pins(lock: Path) -> int:
    return sum(1 for line in lock.read_text(encoding="utf-8").splitlines() if re.match(r"^[A-Za-z0-9_.-]+==", line))


def count_installed(env_dir: Path) -> int:
    return sum(1 for _ in env_dir.glob("lib/python3*/site-packages/*.dist-info")) + \
        sum(1 for _ in env_dir.glob("Lib/site-packages/*.dist-info"))


def last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:  # uv's first "cause:" says what is missing, its "error:" line only that it failed
        if line.lower().startswith("cause:"):
            return line[:300]
    for line in reversed(lines):
        if line.lower().startswith(("error", "×", "caused by", "hint")) or "error" in line.lower():
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def self_test(python: Path, backend: Backend, timeout: float = 600) -> str:
    """Run the environment check in the new environment; its one-line summary, or EngineError
    naming the first check that failed. The model is not loaded: its problems never undo an install."""
    try:
        result = subprocess.run([str(python), "-I", "-c", SELF_TEST, backend.value], capture_output=True, text=True,
                                errors="replace", timeout=timeout, env=child_environment(),
                                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except subprocess.TimeoutExpired as exc:
        raise EngineError(f"the engine check took longer than {timeout:.0f} s") from exc
    except OSError as exc:
        raise EngineError(f"the new engine's Python does not start: {exc}") from exc
    checks = []
    for line in result.stdout.splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict) and "check" in item:
            checks.append(item)
    failed = [c for c in checks if not c.get("ok")]
    if failed:
        raise EngineError(f"the engine check failed ({failed[0]['check']}): {failed[0].get('detail', '')}")
    if result.returncode != 0 or len(checks) < 4:
        raise EngineError("the engine check stopped early: " + last_error_line(result.stderr))
    return "; ".join(f"{c['check']}: {c.get('detail', '')}" for c in checks)
