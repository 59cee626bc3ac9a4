"""Work-arounds for bugs in the installed Qt binding, applied once on import.

PySide6 6.12.0: every ``SignalInstance.emit(...)`` from Python that reaches a connected slot drops
one reference to ``True`` that it never took. On CPython 3.11 ``True`` starts with a few hundred
references, so after a few hundred emits the interpreter aborts with "Fatal Python error:
bool_dealloc: deallocating True or False" (usually at exit, or mid-drag on the canvas). The probe
below measures the leak with a private signal; if it is there, ``emit`` is wrapped to give the
reference back. An extra reference to ``True`` is harmless, so the wrapper errs on that side.
Other versions, and a fixed 6.12.x, are detected as fine and left alone.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal, SignalInstance

_py_incref = ctypes.pythonapi.Py_IncRef
_py_incref.argtypes = [ctypes.py_object]
_py_incref.restype = None


class _Probe(QObject):
    fired = Signal(object)


def emit_leaks_true() -> bool:
    """Whether a Python-side emit to a connected slot loses a reference to ``True``."""
    probe = _Probe()
    probe.fired.connect(lambda _value: None)
    probe.fired.emit(None)  # the first emit of a signal may take a different path
    before = sys.getrefcount(True)
    for _ in range(4):
        probe.fired.emit(None)
    leaked = before - sys.getrefcount(True)
    _give_back(max(0, leaked))
    return leaked >= 3


def _give_back(n: int) -> None:
    for _ in range(n):
        _py_incref(True)


def _install() -> bool:
    if getattr(SignalInstance.emit, "_shotsketch_fixed", False):
        return True
    if not emit_leaks_true():
        return False
    original = SignalInstance.emit

    def emit(self, *args):  # noqa: ANN001, ANN002, ANN202 - same as Qt's
        result = original(self, *args)
        _py_incref(True)
        return result

    emit._shotsketch_fixed = True  # type: ignore[attr-defined]
    SignalInstance.emit = emit  # type: ignore[method-assign]
    return True


EMIT_FIX_APPLIED = _install()
