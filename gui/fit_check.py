"""Does every title and number on show fit its widget? ``clipped_texts(window)`` lists the texts that do not:
single-line labels, buttons and group-box titles wider than their widget, wrapped labels taller than their widget,
tab labels wider than their tab, combo-box entries wider than the box, plot titles wider than their plot, axis
tick labels that overlap, and the status-bar message wider than the room it has. Used by the window tests at the
smallest size (1024×700) and by scripts/screenshots.py."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QGroupBox,
    QLabel,
    QProgressBar,
    QStatusBar,
    QTabBar,
    QToolButton,
    QWidget,
)

from gui.status_bar import message_room

_TAG = re.compile(r"<[^>]+>")


def _plain(text: str) -> str:
    text = _TAG.sub("", text.replace("<br>", "\n"))
    return text.replace("&nbsp;", " ").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")


def _shown(w: QWidget) -> bool:
    return w.isVisible() and w.width() > 0 and w.height() > 0


def _name(w: QWidget) -> str:
    return w.objectName() or type(w).__name__


def clipped_texts(root: QWidget) -> list[str]:
    out: list[str] = []
    for label in root.findChildren(QLabel):
        text = _plain(label.text())
        if not _shown(label) or not text.strip() or label.pixmap() is not None and not label.pixmap().isNull():
            continue
        fm, room = label.fontMetrics(), label.contentsRect()
        if label.wordWrap():
            need = label.heightForWidth(label.width())
            if need > label.height() + 1:
                out.append(f"label {_name(label)} needs {need} px of height, has {label.height()}: {text[:60]!r}")
            words = max(text.split(), key=fm.horizontalAdvance, default="")
            if fm.horizontalAdvance(words) > room.width():
                out.append(f"label {_name(label)}: the word {words!r} is wider than {room.width()} px")
        else:
            if label.buddy() is not None:  # "&Class": the ampersand marks the shortcut, it is not drawn
                text = text.replace("&&", "\0").replace("&", "").replace("\0", "&")
            if fm.height() > room.height() + 1:
                out.append(f"label {_name(label)}: {text[:60]!r} needs {fm.height()} px of height, has {room.height()}")
            for line in text.split("\n"):
                if fm.horizontalAdvance(line) > room.width():
                    out.append(
                        f"label {_name(label)}: {line[:60]!r} needs {fm.horizontalAdvance(line)} px, has {room.width()}"
                    )
    for box in root.findChildren(QGroupBox):
        title = QGroupBox.title(box)  # a panel may name an attribute "title"
        if _shown(box) and title and box.fontMetrics().horizontalAdvance(title) > box.width() - 16:
            out.append(f"group {_name(box)}: title {title!r} wider than {box.width() - 16} px")
    for button in root.findChildren(QAbstractButton):
        text = button.text().replace("&&", "\0").replace("&", "").replace("\0", "&")
        if isinstance(button, QToolButton) and button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly:
            continue  # its text is its tooltip
        if _shown(button) and text and button.fontMetrics().horizontalAdvance(text) > button.width() - 8:
            out.append(f"button {_name(button)}: {text!r} wider than {button.width() - 8} px")
    for bar in root.findChildren(QTabBar):
        if not _shown(bar):
            continue
        for i in range(bar.count()):
            text = bar.tabText(i).replace("&&", "&")
            if bar.fontMetrics().horizontalAdvance(text) > bar.tabRect(i).width() - 4:
                out.append(f"tab {text!r} of {_name(bar.parentWidget() or bar)} wider than its tab")
    for combo in root.findChildren(QComboBox):
        if _shown(combo) and combo.currentText():
            room = combo.width() - 28  # the arrow and the frame
            if combo.fontMetrics().horizontalAdvance(combo.currentText()) > room:
                out.append(f"combo {_name(combo)}: {combo.currentText()!r} wider than {room} px")
    for bar in root.findChildren(QProgressBar):
        if _shown(bar) and bar.isTextVisible() and bar.text():
            if bar.fontMetrics().horizontalAdvance(bar.text()) > bar.width() - 6:
                out.append(f"progress {_name(bar)}: {bar.text()!r} wider than {bar.width() - 6} px")
    out += _plots(root)
    for bar in root.findChildren(QStatusBar):
        message = bar.currentMessage()
        if _shown(bar) and message:
            room = message_room(bar)
            if bar.fontMetrics().horizontalAdvance(message) > room:
                out.append(f"status message {message[:60]!r} wider than {room} px")
    return out


def _plots(root: QWidget) -> list[str]:
    import pyqtgraph as pg

    out = []
    for pw in root.findChildren(pg.PlotWidget):
        if not _shown(pw):
            continue
        item = pw.getPlotItem()
        title = item.titleLabel
        if title.isVisible() and title.text:
            m = title.item.document().documentMargin()  # blank space around the text, inside its box
            box = title.item.boundingRect().adjusted(m, m, -m, -m)
            r = pw.mapFromScene(title.item.mapRectToScene(box)).boundingRect()
            if r.left() < 0 or r.right() > pw.width():
                text = _plain(title.text)[:60]
                out.append(
                    f"plot {_name(pw)}: title {text!r} spans x {r.left()}..{r.right()}, the plot 0..{pw.width()}"
                )
        for side in ("bottom", "left"):
            axis = item.getAxis(side)
            if axis.isVisible():
                out += [f"plot {_name(pw)}: {side} axis {t}" for t in _overlapping_ticks(axis, side)]
    return out


def _overlapping_ticks(axis, side: str) -> list[str]:
    """Tick labels of ``axis``, as pyqtgraph would draw them now, that overlap a neighbour ("0.20.40.6")."""
    from PySide6.QtGui import QPainter, QPixmap

    pixmap = QPixmap(1, 1)
    painter = QPainter(pixmap)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    if not specs:
        return []
    texts = sorted(specs[2], key=lambda t: t[0].left() if side == "bottom" else t[0].top())
    out = []
    for (a, _, ta), (b, _, tb) in zip(texts, texts[1:]):
        # side by side, numbers need a space between them; stacked, their boxes hold the font's full height while
        # digits have no descenders, so boxes may overlap by a few pixels before the glyphs do
        gap = b.left() - a.right() if side == "bottom" else b.top() - a.bottom() + 3
        if gap < 2 if side == "bottom" else gap < 0:
            out.append(f"labels {ta!r} and {tb!r} {'touch' if gap >= 0 else 'overlap'} ({gap:.0f} px apart)")
    return out
