"""File → Save checkpoint / Load checkpoint. Saving a running model is done by the worker between two steps;
loading reads and checks the file in a gui.workers.Worker, then makes it the session state's current model."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication

from engine.checkpoint import CheckpointError, load_checkpoint, write_checkpoint
from engine.files import WriteError, display_name, quote
from engine.history import MetricHistory
from engine.messages import RunStatus
from engine.snapshot import latent_snapshot, snapshot_model, snapshot_from_state
from gui.dialogs import Dialogs
from gui.workers import Worker

CHECKPOINT_FILTER = "ELBO Studio checkpoints (*.pt);;All files (*)"


class CheckpointActions(QObject):
    """Saves and loads the model of ``state``: a run's through ``session`` (gui/training_worker.py), whose trained
    model ``training`` (gui/run_actions.py) describes; a loaded file's configs go to ``settings_panel``, what
    happened to ``status``; questions and errors through ``dialogs``; ``settings`` remembers the last folder."""

    busy_changed = Signal()  # a load started or ended
    loaded = Signal()  # a checkpoint became the current model: every view may redraw at once

    def __init__(self, state, session, training, settings_panel, status, dialogs: Dialogs, settings, parent=None):
        super().__init__(parent)
        self.state, self.session, self.training = state, session, training
        self.settings_panel, self.status, self.dialogs, self.settings = settings_panel, status, dialogs, settings
        self.loader: Worker | None = None
        self.saved: tuple[int, int] | None = None  # (model id, step) of the newest checkpoint file of the model
        session.saved.connect(lambda m: self._note_saved(m.step))

    def _note_saved(self, step: int) -> None:
        self.saved = (self.state.identity().model, step)

    def unsaved(self) -> str | None:
        """The description of the model on show when it holds training that no checkpoint file holds (a finished,
        stopped or continued run not saved since its last step), else None."""
        ck, described = self.training.trained_model()
        if described is None:
            return None
        step = self.session.run.step if self.state.source == "run" else ck.step
        model = self.state.identity().model
        if self.saved is not None and self.saved[0] == model and self.saved[1] >= step:
            return None
        return described

    def can_save(self) -> bool:
        st = self.state
        return (st.source == "run" and self.session.run is not None) or (
            st.source == "checkpoint" and st.checkpoint is not None
        )

    def may_replace_model(self, ask) -> bool:
        """Before the trained model on show is replaced or closed: ``ask(description)`` answers 'save', 'discard'
        or 'cancel'; True when it may go (saved first if asked to)."""
        ck, described = self.training.trained_model()
        if ck is None:
            return True
        choice = ask(described)
        if choice == "save":
            path = self.dialogs.ask_save_path("Save checkpoint", CHECKPOINT_FILTER, "vae.pt")
            if not path:
                return False
            self.save(path)
            return True
        return choice == "discard"

    def may_close(self) -> bool:
        """Closing the window with a finished, stopped or continued model whose training no checkpoint file holds:
        asks Save / Discard / Cancel. True when the window may close (saved first if asked to, and the save
        worked)."""
        described = self.unsaved()
        if described is None:
            return True
        choice = self.dialogs.ask_save_model_before_close(described)
        if choice == "save":
            path = self.dialogs.ask_save_path(
                "Save checkpoint before closing", "ELBO Studio checkpoints (*.pt)", "vae.pt"
            )
            return bool(path) and self.save(path)
        return choice == "discard"

    # -- save --------------------------------------------------------------------------------------------------
    def save_dialog(self) -> None:
        path = self.dialogs.ask_save_path("Save checkpoint", CHECKPOINT_FILTER, "vae.pt")
        if path:
            self.save(path)

    def save(self, path: str) -> bool:
        """Write the model on show to ``path`` (by the worker between two steps while it trains). False, with an
        error shown, when the file could not be written."""
        st, session = self.state, self.session
        try:
            if st.source == "run" and session.run is not None:
                session.save_checkpoint(path)
                if session.is_active():
                    self.status.message(f"Saving a checkpoint to {quote(path)}…", 4000)
                else:
                    self._note_saved(session.run.step)
                    self.status.message(f"Checkpoint saved: {quote(path)}", 8000)
            elif st.source == "checkpoint" and st.checkpoint is not None:
                write_checkpoint(path, st.checkpoint)
                self._note_saved(st.checkpoint.step)
                self.status.message(f"Checkpoint saved: {quote(path)}", 8000)
        except (OSError, RuntimeError) as e:  # WriteError names the file; training (if any) goes on
            text = str(e) if isinstance(e, WriteError) else f"{display_name(path)}: {getattr(e, 'strerror', None) or e}"
            self.dialogs.show_error("Could not save the checkpoint", text)
            return False
        return True

    # -- load --------------------------------------------------------------------------------------------------
    def load_dialog(self) -> None:
        path = self.dialogs.ask_open_path("Load checkpoint", CHECKPOINT_FILTER)
        if path:
            self.settings.setValue("ui/last_file_dir", str(Path(path).parent))
            self.load(path)

    def busy(self) -> bool:
        return self.loader is not None

    def load(self, path: str) -> None:
        """Read the file off the GUI thread; on success it becomes the current model (settings, curves, weights,
        and the scatter when it fits the open dataset)."""
        if self.session.is_active() or self.loader is not None:
            return
        ds = self.state.dataset
        n = self.settings_panel.train_config().latent_examples
        misfit = self.state.misfit  # reads only its arguments: safe on the worker thread
        data_token = self.state.identity().dataset

        def job():  # worker thread
            ck = load_checkpoint(path)
            snap = snapshot_from_state(ck.model_config, ck.model_state, ck.step)
            lat = None
            if ds is not None and misfit(ck.model_config, ds) is None:
                lat = latent_snapshot(snapshot_model(snap), ds, n, ck.step, ck.epoch)
            return ck, snap, lat

        self.status.message(f"Loading {display_name(path)}…")
        QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        self.loader = Worker(
            job,
            on_result=lambda r: self._on_loaded(r, path, data_token),
            on_error=lambda e, _tb: self._on_failed(e, path),
            parent=self,
            name="checkpointLoader",
        )
        self.busy_changed.emit()

    def _finish(self) -> None:
        QApplication.restoreOverrideCursor()
        self.loader = None
        self.busy_changed.emit()

    def _on_failed(self, err: BaseException, path: str) -> None:
        self._finish()
        msg = str(err) if isinstance(err, CheckpointError) else f"{display_name(path)}: {type(err).__name__}: {err}"
        self.status.message("The checkpoint could not be loaded.", 8000)
        self.dialogs.show_error("Could not load the checkpoint", msg)

    def _on_loaded(self, result, path: str, data_token: int) -> None:
        self._finish()
        ck, snap, lat = result
        st = self.state
        if not self.may_replace_model(lambda described: self.dialogs.ask_replace_model(described, Path(path).name)):
            self.status.message(f"{display_name(path)} was not loaded: the current model is kept.", 8000)
            return
        self.settings_panel.set_configs(ck.model_config, ck.train_config)
        # the window's curves grow when it continues: a copy, so the checkpoint stays as read
        st.new_model(
            ck.model_config, "checkpoint", history=MetricHistory.from_state(ck.history.to_state()), checkpoint=ck
        )
        st.set_status(RunStatus.LOADED)
        self._note_saved(ck.step)  # the file holds all of it
        st.set_snapshot(snap)
        if lat is not None and st.identity().dataset == data_token:
            st.set_latent(lat)
        else:
            self.training.encode_latents()
        self.status.checkpoint_loaded(ck)
        name = ck.dataset.get("name", "?")
        note = ""
        if st.dataset is None or ck.dataset.get("fingerprint") != st.dataset.fingerprint():
            note = f" It was trained on {name}: open that dataset to continue training it or see its latent space."
        self.status.message(f"Loaded {display_name(path)}: step {ck.step:,}, {ck.epoch} epochs.{note}", 12000)
        self.loaded.emit()

    def shutdown(self) -> None:
        if self.loader is not None:
            self.loader.cancel()
            self.loader.wait(3000)
            self._finish()
