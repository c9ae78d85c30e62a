"""The window's actions, menus, toolbar and page layout, and the geometry remembered between launches.

Pages: "Training" (settings column | latent plot, image grids, generated image over the curves), "Posterior & gap"
(gui/panels/inference.py) and "VI explorer". Splitter sizes are set once and then remembered; the settings column
is never narrower than its widgets need."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QMenu,
    QScrollArea,
    QSplitter,
    QStyle,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

SIDEBAR_MAX = 380


def _action(w, name: str, text: str, slot, shortcuts=(), tip: str = "", icon=None) -> QAction:
    a = QAction(text, w)
    a.setObjectName(name)
    if shortcuts:
        a.setShortcuts([QKeySequence(s) for s in shortcuts])
    keys = " or ".join(QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) for s in shortcuts)
    a.setToolTip(f"{tip or text.replace('…', '')}" + (f" ({keys})" if keys else ""))
    a.setStatusTip(tip or text)
    if icon is not None:
        a.setIcon(w.style().standardIcon(icon))
    a.triggered.connect(lambda _checked=False: slot())
    return a


@dataclass
class Actions:
    """The window's actions (menus, toolbar, shortcuts), each enabled from the run status and what is loaded."""

    open: QAction
    load_checkpoint: QAction
    save_checkpoint: QAction
    encode_image: QAction
    export_generated: QAction
    export_grid: QAction
    export_metrics: QAction
    export_latents: QAction
    quit: QAction
    start: QAction
    pause: QAction
    stop: QAction
    about: QAction
    clear_recent: QAction
    sidebar: QAction

    @property
    def exports(self) -> dict[str, QAction]:
        """The export actions by what they write (gui/exports.py enables them)."""
        return {
            "generated": self.export_generated,
            "grid": self.export_grid,
            "metrics": self.export_metrics,
            "latents": self.export_latents,
        }


def _named(a: QAction, name: str) -> QAction:
    a.setObjectName(name)
    return a


def build_actions(w) -> Actions:
    """The actions of window ``w``, triggering its handlers (its checkpoints, exports and Inside-page actions)."""
    sp = QStyle.StandardPixmap
    ck, ex = w.checkpoints, w.exports
    return Actions(
        open=_action(
            w,
            "actionOpenDataset",
            "Open dataset…",
            w.open_dataset_dialog,
            ["Ctrl+O"],
            "Open a dataset file or folder (IDX, NPZ/NPY, CSV, image folder)",
            sp.SP_DialogOpenButton,
        ),
        load_checkpoint=_action(
            w,
            "actionLoadCheckpoint",
            "Load checkpoint…",
            ck.load_dialog,
            ["Ctrl+L"],
            "Load a model, its settings and its curves",
            sp.SP_DirOpenIcon,
        ),
        save_checkpoint=_action(
            w,
            "actionSaveCheckpoint",
            "Save checkpoint…",
            ck.save_dialog,
            ["Ctrl+S"],
            "Save the model, optimizer, settings and curves",
            sp.SP_DialogSaveButton,
        ),
        export_generated=_action(
            w, "actionExportGenerated", "Export generated image as PNG…", ex.generated_dialog, ["Ctrl+E"]
        ),
        export_grid=_action(
            w,
            "actionExportGrid",
            "Export image grid as PNG…",
            ex.grid_dialog,
            ["Ctrl+Shift+E"],
            "Export the grid on show (manifold, reconstructions or prior samples)",
        ),
        export_metrics=_action(w, "actionExportMetrics", "Export metrics as CSV…", ex.metrics_dialog),
        export_latents=_action(
            w,
            "actionExportLatents",
            "Export latent codes as TSV…",
            ex.latents_dialog,
            tip="Posterior means + labels in TensorBoard projector format",
        ),
        quit=_action(w, "actionQuit", "Quit", w.close, ["Ctrl+Q"]),
        start=_action(
            w,
            "actionStart",
            "Start",
            w.start_training,
            ["Ctrl+Return", "F5"],
            "Start training with these settings (asks before replacing a trained model)",
            sp.SP_MediaPlay,
        ),
        pause=_action(
            w, "actionPause", "Pause", w.toggle_pause, ["Ctrl+P", "F6"], "Pause or resume training", sp.SP_MediaPause
        ),
        stop=_action(
            w,
            "actionStop",
            "Stop",
            w.stop_training,
            ["Ctrl+.", "Shift+F5"],
            "Stop training (the model so far is kept)",
            sp.SP_MediaStop,
        ),
        encode_image=_action(
            w,
            "actionEncodeImage",
            "Encode image…",
            w.inside_actions.encode_dialog,
            ["Ctrl+I"],
            "Encode an image file of yours with the model: q(z|x) on the latent plot, its reconstruction beside it",
        ),
        about=_action(w, "actionAbout", "About ELBO Studio", w.show_about),
        clear_recent=_named(QAction("Clear list", w), "actionClearRecent"),  # gui/recent.py connects it
        sidebar=_sidebar_action(w),
    )


@dataclass
class WindowLayout:
    """What build_window made that the window reaches later: the pages, the toolbar's buttons, the recent-datasets
    menu, the settings column and the splitters whose sizes are remembered."""

    tabs: QTabWidget
    toolbar: QToolBar
    start_button: QWidget
    pause_button: QWidget
    stop_button: QWidget
    recent_menu: QMenu
    sidebar: QScrollArea
    splitters: list[QSplitter]

    def add_tab(self, widget: QWidget, title: str) -> int:
        return self.tabs.addTab(widget, title)

    def show_page(self, widget: QWidget) -> None:
        """Bring the top-level page holding ``widget`` to the front."""
        for i in range(self.tabs.count()):
            page = self.tabs.widget(i)
            if page is widget or page.isAncestorOf(widget):
                self.tabs.setCurrentIndex(i)
                return


def _toolbar(w, actions: Actions) -> QToolBar:
    a = actions
    tb = QToolBar("Main")
    tb.setObjectName("mainToolBar")
    tb.setMovable(False)
    tb.setIconSize(QSize(18, 18))
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for act in (
        a.sidebar, None, a.open, None, a.start, a.pause, a.stop, None, a.load_checkpoint, a.save_checkpoint,
    ):  # fmt: skip
        if act is None:
            tb.addSeparator()
        else:
            tb.addAction(act)
    for act, name in (
        (a.open, "openDatasetButton"),
        (a.start, "startButton"),
        (a.pause, "pauseButton"),
        (a.stop, "stopButton"),
        (a.load_checkpoint, "loadCheckpointButton"),
        (a.save_checkpoint, "saveCheckpointButton"),
        (a.sidebar, "settingsColumnButton"),
    ):
        b = tb.widgetForAction(act)
        b.setObjectName(name)
        b.setAccessibleName(act.text())
    tb.widgetForAction(a.sidebar).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)  # 1024 px of room
    tb.toggleViewAction().setObjectName("actionToggleToolbar")
    w.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
    return tb


def _sidebar_action(w) -> QAction:
    """Show or hide the dataset and settings column (build_window connects it)."""
    a = QAction("Settings column", w)
    a.setObjectName("actionToggleSettings")
    a.setCheckable(True)
    a.setShortcut(QKeySequence("Ctrl+B"))
    a.setToolTip("Show or hide the dataset and settings column (Ctrl+B)")
    a.setIcon(w.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogDetailedView))
    return a


def _menus(w, a: Actions) -> QMenu:
    """The menu bar; returns the recent-datasets menu (gui/recent.py fills it)."""
    mb = w.menuBar()

    def menu(title: str, name: str, parent=mb):
        m = parent.addMenu(title)
        m.setObjectName(name)
        m.menuAction().setObjectName("action" + name[0].upper() + name[1:])
        m.setToolTipsVisible(True)  # a disabled export says why in its tooltip
        return m

    f = menu("&File", "menuFile")
    f.addAction(a.open)
    recent = menu("Recent datasets", "menuRecentDatasets", f)
    recent.menuAction().setObjectName("actionRecentDatasets")
    f.addSeparator()
    f.addAction(a.load_checkpoint)
    f.addAction(a.save_checkpoint)
    f.addAction(a.encode_image)
    f.addSeparator()
    exp = menu("Export", "menuExport", f)
    exp.menuAction().setObjectName("actionExportMenu")
    for act in a.exports.values():
        exp.addAction(act)
    f.addSeparator()
    f.addAction(a.quit)
    t = menu("&Train", "menuTrain")
    for act in (a.start, a.pause, a.stop):
        t.addAction(act)
    v = menu("&View", "menuView")
    v.addAction(a.sidebar)
    h = menu("&Help", "menuHelp")
    h.addAction(a.about)
    return recent


def _splitter(name: str, orientation, widgets, stretch, sizes) -> QSplitter:
    s = QSplitter(orientation)
    s.setObjectName(name)
    for wd, k in zip(widgets, stretch):
        s.addWidget(wd)
        s.setStretchFactor(s.indexOf(wd), k)
    s.setSizes(sizes)
    s.setChildrenCollapsible(False)
    return s


def _sidebar(w) -> QScrollArea:
    side = QWidget()
    side.setObjectName("sidebar")
    sl = QVBoxLayout(side)
    sl.setContentsMargins(0, 0, 4, 0)
    sl.setSpacing(8)
    sl.addWidget(w.dataset_panel)
    sl.addWidget(w.settings_panel)
    sl.addStretch(1)
    scroll = QScrollArea()
    scroll.setObjectName("sidebarScroll")
    scroll.setWidget(side)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    # never narrower than its widgets need (room for the vertical scroll bar included): nothing in it is clipped
    need = side.minimumSizeHint().width() + scroll.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent) + 2
    scroll.setMinimumWidth(max(280, need))
    scroll.setMaximumWidth(max(SIDEBAR_MAX, need))
    return scroll


def _scrolled(page: QWidget, name: str) -> QScrollArea:
    """A page that scrolls rather than forcing a larger window when the window is small (1024×700). Only for a page
    without height-for-width layout: a scroll area sizes such a page to its full preferred height."""
    scroll = QScrollArea()
    scroll.setObjectName(name)
    scroll.setWidget(page)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    return scroll


def build_window(w, actions: Actions) -> WindowLayout:
    """The toolbar, menus and pages of window ``w`` around its panels."""
    tb = _toolbar(w, actions)
    recent = _menus(w, actions)
    top = _splitter(
        "topSplitter", Qt.Orientation.Horizontal, (w.latent, w.gallery, w.generated), (5, 4, 2), [500, 410, 290]
    )
    right = _splitter("rightSplitter", Qt.Orientation.Vertical, (top, w.curves), (3, 2), [520, 330])
    training = QWidget()
    training.setObjectName("trainingTab")
    tl = QHBoxLayout(training)
    tl.setContentsMargins(6, 6, 6, 6)
    tl.setSpacing(6)
    sidebar = _sidebar(w)
    tl.addWidget(sidebar)
    shown = str(w.settings.value("ui/sidebar", "true")).lower() != "false"
    actions.sidebar.setChecked(shown)
    sidebar.setVisible(shown)

    def sidebar_toggled(on: bool) -> None:  # more room for the plots on a small screen; remembered
        sidebar.setVisible(on)
        w.settings.setValue("ui/sidebar", on)

    actions.sidebar.toggled.connect(sidebar_toggled)
    tl.addWidget(right, 1)

    tabs = QTabWidget()
    tabs.setObjectName("mainTabs")
    tabs.setDocumentMode(True)
    tabs.addTab(training, "Training")
    i = tabs.addTab(_scrolled(w.inference, "inferenceScroll"), "Posterior && gap")
    tabs.setTabToolTip(
        i,
        "The true posterior p(z|x) of a selected test example against q(z|x), and the "
        "amortization gap of one encoder against a q_i per example",
    )
    i = tabs.addTab(w.inside, "Inside the model")  # its minimum (806×287) fits a 1024×700 window
    tabs.setTabToolTip(i, "Latent traversals, interpolation between two points, and your own image encoded")
    i = tabs.addTab(w.runs, "Runs")
    tabs.setTabToolTip(i, "Earlier runs of this window and checkpoints side by side: curves and rate–distortion")
    i = tabs.addTab(w.explorer_page, "VI explorer")  # its minimum (897×539) fits a 1024×700 window
    tabs.setTabToolTip(i, "The ELBO on a 1-D model you can see whole: z ~ Exp(α), x | z ~ N(z, σ²)")
    w.setCentralWidget(tabs)
    return WindowLayout(
        tabs=tabs,
        toolbar=tb,
        start_button=tb.widgetForAction(actions.start),
        pause_button=tb.widgetForAction(actions.pause),
        stop_button=tb.widgetForAction(actions.stop),
        recent_menu=recent,
        sidebar=sidebar,
        splitters=[top, right, w.inference.splitter],
    )


def restore_geometry(w, splitters) -> None:
    geo = w.settings.value("ui/geometry")
    if geo is not None:
        w.restoreGeometry(geo)
    else:
        w.resize(1500, 940)
    for s in splitters:
        state = w.settings.value(f"ui/splitter/{s.objectName()}")
        if state is not None:
            s.restoreState(state)


def save_geometry(w, splitters) -> None:
    w.settings.setValue("ui/geometry", w.saveGeometry())
    for s in splitters:
        w.settings.setValue(f"ui/splitter/{s.objectName()}", s.saveState())
