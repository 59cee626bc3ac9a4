"""One window's application state without Qt: the library, the open shot, its autosave and the queue.

The window builds one :class:`AppSession` and its views observe ``session.shot`` (the open shot's
model); menus and buttons call the session's methods. Headless code (tests, scripts) uses the
same object. Every method that can fail for a reason a person can act on raises
:class:`~shotsketch.core.library.LibraryError` or
:class:`~shotsketch.engine.requests.RequestError` with one sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from shotsketch.app.autosave import Autosave, Handle, _loop_call_later
from shotsketch.app.jobs import JobQueue, QueuedJob
from shotsketch.app.shot import STATE_VERSION, OpenShot, ShotSettings
from shotsketch.core.examples import example_shot
from shotsketch.core.layout import Layout
from shotsketch.core.library import Library, LibraryError, Shot, Take
from shotsketch.core.settings import AppSettings

log = logging.getLogger(__name__)

EXAMPLES_PROJECT = "Examples"
DEMO_SHOT_SETTINGS = ShotSettings(448, 256, 17, 4, 5.0, 0)
"""A new example shot's settings with the demo model (seconds on a CPU)."""


class AppSession:
    """The library, the open shot (:attr:`shot`), its :attr:`autosave` and the :attr:`queue`."""

    def __init__(
        self,
        library: Library,
        app_settings: AppSettings | None = None,
        *,
        demo: bool = False,
        call_later: Callable[[float, Callable[[], None]], Handle] = _loop_call_later,
        run_write: Callable[[Callable[[], None]], Any] = lambda fn: fn(),
        owner: str | None = None,
    ) -> None:
        self.library = library
        self.app_settings = app_settings or AppSettings()
        self.demo = demo
        self.shot = OpenShot(self.app_settings)
        self.autosave = Autosave(self.shot, library, call_later=call_later, run=run_write)
        self.queue = JobQueue(library, owner=owner)

    # -- shots
    def open_shot(self, shot_id: int, *, reload: bool = False) -> OpenShot:
        """Save the shot open now, then open ``shot_id`` (every field at once) and remember it as
        the one to reopen at the next start. The shot already open stays as it is (the model is
        its truth; reading it back could only lose the last edits) unless ``reload``: its saved
        state was just replaced (an example put back) and is to be shown."""
        if self.shot.shot_id == shot_id and not reload:
            return self.shot
        if self.shot.shot_id is not None and self.shot.shot_id != shot_id:
            # on this thread: going back to this shot later must read what it holds now, even
            # while the background writer is busy with an encode
            self.autosave.flush(wait=True)
        self.shot.open(self.library, shot_id)
        if reload:
            self.autosave.flush(wait=True)  # newer than any save still waiting on the writer
        try:
            self.library.set_last_open_shot(shot_id)
        except LibraryError as exc:
            log.warning("could not remember the open shot: %s", exc)
        return self.shot

    def open_last_or_example(self) -> OpenShot:
        """At start: the shot open when the app last closed, else the first example."""
        shot = self.library.last_open_shot()
        if shot is not None:
            return self.open_shot(shot.id)
        return self.open_example("yellow_ball")

    def open_example(self, example_id: str = "yellow_ball", *, reset: bool = False) -> OpenShot:
        """Open the example's shot in the "Examples" project (created on first use; ``reset`` puts
        its prompt, sketch and settings back)."""
        example = example_shot(example_id)
        project = next((p for p in self.library.list_projects() if p.name == EXAMPLES_PROJECT), None)
        if project is None:
            project = self.library.create_project(EXAMPLES_PROJECT)
        shot = next((s for s in self.library.list_shots(project.id) if s.name == example.name), None)
        written = False
        if shot is None or reset or self.library.load_shot_state(shot.id) is None:
            shot = shot or self.library.create_shot(project.id, example.name)
            settings = DEMO_SHOT_SETTINGS if self.demo else ShotSettings.from_app(self.app_settings)
            self.library.save_shot_state(shot.id, {
                "version": STATE_VERSION, "prompt": example.prompt, "negative_prompt": example.negative_prompt,
                "layout": example.layout.to_json(indent=None), "settings": settings.to_dict(),
            })
            written = True
        return self.open_shot(shot.id, reload=written)

    def new_project(self, name: str) -> OpenShot:
        """A new project with an empty "Shot 1", opened (settings as the open shot's)."""
        project = self.library.create_project(name)
        shot = self.library.create_shot(project.id, "Shot 1")
        self._save_empty_state(shot)
        return self.open_shot(shot.id)

    def new_shot(self) -> OpenShot:
        """A new empty shot in the open shot's project (or a new project when none is open), opened."""
        current = self.shot.shot
        if current is None:
            return self.new_project("My project")
        count = len(self.library.list_shots(current.project_id))
        shot = self.library.create_shot(current.project_id, f"Shot {count + 1}")
        self._save_empty_state(shot)
        return self.open_shot(shot.id)

    def _save_empty_state(self, shot: Shot) -> None:
        self.library.save_shot_state(shot.id, {
            "version": STATE_VERSION, "prompt": "", "negative_prompt": "", "layout": Layout().to_json(indent=None),
            "settings": {**self.shot.settings.to_dict(), "seed": 0},
            "loras": [c.to_dict() for c in self.shot.loras],  # kept from the open shot, as its settings are
        })

    def load_variant(self, variant_id: int) -> OpenShot:
        """Put a variant back into the editors, opening its shot first when it is another one."""
        variant = self.library.get_variant(variant_id)
        if self.shot.shot_id != variant.shot_id:
            self.open_shot(variant.shot_id)
        self.shot.load_variant(variant)
        return self.shot

    def latest_take(self, shot_id: int | None = None) -> Take | None:
        """The newest take of a shot (default: the open one), or None."""
        shot_id = self.shot.shot_id if shot_id is None else shot_id
        if shot_id is None:
            return None
        takes = [t for v in self.library.list_variants(shot_id) for t in self.library.list_takes(v.id)]
        return max(takes, key=lambda t: t.id) if takes else None

    # -- generating
    def generate(self, count: int = 1) -> list[QueuedJob]:
        """Queue ``count`` takes of the open shot (see :meth:`JobQueue.queue_shot`); the shot's
        state is saved first, so what is queued is what a restart shows."""
        jobs = self.queue.queue_shot(self.shot, count)
        self.autosave.flush()
        return jobs

    # -- closing
    def close(self) -> None:
        """Save the open shot and give this window's queued jobs back (they run at the next start)."""
        self.autosave.close()
        if self.shot.shot_id is not None:
            try:
                self.library.set_last_open_shot(self.shot.shot_id)
            except LibraryError as exc:
                log.error("could not remember the open shot: %s", exc)
        self.queue.release()


__all__ = ["AppSession", "DEMO_SHOT_SETTINGS", "EXAMPLES_PROJECT"]
