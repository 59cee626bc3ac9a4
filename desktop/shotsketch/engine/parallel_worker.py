"""The GPU workers' entry: torchrun starts one of these per GPU; they load the model once and serve jobs.

    python -m torch.distributed.run --standalone --nproc-per-node N -m shotsketch.engine.parallel_worker \\
        --port P [--model demo] [--memory-plan auto] [--mode ulysses|cfg] [--device cuda|cpu]

(engine/parallel_client.py starts it; the token that proves the app sent it comes in the
environment, SHOTSKETCH_WORKER_TOKEN.) Rank 0 connects to the app at 127.0.0.1:P, says hello,
then "ready" once every rank has loaded (or "failed" with one sentence). Then every rank loops:
rank 0 takes the app's next command (a job, a warm-up, a prompt to encode ahead, shutdown) and
broadcasts it each second or at once, so the ranks always run the same work; while a job runs,
rank 0 sends its events (progress, previews, the result) and the app's cancel reaches the
collective cancel. A rank that stops or hangs makes the others' next collective fail within the
timeout; the job ends with a clear message and the workers exit (torchrun ends them all).
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import socket
import sys
import threading
import time
from typing import Any

from shotsketch.engine.events import CancelToken, JobEvent, JobFailed
from shotsketch.engine.parallel_wire import WireError, event_message, receive, send

log = logging.getLogger("shotsketch.engine.parallel_worker")
TOKEN_ENV = "SHOTSKETCH_WORKER_TOKEN"
HEARTBEAT_S = 5.0
POLL_S = 1.0


class AppLink:
    """Rank 0's connection to the app: a reader thread queues commands (cancels act at once), a
    heartbeat says the process is alive while a long step runs."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rfile = sock.makefile("rb")
        self.wfile = sock.makefile("wb")
        self.lock = threading.Lock()
        self.commands: queue.Queue[dict[str, Any]] = queue.Queue()
        self.running: tuple[str, CancelToken] | None = None
        self.closed = threading.Event()
        threading.Thread(target=self._read, name="app-link-reader", daemon=True).start()
        threading.Thread(target=self._beat, name="app-link-heartbeat", daemon=True).start()

    @classmethod
    def connect(cls, port: int, token: str) -> AppLink:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.settimeout(None)
        link = cls(sock)
        link.send({"kind": "hello", "token": token, "pid": os.getpid()})
        return link

    def send(self, message: dict[str, Any]) -> None:
        if self.closed.is_set():
            return
        try:
            send(self.wfile, message, self.lock)
        except (OSError, WireError):
            log.warning("the app closed the connection", exc_info=True)
            self.closed.set()

    def send_event(self, event: JobEvent) -> None:
        self.send(event_message(event))

    def _read(self) -> None:
        while True:
            try:
                msg = receive(self.rfile)
            except (OSError, WireError):
                self.closed.set()
                self.commands.put({"kind": "shutdown", "why": "the app closed the connection"})
                return
            if msg.get("kind") == "cancel":
                running = self.running
                if running is not None and running[0] == msg.get("job_id"):
                    running[1].cancel()
                continue
            self.commands.put(msg)

    def _beat(self) -> None:
        while not self.closed.wait(HEARTBEAT_S):
            self.send({"kind": "alive"})

    def next_command(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self.commands.get(timeout=timeout)
        except queue.Empty:
            return None


def _load(args: argparse.Namespace, ranks: Any) -> tuple[Any, str | None]:
    from shotsketch.engine.memory import MemoryPlan
    from shotsketch.engine.parallel import RankGenerator
    from shotsketch.engine.sources import ModelError, ModelSource

    try:
        plan = None if args.memory_plan == "auto" else MemoryPlan(args.memory_plan)
        gen = RankGenerator(ModelSource.parse(args.model), ranks, mode=args.mode, memory_plan=plan)
        gen.load()
        return gen, None
    except ModelError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - one sentence to the app, the details in the log
        log.exception("rank %d could not load the model", ranks.rank)
        return None, f"GPU worker {ranks.rank} could not load the model ({exc.__class__.__name__}: {exc})"


def _run_job(gen: Any, ranks: Any, link: AppLink | None, msg: dict[str, Any]) -> bool:
    """One job on every rank. Returns False when the ranks lost each other (the workers must end)."""
    from shotsketch.engine.requests import GenerationRequest, RequestError

    job_id = str(msg.get("job_id") or "job")
    try:
        request = GenerationRequest.from_dict(msg.get("request"))
    except RequestError as exc:  # the same on every rank: all skip it
        if link is not None:
            link.send_event(JobFailed(job_id, str(exc)))
        return True
    token = CancelToken()
    if link is not None:
        link.running = (job_id, token)
    try:
        gen.generate(request, on_event=link.send_event if link is not None else None, cancel=token, job_id=job_id)
    finally:
        if link is not None:
            link.running = None
    return not getattr(gen, "lost", False)


def serve(gen: Any, ranks: Any, link: AppLink | None) -> None:
    """The command loop every rank runs until shutdown."""
    while True:
        msg = link.next_command(POLL_S) if link is not None else None
        msg = ranks.broadcast(msg)  # at least once a second: a rank gone is noticed while idle too
        if msg is None:
            continue
        kind = msg.get("kind")
        if kind == "shutdown":
            log.info("GPU workers shutting down (%s)", msg.get("why", "asked by the app"))
            return
        if kind == "job":
            if not _run_job(gen, ranks, link, msg):
                return
        elif kind == "warm_up":
            try:
                gen.warm_up()
            except Exception:  # noqa: BLE001 - only a head start: the first job compiles instead
                log.warning("warm-up failed", exc_info=True)
            finally:
                if link is not None:
                    link.send({"kind": "warmed"})
        elif kind == "prepare":
            gen.encode_prompts(str(msg.get("prompt", "")), str(msg.get("negative", "")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="shotsketch-gpu-worker")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--memory-plan", default="auto")
    ap.add_argument("--mode", default=None)
    ap.add_argument("--device", default=None, choices=("cuda", "cpu"))
    args = ap.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s rank {rank} %(levelname)s %(name)s: %(message)s")
    token = os.environ.get(TOKEN_ENV, "")
    link = AppLink.connect(args.port, token) if rank == 0 else None
    from shotsketch.engine.parallel import init_ranks

    if args.device == "cpu":
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ.get("WORLD_SIZE", "1"))))
    t0 = time.perf_counter()
    try:
        ranks = init_ranks(args.device)
    except Exception as exc:  # noqa: BLE001
        if link is not None:
            link.send({"kind": "failed", "message": f"the GPU workers could not connect to each other ({exc})"})
        raise
    gen, error = _load(args, ranks)
    errors = [e for e in ranks.gather_objects(error) if e]
    pids = ranks.gather_objects(os.getpid())
    if errors:
        if link is not None:
            link.send({"kind": "failed", "message": errors[0]})
        return 1
    names = ranks.gather_objects(gen.device.name)
    if link is not None:
        link.send({"kind": "ready", "gpus": ranks.world, "pids": pids, "devices": names, "mode": gen.mode,
                   "attention": gen.attention, "compiled": gen.compiled, "needs_warm_up": gen.needs_warm_up,
                   "load_s": round(time.perf_counter() - t0, 1)})
    serve(gen, ranks, link)
    import torch.distributed as dist

    try:
        dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - ending anyway
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
