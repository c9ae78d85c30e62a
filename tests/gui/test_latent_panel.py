"""The latent scatter on its own: the view follows the points with hysteresis (still while they stay inside),
a zoom or pan by the user stops following, and the "A" button resumes it."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from engine.messages import LatentSnapshot
from gui.panels.latent import LatentPanel
from gui.state import StudioState


def snap(step: int, means: np.ndarray, classes: int = 3) -> LatentSnapshot:
    n = len(means)
    return LatentSnapshot(
        step, 0, means.astype(np.float32), np.zeros_like(means, np.float32), np.arange(n) % classes, np.arange(n)
    )


@pytest.fixture
def panel(qtbot):
    p = LatentPanel(StudioState())
    qtbot.addWidget(p)
    p.set_classes(("a", "b", "c"), labelled=True)
    p.resize(600, 500)
    p.show()
    qtbot.waitExposed(p)
    return p


def show(panel, s):
    panel.set_snapshot(s)
    assert panel.refresh(force=True)


def inside(panel, pts) -> bool:
    x0, x1, y0, y1 = panel.view_rect()
    return bool(
        (pts[:, 0] >= x0).all() and (pts[:, 0] <= x1).all() and (pts[:, 1] >= y0).all() and (pts[:, 1] <= y1).all()
    )


def test_view_follows_points_with_hysteresis(panel):
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, (600, 2))
    show(panel, snap(1, base))
    assert inside(panel, base)
    first = panel.view_rect()
    moved = []
    panel.view_changed.connect(lambda: moved.append(panel.view_rect()))
    for k in range(2, 8):  # small moves: the view stays still (no relabelled axes, no new manifold grid)
        show(panel, snap(k, base * 0.98 + rng.normal(0, 0.01, base.shape)))
    assert moved == [] and panel.view_rect() == first
    spread = base * 3.0  # the latent space spreads out: the view follows
    show(panel, snap(9, spread))
    assert moved and inside(panel, spread)
    assert panel.follow
    shrunk = base * 0.2  # and shrinks: a view more than twice the points' extent is re-fitted
    show(panel, snap(10, shrunk))
    x0, x1, _, _ = panel.view_rect()
    assert x1 - x0 < 2.0 * np.ptp(shrunk[:, 0])


def test_user_zoom_stops_following_and_A_resumes(panel, qtbot):
    rng = np.random.default_rng(1)
    pts = rng.normal(0, 1, (300, 2))
    show(panel, snap(1, pts))
    vp = panel.plot_widget.viewport()
    centre = QPointF(vp.width() / 2, vp.height() / 2)
    wheel = QWheelEvent(
        centre,
        QPointF(vp.mapToGlobal(centre.toPoint())),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(vp, wheel)  # zoom in, as a user does with the wheel
    assert not panel.follow
    zoomed = panel.view_rect()
    show(panel, snap(2, pts * 4.0))  # points leave the zoomed view: the user's view is kept
    assert panel.view_rect() == zoomed
    panel.plot.autoBtnClicked()  # the "A" button at the bottom-left of the plot
    assert panel.follow
    assert inside(panel, pts * 4.0)


def test_one_dimensional_latent_has_a_fixed_vertical_band(panel):
    panel.set_latent_dim(1)
    pts = np.random.default_rng(2).normal(0, 2, (200, 1))
    show(panel, snap(1, pts))
    _, _, y0, y1 = panel.view_rect()
    assert y0 < 0 < y1 and y1 - y0 == pytest.approx(2.0 * 1.24)


def test_fit_view_snugs_the_view_unless_the_user_zoomed(panel):
    rng = np.random.default_rng(3)
    pts = rng.normal(0, 1, (400, 2))
    show(panel, snap(1, pts * 1.2))
    show(panel, snap(2, pts * 0.9))  # still inside and not loose: the training-time view keeps its headroom
    x0, x1, _, _ = panel.view_rect()
    assert x1 - x0 > 1.4 * np.ptp(pts[:, 0] * 0.9)
    panel.fit_view()  # what the window calls when training pauses or ends
    x0, x1, y0, y1 = panel.view_rect()
    assert x1 - x0 == pytest.approx(1.24 * np.ptp(pts[:, 0] * 0.9), rel=1e-6)
    assert inside(panel, pts * 0.9)
    panel.vb.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)  # a zoom onto a posterior, say
    assert not panel.follow
    panel.fit_view()
    assert panel.view_rect() == pytest.approx((0, 1, 0, 1))


def test_pca_view_keeps_its_axes_and_fits_a_narrow_panel(panel, qtbot):
    """d > 2: the axes say PC1/PC2 and stay still from snapshot to snapshot (the variance shares, which change
    every time, are in the title); a long title never widens the plot past its panel; the picture does not mirror."""
    panel.set_classes(tuple("abcdefghij"), labelled=True)
    panel.resize(420, 380)
    qtbot.wait(50)
    rng = np.random.default_rng(4)
    base = rng.normal(0, 1, (1000, 8)) * np.linspace(3.0, 0.3, 8)
    labels_seen, firsts = set(), []
    for k in range(6):
        z = base * (1 + 0.05 * k) + rng.normal(0, 0.05, base.shape)
        s = LatentSnapshot(
            123_456 + k, 0, z.astype(np.float32), np.zeros_like(z, np.float32), np.arange(1000) % 10, np.arange(1000)
        )
        show(panel, s)
        labels_seen.add((panel.plot.getAxis("bottom").labelText, panel.plot.getAxis("left").labelText))
        firsts.append(panel.points[0].copy())
        assert "% of var." in panel.plot.titleLabel.text and f"step {123_456 + k:,}" in panel.plot.titleLabel.text
    assert labels_seen == {("PC1 of μ", "PC2 of μ")}
    assert all(np.sign(f[0]) == np.sign(firsts[0][0]) for f in firsts)  # no mirroring along PC1
    qtbot.wait(50)
    inner = panel.plot.sceneBoundingRect()
    assert inner.right() <= panel.plot_widget.viewport().width() + 0.5  # the plot fits inside its widget


def test_only_visible_points_are_drawn_one_per_pixel():
    from gui.scatter_subset import visible_points

    xy = np.array([[0.5, 0.5], [0.52, 0.51], [0.5, 0.9], [2.0, 0.5], [-0.1, 0.2], [0.9, 0.1]])
    # a view of [0, 1] × [0, 1] at 0.1 plot units a pixel: the second point shares the first's pixel, the
    # fourth and fifth lie outside
    np.testing.assert_array_equal(visible_points(xy, (0.0, 1.0, 0.0, 1.0), (0.1, 0.1)), [0, 2, 5])
    # finer pixels tell the first two apart
    np.testing.assert_array_equal(visible_points(xy, (0.0, 1.0, 0.0, 1.0), (0.01, 0.01)), [0, 1, 2, 5])
    assert len(visible_points(np.zeros((0, 2)), (0.0, 1.0, 0.0, 1.0), (0.1, 0.1))) == 0


def test_class_cap_keeps_each_class_share_and_every_class():
    from gui.scatter_subset import class_capped

    labels = np.array([0] * 90 + [1] * 9 + [2])  # class 2 is one point, the last
    keep = class_capped(labels, 100, 50)
    assert np.all(np.diff(keep) > 0)  # in order
    assert [int((labels[keep] == k).sum()) for k in range(3)] == [45, 4, 1]
    np.testing.assert_array_equal(class_capped(labels, 100, 100), np.arange(100))  # under the cap: all
    np.testing.assert_array_equal(class_capped(None, 100, 30), np.arange(30))  # no labels: the first


def test_view_all_fits_the_drawn_points(panel):
    """pyqtgraph's own auto-range ("View all") reads the class items' data bounds."""
    rng = np.random.default_rng(5)
    show(panel, snap(1, rng.normal(0, 1, (300, 2))))
    far = rng.normal(0, 1, (300, 2)) * 0.1 + (40.0, -25.0)
    show(panel, snap(2, np.concatenate([far, far + 1.0])))
    panel.vb.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)  # away from the points
    panel.vb.autoRange(padding=0)
    x0, x1, y0, y1 = panel.view_rect()
    pts = panel.points
    assert x0 <= pts[:, 0].min() and pts[:, 0].max() <= x1 and y0 <= pts[:, 1].min() and pts[:, 1].max() <= y1
    assert x1 - x0 < 2 * np.ptp(pts[:, 0]) + 1.0  # around the points, not the old view
