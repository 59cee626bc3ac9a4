"""The library's tree (Project -> Shot -> Variant, a variant under the one it was made from, and the
Trash) as a QAbstractItemModel over one query, :meth:`Library.variant_rows`.

:meth:`LibraryTreeModel.reload` re-reads that query and changes only the rows that differ (a
new variant is inserted, a renamed shot changes its text), so the view keeps its selection,
expansion and scroll position; :meth:`LibraryTreeModel.take_added` counts a new take without
reading anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QApplication

from shotsketch.core.library import VariantRow

KIND_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2

AnyIndex = QModelIndex | QPersistentModelIndex


class NodeKind(Enum):
    PROJECT = "project"
    SHOT = "shot"
    VARIANT = "variant"
    TRASH = "trash"


NodeKey = tuple[NodeKind, int]


def short_prompt(prompt: str, limit: int = 70) -> str:
    text = " ".join(prompt.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class NodeSpec:
    """What one row shows; :meth:`LibraryTreeModel.reload` compares these to find what changed."""

    kind: NodeKind
    node_id: int
    name: str  # the project's or shot's name; a variant's prompt
    take_count: int = 0
    tooltip: str = ""
    children: tuple[NodeSpec, ...] = ()

    @property
    def key(self) -> NodeKey:
        return (self.kind, self.node_id)


@dataclass(eq=False)
class _Node:
    spec: NodeSpec
    parent: _Node | None
    children: list[_Node] = field(default_factory=list)

    @property
    def key(self) -> NodeKey:
        return self.spec.key

    def row(self) -> int:
        return self.parent.children.index(self) if self.parent is not None else 0


def variant_label(spec: NodeSpec) -> str:
    count = f" ({spec.take_count})" if spec.take_count else ""
    return f"v{spec.node_id}{count}  {short_prompt(spec.name, 60) or '(no prompt)'}"


def node_text(spec: NodeSpec) -> str:
    if spec.kind is NodeKind.VARIANT:
        return variant_label(spec)
    if spec.kind is NodeKind.TRASH:
        return f"Trash ({spec.take_count})"
    return spec.name


def tree_specs(rows: Sequence[VariantRow], trash_count: int) -> list[NodeSpec]:
    """The tree's top rows (projects, then the Trash) built from :meth:`Library.variant_rows`."""
    projects: dict[int, tuple[str, dict[int, tuple[str, list[VariantRow]]]]] = {}
    for r in rows:
        name, shots = projects.setdefault(r.project_id, (r.project_name, {}))
        if r.shot_id is not None:
            shots.setdefault(r.shot_id, (r.shot_name or "", []))[1].extend([r] if r.variant is not None else [])
    out = []
    for project_id, (project_name, shots) in projects.items():
        shot_specs = tuple(
            NodeSpec(NodeKind.SHOT, shot_id, shot_name, tooltip=f"Shot {shot_name} — click to open it",
                     children=_variant_specs(variants))
            for shot_id, (shot_name, variants) in shots.items())
        out.append(NodeSpec(NodeKind.PROJECT, project_id, project_name, tooltip=f"Project {project_name}",
                            children=shot_specs))
    out.append(NodeSpec(NodeKind.TRASH, 0, "Trash", trash_count, tooltip="Takes moved to the trash"))
    return out


def _variant_specs(rows: Sequence[VariantRow]) -> tuple[NodeSpec, ...]:
    """A shot's variants as a forest: each under the variant it was made from."""
    ids = {r.variant.id for r in rows if r.variant is not None}
    children: dict[int | None, list[VariantRow]] = {}
    for r in rows:
        assert r.variant is not None
        parent = r.variant.parent_id if r.variant.parent_id in ids else None
        children.setdefault(parent, []).append(r)

    def build(r: VariantRow) -> NodeSpec:
        v = r.variant
        assert v is not None
        tip = [f"Variant {v.id}" + (f", branched from variant {v.parent_id}" if v.parent_id else ""), v.prompt]
        if v.negative_prompt:
            tip.append(f"Negative: {short_prompt(v.negative_prompt, 200)}")
        if v.note:
            tip.append(f"Note: {v.note}")
        n = r.take_count
        tip.append(f"{n} take{'s' if n != 1 else ''} · right-click to branch from here")
        return NodeSpec(NodeKind.VARIANT, v.id, v.prompt, n, "\n".join(tip),
                        tuple(build(c) for c in children.get(v.id, [])))

    return tuple(build(r) for r in children.get(None, []))


class LibraryTreeModel(QAbstractItemModel):
    """Projects, shots, variants and the Trash; see the module docstring."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._root = _Node(NodeSpec(NodeKind.PROJECT, -1, ""), None)
        self._nodes: dict[NodeKey, _Node] = {}
        self._open_shot: int | None = None
        self._matches: set[int] | None = None  # variant ids matching the search; None: no search

    # -- reading
    def reload(self, rows: Sequence[VariantRow], trash_count: int) -> None:
        """Show what the query returned, changing only the rows that differ."""
        self._sync(self._root, QModelIndex(), tree_specs(rows, trash_count))

    def take_added(self, variant_id: int) -> bool:
        """Count one more take of a variant; False when the variant is not in the tree (reload then)."""
        node = self._nodes.get((NodeKind.VARIANT, variant_id))
        if node is None:
            return False
        spec = node.spec
        node.spec = NodeSpec(spec.kind, spec.node_id, spec.name, spec.take_count + 1,
                             spec.tooltip, spec.children)
        index = self.index_of(node.key)
        self.dataChanged.emit(index, index)
        return True

    def set_open_shot(self, shot_id: int | None) -> None:
        """The shot the editors hold is shown in bold."""
        changed = [self._open_shot, shot_id]
        self._open_shot = shot_id
        for sid in changed:
            index = self.index_of((NodeKind.SHOT, sid)) if sid is not None else QModelIndex()
            if index.isValid():
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.FontRole])

    def set_matches(self, variant_ids: set[int] | None) -> None:
        """Variants matching a search are drawn normally, others dimmed (None: no search)."""
        self._matches = variant_ids
        for node in self.nodes():
            if node.spec.kind is NodeKind.VARIANT:
                index = self.index_of(node.key)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.ForegroundRole])

    # -- lookups
    def index_of(self, key: NodeKey) -> QModelIndex:
        node = self._nodes.get(key)
        if node is None or node.parent is None:
            return QModelIndex()
        return self.createIndex(node.row(), 0, node)

    def key(self, index: AnyIndex) -> NodeKey | None:
        node = self._node(index)
        return node.key if node is not None else None

    def spec(self, key: NodeKey) -> NodeSpec | None:
        node = self._nodes.get(key)
        return node.spec if node is not None else None

    def nodes(self, under: NodeKey | None = None) -> Iterator[_Node]:
        """Every node (depth first), or those in the subtree of ``under`` (itself included)."""
        start = self._nodes.get(under) if under is not None else self._root
        stack = [start] if start is not None else []
        while stack:
            node = stack.pop()
            if node is not self._root:
                yield node
            stack.extend(reversed(node.children))

    def variant_ids_under(self, key: NodeKey) -> list[int]:
        return sorted(n.spec.node_id for n in self.nodes(key) if n.spec.kind is NodeKind.VARIANT)

    # -- QAbstractItemModel
    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        node = self._node(parent) if parent.isValid() else self._root
        if node is None or column != 0 or not 0 <= row < len(node.children):
            return QModelIndex()
        return self.createIndex(row, 0, node.children[row])

    def parent(self, index: AnyIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        node = self._node(index)
        if node is None or node.parent is None or node.parent is self._root:
            return QModelIndex()
        return self.createIndex(node.parent.row(), 0, node.parent)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        if parent.column() > 0:
            return 0
        node = self._node(parent) if parent.isValid() else self._root
        return len(node.children) if node is not None else 0

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 1

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        node = self._node(index)
        if node is None:
            return None
        spec = node.spec
        if role == Qt.ItemDataRole.DisplayRole:
            return node_text(spec)
        if role == Qt.ItemDataRole.ToolTipRole:
            return spec.tooltip or node_text(spec)
        if role == KIND_ROLE:
            return spec.kind.value
        if role == ID_ROLE:
            return spec.node_id
        if role == Qt.ItemDataRole.FontRole and spec.kind is NodeKind.SHOT and spec.node_id == self._open_shot:
            font = QFont(QApplication.font())
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole:
            dim = spec.kind is NodeKind.TRASH or (
                spec.kind is NodeKind.VARIANT and self._matches is not None and spec.node_id not in self._matches)
            return QApplication.palette().color(QPalette.ColorRole.PlaceholderText) if dim else None
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # -- internals
    def _node(self, index: AnyIndex) -> _Node | None:
        if not index.isValid():
            return None
        node = index.internalPointer()
        return node if isinstance(node, _Node) else None

    def _build(self, spec: NodeSpec, parent: _Node) -> _Node:
        node = _Node(spec, parent)
        self._nodes[spec.key] = node
        node.children = [self._build(c, node) for c in spec.children]
        return node

    def _forget(self, node: _Node) -> None:
        for child in node.children:
            self._forget(child)
        if self._nodes.get(node.key) is node:
            del self._nodes[node.key]

    def _sync(self, node: _Node, index: QModelIndex, specs: Sequence[NodeSpec]) -> None:
        wanted = [s.key for s in specs]
        for row in reversed(range(len(node.children))):
            if node.children[row].key not in wanted:
                self.beginRemoveRows(index, row, row)
                self._forget(node.children.pop(row))
                self.endRemoveRows()
        for row, spec in enumerate(specs):
            have = node.children[row] if row < len(node.children) else None
            if have is None or have.key != spec.key:
                old = next((i for i, c in enumerate(node.children) if c.key == spec.key), None)
                if old is not None:  # moved within its parent: out of its old place, then in again
                    self.beginRemoveRows(index, old, old)
                    self._forget(node.children.pop(old))
                    self.endRemoveRows()
                self.beginInsertRows(index, row, row)
                node.children.insert(row, self._build(spec, node))
                self.endInsertRows()
                continue
            if (have.spec.name, have.spec.take_count, have.spec.tooltip) != (spec.name, spec.take_count, spec.tooltip):
                have.spec = spec
                child_index = self.createIndex(row, 0, have)
                self.dataChanged.emit(child_index, child_index)
            else:
                have.spec = spec
            self._sync(have, self.createIndex(row, 0, have), spec.children)


__all__ = ["LibraryTreeModel", "NodeKind", "NodeSpec", "NodeKey", "KIND_ROLE", "ID_ROLE", "tree_specs",
           "short_prompt", "node_text"]
