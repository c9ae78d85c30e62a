"""Driving the window as a person would: shared by the window tests (clicks and drags on the latent plot with real
mouse events, a run trained to its end)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from engine.snapshot import SnapshotModel

from .conftest import SMALL_TRAIN, wait_finished

LONG = SMALL_TRAIN.replace(epochs=100_000)


def click_latent(qtbot, w, x, y, button=Qt.MouseButton.LeftButton):
    """A real mouse click on the latent plot at plot coordinates (x, y)."""
    lp = w.latent
    pos = lp.plot_widget.mapFromScene(lp.scene_pos_of(x, y))
    qtbot.mouseMove(lp.plot_widget.viewport(), pos)
    qtbot.mouseClick(lp.plot_widget.viewport(), button, pos=pos)
    # a pick within a frame of the last decode is decoded when that frame's timer ends: wait for it
    timer = w.findChild(QTimer, "decodeTimer")
    qtbot.waitUntil(lambda: not timer.isActive(), timeout=5000)


def drag_latent(qtbot, w, a_xy, b_xy, steps=8):
    """Press at a, move in steps to b with the left button held, release (real QMouseEvents)."""

    lp = w.latent
    vp = lp.plot_widget.viewport()
    a = QPointF(lp.plot_widget.mapFromScene(lp.scene_pos_of(*a_xy)))
    b = QPointF(lp.plot_widget.mapFromScene(lp.scene_pos_of(*b_xy)))
    left, none, mods = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier

    def send(kind, p, button, buttons):
        ev = QMouseEvent(kind, p, vp.mapToGlobal(p), button, buttons, mods)
        QApplication.sendEvent(vp, ev)

    send(QEvent.Type.MouseMove, a, none, none)
    send(QEvent.Type.MouseButtonPress, a, left, left)
    for t in np.linspace(0, 1, steps)[1:]:
        qtbot.wait(25)  # pyqtgraph drops mouse moves that come faster than its maximum rate
        send(QEvent.Type.MouseMove, a + (b - a) * float(t), none, left)
    send(QEvent.Type.MouseButtonRelease, b, left, none)


def train_to_end(qtbot, w):
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, w)
    qtbot.waitUntil(lambda: w.latent.shown is not None, timeout=5000)


def expected_image(w, x, y):
    z = w.latent.to_latent(x, y)
    return SnapshotModel(w.state.snapshot).decode(z[None])[0], z


def status_line(w) -> str:
    """The status bar's message as a user can read it: whole, or, when the window cut it short, its tooltip."""
    bar = w.statusBar()
    return bar.toolTip() or bar.currentMessage()
