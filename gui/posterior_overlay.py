"""Contours of the true posterior p(z|x) and q(z|x)'s 1σ/2σ ellipses on a PlotItem in latent coordinates.

Items are created once and updated with setData (pg.IsocurveItem for the contours, at the levels engine.posterior
computed to enclose 50/90/99% of the mass); the ellipses come from engine.posterior.q_ellipse."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QTransform

from engine.posterior import PosteriorGrid, q_ellipse

# colours: posterior contours orange (darkest = 50% region), encoder q blue, optimised q_i green
C_POST = ((200, 80, 0, 255), (230, 120, 20, 220), (245, 165, 70, 190))
C_Q = (31, 119, 180)
C_QI = (44, 160, 44)


def _pen(rgba, width=1.6, dash=False):
    return pg.mkPen(rgba, width=width, style=Qt.PenStyle.DashLine if dash else Qt.PenStyle.SolidLine)


class PosteriorOverlay:
    """Contours of p(z|x) and q(z|x)'s ellipses on a PlotItem in latent coordinates (z₁, z₂). Create once;
    ``update(grid)`` redraws, ``show_optimised(mu, log_var)`` adds the ellipses of a per-example q_i,
    ``clear()`` hides everything, ``remove()`` takes the items off the plot. None of it moves the plot's range."""

    def __init__(self, plot_item: pg.PlotItem):
        self.plot = plot_item
        self.grid: PosteriorGrid | None = None
        # the density is indexed [x, y]: say so, whatever the global imageAxisOrder is
        self.isocurves = [
            pg.IsocurveItem(data=None, level=0.0, pen=_pen(c, 2.0 if i == 0 else 1.6), axisOrder="col-major")
            for i, c in enumerate(C_POST)
        ]
        self.q_ellipses = [
            pg.PlotDataItem(pen=_pen(C_Q + (255,), 1.8)),
            pg.PlotDataItem(pen=_pen(C_Q + (200,), 1.4, dash=True)),
        ]
        self.qi_ellipses = [
            pg.PlotDataItem(pen=_pen(C_QI + (255,), 1.8)),
            pg.PlotDataItem(pen=_pen(C_QI + (200,), 1.4, dash=True)),
        ]
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
        for item, k in zip(self.qi_ellipses, (1.0, 2.0)):
            e = q_ellipse(mu, log_var, k)
            item.setData(e[:, 0], e[:, 1])

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
