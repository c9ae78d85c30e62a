"""The VI explorer's controls column and numbers box, built onto the panel (gui/panels/explorer.py): spin boxes for
the model (α, σ, D), the surrogate family and its parameter sliders, Monte Carlo and fit settings, and the table of
exact numbers. Widgets are stored as attributes of the panel and connected to its handlers."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from engine import explorer as ex

SLIDER_STEPS = 1000
LEFT_WIDTH = 300  # the controls column, px


def fmt(x: float, digits: int = 6) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits}f}"


def fmt_param(x: float) -> str:
    return f"{x:.4g}"


def log_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Tick marks for an axis in pyqtgraph's log mode (positions in log10 units): 1-2-5 values, or only the
    decades when that would be crowded."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for mantissas in ((1, 2, 5), (1, 3), (1,)):
        values = [m * 10.0**d for d in decades for m in mantissas if lo <= m * 10.0**d <= hi]
        if len(values) <= 7:
            break
    return [(math.log10(v), f"{v:g}") for v in values]


class ParamSlider(QWidget):
    """A labelled horizontal slider over [lo, hi] (linear or log), showing the exact parameter value."""

    value_changed = Signal(float)

    def __init__(self, index: int, parent: QWidget | None = None):
        super().__init__(parent)
        self._lo, self._hi, self._log = 0.0, 1.0, False
        self.name_label = QLabel()
        self.name_label.setMinimumWidth(90)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setObjectName(f"explorer_param{index}")
        self.value_label = QLabel()
        self.value_label.setObjectName(f"explorer_param{index}_value")
        self.value_label.setMinimumWidth(52)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.name_label)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.value_label)
        self.slider.setToolTip("A parameter of the surrogate q(z) (hidden when the family has fewer parameters).")
        self.slider.valueChanged.connect(self._on_slider)

    def configure(self, label: str, rng: ex.ParamRange, tooltip: str) -> None:
        self._lo, self._hi, self._log = rng.lo, rng.hi, rng.log
        self.name_label.setText(label)
        scale = "log scale" if rng.log else "linear scale"
        self.slider.setToolTip(f"{tooltip}\nRange {fmt_param(rng.lo)} … {fmt_param(rng.hi)} ({scale}).")
        self.value_label.setToolTip(f"Current value of {label} (exact; the slider position is rounded).")

    def _to_value(self, pos: int) -> float:
        f = pos / SLIDER_STEPS
        if self._log:
            return math.exp(math.log(self._lo) + f * (math.log(self._hi) - math.log(self._lo)))
        return self._lo + f * (self._hi - self._lo)

    def _to_pos(self, value: float) -> int:
        if self._log:
            f = (math.log(max(value, 1e-300)) - math.log(self._lo)) / (math.log(self._hi) - math.log(self._lo))
        else:
            f = (value - self._lo) / (self._hi - self._lo)
        return int(round(min(max(f, 0.0), 1.0) * SLIDER_STEPS))

    def show_value(self, value: float) -> None:
        """Move the slider to `value` without emitting (updates from the model side)."""
        self.slider.blockSignals(True)
        self.slider.setValue(self._to_pos(value))
        self.slider.blockSignals(False)
        self.value_label.setText(fmt_param(value))

    def _on_slider(self, pos: int) -> None:
        value = self._to_value(pos)
        self.value_label.setText(fmt_param(value))
        self.value_changed.emit(value)


def build_controls(panel) -> None:
    def spin(name, lo, hi, step, value, decimals, tip):
        box = QDoubleSpinBox()
        box.setObjectName(name)
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setDecimals(decimals)
        box.setValue(value)
        box.setKeyboardTracking(False)
        box.setToolTip(tip)
        box.valueChanged.connect(panel._on_model_changed)
        return box

    panel.alpha_box = spin(
        "explorer_alpha",
        0.1,
        5.0,
        0.1,
        panel._model.alpha,
        2,
        "α: rate of the Exponential prior p(z) = α·exp(−αz), z ≥ 0 (prior mean 1/α).",
    )
    panel.sigma_box = spin(
        "explorer_sigma",
        0.25,
        3.0,
        0.05,
        panel._model.sigma,
        2,
        "σ: standard deviation of the likelihood x | z ~ Normal(z, σ²).",
    )
    panel.D_box = spin(
        "explorer_D",
        -5.0,
        10.0,
        0.1,
        panel._model.D,
        2,
        "D: the observed value of x. May be negative (z stays ≥ 0; the posterior then piles up at 0).",
    )

    panel.family_combo = QComboBox()
    panel.family_combo.setObjectName("explorer_family")
    for fam in ex.FAMILIES.values():
        panel.family_combo.addItem(fam.display_name, fam.name)
    panel.family_combo.setToolTip(
        "Surrogate family for q(z). Exponential: the seed's choice. Normal: truncated to z ≥ 0 "
        "(a plain Normal puts mass where p(z) = 0, so its ELBO is −∞). Log-Normal: exp of a Normal."
    )
    panel.family_combo.currentIndexChanged.connect(panel._on_family_changed)
    panel.family_note = QLabel()
    panel.family_note.setObjectName("explorer_family_note")
    panel.family_note.setWordWrap(True)
    panel.family_note.setToolTip("What is special about this surrogate family.")
    small = QFont(panel.family_note.font())
    small.setPointSizeF(max(small.pointSizeF() - 1.0, 7.0))
    panel.family_note.setFont(small)

    panel.param_sliders = [ParamSlider(0), ParamSlider(1)]
    for i, s in enumerate(panel.param_sliders):
        s.value_changed.connect(lambda v, i=i: panel._on_param_slider(i, v))

    panel.n_box = QSpinBox()
    panel.n_box.setObjectName("explorer_n_samples")
    panel.n_box.setRange(2, 200_000)
    panel.n_box.setValue(1000)
    panel.n_box.setSingleStep(100)
    panel.n_box.setKeyboardTracking(False)
    panel.n_box.setToolTip(
        "N: samples z ~ q for the Monte Carlo ELBO estimate shown on the right (mean of log p(z, D) − log q(z))."
    )
    panel.n_box.valueChanged.connect(panel._on_n_changed)
    panel.resample_button = QPushButton("Resample")
    panel.resample_button.setObjectName("explorer_resample")
    panel.resample_button.setToolTip("Draw a fresh set of N samples for the Monte Carlo ELBO (new seed).")
    panel.resample_button.clicked.connect(panel._on_resample)

    panel.lr_box = QDoubleSpinBox()
    panel.lr_box.setObjectName("explorer_lr")
    panel.lr_box.setRange(0.001, 1.0)
    panel.lr_box.setDecimals(3)
    panel.lr_box.setSingleStep(0.01)
    panel.lr_box.setValue(0.05)
    panel.lr_box.setToolTip(
        "Fit: Adam learning rate (in log-rate / μ / log-σ units), decayed to 0 along a cosine over the steps."
    )
    panel.steps_box = QSpinBox()
    panel.steps_box.setObjectName("explorer_steps")
    panel.steps_box.setRange(10, 20_000)
    panel.steps_box.setSingleStep(100)
    panel.steps_box.setValue(500)
    panel.steps_box.setToolTip("Fit: number of stochastic gradient steps.")
    panel.batch_box = QSpinBox()
    panel.batch_box.setObjectName("explorer_fit_batch")
    panel.batch_box.setRange(1, 4096)
    panel.batch_box.setValue(16)
    panel.batch_box.setToolTip("Fit: reparameterised samples per gradient step (the Monte Carlo batch).")

    panel.fit_button = QPushButton("Fit")
    panel.fit_button.setObjectName("explorer_fit")
    panel.fit_button.setToolTip(
        "Stochastic gradient ascent on the Monte Carlo ELBO with the reparameterisation trick, "
        "starting from the current q. Animates q, the path on the ELBO landscape and the ELBO-vs-step curve."
    )
    panel.fit_button.clicked.connect(panel._on_fit)
    panel.stop_button = QPushButton("Stop")
    panel.stop_button.setObjectName("explorer_stop")
    panel.stop_button.setToolTip("Stop the running fit where it is.")
    panel.stop_button.setEnabled(False)
    panel.stop_button.clicked.connect(lambda *_: panel.stop_fit("stopped"))
    panel.best_button = QPushButton("Best")
    panel.best_button.setObjectName("explorer_best")
    panel.best_button.setToolTip(
        "Jump to the family's optimum: the parameters with the largest exact ELBO, found by Newton's method "
        "on the quadrature ELBO (deterministic)."
    )
    panel.best_button.clicked.connect(panel._on_best)

    panel.report_label = QLabel("Press Fit to run stochastic VI from the current q.")
    panel.report_label.setObjectName("explorer_report_label")
    panel.report_label.setWordWrap(True)
    panel.report_label.setToolTip("Outcome of the last fit, compared with the family's best possible ELBO.")
    panel.report_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)


def build_numbers(panel) -> None:
    mono = QFont("monospace")
    mono.setStyleHint(QFont.StyleHint.Monospace)
    panel.numbers_box = QGroupBox("Numbers (nats)")
    grid = QGridLayout(panel.numbers_box)
    grid.setContentsMargins(8, 4, 8, 4)
    grid.setVerticalSpacing(2)
    rows = [
        (
            "explorer_logp_label",
            "log p(D)",
            "The log evidence: closed form α·exp(α²σ²/2 − αD)·Φ((D − ασ²)/σ), and by quadrature of the joint.",
        ),
        (
            "explorer_elbo_label",
            "ELBO, exact",
            "E_q[log p(z, D) − log q(z)] by Gauss–Legendre quadrature (and from q's closed-form moments).",
        ),
        (
            "explorer_mc_label",
            "ELBO, Monte Carlo",
            "Mean of log p(z_i, D) − log q(z_i) over N reparameterised samples z_i ~ q, ± one standard error.",
        ),
        (
            "explorer_kl_label",
            "KL(q ‖ p(z|D))",
            "∫ q (log q − log p(z|D)) dz by quadrature on its own grid, with the closed-form posterior.",
        ),
        (
            "explorer_identity_label",
            "log p(D) = ELBO + KL",
            "log p(D) = ELBO + KL(q ‖ p(z|D)) holds for every q: the gap between the evidence and the ELBO is "
            "exactly the KL. Residual = log p(D) − (ELBO + KL), computed from the three independent numbers.",
        ),
    ]
    panel.number_labels: dict[str, QLabel] = {}
    for r, (name, title, tip) in enumerate(rows):
        head = QLabel(title)
        head.setToolTip(tip)
        value = QLabel()
        value.setObjectName(name)
        value.setFont(mono)
        value.setToolTip(tip)
        value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        grid.addWidget(head, r, 0)
        grid.addWidget(value, r, 1)
        panel.number_labels[name] = value
    grid.setColumnStretch(1, 1)
    panel.logp_label = panel.number_labels["explorer_logp_label"]
    panel.elbo_label = panel.number_labels["explorer_elbo_label"]
    panel.mc_label = panel.number_labels["explorer_mc_label"]
    panel.kl_label = panel.number_labels["explorer_kl_label"]
    panel.identity_label = panel.number_labels["explorer_identity_label"]
