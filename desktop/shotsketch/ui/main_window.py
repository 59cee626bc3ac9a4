"""The main window: it assembles the panels, menus and actions around one :class:`AppSession`.

The open shot is one model (:class:`~shotsketch.app.shot.OpenShot`, ``window.shot``); the
prompt, sketch, toolbar and library panels are views of it (each has a ``model`` setter), so the
shot the library shows, the one the editors hold and the one Generate queues are always the same.
Generate queues jobs in the library (:class:`~shotsketch.app.jobs.JobQueue`) and hands their
immutable requests to the one GPU worker; engine events come back on the main thread and are
handled in one ``match`` (:class:`~shotsketch.ui.job_runner.JobRunner`); a finished job becomes a
take on the background writer (:class:`~shotsketch.ui.background.Background`), awaited on the
qasync loop.
"""

from __future__ import annotations

import logging
from pathlib import Path

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QUndoStack
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QWidget

from shotsketch.app.jobs import JobEnded
from shotsketch.app.loras import missing_files
from shotsketch.app.model_options import ModelOptions, load_model_options, schedule_text
from shotsketch.app.session import AppSession
from shotsketch.app.shot import OpenShot
from shotsketch.core.library import Library, LibraryError, Shot, Take
from shotsketch.core.settings import AppSettings, load_settings, save_settings
from shotsketch.engine.events import FinalEvent, JobFailed, ModelLoaded
from shotsketch.engine.requests import RequestError, validate_request
from shotsketch.media.heatmaps import adherence_summary
from shotsketch.ui import dock_layout, window_dialogs
from shotsketch.ui.background import Background
from shotsketch.ui.errors import ErrorReporter, sentence
from shotsketch.ui.generate_bar import GenerateBar
from shotsketch.ui.job_runner import JobRunner
from shotsketch.ui.key_router import KeyRouter
from shotsketch.ui.library_panel import LibraryPanel
from shotsketch.ui.lora_panel import LoraPanel
from shotsketch.ui.prompt_editor import PromptPanel
from shotsketch.ui.queue_panel import JobState, QueuePanel
from shotsketch.ui.sketch_panel import SketchPanel
from shotsketch.ui.timeline import TimelinePanel
from shotsketch.ui.window_menus import build_actions, build_menus
from shotsketch.ui.worker import EngineFactory, GpuWorker, WorkerState, generator_factory, status_text

log = logging.getLogger(__name__)

PREPARE_PROMPT_DELAY_MS = 600  # after the last keystroke: encode the prompt ahead of Generate
SETTINGS_SAVE_DELAY_MS = 600


class MainWindow(QMainWindow):
    takeSaved = Signal(object)  # core.library.Take, once it is in the library and shown
    jobsQueued = Signal(list)   # job ids, once Generate's jobs are in the library and sent to the worker
    shotLoaded = Signal(int)

    def __init__(self, *, library: Library | None = None, settings: AppSettings | None = None,
                 engine_factory: EngineFactory | None = None, demo: bool = False,
                 show_error_dialogs: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.settings = settings or load_settings()
        self.model = "demo" if demo else self.settings.model
        self.model_options: ModelOptions = load_model_options()  # e.g. "this folder is step-distilled"
        self.library = library or Library.open()
        self._owns_library = library is None
        self._closed = False
        self.shown_take: Take | None = None
        self.status_model = QLabel()
        self.status_model.setObjectName("statusModel")
        self.status_worker = QLabel()
        self.statusBar().addPermanentWidget(self.status_worker)
        self.statusBar().addPermanentWidget(self.status_model)
        self.errors = ErrorReporter(self, self.statusBar(), show_dialogs=show_error_dialogs)
        self.background = Background(lambda message, detail: self.errors.report(message, detail))
        self.session = AppSession(self.library, self.settings, demo=self.model == "demo",
                                  run_write=self.background.write)
        self.shot: OpenShot = self.session.shot

        self.undo_stack = QUndoStack(self)
        self.sketch = SketchPanel(self.undo_stack)
        self.prompt = PromptPanel()
        self.lora_panel = LoraPanel(self.undo_stack)
        self.timeline = TimelinePanel()
        self.timeline.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # a click on the video takes Space / arrows
        self.library_panel = LibraryPanel(self.library)
        self.queue = QueuePanel()
        self.generate_bar = GenerateBar(self)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.generate_bar)
        self.docks = dock_layout.make_docks(self, {"library": self.library_panel, "sketch": self.sketch,
                                                    "timeline": self.timeline, "prompt": self.prompt,
                                                    "queue": self.queue, "loras": self.lora_panel})
        self.window_actions = build_actions(self)
        build_menus(self, self.window_actions)
        dock_layout.restore_layout(self, self.docks)

        self.worker = GpuWorker(engine_factory or self.engine_factory(), self)
        self.worker.stateChanged.connect(self._on_worker_state)
        self.worker.modelLoaded.connect(self._on_model_loaded)
        self.runner = JobRunner(self.session.queue, self.worker, self.queue, self.background, self)
        self.runner.queued.connect(self._on_queued)
        self.runner.ended.connect(self._on_ended)
        self._prepare_timer = self._timer(PREPARE_PROMPT_DELAY_MS, self.prepare_prompt)
        self._settings_timer = self._timer(SETTINGS_SAVE_DELAY_MS, self._save_settings)
        self._connect()
        self._key_router = KeyRouter(self.timeline, self)
        QApplication.instance().installEventFilter(self._key_router)
        QApplication.instance().focusChanged.connect(self._on_focus_changed)

        self.lora_panel.lorasChanged.connect(self._on_loras_changed)
        for view in (self.prompt, self.sketch, self.generate_bar, self.library_panel, self.lora_panel):
            view.model = self.shot
        self._run_or_report(self.session.open_last_or_example)
        self._resume_queue()
        self._update_model_labels()
        self._on_worker_state(WorkerState.IDLE, "")

    # ------------------------------------------------------------------ assembling
    def _timer(self, ms: int, slot) -> QTimer:  # noqa: ANN001
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    def _connect(self) -> None:
        events = self.shot.events
        events.opened.connect(self._on_shot_opened)
        for event in (events.prompt, events.negative_prompt, events.edited_final, events.layout):
            event.connect(self._on_prompt_edited)
        for event in (events.layout_strength, events.fast):
            event.connect(self._on_generation_option)
        self.generate_bar.generateRequested.connect(self.generate)
        self.prompt.generateRequested.connect(lambda: self.generate(1))
        self.prompt.draftRequested.connect(self.draft_layout_from_prompt)
        panel = self.library_panel
        panel.shotOpened.connect(self.open_shot)
        panel.variantSelected.connect(self.show_variant)
        panel.branchRequested.connect(self.load_variant)
        panel.takeActivated.connect(self.show_take)
        panel.compareRequested.connect(self.compare_takes)
        panel.exportRequested.connect(self.export_takes)
        for source in (panel, self.timeline):
            source.errorOccurred.connect(lambda message: self.errors.report(message))

    def _run_or_report(self, fn, *args) -> bool:  # noqa: ANN001
        """Call a session method; its LibraryError / RequestError becomes one message."""
        try:
            fn(*args)
        except (LibraryError, RequestError) as exc:
            self.errors.report(sentence(str(exc)))
            return False
        return True

    # ------------------------------------------------------------------ the open shot
    def current_shot(self) -> Shot | None:
        return self.shot.shot

    def open_shot(self, shot_id: int) -> None:
        if shot_id != self.shot.shot_id:
            self._run_or_report(self.session.open_shot, shot_id)

    def open_example_shot(self, example_id: str = "yellow_ball", *, reset: bool = False) -> None:
        self._run_or_report(lambda: self.session.open_example(example_id, reset=reset))

    def _on_shot_opened(self, shot: OpenShot) -> None:
        """Every view re-read the model; the window shows the shot's newest take (or none)."""
        self.library_panel.refresh()
        self._update_title()
        if shot.load_problem:
            self.errors.report(shot.load_problem)
        latest = self.session.latest_take() if shot.shot_id is not None else None
        if latest is not None:
            self.show_take(latest.id, take=latest)
        else:
            self.timeline.clear("No takes of this shot yet: press Generate.")
        if shot.shot_id is not None:
            self.shotLoaded.emit(shot.shot_id)

    def new_project(self) -> None:
        name = window_dialogs.ask_project_name(self)
        if name and self._run_or_report(self.session.new_project, name):
            self.prompt.focus_prompt()

    def new_shot(self) -> None:
        if self._run_or_report(self.session.new_shot):
            self.prompt.focus_prompt()

    def open_project(self) -> None:
        shot_id = window_dialogs.choose_shot(self, self.library, self.shot.shot_id)
        if shot_id is not None:
            self.open_shot(shot_id)

    def show_variant(self, variant_id: int) -> None:
        """A variant clicked in the history: its shot is opened (the editors follow) and its newest
        take shown; the editors keep what they hold (Branch from here puts the variant in them)."""
        try:
            variant = self.library.get_variant(variant_id)
            takes = self.library.list_takes(variant_id)
        except LibraryError as exc:
            self.errors.report(str(exc))
            return
        self.open_shot(variant.shot_id)
        if takes:
            self.show_take(takes[-1].id, take=takes[-1])

    def load_variant(self, variant_id: int) -> None:
        """Branch from here: the variant back in the editors (its shot opened first)."""
        self._run_or_report(self.session.load_variant, variant_id)

    def draft_layout_from_prompt(self, text: str) -> None:
        """On the person's request only: the prompt's draft onto the sketch, keeping every box they
        drew or changed since the last draft, and taking off the last draft's boxes the prompt no
        longer names (app/shot.py draft_from_prompt: the last draft is kept with the shot; one undoable edit)."""
        draft, merged = self.shot.draft_from_prompt(text)
        if merged is None:
            self.statusBar().showMessage("No subjects with places were found in the prompt; sketch them instead.", 8000)
            return
        self.sketch.set_sketch(merged.layout, undoable=True)  # one undoable edit; the model follows
        notes = [f"Not placed: {', '.join(draft.unplaced)} — sketch them by hand."] if draft.unplaced else []
        notes += [f"Kept your boxes for: {', '.join(merged.kept)}."] if merged.kept else []
        notes += [f"Took off, no longer in the prompt: {', '.join(merged.removed)} (Ctrl+Z puts them back)."] \
            if merged.removed else []
        if notes:
            self.statusBar().showMessage(" ".join(notes), 8000)

    def _on_prompt_edited(self, _value: object) -> None:
        self._prepare_timer.start()

    def _on_generation_option(self, _value: object) -> None:
        try:
            self.settings = self.settings.replace(layout_guidance_strength=self.shot.layout_strength,
                                                  fast_mode=self.shot.fast)
        except ValueError:
            return
        self._settings_timer.start()

    def _save_settings(self) -> None:
        settings = self.settings
        self.background.write(lambda: save_settings(settings))  # a failure is logged

    # ------------------------------------------------------------------ generating
    def prepare_prompt(self) -> None:
        """Have the worker encode the prompt as it stands now (when the model is loaded and idle)."""
        if self.worker.state in (WorkerState.READY, WorkerState.IDLE) and not self.worker.pending():
            self.worker.prepare_prompt(self.shot.final_prompt(), self.shot.negative_for_model())

    def generate(self, count: int = 1) -> bool:
        """Queue ``count`` takes of the open shot: refused at once (one message, False) when the shot
        cannot run; else the jobs are written to the library on the background writer (the window
        never waits for the disk) and :attr:`jobsQueued` brings their ids."""
        shot = self._shot_copy()
        try:
            validate_request(shot.request(), check_image=False)
            if shot.shot_id is None:
                raise RequestError("open or create a shot first")
            gone = missing_files(shot.loras)  # moved or deleted since it was added: said now, not at the job
            if gone:
                self.lora_panel.refresh()  # the row says which one, with Locate…
                raise RequestError(f"{gone} (in the LoRAs tab, Locate… where it is now, or remove it)")
        except RequestError as exc:
            self.errors.report(f"Cannot generate yet: {sentence(str(exc))}", title="Cannot generate")
            return False
        self.session.autosave.flush()  # what is queued is what a restart shows
        self.runner.queue(shot, count)
        return True

    def _shot_copy(self) -> OpenShot:
        """The open shot as it is now, detached: the background writer queues from it while the
        person goes on editing (nobody observes the copy)."""
        copy = OpenShot(self.settings)
        copy.open_state(self.shot.shot, self.shot.state(), variant_id=self.shot.variant_id)
        copy.set_layout_strength(self.shot.layout_strength)
        copy.set_fast(self.shot.fast)
        copy.set_loras(self.shot.loras)
        return copy

    def _on_queued(self, shot: OpenShot, job_ids: list[str]) -> None:
        if shot.shot_id == self.shot.shot_id:
            self.shot.set_variant_id(shot.variant_id)  # the variant the editors hold now
        self.library_panel.refresh()
        if self.tabifiedDockWidgets(self.docks["queue"]):
            self.docks["queue"].raise_()  # its tab in front: the progress is what matters now
        n = len(job_ids)
        self.statusBar().showMessage(f"Queued {n} job{'s' if n > 1 else ''}.", 4000)
        self.jobsQueued.emit(job_ids)

    def _resume_queue(self) -> None:
        """Jobs left queued when Shotsketch closed (or by a window that is gone) run again."""
        count, problem = self.runner.resume()
        if problem:
            self.errors.report(problem)
        if count:
            self.statusBar().showMessage(
                f"Restored {count} job{'s' if count > 1 else ''} queued before Shotsketch closed.", 8000)

    def cancel_job(self, job_id: str) -> None:
        self.runner.cancel(job_id)

    def cancel_all(self) -> None:
        self.runner.cancel_all()

    def _on_ended(self, ended: JobEnded, event: FinalEvent) -> None:
        if ended.take is not None:
            take = ended.take
            self.library_panel.take_saved(take)
            if ended.job.shot_id == self.shot.shot_id:
                self.show_take(take.id, take=take, layout=ended.job.layout())
            self.statusBar().showMessage(f"Take {take.id} saved: {take.file.name}", 6000)
            self.takeSaved.emit(take)
        elif ended.cancelled:
            self.library_panel.refresh()
            self.statusBar().showMessage("Job cancelled.", 3000)
        else:
            self.library_panel.refresh()
            suggestion = event.suggestion if isinstance(event, JobFailed) else None
            hint = f" Suggested memory plan: {suggestion}." if suggestion else ""
            detail = event.detail if isinstance(event, JobFailed) else ""
            self.errors.report(sentence(ended.message) + hint, detail, title="Generation failed")

    # ------------------------------------------------------------------ takes
    def show_take(self, take_id: int, take: Take | None = None, layout=None) -> None:  # noqa: ANN001
        try:
            take = take or self.library.get_take(take_id)
        except LibraryError as exc:
            self.errors.report(str(exc))
            return
        if not take.file.exists():
            self.errors.report(f"The take's file {take.file} is missing (deleted or moved).")
            return
        if layout is None:
            from shotsketch.app.requests import request_layout
            from shotsketch.engine.requests import GenerationRequest

            try:
                layout = request_layout(GenerationRequest.from_dict(take.recipe.get("request")))
            except (RequestError, ValueError, TypeError, AttributeError):
                layout = None
        share = adherence_summary(take.recipe)
        self.timeline.load_take(take.file, layout,  # its heatmaps are read with the decode, off this thread
                                title=f"take {take.id}" + (f" · {share}" if share else ""))
        self.shown_take = take

    def compare_takes(self, first: int, second: int) -> None:
        try:
            a, b = self.library.get_take(first), self.library.get_take(second)
        except LibraryError as exc:
            self.errors.report(str(exc))
            return
        self.show_take(a.id, take=a)
        self.timeline.compare_with(b.file)

    def export_selected(self) -> None:
        """File ▸ Export: the takes selected in the library, else the one in the preview."""
        ids = self.library_panel.selected_take_ids()
        if not ids and self.shown_take is not None:
            ids = [self.shown_take.id]
        if not ids:
            self.errors.report("Select the takes to export in the library first.")
            return
        self.export_takes(ids)

    def export_takes(self, take_ids: list[int]) -> None:
        from shotsketch.ui.export_dialog import ExportDialog

        folder = Path(self.settings.output_dir) if self.settings.output_dir else None
        try:
            dialog = ExportDialog.for_takes(self.library, list(take_ids), self, folder=folder)
        except LibraryError as exc:
            self.errors.report(str(exc))
            return
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.exportFinished.connect(lambda _summary: self.library_panel.exports_view.refresh())
        dialog.show()

    # ------------------------------------------------------------------ window, model and settings
    def reset_layout(self) -> None:
        dock_layout.arrange_default(self, self.docks)
        QTimer.singleShot(0, lambda: dock_layout.size_docks(self, self.docks))

    def resize_for_screenshot(self, size: QSize) -> None:
        """Resize and lay the panels out afresh for that size."""
        self.resize(size)
        self.reset_layout()

    def _compact(self) -> bool:
        return dock_layout.is_compact(self)

    def _update_model_labels(self) -> None:
        label = window_dialogs.model_label(self.model)
        loaded = self.worker.loaded_model if hasattr(self, "worker") else None
        schedule = schedule_text(loaded.schedule if loaded is not None else None)
        self.status_model.setText(f"Model: {label}" + (f" · {schedule}" if schedule else ""))
        self.status_model.setToolTip(label + (f"\n{schedule}: the steps and guidance of the shot are not used"
                                              if schedule else ""))
        self._update_title()

    def _update_title(self) -> None:
        shot = f"{self.shot.shot.name} — " if self.shot.shot else ""
        self.setWindowTitle(f"{shot}Shotsketch — {window_dialogs.model_label(self.model)}")

    def _on_worker_state(self, state: WorkerState, detail: str) -> None:
        self.status_worker.setText(status_text(state, self.worker.model_state))
        self.status_worker.setToolTip(detail)
        if state is WorkerState.BUSY:
            self._busy_job = detail
        elif state is WorkerState.IDLE:
            self._busy_job = None
        elif state is WorkerState.LOADING and getattr(self, "_busy_job", None):
            if self.queue.state(self._busy_job) is JobState.QUEUED:
                self.queue.set_state(self._busy_job, JobState.LOADING, "once per session; this can take a minute")

    def engine_factory(self) -> EngineFactory:
        """What the worker builds the engine with: the model, the memory plan, the GPUs, and whether
        the model is step-distilled as Settings has it for this model (None: as its folder says)."""
        return generator_factory(self.model, self.settings.memory_plan, gpus=self.settings.gpus,
                                 distilled=self.model_options.distilled_for(self.model))

    def _replace_engine(self) -> None:
        """The next job (or preload) builds the engine afresh; what was loaded says nothing of it."""
        self.worker.forget_model_state()
        self.worker.set_engine_factory(self.engine_factory())
        self._on_model_loaded(None)

    def _on_model_loaded(self, loaded: ModelLoaded | None) -> None:
        """The worker loaded the model: a step-distilled one is shown with its own schedule."""
        self.generate_bar.show_loaded_model(loaded)
        self._update_model_labels()

    def _on_loras_changed(self, count: int) -> None:
        self.docks["loras"].setWindowTitle(f"LoRAs ({count})" if count else "LoRAs")

    def set_model(self, model: str) -> None:
        """Use another model (a folder, ``hf:ORG/NAME`` or ``demo``) from the next job on."""
        self.model = model
        self._replace_engine()
        self._update_model_labels()

    def show_model_setup(self, first_run: bool = False) -> None:
        from shotsketch.ui.model_setup import ModelSetupDialog

        dialog = ModelSetupDialog(self.settings, self, first_run=first_run)
        if dialog.exec() and dialog.chosen_model:
            self.settings = dialog.saved_settings or self.settings
            self.set_model(dialog.chosen_model)
            self.worker.preload()

    def show_settings(self) -> None:
        from shotsketch.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self, model=self.model, model_options=self.model_options)
        if dialog.exec() and dialog.saved_settings is not None:
            self.apply_settings(dialog.saved_settings, dialog.saved_model_options)

    def apply_settings(self, settings: AppSettings, model_options: ModelOptions | None = None) -> None:
        """Settings saved: the open shot's layout strength follows; a new memory plan, GPU count or
        step-distilled choice for this model gives the worker a new engine (after a new
        step-distilled choice it is loaded again at once when one was loaded, so that the generate
        bar shows what the model is now)."""
        old, self.settings = self.settings, settings
        old_distilled = self.model_options.distilled_for(self.model)
        self.model_options = model_options or self.model_options
        distilled = self.model_options.distilled_for(self.model)
        self.shot.set_layout_strength(self.settings.layout_guidance_strength)
        if (old.memory_plan, old.gpus, old_distilled) != (self.settings.memory_plan, self.settings.gpus, distilled):
            was_loaded = self.worker.model_state is WorkerState.READY
            self._replace_engine()
            if was_loaded and distilled != old_distilled:
                self.worker.preload()

    def show_about(self) -> None:
        window_dialogs.show_about(self, self.model)

    def show_log_location(self) -> None:
        window_dialogs.show_log_location(self)

    # ------------------------------------------------------------------ playback
    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        """Inside the preview its own Space / arrow shortcuts apply; the window's step aside
        (two shortcuts for one key would cancel each other out as ambiguous)."""
        inside = new is not None and (new is self.timeline or self.timeline.isAncestorOf(new))
        a = self.window_actions
        for act, key in ((a.play, "Space"), (a.prev, "Left"), (a.next, "Right")):
            act.setShortcut(QKeySequence() if inside else QKeySequence(key))

    def step_frame(self, n: int) -> None:
        self.timeline.pause()
        self.timeline.step(n)

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Save the shot, the settings and the layout; give queued jobs back; stop the worker."""
        if self._closed:
            return
        self._closed = True
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self._key_router)
            app.focusChanged.disconnect(self._on_focus_changed)
        if self._settings_timer.isActive():
            self._settings_timer.stop()
            self._save_settings()
        self.runner.close()
        self.worker.shutdown()
        self.background.shutdown()
        self.session.close()
        dock_layout.save_layout(self)
        self.errors.close_dialog()
        if self._owns_library:
            self.library.close()


__all__ = ["MainWindow"]
