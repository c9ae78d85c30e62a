"""The latent scatter through the window: capped and downsampled, it still shows every class and the picked
marker; what does not change the plot (metrics, new weights with the Inside page hidden) does not repaint it; and
while training, newer weights reach the Generated image and the Inside page through a redraw pass, not inside the
message handler."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import QPoint

from engine.messages import RunStatus
from gui.panels.latent import MAX_POINTS

from .conftest import SMALL_TRAIN, make_tiny
from .window_helpers import click_latent, train_to_end


def rare_class_dataset():
    """10,000 test images: classes 0 and 1 everywhere, class 2 only in the last four (beyond any prefix cap)."""
    ds = make_tiny(n_test=10_000)
    y = ds.y_test % 2
    y[-4:] = 2
    return dataclasses.replace(ds, y_test=y)


def pixel(w, x: float, y: float) -> QPoint:
    lp = w.latent
    return lp.plot_widget.mapFromScene(lp.scene_pos_of(x, y))


def painted_by(w, item, points: np.ndarray, radius: int = 0) -> bool:
    """Does hiding ``item`` change what the plot shows within ``radius`` pixels of any of ``points`` (plot
    coordinates)?"""
    lp = w.latent
    with_it = lp.plot_widget.grab().toImage()
    item.setVisible(False)
    without = lp.plot_widget.grab().toImage()
    item.setVisible(True)
    near = [
        pixel(w, *p) + QPoint(dx, dy)
        for p in points
        for dx in range(-radius, radius + 1)
        for dy in range(-radius, radius + 1)
    ]
    return any(with_it.pixel(q) != without.pixel(q) for q in near)


@pytest.mark.slow
def test_capped_scatter_shows_every_class_and_the_picked_marker(qtbot, make_window):
    ds = rare_class_dataset()
    w = make_window(dataset=ds, train=SMALL_TRAIN.replace(epochs=1, latent_examples=10_000))
    train_to_end(qtbot, w)
    lp = w.latent
    assert len(lp.shown.means) == 10_000
    assert len(lp.points) <= MAX_POINTS + len(lp.items)  # capped ...
    assert np.isin(np.flatnonzero(ds.y_test == 2), lp.examples).sum() == 2  # ... its share of the rare class kept
    drawn = [np.stack(it.getData(), 1) for it in lp.items]
    assert [len(d) > 0 for d in drawn] == [True, True, True]
    assert sum(len(d) for d in drawn) <= len(lp.points)  # one per class and screen pixel
    assert painted_by(w, lp.items[2], drawn[2])  # the four rare points are on screen among the others

    # a click on a rare point: the example under it is selected (the points and their examples stay paired)
    x, y = drawn[2][0]
    click_latent(qtbot, w, x, y)
    chosen = w.state.example
    assert chosen is not None
    k = int(np.flatnonzero(lp.examples == chosen)[0])
    pw, ph = lp.vb.viewPixelSize()
    assert abs(lp.points[k, 0] - x) <= 1.5 * pw and abs(lp.points[k, 1] - y) <= 1.5 * ph

    # the marker is drawn where the pick is, and stays there through the next (downsampled) redraw
    mx, my = lp.marker_pos
    assert np.allclose(np.stack(lp.marker.getData(), 1), [[mx, my]])
    assert painted_by(w, lp.marker, [(mx, my)], radius=9)
    newer = dataclasses.replace(lp.shown, step=lp.shown.step + 1, means=lp.shown.means * 1.01)
    w.state.set_latent(newer)
    qtbot.waitUntil(lambda: lp.shown is newer, timeout=5000)
    assert np.allclose(np.stack(lp.marker.getData(), 1), [lp.to_plane(w.state.picked)])
    assert painted_by(w, lp.marker, [lp.marker_pos], radius=9)
    assert all(len(it) for it in lp.items)


@pytest.mark.slow
def test_metrics_and_new_weights_do_not_repaint_the_scatter_when_the_inside_page_is_hidden(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    assert not w.inside.isVisible() and w.state.history.epochs
    qtbot.wait(200)  # the last redraws after the run
    changes = []
    w.latent.plot_widget.scene().changed.connect(lambda regions: changes.append(regions))
    for _ in range(5):  # what a run sends many times a second
        w.state.history_grew.emit()
        w.state.set_snapshot(w.state.snapshot)
    qtbot.wait(300)
    assert changes == []
    w.show_page(w.inside)  # the page decodes with the newest weights once it is shown
    qtbot.waitUntil(lambda: w.inside.result is not None, timeout=5000)


@pytest.mark.slow
def test_new_weights_reach_the_generated_image_by_a_redraw_pass_while_training(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    x0, x1, y0, y1 = w.latent.view_rect()
    click_latent(qtbot, w, (x0 + x1) / 2, (y0 + y1) / 2)
    step = w.state.snapshot.step
    caption = w.generated.coords
    assert f"decoder at step {step:,}<" in caption.text()
    w.state.set_status(RunStatus.RUNNING)  # as while a run trains
    w.state.set_snapshot(dataclasses.replace(w.state.snapshot, step=step + 7))
    assert f"decoder at step {step:,}<" in caption.text()  # not decoded inside the message's handler ...
    qtbot.waitUntil(lambda: f"decoder at step {step + 7:,}<" in caption.text(), timeout=5000)  # ... but soon after
    assert w.redraws.counts["generated"] == 1
    w.state.set_status(RunStatus.FINISHED)  # at rest: at once
    w.state.set_snapshot(dataclasses.replace(w.state.snapshot, step=step + 9))
    assert f"decoder at step {step + 9:,}<" in caption.text()


@pytest.mark.slow
def test_new_weights_reach_the_inside_page_by_a_redraw_pass_while_training(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    w.show_page(w.inside)
    qtbot.waitUntil(lambda: w.inside.result is not None, timeout=5000)
    shown = w.inside.result
    w.state.set_status(RunStatus.RUNNING)  # as while a run trains
    w.state.set_snapshot(dataclasses.replace(w.state.snapshot, step=w.state.snapshot.step + 3))
    assert w.inside.result is shown  # not decoded inside the message's handler ...
    try:
        qtbot.waitUntil(lambda: w.inside.result is not shown, timeout=20_000)  # ... but by a redraw pass (budgeted)
    except qtbot.TimeoutError:
        why = dict(
            evaluating=w.training.evaluating,
            counts=w.redraws.counts,
            dirty=w.inside._dirty,
            visible=w.inside.isVisible(),
            balance=w.redraws.budget.balance,
            status=w.state.status,
        )
        raise AssertionError(f"no redraw pass decoded the new weights: {why}") from None
    assert w.redraws.counts["inside"] == 1
    w.state.set_status(RunStatus.FINISHED)
    shown = w.inside.result
    w.state.set_snapshot(dataclasses.replace(w.state.snapshot, step=w.state.snapshot.step + 5))
    assert w.inside.result is not shown  # at rest: at once
