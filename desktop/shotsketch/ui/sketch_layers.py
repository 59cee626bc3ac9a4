"""What the sketch canvas draws besides subject boxes: region bands (sky, ground, water, the
horizon) under everything, and group boxes (several boxes under one name) over the frame.

Both are drawn, not edited: a person changes them by drafting again or in the layout file.
Painting happens in view (device) coordinates, given the frame's rectangle there.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen

from shotsketch.core.layout import Band, BandKind, Box, Layout

BAND_COLORS = {
    BandKind.SKY: QColor(120, 180, 235, 70),
    BandKind.WATER: QColor(40, 110, 200, 70),
    BandKind.GROUND: QColor(120, 150, 70, 70),
    BandKind.HORIZON: QColor(90, 90, 90, 140),
}


def _rect(frame: QRectF, box: Box) -> QRectF:
    return QRectF(frame.left() + box.left * frame.width(), frame.top() + box.top * frame.height(),
                  box.width * frame.width(), box.height * frame.height())


def _label_font(painter: QPainter, italic: bool = False) -> QFont:
    font = QFont(painter.font())
    font.setPixelSize(11)
    font.setItalic(italic)
    return font


def paint_regions(painter: QPainter, frame: QRectF, layout: Layout) -> None:
    """Each region as a tinted band with its name at the band's left edge."""
    if not layout.regions:
        return
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    painter.setFont(_label_font(painter, italic=True))
    for band in layout.regions:
        rect = _rect(frame, band.box)
        color = BAND_COLORS[band.kind]
        if band.kind is BandKind.HORIZON:
            painter.setPen(QPen(color, 1.5, Qt.PenStyle.DashDotLine))
            y = rect.center().y()
            painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
        else:
            painter.fillRect(rect, color)
        painter.setPen(QColor(40, 40, 40, 170))
        painter.drawText(rect.adjusted(6, 2, -6, -2), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                         _band_label(band))
    painter.restore()


def _band_label(band: Band) -> str:
    return band.name if band.name.casefold() == band.kind.value else f"{band.name} ({band.kind.value})"


def paint_groups(painter: QPainter, frame: QRectF, layout: Layout, t: float) -> None:
    """Each group's boxes at clip time ``t``, dashed in the group's colour, the first one labelled
    with the name and the count ("adults x5")."""
    if not layout.groups:
        return
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setFont(_label_font(painter))
    for group in layout.groups:
        color = QColor(group.color)
        fill = QColor(color)
        fill.setAlpha(45)
        for i, box in enumerate(group.boxes_at(t)):
            rect = _rect(frame, box)
            painter.setPen(QPen(color, 1.5, Qt.PenStyle.DashLine))
            painter.setBrush(fill)
            painter.drawRect(rect)
            if i == 0:
                painter.setPen(color.darker(140))
                painter.drawText(QPointF(rect.left() + 3, rect.top() - 4), f"{group.name} \u00d7{group.count}")
        painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.restore()
