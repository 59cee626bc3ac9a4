"""The app's side of multi-GPU rendering: `GpuWorkers` starts the persistent GPU workers (torchrun,
one process per GPU: engine/parallel_worker.py) and serves the app's jobs through them.

It is an engine like `Generator` (load, generate, warm_up, encode_prompts, unload), so the GPU
worker thread and the CLI use it unchanged. The workers load the model once; each job goes to
rank 0 over a local socket as plain JSON, and its events come back the same way. Nothing waits
forever: the workers' collectives have timeouts, a silent worker is given up after
`stall_timeout_s`, and a worker that exits or fails ends the running job with one sentence. From
then on (and when the workers cannot start at all) jobs run on one GPU in this process
(`fallback`), and `notice` says why.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shotsketch.engine.events import CancelToken, FinalEvent, JobCancelled, JobEvent, JobFailed, JobFinished
from shotsketch.engine.parallel_wire import WORKERS_LOST, WireError, event_from_message, receive, send
from shotsketch.engine.requests import GenerationRequest

log = logging.getLogger(__name__)
TOKEN_ENV = "SHOTSKETCH_WORKER_TOKEN"
FINAL = (JobFinished, JobFailed, JobCancelled)


class WorkersUnavailable(Exception):
    """The GPU workers could not start, or stopped."""


def default_log_path() -> Path:
    from shotsketch.logs import log_file

    return log_file().with_name("gpu-workers.log")


def worker_command(gpus: int, port: int, model: str, memory_plan: str, mode: str | None,
                   device: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
           "--max-restarts=0", "-m", "shotsketch.engine.parallel_worker", "--port", str(port), "--model", model,
           "--memory-plan", memory_plan]
    if mode:
        cmd += ["--mode", mode]
    if device:
        cmd += ["--device", device]
    return cmd


class GpuWorkers:
    """An engine that renders on `gpus` GPUs of this machine through persistent workers."""

    def __init__(self, model: str, gpus: int, memory_plan: str = "auto", *, mode: str | None = None,
                 device: str | None = None, fallback: Callable[[], Any] | None = None,
                 start_timeout_s: float = 900.0, stall_timeout_s: float | None = None,
                 log_path: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.model, self.gpus, self.memory_plan, self.mode, self.device = model, gpus, memory_plan, mode, device
        self._fallback_factory = fallback
        self.start_timeout_s = start_timeout_s
        from shotsketch.engine.parallel import collective_timeout_s

        self.stall_timeout_s = stall_timeout_s or collective_timeout_s() + 60.0
        self.log_path = log_path
        self._env = env or {}
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._wfile: Any = None
        self._lock = threading.Lock()
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._last_heard = 0.0
        self.info: dict[str, Any] = {}  # the workers' "ready" message: gpus, pids, devices, mode
        self.fallback: Any = None  # the one-GPU engine, once the workers failed
        self.notice: str | None = None  # why jobs run on one GPU

    # ------------------------------------------------------------------ starting and stopping
    @property
    def loaded(self) -> bool:
        return self._proc is not None or self.fallback is not None

    def load(self) -> None:
        if self.fallback is not None:
            self.fallback.load()
            return
        if self._proc is not None:
            return
        try:
            self._start()
        except WorkersUnavailable as exc:
            self._fall_back(f"Rendering on {self.gpus} GPUs could not start: {exc}")
            self.fallback.load()

    def _start(self) -> None:
        token = secrets.token_hex(16)
        server = socket.create_server(("127.0.0.1", 0))
        server.settimeout(1.0)
        port = server.getsockname()[1]
        env = dict(os.environ, **self._env, PYTHONUNBUFFERED="1")
        env[TOKEN_ENV] = token
        path = self.log_path or default_log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(path, "ab")  # noqa: SIM115 - the workers write to it for as long as they run
        cmd = worker_command(self.gpus, port, self.model, self.memory_plan, self.mode, self.device)
        log.info("starting %d GPU workers: %s (log %s)", self.gpus, " ".join(cmd), path)
        try:
            self._proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log_file,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            server.close()
            raise WorkersUnavailable(f"the GPU workers could not be started ({exc})") from exc
        finally:
            log_file.close()
        deadline = time.monotonic() + self.start_timeout_s
        try:
            self._sock = self._accept(server, token, deadline)
        finally:
            server.close()
        self._wfile = self._sock.makefile("wb")
        threading.Thread(target=self._read, args=(self._sock.makefile("rb"),), name="gpu-workers-reader",
                         daemon=True).start()
        while True:
            msg = self._next(deadline)
            if msg["kind"] == "ready":
                self.info = msg
                log.info("%d GPU workers ready (%s)", self.gpus, msg)
                return
            if msg["kind"] == "failed":
                self._stop()
                raise WorkersUnavailable(str(msg.get("message", "the GPU workers failed to load the model")))

    def _accept(self, server: socket.socket, token: str, deadline: float) -> socket.socket:
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise WorkersUnavailable(self._exit_text())
            try:
                sock, _ = server.accept()
            except (socket.timeout, TimeoutError):
                continue
            sock.settimeout(30)
            try:
                hello = receive(sock.makefile("rb"))
            except (OSError, WireError):
                sock.close()
                continue
            if hello.get("kind") == "hello" and secrets.compare_digest(str(hello.get("token", "")), token):
                sock.settimeout(None)
                return sock
            sock.close()  # not our worker
        self._stop()
        raise WorkersUnavailable("the GPU workers did not start in time")

    def _read(self, rfile: Any) -> None:
        while True:
            try:
                msg = receive(rfile)
            except (OSError, WireError):
                self._inbox.put(None)
                return
            self._last_heard = time.monotonic()
            if msg.get("kind") != "alive":
                self._inbox.put(msg)

    def _next(self, deadline: float | None = None) -> dict[str, Any]:
        """The workers' next message; WorkersUnavailable when they stopped or fell silent."""
        self._last_heard = max(self._last_heard, time.monotonic())
        while True:
            try:
                msg = self._inbox.get(timeout=0.2)
            except queue.Empty:
                now = time.monotonic()
                if self._proc is not None and self._proc.poll() is not None:
                    raise WorkersUnavailable(self._exit_text()) from None
                if deadline is not None and now > deadline:
                    raise WorkersUnavailable("the GPU workers did not answer in time") from None
                if deadline is None and now - self._last_heard > self.stall_timeout_s:
                    raise WorkersUnavailable(f"the GPU workers stopped answering for {self.stall_timeout_s:.0f} s") from None
                continue
            if msg is None:
                raise WorkersUnavailable(self._exit_text(wait=True))
            return msg

    def _exit_text(self, wait: bool = False) -> str:
        proc = self._proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=5.0) if wait else proc.poll()
            except subprocess.TimeoutExpired:
                code = None
        if code is None:
            return "a GPU worker stopped answering"
        return f"a GPU worker stopped (exit code {code}; details in {self.log_path or default_log_path()})"

    def _send(self, message: dict[str, Any]) -> None:
        try:
            send(self._wfile, message, self._lock)
        except (OSError, WireError, AttributeError) as exc:
            raise WorkersUnavailable("the connection to the GPU workers closed") from exc

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.wait(timeout=10.0)  # the workers end on their own once the socket closed
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()

    def _fall_back(self, reason: str) -> None:
        log.warning("%s", reason)
        self._stop()
        self.notice = reason
        if self.fallback is None:
            factory = self._fallback_factory or self._one_gpu
            self.fallback = factory()

    def _one_gpu(self) -> Any:
        from shotsketch.engine.generator import Generator
        from shotsketch.engine.memory import MemoryPlan
        from shotsketch.engine.sources import ModelSource

        plan = None if self.memory_plan == "auto" else MemoryPlan(self.memory_plan)
        return Generator(ModelSource.parse(self.model), device=self.device, memory_plan=plan)

    def unload(self) -> None:
        if self._proc is not None:
            try:
                self._send({"kind": "shutdown"})
            except WorkersUnavailable:
                pass
        self._stop()
        if self.fallback is not None and hasattr(self.fallback, "unload"):
            self.fallback.unload()

    # ------------------------------------------------------------------ the engine
    @property
    def needs_warm_up(self) -> bool:
        if self.fallback is not None:
            return bool(getattr(self.fallback, "needs_warm_up", False))
        return bool(self.info.get("needs_warm_up"))

    def warm_up(self) -> bool:
        self.load()
        if self.fallback is not None:
            return self.fallback.warm_up()
        try:
            self._send({"kind": "warm_up"})
            while self._next()["kind"] != "warmed":
                pass
        except WorkersUnavailable as exc:
            self._fall_back(f"Rendering on {self.gpus} GPUs stopped: {exc}. Shotsketch uses one GPU from now on.")
            return False
        self.info["needs_warm_up"] = False
        return True

    def encode_prompts(self, prompt: str, negative: str) -> None:
        """Encode a prompt ahead on the workers (nothing comes back)."""
        if self.fallback is not None:
            self.fallback.encode_prompts(prompt, negative)
        elif self._proc is not None:
            try:
                self._send({"kind": "prepare", "prompt": prompt, "negative": negative})
            except WorkersUnavailable:
                pass  # the next job notices and falls back

    def generate(self, request: GenerationRequest, on_event: Callable[[JobEvent], None] | None = None,
                 cancel: CancelToken | None = None, job_id: str | None = None) -> FinalEvent:
        import uuid

        job_id = job_id or uuid.uuid4().hex[:12]
        emit = on_event or (lambda _e: None)
        cancel = cancel or CancelToken()
        self.load()
        if self.fallback is not None:
            return self.fallback.generate(request, on_event=on_event, cancel=cancel, job_id=job_id)
        if cancel.cancelled:
            final: FinalEvent = JobCancelled(job_id, 0)
            emit(final)
            return final
        try:
            return self._run(request, emit, cancel, job_id)
        except WorkersUnavailable as exc:
            reason = (f"Rendering on {self.gpus} GPUs stopped: {exc}. This shot was not finished; Shotsketch uses "
                      "one GPU from now on, generate it again to render it there.")
            self._fall_back(reason)
            final = JobFailed(job_id, reason, detail=str(exc))
            emit(final)
            return final

    def _run(self, request: GenerationRequest, emit: Callable[[JobEvent], None], cancel: CancelToken,
             job_id: str) -> FinalEvent:
        while not self._inbox.empty():  # nothing left over from an earlier job
            leftover = self._inbox.get_nowait()
            if leftover is None:
                raise WorkersUnavailable(self._exit_text(wait=True))
        self._send({"kind": "job", "job_id": job_id, "request": request.to_dict()})
        asked_cancel = False
        while True:
            if cancel.cancelled and not asked_cancel:
                self._send({"kind": "cancel", "job_id": job_id})
                asked_cancel = True
            try:
                msg = self._inbox.get(timeout=0.2)
            except queue.Empty:
                if self._proc is None or self._proc.poll() is not None:
                    raise WorkersUnavailable(self._exit_text()) from None
                if time.monotonic() - self._last_heard > self.stall_timeout_s:
                    raise WorkersUnavailable(f"the GPU workers stopped answering for {self.stall_timeout_s:.0f} s") from None
                continue
            if msg is None:
                raise WorkersUnavailable(self._exit_text(wait=True))
            if msg.get("kind") != "event":
                continue
            try:
                event = event_from_message(msg, request)
            except WireError as exc:
                raise WorkersUnavailable(f"the GPU workers sent something unreadable ({exc})") from exc
            if getattr(event, "job_id", None) != job_id:
                continue
            if isinstance(event, JobFailed) and event.message == WORKERS_LOST:
                raise WorkersUnavailable(event.message)  # the ranks lost each other: these workers are done
            emit(event)
            if isinstance(event, FINAL):
                return event


def gpu_count_problem(gpus: int, device: str | None = None) -> str | None:
    """Why one clip cannot render on `gpus` GPUs here (one sentence), or None. The CPU (2 processes
    over gloo) is accepted only when asked for with device "cpu" (tests, checks)."""
    from shotsketch.engine.parallel_gpus import usable_counts

    if gpus < 1:
        return "the GPU count must be 1 or more"
    if gpus == 1 or device == "cpu":
        return None
    if device == "mps":
        return "several GPUs need NVIDIA GPUs (CUDA)"
    import torch

    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if found < gpus:
        return f"this machine has {found} CUDA GPU{'s' if found != 1 else ''} (shotsketch doctor lists them)"
    if gpus not in usable_counts(gpus):
        return f"the model's attention heads cannot be split over {gpus} GPUs; use {', '.join(map(str, usable_counts(found)[1:]))}"
    return None


def engine_for(model: str, gpus: int = 1, memory_plan: str = "auto", device: str | None = None,
               mode: str | None = None) -> Any:
    """The engine for a GPU count: a Generator in this process for one GPU (or none), GpuWorkers for more."""
    if gpus > 1:
        return GpuWorkers(model, gpus, memory_plan, mode=mode, device=device)
    from shotsketch.engine.generator import Generator
    from shotsketch.engine.memory import MemoryPlan
    from shotsketch.engine.sources import ModelSource

    plan = None if memory_plan == "auto" else MemoryPlan(memory_plan)
    return Generator(ModelSource.parse(model), device=device, memory_plan=plan)
