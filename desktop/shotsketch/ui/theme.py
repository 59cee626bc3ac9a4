"""The look: Qt's Fusion style with a dark palette (video is judged on dark surroundings) and a
small style sheet for the few widgets that need emphasis."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

STYLE_SHEET = """
QDockWidget::title { padding: 4px 6px; background: #2b2d31; }
QToolButton#generateButton { background: #3d6fd1; color: white; font-weight: bold; padding: 4px 14px;
                             border-radius: 4px; }
QToolButton#generateButton:hover { background: #4a7ee0; }
QToolButton#generateButton:pressed { background: #325cb0; }
QFrame#jobRow { border: 1px solid #3a3d42; border-radius: 4px; background: #26282c; }
QFrame#jobRow[state="failed"] { border-color: #a0473c; }
QFrame#jobRow[state="done"] { border-color: #3f7a4a; }
QLabel#jobStatus { color: #b8bcc4; }
QLabel#jobTitle { font-weight: bold; }
QLabel#jobDetail { color: #9aa0a8; }
QToolBar QToolButton:!checked { padding: 3px 8px; }
QLabel#queueEmpty, QLabel#placeholderNote { color: #8a8f98; }
QLabel#statusModel { color: #e0c060; padding: 0 6px; }
QLabel#problemText { color: #e8806c; }
"""


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    p = QPalette()
    base, window, text = QColor("#1e1f22"), QColor("#2b2d31"), QColor("#dfe1e5")
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, QColor("#26282c"))
    p.setColor(QPalette.ColorRole.ToolTipBase, QColor("#3a3d42"))
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, QColor("#34373c"))
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.BrightText, QColor("#ff6b5a"))
    p.setColor(QPalette.ColorRole.Highlight, QColor("#3d6fd1"))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    p.setColor(QPalette.ColorRole.Link, QColor("#6ea0ff"))
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor("#8a8f98"))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b7078"))
    app.setPalette(p)
    app.setStyleSheet(STYLE_SHEET)
