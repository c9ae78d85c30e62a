"""The "Posterior & gap" page: the true posterior p(z|x) of a selected test example (or of the user's encoded
image) against the encoder's q(z|x), and the amortization gap (seed 000: "a separate q_i for every data point"
against one network).

The page renders from the session state (gui/state.py): the selected example, the dataset's test images, the
user's encoded image (shown when one is encoded for a 2-D model, until a test example is selected again) and the
current model's newest snapshot. It draws in a latent plot of its own (contours of p(z|x) holding 50/90/99% of the
mass, q's 1σ/2σ ellipses, the scatter's points in grey for context), shows the numbers (log p(x) by quadrature,
ELBO, KL(q ‖ p(z|x)) as their difference and by direct quadrature), and runs the amortization study
(engine.amortization) with a progress bar, Cancel and a results table.

No model math here (DESIGN.md boundary 2): the posterior grid and the study run in gui.workers.Worker jobs and
come back as plain frozen dataclasses; a result for a model or dataset that has been replaced is dropped."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from gui import style
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from engine.data.dataset import as_float01
from engine.messages import WeightsSnapshot
from engine.posterior import PosteriorGrid, posterior_grid
from engine.snapshot import snapshot_model
from gui.amortization_view import AmortizationView
from gui.imaging import to_qimage
from gui.point_cloud import PointCloud
from gui.posterior_overlay import PosteriorOverlay
from gui.state import StudioState
from gui.workers import Worker

POSTERIOR_GRID_SIZE = 101
CONTEXT_POINTS = 2000  # grey scatter points behind the contours
HINT = "Click a test example: a point of the latent scatter (Training tab) or an image of its Recon grid."

TIP_LOG_PX = (
    "log p(x) = log ∫ p(x|z) p(z) dz, by quadrature on the grid (possible because z is 2-D): "
    "the exact evidence of the trained decoder, up to grid error (~1e-6 nats)."
)
TIP_ELBO = (
    "ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) with the encoder's q: the bound training maximises. "
    "E_q by Gauss–Hermite quadrature, the KL analytic."
)
TIP_KL = (
    "KL(q(z|x) ‖ p(z|x)) = log p(x) − ELBO ≥ 0 (seed 000): how far the encoder's Gaussian is from the "
    "true posterior; the bound is tight only when q equals the posterior."
)
TIP_KL_QUAD = (
    "The same KL computed directly as ∫ q log(q / p(z|x)) dz on the posterior grid, with the "
    "normalised grid posterior: it should agree with log p(x) − ELBO."
)


@dataclass(frozen=True)
class Subject:
    """What the page shows the posterior of: test example ``index``, or the user's encoded image (index None)."""

    name: str  # "Example #12", or the image file's name
    index: int | None
    x: np.ndarray  # (C, H, W) float32 in [0, 1]
    label: int | None  # the class a conditional model's q(z|x, y) and p(x|z, y) are given


@dataclass(frozen=True)
class PosteriorView:
    """What the posterior job returns for one example or image (plain numpy/scalars)."""

    name: str
    index: int | None  # the test example, or None for the user's image
    step: int  # training step of the snapshot it was computed with
    grid: PosteriorGrid | None  # None when the latent space is not 2-D
    recon: np.ndarray  # (C, H, W) E[x | z = μ(x)] in [0, 1]
    latent_dim: int
    seconds: float


class InferencePanel(QWidget):
    """True posterior vs q(z|x) for the selected example, and the amortization-gap study. ``shutdown()`` (or
    closing the widget) stops the workers."""

    posterior_ready = Signal(object)  # PosteriorView
    study_finished = Signal(object)  # AmortizationResult
    error = Signal(str)  # one line (details in the tooltip of the status label)

    def __init__(self, state: StudioState, parent=None):
        super().__init__(parent)
        self.setObjectName("inferencePanel")
        self.state = state
        self.subject: Subject | None = None  # what is on show
        self._shown = 0  # counts the subjects put on show: a result for an earlier one is dropped
        self.view: PosteriorView | None = None
        self.posterior_worker: Worker | None = None
        self._pending: tuple[Subject, int] | None = None  # the newest subject asked for while a job ran
        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setObjectName("posteriorPlot")
        self.plot_widget.setAccessibleName("True posterior and q(z|x) in the latent plane")
        self.plot_widget.setMinimumSize(220, 200)
        self.plot = self.plot_widget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setLabel("bottom", "z₁", **{"font-size": "9pt"})
        self.plot.setLabel("left", "z₂", **{"font-size": "9pt"})
        style.plain_axes(self.plot)
        self.context = PointCloud(size=4, brush=pg.mkBrush(150, 150, 150, 90))  # redrawn with every snapshot
        self.plot.addItem(self.context)
        self.overlay = PosteriorOverlay(self.plot)
        self._build()
        self._reset()
        state.dataset_changed.connect(lambda _ds: self._reset())
        state.model_changed.connect(self._reset)
        state.example_changed.connect(self._on_example_changed)
        state.encoded_changed.connect(self._on_encoded_changed)
        state.latent_changed.connect(self._on_latent_changed)
        state.status_changed.connect(self._on_status_changed)

    # -- layout --------------------------------------------------------------------------------------------
    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)

        top = QHBoxLayout()
        top.addWidget(self.plot_widget, 3)
        post = QGroupBox("True posterior p(z|x) vs the encoder's q(z|x)")
        post.setObjectName("posteriorGroup")
        post.setMinimumWidth(300)
        pl = QVBoxLayout(post)
        self.title = QLabel(HINT)
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
        self.thumb_captions = []
        for w, caption in ((self.image, "test image x"), (self.recon, "reconstruction")):
            w.setFixedSize(84, 84)
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
            w.setStyleSheet("border: 1px solid #c8ccd0; background: #ffffff;")
            col = QVBoxLayout()
            col.setSpacing(1)
            col.addWidget(w)
            label = QLabel(caption)
            label.setObjectName(f"{w.objectName()}Caption")
            label.setProperty("role", "hint")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            col.addWidget(label)
            self.thumb_captions.append(label)
            imgs.addLayout(col)
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
            ("grid", "Grid", "Grid nodes, the posterior mass inside the window, and the time it took."),
        ):
            name = QLabel(text)
            name.setToolTip(tip)
            val = QLabel("—")
            val.setObjectName(f"value_{key}")
            val.setToolTip(tip)
            val.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            val.setWordWrap(key == "grid")  # the one long value: wrapped rather than cut at 1024 px
            form.addRow(name, val)
            self.values[key] = val
        pl.addLayout(form)
        legend = QLabel(
            "<span style='color:#c85000'>━</span> p(z|x): regions holding 50 / 90 / 99% of the mass · "
            "<span style='color:#1f77b4'>━ ┅</span> encoder q: 1σ / 2σ · "
            "<span style='color:#2ca02c'>━ ┅</span> optimised q_i"
        )
        legend.setObjectName("inferenceLegend")
        legend.setWordWrap(True)
        legend.setTextFormat(Qt.TextFormat.RichText)
        pl.addWidget(legend)
        row = QHBoxLayout()
        self.zoom_button = QPushButton("Zoom to posterior")
        self.zoom_button.setObjectName("zoomPosteriorButton")
        self.zoom_button.setToolTip("Fit the plot to the posterior's grid window")
        self.zoom_button.clicked.connect(self._on_zoom)
        self.zoom_button.setEnabled(False)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("clearPosteriorButton")
        self.clear_button.setToolTip("Remove the contours and ellipses from the plot")
        self.clear_button.clicked.connect(self.clear_posterior)
        row.addWidget(self.zoom_button)
        row.addWidget(self.clear_button)
        row.addStretch(1)
        pl.addLayout(row)
        self.status = QLabel("")
        self.status.setObjectName("inferenceStatus")
        self.status.setWordWrap(True)
        pl.addWidget(self.status)
        pl.addStretch(1)
        # wrapped texts take two lines in a narrow window: their minimum says so, or the layout (which sizes by
        # the one-line minimum) squeezes the values above and cuts their letters (1024×700)
        for label in (self.title, legend, self.status, self.values["grid"]):
            label.setMinimumHeight(2 * label.fontMetrics().lineSpacing() + 2)
        top.addWidget(post, 2)
        upper = QWidget()
        upper.setLayout(top)
        top.setContentsMargins(0, 0, 0, 0)

        self.study = AmortizationView(self.state, self)
        self.study.result_changed.connect(self._show_optimised_for_current)
        self.study.example_clicked.connect(self.state.select_example)
        self.study.error.connect(self.error)
        self.study.study_finished.connect(self.study_finished)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("inferenceSplitter")
        self.splitter.addWidget(upper)
        self.splitter.addWidget(self.study)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        lay.addWidget(self.splitter, 1)

    # -- following the state ---------------------------------------------------------------------------------
    def _reset(self) -> None:
        """Another dataset or another model: nothing shown so far belongs to it any more."""
        self._pending = None
        self.study.reset()
        self.subject = None
        self.view = None
        self.clear_posterior()
        self.context.setData(x=[], y=[])
        d = self.state.latent_dim
        if d is not None and d != 2:
            self.status.setText(
                f"The true posterior on a grid needs a 2-D latent space (this model has d = {d}); "
                f"the amortization study below works for any d."
            )
        else:
            self.status.setText("")
        self._show_nothing()
        self._on_latent_changed(self.state.latent)

    def _show_nothing(self) -> None:
        self.title.setText(HINT)
        self.image.clear()
        self.recon.clear()
        self.thumb_captions[0].setText("test image x")

    @property
    def current_index(self) -> int | None:
        """The test example on show (None: the user's image, or nothing)."""
        return None if self.subject is None else self.subject.index

    def _on_latent_changed(self, lat) -> None:
        if lat is None or lat.means.shape[1] != 2:
            self.context.setData(x=[], y=[])
            return
        m = lat.means[:CONTEXT_POINTS]
        self.context.setData(x=m[:, 0], y=m[:, 1])

    def _on_status_changed(self, status) -> None:
        if status.at_rest:
            self.refresh()  # the example on show, recomputed with the newest weights

    def _on_example_changed(self, index) -> None:
        if index is not None:
            self.show_example(index)

    def _on_encoded_changed(self, encoded) -> None:
        if encoded is not None and len(encoded.mu) == 2:
            if self.subject is not None and self.subject.index is None:
                self.subject = None  # another image: what the page shows of the one before goes
            self.show_encoded()
        elif encoded is None and self.subject is not None and self.subject.index is None:
            self._pending = None  # the image on show is gone (another model or dataset)
            self.subject, self.view = None, None
            self.clear_posterior()
            self._show_nothing()

    def refresh(self) -> None:
        """Recompute the example or image on show with the newest snapshot."""
        if self.subject is None:
            return
        if self.subject.index is None:
            self.show_encoded()
        else:
            self.show_example(self.subject.index)

    # -- the posterior ---------------------------------------------------------------------------------------
    def show_example(self, index: int) -> None:
        """Show test example ``index``: its image now, the posterior grid when the worker has computed it."""
        ds = self.state.dataset
        if ds is None or not (0 <= int(index) < len(ds.x_test)):
            return
        index = int(index)
        self.study.add_to_selection(index)
        cls = "" if ds.y_test is None else f" ({self.state.class_name(int(ds.y_test[index]))})"
        subject = Subject(f"Example #{index}", index, self.state.test_image(index), self.state.example_label(index))
        self._show(subject, f"Test example #{index}{cls}", "test image x")

    def show_encoded(self) -> None:
        """Show the user's encoded image (the state's): its posterior grid, named as its file."""
        e = self.state.encoded
        if e is None:
            return
        name = Path(e.path).name or "your image"
        self._show(Subject(name, None, as_float01(e.x[0]), e.label), f"{name} (your image)", "your image x")

    def _show(self, subject: Subject, title: str, caption: str) -> None:
        if self.subject is None or subject.index != self.subject.index:
            self._shown += 1
            self.view = None  # the previous subject's numbers, contours and reconstruction go at once
            self.clear_posterior()
            self.recon.clear()
        self.subject = subject
        if subject.label is not None:  # a conditional model: every figure here is given y
            title += f": p(z | x, y = {self.state.class_name(subject.label)}) and q(z | x, y)"
        self.title.setText(title)
        self.thumb_captions[0].setText(caption)
        self.image.setPixmap(
            QPixmap.fromImage(to_qimage(subject.x)).scaled(
                80, 80, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
            )
        )
        snap = self.state.snapshot
        if snap is None:
            self.status.setText("No model yet: train or load a checkpoint first.")
            return
        # a test example needs a model that takes the dataset's examples; the user's image was read for the model
        if subject.index is not None and (mismatch := self.state.misfit(snap.model_config)) is not None:
            self.status.setText(mismatch)
            return
        if self.posterior_worker is not None and self.posterior_worker.is_running():
            self._pending = (subject, self._shown)  # the newest click wins; computed when the current one is done
            return
        self._start_posterior(subject, self._shown, snap)

    def _start_posterior(self, subject: Subject, shown: int, snap: WeightsSnapshot) -> None:
        x = np.array(subject.x, np.float32)
        token = self.state.identity()
        label = subject.label

        def job() -> PosteriorView:  # worker thread
            t0 = time.perf_counter()
            cpu = snapshot_model(snap)
            d = cpu.latent_dim
            grid = posterior_grid(cpu.model.given(label), x, POSTERIOR_GRID_SIZE) if d == 2 else None
            recon = cpu.reconstruct(x[None], label)[0]
            return PosteriorView(subject.name, subject.index, snap.step, grid, recon, d, time.perf_counter() - t0)

        d = self.state.latent_dim
        self.status.setText("Computing the posterior on a grid…" if d == 2 else "Computing the reconstruction…")
        self.posterior_worker = Worker(
            job,
            on_result=lambda v: self._on_posterior_done(v, token, shown),
            on_error=lambda e, tb: self._on_posterior_failed(f"{type(e).__name__}: {e}\n{tb}"),
            parent=self,
            name="posteriorGridThread",
        )
        self.posterior_worker.done.connect(self._on_posterior_worker_done)

    def _on_posterior_worker_done(self) -> None:
        if self.posterior_worker is not None and not self.posterior_worker.is_running():
            self.posterior_worker = None
        if self._pending is not None:
            (subject, shown), self._pending = self._pending, None
            snap = self.state.snapshot
            if snap is not None and (subject.index is None or self.state.dataset is not None):
                self._start_posterior(subject, shown, snap)

    def _on_posterior_failed(self, text: str) -> None:
        line = text.splitlines()[0] if text else "error"
        self.status.setText(f"Posterior failed: {line}")
        self.status.setToolTip(text)
        self.error.emit(line)

    def _on_posterior_done(self, view: PosteriorView, token, shown: int) -> None:
        if shown != self._shown or not self.state.is_current(token):
            return  # an older click, or another dataset or model
        self.view = view
        self.recon.setPixmap(
            QPixmap.fromImage(to_qimage(view.recon)).scaled(
                80, 80, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
            )
        )
        g = view.grid
        if g is None:
            for v in self.values.values():
                v.setText("—")
            self.status.setText(
                f"The true posterior on a grid needs a 2-D latent space (this model has "
                f"d = {view.latent_dim}); the amortization study below works for any d."
            )
            self.overlay.clear()
            self.zoom_button.setEnabled(False)
            self.posterior_ready.emit(view)
            return
        self.values["log_px"].setText(f"{g.log_px:.3f} nats")
        self.values["elbo"].setText(f"{g.elbo:.3f} nats")
        self.values["kl_gap"].setText(f"{g.kl_gap:.4f} nats")
        off_grid = not np.isfinite(g.kl_quadrature)
        self.values["kl_quad"].setText("n/a: q off the grid" if off_grid else f"{g.kl_quadrature:.4f} nats")
        self.values["kl_quad"].setToolTip(
            TIP_KL_QUAD
            + (" Not computed here: q reaches outside the grid, so the quadrature would miss part of it." * off_grid)
        )
        self.values["recon"].setText(f"{g.recon:.3f} nats")
        self.values["kl_prior"].setText(f"{g.kl_prior:.3f} nats")
        self.values["grid"].setText(
            f"{g.grid_size}×{g.grid_size} · mass {g.mass_in_window:.6f} · {g.seconds * 1000:,.0f} ms"
        )
        warn = ""
        if g.mass_in_window < 0.999 or g.edge_mass > 1e-3:
            warn = " Part of the posterior may lie outside the grid window."
        self.status.setText(
            f"{view.name}, model at step {view.step:,}: computed in {view.seconds * 1000:.0f} ms.{warn}"
        )
        self.status.setToolTip("")
        self.overlay.update(g)
        self.overlay.zoom_to()
        self._show_optimised_for_current()
        self.zoom_button.setEnabled(True)
        self.posterior_ready.emit(view)

    def clear_posterior(self) -> None:
        self.overlay.clear()
        for v in self.values.values():
            v.setText("—")
        self.zoom_button.setEnabled(False)

    def _on_zoom(self) -> None:
        self.overlay.zoom_to()

    def _show_optimised_for_current(self) -> None:
        r = self.study.result
        if r is None or self.current_index is None or r.optimised_mu.shape[1] != 2:
            self.overlay.show_optimised(None, None)
            return
        hit = np.flatnonzero(r.indices == self.current_index)
        if len(hit) and self.view is not None and self.view.grid is not None and self.view.index == self.current_index:
            self.overlay.show_optimised(r.optimised_mu[hit[0]], r.optimised_log_var[hit[0]])
        else:
            self.overlay.show_optimised(None, None)

    # -- shutdown --------------------------------------------------------------------------------------------
    def running_workers(self) -> list[Worker]:
        return [w for w in (self.posterior_worker, self.study.worker()) if w is not None and w.is_running()]

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel the study, wait for both workers; True if none is left running."""
        self._pending = None
        ok = self.study.shutdown(timeout_ms)
        if self.posterior_worker is not None:
            ok = self.posterior_worker.wait(timeout_ms) and ok
        return ok

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        self.shutdown()
        super().closeEvent(event)
