"""The window's actions, menus, toolbar and page layout, and the geometry remembered between launches.

Pages: "Training" (settings column | latent plot, image grids, generated image over the curves), "Posterior & gap"
(gui/panels/inference.py) and "VI explorer". Splitter sizes are set once and then remembered; the settings column
is never narrower than its widgets need."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QScrollArea, QSplitter, QStyle, QTabWidget, QToolBar, QVBoxLayout, QWidget

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


def build_actions(w) -> None:
    sp = QStyle.StandardPixmap
    ck, ex = w.checkpoints, w.exports
    w.act_open = _action(
        w,
        "actionOpenDataset",
        "Open dataset…",
        w.open_dataset_dialog,
        ["Ctrl+O"],
        "Open a dataset file or folder (IDX, NPZ/NPY, CSV, image folder)",
        sp.SP_DialogOpenButton,
    )
    w.act_load_ckpt = _action(
        w,
        "actionLoadCheckpoint",
        "Load checkpoint…",
        ck.load_dialog,
        ["Ctrl+L"],
        "Load a model, its settings and its curves",
        sp.SP_DirOpenIcon,
    )
    w.act_save_ckpt = _action(
        w,
        "actionSaveCheckpoint",
        "Save checkpoint…",
        ck.save_dialog,
        ["Ctrl+S"],
        "Save the model, optimizer, settings and curves",
        sp.SP_DialogSaveButton,
    )
    w.act_export_generated = _action(
        w, "actionExportGenerated", "Export generated image as PNG…", ex.generated_dialog, ["Ctrl+E"]
    )
    w.act_export_grid = _action(
        w,
        "actionExportGrid",
        "Export image grid as PNG…",
        ex.grid_dialog,
        ["Ctrl+Shift+E"],
        "Export the grid on show (manifold, reconstructions or prior samples)",
    )
    w.act_export_csv = _action(w, "actionExportMetrics", "Export metrics as CSV…", ex.metrics_dialog)
    w.act_export_tsv = _action(
        w,
        "actionExportLatents",
        "Export latent codes as TSV…",
        ex.latents_dialog,
        tip="Posterior means + labels in TensorBoard projector format",
    )
    w.export_actions = {
        "generated": w.act_export_generated,
        "grid": w.act_export_grid,
        "metrics": w.act_export_csv,
        "latents": w.act_export_tsv,
    }
    w.act_quit = _action(w, "actionQuit", "Quit", w.close, ["Ctrl+Q"])
    w.act_start = _action(
        w,
        "actionStart",
        "Start",
        w.start_training,
        ["Ctrl+Return", "F5"],
        "Start training with these settings (asks before replacing a trained model)",
        sp.SP_MediaPlay,
    )
    w.act_pause = _action(
        w, "actionPause", "Pause", w.toggle_pause, ["Ctrl+P", "F6"], "Pause or resume training", sp.SP_MediaPause
    )
    w.act_stop = _action(
        w,
        "actionStop",
        "Stop",
        w.stop_training,
        ["Ctrl+.", "Shift+F5"],
        "Stop training (the model so far is kept)",
        sp.SP_MediaStop,
    )
    w.act_encode_image = _action(
        w,
        "actionEncodeImage",
        "Encode image…",
        w.inside_actions.encode_dialog,
        ["Ctrl+E"],
        "Encode an image file of yours with the model: q(z|x) on the latent plot, its reconstruction beside it",
    )
    w.act_about = _action(w, "actionAbout", "About ELBO Studio", w.show_about)
    w.act_clear_recent = QAction("Clear list", w)
    w.act_clear_recent.setObjectName("actionClearRecent")


def _toolbar(w) -> None:
    w.act_sidebar = _sidebar_action(w)
    tb = QToolBar("Main")
    tb.setObjectName("mainToolBar")
    tb.setMovable(False)
    tb.setIconSize(QSize(18, 18))
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for a in (
        w.act_sidebar, None, w.act_open, None, w.act_start, w.act_pause, w.act_stop, None, w.act_load_ckpt,
        w.act_save_ckpt,
    ):  # fmt: skip
        if a is None:
            tb.addSeparator()
        else:
            tb.addAction(a)
    for a, name in (
        (w.act_open, "openDatasetButton"),
        (w.act_start, "startButton"),
        (w.act_pause, "pauseButton"),
        (w.act_stop, "stopButton"),
        (w.act_load_ckpt, "loadCheckpointButton"),
        (w.act_save_ckpt, "saveCheckpointButton"),
        (w.act_sidebar, "settingsColumnButton"),
    ):
        b = tb.widgetForAction(a)
        b.setObjectName(name)
        b.setAccessibleName(a.text())
    tb.widgetForAction(w.act_sidebar).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)  # 1024 px of room
    tb.toggleViewAction().setObjectName("actionToggleToolbar")
    w.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
    w.toolbar = tb
    w.start_button = tb.widgetForAction(w.act_start)
    w.pause_button = tb.widgetForAction(w.act_pause)
    w.stop_button = tb.widgetForAction(w.act_stop)


def _sidebar_action(w) -> QAction:
    """Show or hide the dataset and settings column (more room for the plots on a small screen); remembered."""
    a = QAction("Settings column", w)
    a.setObjectName("actionToggleSettings")
    a.setCheckable(True)
    a.setShortcut(QKeySequence("Ctrl+B"))
    a.setToolTip("Show or hide the dataset and settings column (Ctrl+B)")
    a.setIcon(w.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogDetailedView))

    def toggled(on: bool) -> None:
        w.sidebar.setVisible(on)
        w.settings.setValue("ui/sidebar", on)

    a.toggled.connect(toggled)
    return a


def _menus(w) -> None:
    mb = w.menuBar()

    def menu(title: str, name: str, parent=mb):
        m = parent.addMenu(title)
        m.setObjectName(name)
        m.menuAction().setObjectName("action" + name[0].upper() + name[1:])
        m.setToolTipsVisible(True)  # a disabled export says why in its tooltip
        return m

    f = menu("&File", "menuFile")
    f.addAction(w.act_open)
    w.recent_menu = menu("Recent datasets", "menuRecentDatasets", f)
    w.recent_menu.menuAction().setObjectName("actionRecentDatasets")
    f.addSeparator()
    f.addAction(w.act_load_ckpt)
    f.addAction(w.act_save_ckpt)
    f.addAction(w.act_encode_image)
    f.addSeparator()
    exp = menu("Export", "menuExport", f)
    exp.menuAction().setObjectName("actionExportMenu")
    for a in w.export_actions.values():
        exp.addAction(a)
    f.addSeparator()
    f.addAction(w.act_quit)
    t = menu("&Train", "menuTrain")
    for a in (w.act_start, w.act_pause, w.act_stop):
        t.addAction(a)
    v = menu("&View", "menuView")
    v.addAction(w.act_sidebar)
    h = menu("&Help", "menuHelp")
    h.addAction(w.act_about)


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


def show_page(w, widget: QWidget) -> None:
    """Bring the top-level page holding ``widget`` to the front."""
    for i in range(w.tabs.count()):
        page = w.tabs.widget(i)
        if page is widget or page.isAncestorOf(widget):
            w.tabs.setCurrentIndex(i)
            return


def build_window(w) -> None:
    _toolbar(w)
    _menus(w)
    top = _splitter(
        "topSplitter", Qt.Orientation.Horizontal, (w.latent, w.gallery, w.generated), (5, 4, 2), [500, 410, 290]
    )
    right = _splitter("rightSplitter", Qt.Orientation.Vertical, (top, w.curves), (3, 2), [520, 330])
    training = QWidget()
    training.setObjectName("trainingTab")
    tl = QHBoxLayout(training)
    tl.setContentsMargins(6, 6, 6, 6)
    tl.setSpacing(6)
    w.sidebar = _sidebar(w)
    tl.addWidget(w.sidebar)
    shown = str(w.settings.value("ui/sidebar", "true")).lower() != "false"
    w.act_sidebar.setChecked(shown)
    w.sidebar.setVisible(shown)
    tl.addWidget(right, 1)
    w.splitters = [top, right, w.inference.splitter]

    w.tabs = QTabWidget()
    w.tabs.setObjectName("mainTabs")
    w.tabs.setDocumentMode(True)
    w.tabs.addTab(training, "Training")
    i = w.tabs.addTab(_scrolled(w.inference, "inferenceScroll"), "Posterior && gap")
    w.tabs.setTabToolTip(
        i,
        "The true posterior p(z|x) of a selected test example against q(z|x), and the "
        "amortization gap of one encoder against a q_i per example",
    )
    i = w.tabs.addTab(w.inside, "Inside the model")  # its minimum (806×287) fits a 1024×700 window
    w.tabs.setTabToolTip(i, "Latent traversals, interpolation between two points, and your own image encoded")
    i = w.tabs.addTab(w.runs, "Runs")
    w.tabs.setTabToolTip(i, "Earlier runs of this window and checkpoints side by side: curves and rate–distortion")
    i = w.tabs.addTab(w.explorer, "VI explorer")  # its minimum (897×539) fits a 1024×700 window
    w.tabs.setTabToolTip(i, "The ELBO on a 1-D model you can see whole: z ~ Exp(α), x | z ~ N(z, σ²)")
    w.setCentralWidget(w.tabs)


def restore_geometry(w) -> None:
    geo = w.settings.value("ui/geometry")
    if geo is not None:
        w.restoreGeometry(geo)
    else:
        w.resize(1500, 940)
    for s in w.splitters:
        state = w.settings.value(f"ui/splitter/{s.objectName()}")
        if state is not None:
            s.restoreState(state)


def save_geometry(w) -> None:
    w.settings.setValue("ui/geometry", w.saveGeometry())
    for s in w.splitters:
        w.settings.setValue(f"ui/splitter/{s.objectName()}", s.saveState())
