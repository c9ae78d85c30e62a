"""The main window: builds the panels around one session state (gui/state.py) and wires signals.

What the window shows is owned by ``self.state``; the panels subscribe to it. Training (gui/run_actions.py),
datasets (gui/dataset_loading.py), checkpoints (gui/checkpoints.py), exports (gui/exports.py), the status bar
(gui/status_bar.py) and the layout (gui/layout.py) live in modules of their own. Drawing happens in one place,
``_tick`` (8 Hz), within a cap on the GUI thread's CPU while training runs (gui/draw_budget.py).

Every dialog goes through a method (``show_error``, ``ask_*``) that tests replace."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QStyle, QWidget

from engine.files import display_name, quote
from engine.messages import RunStatus
from engine.snapshot import every_class
from gui import dialogs, layout, style
from gui.checkpoints import CheckpointActions
from gui.dataset_dialog import DatasetFileDialog
from gui.dataset_loading import DatasetLoader
from gui.draw_budget import DrawBudget, RedrawJob, RedrawScheduler
from gui.exports import Exports
from gui.panels.curves import CurvesPanel
from gui.panels.dataset import DatasetPanel
from gui.panels.explorer import ExplorerPanel
from gui.panels.gallery import GalleryPanel
from gui.panels.generated import GeneratedPanel
from gui.panels.inference import InferencePanel
from gui.panels import latent as latent_panel
from gui.panels.inside import InsidePanel
from gui.panels.runs import RunsPanel
from gui.inside_actions import InsideActions, dropped_file
from gui.panels.latent import LatentPanel
from gui.panels.settings import SettingsPanel
from gui.lab2d.panel import Lab2DPanel
from gui.lazy_page import LazyPage
from gui.recent import RecentDatasets
from gui.training_worker import TrainingWorker
from gui.state import StudioState
from gui.status_bar import StatusBarView
from gui.run_actions import RunActions
from gui.startup import default_settings
from gui.workers import apply_thread_policy

APP_NAME = "ELBO Studio"
CLOSE_WAIT_MS = 3000  # the most closing the window waits for the training thread and for each background job
REFRESH_HZ = 8  # redraw passes a second; each draws at most one heavy item (see _tick)
# The GUI thread's CPU share while training (gui/draw_budget.py). benchmarks/gui_responsiveness.py, 2 cores: an
# uncapped 8 Hz window used 11-12% of a core and cost training 12-18% of its throughput; with this cap and the
# redraw periods below it uses about 5% and costs 6-10% (whole epochs, evaluation included).
DRAW_SHARE = 0.06
# A drag in the latent plot decodes at most once per frame (60 Hz): the first move at once, the newest of the
# moves within a frame when it ends, so decoding never queues up behind the mouse.
DECODE_INTERVAL_MS = 16


class MainWindow(QMainWindow, dialogs.DialogsMixin):
    dataset_changed = Signal(object)

    def __init__(self, settings: QSettings | None = None, dataset=None, load_default: bool = True, preloaded=None):
        super().__init__()
        style.configure_pyqtgraph()
        apply_thread_policy("gui")  # before any torch call on this thread
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP_NAME)
        self.settings = settings if settings is not None else default_settings()
        self.open_boxes: list[QMessageBox] = []  # error boxes on show (DialogsMixin.show_error), closed with it
        self.state = StudioState(self)
        self.session = TrainingWorker(self)
        self._status_at = 0.0  # when the status bar last showed progress

        from engine.devices import available_devices

        st = self.state
        self.dataset_panel = DatasetPanel(st)
        self.dataset_panel.set_load_options(
            self.settings.value("data/resolution", 0, type=int) or None,
            self.settings.value("data/channels", 0, type=int) or None,
        )
        self.settings_panel = SettingsPanel(self.settings, available_devices())
        self.curves = CurvesPanel(st)
        self.latent = LatentPanel(st)
        self.generated = GeneratedPanel(st)
        self.gallery = GalleryPanel(st)
        # built when their tab is first opened (gui/lazy_page.py)
        self.explorer_page = LazyPage(ExplorerPanel)
        self.inference = InferencePanel(st)
        self.inside = InsidePanel(st)
        self.runs = RunsPanel(st)
        self.lab2d_page = LazyPage(lambda: Lab2DPanel(show_error=lambda title, text: self.show_error(title, text)))
        self.status = StatusBarView(self.statusBar(), st)
        # the window's actions get what they act on; the window itself only as the dialogs (gui/dialogs.py)
        sp, session, status = self.settings_panel, self.session, self.status
        self.training = RunActions(st, session, sp, status, dialogs=self, parent=self)
        self.checkpoints = CheckpointActions(
            st, session, self.training, sp, status, dialogs=self, settings=self.settings, parent=self
        )
        self.exports = Exports(st, self.generated, self.gallery, status, dialogs=self, parent=self)
        self.loader = DatasetLoader(self)
        self.inside_actions = InsideActions(
            st, page=self.inside, runs=self.runs, latent=self.latent, gallery=self.gallery, settings_panel=sp,
            status=status, dialogs=self, show_page=self.show_page, parent=self,
        )  # fmt: skip
        self.setAcceptDrops(True)  # an image file dropped on the window is encoded
        self.window_actions = layout.build_actions(self)
        self.ui = layout.build_window(self, self.window_actions)
        self.ui.add_tab(self.lab2d_page, "2-D Lab")
        self.recent = RecentDatasets(
            self.ui.recent_menu, self.settings, self.open_dataset, self.window_actions.clear_recent
        )
        self._connect()

        self.draw_budget = DrawBudget(share=DRAW_SHARE)
        self.redraws = RedrawScheduler(
            [
                RedrawJob("scatter", self._draw_scatter, latent_panel.MIN_INTERVAL_S),
                RedrawJob("curves", self.curves.refresh, 1.5),
                RedrawJob("gallery", self._draw_gallery, 10.0),
                RedrawJob("generated", self._draw_generated, 1.0),
                RedrawJob("inside", self.inside.redraw, 1.0),
            ],
            self.draw_budget,
        )
        self.timer = QTimer(self)
        self.timer.setObjectName("refreshTimer")
        self.timer.setInterval(int(1000 / REFRESH_HZ))
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        self._decode_timer = QTimer(self)  # coalesces the decodes of a drag (DECODE_INTERVAL_MS)
        self._decode_timer.setObjectName("decodeTimer")
        self._decode_timer.setSingleShot(True)
        self._decode_timer.setInterval(DECODE_INTERVAL_MS)
        self._decode_timer.timeout.connect(self._on_decode_timer)
        self._decode_due = False
        self._decode_stale = False  # newer weights than the Generated image was decoded with, while training
        layout.restore_geometry(self, self.ui.splitters)
        self.update_actions()
        if dataset is not None:
            self.set_dataset(dataset)
        elif preloaded is not None:  # the default dataset, read while the start-up window was on screen
            self.loader.adopt_default(preloaded)
        elif load_default:
            self.loader.open_default(*self._load_options())

    @property
    def explorer(self) -> ExplorerPanel:
        """The VI explorer page's panel, built on first use."""
        return self.explorer_page.content()

    @property
    def lab2d(self) -> Lab2DPanel:
        """The 2-D Lab page's panel, built on first use."""
        return self.lab2d_page.content()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt name
        if dropped_file(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt name
        path = dropped_file(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.inside_actions.encode(path)

    def show_page(self, widget: QWidget) -> None:
        """Bring the page holding ``widget`` (e.g. ``self.inference``, ``self.explorer``) to the front."""
        self.ui.show_page(widget)

    def _connect(self) -> None:
        st = self.state
        st.dataset_changed.connect(self._on_dataset_changed)
        st.model_changed.connect(self._on_model_changed)
        st.snapshot_changed.connect(self._on_new_weights)
        st.example_changed.connect(self._on_example_changed)
        st.label_changed.connect(lambda _c: self._decode_picked())  # a conditional model's other class
        st.picked_changed.connect(lambda _z: self._request_decode())
        self.latent.latent_clicked.connect(self._on_latent_clicked)
        self.latent.view_changed.connect(self._on_view_changed)
        self.gallery.example_clicked.connect(st.select_example)
        # what the actions' enabled state depends on: the run status, the worker's thread, the data and model
        # on show, the loaders (and the grid tab on show, for its export)
        for sig in (st.status_changed, st.dataset_changed, st.latent_changed, self.gallery.tabs.currentChanged):
            sig.connect(lambda *_: self.update_actions())
        for sig in (st.model_changed, self.session.finished, self.loader.started, self.loader.finished):
            sig.connect(lambda *_: self.update_actions())
        self.checkpoints.busy_changed.connect(self.update_actions)
        self.training.at_rest.connect(self.draw_all)
        self.checkpoints.loaded.connect(self.draw_all)
        self.session.started.connect(lambda msg: self.curves.set_total_steps(msg.total_steps))
        self.loader.started.connect(self._on_loading)
        self.loader.loaded.connect(self._on_dataset_loaded)
        self.loader.failed.connect(self._on_dataset_failed)
        self.loader.finished.connect(self._on_loader_finished)
        self.loader.cancelled.connect(
            lambda: self.status.message("Loading cancelled; the previous dataset is still loaded.", 8000)
        )
        self.dataset_panel.load_options_changed.connect(self._on_load_options_changed)

    # -- dataset ----------------------------------------------------------------------------------------------
    def open_dataset_dialog(self) -> None:
        path = self.ask_dataset_path()
        if path:
            self.settings.setValue("ui/last_dataset_dir", str(Path(path).parent))
            self.open_dataset(path)

    def open_dataset(self, path: str) -> None:
        """Load ``path`` on a background thread; the current dataset stays until it succeeds."""
        if not self.session.is_active():
            self.loader.open_path(path, *self._load_options())

    def _load_options(self) -> tuple:
        """(image size, channels, LoadProgress) for the next load, from the dataset panel."""
        p = self.dataset_panel
        return p.resolution(), p.channels(), p.start_load()

    def _on_load_options_changed(self) -> None:
        """A new image size or colour choice: remembered, and the current dataset is loaded again with it."""
        res, ch = self.dataset_panel.resolution(), self.dataset_panel.channels()
        self.settings.setValue("data/resolution", res or 0)
        self.settings.setValue("data/channels", ch or 0)
        if self.session.is_active() or self.loader.busy():
            self.status.message("The new image size or colour applies to the next dataset you open.", 6000)
        else:
            self.loader.reload(*self._load_options())

    def _on_loading(self, text: str) -> None:
        self.dataset_panel.set_busy(text)
        self.status.message(text)
        QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)

    def _on_loader_finished(self) -> None:
        QApplication.restoreOverrideCursor()
        self.dataset_panel.set_busy(None)

    def _on_dataset_failed(self, text: str) -> None:
        self.status.message("The dataset could not be opened; the previous one is still loaded.", 8000)
        self.show_error("Could not open the dataset", text)

    def _on_dataset_loaded(self, ds, path) -> None:
        if not self.set_dataset(ds, from_loader=True):
            self.status.message(f"{quote(ds.name)} was not opened: the current model is kept.", 8000)
            return
        if path:
            self.recent.add(path)
        self.status.message(f"Loaded {ds.summary(quote(ds.name))}" + (f" ({ds.note})" if ds.note else ""), 6000)

    def set_dataset(self, ds, from_loader: bool = False) -> bool:
        """Make ``ds`` the current dataset. A model that does not fit its images is closed, after asking when it
        was trained. False when the user cancels. A new image size or colour reloads it only ``from_loader``."""
        if not from_loader:
            self.loader.forget()
        st = self.state
        fits = st.model_config is None or st.misfit(st.model_config, ds) is None
        if not fits:
            if not self.checkpoints.may_replace_model(lambda described: self.ask_close_model(described, ds.name)):
                return False
            st.new_model(None, None)
            st.set_status(RunStatus.IDLE)
        st.set_dataset(ds)
        return True

    def _on_dataset_changed(self, ds) -> None:
        self.setWindowTitle(ds.name)  # Qt adds " — ELBO Studio", the application's display name
        self.settings_panel.set_label_classes(ds.n_classes)
        self.training.encode_latents()  # the current model's scatter for the new test images
        self.dataset_changed.emit(ds)

    def _on_model_changed(self) -> None:
        self.training.last_chunk = None  # progress of the model that is gone
        if self.state.model_config is None:
            self.status.reset()

    # -- training (gui/run_actions.py) ---------------------------------------------------------------------------------
    def start_training(self) -> None:
        self.training.start()

    def toggle_pause(self) -> None:
        self.training.toggle_pause()

    def stop_training(self) -> None:
        self.training.stop()

    def update_actions(self) -> None:
        """Every action's enabled state, from the run status and what is loaded (connected to their signals)."""
        active = self.session.is_active()
        st = self.state.status
        loading = self.loader.busy()
        a = self.window_actions
        a.start.setEnabled(not active and self.state.dataset is not None and not loading)
        a.pause.setEnabled(active and (st is RunStatus.RUNNING or st.halted))
        paused = st.halted and active
        a.pause.setText("Resume" if paused else "Pause")
        a.pause.setIcon(
            self.style().standardIcon(
                QStyle.StandardPixmap.SP_MediaPlay if paused else QStyle.StandardPixmap.SP_MediaPause
            )
        )
        self.ui.pause_button.setAccessibleName(a.pause.text())
        a.stop.setEnabled(active)
        a.open.setEnabled(not active and not loading)
        self.ui.recent_menu.setEnabled(not active and not loading)
        a.load_checkpoint.setEnabled(not active and not self.checkpoints.busy())
        a.save_checkpoint.setEnabled(self.checkpoints.can_save())
        self.settings_panel.set_editable(not active, retunable=paused)
        self.exports.update(self.window_actions.exports)

    # -- drawing ----------------------------------------------------------------------------------------------
    def _tick(self) -> None:
        """The only place that redraws, at REFRESH_HZ. Each pass draws at most one thing (the scatter, the curves,
        or one image grid), so no event-loop pass is long; while training runs, the draws keep to their periods
        and a CPU budget (gui/draw_budget.py) so that painting costs the trainer little."""
        running = self.state.status is RunStatus.RUNNING
        if running and self.training.evaluating:
            return  # the end-of-epoch evaluation (~0.4 s on Fashion-MNIST) runs undisturbed; the EpochSummary ends it
        drew = self.redraws.tick(limited=running)
        now = time.monotonic()
        if drew is None and now - self._status_at < 1.0:
            return
        self._status_at = now
        c = self.training.last_chunk
        if c is not None:
            self.training.last_chunk = None
            if running:
                self.status.show_chunk(c)
            else:
                self.status.show_progress(c.step, c.epoch, c.total_steps, c.steps_per_epoch)
        self.exports.update(self.window_actions.exports)

    def draw_all(self) -> None:
        """Draw everything now (training paused or ended, a checkpoint loaded)."""
        self.curves.refresh()
        self.latent.refresh(force=True)
        self.latent.fit_view()  # while training the view had headroom; now a snug fit
        self._draw_generated()
        self.inside.redraw()

    def _draw_scatter(self) -> bool:
        return self.latent.refresh()

    def _on_new_weights(self, _snap) -> None:
        """The picked point decoded with newer weights: at once at rest, by a redraw pass while training (twice a
        second a snapshot model and a decode would cost the trainer outside the draw budget)."""
        if self.state.status is RunStatus.RUNNING:
            self._decode_stale = True
        else:
            self._decode_picked()

    def _draw_generated(self) -> bool:
        return self._decode_stale and self._decode_picked()

    def _draw_gallery(self) -> bool:
        if self.state.snapshot is None or not self.gallery.isVisible():
            return False
        return self.gallery.refresh()

    def _on_view_changed(self) -> None:
        d = self.latent.latent_dim or 2
        names = ("PC1", "PC2") if d > 2 else ("z₁", "z₂")
        self.gallery.set_view(self.latent.view_rect(), self.latent.points_to_latent, names)

    # -- clicks -----------------------------------------------------------------------------------------------
    def _on_latent_clicked(self, x: float, y: float) -> None:
        if self.state.snapshot is None:
            starting = self.state.status in ("starting", "running")
            self.generated.clear(
                "The model's first weights arrive in a moment: click again then."
                if starting
                else "No model yet: press Start, or load a checkpoint."
            )
            return
        self.state.pick(self.latent.to_latent(x, y))
        index = self.latent.example_at(x, y)
        if index is not None:  # a click on a test example selects it: its true posterior on its own tab
            self.state.select_example(index)

    def _on_example_changed(self, index) -> None:
        if index is not None:  # short enough for a 1024-px window's message area; the tab says more (d ≠ 2)
            self.status.message(f"Example #{index:,} → Posterior & gap", 6000)

    def _request_decode(self) -> None:
        """Decode a newly picked point: now, or at the end of this frame when a pick was decoded in it already."""
        if self._decode_timer.isActive():
            self._decode_due = True
            return
        self._decode_picked()
        self._decode_timer.start()

    def _on_decode_timer(self) -> None:
        if self._decode_due:
            self._decode_due = False
            self._decode_picked()
            self._decode_timer.start()

    def _decode_picked(self) -> bool:
        """The picked latent point decoded with the current weights and class, into the Generated panel. True when
        it decoded."""
        self._decode_stale = False
        z = self.state.picked
        model = None if z is None else self.state.model()  # no pick: no model built from the new weights
        if model is None or len(z) != model.latent_dim:
            return False
        img = model.decode(z[None], self.state.generation_label())[0]  # (C, H, W)
        row = every_class(model, z, self.generated.row_classes()) if model.n_classes else None
        self.generated.show_image(img, z, self.latent.to_plane(z), model.step, row)
        self.exports.update(self.window_actions.exports)
        return True

    # -- closing ----------------------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        save_path = None
        if self.session.is_active():
            choice = self.ask_save_before_close()
            if choice == "cancel":
                event.ignore()
                return
            if choice == "save":
                save_path = self.ask_save_path(
                    "Save checkpoint before closing", "ELBO Studio checkpoints (*.pt)", "vae.pt"
                )
                if not save_path:
                    event.ignore()
                    return
        elif not self.checkpoints.may_close():
            event.ignore()
            return
        self.training.shutdown()  # nothing starts any more
        self.timer.stop()
        self._decode_timer.stop()
        if self.explorer_page.is_built:
            self.explorer.stop_fit("stopped: the window closed", CLOSE_WAIT_MS)
        if self.lab2d_page.is_built:
            self.lab2d.shutdown()
        self.inference.shutdown()
        self.inside_actions.shutdown()
        self.checkpoints.shutdown()
        self.dataset_panel.cancel_load()  # a folder being decoded stops within a chunk
        if self.loader.cancel():
            QApplication.restoreOverrideCursor()
        # the engine stops within a fraction of a second, even inside a long IWAE evaluation; the wait is bounded
        # all the same (a worker still running is kept alive, never destroyed while it runs)
        stopped = self.session.close(CLOSE_WAIT_MS)
        if save_path and self.session.run is not None and stopped:
            try:
                self.session.run.save(save_path)  # the worker has ended: saving on this thread is allowed
            except (OSError, RuntimeError) as e:
                QMessageBox.critical(self, "Could not save the checkpoint", str(e))
        elif save_path:
            QMessageBox.critical(
                self,
                "Could not save the checkpoint",
                f"{display_name(save_path)}: the training thread did not stop in time to save it.",
            )
        layout.save_geometry(self, self.ui.splitters)
        self.settings.sync()
        for box in list(self.open_boxes):
            box.close()
        self.statusBar().clearMessage()  # a timed status message keeps a QTimer running: stop it with the window
        super().closeEvent(event)


__all__ = ["MainWindow", "DatasetFileDialog", "default_settings"]
