"""A widget that shows one numpy image (C, H, W) in [0, 1], scaled to fit with square pixels, or a hint."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.imaging import to_qimage


class ImageView(QWidget):
    """``set_image(array)`` keeps the exact array shown (``.array``) and its QImage (``.qimage``).
    A left click on the image emits ``clicked(column, row)`` in image pixels."""

    clicked = Signal(int, int)

    def __init__(self, placeholder: str = "", name: str = "imageView", min_side: int = 96, parent=None):
        super().__init__(parent)
        self.setObjectName(name)
        self.setAccessibleName(name)
        self.array: np.ndarray | None = None
        self.qimage: QImage | None = None
        self.placeholder = placeholder
        self.smooth = False
        self.setMinimumSize(min_side, min_side)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(220, 220)

    def set_image(self, array: np.ndarray | None) -> None:
        if array is None:
            self.array, self.qimage = None, None
        else:
            self.array = np.asarray(array)
            self.qimage = to_qimage(self.array)
        self.update()

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        if self.qimage is None:
            self.update()

    def target_rect(self) -> QRect:
        """Where the image is drawn: the largest rectangle of the image's aspect that fits."""
        if self.qimage is None:
            return QRect()
        w, h = self.qimage.width(), self.qimage.height()
        avail = self.contentsRect().adjusted(2, 2, -2, -2)
        s = min(avail.width() / w, avail.height() / h)
        if s >= 2 and not self.smooth:
            s = float(int(s))  # whole-number zoom: every pixel the same size (below 2× it would leave the panel
            # half empty: a small grid is then scaled to fit like a large one)
        tw, th = max(1, int(w * s)), max(1, int(h * s))
        return QRect(avail.x() + (avail.width() - tw) // 2, avail.y() + (avail.height() - th) // 2, tw, th)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt name
        r = self.target_rect()
        p = event.position().toPoint()
        if event.button() == Qt.MouseButton.LeftButton and self.qimage is not None and r.contains(p):
            col = (p.x() - r.x()) * self.qimage.width() // max(r.width(), 1)
            row = (p.y() - r.y()) * self.qimage.height() // max(r.height(), 1)
            self.clicked.emit(int(col), int(row))
        super().mousePressEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt name
        p = QPainter(self)
        if self.qimage is None:
            p.setPen(QColor("#8a9096"))
            p.drawText(
                self.rect().adjusted(8, 8, -8, -8),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.placeholder,
            )
            p.end()
            return
        r = self.target_rect()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
        p.drawImage(r, self.qimage)
        p.setPen(QPen(QColor("#d0d4d9"), 1))
        p.drawRect(r.adjusted(0, 0, -1, -1))
        p.end()
