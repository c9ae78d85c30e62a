"""The "VI explorer" tab: variational inference on the Exponential–Normal model (seed 001), every number exact.

Left: the model (α, σ, D), the surrogate family and its parameters, the Monte Carlo sample count, and the fit.
Right: densities over z; the numbers (log p(D) both ways, ELBO exact and by Monte Carlo, KL, and the identity
log p(D) = ELBO + KL holding live); the ELBO over the family's parameters; the ELBO against fit steps.

No model math here: everything comes from ``engine.explorer``; this widget maps sliders to parameter values and
draws numpy arrays.  Plot items are created once and updated with ``setData`` / ``setImage``.  The fit is the
engine's generator, advanced a few steps per QTimer tick on the GUI thread (each step is well under a millisecond).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine import explorer as ex
from gui.explorer_controls import LEFT_WIDTH, build_controls, build_numbers, fmt, log_ticks

TICK_MS = 30  # fit animation: one tick every 30 ms ...
TICKS_PER_FIT = 70  # ... and about this many ticks per fit (≈ 2–3 s), whatever the number of steps

# colours (on a white background)
C_PRIOR = (120, 120, 120)
C_LIK = (230, 140, 20)
C_JOINT = (40, 150, 60)
C_POST = (20, 20, 20)
C_Q = (30, 90, 220)
C_BEST = (220, 30, 30)


class ExplorerPanel(QWidget):
    """Self-contained "VI explorer" tab. `stop_fit()` stops a running fit (the main window may call it on close)."""

    fit_finished = Signal()  # a fit ran to its last step or was stopped

    def __init__(self, parent: QWidget | None = None, model: ex.ExpNormalModel | None = None):
        super().__init__(parent)
        self.setObjectName("explorer_panel")
        self._model = model or ex.ExpNormalModel(alpha=1.0, sigma=1.0, D=2.0)
        self._family: type[ex.Surrogate] = ex.ExponentialQ
        self._q: ex.Surrogate = self._family.starting_point(self._model)
        self._best: ex.Surrogate | None = None
        self._best_elbo = math.nan
        self._surface1d_y = (-1.0, 0.0)  # y view of the 1-D ELBO curve (set with the landscape)
        self._surface: ex.ElboSurface | None = None
        self._numbers: ex.ExplorerNumbers | None = None
        self._mc_seed = 0
        # fit state
        self._fit_gen = None
        self._fit_steps: list[int] = []
        self._fit_mc: list[float] = []
        self._fit_exact_steps: list[int] = []
        self._fit_exact: list[float] = []
        self._fit_path: list[dict[str, float]] = []
        self._steps_per_tick = 1
        self._fit_total = 0
        self._timer = QTimer(self)
        self._timer.setObjectName("explorer_fit_timer")
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_tick)

        self._build_controls()
        self._build_plots()
        self._build_numbers()
        self._layout()

        self._on_model_changed()  # first full computation and draw

    # ------------------------------------------------------------------------------------------- construction
    def _build_controls(self) -> None:
        build_controls(self)

    def _build_plots(self) -> None:
        # --- densities over z
        self.density_plot = pg.PlotWidget(background="w")
        self.density_plot.setObjectName("explorer_density_plot")
        self.density_plot.setToolTip(
            "Densities over the latent z. The joint p(z, D) is the posterior times p(D): its shaded area is p(D).\n"
            "The likelihood p(D | z) is drawn as a function of z without scaling: for this model it integrates "
            "to 1 over z, so it shares the density axis."
        )
        p = self.density_plot.getPlotItem()
        p.setTitle("What we can compute (prior, likelihood, joint) and what VI approximates (posterior)", size="9pt")
        p.setLabel("bottom", "z  (latent, same units as x)")
        p.setLabel("left", "density  (per unit z)")
        p.showGrid(x=True, y=True, alpha=0.15)
        self.density_legend = p.addLegend(
            offset=(-8, 8), labelTextColor=(30, 30, 30), brush=(255, 255, 255, 200), labelTextSize="8pt"
        )
        self._legend_left = False

        def curve(color, name, width=2.0, style=Qt.PenStyle.SolidLine, **kw):
            c = p.plot([], [], pen=pg.mkPen(color, width=width, style=style), name=name, **kw)
            c.setClipToView(True)
            return c

        self.prior_curve = curve(C_PRIOR, "prior p(z)", style=Qt.PenStyle.DashLine)
        self.lik_curve = curve(C_LIK, "likelihood p(D | z) vs z (unscaled)", style=Qt.PenStyle.DashLine)
        self.joint_curve = curve(C_JOINT, "joint p(z, D)  (shaded area = p(D))", fillLevel=0.0, brush=(*C_JOINT, 50))
        self.post_curve = curve(C_POST, "true posterior p(z | D)", width=2.5)
        self.q_curve = curve(C_Q, "surrogate q(z)", width=3.0)
        self.D_line = pg.InfiniteLine(
            angle=90,
            pen=pg.mkPen(C_LIK, width=1, style=Qt.PenStyle.DotLine),
            label="x = D",
            labelOpts={"position": 0.55, "color": C_LIK},
        )
        p.addItem(self.D_line)

        # --- ELBO over the family's parameters: a 1-D page (Exponential) and a 2-D page (μ, σ)
        self.surface_stack = QStackedWidget()
        self.surface_stack.setObjectName("explorer_surface_stack")
        self.surface_stack.setToolTip(
            "The exact ELBO as a function of q's parameters. Star: the family's optimum. Circle: the current q. "
            "Line: the path of the last fit."
        )
        self.surface1d = pg.PlotWidget(background="w")
        self.surface1d.setObjectName("explorer_surface_1d")
        s1 = self.surface1d.getPlotItem()
        s1.setLogMode(x=True, y=False)
        s1.setLabel("left", "ELBO (nats)")
        s1.showGrid(x=True, y=True, alpha=0.15)
        self.surface_curve = s1.plot([], [], pen=pg.mkPen(C_Q, width=2))
        self.surface_logp_line = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen(C_POST, width=1, style=Qt.PenStyle.DashLine),
            label="log p(D)",
            labelOpts={"position": 0.05, "color": C_POST, "anchors": [(0, 0), (0, 0)]},
        )
        s1.addItem(self.surface_logp_line)
        self.surface1d_path = s1.plot([], [], pen=pg.mkPen((90, 90, 90), width=1))
        self.surface1d_best = s1.plot([], [], pen=None, symbol="star", symbolSize=16, symbolBrush=C_BEST, symbolPen="k")
        self.surface1d_current = s1.plot([], [], pen=None, symbol="o", symbolSize=11, symbolBrush=C_Q, symbolPen="k")

        self.surface2d = pg.PlotWidget(background="w")
        self.surface2d.setObjectName("explorer_surface_2d")
        s2 = self.surface2d.getPlotItem()
        s2.setLogMode(x=False, y=True)
        self.surface_image = pg.ImageItem(axisOrder="col-major")
        s2.addItem(self.surface_image)
        self.surface_colorbar = pg.ColorBarItem(
            values=(-10.0, 0.0),
            colorMap=pg.colormap.get("viridis"),
            label="ELBO (nats)",
            interactive=False,
            width=12,
        )
        self.surface_colorbar.setImageItem(self.surface_image, insert_in=s2)
        s2.layout.setContentsMargins(0, 0, 12, 0)  # room for the colour bar's tick labels
        self.surface2d_path = s2.plot([], [], pen=pg.mkPen("w", width=1.5))
        self.surface2d_best = s2.plot([], [], pen=None, symbol="star", symbolSize=16, symbolBrush=C_BEST, symbolPen="k")
        self.surface2d_current = s2.plot([], [], pen=None, symbol="o", symbolSize=11, symbolBrush="w", symbolPen="k")
        self.surface_stack.addWidget(self.surface1d)
        self.surface_stack.addWidget(self.surface2d)

        # --- ELBO vs fit step
        self.step_plot = pg.PlotWidget(background="w")
        self.step_plot.setObjectName("explorer_step_plot")
        self.step_plot.setToolTip(
            "The fit: Monte Carlo ELBO estimate of each step (thin), exact ELBO of q as it moves (thick), "
            "log p(D) (dashed) and the family's best ELBO (dotted)."
        )
        sp = self.step_plot.getPlotItem()
        sp.setTitle("Fit: ELBO vs step", size="9pt")
        sp.setLabel("bottom", "step")
        sp.setLabel("left", "ELBO (nats)")
        sp.showGrid(x=True, y=True, alpha=0.15)
        sp.addLegend(offset=(-8, -8), labelTextColor=(30, 30, 30), brush=(255, 255, 255, 200), labelTextSize="8pt")
        self.step_mc_curve = sp.plot([], [], pen=pg.mkPen((150, 170, 230), width=1), name="MC estimate (per step)")
        self.step_mc_curve.setClipToView(True)
        self.step_exact_curve = sp.plot([], [], pen=pg.mkPen(C_Q, width=2.5), name="exact ELBO of q")
        self.step_logp_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(C_POST, width=1, style=Qt.PenStyle.DashLine))
        self.step_best_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(C_BEST, width=1.5, style=Qt.PenStyle.DotLine))
        sp.addItem(self.step_logp_line)
        sp.addItem(self.step_best_line)
        sp.legend.addItem(pg.PlotDataItem(pen=pg.mkPen(C_POST, width=1, style=Qt.PenStyle.DashLine)), "log p(D)")
        sp.legend.addItem(pg.PlotDataItem(pen=pg.mkPen(C_BEST, width=1.5, style=Qt.PenStyle.DotLine)), "family best")

    def _build_numbers(self) -> None:
        build_numbers(self)

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
        fit_form.addRow("steps", self.steps_box)
        fit_form.addRow("samples / step", self.batch_box)
        fv.addLayout(fit_form)
        buttons = QHBoxLayout()
        for b in (self.fit_button, self.stop_button, self.best_button):
            buttons.addWidget(b)
        fv.addLayout(buttons)
        fv.addWidget(self.report_label)

        left = QVBoxLayout()
        left.addWidget(model_box)
        left.addWidget(q_box)
        left.addWidget(fit_box)
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setFixedWidth(LEFT_WIDTH)

        bottom = QHBoxLayout()
        bottom.addWidget(self.surface_stack, 1)
        bottom.addWidget(self.step_plot, 1)
        right = QVBoxLayout()
        right.addWidget(self.density_plot, 5)
        right.addWidget(self.numbers_box, 0)
        right.addLayout(bottom, 4)

        outer = QHBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(left_widget)
        outer.addLayout(right, 1)
        self.numbers_box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    # ------------------------------------------------------------------------------------------------ public
    @property
    def model(self) -> ex.ExpNormalModel:
        return self._model

    @property
    def q(self) -> ex.Surrogate:
        return self._q

    @property
    def numbers(self) -> ex.ExplorerNumbers | None:
        return self._numbers

    @property
    def best(self) -> ex.Surrogate | None:
        return self._best

    @property
    def best_elbo(self) -> float:
        return self._best_elbo

    def is_fitting(self) -> bool:
        return self._timer.isActive()

    def fit_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, MC ELBO estimates) of the current/last fit, as drawn."""
        return np.asarray(self._fit_steps, dtype=float), np.asarray(self._fit_mc, dtype=float)

    def stop_fit(self, reason: str = "stopped") -> None:
        """Stop a running fit (no-op if none) and report where it got to."""
        if self._fit_gen is None and not self._timer.isActive():
            return
        self._timer.stop()
        gen, self._fit_gen = self._fit_gen, None
        if gen is not None:
            gen.close()
        self.fit_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self._report_fit(reason)
        self.fit_finished.emit()

    # ---------------------------------------------------------------------------------------------- handlers
    def _on_model_changed(self, *_):
        self.stop_fit("stopped: the model changed")
        self._model = ex.ExpNormalModel(self.alpha_box.value(), self.sigma_box.value(), self.D_box.value())
        self._configure_family_controls()
        self._recompute_landscape()
        self._clear_fit_curves()
        self._refresh()

    def _on_family_changed(self, *_):
        self.stop_fit("stopped: the family changed")
        self._family = ex.FAMILIES[self.family_combo.currentData()]
        self._q = self._family.starting_point(self._model)
        self._configure_family_controls()
        self._recompute_landscape()
        self._clear_fit_curves()
        # the last fit's report was about the previous family
        self.report_label.setText(f"Press Fit to run stochastic VI from this {self._family.display_name} q.")
        self._refresh()

    def _on_param_slider(self, index: int, value: float):
        self.stop_fit("stopped: parameters moved by hand")
        params = self._q.params()
        params[self._family.param_names[index]] = value
        self._q = self._family(**params)
        self._refresh()

    def _on_n_changed(self, *_):
        self._refresh()

    def _on_resample(self):
        self._mc_seed += 1
        self._refresh()

    def _on_best(self):
        self.stop_fit("stopped: jumped to the best q")
        if self._best is not None:
            self._q = self._best
            self._refresh()

    def _on_fit(self):
        if self._timer.isActive():
            return
        steps = self.steps_box.value()
        self._fit_gen = ex.fit(
            self._model,
            self._family,
            self._q,
            lr=self.lr_box.value(),
            steps=steps,
            n_samples=self.batch_box.value(),
            seed=self._mc_seed,
        )
        self._fit_total = steps
        self._steps_per_tick = max(1, math.ceil(steps / TICKS_PER_FIT))
        self._clear_fit_curves()
        self._fit_exact_steps.append(0)
        self._fit_exact.append(self._numbers.elbo_quad if self._numbers else math.nan)
        self._fit_path.append(self._q.params())
        self.fit_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.report_label.setText(f"Fitting {self._family.display_name} q: {steps} steps …")
        self._timer.start()

    def _on_tick(self):
        if self._fit_gen is None:
            self._timer.stop()
            return
        record, done = None, False
        for _ in range(self._steps_per_tick):
            try:
                record = next(self._fit_gen)
            except StopIteration:
                done = True
                break
            self._fit_steps.append(record.step)
            self._fit_mc.append(record.elbo_estimate)
        if record is not None:
            self._q = self._family(**record.params)
            self._fit_path.append(dict(record.params))
            self._refresh(fit_step=record.step)
        if done or (record is not None and record.step >= self._fit_total):
            self.stop_fit("finished")

    def closeEvent(self, event):
        self.stop_fit("stopped: panel closed")
        super().closeEvent(event)

    # ------------------------------------------------------------------------------------------- computation
    def _configure_family_controls(self) -> None:
        fam = self._family
        ranges = fam.param_ranges(self._model)
        self.family_note.setText(f"{fam.label}. {fam.note}")
        # a word-wrapped label in a fixed-width column does not always get its height-for-width: reserve it
        self.family_note.setMinimumHeight(self.family_note.heightForWidth(LEFT_WIDTH - 64) + 2)
        for i, slider in enumerate(self.param_sliders):
            if i < len(fam.param_names):
                name = fam.param_names[i]
                slider.configure(
                    fam.param_labels[i], ranges[name], f"Parameter {fam.param_labels[i]} of q(z): {fam.label}."
                )
                slider.show_value(getattr(self._q, name))
                slider.setVisible(True)
            else:
                slider.setVisible(False)
        self.surface_stack.setCurrentIndex(0 if len(fam.param_names) == 1 else 1)

    def _recompute_landscape(self) -> None:
        """Model or family changed: the family optimum and the ELBO surface."""
        self._best = ex.best_params(self._model, self._family)
        self._surface = ex.elbo_surface(self._model, self._family, best=self._best)
        self._best_elbo = self._surface.best_elbo
        surf = self._surface
        best = [surf.best[n] for n in surf.param_names]
        if len(surf.param_names) == 1:
            p = self.surface1d.getPlotItem()
            p.setTitle("Exact ELBO over q's rate λ", size="9pt")
            p.setLabel("bottom", "rate λ of q  (log scale)")
            finite = np.isfinite(surf.elbo)
            self.surface_curve.setData(surf.axes[0][finite], surf.elbo[finite])
            self.surface1d_best.setData([best[0]], [surf.best_elbo])
            self.surface_logp_line.setValue(surf.log_marginal)
            lo = max(np.min(surf.elbo[finite]), surf.best_elbo - 15.0)
            self._surface1d_y = (lo, surf.log_marginal + 0.08 * (surf.log_marginal - lo) + 0.05)
            p.setYRange(*self._surface1d_y, padding=0)
            p.setXRange(math.log10(surf.axes[0][0]), math.log10(surf.axes[0][-1]), padding=0.02)
            p.getAxis("bottom").setTicks([log_ticks(surf.axes[0][0], surf.axes[0][-1])])
        else:
            p = self.surface2d.getPlotItem()
            labels = self._family.param_labels
            p.setTitle("Exact ELBO over q's (μ, σ)", size="9pt")
            p.setLabel("bottom", labels[0])
            p.setLabel("left", f"{labels[1]}  (log scale)")
            x, y = surf.axes
            img = np.where(np.isfinite(surf.elbo), surf.elbo, -np.inf)
            low = surf.best_elbo - 10.0
            img = np.clip(np.nan_to_num(img, nan=low, neginf=low), low, None)
            self.surface_image.setImage(img, autoLevels=False)
            self.surface_colorbar.setLevels((low, surf.best_elbo))
            # pixel centres on the grid points; y in log10 units because the axis is in log mode
            ly = np.log10(y)
            dx, dy = x[1] - x[0], ly[1] - ly[0]
            self.surface_image.setRect(QRectF(x[0] - dx / 2, ly[0] - dy / 2, dx * len(x), dy * len(ly)))
            self.surface2d_best.setData([best[0]], [best[1]])
            p.setXRange(x[0] - dx / 2, x[-1] + dx / 2, padding=0)
            p.setYRange(ly[0] - dy / 2, ly[-1] + dy / 2, padding=0)
            p.getAxis("left").setTicks([log_ticks(y[0], y[-1])])

    def _refresh(self, fit_step: int | None = None) -> None:
        """q changed (or N, or the seed): curves, numbers, markers, fit curves."""
        for i, name in enumerate(self._family.param_names):
            self.param_sliders[i].show_value(getattr(self._q, name))
        self._numbers = ex.explorer_summary(self._model, self._q, self.n_box.value(), self._mc_seed)
        self._draw_densities()
        self._draw_numbers()
        self._draw_surface_markers()
        if fit_step is not None:
            self._fit_exact_steps.append(fit_step)
            self._fit_exact.append(self._numbers.elbo_quad)
        self._draw_fit_curves()

    # ---------------------------------------------------------------------------------------------- drawing
    def _draw_densities(self) -> None:
        c = ex.density_curves(self._model, self._q)
        self.prior_curve.setData(c.z, c.prior)
        self.lik_curve.setData(c.z, c.likelihood)
        self.joint_curve.setData(c.z, c.joint)
        self.post_curve.setData(c.z, c.posterior)
        self.q_curve.setData(c.z, c.q)
        self.D_line.setValue(self._model.D)
        p = self.density_plot.getPlotItem()
        top = max(np.max(c.posterior), np.max(c.prior), np.max(c.likelihood))
        top = max(top, min(np.max(c.q), 2.0 * top))  # a spiky q is cut off rather than flattening the rest
        p.setYRange(0.0, 1.08 * top, padding=0)
        p.setXRange(c.z[0], c.z[-1], padding=0)
        # put the legend in the top corner where the curves are lower
        envelope = np.maximum.reduce([c.prior, c.likelihood, c.posterior, np.minimum(c.q, top)])
        span = int(0.45 * len(c.z))
        left = float(np.max(envelope[:span])) < float(np.max(envelope[-span:]))
        if left != self._legend_left:
            self._legend_left = left
            if left:
                self.density_legend.anchor(itemPos=(0, 0), parentPos=(0, 0), offset=(8, 8))
            else:
                self.density_legend.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-8, 8))

    def _draw_numbers(self) -> None:
        n = self._numbers
        self.logp_label.setText(f"{fmt(n.log_marginal_closed)} closed form,  {fmt(n.log_marginal_quad)} quadrature")
        self.elbo_label.setText(f"{fmt(n.elbo_quad)} quadrature,   {fmt(n.elbo_closed)} closed form")
        self.mc_label.setText(f"{fmt(n.elbo_mc, 4)} ± {fmt(n.elbo_mc_se, 4)}  (± 1 s.e., N = {n.n_samples})")
        self.kl_label.setText(f"{fmt(n.kl)}")
        self.identity_label.setText(
            f"{fmt(n.log_marginal_closed)} = {fmt(n.elbo_quad)} + {fmt(n.kl)}"
            f"   (|residual| = {abs(n.identity_residual):.1e})"
        )

    def _draw_surface_markers(self) -> None:
        names = self._family.param_names
        path = self._fit_path
        if len(names) == 1:
            elbo = self._numbers.elbo_quad
            self.surface1d_current.setData([getattr(self._q, names[0])], [elbo])
            lo, hi = self._surface1d_y  # q far from the optimum: widen the view downwards so its point stays in sight
            if np.isfinite(elbo) and elbo < lo:
                lo = elbo - 0.08 * (hi - elbo)
            self.surface1d.getPlotItem().setYRange(lo, hi, padding=0)
            if path and len(path) == len(self._fit_exact):
                self.surface1d_path.setData([p[names[0]] for p in path], self._fit_exact)
            else:
                self.surface1d_path.setData([], [])
        else:
            self.surface2d_current.setData([getattr(self._q, names[0])], [getattr(self._q, names[1])])
            if path:
                self.surface2d_path.setData([p[names[0]] for p in path], [p[names[1]] for p in path])
            else:
                self.surface2d_path.setData([], [])

    def _clear_fit_curves(self) -> None:
        self._fit_steps.clear()
        self._fit_mc.clear()
        self._fit_exact_steps.clear()
        self._fit_exact.clear()
        self._fit_path.clear()
        self._draw_fit_curves()
        if self._numbers is not None:
            self._draw_surface_markers()

    def _draw_fit_curves(self) -> None:
        self.step_mc_curve.setData(self._fit_steps, self._fit_mc)
        self.step_exact_curve.setData(self._fit_exact_steps, self._fit_exact)
        log_p = self._numbers.log_marginal_closed if self._numbers else 0.0
        self.step_logp_line.setValue(log_p)
        self.step_best_line.setValue(self._best_elbo)
        p = self.step_plot.getPlotItem()
        exact = [e for e in self._fit_exact if math.isfinite(e)]
        lo = min([*exact, self._best_elbo]) if exact else self._best_elbo - 1.0
        hi = log_p
        mc = np.asarray(self._fit_mc, dtype=float)
        mc = mc[np.isfinite(mc)]
        if mc.size >= 10:  # show the bulk of the noisy estimates, not their rare outliers
            lo = min(lo, float(np.percentile(mc, 5)))
            hi = max(hi, float(np.percentile(mc, 95)))
        pad = 0.08 * (hi - lo) + 0.02
        p.setYRange(lo - pad, hi + pad, padding=0)
        total = self._fit_total or self.steps_box.value()
        p.setXRange(0, total, padding=0.01)

    def _report_fit(self, reason: str) -> None:
        n = self._numbers
        if n is None:
            return
        gap = n.log_marginal_closed - n.elbo_quad
        best_gap = max(n.log_marginal_closed - self._best_elbo, 0.0)  # ≥ 0 up to rounding (~1e-15)
        steps = self._fit_steps[-1] if self._fit_steps else 0
        self.report_label.setText(
            f"Fit {reason} after {steps} steps: final ELBO {n.elbo_quad:.4f}, gap to log p(D) {gap:.4f} nats; "
            f"family best {self._best_elbo:.4f} (gap {best_gap:.4f}); "
            f"fit − best = {n.elbo_quad - self._best_elbo:+.4f} nats."
        )
