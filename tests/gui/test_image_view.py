"""ImageView: a small grid is scaled up to fill its panel (like the manifold), with square pixels."""

from __future__ import annotations

import numpy as np

from gui.image_view import ImageView


def test_a_small_grid_fills_the_view_and_a_large_zoom_keeps_whole_pixels(qtbot):
    v = ImageView("", name="view")
    qtbot.addWidget(v)
    v.resize(400, 300)
    v.show()
    v.set_image(np.zeros((1, 116, 232), np.float32))  # 4×8 tiles of 28×28: less than 2× fits
    r = v.target_rect()
    assert r.width() >= 0.95 * (v.contentsRect().width() - 4)  # scaled to fit, not drawn at actual size
    assert abs(r.width() / 232 - r.height() / 116) < 0.02  # square pixels
    v.set_image(np.zeros((1, 28, 28), np.float32))  # a single image: a whole-number zoom
    r = v.target_rect()
    assert r.width() == r.height() and r.width() % 28 == 0 and r.width() >= 28 * 9
