"""The gradient-estimator lab of the VI explorer: ∇ELBO with respect to q's parameters, estimated pathwise
(reparameterisation), by the score function (REINFORCE) and by the score function with a baseline, from N samples
each, against the exact gradient. Histograms of the single-sample estimates, the means ± standard errors, the
standard deviations and the samples each estimator needs for ±1%.

``GradientLab.set_problem(model, q)`` is called by the explorer whenever the model or q changes; the study
(engine.explorer.gradient_study) reruns on a gui.workers.Worker a moment after the last change, only while the lab is
shown, and a result for a (model, q) that has since changed is dropped. ``estimator_combo()`` is the Fit's choice of
estimator. No model math here: the numbers and the histogram counts come from the engine."""

from __future__ import annotations

import math
import threading

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine import explorer as ex
from gui.workers import Worker

DEBOUNCE_MS = 300  # rerun this long after the last slider move (a drag or a running fit restarts the wait)
DEFAULT_N = 100_000
BINS = 60
COLOURS = {ex.PATHWISE: (30, 90, 220), ex.SCORE: (220, 110, 20), ex.SCORE_BASELINE: (40, 150, 60)}
SYMBOLS = {"rate": "λ", "mu": "μ", "sigma": "σ"}  # how a parameter is written in ∂ELBO/∂θ
SHORT = {ex.PATHWISE: "Pathwise", ex.SCORE: "Score function", ex.SCORE_BASELINE: "Score + baseline"}
TIPS = {
    ex.PATHWISE: "Pathwise (reparameterisation): z = T(ε; θ) with ε from a fixed base distribution; the gradient "
    "flows through the sample: ∇θ [log p(z, D) − log q_θ(z)] at z = T(ε; θ).",
    ex.SCORE: "Score function (REINFORCE): (log p(z, D) − log q(z)) · ∇θ log q_θ(z) with z ~ q. Needs only the value "
    "of log p, not its slope — and pays for it in variance.",
    ex.SCORE_BASELINE: "Score function with a baseline (control variate): (log p(z, D) − log q(z) − b) · ∇θ log q_θ(z). "
    "E[∇θ log q] = 0, so any b fixed before the sample keeps it unbiased; b is the variance-minimising constant "
    "E[f s²]/E[s²] (s = ∇θ log q), estimated from the other samples.",
}


def estimator_combo() -> QComboBox:
    """The Fit's gradient estimator (item data: the engine's estimator key)."""
    combo = QComboBox()
    combo.setObjectName("explorer_fit_estimator")
    for key in ex.ESTIMATORS:
        combo.addItem(SHORT[key], key)
        combo.setItemData(combo.count() - 1, TIPS[key], Qt.ItemDataRole.ToolTipRole)
    combo.setToolTip(
        "How Fit estimates the ELBO's gradient each step. Pathwise has the lowest variance; the score function "
        "alone makes the fit wander; a baseline calms it. The lab on the 'Gradient estimators' page shows why."
    )
    return combo


def _fmt(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.4g}"


def _fmt_count(n: float) -> str:
    if not math.isfinite(n):
        return "∞ (∇ = 0)"
    return f"{int(n):,}" if n < 1e7 else f"{n:.2e}"


class GradientLab(QWidget):
    """The lab page. `study` is the last study drawn (None before the first)."""

    study_drawn = Signal(object)  # the GradientStudy just drawn

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("explorer_gradient_lab")
        self._model: ex.ExpNormalModel | None = None
        self._q: ex.Surrogate | None = None
        self._seed = 0
        self._worker: Worker | None = None
        self._cancel: threading.Event | None = None
        self.study: ex.GradientStudy | None = None
        self._study_key = None  # the (model, q, N, seed) the shown study is of
        self._debounce = QTimer(self)
        self._debounce.setObjectName("explorer_grad_debounce")
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.estimate)
        self._build()

    # ------------------------------------------------------------------------------------------- construction
    def _build(self) -> None:
        self.n_box = QSpinBox()
        self.n_box.setObjectName("explorer_grad_n")
        self.n_box.setRange(100, 1_000_000)
        self.n_box.setSingleStep(10_000)
        self.n_box.setValue(DEFAULT_N)
        self.n_box.setGroupSeparatorShown(True)
        self.n_box.setKeyboardTracking(False)
        self.n_box.setToolTip("N: independent samples drawn for each estimator (computed in the background).")
        self.n_box.valueChanged.connect(self._schedule)
        self.estimate_button = QPushButton("Estimate again")
        self.estimate_button.setObjectName("explorer_grad_estimate")
        self.estimate_button.setToolTip("Draw N fresh samples for each estimator (a new seed).")
        self.estimate_button.clicked.connect(self._on_estimate_clicked)
        self.param_combo = QComboBox()
        self.param_combo.setObjectName("explorer_grad_param")
        self.param_combo.setToolTip("Which component of the gradient the histograms show.")
        self.param_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.param_combo.currentIndexChanged.connect(self._draw)
        self.shared_box = QCheckBox("same x-axis")
        self.shared_box.setObjectName("explorer_grad_shared")
        self.shared_box.setChecked(True)
        self.shared_box.setToolTip(
            "Draw the three histograms over one range (the honest comparison), or each over its own central 99%."
        )
        self.shared_box.toggled.connect(self._draw)
        self.status_label = QLabel()
        self.status_label.setObjectName("explorer_grad_status")
        top = QHBoxLayout()
        top.addWidget(QLabel("N per estimator"))
        top.addWidget(self.n_box)
        top.addWidget(self.estimate_button)
        top.addSpacing(8)
        top.addWidget(QLabel("show"))
        top.addWidget(self.param_combo)
        top.addWidget(self.shared_box)
        top.addStretch(1)

        self.plots: dict[str, pg.PlotWidget] = {}
        self.hist_curves: dict[str, pg.PlotDataItem] = {}
        self.mean_lines: dict[str, pg.InfiniteLine] = {}
        self.exact_lines: dict[str, pg.InfiniteLine] = {}
        hists = QHBoxLayout()
        for key in ex.ESTIMATORS:
            plot = pg.PlotWidget(background="w")
            plot.setObjectName(f"explorer_grad_hist_{key}")
            plot.setMinimumSize(120, 120)
            plot.setToolTip(
                f"{TIPS[key]}\nHistogram of the N single-sample estimates (density). Black: the exact gradient; "
                "dashed: the N-sample mean."
            )
            p = plot.getPlotItem()
            p.setTitle(SHORT[key], size="9pt", color=COLOURS[key])
            p.hideAxis("left")
            p.setMouseEnabled(x=False, y=False)
            self.hist_curves[key] = p.plot(
                [0.0, 1.0],
                [0.0],
                stepMode="center",
                fillLevel=0.0,
                pen=pg.mkPen(COLOURS[key], width=1.5),
                brush=(*COLOURS[key], 90),
            )
            self.exact_lines[key] = pg.InfiniteLine(angle=90, pen=pg.mkPen((20, 20, 20), width=2))
            self.mean_lines[key] = pg.InfiniteLine(
                angle=90, pen=pg.mkPen(COLOURS[key], width=2, style=Qt.PenStyle.DashLine)
            )
            p.addItem(self.exact_lines[key])
            p.addItem(self.mean_lines[key])
            self.plots[key] = plot
            hists.addWidget(plot, 1)

        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        table = QGridLayout()
        table.setVerticalSpacing(2)
        heads = [
            ("", ""),
            ("mean ± s.e.", "The N-sample estimate ± its standard error sd/√N."),
            (
                "s.d. of one sample",
                "Sample standard deviation of the single-sample estimates: the estimator's noise. Where the "
                "estimates have heavy tails (the Log-Normal family) this figure itself varies from run to run.",
            ),
            ("samples for ±1%", "N at which the standard error sd/√N is 1% of |exact gradient|: (sd / 0.01|∇|)²."),
        ]
        for c, (text, tip) in enumerate(heads):
            head = QLabel(text)
            head.setToolTip(tip)
            table.addWidget(head, 0, c)
        self.exact_label = QLabel()
        self.exact_label.setObjectName("explorer_grad_exact")
        self.exact_label.setFont(mono)
        self.exact_label.setToolTip("The exact gradient: autograd through the explorer's quadrature ELBO (~1e-10).")
        exact_head = QLabel("exact (quadrature)")
        exact_head.setToolTip(self.exact_label.toolTip())
        table.addWidget(exact_head, 1, 0)
        table.addWidget(self.exact_label, 1, 1, 1, 3)
        self.cells: dict[tuple[str, str], QLabel] = {}
        for r, key in enumerate(ex.ESTIMATORS, start=2):
            name = QLabel(SHORT[key])
            name.setStyleSheet("color: rgb({}, {}, {});".format(*COLOURS[key]))
            name.setToolTip(TIPS[key])
            table.addWidget(name, r, 0)
            for c, col in enumerate(("mean", "sd", "n"), start=1):
                cell = QLabel()
                cell.setObjectName(f"explorer_grad_{key}_{col}")
                cell.setFont(mono)
                cell.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                table.addWidget(cell, r, c)
                self.cells[key, col] = cell
        table.setColumnStretch(1, 1)
        table.setColumnStretch(2, 1)
        table.setColumnStretch(3, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.status_label)
        layout.addLayout(hists, 1)
        layout.addLayout(table)

    # ------------------------------------------------------------------------------------------------ public
    def set_problem(self, model: ex.ExpNormalModel, q: ex.Surrogate) -> None:
        """The explorer's model or q changed: the shown study is stale; rerun it shortly (if shown)."""
        self._model, self._q = model, q.as_floats()
        if self.study is not None and self._key() != self._study_key:
            self.status_label.setText("q changed: estimating again …")
        self._schedule()

    def is_estimating(self) -> bool:
        return self._worker is not None or self._debounce.isActive()

    def estimate(self) -> None:
        """Run the study for the current (model, q) on a worker; a run already going is dropped."""
        self._debounce.stop()
        if self._model is None or self._q is None:
            return
        self.shutdown()
        model, q, n, seed = self._model, self._q, self.n_box.value(), self._seed
        key, cancel = self._key(), threading.Event()
        self.status_label.setText(f"Estimating with N = {n:,} samples per estimator …")
        worker = Worker(
            lambda: ex.gradient_study(model, q, n=n, seed=seed, cancel=cancel),
            on_result=lambda study: self._on_study(key, study),
            on_error=self._on_error,
            parent=self,
            name="gradient_study",
        )
        worker.done.connect(lambda: self._forget(worker))
        self._worker, self._cancel = worker, cancel

    def shutdown(self) -> None:
        """Stop waiting for a running study (its result is dropped) and cancel a scheduled one."""
        self._debounce.stop()
        if self._worker is not None:
            self._worker.cancel()
            self._cancel.set()  # the study stops at its next chunk
            self._worker = None

    # ---------------------------------------------------------------------------------------------- handlers
    def _key(self):
        return (self._model, type(self._q), tuple(self._q.params().values()), self.n_box.value(), self._seed)

    def _schedule(self, *_):
        if self.isVisible():
            self._debounce.start()

    def showEvent(self, event):
        super().showEvent(event)
        if self._model is not None and (self.study is None or self._key() != self._study_key):
            self._debounce.start()

    def hideEvent(self, event):
        self.shutdown()
        super().hideEvent(event)

    def _on_estimate_clicked(self) -> None:
        self._seed += 1
        self.estimate()

    def _forget(self, worker: Worker) -> None:
        if worker is self._worker:
            self._worker = None

    def _on_error(self, error: BaseException, _tb: str) -> None:
        self.status_label.setText(f"The estimate failed: {error}")

    def _on_study(self, key, study: ex.GradientStudy | None) -> None:
        if study is None or key != self._key():
            return  # q moved while it ran: the debounced rerun is on its way
        self.study, self._study_key = study, key
        current = max(self.param_combo.currentIndex(), 0)
        self.param_combo.blockSignals(True)
        self.param_combo.clear()
        for name in study.param_names:
            self.param_combo.addItem(f"∂ELBO/∂{SYMBOLS.get(name, name)}")
        self.param_combo.setCurrentIndex(min(current, len(study.param_names) - 1))
        self.param_combo.setEnabled(len(study.param_names) > 1)
        self.param_combo.blockSignals(False)
        params = ", ".join(f"{SYMBOLS.get(n, n)} = {v:.4g}" for n, v in study.params.items())
        self.status_label.setText(f"{study.family} q with {params}: N = {study.n:,} samples per estimator.")
        self._draw()
        self.study_drawn.emit(study)

    # ---------------------------------------------------------------------------------------------- drawing
    def _draw(self, *_) -> None:
        study = self.study
        if study is None:
            return
        k = max(self.param_combo.currentIndex(), 0)
        edges, density = study.histograms(k, bins=BINS, shared=self.shared_box.isChecked())
        exact = float(study.exact[k])
        name = self.param_combo.currentText()
        self.exact_label.setText(f"{name} = {_fmt(exact)}")
        for key, s in study.stats.items():
            self.hist_curves[key].setData(edges[key], density[key])
            self.exact_lines[key].setValue(exact)
            self.mean_lines[key].setValue(float(s.mean[k]))
            lo, hi = float(edges[key][0]), float(edges[key][-1])
            p = self.plots[key].getPlotItem()
            p.setXRange(min(lo, exact), max(hi, exact), padding=0.05)
            p.setYRange(0.0, 1.1 * float(density[key].max()) or 1.0, padding=0)
            p.setLabel("bottom", name)
            self.cells[key, "mean"].setText(f"{_fmt(float(s.mean[k]))} ± {_fmt(float(s.se[k]))}")
            self.cells[key, "sd"].setText(_fmt(float(s.sd[k])))
            self.cells[key, "n"].setText(_fmt_count(float(s.n_for_1pct[k])))
