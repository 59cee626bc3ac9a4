"""The GPU worker: one long-lived QThread that owns the Generator and runs jobs one at a time.

The UI thread only ever *asks*: :meth:`GpuWorker.submit` and :meth:`GpuWorker.cancel` return at
once. The Generator is created and loaded on the worker thread (importing torch and loading the
weights take seconds), and every engine event comes back to the UI thread through the queued
signal :attr:`GpuWorker.event`. Cancelling a queued job answers with ``JobCancelled(at_step=0)``
when its turn comes, without touching the model; cancelling a running job sets its CancelToken,
which the engine checks between steps.

While the user writes, :meth:`GpuWorker.prepare_prompt` has the loaded engine encode the prompt in
the background (only the newest text, only while no job waits), so that pressing Generate finds the
embeddings cached; with the text encoder kept off the GPU (24 GiB cards) that hides moving it there
and back, too.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Protocol

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QObject, QThread, Signal, Slot

from shotsketch.engine.events import CancelToken, FinalEvent, JobCancelled, JobEvent, JobFailed, ModelLoaded
from shotsketch.engine.requests import GenerationRequest

log = logging.getLogger(__name__)


class Engine(Protocol):
    """Every method the worker calls on a Generator (engine/generator.py); tests pass a scripted
    fake with the same methods (tests/ui/conftest.py). After :meth:`load` the worker also reads the
    Generator's ``schedule`` (a step-distilled model's timesteps) where the engine has one."""

    def load(self) -> None: ...

    @property
    def needs_warm_up(self) -> bool: ...

    def warm_up(self) -> bool: ...

    def encode_prompts(self, prompt: str, negative: str) -> object: ...

    def generate(self, request: GenerationRequest, on_event: Callable[[JobEvent], None] | None = None,
                 cancel: CancelToken | None = None, job_id: str | None = None) -> FinalEvent: ...

    def unload(self) -> None: ...


class WorkerState(enum.Enum):
    """What the GPU worker is doing; :attr:`GpuWorker.stateChanged` carries it with a detail."""

    IDLE = "idle"          # no job; the model may or may not be loaded
    LOADING = "loading"    # creating and loading the model
    READY = "ready"        # the model is loaded
    FAILED = "failed"      # the model could not be loaded (detail: the sentence to show)
    WARMING = "warming"    # compiling the preview-size forward ahead of the first job
    BUSY = "busy"          # running a job (detail: its id)

    @property
    def about_the_model(self) -> bool:
        """Whether this state says something about the model (loaded, loading, failed)."""
        return self in (WorkerState.LOADING, WorkerState.READY, WorkerState.FAILED)


EngineFactory = Callable[[], Engine]


def status_text(state: WorkerState, model_state: WorkerState) -> str:
    """The status bar's words for what the worker is doing (``model_state``: see GpuWorker)."""
    if state is WorkerState.IDLE:
        return {WorkerState.READY: "Ready", WorkerState.FAILED: "Model failed to load"}.get(
            model_state, "Model loads on first use")
    return {WorkerState.LOADING: "Loading the model…", WorkerState.READY: "Model ready",
            WorkerState.FAILED: "Model failed to load", WorkerState.BUSY: "Generating…",
            WorkerState.WARMING: "Preparing the GPU kernels for previews…"}[state]


def load_failure_message(exc: BaseException) -> str:
    """The sentence shown when the model cannot be created or loaded."""
    text = str(exc).strip() or exc.__class__.__name__
    if exc.__class__.__name__ == "ModelError":
        return f"The model could not be loaded: {text}. Open Model ▸ Set up model… to choose another one."
    if isinstance(exc, MemoryError):
        return ("The model did not fit in memory while loading. Close other programs, or choose a leaner "
                "memory plan in Settings.")
    return (f"The model could not be loaded ({exc.__class__.__name__}: {text}). "
            "Open Model ▸ Set up model… to check it; details are in the log file.")


def loaded_event(engine: object) -> ModelLoaded:
    """What the window is told of a model just loaded: its step-distilled schedule, if any."""
    schedule = getattr(engine, "schedule", None)
    try:
        schedule = tuple(int(t) for t in schedule) if schedule else None
    except (TypeError, ValueError):
        schedule = None
    return ModelLoaded(schedule=schedule)


class _Runner(QObject):
    """Lives on the worker thread; its slots run there."""

    event = Signal(object)
    state = Signal(object, str)  # (WorkerState, detail)
    loaded = Signal(object)  # ModelLoaded, before the READY state

    def __init__(self, factory: EngineFactory, cancels: dict[str, CancelToken], lock: threading.Lock,
                 prepare_slot: dict[str, tuple[str, str]]) -> None:
        super().__init__()
        self._factory = factory
        self._engine: Engine | None = None
        self._cancels = cancels
        self._lock = lock
        self._prepare_slot = prepare_slot  # {"next": (prompt, negative)}: only the newest is encoded
        self._load_error: str | None = None

    def _ensure_engine(self) -> Engine | None:
        if self._engine is not None:
            return self._engine
        self.state.emit(WorkerState.LOADING, "")
        t0 = time.perf_counter()
        try:
            engine = self._factory()
            engine.load()
        except Exception as exc:  # noqa: BLE001 - reported as one message, details in the log
            log.exception("loading the model failed")
            self._load_error = load_failure_message(exc)
            self.state.emit(WorkerState.FAILED, self._load_error)
            return None
        self._engine = engine
        self._load_error = None
        log.info("model ready in %.1fs", time.perf_counter() - t0)
        self.loaded.emit(loaded_event(engine))
        self.state.emit(WorkerState.READY, "")
        return engine

    @Slot()
    def preload(self) -> None:
        engine = self._ensure_engine()
        if engine is None or not engine.needs_warm_up:
            return
        # Compile the preview-size forward while the user writes the first prompt; a job sent
        # meanwhile waits for it (the same work would otherwise slow that job down).
        self.state.emit(WorkerState.WARMING, "")
        try:
            engine.warm_up()
        except Exception:  # noqa: BLE001 - only a head start: the first job compiles instead
            log.warning("warm-up failed", exc_info=True)
        finally:
            self.state.emit(WorkerState.READY, "")

    @Slot()
    def prepare(self) -> None:
        """Encode the newest prompt the UI sent, if the model is loaded and no job is waiting."""
        with self._lock:
            texts = self._prepare_slot.pop("next", None)
            busy = bool(self._cancels)
        engine = self._engine
        if texts is None or busy or engine is None:
            return  # a job encodes its own prompt; an unloaded model is not loaded for this
        try:
            engine.encode_prompts(*texts)
        except Exception:  # noqa: BLE001 - only a head start: the job encodes the prompt itself
            log.debug("encoding the prompt ahead failed", exc_info=True)

    @Slot(str, object)
    def run(self, job_id: str, request: GenerationRequest) -> None:
        with self._lock:
            token = self._cancels.get(job_id)
        if token is None or token.cancelled:
            self._finish(job_id)
            self.event.emit(JobCancelled(job_id, 0))
            return
        self.state.emit(WorkerState.BUSY, job_id)
        engine = self._ensure_engine()
        if engine is None:
            self._finish(job_id)
            self.event.emit(JobFailed(job_id, self._load_error or "The model could not be loaded.",
                                      detail="see the log for the load failure"))
            self.state.emit(WorkerState.IDLE, "")
            return
        try:
            engine.generate(request, on_event=self.event.emit, cancel=token, job_id=job_id)
        except Exception as exc:  # noqa: BLE001 - a fake or a future engine must never kill the worker
            log.exception("job %s raised", job_id)
            self.event.emit(JobFailed(job_id, f"Generation failed unexpectedly ({exc.__class__.__name__}: {exc}).",
                                      detail=traceback.format_exc()))
        finally:
            self._finish(job_id)
            self.state.emit(WorkerState.IDLE, "")

    def _finish(self, job_id: str) -> None:
        with self._lock:
            self._cancels.pop(job_id, None)

    @Slot(object)
    def replace_factory(self, factory: EngineFactory) -> None:
        self.release()
        self._factory = factory

    @Slot()
    def release(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            try:
                engine.unload()
            except Exception:  # noqa: BLE001 - the model is dropped either way
                log.debug("unload failed", exc_info=True)


class GpuWorker(QObject):
    """Runs generation jobs on one long-lived thread. Construct on the UI thread."""

    event = Signal(object)  # engine events, delivered on the UI thread
    stateChanged = Signal(object, str)  # (WorkerState, detail)
    modelLoaded = Signal(object)  # engine.events.ModelLoaded, on the UI thread, before stateChanged(READY)
    _run = Signal(str, object)
    _preload = Signal()
    _prepare = Signal()
    _release = Signal()
    _replace = Signal(object)

    def __init__(self, engine_factory: EngineFactory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cancels: dict[str, CancelToken] = {}
        self._prepare_slot: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._thread = QThread()
        self._thread.setObjectName("shotsketch-gpu")
        self._runner = _Runner(engine_factory, self._cancels, self._lock, self._prepare_slot)
        self._runner.moveToThread(self._thread)
        self._run.connect(self._runner.run)
        self._preload.connect(self._runner.preload)
        self._prepare.connect(self._runner.prepare)
        self._release.connect(self._runner.release)
        self._replace.connect(self._runner.replace_factory)
        self._runner.event.connect(self._relay)  # queued: the receiver lives on the UI thread
        self._runner.state.connect(self._relay_state)
        self._runner.loaded.connect(self._relay_loaded)
        self._thread.finished.connect(self._runner.deleteLater)
        self._thread.start()
        self._closed = False
        self.state = WorkerState.IDLE
        self.model_state = WorkerState.IDLE  # the last of LOADING / READY / FAILED (IDLE: not asked yet)
        self.loaded_model: ModelLoaded | None = None  # what the last load said of the model (None: not loaded)

    @Slot(object)
    def _relay(self, event: JobEvent) -> None:
        self.event.emit(event)

    @Slot(object)
    def _relay_loaded(self, loaded: ModelLoaded) -> None:
        self.loaded_model = loaded
        self.modelLoaded.emit(loaded)

    @Slot(object, str)
    def _relay_state(self, state: WorkerState, detail: str) -> None:
        self.state = state
        if state.about_the_model:
            self.model_state = state
        self.stateChanged.emit(state, detail)

    def forget_model_state(self) -> None:
        """The model setting changed: what was loaded says nothing about the next one."""
        self.model_state = WorkerState.IDLE
        self.loaded_model = None

    def preload(self) -> None:
        """Load the model now (on the worker thread), before the first job asks for it."""
        if not self._closed:
            self._preload.emit()

    def prepare_prompt(self, prompt: str, negative: str) -> None:
        """Encode this prompt pair ahead of the next job, in the background; a newer call before the
        worker gets to it replaces it."""
        if self._closed or not prompt.strip():
            return
        with self._lock:
            self._prepare_slot["next"] = (prompt, negative)
        self._prepare.emit()

    def submit(self, job_id: str, request: GenerationRequest) -> None:
        if self._closed:
            raise RuntimeError("the GPU worker is shut down")
        with self._lock:
            if job_id in self._cancels:
                raise ValueError(f"job {job_id} is already queued")
            self._cancels[job_id] = CancelToken()
        self._run.emit(job_id, request)

    def cancel(self, job_id: str) -> bool:
        """Ask a queued or running job to stop; False when it is not (or no longer) known."""
        with self._lock:
            token = self._cancels.get(job_id)
        if token is None:
            return False
        token.cancel()
        return True

    def pending(self) -> list[str]:
        with self._lock:
            return list(self._cancels)

    def release_model(self) -> None:
        """Drop the loaded model (e.g. after the model setting changed); the next job loads again."""
        if not self._closed:
            self._release.emit()

    def set_engine_factory(self, factory: EngineFactory) -> None:
        """Use another model from the next job on (queued jobs run on the new one)."""
        if not self._closed:
            self._replace.emit(factory)

    def shutdown(self, wait_ms: int = 10_000) -> None:
        """Cancel everything and stop the thread. Waits up to ``wait_ms`` for a running step to end."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            tokens = list(self._cancels.values())
        for token in tokens:
            token.cancel()
        self._thread.quit()
        if not self._thread.wait(wait_ms):
            # A step or a decode that does not check for cancel is still running; the thread must
            # not be destroyed while it runs, so wait it out (this happens only when closing).
            log.warning("the GPU worker did not stop within %d ms; waiting for the current step", wait_ms)
            self._thread.wait()


def demo_threads() -> int:
    """Torch threads for CPU work: leave one core for the window on small machines."""
    import os

    cores = os.cpu_count() or 2
    return max(1, cores - 1)


def generator_factory(model: str, memory_plan: str = "auto", device: str | None = None, gpus: int = 1,
                      distilled: bool | None = None) -> EngineFactory:
    """A factory that builds the Generator on the worker thread (so torch is imported there, too);
    with several GPUs, the GPU workers (they fall back to one GPU in this process when they fail).
    ``distilled``: the model is step-distilled (True), is not (False), or as its folder says (None),
    as Settings has it (app/model_options.py)."""

    def make() -> Engine:
        import torch

        from shotsketch.engine.generator import Generator
        from shotsketch.engine.memory import MemoryPlan
        from shotsketch.engine.sources import ModelSource

        if not torch.cuda.is_available():
            torch.set_num_threads(demo_threads())
        source = ModelSource.parse(model)
        plan = None if memory_plan == "auto" else MemoryPlan(memory_plan)
        if gpus > 1 and distilled is not None:  # the GPU workers take the model as its folder says
            log.warning("the model is set to %sstep-distilled in Settings, which the %d GPU workers cannot be told; "
                        "rendering on one GPU", "" if distilled else "not ", gpus)
        elif gpus > 1:
            from shotsketch.engine.parallel_client import GpuWorkers, gpu_count_problem

            problem = gpu_count_problem(gpus, device)
            if problem is None:
                return GpuWorkers(model, gpus, memory_plan, device=device)
            log.warning("the GPUs setting (%d) cannot be used: %s; rendering on one GPU", gpus, problem)
        return Generator(source, device=device, memory_plan=plan, distilled=distilled)

    return make
