"""The main window: lays out the panels, wires the training session to them, menus, status bar, files.

Data flow: engine messages arrive as TrainingSession signals (GUI thread); slots only store and mark dirty; an
8 Hz timer (``_tick``) redraws what is dirty, within a cap on the GUI thread's CPU while training runs
(gui/draw_budget.py). A click in the latent plot decodes at once with a CPU copy of the
newest decoder snapshot (engine.decoding.SnapshotDecoder), so it works while training runs, is paused, has
finished, or with a loaded checkpoint.

Every dialog goes through a method (``show_error``, ``ask_*``) that tests replace."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QDialog, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
                               QProgressBar, QPushButton, QScrollArea, QSplitter, QStyle, QTabWidget,
                               QToolBar, QVBoxLayout, QWidget)

from engine.checkpoint import CheckpointError, WriteError, atomic_write, load_checkpoint, save_checkpoint
from engine.config import ConfigError
from engine.files import display_name
from engine.preflight import check_run
from engine.decoding import SnapshotDecoder, snapshot_from_state
from engine.messages import DecoderSnapshot, LatentSnapshot
from engine.snapshots_extra import SnapshotModel, latent_snapshot
from gui import style
from gui.imaging import save_png
from gui.draw_budget import DrawBudget, RedrawJob, RedrawScheduler
from gui.panels.curves import CurvesPanel
from gui.panels.dataset import DatasetPanel
from gui.panels.gallery import GalleryPanel
from gui.panels.explorer import ExplorerPanel
from gui.panels.inference import InferencePanel
from gui.panels.generated import GeneratedPanel
from gui.panels.latent import LatentPanel
from gui.panels.settings import SettingsPanel
from gui.session import BackgroundTask, TrainingSession, torch_single_threaded

try:  # engine.data is being written alongside; the window still opens without it
    from engine.data import FILE_DIALOG_FILTER
except ImportError:  # pragma: no cover
    FILE_DIALOG_FILTER = "Datasets (*.gz *.npz *.npy *.csv *-ubyte *.idx*);;All files (*)"

APP_NAME = "ELBO Studio"
REFRESH_HZ = 8  # redraw passes a second; each draws at most one heavy item (see _tick)
# The GUI thread's CPU share while training (gui/draw_budget.py). benchmarks/gui_responsiveness.py, 2 cores: an
# uncapped 8 Hz window used 11-12% of a core and cost training 12-18% of its throughput; with this cap and the
# redraw periods below it uses about 5% and costs 6-10% (whole epochs, evaluation included).
DRAW_SHARE = 0.06
MAX_RECENT = 8
CHECKPOINT_FILTER = "ELBO Studio checkpoints (*.pt);;All files (*)"
CLOSE_WAIT_MS = 3000  # the most closing the window waits for the training thread and for each background task


def default_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "ELBO Studio", "elbo-studio")


class DatasetFileDialog(QFileDialog):
    """A file dialog that accepts a file *or* a folder (image folders, IDX folders): "Open" on a file opens it;
    "Open folder" opens the highlighted folder, or the one being shown."""

    def __init__(self, parent=None, start_dir: str = ""):
        super().__init__(parent, "Open dataset", start_dir, FILE_DIALOG_FILTER)
        self.setObjectName("datasetFileDialog")
        self.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        self.setFileMode(QFileDialog.FileMode.ExistingFile)
        self.chosen: str | None = None
        btn = QPushButton("Open folder")
        btn.setObjectName("openFolderButton")
        btn.setToolTip("Open the highlighted folder (or the one shown) as a dataset: a folder of images, "
                       "one sub-folder per class, or a folder of IDX files")
        btn.clicked.connect(self._open_folder)
        lay = self.layout()
        if lay is not None:
            lay.addWidget(btn)

    def _open_folder(self) -> None:
        sel = [p for p in self.selectedFiles() if Path(p).is_dir()]
        self.chosen = sel[0] if sel else self.directory().absolutePath()
        QDialog.done(self, QDialog.DialogCode.Accepted)

    def accept(self) -> None:
        files = self.selectedFiles()
        if files and Path(files[0]).is_file():
            self.chosen = files[0]
        super().accept()

    @classmethod
    def get_path(cls, parent, start_dir: str = "") -> str | None:
        dlg = cls(parent, start_dir)
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return None
        return dlg.chosen or (dlg.selectedFiles() or [None])[0]


class MainWindow(QMainWindow):
    dataset_changed = Signal(object)

    def __init__(self, settings: QSettings | None = None, dataset=None, load_default: bool = True):
        super().__init__()
        style.configure_pyqtgraph()
        torch_single_threaded()  # before any torch call on this thread: see gui/session.py
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP_NAME)
        self.settings = settings if settings is not None else default_settings()
        self.session = TrainingSession(self)
        self.dataset = None
        self.loaded_checkpoint = None  # a Checkpoint loaded from a file, until a run replaces it
        self.history = None  # MetricHistory behind the curves (a run's mirror or a checkpoint's)
        self.current_decoder: DecoderSnapshot | None = None
        self.current_latent: LatentSnapshot | None = None
        self.source = None  # "run" | "checkpoint": what Save checkpoint writes
        self._model_cache: tuple[DecoderSnapshot, SnapshotModel] | None = None
        self._picked_z: np.ndarray | None = None
        self._status_at = 0.0  # when the status bar last showed progress
        self._evaluating = False  # the worker is in its end-of-epoch evaluation (no background redraws then)
        self._tasks: list[BackgroundTask] = []
        self._loading_dataset: BackgroundTask | None = None
        self._rate: float | None = None  # smoothed samples/s
        self._last_chunk = None
        self._closing = False
        self.dialogs: list[QMessageBox] = []

        from engine.trainer import available_devices

        self.dataset_panel = DatasetPanel()
        self.settings_panel = SettingsPanel(self.settings, available_devices())
        self.curves = CurvesPanel()
        self.latent = LatentPanel()
        self.generated = GeneratedPanel()
        self.gallery = GalleryPanel()
        # The teaching half (issue: "Make the ELBO visible"): the 1-D VI explorer as a tab of its own, and the true
        # posterior / amortization gap of the model being trained beside the image grids, drawing in the latent plot.
        self.explorer = ExplorerPanel()
        self.inference = InferencePanel(plot_item=self.latent.plot, snapshot_provider=lambda: self.current_decoder)
        inference_scroll = QScrollArea()
        inference_scroll.setObjectName("inferenceScroll")
        inference_scroll.setWidget(self.inference)
        inference_scroll.setWidgetResizable(True)  # the panel keeps its natural height; the page scrolls
        inference_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.gallery.add_page(inference_scroll, "Posterior && gap",
                              "Click a point of the scatter: its true posterior p(z|x) (contours) against q(z|x) "
                              "(ellipses), and the amortization gap of a selection of test examples")
        self._build_actions()
        self._build_layout()
        self._build_menus()
        self._build_status()
        self._connect()

        self.draw_budget = DrawBudget(share=DRAW_SHARE)
        self.redraws = RedrawScheduler([RedrawJob("scatter", self._draw_scatter, 1.0),
                                        RedrawJob("curves", self.curves.refresh, 1.5),
                                        RedrawJob("gallery", self._draw_gallery, 10.0)], self.draw_budget)
        self.timer = QTimer(self)
        self.timer.setObjectName("refreshTimer")
        self.timer.setInterval(int(1000 / REFRESH_HZ))
        self.timer.timeout.connect(self._tick)
        self.timer.start()

        geo = self.settings.value("ui/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1500, 940)
        self._update_actions()
        if dataset is not None:
            self.set_dataset(dataset)
        elif load_default:
            self._load_default_dataset()

    # ------------------------------------------------------------------------------------------- building
    def _action(self, name: str, text: str, slot, shortcuts=(), tip: str = "", icon=None) -> QAction:
        a = QAction(text, self)
        a.setObjectName(name)
        if shortcuts:
            a.setShortcuts([QKeySequence(s) for s in shortcuts])
        keys = " or ".join(QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) for s in shortcuts)
        a.setToolTip(f"{tip or text.replace('…', '')}" + (f" ({keys})" if keys else ""))
        a.setStatusTip(tip or text)
        if icon is not None:
            a.setIcon(self.style().standardIcon(icon))
        a.triggered.connect(lambda _checked=False: slot())
        return a

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.act_open = self._action("actionOpenDataset", "Open dataset…", self.open_dataset_dialog, ["Ctrl+O"],
                                     "Open a dataset file or folder (IDX, NPZ/NPY, CSV, image folder)", sp.SP_DialogOpenButton)
        self.act_load_ckpt = self._action("actionLoadCheckpoint", "Load checkpoint…", self.load_checkpoint_dialog,
                                          ["Ctrl+L"], "Load a model, its settings and its curves", sp.SP_DirOpenIcon)
        self.act_save_ckpt = self._action("actionSaveCheckpoint", "Save checkpoint…", self.save_checkpoint_dialog,
                                          ["Ctrl+S"], "Save the model, optimizer, settings and curves", sp.SP_DialogSaveButton)
        self.act_export_generated = self._action("actionExportGenerated", "Export generated image as PNG…",
                                                 self.export_generated_dialog, ["Ctrl+E"])
        self.act_export_grid = self._action("actionExportGrid", "Export image grid as PNG…", self.export_grid_dialog,
                                            ["Ctrl+Shift+E"], "Export the grid on show (manifold, reconstructions or prior samples)")
        self.act_export_csv = self._action("actionExportMetrics", "Export metrics as CSV…", self.export_metrics_dialog)
        self.act_export_tsv = self._action("actionExportLatents", "Export latent codes as TSV…", self.export_latents_dialog,
                                           tip="Posterior means + labels in TensorBoard projector format")
        self.act_quit = self._action("actionQuit", "Quit", self.close, ["Ctrl+Q"])
        self.act_start = self._action("actionStart", "Start", self.start_training, ["Ctrl+Return", "F5"],
                                      "Start training with these settings (continues a loaded checkpoint)", sp.SP_MediaPlay)
        self.act_pause = self._action("actionPause", "Pause", self.toggle_pause, ["Ctrl+P", "F6"],
                                      "Pause or resume training", sp.SP_MediaPause)
        self.act_stop = self._action("actionStop", "Stop", self.stop_training, ["Ctrl+.", "Shift+F5"],
                                     "Stop training (the model so far is kept)", sp.SP_MediaStop)
        self.act_about = self._action("actionAbout", "About ELBO Studio", self.show_about)
        self.act_clear_recent = self._action("actionClearRecent", "Clear list", self._clear_recent)

    def _build_layout(self) -> None:
        tb = QToolBar("Main")
        tb.setObjectName("mainToolBar")
        tb.setMovable(False)
        tb.setIconSize(QSize(18, 18))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for a in (self.act_open, None, self.act_start, self.act_pause, self.act_stop, None, self.act_load_ckpt,
                  self.act_save_ckpt):
            if a is None:
                tb.addSeparator()
            else:
                tb.addAction(a)
        for a, name in ((self.act_open, "openDatasetButton"), (self.act_start, "startButton"),
                        (self.act_pause, "pauseButton"), (self.act_stop, "stopButton"),
                        (self.act_load_ckpt, "loadCheckpointButton"), (self.act_save_ckpt, "saveCheckpointButton")):
            w = tb.widgetForAction(a)
            w.setObjectName(name)
            w.setAccessibleName(a.text())
        tb.toggleViewAction().setObjectName("actionToggleToolbar")
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb

        self.start_button = tb.widgetForAction(self.act_start)
        self.pause_button = tb.widgetForAction(self.act_pause)
        self.stop_button = tb.widgetForAction(self.act_stop)

        side = QWidget()
        side.setObjectName("sidebar")
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 4, 0)
        sl.setSpacing(8)
        sl.addWidget(self.dataset_panel)
        sl.addWidget(self.settings_panel)
        sl.addStretch(1)
        scroll = QScrollArea()
        scroll.setObjectName("sidebarScroll")
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(290)
        scroll.setMaximumWidth(380)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.setObjectName("topSplitter")
        top.addWidget(self.latent)
        top.addWidget(self.gallery)
        top.addWidget(self.generated)
        top.setStretchFactor(0, 5)
        top.setStretchFactor(1, 4)
        top.setStretchFactor(2, 2)
        top.setSizes([520, 430, 250])
        top.setChildrenCollapsible(False)
        right = QSplitter(Qt.Orientation.Vertical)
        right.setObjectName("rightSplitter")
        right.addWidget(top)
        right.addWidget(self.curves)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        right.setSizes([520, 330])
        right.setChildrenCollapsible(False)

        training = QWidget()
        training.setObjectName("trainingTab")
        tl = QHBoxLayout(training)
        tl.setContentsMargins(6, 6, 6, 6)
        tl.setSpacing(6)
        tl.addWidget(scroll)
        tl.addWidget(right, 1)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(training, "Training")
        self.tabs.addTab(self.explorer, "VI explorer")
        self.tabs.setTabToolTip(1, "The ELBO on a 1-D model you can see whole: z ~ Exp(α), x | z ~ N(z, σ²)")
        self.setCentralWidget(self.tabs)

    def add_tab(self, widget: QWidget, title: str) -> int:
        """Add a page beside "Training" (e.g. the VI explorer); returns its index."""
        return self.tabs.addTab(widget, title)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        f.setObjectName("menuFile")
        f.menuAction().setObjectName("actionMenuFile")
        f.addAction(self.act_open)
        self.recent_menu = f.addMenu("Recent datasets")
        self.recent_menu.setObjectName("menuRecentDatasets")
        self.recent_menu.menuAction().setObjectName("actionRecentDatasets")
        f.addSeparator()
        f.addAction(self.act_load_ckpt)
        f.addAction(self.act_save_ckpt)
        f.addSeparator()
        exp = f.addMenu("Export")
        exp.setObjectName("menuExport")
        exp.menuAction().setObjectName("actionExportMenu")
        for a in (self.act_export_generated, self.act_export_grid, self.act_export_csv, self.act_export_tsv):
            exp.addAction(a)
        f.addSeparator()
        f.addAction(self.act_quit)
        t = mb.addMenu("&Train")
        t.setObjectName("menuTrain")
        t.menuAction().setObjectName("actionMenuTrain")
        for a in (self.act_start, self.act_pause, self.act_stop):
            t.addAction(a)
        h = mb.addMenu("&Help")
        h.setObjectName("menuHelp")
        h.menuAction().setObjectName("actionMenuHelp")
        h.addAction(self.act_about)
        self._rebuild_recent_menu()

    def _build_status(self) -> None:
        sb = self.statusBar()
        sb.setObjectName("statusBar")
        self.progress = QProgressBar()
        self.progress.setObjectName("progressBar")
        self.progress.setAccessibleName("Training progress")
        self.progress.setFixedWidth(300)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("not started")
        self.state_label = QLabel("Idle")
        self.rate_label = QLabel("— samples/s")
        self.eta_label = QLabel("ETA —")
        self.device_label = QLabel("device —")
        for w, name, tip in ((self.state_label, "stateLabel", "Run state"),
                             (self.rate_label, "samplesPerSecondLabel", "Training throughput (training steps only)"),
                             (self.eta_label, "etaLabel", "Time left at the current speed (epoch-end evaluation not included)"),
                             (self.device_label, "deviceLabel", "Device the model trains on")):
            w.setObjectName(name)
            w.setToolTip(tip)
        sb.addPermanentWidget(self.state_label)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.rate_label)
        sb.addPermanentWidget(self.eta_label)
        sb.addPermanentWidget(self.device_label)

    def _connect(self) -> None:
        s = self.session
        s.started.connect(self._on_run_started)
        s.metrics.connect(self._on_metrics)
        s.epoch.connect(self._on_epoch)
        s.latent.connect(self._on_latent)
        s.decoder.connect(self._on_decoder)
        s.state.connect(self._on_state)
        s.error.connect(self._on_worker_error)
        s.saved.connect(self._on_saved)
        s.finished.connect(self._on_run_finished)
        self.latent.latent_clicked.connect(self._on_latent_clicked)
        self.gallery.example_clicked.connect(self._show_example)
        self.latent.view_changed.connect(self._on_view_changed)
        self.gallery.tabs.currentChanged.connect(lambda _i: self._update_actions())

    # ------------------------------------------------------------------------------------------- dialogs
    def show_error(self, title: str, text: str, detail: str = "") -> None:
        """A non-blocking error box (the window keeps running). Tests replace this method."""
        box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorDialog")
        if detail:
            box.setDetailedText(detail)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(lambda _r, b=box: self.dialogs.remove(b) if b in self.dialogs else None)
        self.dialogs.append(box)
        box.open()

    def ask_save_before_close(self) -> str:
        """'save', 'discard' or 'cancel'."""
        box = QMessageBox(QMessageBox.Icon.Question, "Training is running",
                          "Training is still running. Save a checkpoint before closing?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("closeDialog")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        r = box.exec()
        return {QMessageBox.StandardButton.Save: "save", QMessageBox.StandardButton.Discard: "discard"}.get(
            QMessageBox.StandardButton(r), "cancel")

    def ask_dataset_path(self) -> str | None:
        start = str(self.settings.value("ui/last_dataset_dir", str(Path.home())))
        return DatasetFileDialog.get_path(self, start)

    def ask_open_path(self, title: str, file_filter: str) -> str | None:
        start = str(self.settings.value("ui/last_file_dir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, title, start, file_filter)
        return path or None

    def ask_save_path(self, title: str, file_filter: str, suggested: str) -> str | None:
        start = Path(str(self.settings.value("ui/last_file_dir", str(Path.home())))) / suggested
        path, _ = QFileDialog.getSaveFileName(self, title, str(start), file_filter)
        if path:
            self.settings.setValue("ui/last_file_dir", str(Path(path).parent))
        return path or None

    def show_about(self) -> None:
        QMessageBox.about(self, "About ELBO Studio",
                          "<b>ELBO Studio</b><br>Train variational autoencoders and watch amortized variational "
                          "inference happen: the ELBO and its terms, the IWAE bound, the latent space, and the decoder "
                          "at any point you click.")

    # ------------------------------------------------------------------------------------------- dataset
    def _load_default_dataset(self) -> None:
        try:
            from engine.data import default_dataset
        except ImportError as e:  # pragma: no cover - engine.data not there yet
            self.statusBar().showMessage(f"No default dataset: {e}", 8000)
            return
        self._start_dataset_task(default_dataset, "the default dataset", None)

    def open_dataset_dialog(self) -> None:
        path = self.ask_dataset_path()
        if path:
            self.settings.setValue("ui/last_dataset_dir", str(Path(path).parent))
            self.open_dataset(path)

    def open_dataset(self, path: str) -> None:
        """Load ``path`` on a background thread; the current dataset stays until it succeeds."""
        from engine.data import load_dataset

        self._start_dataset_task(lambda p=str(path): load_dataset(p), Path(path).name or str(path), str(path))

    def _start_dataset_task(self, fn, label: str, path: str | None) -> None:
        if self._loading_dataset is not None or self.session.is_active():
            return
        self.dataset_panel.set_busy(f"Loading {label}…")
        self.statusBar().showMessage(f"Loading {label}…")
        QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        task = BackgroundTask(fn, lambda ds, err, p=path: self._on_dataset_loaded(ds, err, p), self, "datasetLoader")
        self._loading_dataset = task
        self._tasks.append(task)
        self._update_actions()

    def _on_dataset_loaded(self, ds, err, path: str | None) -> None:
        from engine.data import DatasetError

        QApplication.restoreOverrideCursor()
        self._forget_task(self._loading_dataset)
        self._loading_dataset = None
        self.dataset_panel.set_busy(None)
        if err is not None:
            self.statusBar().showMessage("The dataset could not be opened; the previous one is still loaded.", 8000)
            if not isinstance(err, DatasetError):
                err = f"{display_name(path) if path else 'dataset'}: {type(err).__name__}: {err}"
            self.show_error("Could not open the dataset", str(err))
            self._update_actions()
            return
        self.set_dataset(ds)
        if path:
            self._add_recent(path)
        self.statusBar().showMessage(f"Loaded {ds.summary()}", 6000)

    def set_dataset(self, ds) -> None:
        self.dataset = ds
        self.dataset_panel.set_dataset(ds)
        self.latent.set_classes(ds.class_names or tuple(str(i) for i in range(ds.n_classes)), ds.y_test is not None)
        self.gallery.set_dataset(ds)
        self.inference.set_test_data(ds.x_test, ds.y_test, ds.class_names)
        self.setWindowTitle(f"{APP_NAME} — {ds.name}")
        self.current_latent = None
        if self.current_decoder is not None and not self.session.is_active():
            self._encode_latents_for(ds)
        self.dataset_changed.emit(ds)
        self._update_actions()

    def _encode_latents_for(self, ds) -> None:
        """Posterior means of the test subset under the current model (a loaded checkpoint or a finished run)."""
        snap = self.current_decoder
        cfg = snap.model_config
        if tuple(cfg["image_shape"]) != tuple(ds.image_shape):
            return
        n = self.settings_panel.train_config().latent_examples

        def work(snap=snap, ds=ds):
            return latent_snapshot(SnapshotModel(snap), ds, n, snap.step)

        def done(lat, err):
            self._forget_task(task)
            if err is None and ds is self.dataset and snap is self.current_decoder:
                self.current_latent = lat
                self.latent.set_snapshot(lat)
                self.latent.refresh(force=True)
                self._update_actions()

        task = BackgroundTask(work, done, self, "latentEncoder")
        self._tasks.append(task)

    def _recent(self) -> list[str]:
        v = self.settings.value("recent/datasets", [])
        if isinstance(v, str):
            v = [v] if v else []
        return [str(p) for p in (v or [])]

    def _add_recent(self, path: str) -> None:
        items = [path] + [p for p in self._recent() if p != path]
        self.settings.setValue("recent/datasets", items[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _clear_recent(self) -> None:
        self.settings.setValue("recent/datasets", [])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        m = self.recent_menu
        m.clear()
        items = self._recent()
        for i, p in enumerate(items):
            a = m.addAction(f"&{i + 1}  {Path(p).name or p}")
            a.setObjectName(f"actionRecent{i}")
            a.setToolTip(p)
            a.setStatusTip(p)
            a.setData(p)
            a.triggered.connect(lambda _c=False, p=p: self.open_dataset(p))
        if not items:
            a = m.addAction("(none yet)")
            a.setObjectName("actionRecentNone")
            a.setEnabled(False)
        m.addSeparator()
        m.addAction(self.act_clear_recent)
        self.act_clear_recent.setEnabled(bool(items))

    # ------------------------------------------------------------------------------------------- training
    def start_training(self) -> None:
        if self.session.is_active() or self._closing:
            return
        ds = self.dataset
        if ds is None:
            self.show_error("No dataset", "Open a dataset first (File → Open dataset…).")
            return
        try:
            mcfg = self.settings_panel.model_config(ds.image_shape)
            tcfg = self.settings_panel.train_config()
            check_run(mcfg, tcfg, ds.image_shape, len(ds.x_train), len(ds.x_test))
        except ConfigError as e:  # shown where the settings are; nothing starts
            text = str(e)
            self.settings_panel.show_problem(f"Cannot start: {text[:1].upper()}{text[1:]}.")
            self.statusBar().showMessage("Cannot start with these settings: see the settings panel.", 8000)
            return
        self.settings_panel.show_problem(None)
        ck = self.loaded_checkpoint
        note = ""
        if ck is not None:
            same_data = ck.dataset.get("fingerprint") == ds.fingerprint()
            if ck.model_config != mcfg or not same_data:
                ck, note = None, "New run (the loaded checkpoint has other model settings or other data)."
            elif ck.epoch >= tcfg.epochs:
                ck, note = None, (f"New run: the checkpoint already has {ck.epoch} epochs; raise Epochs above that "
                                  f"to continue it.")
            else:
                note = f"Continuing the checkpoint from step {ck.step:,}."
        self.curves.set_history(ck.history) if ck is not None else self.curves.clear()
        self.latent.set_latent_dim(mcfg.latent_dim)
        self.latent.clear()
        self.generated.clear("Click or drag in the latent plot to decode a point.")
        self.gallery.clear()
        self.current_decoder = self.current_latent = None
        self._picked_z = None
        self._rate = None
        self.session.start(ds, mcfg, tcfg, ck)
        self.history = self.session.history
        self.loaded_checkpoint = None
        self.source = "run"
        self.progress.setFormat("starting…")
        self.state_label.setText("Starting")
        self.statusBar().showMessage(note or "Starting…", 6000)
        self._update_actions()

    def toggle_pause(self) -> None:
        st = self.session.current_state
        if st == "running":
            self.session.pause()
        elif st in ("paused", "diverged"):
            self.session.resume()

    def stop_training(self) -> None:
        if self.session.is_active():
            self.session.stop()
            self.state_label.setText("Stopping…")

    def _on_run_started(self, msg) -> None:
        self.device_label.setText(f"device {msg.device}" + (f" · {msg.precision}" if msg.precision != "fp32" else ""))
        self.device_label.setToolTip(f"{msg.device}, {msg.precision}, {msg.n_params:,} parameters")
        self.progress.setRange(0, max(1, msg.total_steps))
        self.curves.set_total_steps(msg.total_steps)
        self.progress.setValue(msg.start_step)
        self._update_progress(msg.start_step, msg.start_epoch, msg.total_steps, msg.steps_per_epoch)

    def _update_progress(self, step: int, epoch: int, total: int, spe: int) -> None:
        epochs = max(1, total // max(1, spe))
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(min(step, total))
        self.progress.setFormat(f"epoch {min(epoch + 1, epochs)}/{epochs} · step {step:,}/{total:,}")

    def _on_metrics(self, chunk) -> None:
        # the epoch's last step: the worker now evaluates on the test set until its EpochSummary arrives
        self._evaluating = chunk.steps_per_epoch > 0 and chunk.step > 0 and chunk.step % chunk.steps_per_epoch == 0
        self.curves.add_chunk(chunk)
        self._last_chunk = chunk
        if chunk.samples_per_s > 0:
            self._rate = chunk.samples_per_s if self._rate is None else 0.8 * self._rate + 0.2 * chunk.samples_per_s

    def _on_epoch(self, summary) -> None:
        self._evaluating = False
        self.curves.add_epoch(summary)

    def _on_latent(self, snap) -> None:
        self.current_latent = snap
        self.latent.set_snapshot(snap)

    def _on_decoder(self, snap) -> None:
        self.current_decoder = snap
        self.gallery.set_model(None)  # built lazily from the new snapshot when drawn
        self._gallery_snapshot = None
        if self._picked_z is not None:
            self._decode_and_show(self._picked_z, self.generated.plane_xy)

    def _on_state(self, msg) -> None:
        st = msg.state
        self._evaluating = False
        self.state_label.setText({"running": "Running", "paused": "Paused", "stopped": "Stopped",
                                  "finished": "Finished", "diverged": "Diverged (paused)"}.get(st, st))
        if msg.text:
            self.statusBar().showMessage(msg.text, 8000)
        if st == "diverged":
            self.show_error("Training diverged", msg.text)
        if st in ("finished", "stopped", "paused"):
            self.curves.refresh()
            self.latent.refresh(force=True)
            self.latent.fit_view()  # while training the view had headroom; now a snug fit
        self._update_actions()

    def _on_worker_error(self, msg) -> None:
        if not msg.fatal:  # the run goes on (a checkpoint that could not be saved)
            self.statusBar().showMessage(msg.text, 10000)
            self.show_error("Could not save the checkpoint", msg.text)
            return
        self.show_error("Training error", msg.text, msg.detail)
        self._update_actions()

    def _on_saved(self, msg) -> None:
        self.statusBar().showMessage(f"Checkpoint saved: {msg.path} (step {msg.step:,})", 8000)

    def _on_run_finished(self) -> None:
        self.inference.refresh()  # the example on show, recomputed with the final weights
        if self.state_label.text() in ("Starting", "Stopping…", "Running", "Paused"):
            self.state_label.setText("Stopped")
        self.eta_label.setText("ETA —")
        self._update_actions()

    def _update_actions(self) -> None:
        active = self.session.is_active()
        st = self.session.current_state
        loading = self._loading_dataset is not None
        self.act_start.setEnabled(not active and self.dataset is not None and not loading)
        self.act_pause.setEnabled(active and st in ("running", "paused", "diverged"))
        paused = st in ("paused", "diverged")
        self.act_pause.setText("Resume" if paused and active else "Pause")
        self.act_pause.setIcon(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MediaPlay if paused and active else QStyle.StandardPixmap.SP_MediaPause))
        self.pause_button.setAccessibleName(self.act_pause.text())
        self.act_stop.setEnabled(active)
        self.act_open.setEnabled(not active and not loading)
        self.recent_menu.setEnabled(not active and not loading)
        self.act_load_ckpt.setEnabled(not active)
        can_save = (self.source == "run" and self.session.run is not None) or (
            self.source == "checkpoint" and self.loaded_checkpoint is not None)
        self.act_save_ckpt.setEnabled(can_save)
        self.settings_panel.set_editable(not active)
        self.act_export_generated.setEnabled(self.generated.image is not None)
        self.act_export_grid.setEnabled(self.gallery.current_image() is not None)
        self.act_export_csv.setEnabled(self.history is not None and len(self.history) > 0)
        self.act_export_tsv.setEnabled(self.current_latent is not None)

    # ------------------------------------------------------------------------------------------- drawing
    def _tick(self) -> None:
        """The only place that redraws, at REFRESH_HZ. Each pass draws at most one thing (the scatter, the curves,
        or one image grid), so no event-loop pass is long; while training runs, the draws keep to their periods
        and a CPU budget (gui/draw_budget.py) so that painting costs the trainer little."""
        running = self.session.current_state == "running"
        if running and self._evaluating:
            return  # the end-of-epoch evaluation (~0.4 s on Fashion-MNIST) runs undisturbed; the EpochSummary ends it
        drew = self.redraws.tick(limited=running)
        now = time.monotonic()
        if drew is None and now - self._status_at < 1.0:
            return
        self._status_at = now
        c = self._last_chunk
        if c is not None:
            self._last_chunk = None
            self._update_progress(c.step, c.epoch, c.total_steps, c.steps_per_epoch)
            if self._rate:
                self.rate_label.setText(f"{self._rate:,.0f} samples/s")
                bs = self.session.train_config.batch_size if self.session.train_config else 1
                left = (c.total_steps - c.step) * bs / self._rate
                self.eta_label.setText(f"ETA {_fmt_seconds(left)}")
        if self.act_export_grid.isEnabled() != (self.gallery.current_image() is not None) or \
                self.act_export_tsv.isEnabled() != (self.current_latent is not None) or \
                self.act_export_generated.isEnabled() != (self.generated.image is not None):
            self._update_actions()

    def _draw_scatter(self) -> bool:
        if self.latent.refresh():
            self._on_scatter_drawn()
            return True
        return False

    def _draw_gallery(self) -> bool:
        if self.current_decoder is None or not self.gallery.isVisible():
            return False
        model = self._model()
        if self.gallery.model is not model:
            self.gallery.set_model(model)
        return self.gallery.refresh()

    def _on_scatter_drawn(self) -> None:
        if self._picked_z is not None and self.latent.plane is not None:
            xy = self.latent.plane.to_plane(self._picked_z[None])[0]
            self.latent.set_marker((float(xy[0]), float(xy[1])))

    def _on_view_changed(self) -> None:
        d = self.latent.latent_dim or 2
        names = ("PC1", "PC2") if d > 2 else ("z₁", "z₂")
        self.gallery.set_view(self.latent.view_rect(), self._plane_to_latent, names)

    def _plane_to_latent(self, pts: np.ndarray) -> np.ndarray:
        lat = self.latent
        d = self._model().latent_dim if self.current_decoder is not None else (lat.latent_dim or 2)
        if lat.plane is not None and lat.plane.components.shape[1] == d:
            return lat.plane.from_plane(pts).astype(np.float32)
        out = np.zeros((len(pts), d), np.float32)
        out[:, : min(2, d)] = pts[:, : min(2, d)]
        return out

    def _decoder(self) -> SnapshotDecoder | None:
        return self._model()  # a SnapshotModel decodes too: one CPU copy of the model per snapshot, not two

    def _model(self) -> SnapshotModel | None:
        snap = self.current_decoder
        if snap is None:
            return None
        if self._model_cache is None or self._model_cache[0] is not snap:
            self._model_cache = (snap, SnapshotModel(snap))
        return self._model_cache[1]

    def _on_latent_clicked(self, x: float, y: float) -> None:
        if self.current_decoder is None:
            self.generated.clear("No model yet: press Start, or load a checkpoint.")
            return
        z = self.latent.to_latent(x, y)
        self._decode_and_show(z, (x, y))
        index = self._example_at(x, y)
        if index is not None:  # a click on a test example: its true posterior against q(z|x)
            self._show_example(index)

    def _show_example(self, index: int) -> None:
        self.gallery.tabs.setCurrentWidget(self.inference.parentWidget().parentWidget())  # its scroll area
        self.inference.show_example(index)

    def _example_at(self, x: float, y: float, radius_px: float = 6.0) -> int | None:
        """The test-set index of the scatter point within ``radius_px`` screen pixels of (x, y), if any."""
        pts, snap = self.latent.points, self.latent.shown
        if pts is None or snap is None or not len(pts):
            return None
        pw, ph = self.latent.vb.viewPixelSize()  # plot units per pixel
        d2 = ((pts[:, 0] - x) / max(pw, 1e-12)) ** 2 + ((pts[:, 1] - y) / max(ph, 1e-12)) ** 2
        k = int(np.argmin(d2))
        return int(snap.indices[k]) if d2[k] <= radius_px**2 else None

    def _decode_and_show(self, z: np.ndarray, plane_xy) -> None:
        dec = self._decoder()
        if dec is None or len(z) != dec.latent_dim:
            return
        img = dec.decode(z[None])[0]  # (C, H, W)
        self._picked_z = np.asarray(z, np.float32)
        self.generated.show_image(img, self._picked_z, plane_xy, dec.step)
        if not self.act_export_generated.isEnabled():
            self.act_export_generated.setEnabled(True)

    # ------------------------------------------------------------------------------------------- checkpoints
    def save_checkpoint_dialog(self) -> None:
        path = self.ask_save_path("Save checkpoint", CHECKPOINT_FILTER, "vae.pt")
        if path:
            self.save_checkpoint(path)

    def save_checkpoint(self, path: str) -> None:
        try:
            if self.source == "run" and self.session.run is not None:
                self.session.save_checkpoint(path)
                if self.session.is_active():
                    self.statusBar().showMessage(f"Saving a checkpoint to {path}…", 4000)
            elif self.source == "checkpoint" and self.loaded_checkpoint is not None:
                ck = self.loaded_checkpoint
                save_checkpoint(path, model_config=ck.model_config, train_config=ck.train_config,
                                model_state=ck.model_state, optimizer_state=ck.optimizer_state, step=ck.step,
                                epoch=ck.epoch, batch=ck.batch, history=ck.history, dataset=ck.dataset,
                                noise_rng=ck.noise_rng)
                self.statusBar().showMessage(f"Checkpoint saved: {path}", 8000)
        except (OSError, RuntimeError) as e:  # WriteError names the file; training (if any) goes on
            text = str(e) if isinstance(e, WriteError) else f"{display_name(path)}: {getattr(e, 'strerror', None) or e}"
            self.show_error("Could not save the checkpoint", text)

    def load_checkpoint_dialog(self) -> None:
        path = self.ask_open_path("Load checkpoint", CHECKPOINT_FILTER)
        if path:
            self.settings.setValue("ui/last_file_dir", str(Path(path).parent))
            self.load_checkpoint(path)

    def load_checkpoint(self, path: str) -> None:
        """Read the file on a background thread; on success restore settings, curves, decoder and scatter."""
        if self.session.is_active():
            return
        ds = self.dataset
        n = self.settings_panel.train_config().latent_examples

        def work():
            ck = load_checkpoint(path)
            snap = snapshot_from_state(ck.model_config, ck.model_state, ck.step)
            lat = None
            if ds is not None and tuple(ds.image_shape) == tuple(ck.model_config.image_shape):
                lat = latent_snapshot(SnapshotModel(snap), ds, n, ck.step, ck.epoch)
            return ck, snap, lat

        self.statusBar().showMessage(f"Loading {Path(path).name}…")
        QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        task = BackgroundTask(work, lambda r, e: self._on_checkpoint_loaded(r, e, path, ds), self, "checkpointLoader")
        self._tasks.append(task)
        self.act_load_ckpt.setEnabled(False)

    def _on_checkpoint_loaded(self, result, err, path: str, ds) -> None:
        QApplication.restoreOverrideCursor()
        self._tasks = [t for t in self._tasks if t.is_running()]
        if err is not None:
            msg = str(err) if isinstance(err, CheckpointError) else f"{display_name(path)}: {type(err).__name__}: {err}"
            self.statusBar().showMessage("The checkpoint could not be loaded.", 8000)
            self.show_error("Could not load the checkpoint", msg)
            self._update_actions()
            return
        ck, snap, lat = result
        self.loaded_checkpoint = ck
        self.source = "checkpoint"
        self.history = ck.history
        self.settings_panel.set_configs(ck.model_config, ck.train_config)
        self.curves.set_history(ck.history)
        self.curves.set_total_steps(None)
        self.curves.refresh()
        self.latent.set_latent_dim(ck.model_config.latent_dim)
        self.latent.clear()
        self.current_decoder = snap
        self.gallery.set_model(None)
        self._picked_z = None
        self.generated.clear("Click or drag in the latent plot to decode a point.")
        self.current_latent = lat if ds is self.dataset else None
        if self.current_latent is not None:
            self.latent.set_snapshot(lat)
            self.latent.refresh(force=True)
        elif self.dataset is not None:
            self._encode_latents_for(self.dataset)
        steps = ck.step
        self.progress.setFormat(f"checkpoint · epoch {ck.epoch} · step {steps:,}")
        self.state_label.setText("Checkpoint loaded")
        name = ck.dataset.get("name", "?")
        note = ""
        if self.dataset is None or ck.dataset.get("fingerprint") != self.dataset.fingerprint():
            note = f" It was trained on {name}: open that dataset to continue training it or see its latent space."
        self.statusBar().showMessage(f"Loaded {Path(path).name}: step {steps:,}, {ck.epoch} epochs.{note}", 12000)
        self._update_actions()

    # ------------------------------------------------------------------------------------------- exports
    def export_generated_dialog(self) -> None:
        if self.generated.image is None:
            return
        path = self.ask_save_path("Export generated image", "PNG images (*.png)", "generated.png")
        if path:
            self._export(lambda: save_png(path, self.generated.image), path)

    def export_grid_dialog(self) -> None:
        img = self.gallery.current_image()
        if img is None:
            return
        path = self.ask_save_path("Export image grid", "PNG images (*.png)", f"{self.gallery.current_kind()}.png")
        if path:
            self._export(lambda: save_png(path, img), path)

    def export_metrics_dialog(self) -> None:
        if self.history is None:
            return
        path = self.ask_save_path("Export metrics", "CSV files (*.csv)", "metrics.csv")
        if path:
            text = self.history.to_csv()
            self._export(lambda: atomic_write(path, lambda f: f.write(text.encode("utf-8"))), path)

    def export_latents_dialog(self) -> None:
        if self.current_latent is None:
            return
        path = self.ask_save_path("Export latent codes (TensorBoard projector)", "TSV files (*.tsv)", "latents.tsv")
        if path:
            self._export(lambda: self.export_latents(path), path)

    def export_latents(self, path: str) -> tuple[str, str]:
        """Two files, as the TensorBoard projector reads them: ``path`` holds one tab-separated vector per line
        (no header); ``<stem>_metadata.tsv`` beside it holds each point's label (header ``label\\tclass``)."""
        lat = self.current_latent
        p = Path(path)
        meta = p.with_name(p.stem + "_metadata.tsv")
        vec_text = "".join("\t".join(f"{v:.6g}" for v in row) + "\n" for row in lat.means.tolist())
        names = self.dataset.class_names if self.dataset is not None else None
        if lat.labels is None:
            meta_text = "".join(f"{int(i)}\n" for i in lat.indices)  # one column: no header (projector rule)
        else:
            meta_text = "label\tclass\n" + "".join(
                f"{int(y)}\t{names[int(y)] if names and int(y) < len(names) else int(y)}\n" for y in lat.labels)
        atomic_write(p, lambda f: f.write(vec_text.encode("utf-8")))
        atomic_write(meta, lambda f: f.write(meta_text.encode("utf-8")))
        return str(p), str(meta)

    def _export(self, fn, path: str) -> None:
        try:
            fn()
        except OSError as e:
            self.show_error("Export failed", str(e) if isinstance(e, WriteError) else f"{display_name(path)}: {e.strerror or e}")
            return
        self.statusBar().showMessage(f"Exported {path}", 6000)

    # ------------------------------------------------------------------------------------------- closing
    def _forget_task(self, task) -> None:
        self._tasks = [t for t in self._tasks if t is not task and t.is_running()]

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        save_path = None
        if self.session.is_active():
            choice = self.ask_save_before_close()
            if choice == "cancel":
                event.ignore()
                return
            if choice == "save":
                save_path = self.ask_save_path("Save checkpoint before closing", CHECKPOINT_FILTER, "vae.pt")
                if not save_path:
                    event.ignore()
                    return
        self._closing = True
        self.timer.stop()
        self.explorer.stop_fit()
        self.inference.shutdown()
        # the engine stops within a fraction of a second, even inside a long IWAE evaluation; the wait is bounded
        # all the same (a thread still running is kept alive by the session, never destroyed while it runs)
        stopped = self.session.close(CLOSE_WAIT_MS)
        if save_path and self.session.run is not None and stopped:
            try:
                self.session.run.save(save_path)  # the worker has ended: saving on this thread is allowed
            except (OSError, RuntimeError) as e:
                QMessageBox.critical(self, "Could not save the checkpoint", str(e))
        elif save_path:
            QMessageBox.critical(self, "Could not save the checkpoint",
                                 f"{display_name(save_path)}: the training thread did not stop in time to save it.")
        for t in self._tasks:
            t.cancelled = True
            t.wait(CLOSE_WAIT_MS)
        self._tasks = []
        if QApplication.overrideCursor() is not None and self._loading_dataset is not None:
            QApplication.restoreOverrideCursor()
        self.settings.setValue("ui/geometry", self.saveGeometry())
        self.settings.sync()
        for box in list(self.dialogs):
            box.close()
        self.statusBar().clearMessage()  # a timed status message keeps a QTimer running: stop it with the window
        super().closeEvent(event)


def _fmt_seconds(s: float) -> str:
    if not np.isfinite(s) or s < 0:
        return "—"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


__all__ = ["MainWindow", "DatasetFileDialog", "default_settings"]
