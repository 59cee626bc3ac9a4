"""Make the engine's lock files: one command, every OS, backend and Python it can reach.

    python packaging/make_locks.py                      # every target whose index answers
    python packaging/make_locks.py --only linux-cpu --python 3.11 --torch-from DIR   # torch from a folder

For each target it runs ``uv pip compile pyproject.toml`` with the target's ``--python-platform``,
``--python-version`` and torch index (torch pinned to TORCH_VERSION), writing
``packaging/locks/<os>-<backend>[-fast-attention]-py<XY>.txt``, then lists the lock's large wheels
for that platform (URL, sha256, size) in ``<lock>.downloads.json`` for the launcher's resumable
downloads. A target whose index cannot be reached is reported and skipped (the release workflow
runs this where the PyTorch index answers).
"""

from __future__ import annotations

import argparse
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "packaging" / "launcher"))

from shotsketch_launcher.engine import wheel_fits  # noqa: E402

LOCKS = REPO / "packaging" / "locks"
TORCH_VERSION = "2.13.0"
PYPI = "https://pypi.org/simple"
PYTORCH = "https://download.pytorch.org/whl"
ROCM_INDEX = f"{PYTORCH}/rocm7.1"  # the ROCm build of TORCH_VERSION; check it when TORCH_VERSION moves
PYTHONS = ("3.11", "3.12", "3.13")
LARGE_BYTES = 20_000_000
LARGE_NAMES = re.compile(r"^(torch|triton|pytorch-triton.*|nvidia-.*|cuda-.*)$")
FAST_ATTENTION_EXTRA = "fast-attention"


@dataclass(frozen=True)
class Target:
    os: str
    backend: str
    platform: str  # uv's --python-platform
    machine: str  # for choosing the large wheels
    torch_index: str | None = None  # None: torch from PyPI
    fast_attention: bool = False
    extra_requirements: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.os}-{self.backend}" + ("-fast-attention" if self.fast_attention else "")


LINUX, WINDOWS, MAC = "x86_64-manylinux_2_28", "x86_64-pc-windows-msvc", "aarch64-apple-darwin"
TARGETS = [
    # On PyPI, Linux torch is the CUDA 13.0 build (with its nvidia-* wheels): resolvable here.
    Target("linux", "cu130", LINUX, "x86_64"),
    Target("linux", "cu130", LINUX, "x86_64", fast_attention=True, extra_requirements=("nvidia-cutlass-dsl[cu13]",)),
    Target("linux", "cu128", LINUX, "x86_64", f"{PYTORCH}/cu128"),
    Target("linux", "cu128", LINUX, "x86_64", f"{PYTORCH}/cu128", fast_attention=True),
    Target("linux", "cu126", LINUX, "x86_64", f"{PYTORCH}/cu126"),
    Target("linux", "rocm", LINUX, "x86_64", ROCM_INDEX),
    Target("linux", "cpu", LINUX, "x86_64", f"{PYTORCH}/cpu"),
    # On PyPI, Windows torch is CPU-only: the CUDA builds come from the PyTorch index.
    Target("windows", "cu130", WINDOWS, "AMD64", f"{PYTORCH}/cu130"),
    Target("windows", "cu128", WINDOWS, "AMD64", f"{PYTORCH}/cu128"),
    Target("windows", "cpu", WINDOWS, "AMD64"),
    # uv's default macOS target stops at an older torch.
    Target("macos", "mps", MAC, "arm64", env={"MACOSX_DEPLOYMENT_TARGET": "14.0"}),
]


def lock_path(target: Target, python: str) -> Path:
    return LOCKS / f"{target.name}-py{python.replace('.', '')}.txt"


def compile_lock(target: Target, python: str, uv: str, find_links: list[str], torch_from: str | None = None) -> Path:
    """Run uv pip compile for one target and Python; raises CalledProcessError with uv's message.
    ``torch_from``: resolve torch from this folder instead of the target's index (still named in the lock)."""
    out = lock_path(target, python)
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "torch.txt"
        constraints.write_text(f"torch=={TORCH_VERSION}\n", encoding="utf-8")
        extra_in = Path(tmp) / "extra.in"
        extra_in.write_text("".join(r + "\n" for r in target.extra_requirements), encoding="utf-8")
        command = [uv, "pip", "compile", "pyproject.toml", "--quiet", "-c", str(constraints),
                   "--python-version", python, "--python-platform", target.platform,
                   "--index-url", PYPI, "--index-strategy", "unsafe-best-match", "--emit-index-url",
                   "--no-emit-find-links", "--custom-compile-command", "python packaging/make_locks.py",
                   "-o", str(out)]
        if target.extra_requirements:
            command.append(str(extra_in))
        if target.torch_index and not torch_from:
            command += ["--extra-index-url", target.torch_index]
        if torch_from:
            command += ["--find-links", torch_from]
        if target.fast_attention:
            command += ["--extra", FAST_ATTENTION_EXTRA]
        for folder in find_links:
            command += ["--find-links", folder]
        env = {**os.environ, **target.env, "UV_NO_CONFIG": "1"}
        subprocess.run(command, cwd=REPO, check=True, env=env, capture_output=True, text=True)
        _drop_local_paths(out, Path(tmp))
    if torch_from and target.torch_index:
        text = out.read_text(encoding="utf-8")
        _write_atomic(out, text.replace(f"--index-url {PYPI}\n", f"--index-url {PYPI}\n--extra-index-url {target.torch_index}\n", 1))
    return out


def _drop_local_paths(lock: Path, tmp: Path) -> None:
    """A lock names no folder of the machine it was made on (uv's header quotes its arguments; its
    "via" comments name the temporary torch.txt and extra.in by their full path)."""
    lines = [line.replace(f"{tmp}{os.sep}", "") for line in lock.read_text(encoding="utf-8").splitlines()
             if "file://" not in line]
    _write_atomic(lock, "\n".join(lines) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def pins(lock: Path) -> dict[str, str]:
    found = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.links.append(href)


def index_files(index: str, name: str) -> list[dict]:
    """The files an index lists for a package (PEP 691 JSON where offered, else the HTML page)."""
    url = f"{index.rstrip('/')}/{name}/"
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.5",
                                                   "User-Agent": "shotsketch-make-locks"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        body = response.read().decode("utf-8", "replace")
        kind = response.headers.get("Content-Type", "")
    if "json" in kind:
        return [{"filename": f["filename"], "url": urllib.parse.urljoin(url, f["url"]),
                 "sha256": f.get("hashes", {}).get("sha256"), "size": f.get("size")}
                for f in json.loads(body).get("files", [])]
    parser = _Links()
    parser.feed(body)
    files = []
    for href in parser.links:
        absolute, _, fragment = urllib.parse.urljoin(url, href).partition("#")
        filename = urllib.parse.unquote(absolute.rsplit("/", 1)[-1])
        sha = fragment.partition("sha256=")[2] or None
        files.append({"filename": filename, "url": absolute, "sha256": sha, "size": None})
    return files


def _size_by_head(url: str) -> int | None:
    try:
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "shotsketch-make-locks"})
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            length = response.headers.get("Content-Length")
            return int(length) if length and length.isdigit() else None
    except OSError:
        return None


def wheel_version(filename: str) -> str:
    return urllib.parse.unquote(filename.split("-")[1]) if filename.count("-") >= 4 else ""


def write_downloads(target: Target, python: str, lock: Path) -> Path:
    """The lock's large wheels for this platform and Python, with URL, sha256 and size."""
    entries = []
    missing = []
    indexes = [PYPI] + ([target.torch_index] if target.torch_index else [])
    for name, version in sorted(pins(lock).items()):
        if not LARGE_NAMES.match(name):
            continue
        chosen = None
        for index in reversed(indexes):  # the torch index first, as the install prefers its builds
            try:
                files = index_files(index, name)
            except OSError:
                continue
            fitting = [f for f in files if f["filename"].endswith(".whl") and wheel_version(f["filename"]) == version
                       and f.get("sha256") and f["url"].startswith("https://")
                       and wheel_fits(f["filename"], python, target.machine) and _platform_fits(f["filename"], target)]
            if fitting:
                chosen = fitting[0]
                break
        if chosen is None:
            missing.append(f"{name}=={version}")
            continue
        size = chosen.get("size") or _size_by_head(chosen["url"])
        if size is None or size >= LARGE_BYTES:
            entries.append({"name": name, "version": version, "filename": chosen["filename"], "url": chosen["url"],
                            "sha256": chosen["sha256"], "size": size})
    out = lock.with_name(lock.name + ".downloads.json")
    _write_atomic(out, json.dumps({"lock": lock.name, "python": python, "files": entries,
                                   "not_listed": missing}, indent=1) + "\n")
    return out


def _platform_fits(filename: str, target: Target) -> bool:
    plat = filename[:-4].split("-")[-1].lower()
    return {"linux": "linux" in plat, "windows": "win" in plat, "macos": "macosx" in plat}[target.os] or plat == "any"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated target names, e.g. linux-cu130,linux-cpu")
    parser.add_argument("--python", default=",".join(PYTHONS), help="comma-separated Python versions")
    parser.add_argument("--find-links", action="append", default=[], help="a folder of wheels to resolve from too")
    parser.add_argument("--torch-from", metavar="DIR", help="resolve torch from this folder of wheels where the "
                        "PyTorch index cannot be reached (the lock still names the index)")
    parser.add_argument("--no-downloads", action="store_true", help="skip the large-wheel lists")
    args = parser.parse_args(argv)
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    only = set(args.only.split(",")) if args.only else None
    LOCKS.mkdir(parents=True, exist_ok=True)
    failed = []
    for target in TARGETS:
        if only and target.name not in only and f"{target.os}-{target.backend}" not in only:
            continue
        for python in args.python.split(","):
            try:
                lock = compile_lock(target, python, uv, args.find_links, args.torch_from)
            except subprocess.CalledProcessError as exc:
                reason = (exc.stderr or "").strip().splitlines()
                failed.append(f"{target.name} py{python}: {reason[0] if reason else 'uv failed'}")
                lock_path(target, python).unlink(missing_ok=True)
                continue
            manifest = "" if args.no_downloads else f", {write_downloads(target, python, lock).name}"
            print(f"made {lock.relative_to(REPO)}{manifest}")
    for line in failed:
        print(f"not made: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
