"""Inference: the true posterior p(z|x) of a clicked test example next to the encoder's q(z|x), and the
amortization gap (seed 000: "a separate q_i for every data point" against one network).

Two self-contained pieces for the main window to wire:

* ``PosteriorOverlay(plot_item)`` draws, on the latent scatter's PlotItem, the grid posterior's highest-density
  contours (pg.IsocurveItem, levels enclosing 50/90/99% of the mass, computed by engine.posterior) and q(z|x)'s
  1σ/2σ ellipses; items are created once and updated with setData; ``clear()`` hides them.
* ``InferencePanel`` shows the clicked example, the numbers (log p(x) by quadrature, ELBO, KL(q ‖ p(z|x)) as their
  difference and by direct quadrature), and runs the amortization study (engine.amortization) on a QThread with a
  progress bar, Cancel and a results table.

No model math here (DESIGN.md boundary 2): the engine computes, this module draws numpy arrays. All model work
(building the CPU model from a DecoderSnapshot, the posterior grid, the study) runs on worker threads; results come
back as plain frozen dataclasses through queued signals."""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtGui import QPixmap, QTransform
from PySide6.QtWidgets import (QAbstractItemView, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QProgressBar, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from engine.amortization import (AmortizationCancelled, AmortizationProgress, AmortizationResult,
                                 amortization_study)
from engine.decoding import model_from_snapshot
from engine.messages import DecoderSnapshot
from engine.posterior import PosteriorGrid, encoder_reconstruction, posterior_grid
from gui.imaging import to_qimage

N_RANDOM = 100  # examples in the "100 random" study
MAX_SELECTION = 500  # clicked examples remembered for "Selected"
POSTERIOR_GRID_SIZE = 101

# colours: posterior contours orange (darkest = 50% region), encoder q blue, optimised q_i green
C_POST = ((200, 80, 0, 255), (230, 120, 20, 220), (245, 165, 70, 190))
C_Q = (31, 119, 180)
C_QI = (44, 160, 44)

TIP_LOG_PX = ("log p(x) = log ∫ p(x|z) p(z) dz, by quadrature on the grid (possible because z is 2-D): "
              "the exact evidence of the trained decoder, up to grid error (~1e-6 nats).")
TIP_ELBO = ("ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) with the encoder's q: the bound training maximises. "
            "E_q by Gauss–Hermite quadrature, the KL analytic.")
TIP_KL = ("KL(q(z|x) ‖ p(z|x)) = log p(x) − ELBO ≥ 0 (seed 000): how far the encoder's Gaussian is from the "
          "true posterior; the bound is tight only when q equals the posterior.")
TIP_KL_QUAD = ("The same KL computed directly as ∫ q log(q / p(z|x)) dz on the posterior grid, with the "
               "normalised grid posterior: it should agree with log p(x) − ELBO.")
TIP_AMORT = ("amortization gap = ELBO(optimised q_i) − ELBO(encoder q): what one shared network loses against a "
             "separate q_i per example (Cremer et al. 2018).")
TIP_APPROX = ("approximation gap = log p̂(x) − ELBO(optimised q_i): what the diagonal-Gaussian family itself "
              "loses against the true posterior, no matter how q is chosen (Cremer et al. 2018).")
TIP_GRID_PX = ("log p(x) by quadrature over the 2-D latent grid: exact (to ~1e-6 nats), and it sees every mode of "
               "the posterior, unlike IWAE whose samples come from one Gaussian q_i.")
TIP_APPROX_GRID = ("log p(x) (grid) − ELBO(optimised q_i): the approximation gap against the exact evidence. Much "
                   "larger than the IWAE one when q_i sits in a minor mode of a multi-modal posterior.")
TIP_IWAE = ("IWAE log p(x), written log p̂(x): the bound log (1/K) Σ p(x, z_k)/q_i(z_k) with K samples from the "
            "optimised q_i (Burda et al. 2016): a stochastic lower bound on log p(x), tight as K grows.")


def _pen(rgba, width=1.6, dash=False):
    return pg.mkPen(rgba, width=width, style=Qt.PenStyle.DashLine if dash else Qt.PenStyle.SolidLine)


# ----------------------------------------------------------------------------------------------- overlay
class PosteriorOverlay:
    """Contours of p(z|x) and q(z|x)'s ellipses on a PlotItem in latent coordinates (z₁, z₂). Create once;
    ``update(grid)`` redraws, ``show_optimised(mu, log_var)`` adds the ellipses of a per-example q_i,
    ``clear()`` hides everything, ``remove()`` takes the items off the plot. None of it moves the plot's range."""

    def __init__(self, plot_item: pg.PlotItem):
        self.plot = plot_item
        self.grid: PosteriorGrid | None = None
        # the density is indexed [x, y]: say so, whatever the global imageAxisOrder is
        self.isocurves = [pg.IsocurveItem(data=None, level=0.0, pen=_pen(c, 2.0 if i == 0 else 1.6),
                                          axisOrder="col-major") for i, c in enumerate(C_POST)]
        self.q_ellipses = [pg.PlotDataItem(pen=_pen(C_Q + (255,), 1.8)),
                           pg.PlotDataItem(pen=_pen(C_Q + (200,), 1.4, dash=True))]
        self.qi_ellipses = [pg.PlotDataItem(pen=_pen(C_QI + (255,), 1.8)),
                            pg.PlotDataItem(pen=_pen(C_QI + (200,), 1.4, dash=True))]
        self.q_mean = pg.ScatterPlotItem(symbol="x", size=9, pen=pg.mkPen(C_Q, width=2), brush=None)
        self.post_mean = pg.ScatterPlotItem(symbol="o", size=7, pen=pg.mkPen(C_POST[0], width=2), brush=None)
        for it in self.items():
            it.setZValue(20)
            plot_item.addItem(it, ignoreBounds=True)
        self.clear()

    def items(self) -> list:
        return [*self.isocurves, *self.q_ellipses, *self.qi_ellipses, self.q_mean, self.post_mean]

    def update(self, grid: PosteriorGrid) -> None:
        self.grid = grid
        xs, ys = grid.xs, grid.ys
        dx, dy = xs[1] - xs[0], ys[1] - ys[0]
        # IsocurveItem puts data node i at i + 0.5 (pixel centres): map that to xs[i]
        tr = QTransform(dx, 0.0, 0.0, dy, xs[0] - 0.5 * dx, ys[0] - 0.5 * dy)
        for iso, level in zip(self.isocurves, grid.levels):
            iso.setTransform(tr)
            iso.setData(grid.density, float(level))
            iso.setVisible(True)
        for item, e in zip(self.q_ellipses, (grid.ellipse_1sigma, grid.ellipse_2sigma)):
            item.setData(e[:, 0], e[:, 1])
        self.q_mean.setData(x=[grid.mu[0]], y=[grid.mu[1]])
        self.post_mean.setData(x=[grid.post_mean[0]], y=[grid.post_mean[1]])
        self.show_optimised(None, None)

    def show_optimised(self, mu, log_var) -> None:
        """The 1σ/2σ ellipses of a per-example q_i = N(mu, diag exp(log_var)) (None hides them)."""
        if mu is None or len(mu) != 2:
            for item in self.qi_ellipses:
                item.setData([], [])
            return
        mu = np.asarray(mu, np.float64)
        sd = np.exp(0.5 * np.asarray(log_var, np.float64))
        t = np.linspace(0.0, 2 * np.pi, 129)
        for item, k in zip(self.qi_ellipses, (1.0, 2.0)):
            item.setData(mu[0] + k * sd[0] * np.cos(t), mu[1] + k * sd[1] * np.sin(t))

    def clear(self) -> None:
        self.grid = None
        for iso in self.isocurves:
            iso.setData(None)
            iso.setVisible(False)
        for item in (*self.q_ellipses, *self.qi_ellipses):
            item.setData([], [])
        self.q_mean.setData(x=[], y=[])
        self.post_mean.setData(x=[], y=[])

    def remove(self) -> None:
        for it in self.items():
            self.plot.removeItem(it)

    def contour_vertex_counts(self) -> list[int]:
        """Vertices in each drawn contour path (0 when empty): for tests and sanity checks."""
        out = []
        for iso in self.isocurves:
            if iso.data is None:
                out.append(0)
                continue
            iso.generatePath()
            out.append(0 if iso.path is None else iso.path.elementCount())
        return out

    def zoom_to(self, margin: float = 0.15) -> None:
        """Fit the plot's view to the grid window (posterior and q)."""
        if self.grid is None:
            return
        x0, x1, y0, y1 = self.grid.extent
        mx, my = margin * (x1 - x0), margin * (y1 - y0)
        self.plot.getViewBox().setRange(xRange=(x0 - mx, x1 + mx), yRange=(y0 - my, y1 + my), padding=0)


# ----------------------------------------------------------------------------------------------- workers
@dataclass(frozen=True)
class PosteriorView:
    """What the posterior worker returns for one example (plain numpy/scalars)."""

    index: int
    step: int  # training step of the snapshot it was computed with
    grid: PosteriorGrid | None  # None when the latent space is not 2-D
    recon: np.ndarray  # (C, H, W) E[x | z = μ(x)] in [0, 1]
    latent_dim: int
    seconds: float


class _ModelCache:
    """One CPU model per snapshot, built on whichever worker needs it first (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._snap: DecoderSnapshot | None = None
        self._model = None

    def get(self, snap: DecoderSnapshot):
        with self._lock:
            if snap is not self._snap:
                self._model = model_from_snapshot(snap)
                self._snap = snap
            return self._model


class _CallThread(QThread):
    """Runs ``fn()`` once; ``done(result)`` or ``failed(text)`` arrive on the GUI thread (queued)."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, fn: Callable[[], object], name: str, parent=None):
        super().__init__(parent)
        self._fn = fn
        self.setObjectName(name)

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as e:  # noqa: BLE001 - reported to the GUI
            self.failed.emit(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        else:
            self.done.emit(result)


class _StudyThread(QThread):
    """Iterates engine.amortization.amortization_study and re-emits its messages; ``cancel`` stops it."""

    progress = Signal(object)
    result = Signal(object)
    cancelled = Signal(object)
    failed = Signal(str)

    def __init__(self, models: _ModelCache, snap: DecoderSnapshot, x: np.ndarray, indices: np.ndarray,
                 kwargs: dict, parent=None):
        super().__init__(parent)
        self.setObjectName("amortizationStudyThread")
        self.cancel = threading.Event()
        self._models, self._snap, self._x, self._indices, self._kw = models, snap, x, indices, kwargs

    def run(self) -> None:
        try:
            model = self._models.get(self._snap)
            for msg in amortization_study(model, self._x, indices=self._indices, cancel=self.cancel, **self._kw):
                if isinstance(msg, AmortizationProgress):
                    self.progress.emit(msg)
                elif isinstance(msg, AmortizationResult):
                    self.result.emit(msg)
                elif isinstance(msg, AmortizationCancelled):
                    self.cancelled.emit(msg)
        except Exception as e:  # noqa: BLE001
            self.failed.emit(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")


def _num_item(v: float, decimals: int = 3) -> QTableWidgetItem:
    it = QTableWidgetItem()
    it.setData(Qt.ItemDataRole.DisplayRole, round(float(v), decimals))  # numeric sort
    it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    it.setFlags(it.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return it


# ----------------------------------------------------------------------------------------------- panel
class InferencePanel(QWidget):
    """True posterior vs q(z|x) for a clicked example, and the amortization-gap study.

    Inputs: ``set_model_snapshot(snapshot)`` (or a ``snapshot_provider`` callable), ``set_test_data(x, y)``,
    ``show_example(index)`` (a click on a scatter point or a reconstruction), optionally ``attach_plot(plot_item)``
    for the contour overlay. Call ``shutdown()`` (or close the widget) to stop the worker threads."""

    posterior_ready = Signal(object)  # PosteriorView
    study_finished = Signal(object)  # AmortizationResult
    error = Signal(str)  # one line (details in the tooltip of the status label)

    COLUMNS = ("Index", "Encoder ELBO", "Optimised ELBO", "IWAE log p(x)", "Amortization gap", "Approximation gap",
               "Grid log p(x)", "Approx. gap (grid)")
    N_GRID_COLUMNS = 2  # the last two: 2-D latents only, hidden otherwise

    def __init__(self, plot_item: pg.PlotItem | None = None,
                 snapshot_provider: Callable[[], DecoderSnapshot | None] | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("inferencePanel")
        self._snapshot: DecoderSnapshot | None = None
        self._provider = snapshot_provider
        self._models = _ModelCache()
        self.x_test: np.ndarray | None = None
        self.y_test: np.ndarray | None = None
        self.class_names: tuple[str, ...] | None = None
        self.current_index: int | None = None
        self.selection: list[int] = []
        self.view: PosteriorView | None = None
        self.result: AmortizationResult | None = None
        self._post_thread: _CallThread | None = None
        self._pending: int | None = None
        self._study: _StudyThread | None = None
        self._random_draws = 0
        self._data_token = 0
        self.overlay: PosteriorOverlay | None = None
        self._build()
        if plot_item is not None:
            self.attach_plot(plot_item)

    # -- layout --------------------------------------------------------------------------------------------
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)

        post = QGroupBox("True posterior p(z|x) vs the encoder's q(z|x)")
        post.setObjectName("posteriorGroup")
        pl = QVBoxLayout(post)
        self.title = QLabel("Click a test example (a point in the latent plot or a reconstruction).")
        self.title.setObjectName("inferenceTitle")
        self.title.setWordWrap(True)
        pl.addWidget(self.title)
        imgs = QHBoxLayout()
        self.image = QLabel()
        self.image.setObjectName("inferenceImage")
        self.image.setToolTip("The test image x")
        self.recon = QLabel()
        self.recon.setObjectName("inferenceRecon")
        self.recon.setToolTip("Its reconstruction E[x | z = μ(x)] at the encoder's mean")
        for w in (self.image, self.recon):
            w.setFixedSize(84, 84)
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
            w.setStyleSheet("border: 1px solid #c8ccd0; background: #ffffff;")
            imgs.addWidget(w)
        imgs.addStretch(1)
        pl.addLayout(imgs)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.values: dict[str, QLabel] = {}
        for key, text, tip in (
                ("log_px", "log p(x) (quadrature)", TIP_LOG_PX),
                ("elbo", "ELBO of the encoder's q", TIP_ELBO),
                ("kl_gap", "KL(q ‖ p(z|x)) = log p(x) − ELBO", TIP_KL),
                ("kl_quad", "KL by quadrature ∫ q log(q/p)", TIP_KL_QUAD),
                ("recon", "E_q[log p(x|z)]", "Expected log-likelihood under the encoder's q (Gauss–Hermite)."),
                ("kl_prior", "KL(q ‖ p(z))", "KL from q(z|x) to the prior N(0, I), analytic."),
                ("grid", "Grid", "Grid nodes, the posterior mass inside the window, and the time it took.")):
            name = QLabel(text)
            name.setToolTip(tip)
            val = QLabel("—")
            val.setObjectName(f"value_{key}")
            val.setToolTip(tip)
            val.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(name, val)
            self.values[key] = val
        pl.addLayout(form)
        legend = QLabel("<span style='color:#c85000'>━</span> p(z|x): regions holding 50 / 90 / 99% of the mass · "
                        "<span style='color:#1f77b4'>━ ┅</span> encoder q: 1σ / 2σ · "
                        "<span style='color:#2ca02c'>━ ┅</span> optimised q_i")
        legend.setObjectName("inferenceLegend")
        legend.setWordWrap(True)
        legend.setTextFormat(Qt.TextFormat.RichText)
        pl.addWidget(legend)
        row = QHBoxLayout()
        self.zoom_button = QPushButton("Zoom to posterior")
        self.zoom_button.setObjectName("zoomPosteriorButton")
        self.zoom_button.setToolTip("Fit the latent plot to the posterior's grid window")
        self.zoom_button.clicked.connect(self._on_zoom)
        self.zoom_button.setEnabled(False)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("clearPosteriorButton")
        self.clear_button.setToolTip("Remove the contours and ellipses from the latent plot")
        self.clear_button.clicked.connect(self.clear_posterior)
        row.addWidget(self.zoom_button)
        row.addWidget(self.clear_button)
        row.addStretch(1)
        pl.addLayout(row)
        self.status = QLabel("")
        self.status.setObjectName("inferenceStatus")
        self.status.setWordWrap(True)
        pl.addWidget(self.status)
        lay.addWidget(post)

        am = QGroupBox("Amortization gap: one encoder vs a separate q_i per example")
        am.setObjectName("amortizationGroup")
        am.setToolTip(TIP_AMORT)
        al = QVBoxLayout(am)
        expl = QLabel("For each example, q_i = N(μ_i, σ_i²) starts at the encoder's output and is optimised by SGD "
                      "on that example's ELBO (decoder frozen). log p(x) − ELBO(encoder) = amortization gap + "
                      "approximation gap.")
        expl.setObjectName("amortizationExplanation")
        expl.setWordWrap(True)
        al.addWidget(expl)
        brow = QHBoxLayout()
        self.selected_button = QPushButton("Selected (0)")
        self.selected_button.setObjectName("studySelectedButton")
        self.selected_button.setToolTip("Run the study on the examples clicked so far (or the one shown). "
                                        + TIP_AMORT)
        self.selected_button.clicked.connect(self.run_selected)
        self.random_button = QPushButton(f"{N_RANDOM} random")
        self.random_button.setObjectName("studyRandomButton")
        self.random_button.setToolTip(f"Run the study on {N_RANDOM} random test examples. " + TIP_AMORT)
        self.random_button.clicked.connect(self.run_random)
        self.clear_sel_button = QPushButton("Clear selection")
        self.clear_sel_button.setObjectName("clearSelectionButton")
        self.clear_sel_button.setToolTip("Forget the clicked examples")
        self.clear_sel_button.clicked.connect(self.clear_selection)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("studyCancelButton")
        self.cancel_button.setToolTip("Stop the running study (between two optimisation steps)")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_study)
        for b in (self.selected_button, self.random_button, self.clear_sel_button, self.cancel_button):
            brow.addWidget(b)
        brow.addStretch(1)
        al.addLayout(brow)
        srow = QHBoxLayout()
        self.steps_spin = QSpinBox()
        self.steps_spin.setObjectName("studyStepsSpin")
        self.steps_spin.setRange(0, 5000)
        self.steps_spin.setSingleStep(50)
        self.steps_spin.setValue(300)
        self.steps_spin.setToolTip("Adam steps on every q_i (all examples in one batch); 300 reach within ~0.01 "
                                   "nats of convergence on a trained 2-D VAE")
        self.k_spin = QSpinBox()
        self.k_spin.setObjectName("studyIwaeKSpin")
        self.k_spin.setRange(1, 100_000)
        self.k_spin.setSingleStep(500)
        self.k_spin.setValue(1000)
        self.k_spin.setToolTip("K, importance samples per example for log p̂(x). " + TIP_IWAE)
        lbl_s = QLabel("Steps")
        lbl_s.setToolTip(self.steps_spin.toolTip())
        lbl_k = QLabel("IWAE K")
        lbl_k.setToolTip(self.k_spin.toolTip())
        for w in (lbl_s, self.steps_spin, lbl_k, self.k_spin):
            srow.addWidget(w)
        srow.addStretch(1)
        al.addLayout(srow)
        self.progress = QProgressBar()
        self.progress.setObjectName("studyProgress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        al.addWidget(self.progress)
        self.summary = QLabel("")
        self.summary.setObjectName("studySummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setToolTip(TIP_AMORT + "\n" + TIP_APPROX)
        al.addWidget(self.summary)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("studyTable")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        tips = ("Position in the test set (click a row to show its posterior)", TIP_ELBO,
                "ELBO of the per-example q_i after optimisation (never below the encoder's)", TIP_IWAE, TIP_AMORT,
                TIP_APPROX, TIP_GRID_PX, TIP_APPROX_GRID)
        for c, tip in enumerate(tips):
            self.table.horizontalHeaderItem(c).setToolTip(tip)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSortingEnabled(True)
        self.table.cellClicked.connect(self._on_row_clicked)
        self._show_grid_columns(False)
        al.addWidget(self.table, 1)
        lay.addWidget(am, 1)

    # -- inputs --------------------------------------------------------------------------------------------
    def attach_plot(self, plot_item: pg.PlotItem) -> PosteriorOverlay:
        """Draw the contours on this PlotItem (the latent scatter, in latent coordinates)."""
        if self.overlay is not None:
            self.overlay.remove()
        self.overlay = PosteriorOverlay(plot_item)
        if self.view is not None and self.view.grid is not None:
            self.overlay.update(self.view.grid)
        return self.overlay

    def set_model_snapshot(self, snapshot: DecoderSnapshot | None) -> None:
        """The model to study (a CPU copy is built from it on a worker thread when needed). The example on show
        is not recomputed (snapshots arrive every second while training): call ``refresh()`` for that."""
        self._snapshot = snapshot

    def refresh(self) -> None:
        """Recompute the example on show with the newest snapshot."""
        if self.current_index is not None:
            self.show_example(self.current_index)

    def snapshot(self) -> DecoderSnapshot | None:
        if self._provider is not None:
            s = self._provider()
            if s is not None:
                return s
        return self._snapshot

    def set_test_data(self, x_test: np.ndarray | None, y_test: np.ndarray | None = None,
                      class_names: tuple[str, ...] | None = None) -> None:
        """Test images (M, C, H, W) float32 in [0, 1]; a new dataset forgets the selection and results."""
        self._data_token += 1
        self._pending = None
        self.cancel_study()  # its indices refer to the old data
        self.result = None
        self.table.setRowCount(0)
        self.summary.setText("")
        self.x_test = None if x_test is None else np.asarray(x_test, dtype=np.float32)
        self.y_test = None if y_test is None else np.asarray(y_test)
        self.class_names = class_names
        self.current_index = None
        self.selection = []
        self.view = None
        self._update_selected_button()
        self.clear_posterior()
        self.title.setText("Click a test example (a point in the latent plot or a reconstruction).")
        self.image.clear()
        self.recon.clear()

    # -- the posterior ---------------------------------------------------------------------------------------
    def show_example(self, index: int) -> None:
        """Show test example ``index``: its image now, the posterior grid when the worker has computed it."""
        if self.x_test is None or not (0 <= int(index) < len(self.x_test)):
            return
        index = int(index)
        self.current_index = index
        if index in self.selection:
            self.selection.remove(index)
        self.selection.append(index)
        del self.selection[:-MAX_SELECTION]
        self._update_selected_button()
        label = ""
        if self.y_test is not None:
            y = int(self.y_test[index])
            name = self.class_names[y] if self.class_names and 0 <= y < len(self.class_names) else str(y)
            label = f" ({name})"
        self.title.setText(f"Test example #{index}{label}")
        self.image.setPixmap(QPixmap.fromImage(to_qimage(self.x_test[index])).scaled(
            80, 80, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
        snap = self.snapshot()
        if snap is None:
            self.status.setText("No model yet: train or load a checkpoint first.")
            return
        if (mismatch := self._shape_mismatch(snap)) is not None:
            self.status.setText(mismatch)
            return
        if self._post_thread is not None and self._post_thread.isRunning():
            self._pending = index  # the newest click wins; computed when the current one is done
            return
        self._start_posterior(index, snap)

    def _shape_mismatch(self, snap: DecoderSnapshot) -> str | None:
        """A sentence when the model's images differ from the dataset's (a checkpoint of other data), else None."""
        model = tuple(int(v) for v in snap.model_config.get("image_shape", ()))
        data = tuple(self.x_test.shape[1:]) if self.x_test is not None else model
        if model == data:
            return None
        fmt = lambda s: "×".join(map(str, s))  # noqa: E731
        return (f"The model takes {fmt(model)} images, this dataset's are {fmt(data)}: open the dataset it was "
                f"trained on, or train a model on this one.")

    def _start_posterior(self, index: int, snap: DecoderSnapshot) -> None:
        x = self.x_test[index].copy()
        models = self._models

        def job() -> PosteriorView:  # worker thread
            t0 = time.perf_counter()
            model = models.get(snap)
            d = model.cfg.latent_dim
            grid = posterior_grid(model, x, POSTERIOR_GRID_SIZE) if d == 2 else None
            return PosteriorView(index, snap.step, grid, encoder_reconstruction(model, x), d,
                                 time.perf_counter() - t0)

        self.status.setText("Computing the posterior on a grid…")
        th = _CallThread(job, "posteriorGridThread")
        th.token = self._data_token  # results computed for an older dataset are dropped
        th.done.connect(self._on_posterior_done)
        th.failed.connect(self._on_posterior_failed)
        th.finished.connect(self._on_posterior_thread_finished)
        self._post_thread = th
        th.start()

    def _on_posterior_thread_finished(self) -> None:
        th = self.sender()
        if th is self._post_thread:
            self._post_thread = None
        if th is not None:
            th.deleteLater()
        if self._pending is not None:
            index, self._pending = self._pending, None
            snap = self.snapshot()
            if snap is not None and self.x_test is not None:
                self._start_posterior(index, snap)

    def _on_posterior_failed(self, text: str) -> None:
        line = text.splitlines()[0] if text else "error"
        self.status.setText(f"Posterior failed: {line}")
        self.status.setToolTip(text)
        self.error.emit(line)

    def _on_posterior_done(self, view: PosteriorView) -> None:
        th = self.sender()
        if view.index != self.current_index or getattr(th, "token", self._data_token) != self._data_token:
            return  # an older click, or another dataset
        self.view = view
        self.recon.setPixmap(QPixmap.fromImage(to_qimage(view.recon)).scaled(
            80, 80, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
        g = view.grid
        if g is None:
            for v in self.values.values():
                v.setText("—")
            self.status.setText(f"The true posterior on a grid needs a 2-D latent space (this model has "
                                f"d = {view.latent_dim}); the amortization study below works for any d.")
            if self.overlay is not None:
                self.overlay.clear()
            self.zoom_button.setEnabled(False)
            self.posterior_ready.emit(view)
            return
        self.values["log_px"].setText(f"{g.log_px:.3f} nats")
        self.values["elbo"].setText(f"{g.elbo:.3f} nats")
        self.values["kl_gap"].setText(f"{g.kl_gap:.4f} nats")
        self.values["kl_quad"].setText("n/a: q reaches outside the grid" if not np.isfinite(g.kl_quadrature)
                                       else f"{g.kl_quadrature:.4f} nats")
        self.values["recon"].setText(f"{g.recon:.3f} nats")
        self.values["kl_prior"].setText(f"{g.kl_prior:.3f} nats")
        self.values["grid"].setText(f"{g.grid_size}×{g.grid_size}, mass in window {g.mass_in_window:.6f}, "
                                    f"{g.seconds * 1000:.0f} ms")
        warn = ""
        if g.mass_in_window < 0.999 or g.edge_mass > 1e-3:
            warn = " Part of the posterior may lie outside the grid window."
        self.status.setText(f"Example #{view.index}, model at step {view.step:,}: computed in "
                            f"{view.seconds * 1000:.0f} ms.{warn}")
        self.status.setToolTip("")
        if self.overlay is not None:
            self.overlay.update(g)
            self._show_optimised_for_current()
        self.zoom_button.setEnabled(self.overlay is not None)
        self.posterior_ready.emit(view)

    def clear_posterior(self) -> None:
        if self.overlay is not None:
            self.overlay.clear()
        for v in self.values.values():
            v.setText("—")
        self.zoom_button.setEnabled(False)

    def _on_zoom(self) -> None:
        if self.overlay is not None:
            self.overlay.zoom_to()

    # -- the amortization study ------------------------------------------------------------------------------
    def _update_selected_button(self) -> None:
        self.selected_button.setText(f"Selected ({len(self.selection)})")

    def clear_selection(self) -> None:
        self.selection = []
        self._update_selected_button()

    def set_selection(self, indices) -> None:
        """Replace the selection (e.g. from a lasso in the latent plot)."""
        self.selection = [int(i) for i in dict.fromkeys(np.asarray(indices, dtype=np.int64).ravel().tolist())]
        del self.selection[:-MAX_SELECTION]
        self._update_selected_button()

    def run_selected(self) -> bool:
        idx = list(self.selection) or ([self.current_index] if self.current_index is not None else [])
        return self.run_study(idx)

    def run_random(self) -> bool:
        if self.x_test is None or len(self.x_test) == 0:
            return False
        rng = np.random.default_rng(self._random_draws)
        self._random_draws += 1
        k = min(N_RANDOM, len(self.x_test))
        return self.run_study(np.sort(rng.choice(len(self.x_test), size=k, replace=False)))

    def is_study_running(self) -> bool:
        return self._study is not None and self._study.isRunning()

    def run_study(self, indices, **kwargs) -> bool:
        """Start the study on these test indices; False (and a status line) if it cannot start."""
        if self.is_study_running():
            return False
        snap = self.snapshot()
        if snap is None or self.x_test is None:
            self.progress.setFormat("No model or no test data yet")
            return False
        if (mismatch := self._shape_mismatch(snap)) is not None:
            self.progress.setFormat(mismatch)
            return False
        idx = np.asarray(list(indices), dtype=np.int64)
        if len(idx) == 0:
            self.progress.setFormat("Click an example first (or use “100 random”)")
            return False
        kw = dict(steps=self.steps_spin.value(), iwae_k=self.k_spin.value())
        kw.update(kwargs)
        th = _StudyThread(self._models, snap, self.x_test[idx].copy(), idx, kw)
        th.token = self._data_token
        th.progress.connect(self._on_study_progress)
        th.result.connect(self._on_study_result)
        th.cancelled.connect(self._on_study_cancelled)
        th.failed.connect(self._on_study_failed)
        th.finished.connect(self._on_study_thread_finished)
        self._study = th
        self._set_running(True)
        self.progress.setValue(0)
        self.progress.setFormat(f"Optimising {len(idx)} q_i… %p%")
        th.start()
        return True

    def cancel_study(self) -> None:
        if self._study is not None:
            self._study.cancel.set()
            self.progress.setFormat("Cancelling…")

    def _set_running(self, running: bool) -> None:
        self.selected_button.setEnabled(not running)
        self.random_button.setEnabled(not running)
        self.steps_spin.setEnabled(not running)
        self.k_spin.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _on_study_progress(self, msg: AmortizationProgress) -> None:
        self.progress.setValue(int(round(1000 * msg.fraction)))
        phase = {"optimise": "Optimising q_i", "evaluate": "Evaluating ELBOs", "iwae": "IWAE log p(x)",
                 "quadrature": "log p(x) on a grid"}.get(msg.phase, msg.phase)
        self.progress.setFormat(f"{phase}… %p% · mean ELBO {msg.mean_encoder_elbo:.2f} → {msg.mean_best_elbo:.2f}")

    def _show_grid_columns(self, show: bool) -> None:
        for c in range(len(self.COLUMNS) - self.N_GRID_COLUMNS, len(self.COLUMNS)):
            self.table.setColumnHidden(c, not show)

    def _on_study_result(self, r: AmortizationResult) -> None:
        if getattr(self.sender(), "token", self._data_token) != self._data_token:
            return  # computed on a dataset that has since been replaced
        self.result = r
        grid = bool(np.all(np.isfinite(r.log_px_quadrature)))
        self.progress.setValue(1000)
        self.progress.setFormat(f"Done in {r.seconds:.1f} s")
        self.summary.setText(
            f"<b>{r.n} examples</b> (means, nats): encoder ELBO <b>{r.mean_encoder_elbo:.3f}</b> · optimised "
            f"<b>{r.mean_optimised_elbo:.3f}</b> · IWAE log p(x) <b>{r.mean_log_px:.3f}</b> (K = {r.iwae_k})<br>"
            f"amortization gap <b>{r.mean_amortization_gap:.3f}</b> · approximation gap "
            f"<b>{r.mean_approximation_gap:.3f}</b> · total inference gap <b>{r.mean_inference_gap:.3f}</b>"
            + (f"<br>2-D latent, exact log p(x) by quadrature: <b>{r.mean_log_px_quadrature:.3f}</b> · "
               f"approximation gap <b>{r.mean_approximation_gap_exact:.3f}</b> (IWAE misses modes that q_i does "
               f"not reach)" if grid else ""))
        self._show_grid_columns(grid)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(r.n)
        for row in range(r.n):
            idx_item = QTableWidgetItem()
            idx_item.setData(Qt.ItemDataRole.DisplayRole, int(r.indices[row]))
            idx_item.setFlags(idx_item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.table.setItem(row, 0, idx_item)
            for col, arr in enumerate((r.encoder_elbo, r.optimised_elbo, r.log_px_iwae, r.amortization_gap,
                                       r.approximation_gap, r.log_px_quadrature, r.approximation_gap_exact), start=1):
                self.table.setItem(row, col, _num_item(arr[row]))
        self.table.setSortingEnabled(True)
        self.table.sortItems(0, Qt.SortOrder.AscendingOrder)
        self._show_optimised_for_current()
        self.study_finished.emit(r)

    def _on_study_cancelled(self, msg: AmortizationCancelled) -> None:
        self.progress.setFormat(f"Cancelled after {msg.done_steps} of {msg.total_steps} steps")

    def _on_study_failed(self, text: str) -> None:
        line = text.splitlines()[0] if text else "error"
        self.progress.setFormat(f"Failed: {line}")
        self.progress.setToolTip(text)
        self.error.emit(line)

    def _on_study_thread_finished(self) -> None:
        th = self.sender()
        if th is self._study:
            self._study = None
            self._set_running(False)
        if th is not None:
            th.deleteLater()

    def _on_row_clicked(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.show_example(int(item.data(Qt.ItemDataRole.DisplayRole)))

    def _show_optimised_for_current(self) -> None:
        if self.overlay is None:
            return
        r = self.result
        if r is None or self.current_index is None or r.optimised_mu.shape[1] != 2:
            self.overlay.show_optimised(None, None)
            return
        hit = np.flatnonzero(r.indices == self.current_index)
        if len(hit) and self.view is not None and self.view.grid is not None:
            self.overlay.show_optimised(r.optimised_mu[hit[0]], r.optimised_log_var[hit[0]])
        else:
            self.overlay.show_optimised(None, None)

    # -- shutdown --------------------------------------------------------------------------------------------
    def running_threads(self) -> list[QThread]:
        return [t for t in (self._post_thread, self._study) if t is not None and _alive(t)]

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel the study, wait for both workers; True if none is left running."""
        self._pending = None
        if self._study is not None:
            self._study.cancel.set()
        ok = True
        for th in (self._post_thread, self._study):
            if th is not None and _alive(th):
                ok = th.wait(timeout_ms) and ok
        return ok

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        self.shutdown()
        super().closeEvent(event)


def _alive(th: QThread) -> bool:
    try:
        return th.isRunning()
    except RuntimeError:  # the C++ object is gone
        return False
