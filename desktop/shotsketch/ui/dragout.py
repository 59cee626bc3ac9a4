"""Dragging takes out of the window: a file manager or a video editor receives the clip files.

The mime data carries the files as a URL list (``text/uri-list``, what file managers, Resolve,
Premiere, Kdenlive and Shotcut accept) and their paths as plain text. A take whose file is gone
(deleted or moved) offers nothing; :func:`take_mime_data` says which files are missing so the
caller can tell the user.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDrag, QPixmap
from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)

URI_LIST = "text/uri-list"


@dataclass(frozen=True)
class DragOffer:
    """What a drag of some takes can offer: mime data for the files that exist, and the missing ones."""

    mime: QMimeData | None
    missing: tuple[Path, ...]

    @property
    def message(self) -> str:
        """A sentence for the user when some files are missing; empty otherwise."""
        if not self.missing:
            return ""
        if len(self.missing) == 1:
            return (f"The take's file {self.missing[0]} is missing (deleted or moved), so there is nothing "
                    "to drag; generate it again from its recipe.")
        names = ", ".join(p.name for p in self.missing)
        return f"{len(self.missing)} takes' files are missing (deleted or moved): {names}."


def take_mime_data(paths: Iterable[str | os.PathLike[str]]) -> DragOffer:
    """Mime data offering the existing ``paths`` as local-file URLs; ``mime`` is None when none exist."""
    present: list[Path] = []
    missing: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        path = path if path.is_absolute() else path.resolve()
        (present if path.exists() else missing).append(path)
    if missing:
        log.info("drag: missing take files %s", ", ".join(map(str, missing)))
    if not present:
        return DragOffer(None, tuple(missing))
    mime = QMimeData()
    urls = [QUrl.fromLocalFile(str(p)) for p in present]
    mime.setUrls(urls)  # writes text/uri-list
    if not mime.hasFormat(URI_LIST):  # setUrls always does; keep the promise explicit
        mime.setData(URI_LIST, "".join(u.toString() + "\r\n" for u in urls).encode())
    mime.setText("\n".join(str(p) for p in present))
    return DragOffer(mime, tuple(missing))


def start_take_drag(source: QWidget, paths: Iterable[str | os.PathLike[str]],
                    pixmap: QPixmap | None = None) -> DragOffer:
    """Start a copy drag of the takes' files from ``source``; returns the offer (no drag when ``mime`` is None)."""
    offer = take_mime_data(paths)
    run_drag(source, offer, pixmap)
    return offer


def run_drag(source: QWidget, offer: DragOffer, pixmap: QPixmap | None = None) -> None:
    """Run a copy drag of ``offer`` from ``source`` (nothing when it offers no file)."""
    if offer.mime is None:
        return
    drag = QDrag(source)
    drag.setMimeData(offer.mime)
    if pixmap is not None and not pixmap.isNull():
        drag.setPixmap(pixmap.scaled(96, 96, Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation))
    drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)
