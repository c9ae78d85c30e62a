"""A plot item for many points that all look alike: one symbol, size, pen and brush.

pyqtgraph's ScatterPlotItem lets every point have its own look, and pays for it on each ``setData``: it builds a
record per point and looks each one up in its symbol atlas in Python (about 3 µs a point, 15 ms for the 5,000
points of the latent scatter on this machine). A ``PointCloud`` keeps the coordinates as two float arrays, renders
its one symbol once into a small pixmap (again only when the screen's pixel ratio changes), and paints every point
in the view with a single ``QPainter.drawPixmapFragments`` call, as ScatterPlotItem does in pixel mode. ``setData``
copies two arrays and nothing else.

The item takes part in a ViewBox's auto-range (``dataBounds``, ``pixelPadding``) and, having no mouse handlers,
leaves clicks and drags to the items beneath it. Opacity and z-order are the plain QGraphicsItem ones."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.ScatterPlotItem import drawSymbol
from pyqtgraph.Qt import internals
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPainter, QPixmap

COORD_LIMIT = 2.0**30  # device coordinates beyond this crash Qt's raster engine (pyqtgraph clips the same way)


class PointCloud(pg.GraphicsObject):
    """``setData(x=..., y=...)`` / ``getData()`` like pyqtgraph's items; ``size`` in screen pixels."""

    def __init__(self, size: float = 5, brush=None, pen=None, symbol: str = "o"):
        super().__init__()
        self.size = float(size)
        self.symbol = symbol
        self.brush = pg.mkBrush(brush)  # None: no fill
        self.pen = pg.mkPen(pen) if pen is not None else pg.mkPen(None)
        self.x = np.zeros(0)
        self.y = np.zeros(0)
        self._range: tuple[float, float, float, float] | None = None  # finite data bounds (x0, x1, y0, y1)
        self._bounds: QRectF | None = None  # boundingRect, until the data or the view's transform change
        self._sprite: QPixmap | None = None
        self._sprite_dpr = 0.0
        self._fragments = internals.PrimitiveArray(QPainter.PixmapFragment, 10)

    # -- data ------------------------------------------------------------------------------------------------
    def setData(self, x, y) -> None:  # noqa: N802 - pyqtgraph name
        x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}")
        self.prepareGeometryChange()
        self._bounds = None
        self.x, self.y = x, y
        ok = np.isfinite(x) & np.isfinite(y)
        self._range = (x[ok].min(), x[ok].max(), y[ok].min(), y[ok].max()) if ok.any() else None
        self.informViewBoundsChanged()
        self.update()

    def getData(self) -> tuple[np.ndarray, np.ndarray]:  # noqa: N802
        return self.x, self.y

    def __len__(self) -> int:
        return len(self.x)

    # -- geometry (what ViewBox and the scene ask) -----------------------------------------------------------
    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange=None):  # noqa: N802
        d, other = (self.x, self.y) if ax == 0 else (self.y, self.x)
        if orthoRange is not None:
            d = d[(other >= orthoRange[0]) & (other <= orthoRange[1])]
        d = d[np.isfinite(d)]
        if not len(d):
            return (None, None)
        if frac >= 1.0:
            return (float(d.min()), float(d.max()))
        return tuple(float(v) for v in np.percentile(d, [50 * (1 - frac), 50 * (1 + frac)]))

    def pixelPadding(self) -> float:  # noqa: N802
        return self.size / 2 + max(self.pen.widthF(), 1.0)

    def _padding(self) -> tuple[float, float]:
        """Half a symbol, in data units along x and y (zero before the item is in a view)."""
        px, py = self.pixelVectors()  # one screen pixel in data units
        pad = self.pixelPadding()
        return (0.0 if px is None else px.length() * pad, 0.0 if py is None else py.length() * pad)

    def boundingRect(self) -> QRectF:  # noqa: N802 - the scene asks many times per paint: computed once
        if self._bounds is None:
            if self._range is None:
                self._bounds = QRectF()
            else:
                x0, x1, y0, y1 = self._range
                dx, dy = self._padding()
                self._bounds = QRectF(x0 - dx, y0 - dy, x1 - x0 + 2 * dx, y1 - y0 + 2 * dy)
        return QRectF(self._bounds)

    def viewTransformChanged(self) -> None:  # noqa: N802 - a zoom changes the pixel padding of the bounds
        self.prepareGeometryChange()
        self._bounds = None
        super().viewTransformChanged()

    # -- painting ------------------------------------------------------------------------------------------
    def _sprite_for(self, dpr: float) -> QPixmap:
        """The symbol, rendered once per pixel ratio, centred in a square pixmap."""
        if self._sprite is None or self._sprite_dpr != dpr:
            side = int(math.ceil(dpr * (self.size + max(math.ceil(self.pen.widthF()), 1))))
            img = QImage(side, side, QImage.Format.Format_ARGB32_Premultiplied)
            img.fill(Qt.GlobalColor.transparent)
            p = QPainter(img)
            try:
                p.setRenderHint(QPainter.RenderHint.Antialiasing)
                p.translate(side * 0.5, side * 0.5)
                p.scale(dpr, dpr)
                drawSymbol(p, self.symbol, self.size, self.pen, self.brush)
            finally:
                p.end()
            self._sprite, self._sprite_dpr = QPixmap.fromImage(img), dpr
        return self._sprite

    def paint(self, p: QPainter, option, widget=None) -> None:
        if not len(self.x):
            return
        x, y = self.x, self.y
        view = self.viewRect()  # the visible window in data units: what lies outside is not sent to Qt
        if view is not None:
            dx, dy = self._padding()
            keep = (
                (x >= view.left() - dx) & (x <= view.right() + dx) & (y >= view.top() - dy) & (y <= view.bottom() + dy)
            )
            x, y = x[keep], y[keep]
            if not len(x):
                return
        dpr = widget.devicePixelRatioF() if widget is not None else p.device().devicePixelRatioF()
        sprite = self._sprite_for(dpr)
        t = p.transform()
        dev_x = np.clip(t.m11() * x + t.m21() * y + t.dx(), -COORD_LIMIT, COORD_LIMIT)
        dev_y = np.clip(t.m12() * x + t.m22() * y + t.dy(), -COORD_LIMIT, COORD_LIMIT)
        p.resetTransform()
        self._fragments.resize(len(x))
        frags = self._fragments.ndarray()
        frags[:, 0] = dev_x  # the centre of each point on the device
        frags[:, 1] = dev_y
        frags[:, 2:6] = (0.0, 0.0, sprite.width(), sprite.height())  # the whole sprite
        frags[:, 6:10] = (1.0 / dpr, 1.0 / dpr, 0.0, 1.0)  # scale, rotation, opacity
        p.drawPixmapFragments(*self._fragments.drawargs(), sprite)
