"""The "2-D Lab" tab: a Gaussian mixture (EM) and a VAE on the same 2-D points, side by side, trained live.

The panel owns the point set (built-in, drawn with the mouse, or read from a CSV file) and one engine run
(engine/lab2d/run.py) drained by a gui/workers.Worker; the run's frames and density maps arrive here as numpy and
are drawn by a timer at DRAW_HZ, only the newest of each. Start / Pause / Step / Reset drive the run; β, the
learning rate and K apply at once; a change of K components, d, σ or width starts new models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QGridLayout, QHBoxLayout, QLabel, QMessageBox, QWidget

from engine.data.dataset import DatasetError
from engine.lab2d import points as P
from engine.lab2d.run import DensityMaps, LabConfig, LabFrame, LabRun
from gui.lab2d.controls import Lab2DControls
from gui.lab2d.views import CurvesView, DataView, LatentView
from gui.workers import Worker

DRAW_HZ = 30  # timer rate; a pass draws only what changed since the last one
BRUSH_DAB = 6  # points each dab of the brush adds
HOVER_PX = 10  # how near (pixels) the pointer must be to a point to hover it
FEW = 12  # points whose q(z|x) is drawn in the latent view
CLOSE_WAIT_MS = 3000

LESSON = (
    "<b>The lesson.</b> p(z) = N(0, I) and p(x|z) = N(μθ(z), σ²I) are both Gaussian, yet p(x) = ∫ p(x|z) p(z) dz "
    "is multimodal: the decoder bends the prior's sheet (blue grid; a curve for d = 1) through the data. "
    "μθ is continuous, so between two clusters it must cross the gap and leaves a <i>bridge</i> of density there "
    "(the trails of samples and of colour on the right); trained on the tighter IWAE bound (Train on) it thins "
    "them. The mixture's z is discrete: no bridges, and its p(z|x) "
    "is exact (the colours); the VAE's q(z|x) is an amortized guess (ellipses, below). Hover a point to see its "
    "q(z|x) and decoded mean; draw with the left button, erase with the right."
)


class Lab2DPanel(QWidget):
    drawn = Signal()  # a redraw pass drew a new frame (tests and the benchmark count them)
    maps_drawn = Signal()

    def __init__(self, show_error=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("lab2dPanel")
        self._show_error = show_error
        self.controls = c = Lab2DControls()
        self.mixture_view = DataView("Mixture (EM): exact log p(x), p(z|x) as colours", "lab2dMixtureView")
        self.vae_view = DataView("VAE: log p(x) by IWAE-K, samples, decoder μθ(z)", "lab2dVaeView")
        self.latent = LatentView()
        self.curves = CurvesView()
        self.lesson = QLabel(LESSON)
        self.lesson.setObjectName("lab2dLesson")
        self.lesson.setWordWrap(True)
        self.lesson.setTextFormat(Qt.TextFormat.RichText)
        self.lesson.setProperty("role", "caption")
        grid = QGridLayout()
        grid.setSpacing(4)
        grid.addWidget(self.mixture_view.widget, 0, 0)
        grid.addWidget(self.vae_view.widget, 0, 1)
        grid.addWidget(self.latent.widget, 1, 0)
        grid.addWidget(self.curves.widget, 1, 1)
        grid.addWidget(self.lesson, 2, 0, 1, 2)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(c)
        lay.addLayout(grid, 1)

        self.points = np.zeros((0, 2))
        self.data_version = 0
        self.data_name = ""
        self.run: LabRun | None = None
        self.worker: Worker | None = None
        self._csv_worker: Worker | None = None
        self.frame: LabFrame | None = None
        self.maps: DensityMaps | None = None
        self._frame_dirty = self._maps_dirty = False
        self._hover: int | None = None
        self._last_dab: tuple[float, float] | None = None
        self._rng = np.random.default_rng(0)
        self.redraws = 0  # frames drawn (benchmark)
        self.map_redraws = 0
        self.timer = QTimer(self)
        self.timer.setObjectName("lab2dTimer")
        self.timer.setInterval(int(1000 / DRAW_HZ))
        self.timer.timeout.connect(self._draw)
        self.timer.start()
        self._connect()
        self.regenerate()

    # -- wiring ------------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        c = self.controls
        c.source.currentIndexChanged.connect(self._on_source)
        for box in (c.n_points, c.noise, c.seed):
            box.valueChanged.connect(lambda _v: self.regenerate())
        c.clear.clicked.connect(lambda: self.set_points(np.zeros((0, 2)), "drawn points"))
        c.open_csv.clicked.connect(self.open_csv_dialog)
        for box in (c.components, c.hidden, c.layers, c.sigma):
            box.valueChanged.connect(lambda _v: self.reset())
        for combo in (c.latent_dim, c.sigma_mode):
            combo.currentIndexChanged.connect(lambda _i: self.reset())
        c.seed.valueChanged.connect(lambda _v: self.reset())
        c.beta.valueChanged.connect(lambda v: self._live(beta=v))
        c.lr.valueChanged.connect(lambda v: self._live(lr=v))
        c.iwae_k.valueChanged.connect(lambda v: self._live(iwae_k=int(v)))
        c.train_k.valueChanged.connect(lambda v: self._live(train_k=int(v)))
        c.start.clicked.connect(self.start)
        c.pause.clicked.connect(self.pause)
        c.step.clicked.connect(self.step)
        c.reset.clicked.connect(self.reset)
        for v in (self.mixture_view, self.vae_view):
            v.dab.connect(self._on_dab)
            v.erase.connect(self._on_erase)
            v.stroke_ended.connect(self._on_stroke_end)
            v.hovered.connect(lambda x, y, view=v: self._on_hover(view, x, y))
        self._update_buttons()

    # -- data ----------------------------------------------------------------------------------------------------
    def _on_source(self, _i) -> None:
        key = self.controls.source.currentData()
        self.controls.noise.blockSignals(True)
        self.controls.noise.setValue(P.DEFAULT_NOISE[key])
        self.controls.noise.blockSignals(False)
        self.regenerate()

    def regenerate(self) -> None:
        """The built-in set of the controls' settings."""
        c = self.controls
        key = c.source.currentData()
        pts = P.make_points(key, c.n_points.value(), c.noise.value(), c.seed.value())
        self.set_points(pts, P.NAMES[key], fit_view=True)

    def set_points(self, pts: np.ndarray, name: str, fit_view: bool = False) -> None:
        """Make ``pts`` the data of both views and of the running models (which keep training on them)."""
        self.points = np.asarray(pts, float).reshape(-1, 2)
        self.data_version += 1
        self.data_name = name
        self._hover = None
        for v in (self.mixture_view, self.vae_view):
            v.set_points(self.points)
            v.set_hover(None)
            if fit_view:
                v.set_range(P.bounds(self.points))
        self.controls.data_label.setText(f"{len(self.points):,} points: {name}")
        if self.run is not None:
            try:
                self.run.set_points(self.points, self.data_version)
                self._say("")
            except ValueError as e:
                self._say(f"The models keep their previous points: {e}.")

    def _on_dab(self, x: float, y: float) -> None:
        r = self.controls.brush.value()
        if self._last_dab is not None and math.dist(self._last_dab, (x, y)) < r / 2:
            return  # a slow stroke does not pile points on one spot
        self._last_dab = (x, y)
        room = P.MAX_POINTS - len(self.points)
        if room <= 0:
            self._say(f"At most {P.MAX_POINTS:,} points.")
            return
        new = P.brush((x, y), r, min(BRUSH_DAB, room), self._rng)
        self.set_points(np.concatenate([self.points, new]), "drawn points")

    def _on_erase(self, x: float, y: float) -> None:
        kept = P.erase(self.points, (x, y), self.controls.brush.value())
        if len(kept) != len(self.points):
            self.set_points(kept, "drawn points")

    def _on_stroke_end(self) -> None:
        self._last_dab = None

    def ask_csv_path(self) -> str:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open points (CSV: x, y)", "", "CSV files (*.csv *.csv.gz);;All files (*)"
        )
        return path

    def open_csv_dialog(self) -> None:
        path = self.ask_csv_path()
        if path:
            self.open_csv(path)

    def open_csv(self, path: str) -> None:
        """Read ``path`` on a worker; a bad file leaves the current points and says why."""
        if self._csv_worker is not None:
            return
        self._csv_worker = Worker(
            lambda: P.load_points_csv(path),
            on_result=lambda pts: self.set_points(pts, Path(path).name, fit_view=True),
            on_error=self._on_csv_error,
            name="lab2dCsv",
        )
        self._csv_worker.done.connect(self._on_csv_done)

    def _on_csv_done(self) -> None:
        self._csv_worker = None

    def _on_csv_error(self, e: BaseException, tb: str) -> None:
        text = str(e) if isinstance(e, DatasetError) else f"{type(e).__name__}: {e}"
        self._say(f"{text}. The previous points are kept.")
        self.show_error("Could not open the points", text)

    def show_error(self, title: str, text: str) -> None:
        if self._show_error is not None:
            self._show_error(title, text)
        else:
            QMessageBox.warning(self, title, text)

    def _say(self, text: str) -> None:
        self.controls.message.setText(text)

    # -- the run -------------------------------------------------------------------------------------------------
    def _ensure_run(self) -> bool:
        if self.run is not None:
            return True
        c = self.controls
        k = c.components.value()
        if len(self.points) < max(k, 2):
            self._say(f"Draw or load at least {max(k, 2)} points for {k} components.")
            return False
        self.run = LabRun(self.points, LabConfig(k, c.vae_config(), c.seed.value()), self.data_version)
        self.worker = Worker(self.run.frames, on_item=self._on_item, on_error=self._on_run_error, name="lab2dRun")
        self._say("")
        return True

    def start(self) -> None:
        if self._ensure_run():
            self.run.resume()
        self._update_buttons()

    def pause(self) -> None:
        if self.run is not None:
            self.run.pause()
        self._update_buttons()

    def step(self) -> None:
        if self._ensure_run():
            self.run.pause()
            self.run.step()
        self._update_buttons()

    def reset(self) -> None:
        """Stop the run; new models (from the settings) come with the next Start or Step."""
        self._stop_run()
        self.frame, self.maps = None, None
        self.curves.clear()
        self.latent.clear()
        for v in (self.mixture_view, self.vae_view):
            v.set_points(self.points)
            v.set_samples(None)
            v.set_lines([])
            v.set_density(None)
            v.set_hover(None)
        self.controls.numbers.setText("")
        self._update_buttons()

    def is_running(self) -> bool:
        return self.run is not None and not self.run.paused

    def _live(self, **kw) -> None:
        if self.run is not None:
            try:
                self.run.set_live(**kw)
            except ValueError as e:
                self._say(str(e))

    def _stop_run(self) -> None:
        run, worker = self.run, self.worker
        self.run = self.worker = None
        if run is not None:
            run.stop()
        if worker is not None:
            worker.cancel()
            worker.wait(CLOSE_WAIT_MS)

    def shutdown(self) -> None:
        """Stop the run and any file being read (the window is closing)."""
        self.timer.stop()
        self._stop_run()
        if self._csv_worker is not None:
            self._csv_worker.cancel()
            self._csv_worker.wait(CLOSE_WAIT_MS)

    def _on_item(self, item) -> None:
        if self.run is None:
            return
        if isinstance(item, LabFrame):
            self.frame = item
            self._frame_dirty = True
            self.curves.append(
                item.tick, {"elbo": item.elbo, "iwae": item.iwae, "kl": item.kl, "gmm": item.mixture_log_lik}
            )
        elif isinstance(item, DensityMaps):
            self.maps = item
            self._maps_dirty = True

    def _on_run_error(self, e: BaseException, tb: str) -> None:
        self._stop_run()
        self._say(f"The run stopped: {type(e).__name__}: {e}")
        self._update_buttons()

    def _update_buttons(self) -> None:
        c = self.controls
        running = self.is_running()
        c.start.setEnabled(not running)
        c.pause.setEnabled(running)
        c.step.setEnabled(not running)

    # -- drawing ---------------------------------------------------------------------------------------------------
    def _draw(self) -> None:
        if not self.isVisible():
            return  # another tab is on show: what arrived is drawn when this one is shown again
        if self._frame_dirty and self.frame is not None:
            self._frame_dirty = False
            self._draw_frame(self.frame)
            self.redraws += 1
            self.drawn.emit()
        if self._maps_dirty and self.maps is not None:
            self._maps_dirty = False
            m = self.maps
            self.mixture_view.set_density(m.mixture, m.box)
            self.vae_view.set_density(m.vae, m.box)
            self.map_redraws += 1
            self.maps_drawn.emit()

    def _draw_frame(self, f: LabFrame) -> None:
        current = f.data_version == self.data_version
        self.mixture_view.set_points(self.points, f.labels if current else None)
        self.mixture_view.set_samples(f.mixture_samples)
        self.mixture_view.set_lines(list(f.mixture_ellipses))
        self.vae_view.set_samples(f.vae_samples)
        self.vae_view.set_lines(list(f.manifold))
        if current and len(f.q_mean):
            few = np.unique(np.linspace(0, len(f.q_mean) - 1, FEW).astype(int))
            self.latent.set_posteriors(f.q_mean, f.q_log_var, few)
        self.curves.refresh()
        self._show_hover()
        self.controls.numbers.setText(
            f"tick {f.tick:,} · VAE batches {f.vae_steps:,}<br>"
            f"mixture log p(x): <b>{f.mixture_log_lik:.3f}</b><br>"
            f"VAE IWAE-K: <b>{f.iwae:.3f}</b> · ELBO {f.elbo:.3f}<br>"
            f"KL {f.kl:.3f} · σ = ({f.sigma[0]:.3f}, {f.sigma[1]:.3f})<br><i>nats per point</i>"
        )

    def _on_hover(self, view: DataView, x: float, y: float) -> None:
        self._hover = None
        if not math.isnan(x) and len(self.points):
            pw, ph = view.vb.viewPixelSize()
            d2 = ((self.points[:, 0] - x) / max(pw, 1e-12)) ** 2 + ((self.points[:, 1] - y) / max(ph, 1e-12)) ** 2
            i = int(np.argmin(d2))
            if d2[i] <= HOVER_PX**2:
                self._hover = i
        self._show_hover()

    def _show_hover(self) -> None:
        i, f = self._hover, self.frame
        if i is None or f is None or f.data_version != self.data_version or i >= len(f.q_mean):
            for v in (self.mixture_view, self.vae_view):
                v.set_hover(None if i is None else self.points[i])
            self.latent.set_hover(None)
            return
        self.mixture_view.set_hover(self.points[i])
        self.vae_view.set_hover(self.points[i], f.decoded[i])
        self.latent.set_hover(f.q_mean[i], f.q_log_var[i])
        r = f.mixture.responsibilities(self.points[i][None])[0]
        top = np.argsort(r)[::-1][:3]
        self._say(
            f"Point #{i}: mixture p(z|x) = "
            + ", ".join(f"{r[k]:.2f} (component {k + 1})" for k in top if r[k] >= 0.01)
            + f"; VAE q(z|x) mean {np.array2string(f.q_mean[i], precision=2)}, σ "
            + np.array2string(np.exp(0.5 * f.q_log_var[i]), precision=2)
        )
