"""The 2-D Lab's controls column: the data (a built-in set, a CSV file, or drawn points), the mixture's K, the
VAE's settings, Start / Pause / Step / Reset, and a box of numbers. Widgets only: the panel connects them."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.lab2d import points as P
from engine.lab2d.mixture import MAX_COMPONENTS
from engine.lab2d.vae import MAX_LAYERS, MAX_TRAIN_K, PointVaeConfig
from gui.widgets import button

WIDTH = 250


def _spin(lo, hi, value, tip, name, step=None, decimals=None):
    box = QDoubleSpinBox() if decimals is not None else QSpinBox()
    if decimals is not None:
        box.setDecimals(decimals)
    box.setRange(lo, hi)
    box.setValue(value)
    if step is not None:
        box.setSingleStep(step)
    box.setToolTip(tip)
    box.setObjectName(name)
    box.setKeyboardTracking(False)
    return box


class Lab2DControls(QWidget):
    def __init__(self):
        super().__init__()
        self.setObjectName("lab2dControls")
        self.setFixedWidth(WIDTH)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(6)
        col.addWidget(self._data_box())
        col.addWidget(self._models_box())
        col.addLayout(self._buttons())
        self.numbers = QLabel()
        self.numbers.setObjectName("lab2dNumbers")
        self.numbers.setTextFormat(Qt.TextFormat.RichText)
        self.numbers.setWordWrap(True)
        self.message = QLabel()
        self.message.setObjectName("lab2dMessage")
        self.message.setWordWrap(True)
        self.message.setProperty("role", "hint")
        col.addWidget(self.numbers)
        col.addWidget(self.message)
        col.addStretch(1)

    def _data_box(self) -> QGroupBox:
        g = QGroupBox("Data")
        f = QFormLayout(g)
        f.setContentsMargins(6, 4, 6, 4)
        f.setVerticalSpacing(3)
        self.source = QComboBox()
        self.source.setObjectName("lab2dSource")
        for key, name in P.NAMES.items():
            self.source.addItem(name, key)
        self.source.setCurrentIndex(self.source.findData("eight_gaussians"))
        self.source.setToolTip("A built-in point set (drawn points and CSV files replace it)")
        self.n_points = _spin(P.MIN_POINTS, P.MAX_POINTS, 2000, "Points in the built-in set", "lab2dPoints", 100)
        self.noise = _spin(
            0.0,
            1.0,
            P.DEFAULT_NOISE["eight_gaussians"],
            "Gaussian noise (σ) added to each coordinate",
            "lab2dNoise",
            0.01,
            3,
        )
        self.seed = _spin(
            0, 2**31 - 1, 0, "The built-in set and the models' starting weights follow this seed", "lab2dSeed"
        )
        f.addRow("Set", self.source)
        f.addRow("Points", self.n_points)
        f.addRow("Noise σ", self.noise)
        f.addRow("Seed", self.seed)
        self.brush = _spin(
            0.02,
            2.0,
            0.2,
            "Radius of the brush: left-drag on a plot adds points, right-drag erases",
            "lab2dBrush",
            0.05,
            2,
        )
        f.addRow("Brush", self.brush)
        row = QHBoxLayout()
        self.open_csv = button("Open CSV…", "lab2dOpenCsv", "Points from a CSV file with two numeric columns (x, y)")
        self.clear = button("Clear", "lab2dClear", "Remove every point, then draw your own")
        row.addWidget(self.open_csv)
        row.addWidget(self.clear)
        f.addRow(row)
        self.data_label = QLabel()
        self.data_label.setObjectName("lab2dDataLabel")
        self.data_label.setProperty("role", "hint")
        self.data_label.setWordWrap(True)
        f.addRow(self.data_label)
        return g

    def _models_box(self) -> QGroupBox:
        g = QGroupBox("Models")
        f = QFormLayout(g)
        f.setContentsMargins(6, 4, 6, 4)
        f.setVerticalSpacing(3)
        d = PointVaeConfig()
        self.components = _spin(1, MAX_COMPONENTS, 8, "Mixture components K (restarts the models)", "lab2dComponents")
        self.latent_dim = QComboBox()
        self.latent_dim.setObjectName("lab2dLatentDim")
        self.latent_dim.addItem("2 (a warped sheet)", 2)
        self.latent_dim.addItem("1 (a curve)", 1)
        self.latent_dim.setToolTip("The VAE's latent dimension d (restarts the models)")
        self.sigma_mode = QComboBox()
        self.sigma_mode.setObjectName("lab2dSigmaMode")
        self.sigma_mode.addItem("learned", True)
        self.sigma_mode.addItem("fixed", False)
        self.sigma_mode.setToolTip("The decoder's σ: learned (one per coordinate), or fixed at the value beside")
        self.sigma = _spin(
            0.02, 2.0, d.sigma, "σ of p(x|z): fixed value or learned σ's start (restarts)", "lab2dSigma", 0.01, 3
        )
        srow = QHBoxLayout()
        srow.addWidget(self.sigma_mode)
        srow.addWidget(self.sigma)
        self.hidden = _spin(
            4, 1024, d.hidden, "Units per hidden layer of encoder and decoder (restarts)", "lab2dHidden", 8
        )
        self.layers = _spin(
            1,
            MAX_LAYERS,
            d.layers,
            "Hidden layers of encoder and decoder: deeper, steeper bridges (restarts)",
            "lab2dLayers",
        )
        self.beta = _spin(
            0.0, 100.0, d.beta, "Weight of the KL term (1: the ELBO); applies at once", "lab2dBeta", 0.1, 2
        )
        self.lr = _spin(1e-5, 1.0, d.lr, "Adam's learning rate; applies at once", "lab2dLr", 1e-3, 5)
        self.iwae_k = _spin(
            1, 10_000, d.iwae_k, "Importance samples K of the IWAE curve and the VAE's density map", "lab2dIwaeK"
        )
        self.train_k = _spin(
            1,
            MAX_TRAIN_K,
            d.train_k,
            "Samples per point of the VAE's training objective: 1 trains on the ELBO (β applies); K > 1 on the "
            "IWAE-K bound (β does not apply), tighter, so the decoder thins its bridges between modes; applies at once",
            "lab2dTrainK",
        )
        self.train_k.setPrefix("IWAE, K = ")
        self.train_k.setSpecialValueText("ELBO")
        self.train_k.valueChanged.connect(lambda k: self.beta.setEnabled(k == 1))  # β weighs the ELBO's KL only
        f.addRow("Mixture K", self.components)
        f.addRow("VAE d", self.latent_dim)
        f.addRow("σ", srow)
        f.addRow("Hidden", self.hidden)
        f.addRow("Layers", self.layers)
        f.addRow("β", self.beta)
        f.addRow("lr", self.lr)
        f.addRow("IWAE K", self.iwae_k)
        f.addRow("Train on", self.train_k)
        return g

    def _buttons(self) -> QGridLayout:
        grid = QGridLayout()
        self.start = button("Start", "lab2dStart", "Train both models: one EM step and a few VAE batches per tick")
        self.pause = button("Pause", "lab2dPause", "Pause both models")
        self.step = button("Step", "lab2dStep", "One EM step and one VAE batch")
        self.reset = button("Reset", "lab2dReset", "New models from the seed; the curves start over")
        grid.addWidget(self.start, 0, 0)
        grid.addWidget(self.pause, 0, 1)
        grid.addWidget(self.step, 1, 0)
        grid.addWidget(self.reset, 1, 1)
        return grid

    def vae_config(self) -> PointVaeConfig:
        return PointVaeConfig(
            latent_dim=int(self.latent_dim.currentData()),
            hidden=self.hidden.value(),
            layers=self.layers.value(),
            learned_sigma=bool(self.sigma_mode.currentData()),
            sigma=self.sigma.value(),
            beta=self.beta.value(),
            lr=self.lr.value(),
            iwae_k=self.iwae_k.value(),
            train_k=self.train_k.value(),
            seed=self.seed.value(),
        )
