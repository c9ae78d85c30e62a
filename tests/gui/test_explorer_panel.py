"""The VI explorer tab: sliders move the numbers (and the identity keeps holding), families switch the plots,
Fit animates and finishes near the family's optimum, and nothing keeps ticking after close."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import math  # noqa: E402
import re  # noqa: E402

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QPointF, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton, QSlider, QSpinBox, QDoubleSpinBox  # noqa: E402

from engine import explorer as ex  # noqa: E402
from gui.panels.explorer import ExplorerPanel  # noqa: E402
from gui.workers import live_threads  # noqa: E402


@pytest.fixture
def panel(qtbot):
    w = ExplorerPanel()
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.stop_fit()


def label(w, name) -> str:
    return w.findChild(QLabel, name).text()


def residual_shown(w) -> float:
    m = re.search(r"\|residual\| = ([0-9.eE+-]+)", label(w, "explorer_identity_label"))
    assert m, label(w, "explorer_identity_label")
    return float(m.group(1))


def select_family(w, name):
    combo = w.findChild(QComboBox, "explorer_family")
    combo.setCurrentIndex(combo.findData(name))


@pytest.mark.slow
def test_controls_are_named_and_explained(panel):
    for cls, name in [
        (QDoubleSpinBox, "explorer_alpha"),
        (QDoubleSpinBox, "explorer_sigma"),
        (QDoubleSpinBox, "explorer_D"),
        (QComboBox, "explorer_family"),
        (QSlider, "explorer_param0"),
        (QSlider, "explorer_param1"),
        (QSpinBox, "explorer_n_samples"),
        (QPushButton, "explorer_resample"),
        (QDoubleSpinBox, "explorer_lr"),
        (QSpinBox, "explorer_steps"),
        (QSpinBox, "explorer_fit_batch"),
        (QPushButton, "explorer_fit"),
        (QPushButton, "explorer_stop"),
        (QPushButton, "explorer_best"),
        (QLabel, "explorer_logp_label"),
        (QLabel, "explorer_elbo_label"),
        (QLabel, "explorer_mc_label"),
        (QLabel, "explorer_kl_label"),
        (QLabel, "explorer_identity_label"),
        (QLabel, "explorer_report_label"),
    ]:
        widget = panel.findChild(cls, name)
        assert widget is not None, name
        assert len(widget.toolTip()) > 20, name
    # the family choice is explained honestly in the UI
    select_family(panel, "Normal")
    assert "−∞" in label(panel, "explorer_family_note") and "z ≥ 0" in label(panel, "explorer_family_note")


def test_slider_moves_the_numbers_and_the_identity_holds(panel, qtbot):
    slider = panel.findChild(QSlider, "explorer_param0")
    before = {n: label(panel, n) for n in ("explorer_elbo_label", "explorer_kl_label", "explorer_mc_label")}
    q_before = panel.q
    q_curve_before = panel.plots.q_curve.getData()[1].copy()
    residuals = []
    for _ in range(6):
        qtbot.keyClick(slider, Qt.Key.Key_PageUp)  # as a user would: keyboard on the focused slider
        residuals.append(residual_shown(panel))
        assert abs(panel.numbers.identity_residual) < 1e-6
    assert panel.q != q_before
    for name, text in before.items():
        assert label(panel, name) != text, name
    assert max(residuals) < 1e-6
    # what is shown is the engine's number for the new q
    assert panel.numbers.elbo_quad == pytest.approx(ex.elbo_quadrature(panel.model, panel.q), abs=1e-12)
    assert f"{panel.numbers.kl:.6f}" in label(panel, "explorer_kl_label")
    assert not np.allclose(panel.plots.q_curve.getData()[1], q_curve_before)
    # the current-point marker follows
    x, _ = panel.plots.surface1d_current.getData()
    assert x[0] == pytest.approx(math.log10(panel.q.rate))  # log-mode axis: drawn in log10 units


def test_model_controls_change_the_evidence(panel, qtbot):
    before = label(panel, "explorer_logp_label")
    d_box = panel.findChild(QDoubleSpinBox, "explorer_D")
    d_box.setValue(-2.0)
    assert panel.model.D == -2.0
    assert label(panel, "explorer_logp_label") != before
    assert panel.numbers.log_marginal_closed == pytest.approx(
        ex.ExpNormalModel(1.0, 1.0, -2.0).log_marginal_closed_form()
    )
    assert f"{panel.numbers.log_marginal_closed:.6f}" in label(panel, "explorer_logp_label")
    assert residual_shown(panel) < 1e-6


@pytest.mark.slow
def test_switching_family_updates_plots_and_controls(panel):
    q_curve_exp = panel.plots.q_curve.getData()[1].copy()
    assert panel.plots.surface_stack.currentIndex() == 0
    assert len(panel.plots.surface_curve.getData()[0]) > 100

    select_family(panel, "Log-Normal")
    assert isinstance(panel.q, ex.LogNormalQ)
    assert panel.plots.surface_stack.currentIndex() == 1
    assert panel.plots.surface_image.image is not None and panel.plots.surface_image.image.shape == (61, 61)
    assert panel.controls.param_sliders[1].isVisible()
    assert not np.allclose(panel.plots.q_curve.getData()[1], q_curve_exp)
    assert residual_shown(panel) < 1e-6
    best_x, best_y = panel.plots.surface2d_best.getData()
    assert best_x[0] == pytest.approx(panel.best.mu)
    assert best_y[0] == pytest.approx(math.log10(panel.best.sigma))

    select_family(panel, "Normal")
    assert isinstance(panel.q, ex.TruncNormalQ)
    select_family(panel, "Exponential")
    assert panel.plots.surface_stack.currentIndex() == 0
    assert not panel.controls.param_sliders[1].isVisible()


def test_heat_map_is_oriented_with_its_axes_even_under_row_major_config(qtbot):
    """main.py sets pyqtgraph's global imageAxisOrder to row-major; the hottest pixel must still sit on the star."""
    old = pg.getConfigOption("imageAxisOrder")
    pg.setConfigOptions(imageAxisOrder="row-major")
    try:
        w = ExplorerPanel()
        qtbot.addWidget(w)
        select_family(w, "Log-Normal")
        img = w.plots.surface_image
        i, j = np.unravel_index(np.argmax(img.image), img.image.shape)  # i: μ index, j: σ index
        centre = img.mapToView(QPointF(i + 0.5, j + 0.5))  # col-major pixel (x=i, y=j) → plot coordinates
        bx, by = w.plots.surface2d_best.getData()
        surf = w.surface
        dx = surf.axes[0][1] - surf.axes[0][0]
        dy = math.log10(surf.axes[1][1] / surf.axes[1][0])
        assert abs(centre.x() - bx[0]) <= 1.5 * dx
        assert abs(centre.y() - by[0]) <= 1.5 * dy
    finally:
        pg.setConfigOptions(imageAxisOrder=old)


def test_mc_sample_count_and_resampling(panel):
    panel.findChild(QSpinBox, "explorer_n_samples").setValue(5000)
    assert "N = 5000" in label(panel, "explorer_mc_label")
    exact, mc = panel.numbers.elbo_quad, panel.numbers.elbo_mc
    panel.findChild(QPushButton, "explorer_resample").click()
    assert panel.numbers.elbo_quad == exact
    assert panel.numbers.elbo_mc != mc
    assert abs(panel.numbers.elbo_mc - exact) < 5 * panel.numbers.elbo_mc_se


@pytest.mark.slow
@pytest.mark.parametrize("family", ["Exponential", "Normal", "Log-Normal"])
def test_fit_animates_and_finishes_near_the_family_best(panel, qtbot, family):
    select_family(panel, family)
    panel.findChild(QSpinBox, "explorer_steps").setValue(400)
    panel.findChild(QSpinBox, "explorer_fit_batch").setValue(32)
    start_elbo = panel.numbers.elbo_quad
    fit_button = panel.findChild(QPushButton, "explorer_fit")
    qtbot.mouseClick(fit_button, Qt.MouseButton.LeftButton)
    assert panel.is_fitting()
    assert not fit_button.isEnabled()
    seen = set()

    def progress():
        seen.add(len(panel.fit_curve()[0]))
        return not panel.is_fitting()

    qtbot.waitUntil(progress, timeout=30_000)
    steps, estimates = panel.fit_curve()
    intermediate = {n for n in seen if 0 < n < 400}
    assert len(intermediate) >= 3, seen  # it animated: the curve grew over several ticks
    assert len(steps) == 400 and np.all(np.isfinite(estimates))
    assert fit_button.isEnabled()
    # finished near the family's optimum, and says so
    final = panel.numbers.elbo_quad
    assert panel.best_elbo - 0.01 <= final <= panel.best_elbo + 1e-9
    assert final > start_elbo
    report = label(panel, "explorer_report_label")
    assert "finished" in report and "final ELBO" in report and "family best" in report
    assert f"{final:.4f}" in report
    # the sliders show the fitted q
    name = type(panel.q).param_names[0]
    assert panel.controls.param_sliders[0].value_label.text() == f"{getattr(panel.q, name):.4g}"
    # the exact-ELBO curve and the path on the landscape were drawn
    assert len(panel.plots.step_exact_curve.getData()[0]) > 3
    assert residual_shown(panel) < 1e-6


@pytest.mark.slow
def test_stop_button_stops_the_fit(panel, qtbot):
    panel.findChild(QSpinBox, "explorer_steps").setValue(20_000)
    qtbot.mouseClick(panel.findChild(QPushButton, "explorer_fit"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(panel.fit_curve()[0]) > 0, timeout=5_000)
    with qtbot.waitSignal(panel.fit_finished, timeout=2_000):
        qtbot.mouseClick(panel.findChild(QPushButton, "explorer_stop"), Qt.MouseButton.LeftButton)
    assert not panel.is_fitting()
    n = len(panel.fit_curve()[0])
    qtbot.wait(100)
    assert len(panel.fit_curve()[0]) == n < 20_000
    assert "stopped" in label(panel, "explorer_report_label")


@pytest.mark.slow
def test_changing_the_model_stops_a_running_fit(panel, qtbot):
    panel.findChild(QSpinBox, "explorer_steps").setValue(20_000)
    panel.findChild(QPushButton, "explorer_fit").click()
    qtbot.waitUntil(lambda: len(panel.fit_curve()[0]) > 0, timeout=5_000)
    panel.findChild(QDoubleSpinBox, "explorer_alpha").setValue(2.0)
    assert not panel.is_fitting()
    assert panel.model.alpha == 2.0


@pytest.mark.slow
def test_best_button_jumps_to_the_family_optimum(panel):
    select_family(panel, "Normal")
    panel.findChild(QPushButton, "explorer_best").click()
    assert panel.q == panel.best
    # the truncated-Normal family contains the posterior: the gap closes
    assert panel.numbers.kl == pytest.approx(0.0, abs=1e-9)
    assert panel.numbers.elbo_quad == pytest.approx(panel.numbers.log_marginal_closed, abs=1e-9)
    select_family(panel, "Log-Normal")
    panel.findChild(QPushButton, "explorer_best").click()
    assert panel.numbers.elbo_quad == pytest.approx(
        ex.elbo_quadrature(panel.model, ex.best_params(panel.model, "Log-Normal"))
    )
    assert panel.numbers.kl > 0.01  # this family cannot reach the posterior


def test_no_running_fit_after_close(qtbot):
    w = ExplorerPanel()
    qtbot.addWidget(w)
    w.show()
    w.findChild(QSpinBox, "explorer_steps").setValue(20_000)
    qtbot.mouseClick(w.findChild(QPushButton, "explorer_fit"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(w.fit_curve()[0]) > 0, timeout=5_000)
    assert w.is_fitting() and [t.objectName() for t in live_threads()] == ["explorerFit"]
    w.close()
    assert not w.is_fitting()
    assert live_threads() == []  # closing waited for the fit's thread
    assert not any(t.isActive() for t in w.findChildren(QTimer))
    n = len(w.fit_curve()[0])
    qtbot.wait(100)
    assert len(w.fit_curve()[0]) == n


def test_current_point_stays_in_view_on_the_elbo_curve(panel, qtbot):
    """The starting q is far from the optimum (its ELBO well below the best): its point must still be visible, and
    moving q with the slider keeps it in view."""
    vb = panel.plots.surface1d.getPlotItem().getViewBox()

    def in_view():
        _, y = panel.plots.surface1d_current.getData()
        (_, _), (y0, y1) = vb.viewRange()
        return y0 <= y[0] <= y1

    assert panel.numbers.elbo_quad < panel.best_elbo - 1.0  # the case this test is about
    assert in_view()
    slider = panel.controls.param_sliders[0].slider
    slider.setFocus()
    for key in (Qt.Key.Key_PageUp,) * 4 + (Qt.Key.Key_Home, Qt.Key.Key_End):
        qtbot.keyClick(slider, key)
        assert in_view(), key


@pytest.mark.slow
def test_another_family_forgets_the_last_fit_report(panel, qtbot):
    panel.findChild(QSpinBox, "explorer_steps").setValue(50)
    with qtbot.waitSignal(panel.fit_finished, timeout=30_000):
        qtbot.mouseClick(panel.findChild(QPushButton, "explorer_fit"), Qt.MouseButton.LeftButton)
    assert "Fit finished" in label(panel, "explorer_report_label")
    select_family(panel, "Normal")
    assert "finished" not in label(panel, "explorer_report_label")
    assert "Press Fit" in label(panel, "explorer_report_label") and "Normal" in label(panel, "explorer_report_label")
