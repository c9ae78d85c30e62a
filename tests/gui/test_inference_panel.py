"""The inference panel: contours of the true posterior on the latent plot, the ELBO/KL numbers, and the
amortization study on a worker thread (conftest.py fails a test that leaves a thread running)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt

from engine.config import ModelConfig
from engine.snapshot import decoder_snapshot
from gui.amortization_view import N_RANDOM
from gui.panels.inference import InferencePanel
from gui.posterior_overlay import PosteriorOverlay
from gui.state import StudioState
from tests.engine.test_posterior import train_small_vae


def dataset_of(xs, ys=None, names=None):
    n_classes = 0 if ys is None else int(np.max(ys)) + 1
    return SimpleNamespace(
        x_test=xs, y_test=ys, class_names=names, name="test data", image_shape=xs.shape[1:], n_classes=n_classes
    )


def make_state(snap=None, xs=None, ys=None, names=None) -> StudioState:
    """A session state with a dataset of these test images and, given a snapshot, its model."""
    st = StudioState()
    if xs is not None:
        st.set_dataset(dataset_of(xs, ys, names))
    if snap is not None:
        st.new_model(ModelConfig.from_dict(snap.model_config), "run")
        st.set_snapshot(snap)
    return st


@pytest.fixture(scope="module")
def snap2():
    model, xs = train_small_vae(latent_dim=2, steps=300)
    return decoder_snapshot(model, step=300), xs[:200], (np.arange(200) % 4).astype(np.int64)


@pytest.fixture
def panel(qtbot, snap2):
    pg.setConfigOptions(imageAxisOrder="row-major")  # what gui/style.py sets: the overlay must not depend on it
    snap, xs, ys = snap2
    p = InferencePanel(make_state(snap, xs, ys, ("a", "b", "c", "d")))
    qtbot.addWidget(p)
    p.study.steps_spin.setValue(80)
    p.study.k_spin.setValue(300)
    p.resize(700, 800)
    p.show()
    yield p
    p.close()
    assert p.running_workers() == []


def _table(p: InferencePanel) -> np.ndarray:
    t = p.study.table
    return np.array(
        [
            [float(t.item(r, c).data(Qt.ItemDataRole.DisplayRole)) for c in range(t.columnCount())]
            for r in range(t.rowCount())
        ]
    )


def _bilinear(g, x, y) -> float:
    """The grid density at (x, y) by bilinear interpolation (density indexed [x, y])."""
    fx = (x - g.xs[0]) / (g.xs[1] - g.xs[0])
    fy = (y - g.ys[0]) / (g.ys[1] - g.ys[0])
    i, j = min(int(fx), len(g.xs) - 2), min(int(fy), len(g.ys) - 2)
    u, v = fx - i, fy - j
    d = g.density
    return float(
        (1 - u) * (1 - v) * d[i, j] + u * (1 - v) * d[i + 1, j] + (1 - u) * v * d[i, j + 1] + u * v * d[i + 1, j + 1]
    )


@pytest.mark.slow
def test_object_names_and_tooltips(panel):
    for w in (
        panel.study.selected_button,
        panel.study.random_button,
        panel.study.cancel_button,
        panel.study.clear_sel_button,
        panel.zoom_button,
        panel.study.table,
        panel.study.progress,
        panel.study.steps_spin,
        panel.study.k_spin,
    ):
        assert w.objectName()
    for w in (
        panel.study.selected_button,
        panel.study.random_button,
        panel.study.cancel_button,
        panel.study.steps_spin,
        panel.study.k_spin,
    ):
        assert w.toolTip()
    assert "Cremer" in panel.study.random_button.toolTip()


def test_click_draws_contours_and_numbers(qtbot, panel):
    with qtbot.waitSignal(panel.posterior_ready, timeout=20_000) as blocker:
        panel.show_example(5)
    view = blocker.args[0]
    g = view.grid
    assert view.index == 5 and g is not None
    ov = panel.overlay
    counts = ov.contour_vertex_counts()
    assert len(counts) == 3 and all(c > 4 for c in counts)
    # the contours sit in latent coordinates around the posterior mean, inside the grid window
    x0, x1, y0, y1 = g.extent
    for iso in ov.isocurves:
        r = iso.mapRectToParent(iso.boundingRect())
        assert r.contains(g.post_mean[0], g.post_mean[1])
        assert x0 - 1e-6 <= r.left() and r.right() <= x1 + 1e-6
        assert y0 - 1e-6 <= r.top() and r.bottom() <= y1 + 1e-6
    # the 50% contour's vertices, mapped to latent coordinates, lie where the density equals its level
    iso = ov.isocurves[0]
    pts = [iso.mapToParent(iso.path.elementAt(i).x, iso.path.elementAt(i).y) for i in range(iso.path.elementCount())]
    vals = [_bilinear(g, p.x(), p.y()) for p in pts]
    assert np.allclose(vals, g.levels[0], rtol=0.05)
    ex, ey = ov.q_ellipses[0].getData()
    assert len(ex) > 10 and np.allclose(ex.mean(), g.mu[0], atol=1e-2)
    # the identity log p(x) = ELBO + KL(q ‖ p(z|x)), and the independent quadrature KL
    assert g.log_px - g.elbo == pytest.approx(g.kl_gap, abs=1e-9)
    assert g.kl_gap >= -1e-4 and abs(g.kl_gap - g.kl_quadrature) < 1e-2
    assert panel.values["log_px"].text().startswith(f"{g.log_px:.3f}")
    assert panel.values["kl_gap"].text().startswith(f"{g.kl_gap:.4f}")
    assert "(b)" in panel.title.text()
    assert not panel.recon.pixmap().isNull()
    assert panel.zoom_button.isEnabled()
    panel.zoom_button.click()
    (vx0, vx1), _ = panel.overlay.plot.getViewBox().viewRange()
    assert vx0 <= x0 and vx1 >= x1
    panel.clear_posterior()
    assert ov.contour_vertex_counts() == [0, 0, 0]


def test_rapid_clicks_end_on_the_last(qtbot, panel):
    for i in (1, 2, 3, 4):
        panel.show_example(i)
    qtbot.waitUntil(
        lambda: panel.view is not None and panel.view.index == 4 and not panel.running_workers(), timeout=30_000
    )
    assert panel.study.selection == [1, 2, 3, 4]
    assert panel.study.selected_button.text() == "Selected (4)"


def test_selected_study_runs_to_completion(qtbot, panel):
    for i in (0, 7, 9):
        panel.show_example(i)
    qtbot.waitUntil(lambda: not panel.running_workers(), timeout=30_000)
    with qtbot.waitSignal(panel.study_finished, timeout=60_000) as blocker:
        qtbot.mouseClick(panel.study.selected_button, Qt.MouseButton.LeftButton)
    r = blocker.args[0]
    assert r.n == 3 and sorted(r.indices.tolist()) == [0, 7, 9]
    t = _table(panel)
    assert t.shape == (3, 8)
    assert np.all(t[:, 2] >= t[:, 1])  # optimised ≥ encoder, row by row
    assert np.all(t[:, 4] >= 0)
    assert np.all(t[:, 6] >= t[:, 2] - 0.05)  # the 2-D grid's exact log p(x) is above every ELBO
    assert not panel.study.table.isColumnHidden(6) and not panel.study.table.isColumnHidden(7)
    assert panel.study.progress.value() == 1000
    assert "amortization gap" in panel.study.summary.text()
    qtbot.waitUntil(lambda: panel.study.random_button.isEnabled(), timeout=5_000)
    # the shown example (9) was studied: its optimised q_i is drawn too
    x, _ = panel.overlay.qi_ellipses[0].getData()
    assert x is not None and len(x) > 10


def test_random_study_fills_the_table(qtbot, panel):
    with qtbot.waitSignal(panel.study_finished, timeout=120_000):
        assert panel.study.run_random()
    assert panel.study.table.rowCount() == N_RANDOM
    t = _table(panel)
    assert np.all(t[:, 2] >= t[:, 1])
    assert len(np.unique(t[:, 0])) == N_RANDOM
    # clicking a row shows that example
    with qtbot.waitSignal(panel.posterior_ready, timeout=20_000):
        panel.study.table.cellClicked.emit(0, 0)
    assert panel.current_index == int(t[0, 0])


def test_cancel(qtbot, panel):
    panel.study.steps_spin.setValue(5000)
    assert panel.study.run_random()
    assert panel.study.cancel_button.isEnabled() and not panel.study.random_button.isEnabled()
    qtbot.waitUntil(lambda: panel.study.progress.value() > 0, timeout=30_000)
    qtbot.mouseClick(panel.study.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.study.is_study_running(), timeout=30_000)
    qtbot.waitUntil(lambda: "Cancelled" in panel.study.progress.format(), timeout=5_000)
    assert panel.study.result is None and panel.study.table.rowCount() == 0
    assert panel.study.random_button.isEnabled() and not panel.study.cancel_button.isEnabled()


def test_close_stops_a_running_study(qtbot, panel):
    panel.study.steps_spin.setValue(5000)
    assert panel.study.run_random()
    qtbot.waitUntil(lambda: panel.study.progress.value() > 0, timeout=30_000)
    panel.close()
    assert panel.running_workers() == []


def test_new_data_cancels_the_study_and_refresh_recomputes(qtbot, panel, snap2):
    _, xs, ys = snap2
    panel.study.steps_spin.setValue(5000)
    assert panel.study.run_random()
    qtbot.waitUntil(lambda: panel.study.progress.value() > 0, timeout=30_000)
    panel.state.set_dataset(dataset_of(xs[::-1].copy(), ys[::-1].copy()))
    qtbot.waitUntil(lambda: not panel.study.is_study_running(), timeout=30_000)
    assert panel.study.result is None and panel.study.table.rowCount() == 0 and panel.study.selection == []
    with qtbot.waitSignal(panel.posterior_ready, timeout=20_000):
        panel.show_example(3)
    first = panel.view
    with qtbot.waitSignal(panel.posterior_ready, timeout=20_000) as blocker:
        panel.refresh()
    assert blocker.args[0].index == 3 and blocker.args[0] is not first
    assert "step 300" in panel.status.text()


def test_no_model_yet(qtbot, snap2):
    _, xs, ys = snap2
    p = InferencePanel(make_state(None, xs, ys))
    qtbot.addWidget(p)
    p.show_example(3)
    assert "No model" in p.status.text()
    assert not p.study.run_random()
    assert p.running_workers() == []


def test_other_latent_dims(qtbot):
    model, xs = train_small_vae(latent_dim=3, steps=60)
    p = InferencePanel(make_state(decoder_snapshot(model, 60), xs[:50]))
    qtbot.addWidget(p)
    with qtbot.waitSignal(p.posterior_ready, timeout=20_000) as blocker:
        p.show_example(2)
    assert blocker.args[0].grid is None and "2-D" in p.status.text()
    with qtbot.waitSignal(p.study_finished, timeout=60_000) as blocker:
        assert p.study.run_study([1, 2, 3], steps=20, iwae_k=50)
    assert blocker.args[0].encoder_mu.shape == (3, 3)
    assert p.study.table.rowCount() == 3 and p.study.table.isColumnHidden(6) and p.study.table.isColumnHidden(7)
    p.close()


def test_overlay_alone(qtbot):
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    ov = PosteriorOverlay(plot.getPlotItem())
    assert ov.contour_vertex_counts() == [0, 0, 0]
    ov.show_optimised([0.0, 1.0], [0.0, 0.0])
    x, y = ov.qi_ellipses[1].getData()
    assert np.allclose(np.hypot(x, y - 1.0), 2.0)
    ov.remove()
    assert all(it.scene() is None for it in ov.items())
