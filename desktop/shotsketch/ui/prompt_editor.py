"""The prompt editor: spatial words highlighted, lint findings underlined with one-click fixes,
the negative prompt with presets, the spatial clause compiled from the sketch, and the final
prompt the model gets.

Lint (:func:`shotsketch.core.lint.lint`) runs 250 ms after typing stops; it is pure and takes a
few milliseconds even for a prompt at the encoder's length limit, so it runs on the UI thread
without holding up typing. Fixes go through a ``QTextCursor`` edit block, so the editor's own
Ctrl+Z undoes them.
"""

from __future__ import annotations

import shotsketch.ui.qt_fixes  # noqa: F401 - before any signal is emitted
from PySide6.QtCore import QEvent, QPoint, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QContextMenuEvent,
    QFont,
    QKeyEvent,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from shotsketch.app.shot import OpenShot
from shotsketch.core.lint import (
    DEFAULT_NEGATIVE,
    NEGATIVE_PRESETS,
    Finding,
    Severity,
    Target,
    lint,
    spatial_spans,
)
from shotsketch.core.prompting import compose_prompt, prompt_says_clause
from shotsketch.ui.shot_view import ShotView

LINT_DELAY_MS = 250
MAX_FINDING_ROWS = 3

SEVERITY_COLORS = {
    Severity.ERROR: QColor("#d32f2f"),
    Severity.WARNING: QColor("#e08a00"),
    Severity.INFO: QColor("#1e88e5"),
}
SPATIAL_COLOR = QColor("#1565c0")
PRESET_LABELS = {
    "default": "Default",
    "objects": "Objects",
    "people": "People",
    "minimal": "Minimal",
    "wan_official": "Wan official (Chinese)",
}


# -- the editor --------------------------------------------------------------------------------


class PromptHighlighter(QSyntaxHighlighter):
    """Spatial words in bold blue; lint findings with a wavy underline in the severity colour."""

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self.findings: list[Finding] = []

    def set_findings(self, findings: list[Finding]) -> None:
        self.findings = [f for f in findings if f.target is Target.PROMPT and f.span[1] > f.span[0]]
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:  # noqa: N802
        spatial = QTextCharFormat()
        spatial.setForeground(SPATIAL_COLOR)
        spatial.setFontWeight(QFont.Weight.DemiBold)
        for start, end in spatial_spans(text):
            self.setFormat(start, end - start, spatial)
        block_start = self.currentBlock().position()
        block_end = block_start + len(text)
        for f in sorted(self.findings, key=lambda f: list(Severity).index(f.severity)):
            start, end = max(f.span[0], block_start), min(f.span[1], block_end)
            if start >= end:
                continue
            for i in range(start - block_start, end - block_start):
                fmt = self.format(i)
                fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
                fmt.setUnderlineColor(SEVERITY_COLORS[f.severity])
                self.setFormat(i, 1, fmt)


def fix_label(finding: Finding) -> str:
    if finding.replacement is None:
        return ""
    if finding.target is Target.NEGATIVE and not finding.span[1] > finding.span[0]:
        return "Fix: use the default negative prompt"
    shown = finding.replacement if len(finding.replacement) <= 40 else finding.replacement[:37] + "…"
    return f'Fix: use "{shown}"'


class PromptEditor(QPlainTextEdit):
    """The prompt text field. Ctrl+Enter asks to generate."""

    generateRequested = Signal()
    findingsChanged = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(
            "Describe the shot: the subjects, where each one is, how it moves. "
            "e.g. \"A yellow ball rolls from the left edge to the center.\""
        )
        self.setTabChangesFocus(True)
        self.highlighter = PromptHighlighter(self.document())
        self._findings: list[Finding] = []
        self.negative_text = lambda: DEFAULT_NEGATIVE
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(LINT_DELAY_MS)
        self._timer.timeout.connect(self.lint_now)
        self.textChanged.connect(self._timer.start)

    def findings(self) -> list[Finding]:
        return list(self._findings)

    def lint_now(self) -> list[Finding]:
        self._timer.stop()
        text = self.toPlainText()
        findings = lint(text, self.negative_text()) if text.strip() else []
        if findings != self._findings:
            self._findings = findings
            self.highlighter.set_findings(findings)
            self.findingsChanged.emit(findings)
        return findings

    def schedule_lint(self) -> None:
        self._timer.start()

    def findings_at(self, position: int) -> list[Finding]:
        return [
            f for f in self._findings
            if f.target is Target.PROMPT and f.span[0] <= position <= f.span[1] and f.span[1] > f.span[0]
        ]

    def apply_fix(self, finding: Finding) -> bool:
        """Replace the finding's span with its replacement (one undoable edit). False when the
        text there has changed since the lint ran."""
        if finding.replacement is None or finding.target is not Target.PROMPT:
            return False
        start, end = finding.span
        if finding not in self._findings or end > len(self.toPlainText()):
            return False
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(finding.replacement)
        cursor.endEditBlock()
        self.setTextCursor(cursor)
        self.lint_now()
        return True

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.lint_now()
            self.generateRequested.emit()
            event.accept()
            return
        super().keyPressEvent(event)

    def tooltip_at(self, viewport_pos: QPoint) -> str:
        """The tooltip for the findings under a point of the viewport ("" when none)."""
        found = self.findings_at(self.cursorForPosition(viewport_pos).position())
        return _tooltip(found) if found else ""

    def viewportEvent(self, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.ToolTip:
            text = self.tooltip_at(event.pos())  # type: ignore[attr-defined]
            if text:
                QToolTip.showText(event.globalPos(), text, self.viewport())  # type: ignore[attr-defined]
            else:
                QToolTip.hideText()
            return True
        return super().viewportEvent(event)

    def fix_actions(self, position: int, parent: QWidget) -> list:
        """One "Fix: ..." action for each fixable finding at ``position`` in the text."""
        actions = []
        for f in self.findings_at(position):
            if f.replacement is None:
                continue
            act = QAction(fix_label(f), parent)
            act.setToolTip(f.message)
            act.triggered.connect(lambda _=False, f=f: self.apply_fix(f))
            actions.append(act)
        return actions

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802
        menu = self.createStandardContextMenu(event.pos())
        cursor = self.cursorForPosition(event.pos())
        fixes = self.fix_actions(cursor.position(), menu)
        if fixes:
            first = menu.actions()[0] if menu.actions() else None
            if first is not None:
                menu.insertActions(first, fixes)
                menu.insertSeparator(first)
            else:
                menu.addActions(fixes)
        menu.exec(event.globalPos())


def _tooltip(findings: list[Finding]) -> str:
    parts = []
    for f in findings:
        color = SEVERITY_COLORS[f.severity].name()
        text = f"<b style='color:{color}'>{f.severity.value.title()}</b>: {_esc(f.message)}"
        if f.suggestion:
            text += f"<br><i>{_esc(f.suggestion)}</i>"
        if f.replacement is not None:
            text += "<br>Right-click for the fix."
        parts.append(text)
    return "<p style='white-space:pre-wrap'>" + "<hr>".join(parts) + "</p>"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class FindingRow(QFrame):
    """One finding under the editor, on one line: a severity mark, the message (elided; the
    tooltip has all of it and the suggestion), and a Fix button when there is a safe fix."""

    fixClicked = Signal(object)

    def __init__(self, finding: Finding, excerpt: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.finding = finding
        color = SEVERITY_COLORS[finding.severity]
        self.mark = QLabel("●", self)
        self.mark.setStyleSheet(f"color: {color.name()};")
        self.mark.setToolTip(finding.severity.value.title())
        where = f"“{excerpt}”: " if excerpt and excerpt.casefold() not in finding.message.casefold() else ""
        self.full_text = f"{where}{finding.message}"
        self.label = QLabel(self.full_text, self)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setToolTip(_tooltip([finding]))
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label.setMinimumWidth(40)
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 0, 2, 0)
        row.setSpacing(6)
        row.addWidget(self.mark)
        row.addWidget(self.label, 1)
        self.fix_button: QPushButton | None = None
        if finding.replacement is not None:
            shown = finding.replacement if len(finding.replacement) <= 18 else finding.replacement[:16] + "…"
            label = "Fix" if finding.target is Target.NEGATIVE else f"Fix: “{shown}”"
            self.fix_button = QPushButton(label, self)
            self.fix_button.setToolTip(fix_label(finding))
            self.fix_button.setAutoDefault(False)
            self.fix_button.clicked.connect(lambda: self.fixClicked.emit(self.finding))
            row.addWidget(self.fix_button)

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001
        super().resizeEvent(event)
        width = self.label.width()
        self.label.setText(self.label.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideRight, width))


class PromptPanel(QWidget, ShotView):
    promptChanged = Signal(str)
    negativePromptChanged = Signal(str)
    finalPromptChanged = Signal(str)
    draftRequested = Signal(str)
    generateRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._clause = ""
        self._final_edited = False
        self._showing = False

        self.editor = PromptEditor(self)
        self.editor.negative_text = self.negative_prompt
        self.draft_button = QPushButton("Draft layout from prompt", self)
        self.draft_button.setToolTip("Place the subjects the prompt names on the sketch, where the prompt puts them")
        self.draft_button.setAutoDefault(False)
        # the findings under the editor: a few rows, no scrolling (the underlines show the rest)
        self.findings_area = QWidget(self)
        self.findings_layout = QVBoxLayout(self.findings_area)
        self.findings_layout.setContentsMargins(0, 0, 0, 0)
        self.findings_layout.setSpacing(0)
        self.more_findings = QLabel(self.findings_area)
        self.more_findings.setStyleSheet("color: #777777;")
        self.findings_layout.addWidget(self.more_findings)
        self.findings_area.setVisible(False)
        self.findings_area.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._rows: list[FindingRow] = []

        self.negative_edit = QPlainTextEdit(self)
        self.negative_edit.setPlaceholderText("Empty: the default negative prompt is used")
        self.negative_edit.setTabChangesFocus(True)
        self.preset_box = QComboBox(self)
        self.preset_box.addItem("Presets…", None)
        for key in NEGATIVE_PRESETS:
            self.preset_box.addItem(PRESET_LABELS.get(key, key.replace("_", " ").title()), key)
        self.preset_box.setToolTip("Replace the negative prompt with a preset")

        self.clause_label = QLabel(self)
        self.clause_label.setWordWrap(True)
        self.clause_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.clause_label.setToolTip("The spatial clause compiled from the sketch, in the words the model follows best")
        self.final_edit = QPlainTextEdit(self)
        self.final_edit.setTabChangesFocus(True)
        self.final_edit.setToolTip("What the model gets. Edit it freely; it then stays as you wrote it until you reset it.")
        self.final_state = QLabel(self)
        self.final_state.setToolTip("A box the sketch has where the draft guessed (no words place it) is "
                                    "written into the final prompt once you move it.")
        self.reset_button = QPushButton("Reset to compiled", self)
        self.reset_button.setAutoDefault(False)
        self.reset_button.setToolTip("Go back to the prompt merged with the sketch's clause")

        # layout
        def heading(text: str) -> QLabel:
            label = QLabel(text, self)
            font = label.font()
            font.setBold(True)
            label.setFont(font)
            return label

        prompt_box = QWidget(self)
        pv = QVBoxLayout(prompt_box)
        pv.setContentsMargins(0, 0, 0, 0)
        pv.setSpacing(3)
        top = QHBoxLayout()
        top.addWidget(heading("Prompt"))
        top.addStretch(1)
        top.addWidget(self.draft_button)
        pv.addLayout(top)
        pv.addWidget(self.editor, 1)
        pv.addWidget(self.findings_area)

        negative_box = QWidget(self)
        nv = QVBoxLayout(negative_box)
        nv.setContentsMargins(0, 0, 0, 0)
        nv.setSpacing(3)
        nt = QHBoxLayout()
        nt.addWidget(heading("Negative prompt"))
        nt.addStretch(1)
        nt.addWidget(self.preset_box)
        nv.addLayout(nt)
        nv.addWidget(self.negative_edit, 1)

        final_box = QWidget(self)
        fv = QVBoxLayout(final_box)
        fv.setContentsMargins(0, 0, 0, 0)
        fv.setSpacing(3)
        fv.addWidget(heading("From the sketch"))
        fv.addWidget(self.clause_label)
        ft = QHBoxLayout()
        ft.addWidget(heading("Final prompt"))
        ft.addWidget(self.final_state, 1)
        ft.addWidget(self.reset_button)
        fv.addLayout(ft)
        fv.addWidget(self.final_edit, 1)

        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        for w in (prompt_box, negative_box, final_box):
            self.splitter.addWidget(w)
            self.splitter.setCollapsible(self.splitter.indexOf(w), False)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 2)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(self.splitter)
        self.editor.setMinimumHeight(48)
        self.negative_edit.setMinimumHeight(36)
        self.final_edit.setMinimumHeight(40)

        # wiring
        self.editor.textChanged.connect(self._on_prompt_edited)
        self.editor.findingsChanged.connect(self._show_findings)
        self.editor.generateRequested.connect(self.generateRequested)
        self.draft_button.clicked.connect(lambda: self.draftRequested.emit(self.prompt()))
        self.negative_edit.textChanged.connect(self._on_negative_edited)
        self.negative_edit.document().documentLayout().documentSizeChanged.connect(lambda _s: self._fit_negative())
        self.preset_box.activated.connect(self._apply_preset)
        self.final_edit.textChanged.connect(self._on_final_edited)
        self.reset_button.clicked.connect(self.reset_final_prompt)
        for signal in (self.promptChanged, self.negativePromptChanged, self.finalPromptChanged):
            signal.connect(lambda _t: self._write_model())
        self._update_clause_label()
        self._recompose()

    # -- the open shot's model
    def bind(self, shot: OpenShot) -> None:
        """Show ``shot``'s prompts; edits are written back to it."""
        self.observe(shot.events.opened, lambda _s: self._show_model())
        self.observe(shot.events.prompt, self.set_prompt)
        self.observe(shot.events.negative_prompt, self.set_negative_prompt)
        self.observe(shot.events.layout, lambda _layout: self.set_spatial_clause(shot.spatial_clause()))
        self.observe(shot.events.edited_final, self._show_edited_final)
        self._show_model()

    def _show_model(self) -> None:
        shot = self._model
        if shot is None:
            return
        self._showing = True  # the fields show the model: nothing to write back until all are shown
        try:
            self.set_prompt(shot.prompt)
            self.set_negative_prompt(shot.negative_prompt)
            self.set_spatial_clause(shot.spatial_clause())
            self._show_edited_final(shot.edited_final)
        finally:
            self._showing = False

    def _show_edited_final(self, text: str | None) -> None:
        if text is None:
            if self._final_edited:
                self.reset_final_prompt()
        elif text != self.final_prompt():
            self.final_edit.setPlainText(text)

    def _write_model(self) -> None:
        """The person's edit, into the model (which fires only when something really changed)."""
        if self._model is None or self._showing:
            return
        self._model.set_prompt(self.prompt())
        self._model.set_negative_prompt(self.negative_edit.toPlainText())
        self._model.set_edited_final(self.final_prompt() if self._final_edited else None)

    def focus_prompt(self) -> None:
        """The cursor in the prompt, at its end (a new shot starts with writing)."""
        self.editor.setFocus(Qt.FocusReason.OtherFocusReason)
        self.editor.moveCursor(QTextCursor.MoveOperation.End)

    # -- public API
    def prompt(self) -> str:
        return self.editor.toPlainText()

    def set_prompt(self, text: str) -> None:
        if text != self.prompt():
            self.editor.setPlainText(text)
            self.editor.lint_now()

    def negative_prompt(self) -> str:
        """The negative prompt; :data:`DEFAULT_NEGATIVE` when the field is empty."""
        text = self.negative_edit.toPlainText()
        return text if text.strip() else DEFAULT_NEGATIVE

    def set_negative_prompt(self, text: str) -> None:
        if text != self.negative_edit.toPlainText():
            self.negative_edit.setPlainText(text)

    def spatial_clause(self) -> str:
        return self._clause

    def set_spatial_clause(self, text: str) -> None:
        text = text or ""
        if text == self._clause:
            return
        self._clause = text
        self._update_clause_label()
        self._recompose()

    def compiled_prompt(self) -> str:
        return compose_prompt(self.prompt(), self._clause)

    def final_prompt(self) -> str:
        return self.final_edit.toPlainText()

    def final_prompt_edited(self) -> bool:
        return self._final_edited

    def reset_final_prompt(self) -> None:
        self._final_edited = False
        self._recompose()

    def findings(self) -> list[Finding]:
        return self.editor.findings()

    def apply_fix(self, finding: Finding) -> bool:
        if finding.target is Target.NEGATIVE:
            if finding.replacement is None:
                return False
            cursor = QTextCursor(self.negative_edit.document())
            cursor.beginEditBlock()
            cursor.select(QTextCursor.SelectionType.Document)
            cursor.insertText(finding.apply(self.negative_edit.toPlainText()))
            cursor.endEditBlock()
            self.editor.lint_now()
            return True
        return self.editor.apply_fix(finding)

    # -- reactions
    def _on_prompt_edited(self) -> None:
        self._recompose()
        self.promptChanged.emit(self.prompt())

    def _fit_negative(self, max_lines: int = 5) -> None:
        """The negative prompt's box tall enough for all its lines (up to ``max_lines``; more scroll)."""
        edit = self.negative_edit
        doc = edit.document()
        lines, block = 0, doc.begin()
        while block.isValid():
            lines += max(1, block.layout().lineCount())
            block = block.next()
        margins = edit.contentsMargins()
        frame = 2 * (edit.frameWidth() + round(doc.documentMargin())) + margins.top() + margins.bottom()
        height = min(max(lines, 2), max_lines) * edit.fontMetrics().lineSpacing() + frame + 2
        if edit.minimumHeight() != height:
            edit.setMinimumHeight(height)

    def _on_negative_edited(self) -> None:
        self.editor.schedule_lint()
        self.negativePromptChanged.emit(self.negative_prompt())

    def _apply_preset(self, index: int) -> None:
        key = self.preset_box.itemData(index)
        if key in NEGATIVE_PRESETS:
            cursor = QTextCursor(self.negative_edit.document())
            cursor.beginEditBlock()
            cursor.select(QTextCursor.SelectionType.Document)
            cursor.insertText(NEGATIVE_PRESETS[key])
            cursor.endEditBlock()
        with QSignalBlocker(self.preset_box):
            self.preset_box.setCurrentIndex(0)

    def _on_final_edited(self) -> None:
        if self.final_edit.toPlainText() != self.compiled_prompt():
            self._final_edited = True
        self._update_final_state()
        self.finalPromptChanged.emit(self.final_prompt())

    def _recompose(self) -> None:
        if not self._final_edited:
            compiled = self.compiled_prompt()
            if compiled != self.final_edit.toPlainText():
                with QSignalBlocker(self.final_edit):
                    self.final_edit.setPlainText(compiled)
                self.finalPromptChanged.emit(compiled)
        self._update_final_state()

    def _update_final_state(self) -> None:
        if self._final_edited:
            self.final_state.setText("<i>edited by hand — kept until you reset it</i>")
        elif self._clause.strip() and not prompt_says_clause(self.prompt(), self._clause):
            self.final_state.setText("<i>prompt + sketch clause</i>")
        elif self._clause.strip():
            self.final_state.setText("<i>the prompt already says what the sketch shows</i>")
        else:
            self.final_state.setText("")
        self.reset_button.setEnabled(self._final_edited)

    def _update_clause_label(self) -> None:
        if self._clause.strip():
            self.clause_label.setText(self._clause)
            self.clause_label.setStyleSheet("")
        else:
            self.clause_label.setText("Nothing sketched yet: draw a box for each subject.")
            self.clause_label.setStyleSheet("color: #777777;")

    def _show_findings(self, findings: list[Finding]) -> None:
        for row in self._rows:
            self.findings_layout.removeWidget(row)
            row.deleteLater()
        self._rows = []
        text = self.prompt()
        # fixable ones first, then by severity and position
        ranked = sorted(findings, key=lambda f: (f.replacement is None, -list(Severity).index(f.severity), f.span))
        for f in ranked[:MAX_FINDING_ROWS]:
            excerpt = ""
            if f.target is Target.PROMPT and f.span[1] > f.span[0]:
                excerpt = text[f.span[0]: f.span[1]]
                if len(excerpt) > 30:
                    excerpt = excerpt[:28] + "…"
            row = FindingRow(f, excerpt, self.findings_area)
            row.fixClicked.connect(self.apply_fix)
            self.findings_layout.insertWidget(self.findings_layout.count() - 1, row)
            self._rows.append(row)
        hidden = len(findings) - len(self._rows)
        self.more_findings.setText(f"… and {hidden} more: hover the underlined text" if hidden > 0 else "")
        self.more_findings.setVisible(hidden > 0)
        self.findings_area.setVisible(bool(findings))

    def finding_rows(self) -> list[FindingRow]:
        return list(self._rows)


__all__ = ["PromptPanel", "PromptEditor", "PromptHighlighter", "FindingRow", "compose_prompt", "prompt_says_clause"]
