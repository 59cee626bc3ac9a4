"""Which GPU is here, and which torch build (backend) suits it.

Read from the tools' own output, never from torch (the launcher has none): ``nvidia-smi`` (name,
compute capability, driver version, memory), ``rocminfo`` with ``/dev/kfd`` for AMD on Linux, the
PCI vendor IDs of Windows' video controllers (WMI, through PowerShell), and the CPU of a Mac.
Each parser takes the recorded text, so tests feed them real outputs.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass


class Backend(str, enum.Enum):
    """A torch build. The value is the name used in lock-file names."""

    CUDA130 = "cu130"
    CUDA128 = "cu128"
    CUDA126 = "cu126"
    ROCM = "rocm"
    MPS = "mps"
    CPU = "cpu"

    @property
    def label(self) -> str:
        return BACKEND_LABELS[self]


BACKEND_LABELS = {
    Backend.CUDA130: "NVIDIA GPU — CUDA 13.0",
    Backend.CUDA128: "NVIDIA GPU — CUDA 12.8",
    Backend.CUDA126: "NVIDIA GPU — CUDA 12.6 (older GPUs and drivers)",
    Backend.ROCM: "AMD GPU — ROCm",
    Backend.MPS: "Apple Silicon GPU (Metal)",
    Backend.CPU: "CPU only (very slow; for trying the interface)",
}

# The oldest NVIDIA driver each CUDA build runs on (Linux numbers; Windows' are close enough:
# 580 / 570 / 560), and CUDA 13 drops GPUs older than Turing (compute capability 7.5).
CUDA_MIN_DRIVER = {Backend.CUDA130: (580, 0), Backend.CUDA128: (570, 0), Backend.CUDA126: (525, 60)}
CUDA13_MIN_CAPABILITY = (7, 5)
# Maxwell and Pascal (< 7.0) are left out of the CUDA 12.8 and 13.0 builds.
PASCAL_LAST = (7, 0)
# Blackwell (10.x datacenter, 12.x consumer) needs CUDA 12.8 or newer.
BLACKWELL_MIN_MAJOR = 10
# FlashAttention-4 on Hopper (9.x) and datacenter Blackwell (10.x) only: the app uses it on those
# (shotsketch/engine/attention.py FLASH4_ARCHES). flash-attn-4 since 4.0.0b15 also accepts 8.x and
# 12.x (RTX 30/40/50), through SM80-style mma.sync kernels, the same kind PyTorch's own attention
# has there, so on those cards it would be a download the app never uses.
FAST_ATTENTION_MAJORS = (9, 10)

PCI_VENDORS = {"10DE": "nvidia", "1002": "amd", "1022": "amd", "8086": "intel", "1414": "microsoft"}


@dataclass(frozen=True)
class Gpu:
    vendor: str  # "nvidia", "amd", "intel", "apple"
    name: str
    compute_capability: tuple[int, int] | None = None  # NVIDIA only
    driver_version: str = ""
    memory_mib: int | None = None
    arch: str = ""  # AMD gfx target, e.g. "gfx1100"

    def describe(self) -> str:
        parts = [self.name]
        if self.compute_capability:
            parts.append(f"compute {self.compute_capability[0]}.{self.compute_capability[1]}")
        if self.arch:
            parts.append(self.arch)
        if self.memory_mib:
            parts.append(f"{self.memory_mib / 1024:.0f} GiB")
        if self.driver_version:
            parts.append(f"driver {self.driver_version}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Proposal:
    """The backend the launcher proposes, why, and whether to add the fast-attention extra."""

    backend: Backend
    reason: str
    fast_attention: bool = False
    gpu: Gpu | None = None


NVIDIA_SMI_QUERY = ["--query-gpu=name,compute_cap,driver_version,memory.total", "--format=csv,noheader,nounits"]


def parse_nvidia_smi(output: str) -> list[Gpu]:
    """Rows of ``nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total
    --format=csv,noheader,nounits``."""
    gpus = []
    for row in csv.reader(io.StringIO(output)):
        cells = [c.strip() for c in row]
        if len(cells) < 3 or not cells[0] or cells[0].lower().startswith(("name", "no devices")):
            continue
        cap = _version_pair(cells[1])
        memory = int(float(cells[3])) if len(cells) > 3 and re.fullmatch(r"[\d.]+", cells[3]) else None
        gpus.append(Gpu("nvidia", cells[0], cap, cells[2], memory))
    return gpus


def parse_rocminfo(output: str) -> list[Gpu]:
    """GPU agents of ``rocminfo`` (the CPU agents are skipped)."""
    gpus = []
    for block in re.split(r"\n\*{5,}\s*\n", output):
        if not re.search(r"Device Type:\s*GPU", block):
            continue
        arch = re.search(r"^\s*Name:\s*(gfx\w+)", block, re.M)
        name = re.search(r"Marketing Name:\s*(.+)", block)
        gpus.append(Gpu("amd", name.group(1).strip() if name else (arch.group(1) if arch else "AMD GPU"),
                        arch=arch.group(1) if arch else ""))
    return gpus


WMI_COMMAND = ["powershell", "-NoProfile", "-Command",
               "Get-CimInstance Win32_VideoController | Select-Object Name,PNPDeviceID,DriverVersion,AdapterRAM"
               " | ConvertTo-Json"]


def parse_wmi(output: str) -> list[Gpu]:
    """``Get-CimInstance Win32_VideoController | ... | ConvertTo-Json`` (one object or a list)."""
    try:
        data = json.loads(output)
    except json.JSONDecodeError:
        return []
    rows = data if isinstance(data, list) else [data]
    gpus = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        vendor_id = re.search(r"VEN_([0-9A-Fa-f]{4})", str(row.get("PNPDeviceID") or ""))
        vendor = PCI_VENDORS.get(vendor_id.group(1).upper(), "other") if vendor_id else "other"
        if vendor in ("microsoft", "other"):
            continue  # the basic display adapter, remote desktop
        ram = row.get("AdapterRAM")
        gpus.append(Gpu(vendor, str(row.get("Name") or "GPU").strip(), driver_version=str(row.get("DriverVersion") or ""),
                        memory_mib=int(ram) // 2**20 if isinstance(ram, int) and ram > 0 else None))
    return gpus


def windows_driver_to_nvidia(version: str) -> str:
    """Windows' driver version "32.0.15.8129" is NVIDIA's 581.29 (its last five digits)."""
    digits = version.replace(".", "")[-5:]
    return f"{digits[:3]}.{digits[3:]}" if len(digits) == 5 and digits.isdigit() else version


def propose_backend(system: str, machine: str, nvidia: list[Gpu], amd: list[Gpu], wmi: list[Gpu],
                    has_kfd: bool = False) -> Proposal:
    """The backend to propose for this machine (``system`` as platform.system() says it)."""
    if system == "Darwin":
        if machine in ("arm64", "aarch64"):
            return Proposal(Backend.MPS, "Apple Silicon: the GPU runs through Metal (MPS)")
        return Proposal(Backend.CPU, "an Intel Mac has no supported GPU backend (PyTorch stopped at 2.2 there)")
    if nvidia:
        return _propose_cuda(max(nvidia, key=lambda g: (g.compute_capability or (0, 0), g.memory_mib or 0)), system)
    wmi_nvidia = [g for g in wmi if g.vendor == "nvidia"]
    if wmi_nvidia:
        gpu = wmi_nvidia[0]
        driver = windows_driver_to_nvidia(gpu.driver_version)
        return _propose_cuda(Gpu("nvidia", gpu.name, None, driver, gpu.memory_mib), system)
    if system == "Linux" and has_kfd and amd:
        return Proposal(Backend.ROCM, f"AMD GPU with ROCm: {amd[0].describe()}", gpu=amd[0])
    if any(g.vendor == "amd" for g in wmi):
        return Proposal(Backend.CPU, "AMD GPUs on Windows have no supported PyTorch build yet: CPU only")
    if system == "Linux" and amd and not has_kfd:
        return Proposal(Backend.CPU, "AMD GPU found but the ROCm driver (/dev/kfd) is not: CPU only")
    return Proposal(Backend.CPU, "no supported GPU found: CPU only")


def _propose_cuda(gpu: Gpu, system: str) -> Proposal:
    driver = _version_pair(gpu.driver_version) or (0, 0)
    cap = gpu.compute_capability
    fast = bool(cap and cap[0] in FAST_ATTENTION_MAJORS and system == "Linux")
    if driver < CUDA_MIN_DRIVER[Backend.CUDA126]:
        return Proposal(Backend.CPU, f"the NVIDIA driver {gpu.driver_version or '(unknown)'} is too old for "
                        "PyTorch: update it to 570 or newer, then choose Repair", gpu=gpu)
    if cap and cap < PASCAL_LAST:
        return Proposal(Backend.CUDA126, gpu.describe(), False, gpu)  # only the CUDA 12.6 builds keep sm_5x/6x
    if driver >= CUDA_MIN_DRIVER[Backend.CUDA130] and (cap is None or cap >= CUDA13_MIN_CAPABILITY):
        return Proposal(Backend.CUDA130, gpu.describe(), fast, gpu)
    if driver >= CUDA_MIN_DRIVER[Backend.CUDA128]:
        return Proposal(Backend.CUDA128, gpu.describe(), fast, gpu)
    if cap and cap[0] >= BLACKWELL_MIN_MAJOR:
        return Proposal(Backend.CPU, f"{gpu.name} needs NVIDIA driver 570 or newer (this one is "
                        f"{gpu.driver_version}): update it, then choose Repair", gpu=gpu)
    # No fast-attention lock is made for CUDA 12.6 (packaging/make_locks.py): a Hopper GPU on an
    # older driver gets the plain engine, and the window does not promise FlashAttention-4.
    return Proposal(Backend.CUDA126, gpu.describe(), False, gpu)


def _version_pair(text: str) -> tuple[int, int] | None:
    match = re.match(r"\s*(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _run(command: list[str], env: dict[str, str] | None) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=15, env=env,
                                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout if result.returncode == 0 else ""


def detect(env: dict[str, str] | None = None) -> Proposal:
    """Ask this machine's tools (each missing tool just finds nothing)."""
    system, machine = platform.system(), platform.machine().lower()
    nvidia_smi = shutil.which("nvidia-smi") or _windows_nvidia_smi(system)
    nvidia = parse_nvidia_smi(_run([nvidia_smi, *NVIDIA_SMI_QUERY], env)) if nvidia_smi else []
    amd: list[Gpu] = []
    has_kfd = system == "Linux" and os.path.exists("/dev/kfd")
    if system == "Linux" and not nvidia:
        rocminfo = shutil.which("rocminfo") or ("/opt/rocm/bin/rocminfo" if os.path.exists("/opt/rocm/bin/rocminfo") else None)
        amd = parse_rocminfo(_run([rocminfo], env)) if rocminfo else []
        if has_kfd and not amd:
            amd = [Gpu("amd", "AMD GPU")]
    wmi = parse_wmi(_run(WMI_COMMAND, env)) if system == "Windows" and not nvidia else []
    return propose_backend(system, machine, nvidia, amd, wmi, has_kfd)


def _windows_nvidia_smi(system: str) -> str | None:
    if system != "Windows":
        return None
    path = os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "nvidia-smi.exe")
    return path if os.path.exists(path) else None


def current_os() -> str:
    """The OS part of a lock-file name."""
    return {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")
