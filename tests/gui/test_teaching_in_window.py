"""The teaching panels inside the real window: the VI explorer tab, and a click on a test example in the latent
plot drawing its true posterior (contours) against q(z|x), with log p(x) = ELBO + KL(q‖p(z|x))."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSlider

from .window_helpers import click_latent, train_to_end


def test_explorer_is_a_tab_of_the_window_and_its_sliders_move_the_numbers(qtbot, make_window):
    w = make_window()
    titles = [w.ui.tabs.tabText(i) for i in range(w.ui.tabs.count())]
    assert "VI explorer" in titles and "Posterior && gap" in titles
    w.show_page(w.explorer)
    before = w.explorer.numbers
    slider = w.explorer.findChildren(QSlider)[0]
    slider.setValue(slider.value() + (slider.maximum() - slider.minimum()) // 5)
    qtbot.waitUntil(lambda: w.explorer.numbers is not before, timeout=3000)
    after = w.explorer.numbers
    assert after.elbo_quad != before.elbo_quad
    assert abs(after.log_marginal_closed - (after.elbo_quad + after.kl)) < 1e-6


def test_clicking_a_scatter_point_shows_its_true_posterior(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    k = 0
    x, y = (float(v) for v in w.latent.points[k])
    index = int(w.latent.shown.indices[k])
    click_latent(qtbot, w, x, y)
    assert w.state.example == index and w.ui.tabs.currentIndex() == 0  # selected; the Training page stays on show
    w.show_page(w.inference)
    qtbot.waitUntil(lambda: w.inference.view is not None and w.inference.current_index is not None, timeout=15000)
    assert w.inference.current_index == index
    grid = w.inference.view.grid
    assert np.isfinite(grid.log_px) and grid.log_px >= grid.elbo - 1e-6
    assert abs(grid.kl_gap - (grid.log_px - grid.elbo)) < 1e-9
    assert sum(w.inference.overlay.contour_vertex_counts()) > 0  # contours drawn in the latent plot
    # a click on empty space decodes but leaves the example on show
    x0, x1, y0, y1 = w.latent.view_rect()
    click_latent(qtbot, w, x1 - 0.01 * (x1 - x0), y1 - 0.01 * (y1 - y0))
    assert w.generated.image is not None


def test_clicking_a_reconstruction_shows_that_examples_posterior(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    w.gallery.tabs.setCurrentIndex(1)  # Reconstructions
    qtbot.waitUntil(lambda: w.gallery.images["recon"] is not None, timeout=5000)
    view = w.gallery.pages["recon"].view
    idx, half, th, tw = w.gallery.recon_layout
    r = view.target_rect()
    scale = r.width() / view.qimage.width()
    # the reconstruction of the third example of the first half: tile row 1, column 2
    px = r.x() + int((2 * tw + tw // 2) * scale)
    py = r.y() + int((1 * th + th // 2) * scale)
    from PySide6.QtCore import QPoint

    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(px, py))
    assert w.state.example == int(idx[2])
    qtbot.waitUntil(lambda: w.inference.view is not None and w.inference.view.index == int(idx[2]), timeout=15000)
    assert sum(w.inference.overlay.contour_vertex_counts()) > 0
