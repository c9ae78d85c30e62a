"""The gradient-estimator lab and the Fit's estimator choice, driven through the real window: the lab's page of the
VI explorer estimates ∇ELBO three ways on a worker, shows histograms and numbers that agree with the exact gradient,
follows q when it moves, and the Fit runs with the estimator chosen beside it."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QPushButton, QSlider, QSpinBox, QTabWidget

from engine import explorer as ex

NUM = r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?"


def number(text: str) -> float:
    return float(re.search(NUM, text).group(0).replace(",", ""))


def open_lab(qtbot, w):
    """Show the explorer and click its 'Gradient estimators' tab; returns the lab once its first study is drawn."""
    w.show_page(w.explorer)
    tabs = w.explorer.findChild(QTabWidget, "explorer_right_tabs")
    index = [tabs.tabText(i) for i in range(tabs.count())].index("Gradient estimators")
    lab = w.explorer.gradient_lab
    with qtbot.waitSignal(lab.study_drawn, timeout=120_000):
        qtbot.mouseClick(tabs.tabBar(), Qt.MouseButton.LeftButton, pos=tabs.tabBar().tabRect(index).center())
    assert tabs.currentWidget() is lab
    return lab


def shown(lab, key: str, col: str) -> str:
    return lab.findChild(QLabel, f"explorer_grad_{key}_{col}").text()


@pytest.mark.slow  # a study / two fits through the window
def test_lab_estimates_the_gradient_three_ways_against_the_exact_one(qtbot, make_window):
    w = make_window()
    lab = w.explorer.gradient_lab
    assert lab.study is None and not lab.is_estimating()  # nothing runs while the page is not shown
    lab = open_lab(qtbot, w)
    q = w.explorer.q
    study = lab.study
    assert study.family == "Exponential" and study.params == q.params() and study.n == 100_000
    exact = ex.exact_gradient(w.explorer.model, q)[0]
    assert number(lab.findChild(QLabel, "explorer_grad_exact").text()) == float(f"{exact:.4g}")
    means, ses, sds = {}, {}, {}
    for key in ex.ESTIMATORS:
        mean_text = shown(lab, key, "mean")
        means[key], ses[key] = (float(v) for v in re.findall(NUM, mean_text)[:2])
        sds[key] = number(shown(lab, key, "sd"))
        assert abs(means[key] - exact) <= 4 * ses[key] + 1e-3 * abs(exact), (key, mean_text, exact)
        needed = number(shown(lab, key, "n"))
        assert needed == study.stats[key].n_for_1pct[0]
        assert abs(needed / (sds[key] / (0.01 * abs(exact))) ** 2 - 1) < 2e-3  # N with sd/√N = 1% of |∇|
        # the histogram is drawn, with the exact gradient and the mean marked
        x, y = lab.hist_curves[key].getData()
        assert len(x) == len(y) + 1 and y.max() > 0
        assert lab.exact_lines[key].value() == exact
        assert lab.mean_lines[key].value() == study.stats[key].mean[0]
    assert sds[ex.PATHWISE] < sds[ex.SCORE] and sds[ex.SCORE_BASELINE] < sds[ex.SCORE]
    assert number(shown(lab, ex.PATHWISE, "n")) < number(shown(lab, ex.SCORE, "n"))
    # one parameter: nothing to choose
    assert not lab.findChild(QComboBox, "explorer_grad_param").isEnabled()

    # each estimator over its own range: the pathwise histogram is much narrower than the score function's
    lab.findChild(QCheckBox, "explorer_grad_shared").setChecked(False)
    width = {k: np.ptp(lab.hist_curves[k].getData()[0]) for k in ex.ESTIMATORS}
    assert width[ex.PATHWISE] < width[ex.SCORE]

    # "Estimate again" draws fresh samples: new means, same exact gradient
    with qtbot.waitSignal(lab.study_drawn, timeout=120_000):
        qtbot.mouseClick(lab.findChild(QPushButton, "explorer_grad_estimate"), Qt.MouseButton.LeftButton)
    assert lab.study is not study and lab.study.exact[0] == exact
    assert lab.study.stats[ex.SCORE].mean[0] != study.stats[ex.SCORE].mean[0]


@pytest.mark.slow
def test_lab_follows_the_family_and_the_sliders(qtbot, make_window):
    w = make_window()
    lab = open_lab(qtbot, w)
    lab.findChild(QSpinBox, "explorer_grad_n").setValue(20_000)
    qtbot.waitUntil(lambda: lab.study.n == 20_000, timeout=60_000)
    family = w.explorer.findChild(QComboBox, "explorer_family")
    with qtbot.waitSignal(lab.study_drawn, timeout=60_000):
        family.setCurrentIndex(family.findData("Normal"))
    assert lab.study.family == "Normal" and lab.study.params == w.explorer.q.params()
    param = lab.findChild(QComboBox, "explorer_grad_param")
    assert param.isEnabled() and [param.itemText(i) for i in range(param.count())] == ["∂ELBO/∂μ", "∂ELBO/∂σ"]
    param.setCurrentIndex(1)
    exact = ex.exact_gradient(w.explorer.model, w.explorer.q)
    assert lab.findChild(QLabel, "explorer_grad_exact").text().startswith("∂ELBO/∂σ")
    assert number(lab.findChild(QLabel, "explorer_grad_exact").text().split("=")[1]) == float(f"{exact[1]:.4g}")
    assert lab.exact_lines[ex.PATHWISE].value() == exact[1]
    # a slider drag: the shown study says it is stale, and a new one for the new q follows
    slider = w.explorer.findChild(QSlider, "explorer_param1")
    before = lab.study
    with qtbot.waitSignal(lab.study_drawn, timeout=60_000):
        slider.setValue(slider.value() - 150)
        assert "q changed" in lab.findChild(QLabel, "explorer_grad_status").text()
    assert lab.study is not before and lab.study.params == w.explorer.q.params() != before.params
    assert param.currentIndex() == 1  # the chosen component is kept


def test_closing_the_window_while_estimating_stops_the_study(qtbot, make_window):
    w = make_window()
    lab = open_lab(qtbot, w)
    lab.findChild(QSpinBox, "explorer_grad_n").setValue(1_000_000)
    lab.estimate()
    assert lab.is_estimating()
    w.close()  # the fixture checks that no thread is left running
    assert not lab.is_estimating()


@pytest.mark.slow  # a study / two fits through the window
def test_fit_runs_with_the_estimator_chosen_beside_it(qtbot, make_window):
    w = make_window()
    w.show_page(w.explorer)
    panel = w.explorer
    choice = panel.findChild(QComboBox, "explorer_fit_estimator")
    assert [choice.itemData(i) for i in range(choice.count())] == list(ex.ESTIMATORS)
    panel.findChild(QSpinBox, "explorer_steps").setValue(800)
    panel.findChild(QSpinBox, "explorer_fit_batch").setValue(32)
    start = panel.numbers.elbo_quad
    fit = panel.findChild(QPushButton, "explorer_fit")
    report = panel.findChild(QLabel, "explorer_report_label")

    choice.setCurrentIndex(choice.findData(ex.SCORE_BASELINE))
    with qtbot.waitSignal(panel.fit_finished, timeout=120_000):
        qtbot.mouseClick(fit, Qt.MouseButton.LeftButton)
    assert "finished" in report.text() and "score function + baseline gradient" in report.text()
    final = panel.numbers.elbo_quad
    assert panel.best_elbo - 0.01 <= final <= panel.best_elbo + 1e-9 and final > start
    steps, estimates = panel.fit_curve()
    assert len(steps) == 800 and np.all(np.isfinite(estimates))

    # the plain score function from the same start: the fit runs with it (and is reported as such)
    family = panel.findChild(QComboBox, "explorer_family")
    family.setCurrentIndex(family.findData("Log-Normal"))
    choice.setCurrentIndex(choice.findData(ex.SCORE))
    with qtbot.waitSignal(panel.fit_finished, timeout=120_000):
        qtbot.mouseClick(fit, Qt.MouseButton.LeftButton)
    assert "score function (REINFORCE) gradient" in report.text()
    assert len(panel.fit_curve()[0]) == 800
