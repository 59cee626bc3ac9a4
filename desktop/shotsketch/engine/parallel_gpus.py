"""The GPUs of this machine and the links between them, for `shotsketch doctor` and the GPUs setting.

The links come from `nvidia-smi topo -m` (NVLink, or which PCIe path): its matrix is parsed, not
trusted, and a machine without nvidia-smi simply has no link information.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

MODEL_HEADS = 24  # TI2V-5B's attention heads: the sequence split needs a GPU count that divides them
_LINKS = {
    "PIX": "PCIe through one switch",
    "PXB": "PCIe through several switches",
    "PHB": "PCIe through the CPU's host bridge",
    "NODE": "PCIe through the CPU (same NUMA node)",
    "SYS": "PCIe across CPU sockets (slowest)",
    "SOC": "PCIe across CPU sockets (slowest)",
}


@dataclass(frozen=True)
class GpuLink:
    first: int
    second: int
    code: str  # as nvidia-smi writes it: NV18, PIX, PXB, PHB, NODE, SYS

    @property
    def nvlink(self) -> bool:
        return self.code.startswith("NV")

    def describe(self) -> str:
        m = re.fullmatch(r"NV(\d+)", self.code)
        if m:
            return f"NVLink ({m.group(1)} links)"
        return _LINKS.get(self.code, f"'{self.code}'")


def parse_topology(text: str) -> list[GpuLink]:
    """Each GPU pair's link from `nvidia-smi topo -m` output (pairs in order, each once)."""
    header: list[str] | None = None
    links: list[GpuLink] = []
    for line in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)  # nvidia-smi underlines the header on a terminal
        cells = [c.strip() for c in line.split("\t")]
        if header is None:
            if len(cells) > 1 and cells[0] == "" and "GPU0" in cells:
                header = cells
            continue
        m = re.fullmatch(r"GPU(\d+)", cells[0]) if cells else None
        if not m:
            if cells and cells[0].startswith("Legend"):
                break
            continue
        row = int(m.group(1))
        for name, code in zip(header[1:], cells[1:]):
            col = re.fullmatch(r"GPU(\d+)", name)
            if col and int(col.group(1)) > row and re.fullmatch(r"NV\d+|[A-Z]{3,4}", code):
                links.append(GpuLink(row, int(col.group(1)), code))
    return links


def read_topology(timeout_s: float = 10.0) -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "topo", "-m"], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def count_gpus(timeout_s: float = 10.0) -> int:
    """NVIDIA GPUs on this machine, from `nvidia-smi --list-gpus` (no CUDA initialised; 0 without it)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        done = subprocess.run([exe, "--list-gpus"], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in done.stdout.splitlines() if re.match(r"GPU \d+:", line)) if done.returncode == 0 else 0


def usable_counts(gpus: int, heads: int = MODEL_HEADS) -> list[int]:
    """GPU counts one clip can be split over on this machine (1, and those that divide the heads)."""
    return [n for n in range(1, gpus + 1) if n == 1 or heads % n == 0]


def describe_gpus(names: list[tuple[str, float]], topology: str | None) -> list[str]:
    """Doctor lines: each GPU (name, GiB), each pair's link, and what several GPUs can do."""
    lines = [f"GPU {i}: {name}, {gib:.0f} GiB" for i, (name, gib) in enumerate(names)]
    if len(names) < 2:
        return lines
    links = parse_topology(topology) if topology else []
    if not links:
        lines.append("GPU links: unknown (nvidia-smi topo -m gave nothing)")
    for link in links:
        lines.append(f"GPU {link.first} <-> GPU {link.second}: {link.describe()}")
    counts = usable_counts(len(names))
    lines.append(f"several GPUs: one clip can render on {', '.join(map(str, counts[1:]))} GPUs "
                 "(Settings > GPUs, or shotsketch generate --gpus N)")
    if links and not all(link.nvlink for link in links):
        lines.append("note: GPUs without NVLink exchange data over PCIe; the speed-up on several GPUs is smaller")
    return lines
