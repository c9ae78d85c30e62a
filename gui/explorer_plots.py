"""The VI explorer's plots: densities over z, the exact ELBO over q's parameters (a curve for one parameter, a heat
map for two), and the ELBO against fit steps. Items are created once and updated with ``setData`` / ``setImage``;
the panel (gui/panels/explorer.py) lays the plot widgets out and hands them numpy arrays from ``engine.explorer``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QStackedWidget

from engine import explorer as ex

# colours (on a white background)
C_PRIOR = (120, 120, 120)
C_LIK = (230, 140, 20)
C_JOINT = (40, 150, 60)
C_POST = (20, 20, 20)
C_Q = (30, 90, 220)
C_BEST = (220, 30, 30)


def log_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Tick marks for an axis in pyqtgraph's log mode (positions in log10 units): 1-2-5 values, or only the
    decades when that would be crowded."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for mantissas in ((1, 2, 5), (1, 3), (1,)):
        values = [m * 10.0**d for d in decades for m in mantissas if lo <= m * 10.0**d <= hi]
        if len(values) <= 7:
            break
    return [(math.log10(v), f"{v:g}") for v in values]


@dataclass
class FitTrace:
    """What a fit has drawn so far: each step's MC estimate, q's exact ELBO and its parameters along the way."""

    steps: list[int] = field(default_factory=list)
    mc: list[float] = field(default_factory=list)
    exact_steps: list[int] = field(default_factory=list)
    exact: list[float] = field(default_factory=list)
    path: list[dict[str, float]] = field(default_factory=list)


class ExplorerPlots:
    """The plot widgets (``density_plot``, ``surface_stack``, ``step_plot``) and their items."""

    def __init__(self):
        self._surface1d_y = (-1.0, 0.0)  # y view of the 1-D ELBO curve (set with the landscape)
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

    def draw_densities(self, c: ex.DensityCurves, D: float) -> None:
        """Prior, likelihood, joint, posterior and q over z (``engine.explorer.density_curves``)."""
        self.prior_curve.setData(c.z, c.prior)
        self.lik_curve.setData(c.z, c.likelihood)
        self.joint_curve.setData(c.z, c.joint)
        self.post_curve.setData(c.z, c.posterior)
        self.q_curve.setData(c.z, c.q)
        self.D_line.setValue(D)
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

    def draw_landscape(self, surf: ex.ElboSurface, param_labels: tuple[str, ...]) -> None:
        """The exact ELBO over the family's parameters: a curve (one parameter) or a heat map (two)."""
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
            labels = param_labels
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

        self.surface_stack.setCurrentIndex(0 if len(surf.param_names) == 1 else 1)

    def draw_q(self, q: ex.Surrogate, elbo: float, path: list[dict[str, float]], path_elbo: list[float]) -> None:
        """The current q on the landscape, and the path of the fit (its parameters and exact ELBOs)."""
        names = type(q).param_names
        if len(names) == 1:
            self.surface1d_current.setData([getattr(q, names[0])], [elbo])
            lo, hi = self._surface1d_y  # q far from the optimum: widen the view downwards so its point stays in sight
            if np.isfinite(elbo) and elbo < lo:
                lo = elbo - 0.08 * (hi - elbo)
            self.surface1d.getPlotItem().setYRange(lo, hi, padding=0)
            if path and len(path) == len(path_elbo):
                self.surface1d_path.setData([p[names[0]] for p in path], path_elbo)
            else:
                self.surface1d_path.setData([], [])
        else:
            self.surface2d_current.setData([getattr(q, names[0])], [getattr(q, names[1])])
            if path:
                self.surface2d_path.setData([p[names[0]] for p in path], [p[names[1]] for p in path])
            else:
                self.surface2d_path.setData([], [])

    def draw_fit(self, fit: FitTrace, log_p: float, best_elbo: float, total: int) -> None:
        """ELBO against fit step: the MC estimates, q's exact ELBO, log p(D) and the family's best."""
        self.step_mc_curve.setData(fit.steps, fit.mc)
        self.step_exact_curve.setData(fit.exact_steps, fit.exact)
        self.step_logp_line.setValue(log_p)
        self.step_best_line.setValue(best_elbo)
        p = self.step_plot.getPlotItem()
        exact = [e for e in fit.exact if math.isfinite(e)]
        lo = min([*exact, best_elbo]) if exact else best_elbo - 1.0
        hi = log_p
        mc = np.asarray(fit.mc, dtype=float)
        mc = mc[np.isfinite(mc)]
        if mc.size >= 10:  # show the bulk of the noisy estimates, not their rare outliers
            lo = min(lo, float(np.percentile(mc, 5)))
            hi = max(hi, float(np.percentile(mc, 95)))
        pad = 0.08 * (hi - lo) + 0.02
        p.setYRange(lo - pad, hi + pad, padding=0)
        p.setXRange(0, total, padding=0.01)
