"""The VI explorer's controls column: spin boxes for the model (α, σ, D), the surrogate family and its parameter
sliders, the Monte Carlo sample count, and the fit's settings and buttons. A widget with signals: the panel
(gui/panels/explorer.py) listens to them and tells it what to show; it holds no state of the explorer."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine import explorer as ex
from gui.explorer_numbers import fmt_param
from gui.gradient_lab import estimator_combo
from gui.widgets import button

SLIDER_STEPS = 1000
LEFT_WIDTH = 300  # the controls column, px


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


def _spin(name: str, lo: float, hi: float, step: float, value: float, decimals: int, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setObjectName(name)
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setValue(value)
    box.setKeyboardTracking(False)
    box.setToolTip(tip)
    return box


class ExplorerControls(QWidget):
    """The left column of the VI explorer. Signals say what the user did; values are read with the getters."""

    model_changed = Signal()  # α, σ or D
    family_changed = Signal()
    param_changed = Signal(int, float)  # (index of q's parameter, new value)
    samples_changed = Signal()  # N of the Monte Carlo ELBO
    resample_clicked = Signal()
    fit_clicked = Signal()
    stop_clicked = Signal()
    best_clicked = Signal()

    def __init__(self, model: ex.ExpNormalModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("explorer_controls")
        self.alpha_box = _spin(
            "explorer_alpha", 0.1, 5.0, 0.1, model.alpha, 2,
            "α: rate of the Exponential prior p(z) = α·exp(−αz), z ≥ 0 (prior mean 1/α).",
        )  # fmt: skip
        self.sigma_box = _spin(
            "explorer_sigma", 0.25, 3.0, 0.05, model.sigma, 2,
            "σ: standard deviation of the likelihood x | z ~ Normal(z, σ²).",
        )  # fmt: skip
        self.D_box = _spin(
            "explorer_D", -5.0, 10.0, 0.1, model.D, 2,
            "D: the observed value of x. May be negative (z stays ≥ 0; the posterior then piles up at 0).",
        )  # fmt: skip
        for box in (self.alpha_box, self.sigma_box, self.D_box):
            box.valueChanged.connect(lambda *_: self.model_changed.emit())

        self.family_combo = QComboBox()
        self.family_combo.setObjectName("explorer_family")
        for fam in ex.FAMILIES.values():
            self.family_combo.addItem(fam.display_name, fam.name)
        self.family_combo.setToolTip(
            "Surrogate family for q(z). Exponential: the seed's choice. Normal: truncated to z ≥ 0 "
            "(a plain Normal puts mass where p(z) = 0, so its ELBO is −∞). Log-Normal: exp of a Normal."
        )
        self.family_combo.currentIndexChanged.connect(lambda *_: self.family_changed.emit())
        self.family_note = QLabel()
        self.family_note.setObjectName("explorer_family_note")
        self.family_note.setWordWrap(True)
        self.family_note.setToolTip("What is special about this surrogate family.")
        small = QFont(self.family_note.font())
        small.setPointSizeF(max(small.pointSizeF() - 1.0, 7.0))
        self.family_note.setFont(small)

        self.param_sliders = [ParamSlider(0), ParamSlider(1)]
        for i, s in enumerate(self.param_sliders):
            s.value_changed.connect(lambda v, i=i: self.param_changed.emit(i, v))

        self.n_box = QSpinBox()
        self.n_box.setObjectName("explorer_n_samples")
        self.n_box.setRange(2, 200_000)
        self.n_box.setValue(1000)
        self.n_box.setSingleStep(100)
        self.n_box.setKeyboardTracking(False)
        self.n_box.setToolTip(
            "N: samples z ~ q for the Monte Carlo ELBO estimate shown on the right (mean of log p(z, D) − log q(z))."
        )
        self.n_box.valueChanged.connect(lambda *_: self.samples_changed.emit())
        self.resample_button = button(
            "Resample", "explorer_resample", "Draw a fresh set of N samples for the Monte Carlo ELBO (new seed)."
        )
        self.resample_button.clicked.connect(lambda *_: self.resample_clicked.emit())

        self.lr_box = _spin(
            "explorer_lr", 0.001, 1.0, 0.01, 0.05, 3,
            "Fit: Adam learning rate (in log-rate / μ / log-σ units), decayed to 0 along a cosine over the steps.",
        )  # fmt: skip
        self.steps_box = QSpinBox()
        self.steps_box.setObjectName("explorer_steps")
        self.steps_box.setRange(10, 20_000)
        self.steps_box.setSingleStep(100)
        self.steps_box.setValue(500)
        self.steps_box.setToolTip("Fit: number of stochastic gradient steps.")
        self.batch_box = QSpinBox()
        self.batch_box.setObjectName("explorer_fit_batch")
        self.batch_box.setRange(1, 4096)
        self.batch_box.setValue(16)
        self.batch_box.setToolTip("Fit: reparameterised samples per gradient step (the Monte Carlo batch).")
        self.estimator_combo = estimator_combo()

        self.fit_button = button(
            "Fit",
            "explorer_fit",
            "Stochastic gradient ascent on the Monte Carlo ELBO with the reparameterisation trick, "
            "starting from the current q. Animates q, the path on the ELBO landscape and the ELBO-vs-step curve.",
        )
        self.fit_button.clicked.connect(lambda *_: self.fit_clicked.emit())
        self.stop_button = button("Stop", "explorer_stop", "Stop the running fit where it is.")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(lambda *_: self.stop_clicked.emit())
        self.best_button = button(
            "Best",
            "explorer_best",
            "Jump to the family's optimum: the parameters with the largest exact ELBO, found by Newton's method "
            "on the quadrature ELBO (deterministic).",
        )
        self.best_button.clicked.connect(lambda *_: self.best_clicked.emit())

        self.report_label = QLabel("Press Fit to run stochastic VI from the current q.")
        self.report_label.setObjectName("explorer_report_label")
        self.report_label.setWordWrap(True)
        self.report_label.setToolTip("Outcome of the last fit, compared with the family's best possible ELBO.")
        self.report_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._layout()

    def _layout(self) -> None:
        model_box = QGroupBox("Model")
        form = QFormLayout(model_box)
        formula = QLabel("z ~ Exp(α),  x | z ~ N(z, σ²),  observed x = D")
        formula.setWordWrap(True)
        formula.setMinimumHeight(formula.heightForWidth(LEFT_WIDTH - 64) + 2)
        formula.setToolTip("The Exponential–Normal model of seed 001: a latent z ≥ 0 and one noisy observation of it.")
        form.addRow(formula)
        form.addRow("α (prior rate)", self.alpha_box)
        form.addRow("σ (noise sd)", self.sigma_box)
        form.addRow("D (observed x)", self.D_box)

        q_box = QGroupBox("Surrogate q(z)")
        qv = QVBoxLayout(q_box)
        qv.addWidget(self.family_combo)
        qv.addWidget(self.family_note)
        for s in self.param_sliders:
            qv.addWidget(s)
        n_row = QHBoxLayout()
        n_label = QLabel("MC samples N")
        n_label.setMinimumWidth(n_label.sizeHint().width())  # whole at 1024×700
        n_row.addWidget(n_label)
        n_row.setSpacing(4)
        n_row.addWidget(self.n_box, 1)
        n_row.addWidget(self.resample_button)
        qv.addLayout(n_row)

        fit_box = QGroupBox("Fit (stochastic VI)")
        fv = QVBoxLayout(fit_box)
        fit_form = QFormLayout()
        fit_form.addRow("learning rate", self.lr_box)
        steps_row = QHBoxLayout()  # steps and batch share a row, so the estimator's row costs no height
        steps_row.addWidget(self.steps_box, 1)
        steps_row.addWidget(QLabel("×"))
        steps_row.addWidget(self.batch_box, 1)
        steps_label = QLabel("steps × n")  # short: whole in the 1024-px window's narrow column
        steps_label.setToolTip("Fit steps × Monte Carlo samples n per step")
        fit_form.addRow(steps_label, steps_row)
        fit_form.addRow("gradient", self.estimator_combo)
        fv.addLayout(fit_form)
        buttons = QHBoxLayout()
        for b in (self.fit_button, self.stop_button, self.best_button):
            buttons.addWidget(b)
        fv.addLayout(buttons)
        fv.addWidget(self.report_label)

        left = QVBoxLayout(self)
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(model_box)
        left.addWidget(q_box)
        left.addWidget(fit_box)
        left.addStretch(1)
        self.setFixedWidth(LEFT_WIDTH)

    # -- what the user chose ----------------------------------------------------------------------------------
    def model(self) -> ex.ExpNormalModel:
        return ex.ExpNormalModel(self.alpha_box.value(), self.sigma_box.value(), self.D_box.value())

    def family(self) -> type[ex.Surrogate]:
        return ex.FAMILIES[self.family_combo.currentData()]

    def samples(self) -> int:
        return self.n_box.value()

    def fit_settings(self) -> dict:
        """Keyword arguments of ``engine.explorer.fit`` (besides the model, family and starting q)."""
        return {
            "lr": self.lr_box.value(),
            "steps": self.steps_box.value(),
            "n_samples": self.batch_box.value(),
            "estimator": self.estimator_combo.currentData(),
        }

    # -- what the panel shows ---------------------------------------------------------------------------------
    def show_family(self, fam: type[ex.Surrogate], model: ex.ExpNormalModel, q: ex.Surrogate) -> None:
        """The family's note and one slider per parameter, over its ranges for this model."""
        ranges = fam.param_ranges(model)
        self.family_note.setText(f"{fam.label}. {fam.note}")
        # a word-wrapped label in a fixed-width column does not always get its height-for-width: reserve it
        self.family_note.setMinimumHeight(self.family_note.heightForWidth(LEFT_WIDTH - 64) + 2)
        for i, slider in enumerate(self.param_sliders):
            if i < len(fam.param_names):
                name = fam.param_names[i]
                label = fam.param_labels[i]
                slider.configure(label, ranges[name], f"Parameter {label} of q(z): {fam.label}.")
                slider.show_value(getattr(q, name))
            slider.setVisible(i < len(fam.param_names))

    def show_q(self, q: ex.Surrogate) -> None:
        for i, name in enumerate(type(q).param_names):
            self.param_sliders[i].show_value(getattr(q, name))

    def set_fitting(self, fitting: bool) -> None:
        self.fit_button.setEnabled(not fitting)
        self.stop_button.setEnabled(fitting)

    def set_report(self, text: str) -> None:
        self.report_label.setText(text)
