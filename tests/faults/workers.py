"""Programs the fault tests run in their own processes (so that they can race or be killed):
``python workers.py COMMAND ARGS...``. Each prints ``ok`` or one line saying what went wrong."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def _wait_for(go: Path) -> None:
    """A start line for racing processes: spin until the file appears."""
    while not go.exists():
        time.sleep(0.001)


def open_and_write(path: str, name: str, go: str) -> None:
    from shotsketch.core.library import Library

    _wait_for(Path(go))
    with Library.open(path) as lib:
        lib.create_project(name)


def write_rows_and_die(path: str, rows: str) -> None:
    """Confirmed writes, then an exit without closing: the rows live in the WAL, as after kill -9."""
    from shotsketch.core.library import Library

    lib = Library.open(path)
    shot = lib.create_shot(lib.create_project("Film").id, "Shot")
    for i in range(int(rows)):
        lib.create_variant(shot.id, f"committed prompt {i}")
    sys.stdout.write("ok\n")
    sys.stdout.flush()
    os._exit(0)


def write_until_killed(path: str, log: str) -> None:
    """Writes one variant after another; each confirmed write is logged (fsync) after its commit."""
    from shotsketch.core.library import Library

    lib = Library.open(path)
    shot = lib.create_shot(lib.create_project("Film").id, "Shot")
    with open(log, "a") as fh:
        for i in range(1_000_000):
            # some changes span many pages, so that a kill can land inside a multi-frame change
            lib.create_variant(shot.id, f"confirmed {os.getpid()}-{i} " + "x" * (i % 7) * 3000)
            fh.write(f"{os.getpid()}-{i}\n")
            fh.flush()
            os.fsync(fh.fileno())


def encode_until_killed(out: str) -> None:
    """An encode that takes its time (one frame every 20 ms) until it is killed."""
    import numpy as np

    from shotsketch.media.encode import write_clip

    frames = np.zeros((2000, 64, 96, 3), dtype=np.uint8)
    write_clip(frames, out, progress=lambda done, total: time.sleep(0.02), metadata={"comment": "take"})


def write_many(path: str, name: str, go: str, rows: str) -> None:
    """One of several processes writing to one library at the same moment."""
    from shotsketch.core.library import Library

    _wait_for(Path(go))
    with Library.open(path) as lib:
        shot = lib.create_shot(lib.create_project(name).id, "Shot")
        for i in range(int(rows)):
            lib.create_variant(shot.id, f"{name} {i}")


COMMANDS = {"write-many": write_many, "encode-until-killed": encode_until_killed, "open-and-write": open_and_write, "write-rows-and-die": write_rows_and_die,
            "write-until-killed": write_until_killed}

if __name__ == "__main__":
    try:
        COMMANDS[sys.argv[1]](*sys.argv[2:])
    except BaseException as exc:
        print(f"{type(exc).__name__}: {exc}")
        sys.exit(1)
    print("ok")
