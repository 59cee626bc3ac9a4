"""The library panel: projects, shots and each shot's variant history; takes as thumbnails.

- The tree shows Project -> Shot -> Variant, a variant nested under the variant it was made from;
  "Branch from here" on a variant emits :attr:`LibraryPanel.branchRequested`.
- Takes of the selected project / shot / variant are a QListView in icon mode; thumbnails are
  read (or made from the clip's middle frame) on worker threads and painted when they arrive.
  Each take shows its rating (click a star; click the lit last star again for none) and a heart
  for favourite; both are stored in the library at once.
- Search filters the tree to the variants whose prompts match (the library's full-text index).
- Delete moves takes to the library's trash; the panel's own :attr:`undo_stack` (and the Undo
  button of the notice that appears) brings them back.
- Takes drag out as files (see :mod:`shotsketch.ui.dragout`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import (QAbstractListModel, QEvent, QItemSelectionModel, QModelIndex, QObject, QPersistentModelIndex,
                            QPoint, QRect, QSize, Qt, QTimer, Signal)
from PySide6.QtGui import (QAction, QColor, QFont, QFontMetrics, QImage, QKeySequence, QMouseEvent, QPainter,
                           QPalette, QPixmap, QUndoCommand, QUndoStack)
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QFrame, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QListView, QMenu, QPushButton, QSizePolicy, QSplitter, QStyle, QStyledItemDelegate,
                               QStyleOptionViewItem, QToolButton, QTreeView, QVBoxLayout, QWidget)

from shotsketch.app.shot import OpenShot
from shotsketch.core.library import Library, LibraryError, Take
from shotsketch.media.heatmaps import ADHERENCE_EXPLAINED, adherence_summary
from shotsketch.ui.dragout import URI_LIST, DragOffer, run_drag, take_mime_data
from shotsketch.ui.exports_view import ExportsView
from shotsketch.ui.library_tree import LibraryTreeModel, NodeKey, NodeKind, short_prompt
from shotsketch.ui.shot_view import ShotView

log = logging.getLogger(__name__)

THUMB_SIZE = QSize(160, 90)
MAX_RATING = 5
SEARCH_DELAY_MS = 200
NOTICE_MS = 12000


TAKE_ROLE = Qt.ItemDataRole.UserRole + 10
MISSING_ROLE = Qt.ItemDataRole.UserRole + 11


def take_seed(take: Take) -> int | None:
    request = take.recipe.get("request") if isinstance(take.recipe, dict) else None
    seed = request.get("seed") if isinstance(request, dict) else take.recipe.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def take_caption(take: Take) -> str:
    seed = take_seed(take)
    return f"v{take.variant_id} · take {take.id}" + (f" · seed {seed}" if seed is not None else "")


# ----------------------------------------------------------------------------- thumbnails
def _thumbnail_image(take: Take) -> QImage | None:
    """The take's still (its thumbnail file, else the clip's middle frame), at most THUMB_SIZE. Worker thread."""
    if not take.file.exists():
        return None
    image = QImage()
    if take.thumbnail is not None and take.thumbnail.exists():
        image = QImage(str(take.thumbnail))
    if image.isNull():
        from shotsketch.media.thumbnail import middle_frame

        frame = middle_frame(take.file)
        h, w, _ = frame.shape
        image = QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return image.scaled(THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


class ThumbnailLoader(QObject):
    """Loads take thumbnails on two worker threads; :attr:`ready` delivers them on the UI thread."""

    ready = Signal(int, object)  # take id, QImage or None (file missing / unreadable)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shotsketch-thumb")
        self._asked: set[int] = set()

    def request(self, take: Take) -> None:
        if take.id in self._asked:
            return
        self._asked.add(take.id)
        self._pool.submit(self._run, take)

    def forget(self, take_id: int | None = None) -> None:
        if take_id is None:
            self._asked.clear()
        else:
            self._asked.discard(take_id)

    def _run(self, take: Take) -> None:
        try:
            image = _thumbnail_image(take)
        except Exception as exc:  # noqa: BLE001 - a bad clip gets a placeholder; the log has why
            log.warning("no thumbnail for take %s (%s): %s", take.id, take.file, exc)
            image = None
        try:
            self.ready.emit(take.id, image)
        except RuntimeError:  # the panel was closed meanwhile
            pass

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)


# ----------------------------------------------------------------------------- the take list
class TakeListModel(QAbstractListModel):
    def __init__(self, loader: ThumbnailLoader, parent: QObject | None = None):
        super().__init__(parent)
        self._takes: list[Take] = []
        self._pixmaps: dict[int, QPixmap | None] = {}
        self._loader = loader
        loader.ready.connect(self._on_thumbnail)

    def set_takes(self, takes: Sequence[Take]) -> None:
        self.beginResetModel()
        self._takes = list(takes)
        self.endResetModel()

    def takes(self) -> list[Take]:
        return list(self._takes)

    def take_at(self, row: int) -> Take:
        return self._takes[row]

    def row_of(self, take_id: int) -> int:
        return next((i for i, t in enumerate(self._takes) if t.id == take_id), -1)

    def replace_take(self, take: Take) -> None:
        row = self.row_of(take.id)
        if row >= 0:
            self._takes[row] = take
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._takes)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._takes):
            return None
        take = self._takes[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return take_caption(take)
        if role == Qt.ItemDataRole.DecorationRole:
            if take.id not in self._pixmaps:
                self._loader.request(take)  # lazily: only takes that get painted are loaded
                return None
            return self._pixmaps[take.id]
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [take_caption(take), f"Rating {take.rating}/5" + (" · favourite" if take.favourite else "")]
            share = adherence_summary(take.recipe)
            if share:
                lines.append(f"{share}: {ADHERENCE_EXPLAINED[0].lower()}{ADHERENCE_EXPLAINED[1:]}")
            prompt = (take.recipe.get("request") or {}).get("prompt") if isinstance(take.recipe, dict) else None
            if isinstance(prompt, str) and prompt:
                lines.append(short_prompt(prompt, 200))
            lines.append(str(take.file) + ("  (missing: deleted or moved)" if not take.file.exists() else ""))
            return "\n".join(lines)
        if role == TAKE_ROLE:
            return take
        if role == MISSING_ROLE:
            return not take.file.exists()
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:  # noqa: N802
        return [URI_LIST, "text/plain"]

    def supportedDragActions(self) -> Qt.DropAction:  # noqa: N802
        return Qt.DropAction.CopyAction

    def mimeData(self, indexes: Iterable[QModelIndex]):  # noqa: ANN201, N802
        offer = self.drag_offer(indexes)
        return offer.mime

    def drag_offer(self, indexes: Iterable[QModelIndex]) -> DragOffer:
        rows = sorted({i.row() for i in indexes if i.isValid()})
        return take_mime_data(self._takes[r].file for r in rows)

    def _on_thumbnail(self, take_id: int, image: QImage | None) -> None:
        self._pixmaps[take_id] = QPixmap.fromImage(image) if image is not None and not image.isNull() else None
        row = self.row_of(take_id)
        if row >= 0:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def thumbnail_loaded(self, take_id: int) -> bool:
        return take_id in self._pixmaps

    def forget_thumbnail(self, take_id: int) -> None:
        self._pixmaps.pop(take_id, None)
        self._loader.forget(take_id)


@dataclass(frozen=True)
class TakeCardGeometry:
    """Where things are inside one take's card (all in view coordinates)."""

    thumb: QRect
    caption: QRect
    share: QRect  # the attention share inside the boxes, on a line of its own
    stars: tuple[QRect, ...]
    heart: QRect


class TakeDelegate(QStyledItemDelegate):
    """Paints a take as a card (thumbnail, caption, stars, heart) and turns clicks into rating/favourite."""

    ratingClicked = Signal(int, int)     # take id, new rating
    favouriteClicked = Signal(int, bool)  # take id, new state

    PAD = 6
    STAR = 16

    def card_size(self, font: QFont) -> QSize:
        line = QFontMetrics(font).height()
        return QSize(THUMB_SIZE.width() + 2 * self.PAD, THUMB_SIZE.height() + 3 * line + 3 * self.PAD + 4)

    def geometry(self, rect: QRect, font: QFont) -> TakeCardGeometry:
        line = QFontMetrics(font).height()
        x, y = rect.x() + self.PAD, rect.y() + self.PAD
        w = rect.width() - 2 * self.PAD
        thumb = QRect(x + (w - THUMB_SIZE.width()) // 2, y, THUMB_SIZE.width(), THUMB_SIZE.height())
        caption = QRect(x, thumb.bottom() + 1 + self.PAD // 2, w, line)
        share = QRect(x, caption.bottom() + 1, w, line)
        row_y = share.bottom() + 1 + self.PAD // 2
        size = max(self.STAR, line)
        stars = tuple(QRect(x + i * size, row_y, size, size) for i in range(MAX_RATING))
        heart = QRect(x + w - size, row_y, size, size)
        return TakeCardGeometry(thumb, caption, share, stars, heart)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        return self.card_size(option.font)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        take: Take | None = index.data(TAKE_ROLE)
        if take is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        card = option.rect.adjusted(2, 2, -2, -2)
        if selected:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(card, 6, 6)
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.AlternateBase))
            painter.drawRoundedRect(card, 6, 6)
        g = self.geometry(option.rect, option.font)
        missing = bool(index.data(MISSING_ROLE))
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            scaled = pixmap.size().scaled(g.thumb.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(g.thumb.center())
            painter.drawPixmap(target, pixmap)
        else:
            painter.fillRect(g.thumb, QColor(24, 24, 26))
        painter.setPen(QColor(235, 120, 110) if missing else QColor(150, 150, 150))
        if missing:
            painter.drawText(g.thumb, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, "File missing\n(deleted or moved)")
        elif not isinstance(pixmap, QPixmap):
            painter.drawText(g.thumb, Qt.AlignmentFlag.AlignCenter, "…")
        text_colour = palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        painter.setPen(text_colour)
        fm = QFontMetrics(option.font)
        painter.drawText(g.caption, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(index.data(Qt.ItemDataRole.DisplayRole) or "", Qt.TextElideMode.ElideRight,
                                       g.caption.width()))
        share = adherence_summary(take.recipe)
        if share:
            dim_text = QColor(text_colour)
            dim_text.setAlpha(190)
            painter.setPen(dim_text)
            painter.drawText(g.share, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(share, Qt.TextElideMode.ElideRight, g.share.width()))
        star_font = QFont(option.font)
        star_font.setPixelSize(max(12, g.stars[0].height() - 2))
        painter.setFont(star_font)
        dim = QColor(text_colour)
        dim.setAlpha(110)
        for i, r in enumerate(g.stars):
            lit = i < take.rating
            painter.setPen(QColor(245, 190, 40) if lit else dim)
            painter.drawText(r, Qt.AlignmentFlag.AlignCenter, "★" if lit else "☆")
        painter.setPen(QColor(230, 70, 90) if take.favourite else dim)
        painter.drawText(g.heart, Qt.AlignmentFlag.AlignCenter, "♥" if take.favourite else "♡")
        painter.restore()

    def editorEvent(self, event: QEvent, model, option: QStyleOptionViewItem,  # noqa: ANN001, N802
                    index: QModelIndex | QPersistentModelIndex) -> bool:
        if event.type() != QEvent.Type.MouseButtonRelease or not isinstance(event, QMouseEvent):
            return super().editorEvent(event, model, option, index)
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        take: Take | None = index.data(TAKE_ROLE)
        if take is None:
            return False
        pos = event.position().toPoint()
        g = self.geometry(option.rect, option.font)
        for i, r in enumerate(g.stars):
            if r.contains(pos):
                rating = i + 1
                self.ratingClicked.emit(take.id, 0 if rating == take.rating else rating)
                return True
        if g.heart.contains(pos):
            self.favouriteClicked.emit(take.id, not take.favourite)
            return True
        return False


class TakeListView(QListView):
    """Icon-mode take list whose drags carry the takes' files; a drag of missing files says so."""

    dragRefused = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setWrapping(True)
        self.setSpacing(4)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setMouseTracking(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def startDrag(self, supportedActions: Qt.DropAction) -> None:  # noqa: N802, N803
        model = self.model()
        if not isinstance(model, TakeListModel):
            return
        offer = model.drag_offer(self.selectedIndexes())
        if offer.message:
            self.dragRefused.emit(offer.message)
        current = self.currentIndex()
        pixmap = current.data(Qt.ItemDataRole.DecorationRole) if current.isValid() else None
        run_drag(self, offer, pixmap if isinstance(pixmap, QPixmap) else None)


# ----------------------------------------------------------------------------- undo
class TrashTakesCommand(QUndoCommand):
    """Move takes to the library's trash; undo restores them."""

    def __init__(self, panel: LibraryPanel, take_ids: Sequence[int]):
        n = len(take_ids)
        super().__init__(f"Move {n} take{'s' if n != 1 else ''} to the trash")
        self._panel = panel
        self._ids = tuple(take_ids)

    def redo(self) -> None:
        for take_id in self._ids:
            self._panel.library.trash_take(take_id)
        self._panel._after_takes_changed()

    def undo(self) -> None:
        for take_id in self._ids:
            self._panel.library.restore_take(take_id)
        self._panel._after_takes_changed()


class RestoreTakesCommand(TrashTakesCommand):
    """Bring takes back from the trash; undo puts them back in it."""

    def __init__(self, panel: LibraryPanel, take_ids: Sequence[int]):
        super().__init__(panel, take_ids)
        n = len(take_ids)
        self.setText(f"Restore {n} take{'s' if n != 1 else ''}")

    def redo(self) -> None:
        super().undo()

    def undo(self) -> None:
        super().redo()


# ----------------------------------------------------------------------------- the panel
class Notice(QFrame):
    """A one-line notice with an optional action button (e.g. "Undo"), hidden after a while."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("libraryNotice")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.action_button = QPushButton()
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 4, 4)
        row.addWidget(self.label, 1)
        row.addWidget(self.action_button)
        row.addWidget(self.close_button)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self._slot = None
        self.action_button.clicked.connect(self._act)
        self.hide()

    def show_message(self, text: str, action: str = "", slot=None, ms: int = NOTICE_MS) -> None:  # noqa: ANN001
        self.label.setText(text)
        self._slot = slot
        self.action_button.setVisible(bool(action))
        self.action_button.setText(action)
        self.show()
        self._timer.start(ms)

    def _act(self) -> None:
        slot, self._slot = self._slot, None
        self.hide()
        if slot is not None:
            slot()


class LibraryPanel(QWidget, ShotView):
    """Projects, shots and variant history; the selected node's takes as thumbnails.

    Clicking a shot (or one of its variants) opens it: :attr:`shotOpened` (:attr:`variantSelected`)
    is emitted, and the window puts that shot in the editors, so the shot the library shows is
    always the one Generate adds to. The open shot is drawn in bold.
    """

    shotOpened = Signal(int)
    variantSelected = Signal(int)
    branchRequested = Signal(int)      # variant id
    takeActivated = Signal(int)        # take id
    exportRequested = Signal(list)     # take ids
    compareRequested = Signal(int, int)  # two take ids, to show side by side
    errorOccurred = Signal(str)        # a message for a person

    def __init__(self, library: Library, parent: QWidget | None = None):
        super().__init__(parent)
        self.library = library
        self.undo_stack = QUndoStack(self)
        self._search_ids: set[int] | None = None
        self._programmatic = False

        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search prompts…")
        self.search_edit.setClearButtonEnabled(True)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._apply_search)
        self.search_edit.textChanged.connect(lambda _t: self._search_timer.start())

        self.tree_model = LibraryTreeModel(self)
        self.tree = QTreeView()
        self.tree.setModel(self.tree_model)
        self.tree.setHeaderHidden(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setIndentation(14)
        # a long name widens the column and the tree scrolls sideways: names are never cut
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(False)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._tree_menu)
        self.tree.selectionModel().currentChanged.connect(self._on_tree_current)
        self.tree.activated.connect(self._on_tree_activated)
        self.tree_model.rowsInserted.connect(self._on_rows_inserted)

        self._thumbs = ThumbnailLoader(self)
        self.takes_model = TakeListModel(self._thumbs, self)
        self.delegate = TakeDelegate(self)
        self.delegate.ratingClicked.connect(self.set_rating)
        self.delegate.favouriteClicked.connect(self.set_favourite)
        self.take_view = TakeListView()
        self.take_view.setModel(self.takes_model)
        self.take_view.setItemDelegate(self.delegate)
        self.take_view.activated.connect(lambda idx: self.takeActivated.emit(self.takes_model.take_at(idx.row()).id))
        self.take_view.customContextMenuRequested.connect(self._take_menu)
        self.take_view.dragRefused.connect(self._say)
        self.take_view.selectionModel().selectionChanged.connect(lambda *_: self._sync_buttons())
        self.exports_view = ExportsView(library)  # the exports of the one selected take
        self.exports_view.problem.connect(self._say)

        self.favourites_box = QCheckBox("Favourites only")
        self.favourites_box.toggled.connect(lambda _on: self._show_takes())
        self.takes_label = QLabel()
        self.takes_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Export the selected takes (all shown takes when none is selected)")
        self.export_button.clicked.connect(self.request_export)
        self.trash_button = QPushButton("Move to trash")
        self.trash_button.clicked.connect(self.trash_selected)
        self.restore_button = QPushButton("Restore")
        self.restore_button.clicked.connect(self.restore_selected)

        self.notice = Notice(self)

        self._action_undo = self.undo_stack.createUndoAction(self, "Undo")
        self._action_undo.setShortcut(QKeySequence.StandardKey.Undo)
        self._action_redo = self.undo_stack.createRedoAction(self, "Redo")
        self._action_redo.setShortcut(QKeySequence.StandardKey.Redo)
        self._action_delete = QAction("Move to trash", self)
        self._action_delete.setShortcut(QKeySequence.StandardKey.Delete)
        self._action_delete.triggered.connect(self.trash_selected)
        for a in (self._action_undo, self._action_redo):
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(a)
        self._action_delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.take_view.addAction(self._action_delete)

        takes_bar = QHBoxLayout()
        takes_bar.addWidget(self.takes_label, 1)
        takes_bar.addWidget(self.favourites_box)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.restore_button)
        buttons.addWidget(self.trash_button)
        buttons.addWidget(self.export_button)
        lower = QWidget()
        self.lower_layout = QVBoxLayout(lower)
        self.lower_layout.setContentsMargins(0, 0, 0, 0)
        self.lower_layout.addLayout(takes_bar)
        self.lower_layout.addWidget(self.take_view, 1)
        self.lower_layout.addLayout(buttons)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(lower)
        self.splitter.addWidget(self.exports_view)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setStretchFactor(2, 1)
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        root.addWidget(self.search_edit)
        root.addWidget(self.splitter, 1)
        root.addWidget(self.notice)

        self.refresh()
        self.tree.expandAll()  # the whole variant history in view
        self.tree.collapse(self.index_of(NodeKind.TRASH, 0))

    # -- public API
    def refresh(self) -> None:
        """Re-read the library (one query) and show what changed; selection and expansion stay."""
        try:
            rows = self.library.variant_rows()
            trash = len(self.library.list_trash())
        except LibraryError as exc:
            self._say(str(exc))
            return
        self._programmatic = True
        try:
            self.tree_model.reload(rows, trash)
            self._apply_filter()
        finally:
            self._programmatic = False
        self._show_takes()

    def take_saved(self, take: Take) -> None:
        """A new take is in the library: count it in the tree, show it if its node is shown."""
        if not self.tree_model.take_added(take.variant_id):
            self.refresh()  # a new variant: it is inserted where it belongs
            return
        key = self._current_key()
        if key is not None and key[0] is not NodeKind.TRASH and take.variant_id in self._variant_ids_under(key):
            self._show_takes()

    def bind(self, shot: OpenShot) -> None:
        """The shot the model holds is the one shown selected and in bold."""
        self.observe(shot.events.opened, lambda s: self.set_open_shot(s.shot_id))
        self.set_open_shot(shot.shot_id)

    def set_open_shot(self, shot_id: int | None) -> None:
        """The shot the editors hold: drawn in bold, selected and revealed (emits nothing)."""
        self.tree_model.set_open_shot(shot_id)
        if shot_id is None:
            return
        key = self._current_key()
        if key is not None and key[0] is NodeKind.VARIANT and self._shot_of(key[1]) == shot_id:
            return  # a variant of that shot is selected: keep it
        self.select_shot(shot_id)

    def select_shot(self, shot_id: int) -> None:
        """Select (and reveal) a shot without emitting :attr:`shotOpened`."""
        index = self.index_of(NodeKind.SHOT, shot_id)
        if not index.isValid():
            self.refresh()
            index = self.index_of(NodeKind.SHOT, shot_id)
        if not index.isValid():
            return
        self._select(index)
        self.tree.expand(index)

    def select_variant(self, variant_id: int) -> None:
        index = self.index_of(NodeKind.VARIANT, variant_id)
        if index.isValid():
            self._select(index)

    def index_of(self, kind: NodeKind, node_id: int) -> QModelIndex:
        return self.tree_model.index_of((kind, node_id))

    def is_hidden(self, index: QModelIndex) -> bool:
        """Whether the search hides this row (or one above it)."""
        while index.isValid():
            if self.tree.isRowHidden(index.row(), index.parent()):
                return True
            index = index.parent()
        return False

    def shown_takes(self) -> list[Take]:
        return self.takes_model.takes()

    def selected_take_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.take_view.selectionModel().selectedIndexes()})
        return [self.takes_model.take_at(r).id for r in rows]

    def select_takes(self, take_ids: Iterable[int]) -> None:
        sel = self.take_view.selectionModel()
        sel.clearSelection()
        for take_id in take_ids:
            row = self.takes_model.row_of(take_id)
            if row >= 0:
                sel.select(self.takes_model.index(row), QItemSelectionModel.SelectionFlag.Select)
        self._sync_buttons()

    def set_search(self, text: str) -> None:
        """Filter at once (typing filters after a short pause)."""
        self.search_edit.setText(text)
        self._search_timer.stop()
        self._apply_search()

    def set_rating(self, take_id: int, rating: int) -> None:
        self._update_take(lambda: self.library.set_rating(take_id, rating))

    def set_favourite(self, take_id: int, favourite: bool) -> None:
        self._update_take(lambda: self.library.set_favourite(take_id, favourite))

    def trash_takes(self, take_ids: Sequence[int]) -> None:
        """Move takes to the trash (undoable); a notice offers Undo."""
        ids = list(dict.fromkeys(take_ids))
        if not ids:
            return
        try:
            self.undo_stack.push(TrashTakesCommand(self, ids))
        except LibraryError as exc:
            self._say(str(exc))
            return
        n = len(ids)
        self.notice.show_message(f"Moved {n} take{'s' if n != 1 else ''} to the trash.", "Undo", self.undo_stack.undo)

    def trash_selected(self) -> None:
        if not self._showing_trash():
            self.trash_takes(self.selected_take_ids())

    def restore_selected(self) -> None:
        ids = self.selected_take_ids()
        if ids and self._showing_trash():
            try:
                self.undo_stack.push(RestoreTakesCommand(self, ids))
            except LibraryError as exc:
                self._say(str(exc))

    def request_export(self) -> None:
        ids = self.selected_take_ids() or [t.id for t in self.takes_model.takes()]
        if ids:
            self.exportRequested.emit(ids)

    def take_drag_offer(self, take_ids: Iterable[int]) -> DragOffer:
        """What dragging these takes offers (the mime data a drop target receives)."""
        rows = [self.takes_model.row_of(t) for t in take_ids]
        return self.takes_model.drag_offer(self.takes_model.index(r) for r in rows if r >= 0)

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802
        self._thumbs.shutdown()
        super().closeEvent(event)

    # -- tree
    def _select(self, index: QModelIndex) -> None:
        self._programmatic = True
        try:
            self.tree.setCurrentIndex(index)
            self.tree.scrollTo(index)
        finally:
            self._programmatic = False
        self._show_takes()

    def _current_key(self) -> NodeKey | None:
        return self.tree_model.key(self.tree.currentIndex())

    def _shot_of(self, variant_id: int) -> int | None:
        index = self.index_of(NodeKind.VARIANT, variant_id)
        while index.isValid():
            key = self.tree_model.key(index)
            if key is not None and key[0] is NodeKind.SHOT:
                return key[1]
            index = index.parent()
        return None

    def _on_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        """New shots and variants appear expanded (the history stays in view), hidden when a search
        is on and they do not match it."""
        for row in range(first, last + 1):
            index = self.tree_model.index(row, 0, parent)
            key = self.tree_model.key(index)
            if key is not None and key[0] is not NodeKind.TRASH:
                self.tree.expandRecursively(index)
        if self._search_ids is not None:
            self._apply_filter()

    # -- search
    def _apply_search(self) -> None:
        text = self.search_edit.text().strip()
        try:
            self._search_ids = {v.id for v in self.library.search(text)} if text else None
        except LibraryError as exc:
            self._say(str(exc))
            self._search_ids = None
        self._apply_filter()
        self._show_takes()

    def _apply_filter(self) -> None:
        """Hide what does not match the search; a matching variant keeps its shot and project visible."""
        ids = self._search_ids
        self.tree_model.set_matches(ids)
        model = self.tree_model

        def visit(index: QModelIndex) -> bool:
            key = model.key(index)
            assert key is not None
            kind, node_id = key
            shown_children = [visit(model.index(i, 0, index)) for i in range(model.rowCount(index))]
            if kind is NodeKind.TRASH:
                self.tree.setRowHidden(index.row(), index.parent(), ids is not None)
                return False
            match = ids is None or (kind is NodeKind.VARIANT and node_id in ids)
            visible = match or any(shown_children)
            self.tree.setRowHidden(index.row(), index.parent(), not visible)
            if ids is not None and any(shown_children):
                self.tree.expand(index)
            return visible

        for i in range(model.rowCount()):
            visit(model.index(i, 0))

    def visible_variant_ids(self) -> list[int]:
        """Variants the tree shows as matches (all of them when there is no search)."""
        out = []
        for node in self.tree_model.nodes():
            kind, node_id = node.key
            if kind is NodeKind.VARIANT and (self._search_ids is None or node_id in self._search_ids):
                if not self.is_hidden(self.index_of(kind, node_id)):
                    out.append(node_id)
        return sorted(out)

    # -- takes shown
    def _showing_trash(self) -> bool:
        key = self._current_key()
        return key is not None and key[0] is NodeKind.TRASH

    def _variant_ids_under(self, key: NodeKey) -> list[int]:
        ids = self.tree_model.variant_ids_under(key)
        return ids if self._search_ids is None else [v for v in ids if v in self._search_ids]

    def _show_takes(self) -> None:
        key = self._current_key()
        kept = set(self.selected_take_ids())
        takes: list[Take] = []
        title = ""
        try:
            if key is None and self._search_ids is not None:
                for vid in sorted(self._search_ids):
                    takes.extend(self.library.list_takes(vid))
                title = "Takes matching the search"
            elif key is not None:
                kind, node_id = key
                if kind is NodeKind.TRASH:
                    takes = self.library.list_trash()
                    title = "In the trash"
                else:
                    for vid in self._variant_ids_under(key):
                        takes.extend(self.library.list_takes(vid))
                    title = {NodeKind.PROJECT: "Takes of the project", NodeKind.SHOT: "Takes of the shot",
                             NodeKind.VARIANT: f"Takes of variant {node_id}"}[kind]
        except LibraryError as exc:
            self._say(str(exc))
        if self.favourites_box.isChecked():
            takes = [t for t in takes if t.favourite]
        takes.sort(key=lambda t: t.id)
        self.takes_model.set_takes(takes)
        self.takes_label.setText(f"{title} ({len(takes)})" if title else "Select a shot or variant")
        self.takes_label.setToolTip(self.takes_label.text())
        if kept:
            self.select_takes(kept)
        self._sync_buttons()

    def _after_takes_changed(self) -> None:
        self.refresh()

    def _update_take(self, change) -> None:  # noqa: ANN001
        try:
            take = change()
        except LibraryError as exc:
            self._say(str(exc))
            return
        if self.favourites_box.isChecked() and not take.favourite:
            self._show_takes()
        else:
            self.takes_model.replace_take(take)

    def _sync_buttons(self) -> None:
        trash = self._showing_trash()
        has_sel = bool(self.take_view.selectionModel().selectedIndexes())
        ids = self.selected_take_ids()
        take_id = ids[0] if len(ids) == 1 and not trash else None
        if take_id != self.exports_view.take_id:
            self.exports_view.set_take(take_id)
        self.exports_view.setVisible(take_id is not None)
        self.trash_button.setVisible(not trash)
        self.restore_button.setVisible(trash)
        self.trash_button.setEnabled(has_sel)
        self.restore_button.setEnabled(has_sel)
        self.export_button.setEnabled(not trash and self.takes_model.rowCount() > 0)

    # -- reactions
    def _on_tree_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._programmatic:
            return
        self._show_takes()
        self._on_tree_activated(current)

    def _on_tree_activated(self, index: QModelIndex) -> None:
        key = self.tree_model.key(index)
        if key is None:
            return
        kind, node_id = key
        if kind is NodeKind.SHOT:
            self.shotOpened.emit(node_id)
        elif kind is NodeKind.VARIANT:
            self.variantSelected.emit(node_id)

    def _tree_menu(self, pos: QPoint) -> None:
        index = self.tree.indexAt(pos)
        if not index.isValid():
            return
        menu = self.tree_menu(index)
        if not menu.isEmpty():
            menu.exec(self.tree.viewport().mapToGlobal(pos))

    def tree_menu(self, index: QModelIndex) -> QMenu:
        """The context menu of a tree row (built separately so tests can trigger its actions)."""
        key = self.tree_model.key(index)
        menu = QMenu(self)
        if key is None:
            return menu
        kind, node_id = key
        if kind is NodeKind.VARIANT:
            menu.addAction("Branch from here", lambda: self.branchRequested.emit(node_id))
            menu.addAction("Show its takes", lambda: self.tree.setCurrentIndex(self.index_of(kind, node_id)))
        elif kind is NodeKind.SHOT:
            menu.addAction("Open shot", lambda: self.shotOpened.emit(node_id))
            menu.addAction("Export its takes…", lambda: self._export_under(key))
        elif kind is NodeKind.PROJECT:
            menu.addAction("Export its takes…", lambda: self._export_under(key))
        return menu

    def _export_under(self, key: NodeKey) -> None:
        ids = [t.id for vid in self._variant_ids_under(key) for t in self.library.list_takes(vid)]
        if ids:
            self.exportRequested.emit(ids)

    def _take_menu(self, pos: QPoint) -> None:
        menu = self.take_menu()
        if not menu.isEmpty():
            menu.exec(self.take_view.viewport().mapToGlobal(pos))

    def take_menu(self) -> QMenu:
        ids = self.selected_take_ids()
        menu = QMenu(self)
        if not ids:
            return menu
        if self._showing_trash():
            menu.addAction("Restore", self.restore_selected)
            return menu
        if len(ids) == 1:
            menu.addAction("Play", lambda: self.takeActivated.emit(ids[0]))
        if len(ids) == 2:
            menu.addAction("Compare side by side", lambda: self.compareRequested.emit(ids[0], ids[1]))
        rating = menu.addMenu("Rating")
        for r in range(MAX_RATING + 1):
            rating.addAction("★" * r + "☆" * (MAX_RATING - r) if r else "No rating",
                             lambda r=r: [self.set_rating(t, r) for t in ids])
        takes = {t.id: t for t in self.takes_model.takes()}
        fav = all(takes[t].favourite for t in ids if t in takes)
        menu.addAction("Remove from favourites" if fav else "Add to favourites",
                       lambda: [self.set_favourite(t, not fav) for t in ids])
        menu.addSeparator()
        menu.addAction("Export…", lambda: self.exportRequested.emit(ids))
        menu.addAction(self._action_delete)
        return menu

    def _say(self, message: str) -> None:
        self.notice.show_message(message)
        self.errorOccurred.emit(message)


__all__ = ["LibraryPanel", "TakeListModel", "TakeDelegate", "TakeListView", "ThumbnailLoader", "NodeKind",
           "TrashTakesCommand", "RestoreTakesCommand", "take_caption"]
