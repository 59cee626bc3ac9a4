"""The generation queue kept on disk, so jobs queued when the app closes run again at the next start.

One JSON file in the data dir, rewritten atomically whenever the queue changes. Every field is
checked on load; a damaged file is kept aside (never deleted) and the app starts with an empty
queue and one message.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shotsketch.core import paths
from shotsketch.core.atomic import write_json_atomic
from shotsketch.engine.requests import GenerationRequest, RequestError, validate_request
from shotsketch.ui.takes import VariantSnapshot

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class PendingJob:
    job_id: str
    request: GenerationRequest
    snapshot: VariantSnapshot


def queue_path() -> Path:
    return paths.data_dir() / "queue.json"


def save_pending(jobs: list[PendingJob], path: Path | None = None) -> None:
    path = path or queue_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {
        "schema_version": SCHEMA_VERSION,
        "jobs": [{"job_id": j.job_id, "request": j.request.to_dict(), "snapshot": {
            "shot_id": j.snapshot.shot_id, "prompt": j.snapshot.prompt, "negative_prompt": j.snapshot.negative_prompt,
            "layout_json": j.snapshot.layout_json, "settings_json": j.snapshot.settings_json}} for j in jobs],
    })


def _snapshot(data: Any) -> VariantSnapshot:
    if not isinstance(data, dict):
        raise ValueError("a job's snapshot is not an object")
    shot_id = data.get("shot_id")
    if not isinstance(shot_id, int) or isinstance(shot_id, bool):
        raise ValueError("a job's shot id is not a number")
    texts = {k: data.get(k) for k in ("prompt", "negative_prompt", "settings_json")}
    if not all(isinstance(v, str) for v in texts.values()):
        raise ValueError("a job's snapshot has a missing text")
    layout = data.get("layout_json")
    if layout is not None and not isinstance(layout, str):
        raise ValueError("a job's layout is not text")
    if not isinstance(json.loads(texts["settings_json"]), dict):
        raise ValueError("a job's settings are not an object")
    return VariantSnapshot(shot_id, texts["prompt"], texts["negative_prompt"], layout, texts["settings_json"])


def load_pending(path: Path | None = None) -> tuple[list[PendingJob], str | None]:
    """(jobs, problem): the saved queue, or [] and a sentence when the file could not be used."""
    path = path or queue_path()
    if not path.exists():
        return [], None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
            raise ValueError("not a queue file")
        version = data.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(f"written by a newer Shotsketch (schema {version!r})")
        jobs = []
        seen: set[str] = set()
        for entry in data["jobs"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("job_id"), str):
                raise ValueError("a job has no id")
            if entry["job_id"] in seen:
                raise ValueError(f"job {entry['job_id']} is listed twice")
            seen.add(entry["job_id"])
            request = validate_request(GenerationRequest.from_dict(entry.get("request")), check_image=False)
            jobs.append(PendingJob(entry["job_id"], request, _snapshot(entry.get("snapshot"))))
        return jobs, None
    except (OSError, UnicodeDecodeError, ValueError, RequestError, TypeError, RecursionError) as exc:
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(path, aside)
        except OSError:
            aside = path
        log.warning("queue file %s unusable (%s); kept as %s", path, exc, aside)
        return [], f"The saved queue could not be read ({exc}); it was kept as {aside.name} and the queue starts empty."
