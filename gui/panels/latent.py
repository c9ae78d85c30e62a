"""Latent space: posterior means μ(x) of a fixed test subset, one PointCloud item per class (gui/point_cloud.py).

For d > 2 the points are shown in the plane of their first two principal components (engine.projection), and a
click maps back through that plane from the mean. A left click or drag emits ``latent_clicked(x, y)`` in plot
coordinates; the marker shows the state's picked latent point (``StudioState.picked``) wherever the plane puts it.
The wheel zooms, middle- or Shift-drag pans, right-drag zooms per axis.

Snapshots arrive about twice a second; ``refresh()`` redraws at most every ``MIN_INTERVAL_S`` and only while the
panel is on show, plots at most ``MAX_POINTS`` points, and of those only what can be seen: points outside the view
are left out, and of a class's points that fall on the same screen pixel one is drawn (``visible_points``). The
items are made once per dataset and only their data changes; the axes and grid repaint only when the view moves.
One redraw of a 10,000-point snapshot costs the GUI thread ~2 ms to place and ~2 ms to paint here
(benchmarks/scatter_redraw.py)."""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics
from PySide6.QtWidgets import QGraphicsItem, QGroupBox, QLabel, QVBoxLayout

from engine.messages import LatentSnapshot
from engine.projection import PCAPlane, latent_to_plane, plane_to_latent, sigma_ellipse
from gui import style
from gui.point_cloud import PointCloud
from gui.scatter_subset import class_capped, visible_points
from gui.state import StudioState
from gui.view_range import needs_refit, padded

MAX_POINTS = 5000  # of a snapshot's points, the most placed on the plot (every class keeps its share)
EMPTY_TITLE = "μ(x) of the test images"  # fits the 240 px of a 1024×700 window, as the title with points does
FADED = 0.12  # opacity of the other classes' points while a conditional model's class is chosen
MIN_INTERVAL_S = 0.45  # at most ~2 scatter redraws a second, one per snapshot


def _html(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class LatentViewBox(pg.ViewBox):
    """Left click / left drag = pick a latent point; everything else as pyqtgraph's ViewBox."""

    picked = Signal(float, float)
    shift_picked = Signal(float, float)  # Shift+click: an end of an interpolation path

    def mouseClickEvent(self, ev):  # noqa: N802 - pyqtgraph name
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            (self.shift_picked if shift else self.picked).emit(float(p.x()), float(p.y()))
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton and not (ev.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            self.picked.emit(float(p.x()), float(p.y()))
        elif ev.button() == Qt.MouseButton.LeftButton:  # Shift+drag pans
            ev.accept()
            self._pan(ev)
        else:
            super().mouseDragEvent(ev, axis)

    def _pan(self, ev) -> None:
        tr = self.childGroup.transform()
        tr = pg.functions.invertQTransform(tr)
        dif = ev.pos() - ev.lastPos()
        dif = tr.map(dif) - tr.map(pg.Point(0, 0))
        self._resetTarget()
        self.translateBy(x=-dif.x(), y=-dif.y())
        self.sigRangeChangedManually.emit(self.state["mouseEnabled"])


class LatentPanel(QGroupBox):
    latent_clicked = Signal(float, float)  # plot coordinates (z₁, z₂) or (PC1, PC2)
    path_end_clicked = Signal(object)  # Shift+click: the latent point (d,) of an interpolation's end
    view_changed = Signal()  # the visible window moved (zoom, pan, auto-range)

    def __init__(self, state: StudioState, parent=None):
        super().__init__("Latent space", parent)
        self.setObjectName("latentPanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 12, 6, 6)
        lay.setSpacing(3)
        self.vb = LatentViewBox()
        style.configure_pyqtgraph()
        self.plot_widget = pg.PlotWidget(viewBox=self.vb)
        self.plot_widget.setObjectName("latentPlot")
        self.plot_widget.setAccessibleName("Latent space scatter: click to decode a point")
        self.plot_widget.setMinimumSize(240, 170)
        self.plot = self.plot_widget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        for ax in ("bottom", "left"):
            self.plot.getAxis(ax).setTickFont(style.axis_font())
            # Axes, ticks and grid are painted from a cached pixmap unless the view moved: otherwise they took
            # two thirds of each scatter redraw's paint.
            self.plot.getAxis(ax).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        style.plain_axes(self.plot)
        self.plot.setTitle(EMPTY_TITLE, size="10pt", color=style.PLOT_FG)
        self._titles: tuple[str, ...] = ()  # the scatter's title, longest form first (_fit_title)
        title, fit_text = self.plot.titleLabel, self.plot.titleLabel.updateMin

        def title_min():  # pyqtgraph sets a title's minimum width to its text's: a long one widened the plot past
            fit_text()  # its panel and cut off the right of the scatter. Now a long title is clipped instead.
            title.setMinimumWidth(0)

        title.updateMin = title_min
        title_min()
        self._axis_labels: tuple[str, str] | None = None
        self._set_axis_labels("z₁", "z₂")
        self.legend = QLabel("")  # one coloured swatch per class, under the plot: it never hides points
        self.legend.setObjectName("latentLegend")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.marker_halo = PointCloud(symbol="+", size=20, pen=pg.mkPen("w", width=6))
        self.marker = PointCloud(symbol="+", size=18, pen=pg.mkPen(style.MARKER, width=2.5))
        for m in (self.marker_halo, self.marker):
            m.setZValue(10)
            self.plot.addItem(m, ignoreBounds=True)
        # what other views put on the plane, kept in latent coordinates and projected at each redraw
        self.path_item = pg.PlotDataItem(pen=pg.mkPen(style.MARKER, width=2, style=Qt.PenStyle.DashLine))
        self.path_ends = PointCloud(symbol="o", size=10, pen=pg.mkPen("w", width=1.5), brush=style.MARKER)
        self.ellipse_item = pg.PlotDataItem(pen=pg.mkPen(style.MARKER, width=2))
        for item in (self.path_item, self.path_ends, self.ellipse_item):
            item.setZValue(9)
            self.plot.addItem(item, ignoreBounds=True)
        self.path_z: np.ndarray | None = None  # (n, d) the interpolation path shown
        self.ellipse_q: tuple[np.ndarray, np.ndarray] | None = None  # (μ, log σ²) of an encoded image's q(z|x)
        self._overlays = (False, False)  # whether the path and the ellipse items hold anything
        self.hint = QLabel("Click/drag: decode · Shift+click: path ends · wheel: zoom · Shift-drag: pan · “A”: fit")
        self.hint.setToolTip(
            "Click or drag to decode a point; a click on a test example also selects it for the "
            "“Posterior & gap” page. Wheel: zoom. Middle- or Shift-drag: pan. “A” (bottom-left): "
            "fit the view to the points again."
        )
        self.hint.setProperty("role", "hint")
        self.hint.setObjectName("latentHint")
        self.hint.setWordWrap(True)
        lay.addWidget(self.plot_widget, 1)
        lay.addWidget(self.legend)
        lay.addWidget(self.hint)

        self.items: list[PointCloud] = []
        self.class_names: tuple[str, ...] = ()
        self.plane: PCAPlane | None = None
        self.latent_dim: int | None = None
        self.snapshot: LatentSnapshot | None = None  # newest received
        self.shown: LatentSnapshot | None = None  # newest drawn
        self.points: np.ndarray = np.zeros((0, 2))  # plane coordinates of the points placed on the plot
        self.examples: np.ndarray = np.zeros(0, np.int64)  # their positions in the test split
        self.marker_pos: tuple[float, float] | None = None
        self._last_draw = 0.0
        self.vb.picked.connect(self._on_picked)
        self.vb.shift_picked.connect(lambda x, y: self.path_end_clicked.emit(self.to_latent(x, y)))
        self.vb.sigRangeChanged.connect(self._on_range_changed)
        # The view follows the points with hysteresis instead of pyqtgraph's auto-range, which re-fits on every
        # redraw: a moving range relabels both axes, relays them out and invalidates the manifold grid each time.
        # Any other change of range (wheel, pan, a zoom onto a posterior) stops following; "A" resumes it.
        self.follow = True
        self._fitting = False
        self.vb.disableAutoRange()
        self.vb.sigStateChanged.connect(self._on_vb_state)
        self.state = state  # the dataset's classes, the model's dimension, the scatter, the picked point
        state.dataset_changed.connect(self._on_dataset_changed)
        state.model_changed.connect(self._on_model_changed)
        state.latent_changed.connect(self._on_latent_changed)
        state.label_changed.connect(lambda _c: self.highlight_class())
        state.picked_changed.connect(lambda _z: self._place_marker())

    def _on_dataset_changed(self, ds) -> None:
        self.set_classes(ds.class_names or tuple(str(i) for i in range(ds.n_classes)), ds.y_test is not None)

    def _on_model_changed(self) -> None:
        self.clear()
        if self.state.latent_dim is not None:
            self.set_latent_dim(self.state.latent_dim)
        self.highlight_class()

    def highlight_class(self) -> None:
        """A conditional model: the chosen class's points in front and in full colour, the others faint (their
        codes were inferred with their own labels, so they show where q(z|x, y) puts that class). Otherwise every
        class alike."""
        label = self.state.generation_label()
        for i, it in enumerate(self.items):
            chosen = label is None or len(self.items) == 1 or i == label
            it.setOpacity(1.0 if chosen else FADED)
            it.setZValue(1 if chosen and label is not None else 0)

    def _on_latent_changed(self, lat) -> None:
        if lat is None:
            self.clear()
        else:
            self.set_snapshot(lat)

    def _set_axis_labels(self, x: str, y: str) -> None:
        # Only when the text changes: pyqtgraph's setLabel re-lays out and repaints the axis even for the same text,
        # and for d > 2 this runs with every scatter redraw.
        if self._axis_labels == (x, y):
            return
        self._axis_labels = (x, y)
        self.plot.setLabel("bottom", x, **{"font-size": "9pt"})
        self.plot.setLabel("left", y, **{"font-size": "9pt"})

    # -- data in -----------------------------------------------------------------------------------------
    def set_classes(self, class_names: tuple[str, ...] | None, labelled: bool) -> None:
        """(Re)build one scatter item per class (a new dataset)."""
        for it in self.items:
            self.plot.removeItem(it)
        names = tuple(class_names) if class_names else ()
        if not labelled:
            names = ("test images",)
        self.class_names = names
        self.items = []
        for i, name in enumerate(names):
            c = style.class_color(i)
            fill = QColor(c)
            fill.setAlpha(190)
            it = PointCloud(size=5, brush=fill)  # no mouse handlers: a click on a point decodes like anywhere else
            self.plot.addItem(it)
            self.items.append(it)
        self.highlight_class()
        self.legend.setText(
            "&nbsp;&nbsp; ".join(
                f"<span style='color:{style.class_color(i).name()}; font-size:11pt'>●</span>&nbsp;{_html(n)}"
                for i, n in enumerate(names)
            )
        )
        self.clear()

    def _on_range_changed(self, *_):
        if not self._fitting:
            self.follow = False
        self.view_changed.emit()

    def _on_vb_state(self, *_):
        if any(self.vb.autoRangeEnabled()):  # the "A" button or "View all": follow the points again
            self.vb.disableAutoRange()
            self.follow = True
            if len(self.points):
                self._fit(self.points, force=True)

    def _fit(self, xy: np.ndarray, force: bool = False) -> None:
        """Keep the points in view, moving the range only when they leave it or fill less than half of it."""
        if not len(xy):
            return
        lo, hi = xy.min(0), xy.max(0)
        if self.latent_dim == 1:  # the vertical axis is unused: a fixed band around 0
            lo[1], hi[1] = -1.0, 1.0
        views = self.vb.viewRange()
        if not force and not any(needs_refit(views[i], lo[i], hi[i], 2.0, min_span=1e-6) for i in (0, 1)):
            return
        self._fitting = True
        try:
            self.vb.setRange(xRange=padded(lo[0], hi[0], 1e-6), yRange=padded(lo[1], hi[1], 1e-6), padding=0)
        finally:
            self._fitting = False

    def fit_view(self) -> None:
        """Fit the view snugly to the points now (training paused or ended), unless the user has zoomed or panned."""
        if self.follow and len(self.points):
            self._fit(self.points, force=True)

    def clear(self) -> None:
        """No points (another dataset or model): the title and the marker go with them."""
        self._titles = ()
        self.plot.setTitle(EMPTY_TITLE, size="10pt", color=style.PLOT_FG)
        self.snapshot = self.shown = None
        self.follow = True
        self.plane = None
        self.points = np.zeros((0, 2))
        self.examples = np.zeros(0, np.int64)
        for it in self.items:
            it.setData(x=np.zeros(0), y=np.zeros(0))
        self.set_marker(None)

    def set_snapshot(self, snap: LatentSnapshot) -> None:
        self.snapshot = snap

    def refresh(self, force: bool = False) -> bool:
        """Draw the newest snapshot if it is new and the last draw is old enough. True when it drew. A hidden panel
        (another page on show) draws nothing until it is shown again, unless forced."""
        snap = self.snapshot
        if snap is None or snap is self.shown or not (force or self.isVisible()):
            return False
        now = time.monotonic()
        if not force and now - self._last_draw < MIN_INTERVAL_S:
            return False
        self._last_draw = now
        self._draw(snap)
        return True

    def _draw(self, snap: LatentSnapshot) -> None:
        keep = class_capped(snap.labels, len(snap.means), MAX_POINTS)
        means = snap.means[keep]
        labels = None if snap.labels is None else snap.labels[keep]
        self.examples = snap.indices[keep]
        d = means.shape[1]
        self.plane = PCAPlane.fit(means, like=self.plane)  # signs follow the previous snapshot's plane
        xy = self.plane.to_plane(means)  # (n, 2)
        self.points = xy
        if d != self.latent_dim:
            self.latent_dim = d
            if d == 1:
                self._set_axis_labels("z₁ − mean of μ", "(1-D latent: vertical axis unused)")
            elif d == 2:
                self._set_axis_labels("z₁", "z₂")
        if d > 2:  # the variance shares change with every snapshot: they go in the title, the axes stay still
            self._set_axis_labels("PC1 of μ", "PC2 of μ")
        if labels is None or len(self.items) == 1:
            groups = [np.arange(len(xy))]
        else:
            groups = [np.flatnonzero(labels == k) for k in range(len(self.items))]
        if self.follow:  # the view first: what is visible depends on it
            self._fit(xy, force=self.shown is None)
        (x0, x1), (y0, y1) = self.vb.viewRange()
        px = self.vb.viewPixelSize()
        for it, g in zip(self.items, groups):
            shown = g[visible_points(xy[g], (x0, x1, y0, y1), px)]
            it.setData(x=xy[shown, 0], y=xy[shown, 1])
        step = f"step {snap.step:,}"
        if d > 2:
            e = self.plane.explained
            pca = f"PCA of d={d}: {e[0] * 100:.0f}% + {e[1] * 100:.0f}% of var."
            self._titles = (
                f"μ(x), {len(xy):,} test images · {step} · {pca}",
                f"μ(x) · {step} · PCA: {e[0] * 100:.0f}% + {e[1] * 100:.0f}% of var.",
                f"{step} · PCA",
            )
        else:
            self._titles = (f"μ(x), {len(xy):,} test images · {step}", f"μ(x) · {step}", step)
        self._fit_title()
        self.shown = snap
        self._place_marker()  # the plane moved with the new points: the picked point with it

    def _fit_title(self) -> None:
        """The longest form of the scatter's title that fits the plot whole (a 1024-px window has ~250 px)."""
        if not self._titles:
            return
        font = QFont()
        font.setPointSizeF(9)
        metrics = QFontMetrics(font)
        room = self.plot_widget.width() - 2 * self.plot.getAxis("left").width() - 8
        title = next((t for t in self._titles if metrics.horizontalAdvance(t) <= room), self._titles[-1])
        self.plot.setTitle(title, size="9pt", color=style.PLOT_FG)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt name
        super().resizeEvent(event)
        self._fit_title()

    # -- picking ---------------------------------------------------------------------------------------------
    def to_latent(self, x: float, y: float) -> np.ndarray:
        """A plot point as a latent vector (d,): itself for d = 2, mean + in-plane offset for d > 2."""
        return self.points_to_latent(np.array([[x, y]]))[0]

    def points_to_latent(self, xy: np.ndarray) -> np.ndarray:
        """Plot points (n, 2) as latent vectors (n, d) (the manifold grid of the visible window)."""
        return plane_to_latent(self.plane, xy, self.latent_dim or 2)

    def to_plane(self, z: np.ndarray) -> tuple[float, float]:
        """Where the latent vector z (d,) lies in the plot."""
        x, y = latent_to_plane(self.plane, z)[0]
        return float(x), float(y)

    def show_path(self, z: np.ndarray | None) -> None:
        """Draw an interpolation path (n, d) on the plane (None: remove it). The same path again draws nothing."""
        z = None if z is None else np.asarray(z, np.float32)
        if _same(z, self.path_z):
            return
        self.path_z = z
        self._place_overlays()

    def show_ellipse(self, q: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Draw q(z|x) = N(μ, diag σ²) of an encoded image as its 1σ ellipse on the plane (None: remove it)."""
        if q is None and self.ellipse_q is None:
            return
        self.ellipse_q = q
        self._place_overlays()

    def _place_overlays(self) -> None:
        """Project the path and the ellipse onto the current plane; an overlay that is and stays empty is left
        alone (clearing an item repaints the whole plot)."""
        if self.path_z is not None and len(self.path_z):
            xy = latent_to_plane(self.plane, self.path_z)
            self.path_item.setData(x=xy[:, 0], y=xy[:, 1])
            self.path_ends.setData(x=xy[[0, -1], 0], y=xy[[0, -1], 1])
        elif self._overlays[0]:
            self.path_item.setData(x=[], y=[])
            self.path_ends.setData(x=[], y=[])
        if self.ellipse_q is not None:
            xy = sigma_ellipse(self.plane, *self.ellipse_q)
            self.ellipse_item.setData(x=xy[:, 0], y=xy[:, 1])
        elif self._overlays[1]:
            self.ellipse_item.setData(x=[], y=[])
        self._overlays = (self.path_z is not None and len(self.path_z) > 0, self.ellipse_q is not None)

    def _place_marker(self) -> None:
        self._place_overlays()
        z = self.state.picked
        if z is None:
            self.set_marker(None)
        elif self.marker_pos is None or not np.array_equal(self.to_latent(*self.marker_pos), z):
            self.set_marker(self.to_plane(z))  # else it is already there, exactly where it was clicked

    def set_latent_dim(self, d: int) -> None:
        """Before any snapshot (a loaded checkpoint, a new run): the plot axes for d."""
        if d != self.latent_dim:
            self.latent_dim = d
            self.plane = None
            if d > 2:
                self._set_axis_labels("PC1 of μ", "PC2 of μ")
            elif d == 2:
                self._set_axis_labels("z₁", "z₂")
            else:
                self._set_axis_labels("z₁ − mean of μ", "(1-D latent: vertical axis unused)")

    def set_marker(self, pos: tuple[float, float] | None) -> None:
        self.marker_pos = pos
        if pos is None:
            self.marker.setData(x=[], y=[])
            self.marker_halo.setData(x=[], y=[])
        else:
            self.marker.setData(x=[pos[0]], y=[pos[1]])
            self.marker_halo.setData(x=[pos[0]], y=[pos[1]])

    def _on_picked(self, x: float, y: float) -> None:
        if (self.latent_dim or 2) == 1:
            y = 0.0
        self.set_marker((x, y))
        self.latent_clicked.emit(x, y)

    def example_at(self, x: float, y: float, radius_px: float = 6.0) -> int | None:
        """The test-set index of the point placed within ``radius_px`` screen pixels of (x, y), if any."""
        if self.shown is None or not len(self.points):
            return None
        pw, ph = self.vb.viewPixelSize()  # plot units per pixel
        d2 = ((self.points[:, 0] - x) / max(pw, 1e-12)) ** 2 + ((self.points[:, 1] - y) / max(ph, 1e-12)) ** 2
        k = int(np.argmin(d2))
        return int(self.examples[k]) if d2[k] <= radius_px**2 else None

    def view_rect(self) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1) of the visible window, in plot coordinates."""
        (x0, x1), (y0, y1) = self.vb.viewRange()
        return float(x0), float(x1), float(y0), float(y1)

    def scene_pos_of(self, x: float, y: float):
        """Scene position of a plot point (for tests and the benchmark's simulated clicks)."""
        return self.vb.mapViewToScene(pg.Point(x, y))


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
