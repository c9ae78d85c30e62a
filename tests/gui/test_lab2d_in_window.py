"""The 2-D Lab through the real window: drawing and erasing with the mouse, a CSV file good and bad, Start / Pause /
Step / Reset, the live views (density maps, samples, ellipses, manifold, posteriors), hovering a point."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from engine.lab2d import points as P
from gui.lab2d.panel import BRUSH_DAB


def _lab(make_window, qtbot):
    w = make_window()
    w.show_page(w.lab2d)
    qtbot.waitUntil(lambda: w.lab2d.mixture_view.widget.isVisible())
    return w, w.lab2d


def _pixel(view, x: float, y: float) -> QPoint:
    """The viewport pixel of data point (x, y), from the view box's rectangle on screen and its visible range
    (not through the panel's own mapping)."""
    rect = view.widget.mapFromScene(view.vb.sceneBoundingRect()).boundingRect()
    (x0, x1), (y0, y1) = view.vb.viewRange()
    px = rect.left() + (x - x0) / (x1 - x0) * rect.width()
    py = rect.top() + (y1 - y) / (y1 - y0) * rect.height()  # y grows upwards in data, downwards on screen
    return QPoint(round(px), round(py))


def _near(points, x, y, r):
    return np.hypot(points[:, 0] - x, points[:, 1] - y) <= r


def test_drawing_with_the_mouse_adds_points_at_the_pointer_and_right_drag_erases(make_window, qtbot):
    w, lab = _lab(make_window, qtbot)
    qtbot.mouseClick(lab.controls.clear, Qt.MouseButton.LeftButton)
    assert len(lab.points) == 0
    lab.controls.brush.setValue(0.1)
    view = lab.mixture_view
    vp = view.widget.viewport()
    px = max(view.vb.viewPixelSize())  # data units per pixel: the rounding of a pointer position
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=_pixel(view, 1.0, -0.5))
    assert len(lab.points) == BRUSH_DAB
    assert _near(lab.points, 1.0, -0.5, 0.1 + 2 * px).all()
    assert np.allclose(lab.points.mean(0), (1.0, -0.5), atol=0.1)
    for x in np.linspace(1.0, -1.0, 9):  # a stroke to (−1, 1.5): dabs along the way
        QTest.mouseMove(vp, _pixel(view, x, -0.5 + (1.0 - x)))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=_pixel(view, -1.0, 1.5))
    assert len(lab.points) > 3 * BRUSH_DAB
    assert _near(lab.points, -1.0, 1.5, 0.1 + 2 * px).sum() >= BRUSH_DAB
    assert (np.abs(lab.points[:, 0] + lab.points[:, 1] - 0.5) <= 0.15 + 3 * px).all()  # all on the stroke's line
    # the other view draws on the same data
    qtbot.mousePress(lab.vae_view.widget.viewport(), Qt.MouseButton.LeftButton, pos=_pixel(lab.vae_view, 2.0, 2.0))
    qtbot.mouseRelease(lab.vae_view.widget.viewport(), Qt.MouseButton.LeftButton, pos=_pixel(lab.vae_view, 2.0, 2.0))
    assert _near(lab.points, 2.0, 2.0, 0.1 + 2 * px).sum() == BRUSH_DAB
    # right button: erase within the brush
    n = len(lab.points)
    qtbot.mousePress(vp, Qt.MouseButton.RightButton, pos=_pixel(view, 2.0, 2.0))
    qtbot.mouseRelease(vp, Qt.MouseButton.RightButton, pos=_pixel(view, 2.0, 2.0))
    assert len(lab.points) == n - BRUSH_DAB and not _near(lab.points, 2.0, 2.0, 0.05).any()
    assert lab.controls.data_label.text().startswith(f"{len(lab.points):,} points")
    drawn = view.points.getData()
    assert np.allclose(np.stack(drawn, 1), lab.points)  # what is on screen is the data
    assert w.errors == []


def test_a_bad_csv_keeps_the_previous_points_and_a_good_one_replaces_them(make_window, qtbot, tmp_path):
    w, lab = _lab(make_window, qtbot)
    before = lab.points.copy()
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n3,oops\n")
    lab.ask_csv_path = lambda: str(bad)
    qtbot.mouseClick(lab.controls.open_csv, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(w.errors), timeout=10_000)
    title, text = w.errors[-1]
    assert text == "'bad.csv': row 3, column 2: 'oops' is not a number"
    assert np.array_equal(lab.points, before)
    assert "previous points are kept" in lab.controls.message.text()
    good = tmp_path / "good.csv"
    good.write_text("".join(f"{i / 10},{-i / 10}\n" for i in range(50)))
    lab.ask_csv_path = lambda: str(good)
    qtbot.mouseClick(lab.controls.open_csv, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(lab.points) == 50, timeout=10_000)
    assert np.allclose(lab.points[:, 1], -lab.points[:, 0]) and lab.data_name == "good.csv"
    assert len(w.errors) == 1
    qtbot.waitUntil(lambda: lab._csv_worker is None)


def test_step_start_pause_reset_and_the_live_views(make_window, qtbot):
    w, lab = _lab(make_window, qtbot)
    c = lab.controls
    c.n_points.setValue(400)
    c.hidden.setValue(16)
    assert len(lab.points) == 400
    qtbot.mouseClick(c.step, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: lab.frame is not None and lab.frame.tick == 1 and lab.map_redraws >= 1, timeout=20_000)
    assert lab.frame.vae_steps == 1  # one batch, one EM step
    qtbot.waitUntil(lambda: lab.redraws >= 1)
    # the views hold the frame: samples, the mixture's ellipses, the VAE's warped grid, posteriors, density maps
    assert len(lab.mixture_view.samples.getData()[0]) == len(lab.vae_view.samples.getData()[0]) == 1000
    x, _ = lab.mixture_view.lines.getData()
    assert np.isnan(x).sum() == 8  # eight ellipses, NaN-separated
    x, _ = lab.vae_view.lines.getData()
    assert np.isnan(x).sum() == 22  # 11 + 11 lines of the latent grid
    assert len(lab.latent.means.getData()[0]) == 400
    assert lab.mixture_view.heat.image.shape == lab.vae_view.heat.image.shape == (100, 100)
    assert c.numbers.text().startswith("tick 1 ")
    # Start: ticks and curves grow; the buttons follow
    qtbot.mouseClick(c.start, Qt.MouseButton.LeftButton)
    assert not c.start.isEnabled() and c.pause.isEnabled() and not c.step.isEnabled()
    qtbot.waitUntil(lambda: lab.frame.tick >= 6 and lab.map_redraws >= 2, timeout=30_000)
    ticks, gmm = lab.curves.items["gmm"].getData()
    assert len(ticks) >= 6 and (np.diff(gmm) >= -1e-9).all()  # EM never lowers the log-likelihood
    assert np.isfinite(lab.curves.items["iwae"].getData()[1]).all()
    # β changes while running
    c.beta.setValue(0.5)
    qtbot.waitUntil(lambda: lab.run.vae.cfg.beta == 0.5, timeout=10_000)
    # Train on: the IWAE-8 bound while running, where β no longer applies; and back to the ELBO
    assert c.train_k.text() == "ELBO" and c.beta.isEnabled()
    c.train_k.setValue(8)
    assert c.train_k.text() == "IWAE, K = 8" and not c.beta.isEnabled()
    qtbot.waitUntil(lambda: lab.run.vae.cfg.train_k == 8, timeout=10_000)
    steps = lab.frame.vae_steps
    qtbot.waitUntil(lambda: lab.frame.vae_steps > steps, timeout=10_000)  # trains on the IWAE bound
    c.train_k.setValue(1)
    qtbot.waitUntil(lambda: lab.run.vae.cfg.train_k == 1 and c.beta.isEnabled(), timeout=10_000)
    qtbot.mouseClick(c.pause, Qt.MouseButton.LeftButton)
    qtbot.wait(300)
    t = lab.frame.tick
    qtbot.wait(400)
    assert lab.frame.tick == t and c.start.isEnabled()
    # hovering a point shows its q(z|x) in the latent view and its decoded mean in the VAE's view
    i = 17
    QTest.mouseMove(lab.vae_view.widget.viewport(), _pixel(lab.vae_view, *lab.points[i]))
    qtbot.waitUntil(lambda: len(lab.latent.hover.getData()[0]) > 0)
    hx, hy = lab.vae_view.hover_marks.getData()
    assert np.allclose((hx[0], hy[0]), lab.points[i]) and np.allclose((hx[1], hy[1]), lab.frame.decoded[i])
    ex, ey = lab.latent.hover.getData()
    centre = np.array([np.nanmax(ex) + np.nanmin(ex), np.nanmax(ey) + np.nanmin(ey)]) / 2
    assert np.allclose(centre, lab.frame.q_mean[i], atol=1e-3)  # the hovered point's 2σ ellipse
    assert f"Point #{i}: mixture p(z|x)" in c.message.text()
    # Reset: the models and curves are gone; the points stay
    pts = lab.points.copy()
    qtbot.mouseClick(c.reset, Qt.MouseButton.LeftButton)
    assert lab.run is None and lab.frame is None and len(lab.curves.items["gmm"].getData()[0] or []) == 0
    assert lab.vae_view.heat.image is None and np.array_equal(lab.points, pts)


def test_drawing_while_training_feeds_the_models_and_d1_draws_a_curve(make_window, qtbot):
    w, lab = _lab(make_window, qtbot)
    c = lab.controls
    c.latent_dim.setCurrentIndex(c.latent_dim.findData(1))
    c.layers.setValue(3)
    c.components.setValue(3)
    qtbot.mouseClick(c.clear, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(c.start, Qt.MouseButton.LeftButton)
    assert lab.run is None and "at least 3 points" in c.message.text()  # nothing to train on yet
    rng = np.random.default_rng(0)
    lab.set_points(np.concatenate([P.brush(ctr, 0.3, 100, rng) for ctr in ((-1.5, 0), (0, 1), (1.5, 0))]), "blobs")
    qtbot.mouseClick(c.start, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: lab.frame is not None and lab.frame.tick >= 2, timeout=30_000)
    assert lab.run.vae.cfg.layers == 3 and len(lab.run.vae.model.decoder) == 2 * 3 + 1  # three hidden layers
    view = lab.vae_view
    qtbot.mousePress(view.widget.viewport(), Qt.MouseButton.LeftButton, pos=_pixel(view, 0.0, -1.0))
    qtbot.mouseRelease(view.widget.viewport(), Qt.MouseButton.LeftButton, pos=_pixel(view, 0.0, -1.0))
    assert len(lab.points) == 300 + BRUSH_DAB
    qtbot.waitUntil(lambda: lab.frame.data_version == lab.data_version, timeout=20_000)
    assert lab.frame.q_mean.shape == (300 + BRUSH_DAB, 1)  # the running models took the new points
    qtbot.waitUntil(lambda: lab.redraws >= 3)
    x, _ = view.lines.getData()
    assert np.isnan(x).sum() == 1  # d = 1: one curve μθ(z)
    assert lab.latent.vb.state["aspectLocked"] is False and len(lab.latent.prior.getData()[0]) == 200
    # another tab on show: the models keep training, the hidden views wait; shown again, they catch up
    w.ui.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: not lab.isVisible())
    drawn, tick = lab.redraws, lab.frame.tick
    qtbot.waitUntil(lambda: lab.frame.tick >= tick + 3, timeout=30_000)
    assert lab.redraws == drawn
    w.show_page(lab)
    qtbot.waitUntil(lambda: lab.redraws > drawn)
