"""One look for the whole window: palette, plot colours, pyqtgraph defaults."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

if TYPE_CHECKING:
    import pyqtgraph as pg

# Tableau 10: distinguishable, colour-blind-tolerable class colours (matplotlib's default cycle).
CLASS_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
ELBO = "#1f77b4"
TEST = "#d62728"
IWAE = "#2ca02c"
RECON = "#6a3d9a"
KL = "#e6780a"
MI = "#17becf"  # I_q(x; z), drawn beside the KL
COLLAPSED = "#b8b8b8"
MARKER = "#111111"
PLOT_BG = "#ffffff"
PLOT_FG = "#3a3a3a"
WARN = "#b35900"

_configured = False


def class_color(i: int) -> QColor:
    if i < len(CLASS_COLORS):
        return QColor(CLASS_COLORS[i])
    return QColor.fromHsvF((i * 0.618034) % 1.0, 0.65, 0.85)


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg  # here, not at the top: the start-up window (gui/startup.py) is drawn before it loads

    global _configured
    if _configured:
        return
    pg.setConfigOptions(background=PLOT_BG, foreground=PLOT_FG, antialias=False, imageAxisOrder="row-major")
    _configured = True


def apply_app_style(app: QApplication) -> None:
    """Fusion with a calm light palette and a readable default font size."""
    configure_pyqtgraph()
    app.setStyle("Fusion")
    pal = QPalette()
    pal.setColor(QPalette.ColorRole.Window, QColor("#f3f4f6"))
    pal.setColor(QPalette.ColorRole.WindowText, QColor("#1f2328"))
    pal.setColor(QPalette.ColorRole.Base, QColor("#ffffff"))
    pal.setColor(QPalette.ColorRole.AlternateBase, QColor("#f6f8fa"))
    pal.setColor(QPalette.ColorRole.Text, QColor("#1f2328"))
    pal.setColor(QPalette.ColorRole.Button, QColor("#fbfbfc"))
    pal.setColor(QPalette.ColorRole.ButtonText, QColor("#1f2328"))
    pal.setColor(QPalette.ColorRole.Highlight, QColor("#2f6fde"))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    pal.setColor(QPalette.ColorRole.ToolTipBase, QColor("#fffff0"))
    pal.setColor(QPalette.ColorRole.ToolTipText, QColor("#1f2328"))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#9aa0a6"))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#9aa0a6"))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#9aa0a6"))
    app.setPalette(pal)
    f = app.font()
    if f.pointSizeF() < 10:
        f.setPointSizeF(10)
        app.setFont(f)
    app.setStyleSheet(STYLE_SHEET)


STYLE_SHEET = """
QGroupBox { font-weight: 600; border: 1px solid #d5d8dc; border-radius: 6px; margin-top: 10px;
            background: #ffffff; padding: 6px 6px 4px 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; color: #2b3137; }
QToolBar { spacing: 6px; padding: 3px; border-bottom: 1px solid #d5d8dc; }
QToolButton { padding: 4px 10px; border-radius: 4px; }
QToolButton:hover { background: #e6ebf1; }
QToolButton#startButton { font-weight: 600; color: #1a7f37; }
QToolButton#stopButton { color: #b42318; }
QToolButton#startButton:disabled, QToolButton#stopButton:disabled { color: #9aa0a6; font-weight: normal; }
QStatusBar QLabel { padding: 0 8px; color: #3a3f45; }
QLabel[role="hint"] { color: #6a737d; }
QLabel[role="warning"] { color: #b35900; font-weight: 600; }
QLabel[role="caption"] { color: #3a3f45; }
QTabWidget::pane { border: 1px solid #d5d8dc; border-radius: 4px; top: -1px; background: #ffffff; }
QTabBar::tab { padding: 5px 14px; }
"""


def axis_font() -> QFont:
    f = QFont()
    f.setPointSizeF(9)
    return f


def plain_axes(plot_item) -> None:
    """Tick numbers as they are: no SI-prefix rescaling that turns an axis label into "z₁ (x0.001)"."""
    for ax in ("bottom", "left"):
        plot_item.getAxis(ax).enableAutoSIPrefix(False)


def _next_nice(step: float) -> float:
    """The next tick step of the 1, 2, 5, 10, … series after ``step``."""
    e = math.floor(math.log10(step))
    a = step / 10**e
    return (2.0 if a < 1.5 else 5.0 if a < 3.5 else 10.0) * 10**e


def ticks_apart(axis) -> None:
    """pyqtgraph always labels the coarsest tick level, however short the axis: on a plot 80 px tall a range of
    0–0.1 gets six numbers stacked into each other, and on an empty plot 110 px wide 0.2, 0.4, 0.6, 0.8 run into
    each other. Widen that level's step (1, 2, 5, 10, …) until the labels fit between two ticks (a number's height
    on a vertical axis, the widest number and a gap on a horizontal one), and drop the finer levels then."""
    import numpy as np
    from PySide6.QtGui import QFontMetricsF

    default = axis.tickSpacing
    vertical = axis.orientation in ("left", "right")

    def need(major: float, lo: float, hi: float) -> float:  # pixels between two ticks for their labels
        fm = QFontMetricsF(axis.style["tickFont"] or axis_font())
        if vertical:
            return fm.height() + 2
        values = np.arange(math.ceil(lo / major) * major, hi + 1e-9 * major, major)
        return max((fm.horizontalAdvance(t) for t in axis.tickStrings(values, axis.scale, major)), default=0.0) + 8

    def spacing(min_val, max_val, size):
        levels = default(min_val, max_val, size)
        lo, hi = sorted((min_val, max_val))
        if not levels or size <= 0 or hi == lo:
            return levels
        per_unit = size / (hi - lo)
        major = levels[0][0]
        if major * per_unit >= need(major, lo, hi):
            return levels
        while major * per_unit < need(major, lo, hi):
            major = _next_nice(major)
        return [(major, 0.0)]

    axis.tickSpacing = spacing


def make_plot(title: str, x_label: str, y_label: str, name: str, grid: bool = False) -> pg.PlotWidget:
    import pyqtgraph as pg

    """A PlotWidget with a title and labelled axes (units); menus kept, mouse zoom on.

    No grid by default: pyqtgraph draws grid lines with the axes, so a gridded plot repaints both axes whenever a
    curve changes (measured: about half the paint time of a curve plot here)."""
    configure_pyqtgraph()
    w = pg.PlotWidget()
    w.setObjectName(name)
    w.setAccessibleName(title)
    p = w.getPlotItem()
    p.setTitle(title, size="10pt", color=PLOT_FG)
    # the title spans the axis columns too: over the data area alone, wide tick numbers (−12,000) on a 140-px plot
    # would leave a title narrower room than its text
    p.layout.removeItem(p.titleLabel)
    p.layout.addItem(p.titleLabel, 0, 0, 1, 3)
    p.setLabel("bottom", x_label, **{"font-size": "9pt"})
    p.setLabel("left", y_label, **{"font-size": "9pt"})
    for ax in ("bottom", "left"):
        p.getAxis(ax).setTickFont(axis_font())
    plain_axes(p)
    p.getAxis("left").setTickDensity(0.4)  # fewer, readable ticks on a short plot (1024×700)
    for ax in ("bottom", "left"):
        ticks_apart(p.getAxis(ax))
    if grid:
        p.showGrid(x=True, y=True, alpha=0.18)
    p.setMenuEnabled(True)
    w.setMinimumSize(140, 110)  # four in a row fit beside the settings column of a 1024-pixel window
    return w
