"""The 2-D Lab's plots: a data-space view (points you can draw on, model samples, ellipses or the decoder's
manifold, log p(x) as a heat map), the VAE's latent space, and the curves of both models in nats per point.

Every plot item is created once and updated with ``setData`` / ``setImage``; nothing here computes a density or a
posterior: the arrays come from the engine (engine/lab2d) through the panel."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
import pyqtgraph.functions as fn
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen

from gui import style

HEAT_RANGE = 10.0  # nats of log p(x) below the map's maximum that the colour scale spans
POINT_COLOR = "#3a3f45"
SAMPLE_COLOR = "#e6780a"
MANIFOLD_COLOR = "#2f6fde"
HOVER_COLOR = "#d62728"


def _heat_lut() -> np.ndarray:
    """White (low density) to a light blue-green (high): the points and lines on top stay readable."""
    return pg.ColorMap([0.0, 0.5, 1.0], [QColor("#ffffff"), QColor("#cde6f5"), QColor("#6cb6a8")]).getLookupTable(
        0.0, 1.0, 256
    )


def _polylines(lines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Several polylines as one (x, y) pair separated by NaN (drawn by one item with connect='finite')."""
    if not lines:
        return np.zeros(0), np.zeros(0)
    parts = []
    for ln in lines:
        parts.append(ln)
        parts.append(np.full((1, 2), np.nan))
    xy = np.concatenate(parts)
    return xy[:, 0], xy[:, 1]


class Dots(pg.GraphicsObject):
    """Many same-sized square dots, one colour per group, drawn with one ``QPainter.drawPoints`` call per group.

    A ScatterPlotItem spends most of a redraw building per-point records (about 15 ms for 2,000 points with
    per-point brushes on this machine); here a redraw is a copy into a QPolygonF and one C++ loop per colour."""

    def __init__(self, size: float, color):
        super().__init__()
        self._size = size
        self._pens = [self._pen(color)]
        self._groups: list[tuple[int, object]] = []
        self._pos = np.zeros((0, 2))
        self._rect = QRectF()

    def _pen(self, color) -> QPen:
        pen = pg.mkPen(color, width=self._size)
        pen.setCosmetic(True)  # width in pixels, whatever the zoom
        pen.setCapStyle(Qt.PenCapStyle.SquareCap)  # square dots: the raster engine draws round ones 4× slower
        return pen

    def set_palette(self, colors) -> None:
        self._pens = [self._pen(c) for c in colors]

    def setData(self, pos=None, labels=None) -> None:  # noqa: N802 - pyqtgraph's name
        pos = np.zeros((0, 2)) if pos is None else np.asarray(pos, float).reshape(-1, 2)
        self._pos = pos
        groups = [(0, pos)] if labels is None else [(k, pos[labels == k]) for k in np.unique(labels)]
        self._groups = []
        for k, pts in groups:
            if not len(pts):
                continue
            poly = fn.create_qpolygonf(len(pts))
            fn.ndarray_from_qpolygonf(poly)[:] = pts
            self._groups.append((int(k) % len(self._pens), poly))
        self.prepareGeometryChange()
        if len(pos):
            lo, hi = pos.min(0), pos.max(0)
            self._rect = QRectF(lo[0], lo[1], max(hi[0] - lo[0], 1e-9), max(hi[1] - lo[1], 1e-9))
        else:
            self._rect = QRectF()
        self.update()

    def getData(self):  # noqa: N802
        return self._pos[:, 0], self._pos[:, 1]

    def boundingRect(self):  # noqa: N802
        return self._rect

    def dataBounds(self, ax, frac=1.0, orthoRange=None):  # noqa: N802, N803 - for the view box's auto-range
        if not len(self._pos):
            return None, None
        return float(self._pos[:, ax].min()), float(self._pos[:, ax].max())

    def paint(self, p, *args):
        for k, poly in self._groups:
            p.setPen(self._pens[k])
            p.drawPoints(poly)


class _Drawing(QObject):
    """Mouse events on a plot's viewport turned into data coordinates: left press/drag → ``dab``, right
    press/drag → ``erase``, moves with no button → ``hovered``; the wheel still zooms."""

    dab = Signal(float, float)
    erase = Signal(float, float)
    hovered = Signal(float, float)  # NaN, NaN: the pointer left
    stroke_ended = Signal()

    def __init__(self, view: "DataView"):
        super().__init__(view.widget)
        self.view = view

    def eventFilter(self, obj, ev):  # noqa: N802 - Qt name
        t = ev.type()
        if t in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.MouseButtonDblClick):
            p = self.view.to_data(ev.position())
            buttons = ev.buttons()
            if buttons & Qt.MouseButton.LeftButton:
                self.view.dab.emit(p.x(), p.y())
                return True
            if buttons & Qt.MouseButton.RightButton:
                self.view.erase.emit(p.x(), p.y())
                return True
            if t == QEvent.Type.MouseMove:
                self.view.hovered.emit(p.x(), p.y())
        elif t == QEvent.Type.MouseButtonRelease and ev.button() in (
            Qt.MouseButton.LeftButton,
            Qt.MouseButton.RightButton,
        ):
            self.view.stroke_ended.emit()
            return True
        elif t == QEvent.Type.Leave:
            self.view.hovered.emit(math.nan, math.nan)
        return False


class DataView:
    """One model's picture of the data space."""

    def __init__(self, title: str, name: str):
        w = self.widget = style.make_plot(title, "x₁", "x₂", name)
        self.plot = w.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.vb = self.plot.getViewBox()
        self.vb.setAspectLocked(True)
        self.vb.setMouseEnabled(x=False, y=False)  # a drag draws; the wheel zooms (below)
        self.heat = pg.ImageItem(axisOrder="row-major")
        self.heat.setLookupTable(_heat_lut())
        self.heat.setZValue(-10)
        self.points = Dots(4, POINT_COLOR)
        self.points.set_palette([POINT_COLOR] + [style.class_color(i) for i in range(20)])
        self.samples = Dots(2.5, QColor(230, 120, 10, 170))  # under the data, a little transparent
        self.lines = pg.PlotCurveItem(pen=pg.mkPen(MANIFOLD_COLOR, width=1.5), connect="finite")
        self.hover_line = pg.PlotCurveItem(pen=pg.mkPen(HOVER_COLOR, width=2))
        self.hover_marks = pg.ScatterPlotItem(size=10, pen=pg.mkPen(HOVER_COLOR, width=2), brush=None)
        for item in (self.heat, self.samples, self.points, self.lines, self.hover_line, self.hover_marks):
            self.plot.addItem(item)
        self._labels = None
        self.drawing = _Drawing(self)
        w.viewport().installEventFilter(self.drawing)
        w.viewport().setMouseTracking(True)

    # signals live on the filter object (a QObject); exposed here for the panel
    dab = property(lambda self: self.drawing.dab)
    erase = property(lambda self: self.drawing.erase)
    hovered = property(lambda self: self.drawing.hovered)
    stroke_ended = property(lambda self: self.drawing.stroke_ended)

    def to_data(self, pos) -> QPointF:
        """A viewport pixel position → data coordinates."""
        return self.vb.mapSceneToView(self.widget.mapToScene(pos.toPoint()))

    def to_pixel(self, x: float, y: float):
        """Data coordinates → the viewport pixel (QPoint) under them (what a test's mouse needs)."""
        return self.widget.mapFromScene(self.vb.mapViewToScene(QPointF(x, y)))

    def set_range(self, box) -> None:
        x0, x1, y0, y1 = box
        self.vb.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)

    def set_points(self, pts: np.ndarray, labels: np.ndarray | None = None) -> None:
        """The data; ``labels`` colour each point by its mixture component (redrawn only when they change)."""
        if labels is not None and len(labels) != len(pts):
            labels = None
        if labels is not None and self._labels is not None and len(pts) == len(self.points.getData()[0]):
            if np.array_equal(labels, self._labels):
                return
        self._labels = None if labels is None else labels.copy()
        self.points.setData(pts, None if labels is None else labels % 20 + 1)

    def set_samples(self, s: np.ndarray | None) -> None:
        self.samples.setData(s)

    def set_lines(self, lines: list[np.ndarray]) -> None:
        x, y = _polylines(lines)
        self.lines.setData(x, y)

    def set_density(self, log_p: np.ndarray | None, box=None) -> None:
        """log p(x) on a grid (row-major, y the slow axis) over ``box``, HEAT_RANGE nats of colour."""
        if log_p is None:
            self.heat.clear()
            return
        top = float(np.nanmax(log_p)) if np.isfinite(log_p).any() else 0.0
        self.heat.setImage(np.nan_to_num(log_p, nan=top - HEAT_RANGE), levels=(top - HEAT_RANGE, top))
        x0, x1, y0, y1 = box
        self.heat.setRect(x0, y0, x1 - x0, y1 - y0)

    def set_hover(self, point, decoded=None) -> None:
        """Mark a hovered point and (for the VAE) the decoded mean of its posterior, joined by a line."""
        if point is None:
            self.hover_marks.setData(pos=np.zeros((0, 2)))
            self.hover_line.setData([], [])
            return
        pts = [point] if decoded is None else [point, decoded]
        self.hover_marks.setData(pos=np.asarray(pts, float))
        xy = np.asarray(pts, float)
        self.hover_line.setData(xy[:, 0], xy[:, 1])


class LatentView:
    """The VAE's latent space: the prior's 1σ/2σ/3σ contours, every point's posterior mean, the q(z|x) ellipses
    of a few points and the hovered one's. For d = 1 the axis is z and the curves are densities."""

    def __init__(self):
        w = self.widget = style.make_plot("VAE latent space: q(z|x) over p(z)", "z₁", "z₂", "lab2dLatent")
        self.plot = w.getPlotItem()
        self.vb = self.plot.getViewBox()
        self.prior = pg.PlotCurveItem(pen=pg.mkPen("#9aa0a6", width=1, style=Qt.PenStyle.DashLine), connect="finite")
        self.means = Dots(3, POINT_COLOR)
        self.ellipses = pg.PlotCurveItem(pen=pg.mkPen(MANIFOLD_COLOR, width=1.2), connect="finite")
        self.hover = pg.PlotCurveItem(pen=pg.mkPen(HOVER_COLOR, width=2.5), connect="finite")
        for item in (self.prior, self.means, self.ellipses, self.hover):
            self.plot.addItem(item)
        self.dim = 0

    def set_dim(self, d: int) -> None:
        if d == self.dim:
            return
        self.dim = d
        t = np.linspace(0, 2 * math.pi, 97)
        if d == 2:
            self.plot.setLabel("left", "z₂")
            self.vb.setAspectLocked(True)
            circles = [np.stack([r * np.cos(t), r * np.sin(t)], 1) for r in (1, 2, 3)]
            self.prior.setData(*_polylines(circles))
            self.vb.setRange(xRange=(-3.5, 3.5), yRange=(-3.5, 3.5), padding=0)
        else:
            self.plot.setLabel("left", "density")
            self.vb.setAspectLocked(False)
            z = np.linspace(-4, 4, 200)
            self.prior.setData(z, np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
            self.vb.setRange(xRange=(-4, 4), yRange=(-0.05, 1.6), padding=0)

    def set_posteriors(self, mean: np.ndarray, log_var: np.ndarray, few: np.ndarray) -> None:
        """Every point's posterior mean; ellipses (2σ) or densities (d = 1) of the points indexed by ``few``."""
        self.set_dim(mean.shape[1])
        if self.dim == 2:
            self.means.setData(mean)
        else:
            self.means.setData(np.stack([mean[:, 0], np.zeros(len(mean))], 1))
        self.ellipses.setData(*_polylines([self._shape(mean[i], log_var[i]) for i in few]))

    def set_hover(self, mean=None, log_var=None) -> None:
        if mean is None:
            self.hover.setData([], [])
        else:
            self.hover.setData(*_polylines([self._shape(mean, log_var)]))

    def _shape(self, mean: np.ndarray, log_var: np.ndarray) -> np.ndarray:
        sd = np.exp(0.5 * np.asarray(log_var, float))
        if self.dim == 2:  # the 2σ ellipse of a diagonal Gaussian
            t = np.linspace(0, 2 * math.pi, 49)
            return np.stack([mean[0] + 2 * sd[0] * np.cos(t), mean[1] + 2 * sd[1] * np.sin(t)], 1)
        z = mean[0] + sd[0] * np.linspace(-3, 3, 61)
        dens = np.exp(-0.5 * ((z - mean[0]) / sd[0]) ** 2) / (sd[0] * math.sqrt(2 * math.pi))
        return np.stack([z, np.minimum(dens, 1.5)], 1)

    def clear(self) -> None:
        self.means.setData(None)
        self.ellipses.setData([], [])
        self.hover.setData([], [])


class CurvesView:
    """ELBO, KL and the IWAE bound of the VAE and the mixture's exact log-likelihood, per tick, nats per point."""

    SERIES = (("elbo", "VAE ELBO", style.ELBO), ("iwae", "VAE IWAE-K", style.IWAE), ("kl", "VAE KL", style.KL))

    def __init__(self):
        w = self.widget = style.make_plot(
            "Both models, nats per point", "tick (one EM step)", "nats per point", "lab2dCurves"
        )
        self.plot = w.getPlotItem()
        self.plot.addLegend(
            offset=(-4, -4), labelTextSize="8pt", brush=pg.mkBrush(255, 255, 255, 210)
        )  # bottom right: the curves climb to the top
        self.items = {}
        for key, name, color in self.SERIES + (("gmm", "mixture log p(x), exact", style.CLASS_COLORS[3]),):
            item = pg.PlotDataItem(pen=pg.mkPen(color, width=2), name=name)
            item.setClipToView(True)
            item.setDownsampling(auto=True, method="peak")
            self.plot.addItem(item)
            self.items[key] = item
        self.clear()

    def clear(self) -> None:
        self.ticks: list[int] = []
        self.values = {k: [] for k in self.items}
        for item in self.items.values():
            item.setData([], [])

    def append(self, tick: int, values: dict[str, float]) -> None:
        if self.ticks and tick <= self.ticks[-1]:
            return  # a repeated frame (new points while paused): one value per tick
        self.ticks.append(tick)
        for k in self.items:
            self.values[k].append(values[k])

    def refresh(self) -> None:
        x = np.asarray(self.ticks, float)
        for k, item in self.items.items():
            item.setData(x, np.asarray(self.values[k], float))
        if len(x) > 1:  # the y range follows the later ticks, not the first ticks' plunge of the VAE's bounds
            late = np.concatenate([np.asarray(v[len(v) // 5 :], float) for v in self.values.values()])
            late = late[np.isfinite(late)]
            if len(late):
                lo, hi = float(late.min()), float(late.max())
                pad = 0.08 * max(hi - lo, 0.5)
                self.plot.getViewBox().setRange(xRange=(x[0], x[-1]), yRange=(lo - pad, hi + pad), padding=0)
