"""Clicking and dragging in the latent plot decodes the point under the pointer, with the model of the moment."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.snapshot import SnapshotModel

from .conftest import SMALL_MODEL, wait_finished
from .window_helpers import LONG, click_latent, drag_latent, expected_image, train_to_end


@pytest.mark.slow
def test_click_decodes_exactly_the_decoder_output(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    x0, x1, y0, y1 = w.latent.view_rect()
    target = (x0 + 0.3 * (x1 - x0), y0 + 0.6 * (y1 - y0))
    with qtbot.waitSignal(w.latent.latent_clicked, timeout=2000) as sig:
        click_latent(qtbot, w, *target)
    x, y = sig.args
    px = (x1 - x0) / w.latent.vb.width()
    assert abs(x - target[0]) < 2 * px and abs(y - target[1]) < 2 * (y1 - y0) / w.latent.vb.height()
    want, z = expected_image(w, x, y)
    np.testing.assert_array_equal(w.generated.image, want)
    np.testing.assert_array_equal(z, np.array([x, y], np.float32))  # d = 2: the point itself
    assert w.latent.marker_pos == (x, y)
    assert w.generated.view.qimage.width() == 12
    assert "z = (" in w.generated.coords.text()
    assert w.window_actions.export_generated.isEnabled()


@pytest.mark.slow
def test_drag_decodes_along_the_way(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    lp = w.latent
    x0, x1, y0, y1 = lp.view_rect()
    seen = []
    lp.latent_clicked.connect(lambda x, y: seen.append((x, y)))
    drag_latent(qtbot, w, (x0 + 0.2 * (x1 - x0), (y0 + y1) / 2), (x0 + 0.8 * (x1 - x0), (y0 + y1) / 2))
    assert len(seen) >= 3
    assert seen[-1][0] > seen[0][0]
    assert lp.view_rect() == (x0, x1, y0, y1)  # a left drag picks points, it does not pan
    want, z = expected_image(w, *seen[-1])
    np.testing.assert_array_equal(w.state.picked, z)
    qtbot.waitUntil(lambda: np.array_equal(w.generated.image, want), timeout=2000)  # the drag's last decode


def test_a_drag_decodes_at_most_once_a_frame_and_ends_on_its_last_point(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    shown = []
    show = w.generated.show_image
    w.generated.show_image = lambda image, z, *a: shown.append(z) or show(image, z, *a)
    points = [np.array([0.1 * i, -0.05 * i], np.float32) for i in range(20)]
    for z in points:  # twenty moves within one frame: no event is processed between them
        assert w.state.pick(z)
    assert len(shown) == 1 and np.array_equal(shown[0], points[0])  # the first at once
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=2000)  # then the newest one when the frame ends
    np.testing.assert_array_equal(shown[1], points[-1])
    want = SnapshotModel(w.state.snapshot).decode(points[-1][None])[0]
    np.testing.assert_array_equal(w.generated.image, want)
    qtbot.wait(100)
    assert len(shown) == 2  # nothing more to decode


def test_click_while_training_and_paused(qtbot, make_window):
    w = make_window(train=LONG)
    weights = {}  # every snapshot by step: while training, the image may lag the newest by a redraw pass
    w.state.snapshot_changed.connect(lambda snap: weights.__setitem__(snap.step, snap))
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state.snapshot is not None and w.latent.shown is not None, timeout=20_000)
    x0, x1, y0, y1 = w.latent.view_rect()
    click_latent(qtbot, w, x0 + 0.6 * (x1 - x0), y0 + 0.3 * (y1 - y0))
    assert w.generated.image is not None
    step = int(re.search(r"decoder at step ([\d,]+)", w.generated.coords.text()).group(1).replace(",", ""))
    np.testing.assert_array_equal(w.generated.image, SnapshotModel(weights[step]).decode(w.state.picked[None])[0])
    w.session.pause()
    qtbot.waitUntil(lambda: w.state.status == "paused", timeout=5000)
    x0, x1, y0, y1 = w.latent.view_rect()
    click_latent(qtbot, w, x0 + 0.3 * (x1 - x0), y0 + 0.6 * (y1 - y0))
    want, _ = expected_image(w, *w.latent.marker_pos)
    np.testing.assert_array_equal(w.generated.image, want)
    w.session.stop()
    wait_finished(qtbot, w)


def test_click_with_latent_dim_above_two_goes_through_pca(qtbot, make_window):
    w = make_window(model=SMALL_MODEL.replace(latent_dim=4))
    train_to_end(qtbot, w)
    assert w.latent.plot.getAxis("bottom").labelText.startswith("PC1")
    assert w.latent.plot.getAxis("left").labelText.startswith("PC2")
    x0, x1, y0, y1 = w.latent.view_rect()
    with qtbot.waitSignal(w.latent.latent_clicked, timeout=2000) as sig:
        click_latent(qtbot, w, (x0 + x1) / 2, y0 + 0.25 * (y1 - y0))
    x, y = sig.args
    z = w.latent.plane.from_plane(np.array([[x, y]]))[0].astype(np.float32)
    assert z.shape == (4,)
    np.testing.assert_array_equal(w.state.picked, z)
    np.testing.assert_array_equal(w.generated.image, SnapshotModel(w.state.snapshot).decode(z[None])[0])
    assert "PC = (" in w.generated.coords.text()


def test_click_before_any_model_explains(qtbot, make_window):
    w = make_window()
    click_latent(qtbot, w, 0.0, 0.0)
    assert w.generated.image is None
    assert "Start" in w.generated.view.placeholder
