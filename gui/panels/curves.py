"""Training curves: ELBO (per step raw + smoothed, test per epoch, IWAE per epoch), the reconstruction and KL terms
(the KL with the mutual information I(x;z) beside it), and the KL of each latent dimension as bars with a warning
when units collapse or the KL falls while I(x;z) is near zero.

The metrics are the session state's history (gui/state.py); its signals mark the panel dirty; ``refresh()`` (called by the window's timer) pushes the
buffers into plot items created once. Raw per-step curves are drawn faint and left out of the y auto-range, which
follows the smoothed curve (ignoring the first steps' plunge) unless the user zooms or pans."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel

from engine.messages import EpochSummary
from engine.mutual_information import collapse_warning
from engine.objectives import ACTIVE_UNIT_THRESHOLD
from gui import style
from gui.state import StudioState
from gui.view_range import needs_refit, padded

EMA = 0.95  # smoothing of the per-step curves (debiased exponential moving average, like TensorBoard's slider)
NATS = "nats per example"
IDLE_CAPTION = "Press Start (Ctrl+Return) to train; per-epoch test figures appear here."
# before the first epoch's test figures, by run status (gui/state.py); any other status: IDLE_CAPTION
WAITING_CAPTION = {
    "starting": "Starting: the step curves begin in a moment; per-epoch test figures appear after each epoch.",
    "running": "Training: per-epoch test figures (ELBO, IWAE bound, recon, KL) appear after each epoch.",
    "paused": "Paused before the first epoch ended: Resume (Ctrl+P) to reach its test figures.",
    "diverged": "Diverged before the first epoch ended: lower the learning rate, then Resume.",
    "stopped": "Stopped before the first epoch ended: no per-epoch test figures for this model.",
    "loaded": "This checkpoint has no per-epoch test figures: it was saved within its first epoch.",
}


class _Smoothed:
    """The debiased EMA of one history column, extended incrementally as the history grows."""

    def __init__(self):
        self.values = np.zeros(0)
        self._m, self._w = 0.0, 0.0

    def update(self, column: np.ndarray) -> np.ndarray:
        n0 = len(self.values)
        if len(column) < n0:  # another history: start over
            self.clear()
            n0 = 0
        if len(column) > n0:
            new = column[n0:]
            out = np.empty(len(new))
            m, w = self._m, self._w
            for i, x in enumerate(new.tolist()):
                m = EMA * m + (1 - EMA) * x
                w = EMA * w + (1 - EMA)
                out[i] = m / w
            self._m, self._w = m, w
            self.values = np.concatenate([self.values, out])
        return self.values

    def clear(self) -> None:
        self.values = np.zeros(0)
        self._m = self._w = 0.0


class _TermPlot:
    """One plot: a faint raw per-step curve, its smoothed curve, and per-epoch points (test set)."""

    def __init__(self, title: str, name: str, color: str, robust: str):
        self.widget = style.make_plot(title, "step", NATS, name)
        self.plot = self.widget.getPlotItem()
        self.vb = self.plot.getViewBox()
        self.robust = robust  # "low": ignore the plunge of the first steps; "high": ignore early spikes
        c = QColor(color)
        faint = QColor(c)
        faint.setAlpha(38)
        self.raw = pg.PlotDataItem(pen=pg.mkPen(faint, width=1))
        self.smooth = pg.PlotDataItem(pen=pg.mkPen(c, width=2))
        for item in (self.raw, self.smooth):
            item.setClipToView(True)  # after creation: pyqtgraph 0.14's plot(clipToView=True) fails
            item.setDownsampling(auto=True, method="peak")
        self.plot.addItem(self.raw, ignoreBounds=True)
        self.plot.addItem(self.smooth)
        self.follow = True
        self.x_extent: int | None = None
        self._range = None
        self.vb.enableAutoRange(x=False, y=False)
        self.vb.sigRangeChangedManually.connect(self._on_manual)
        self.vb.sigStateChanged.connect(self._on_state)
        self.extra: list[tuple[np.ndarray, np.ndarray]] = []

    def _on_manual(self, *_):
        self.follow = False

    def _on_state(self, *_):
        if any(self.vb.autoRangeEnabled()):  # the "A" button or "View all": follow the data again
            self.follow = True
            self.vb.enableAutoRange(x=False, y=False)
            self._range = None
            self.fit()

    def set_data(self, x: np.ndarray, raw: np.ndarray, smooth: np.ndarray) -> None:
        self._x, self._smooth = x, smooth
        self.raw.setData(x, raw)
        self.smooth.setData(x, smooth)

    def set_x_extent(self, total_steps: int | None) -> None:
        """The x axis spans the whole run from the start (curves fill it left to right; the axis stays still)."""
        self.x_extent = total_steps
        self._range = None

    def fit(self) -> None:
        """Keep the data in view, changing the range rarely (hysteresis): a still axis is a cheap repaint."""
        if not self.follow:
            return
        need = self._needed_range()
        if need is None:
            return
        (x0, x1), (lo, hi) = need
        cur = self._range
        if cur is not None:
            (cx0, cx1), (clo, chi) = cur
            refit = needs_refit((clo, chi), lo, hi, 2.5 * 1.3)
            if self.x_extent:  # a known run length: x spans the whole run, fixed
                refit = refit or not (cx0 <= x0 and x1 <= cx1)
            else:  # x follows the data
                refit = refit or needs_refit((cx0, cx1), x0, x1, 3.0, min_span=1.0)
            if not refit:
                return
        lo, hi = padded(lo, hi)
        if self.x_extent:
            x0, x1 = 0.0, float(self.x_extent)
        else:
            x1 = x0 + 1.25 * max(x1 - x0, 1.0)
        self._range = ((x0, x1), (lo, hi))
        self.vb.setRange(xRange=(x0, x1), yRange=(lo, hi), padding=0.02)

    def _needed_range(self):
        v = getattr(self, "_smooth", np.zeros(0))
        pts = [y[np.isfinite(y)] for _, y in self.extra if len(y)]
        pts = [p for p in pts if len(p)]
        if not len(v) and not pts:
            return None
        lo_parts, hi_parts = [], []
        if len(v):
            if self.robust == "low" and len(v) > 40:
                # The first steps' plunge (thousands of nats for a Gaussian or continuous-Bernoulli likelihood)
                # would flatten the rest of the curve: the range follows the data after its first tenth.
                tail = v[max(20, len(v) // 10) :]
                lo_parts.append(tail.min() if len(tail) else np.percentile(v, 3.0))
                hi_parts.append(v.max())
            elif self.robust == "high" and len(v) > 40:
                lo_parts.append(v.min())
                hi_parts.append(np.percentile(v, 99.0))
            else:
                lo_parts.append(v.min())
                hi_parts.append(v.max())
        for p in pts:
            lo_parts.append(p.min())
            hi_parts.append(p.max())
        lo, hi = float(min(lo_parts)), float(max(hi_parts))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return None
        if hi - lo < 1e-6:
            lo, hi = lo - 0.5, hi + 0.5
        xs = [self._x] if getattr(self, "_x", None) is not None and len(self._x) else []
        xs += [x for x, _ in self.extra if len(x)]
        x1 = max(float(np.max(x)) for x in xs) if xs else 1.0
        return (0.0, x1), (lo, hi)


def _swatch(color: str, glyph: str, text: str, alpha: float = 1.0) -> str:
    c = QColor(color)
    return f"<span style='color:rgba({c.red()},{c.green()},{c.blue()},{alpha})'>{glyph}</span>&nbsp;{text}"


class CurvesPanel(QGroupBox):
    """Draws ``state.history`` (gui/state.py): the panel keeps no metrics of its own, only the smoothed curves
    derived from them."""

    def __init__(self, state: StudioState, parent=None):
        super().__init__("Training curves", parent)
        self.setObjectName("curvesPanel")
        self.state = state
        lay = QGridLayout(self)
        lay.setContentsMargins(6, 12, 6, 6)
        lay.setHorizontalSpacing(6)
        lay.setVerticalSpacing(2)

        # short titles: four plots share a row beside the settings column of a 1024-pixel window
        self.elbo = _TermPlot("ELBO ↑", "elboPlot", style.ELBO, "low")
        self.recon = _TermPlot("E<sub>q</sub>[log p(x|z)]", "reconPlot", style.RECON, "low")
        self.kl = _TermPlot("KL(q ‖ p(z))", "klPlot", style.KL, "high")
        for p, tip in (
            (self.elbo, "The evidence lower bound E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)); higher is better."),
            (self.recon, "Reconstruction term: the expected log-likelihood under q(z|x)."),
            (
                self.kl,
                "KL(q(z|x) ‖ p(z)): how far the encoder's Gaussian is from the prior. Per epoch, I(x;z): the part of "
                "it that is information about the image (the rest, KL(q(z) ‖ p(z)), is the codes' mismatch with the "
                "prior as a whole).",
            ),
        ):
            p.widget.setToolTip(tip)
        ep = dict(symbolSize=7, pen=pg.mkPen(style.TEST, width=1.5), symbol="o", symbolPen=pg.mkPen("w", width=1))
        self.test_elbo = pg.PlotDataItem(symbolBrush=style.TEST, **ep)
        self.test_iwae = pg.PlotDataItem(
            symbol="s",
            symbolSize=7,
            symbolBrush=style.IWAE,
            symbolPen=pg.mkPen("w", width=1),
            pen=pg.mkPen(style.IWAE, width=1.5, style=Qt.PenStyle.DashLine),
        )
        self.test_recon = pg.PlotDataItem(symbolBrush=style.TEST, **ep)
        self.test_kl = pg.PlotDataItem(symbolBrush=style.TEST, **ep)
        # I_q(x; z): the part of the KL that is information about x (engine/mutual_information.py)
        self.test_mi = pg.PlotDataItem(
            symbol="t",
            symbolSize=8,
            symbolBrush=style.MI,
            symbolPen=pg.mkPen("w", width=1),
            pen=pg.mkPen(style.MI, width=1.5),
        )
        for p, item in (
            (self.elbo, self.test_elbo),
            (self.elbo, self.test_iwae),
            (self.recon, self.test_recon),
            (self.kl, self.test_kl),
            (self.kl, self.test_mi),
        ):
            p.plot.addItem(item)
        # One legend for the row, above the plots: a legend inside a plot covers its data on a small window.
        self.legend = QLabel(
            "&nbsp;&nbsp; ".join(
                (
                    _swatch(style.ELBO, "━", "train per step, smoothed"),
                    _swatch(style.TEST, "●", "test per epoch"),
                    _swatch(style.IWAE, "■", "test IWAE log p(x)"),
                    _swatch(style.MI, "▼", "test I(x;z)"),
                )
            )
        )
        self.legend.setObjectName("curvesLegend")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setProperty("role", "caption")

        self.kl_dims = style.make_plot("KL per dim", "latent dimension", NATS, "klDimPlot")
        self.bars = pg.BarGraphItem(x=np.zeros(0), height=np.zeros(0), width=0.7, brush=style.KL)
        self.kl_dims.getPlotItem().addItem(self.bars)
        self.kl_dims.getPlotItem().getViewBox().setMouseEnabled(x=False, y=False)

        self.caption = QLabel(IDLE_CAPTION)
        self.caption.setObjectName("curvesCaption")
        self.caption.setProperty("role", "caption")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.collapse_warning = QLabel("")
        self.collapse_warning.setObjectName("collapseWarning")
        self.collapse_warning.setProperty("role", "warning")
        self.collapse_warning.setWordWrap(True)
        self.collapse_warning.hide()

        lay.addWidget(self.legend, 0, 0, 1, 4)
        lay.addWidget(self.elbo.widget, 1, 0)
        lay.addWidget(self.recon.widget, 1, 1)
        lay.addWidget(self.kl.widget, 1, 2)
        lay.addWidget(self.kl_dims, 1, 3)
        for c, s in enumerate((4, 3, 3, 3)):
            lay.setColumnStretch(c, s)
        lay.setRowStretch(1, 1)
        # the caption spans the row (fewer wrapped lines: at 1024×700 a third line pushed it over the plots' axes);
        # the rare collapse warning gets a row of its own
        lay.addWidget(self.caption, 2, 0, 1, 4)
        lay.addWidget(self.collapse_warning, 3, 0, 1, 4)

        self.smoothed = {"elbo": _Smoothed(), "recon": _Smoothed(), "kl": _Smoothed()}
        self._order = ("elbo", "recon", "kl")
        self._next = 0
        self._pending: set[str] = set()
        self._epochs_dirty = False
        state.history_reset.connect(self._on_history_reset)
        state.history_grew.connect(self._on_history_grew)
        state.model_changed.connect(lambda: self.set_total_steps(None))
        state.status_changed.connect(lambda _s: self._show_waiting())
        self._on_history_reset()

    # -- data in -------------------------------------------------------------------------------------------
    @property
    def history(self):
        return self.state.history

    @property
    def steps(self) -> np.ndarray:
        """x of every drawn row: steps done after that batch."""
        return self.history.steps + 1

    @property
    def epochs(self) -> list[EpochSummary]:
        return self.history.epochs

    def _on_history_reset(self) -> None:
        for s in self.smoothed.values():
            s.clear()
        self._pending = {"elbo", "recon", "kl"}
        self._epochs_dirty = True
        self.bars.setOpts(x=np.zeros(0), height=np.zeros(0), brushes=None)
        pi = self.kl_dims.getPlotItem()
        pi.getAxis("bottom").setTicks(None)
        pi.setXRange(0, 1, padding=0)
        self.collapse_warning.hide()
        self._show_waiting()

    def _show_waiting(self) -> None:
        """Before the first epoch's figures, the caption says what the run is doing (never "press Start" while it
        trains)."""
        if not self.history.epochs:
            self.caption.setText(WAITING_CAPTION.get(self.state.status, IDLE_CAPTION))

    def _on_history_grew(self) -> None:
        self._pending = {"elbo", "recon", "kl"}
        if len(self.history.epochs) != getattr(self, "_drawn_epochs", -1):
            self._epochs_dirty = True

    # -- drawing -----------------------------------------------------------------------------------------------
    def set_total_steps(self, total: int | None) -> None:
        for p in (self.elbo, self.recon, self.kl):
            p.set_x_extent(total)
        self._pending = {"elbo", "recon", "kl"}

    def refresh_one(self) -> bool:
        """Redraw at most one dirty plot (round robin), so no event-loop pass paints more than one: the window's
        timer calls this; each curve then updates a few times a second. True when it drew something."""
        if self._epochs_dirty:
            self._epochs_dirty = False
            self._draw_epochs()
            self._pending |= {"elbo", "recon", "kl"}
            return True
        for _ in range(3):
            key = self._order[self._next]
            self._next = (self._next + 1) % 3
            if key in self._pending:
                self._pending.discard(key)
                p = getattr(self, key)
                col = self.history.column(key)
                p.set_data(self.steps, col, self.smoothed[key].update(col))
                p.fit()
                return True
        return False

    def refresh(self) -> bool:
        """Redraw everything that is dirty now. True when it drew something."""
        drew = False
        while self.refresh_one():
            drew = True
        return drew

    @property
    def dirty(self) -> bool:
        return bool(self._pending) or self._epochs_dirty

    def _draw_epochs(self) -> None:
        ep = self.epochs
        self._drawn_epochs = len(ep)
        xs = np.array([s.step for s in ep], np.float64)

        def col(name):
            return np.array([getattr(s, name) for s in ep], np.float64)

        self.test_elbo.setData(xs, col("test_elbo"))
        self.test_iwae.setData(xs, col("test_iwae"))
        self.test_recon.setData(xs, col("test_recon"))
        self.test_kl.setData(xs, col("test_kl"))
        self.elbo.extra = [(xs, col("test_elbo")), (xs, col("test_iwae"))]
        self.recon.extra = [(xs, col("test_recon"))]
        mi = col("test_mi")
        known = np.isfinite(mi)  # a checkpoint saved before the MI was measured has none
        self.test_mi.setData(xs[known], mi[known])
        self.kl.extra = [(xs, col("test_kl")), (xs[known], mi[known])]
        if not ep:
            return
        s = ep[-1]
        gap = s.test_iwae - s.test_elbo_subset
        self.caption.setText(
            f"<b>Epoch {s.epoch + 1}</b> (test set): ELBO <b>{s.test_elbo:.2f}</b> · "
            f"IWAE log p(x) ≥ <b>{s.test_iwae:.2f}</b> (K={s.iwae_k}) · gap IWAE − ELBO <b>{gap:.2f}</b> nats · "
            f"recon {s.test_recon:.2f} · KL {s.test_kl:.2f}"
            + (
                f" = I(x;z) {s.test_mi:.2f} + KL(q(z) ‖ p(z)) {s.test_marginal_kl:.2f}"
                if np.isfinite(s.test_mi)
                else ""
            )
            + f" · {s.bits_per_dim:.3f} bits/dim · "
            f"{s.active_units}/{len(s.kl_per_dim)} active units"
            + (" · <i>positive: a density on [0, 1] can exceed 1</i>" if s.test_elbo > 0 else "")
        )
        self._draw_kl_dims(s)

    def _draw_kl_dims(self, s: EpochSummary) -> None:
        kl = np.asarray(s.kl_per_dim, np.float64)
        d = len(kl)
        active = np.asarray(s.au_variance) > ACTIVE_UNIT_THRESHOLD
        brushes = [pg.mkBrush(style.KL if a else style.COLLAPSED) for a in active]
        self.bars.setOpts(x=np.arange(1, d + 1), height=kl, width=0.7, brushes=brushes, pens=[pg.mkPen(None)] * d)
        pi = self.kl_dims.getPlotItem()
        pi.setXRange(0.4, d + 0.6, padding=0)
        pi.setYRange(0, max(float(kl.max(initial=0.0)) * 1.1, 0.1), padding=0)
        if d <= 20:
            pi.getAxis("bottom").setTicks([[(i, str(i)) for i in range(1, d + 1)]])
        else:
            pi.getAxis("bottom").setTicks(None)
        collapsed = d - int(active.sum())
        warnings = [collapse_warning(self.epochs)]
        if collapsed:
            warnings.insert(
                0, f"{collapsed} of {d} latent units collapsed (grey): q(z|x) ≈ p(z), the decoder ignores them."
            )
        text = " ".join(w for w in warnings if w)
        self.collapse_warning.setText(f"⚠ {text}" if text else "")
        self.collapse_warning.setVisible(bool(text))
