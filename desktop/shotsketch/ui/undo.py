"""Undo commands for sketch edits and the shot's LoRA list.

Every edit of the sketch is one :class:`LayoutEdit`: the layout before and after. Layouts are
immutable values, so undo and redo just put one back; nothing is recomputed and an undo restores
exactly the previous :class:`~shotsketch.core.layout.Layout`. A drag is pushed once, on release;
nudges with the arrow keys merge into one command while they hit the same subject at the same time.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtGui import QUndoCommand

from shotsketch.core.layout import Layout

class ValueEdit(QUndoCommand):
    """Replace an immutable value ``before`` with ``after`` through ``apply`` (and back on undo).
    Edits with the same ``merge_key`` made in a row merge into one command; each subclass has its
    own merge id, so only edits of one kind merge."""

    MERGE_ID = -1

    def __init__(self, apply: Callable, before: Any, after: Any, text: str, merge_key: Hashable | None = None) -> None:
        super().__init__(text)
        self._apply = apply
        self.before = before
        self.after = after
        self.merge_key = merge_key

    def id(self) -> int:  # noqa: A003 - Qt's name
        return self.MERGE_ID if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        if type(other) is not type(self) or other.merge_key is None or other.merge_key != self.merge_key:
            return False
        self.after = other.after
        return True

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)


class LayoutEdit(ValueEdit):
    """Replace the sketch's layout ``before`` with ``after`` (and back on undo)."""

    MERGE_ID = 0x5C37
    before: Layout
    after: Layout


class LorasEdit(ValueEdit):
    """Replace the open shot's LoRAs ``before`` with ``after`` (and back on undo). The lists are
    immutable tuples, so undo puts the old one back exactly. Strength changes of one LoRA made in a
    row (spinning its box) merge into one command."""

    MERGE_ID = 0x5C38
