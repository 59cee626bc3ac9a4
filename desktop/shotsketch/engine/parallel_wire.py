"""The hand-over between the app and the GPU workers' rank 0: plain JSON messages over a local socket.

One message is one line of JSON (an object with a "kind"). Arrays (frames, previews, latents,
heatmaps) follow their message as raw bytes: the message lists them under "arrays" as
{"dtype", "shape"} and refers to each as {"$array": index}. Only plain numeric dtypes are accepted
and every size is checked before reading, so nothing received is ever unpickled or trusted blindly.

Job events cross as {"kind": "event", "event": <class name>, "fields": {...}}; `event_message` and
`event_from_message` convert the engine's event dataclasses (engine/events.py) both ways.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any, BinaryIO

import numpy as np

from shotsketch.engine.events import JobCancelled, JobEvent, JobFailed, JobFinished, JobStarted, JobStep
from shotsketch.engine.requests import GenerationRequest

MAX_LINE = 8 * 1024 * 1024  # a message's JSON (recipes and guidance info are small)
MAX_ARRAY_BYTES = 64 * 1024**3
DTYPES = ("uint8", "int8", "int32", "int64", "float16", "float32", "float64", "bool")
WORKERS_LOST = "a GPU worker stopped or stopped answering during the job"  # a job's end when the ranks lost each other
EVENTS = {cls.__name__: cls for cls in (JobStarted, JobStep, JobFinished, JobFailed, JobCancelled)}


class WireError(Exception):
    """The other side sent something that is not a valid message, or closed the connection."""


def pack(value: Any, arrays: list[np.ndarray]) -> Any:
    """`value` as JSON-able data, its arrays (NumPy, or tensors: moved to the host) appended to `arrays`."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch here
        t = value.detach().cpu()
        value = (t.float() if str(t.dtype) == "torch.bfloat16" else t).numpy()
    if isinstance(value, np.ndarray):
        if value.dtype.name not in DTYPES:
            raise WireError(f"arrays of {value.dtype} cannot be sent")
        arrays.append(np.ascontiguousarray(value))
        return {"$array": len(arrays) - 1}
    if isinstance(value, GenerationRequest):
        return {"$request": value.to_dict()}
    if isinstance(value, dict):
        return {str(k): pack(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [pack(v, arrays) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value


def unpack(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$array"}:
            index = value["$array"]
            if not isinstance(index, int) or not 0 <= index < len(arrays):
                raise WireError("a message refers to an array it did not send")
            return arrays[index]
        if set(value) == {"$request"}:
            return GenerationRequest.from_dict(value["$request"])
        return {k: unpack(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [unpack(v, arrays) for v in value]
    return value


def send(stream: BinaryIO, message: dict[str, Any], lock: threading.Lock | None = None) -> None:
    """Write one message (its arrays packed after it) and flush."""
    arrays: list[np.ndarray] = []
    body = pack(message, arrays)
    body["arrays"] = [{"dtype": a.dtype.name, "shape": list(a.shape)} for a in arrays]
    line = json.dumps(body, allow_nan=False, separators=(",", ":")).encode() + b"\n"
    if len(line) > MAX_LINE:
        raise WireError("a message is too large")
    with lock or _NO_LOCK:
        stream.write(line)
        for a in arrays:
            stream.write(memoryview(a).cast("B") if a.size else b"")
        stream.flush()


def receive(stream: BinaryIO) -> dict[str, Any]:
    """Read one message and its arrays; WireError when the connection closed or the data is malformed."""
    line = stream.readline(MAX_LINE + 1)
    if not line:
        raise WireError("the connection closed")
    if len(line) > MAX_LINE or not line.endswith(b"\n"):
        raise WireError("a message is too long or cut off")
    try:
        body = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"a message is not JSON ({exc})") from exc
    if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
        raise WireError("a message has no kind")
    specs = body.pop("arrays", [])
    if not isinstance(specs, list):
        raise WireError("a message lists its arrays wrongly")
    arrays = [_read_array(stream, spec) for spec in specs]
    return unpack(body, arrays)


def _read_array(stream: BinaryIO, spec: Any) -> np.ndarray:
    if not isinstance(spec, dict) or spec.get("dtype") not in DTYPES or not isinstance(spec.get("shape"), list):
        raise WireError("an array is described wrongly")
    shape = spec["shape"]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise WireError("an array has a wrong shape")
    dtype = np.dtype(spec["dtype"])
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    nbytes = count * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise WireError("an array is too large")
    data = bytearray(nbytes)
    view = memoryview(data)
    got = 0
    while got < nbytes:
        n = stream.readinto(view[got:])
        if not n:
            raise WireError("the connection closed in the middle of an array")
        got += n
    return np.frombuffer(data, dtype=dtype).reshape(shape)


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


def event_message(event: JobEvent) -> dict[str, Any]:
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    return {"kind": "event", "event": type(event).__name__, "fields": fields}


def event_from_message(message: dict[str, Any], request: GenerationRequest | None = None) -> JobEvent:
    """The event a worker sent; JobStarted carries the app's own request object back."""
    cls = EVENTS.get(message.get("event"))  # type: ignore[arg-type]
    fields = message.get("fields")
    if cls is None or not isinstance(fields, dict):
        raise WireError("a worker sent an unknown event")
    known = {f.name for f in dataclasses.fields(cls)}
    fields = {k: v for k, v in fields.items() if k in known}
    if cls is JobStarted and request is not None:
        fields["request"] = request
    if cls is JobFinished and isinstance(fields.get("latents"), np.ndarray):
        try:
            import torch

            fields["latents"] = torch.from_numpy(np.array(fields["latents"]))
        except ImportError:
            pass
    try:
        return cls(**fields)
    except TypeError as exc:
        raise WireError(f"a worker sent an incomplete {cls.__name__}") from exc
