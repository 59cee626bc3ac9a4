"""What the installer ships beside the launcher: the lock files, the app's wheel, uv, and in an
offline bundle a wheelhouse. Found beside the frozen launcher, or in the repository when run from it."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from shotsketch_launcher.gpu import current_os
from shotsketch_launcher.locks import Lock

PAYLOAD_ENV = "SHOTSKETCH_PAYLOAD"


@dataclass(frozen=True)
class Payload:
    root: Path
    os: str = current_os()

    @classmethod
    def find(cls) -> Payload:
        configured = os.environ.get(PAYLOAD_ENV)
        if configured:
            return cls(Path(configured))
        if getattr(sys, "frozen", False):
            return cls(Path(sys.executable).resolve().parent / "payload")
        return cls(Path(__file__).resolve().parents[2] / "payload")

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def uv(self) -> Path:
        return self.root / ("uv.exe" if os.name == "nt" else "uv")

    @property
    def app_wheel(self) -> Path:
        wheels = sorted((self.root / "wheels").glob("shotsketch-*.whl"))
        if not wheels:
            raise FileNotFoundError(f"the installer is incomplete: no Shotsketch wheel in {self.root / 'wheels'}; "
                                    "reinstall Shotsketch")
        return wheels[-1]

    @property
    def app_version(self) -> str:
        return self.app_wheel.name.split("-")[1]

    @property
    def wheelhouse(self) -> Path | None:
        """An offline bundle's wheels, when this installer carries them."""
        folder = self.root / "wheelhouse"
        return folder if folder.is_dir() and any(folder.glob("*.whl")) else None

    def identity(self, lock: Lock) -> str:
        """Changes when the lock or the app changes: an environment built from another one is out of date."""
        digest = hashlib.sha256(lock.path.read_bytes())
        digest.update(self.app_wheel.name.encode())
        digest.update(hashlib.sha256(self.app_wheel.read_bytes()).digest())
        return digest.hexdigest()[:16]
