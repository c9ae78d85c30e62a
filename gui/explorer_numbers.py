"""The VI explorer's table of numbers (nats): log p(D) both ways, the ELBO exact and by Monte Carlo, KL(q‖p(z|D)),
and the identity log p(D) = ELBO + KL with its residual, from an ``engine.explorer.ExplorerNumbers``."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QWidget

from engine import explorer as ex


def fmt(x: float, digits: int = 6) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits}f}"


def fmt_param(x: float) -> str:
    return f"{x:.4g}"


ROWS = [
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


class ExplorerNumbersBox(QGroupBox):
    """One row per number; ``show_numbers(numbers)`` writes them all."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Numbers (nats)", parent)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        grid = QGridLayout(self)
        grid.setContentsMargins(8, 4, 8, 4)
        grid.setVerticalSpacing(2)
        self.labels: dict[str, QLabel] = {}
        for r, (name, title, tip) in enumerate(ROWS):
            head = QLabel(title)
            head.setToolTip(tip)
            value = QLabel()
            value.setObjectName(name)
            value.setFont(mono)
            value.setToolTip(tip)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(head, r, 0)
            grid.addWidget(value, r, 1)
            self.labels[name] = value
        grid.setColumnStretch(1, 1)

    def show_numbers(self, n: ex.ExplorerNumbers) -> None:
        lab = self.labels
        lab["explorer_logp_label"].setText(
            f"{fmt(n.log_marginal_closed)} closed form,  {fmt(n.log_marginal_quad)} quadrature"
        )
        lab["explorer_elbo_label"].setText(f"{fmt(n.elbo_quad)} quadrature,   {fmt(n.elbo_closed)} closed form")
        lab["explorer_mc_label"].setText(f"{fmt(n.elbo_mc, 4)} ± {fmt(n.elbo_mc_se, 4)}  (± 1 s.e., N = {n.n_samples})")
        lab["explorer_kl_label"].setText(f"{fmt(n.kl)}")
        lab["explorer_identity_label"].setText(
            f"{fmt(n.log_marginal_closed)} = {fmt(n.elbo_quad)} + {fmt(n.kl)}"
            f"   (|residual| = {abs(n.identity_residual):.1e})"
        )
