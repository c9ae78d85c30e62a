"""Start / Pause / Stop, and the training session's messages turned into session-state changes.

Start with a trained model present (a stopped or finished run, a loaded checkpoint) asks first: continue training
it (weights, optimizer state and curves kept), start a new model, or cancel. Nothing trained is replaced without
that question."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from engine.preflight import check_run, few_steps_hint
from engine.config import ConfigError
from engine.files import quote
from engine.messages import RunStatus
from engine.snapshot import latent_snapshot, snapshot_model
from gui.dialogs import Dialogs
from gui.panels.settings import LABELS
from gui.workers import Worker


class RunActions(QObject):
    """Start / Pause / Stop of ``session`` (gui/training_worker.py) with ``settings``' configs; its messages go to
    ``state`` and ``status``; errors and the Start question go through ``dialogs`` (gui/dialogs.py)."""

    at_rest = Signal()  # the run paused, stopped, finished or failed: every view may redraw at once

    def __init__(self, state, session, settings, status, dialogs: Dialogs, parent: QObject | None = None):
        super().__init__(parent)
        self.state, self.session, self.settings, self.status, self.dialogs = state, session, settings, status, dialogs
        self.closed = False  # the window closed: nothing starts any more
        self.evaluating = False  # the worker is in its end-of-epoch evaluation (no background redraws then)
        self.last_chunk = None  # newest MetricsChunk not yet shown in the status bar
        self._encoder: Worker | None = None
        s = self.session
        s.started.connect(status.run_started)
        s.compiled.connect(status.show_step_kind)
        s.metrics.connect(self._on_metrics)
        s.epoch.connect(self._on_epoch)
        s.latent.connect(self.state.set_latent)
        s.decoder.connect(self.state.set_snapshot)
        s.state.connect(self._on_state)
        s.error.connect(self._on_worker_error)
        s.saved.connect(lambda m: status.message(f"Checkpoint saved: {quote(m.path)} (step {m.step:,})", 8000))
        s.finished.connect(self.state.run_ended)
        settings.changed.connect(self.update_note)
        self.state.dataset_changed.connect(lambda _ds: self.update_note())

    def update_note(self) -> None:
        """The settings panel's advice for the current dataset and settings (too few steps to learn much)."""
        ds, tcfg = self.state.dataset, self.settings.train_config()
        n = 0 if ds is None else len(ds.x_train)
        self.settings.show_note(few_steps_hint(n, tcfg.batch_size, tcfg.epochs))

    # -- what Start would continue -----------------------------------------------------------------------------
    def trained_model(self):
        """(checkpoint to continue from, description) of the model on show, or (None, None) when there is none."""
        st = self.state
        if st.source == "run" and self.session.run is not None and self.session.run.step > 0:
            run = self.session.run
            return (
                self.session.continuation(),
                f"The current model has trained {run.step:,} steps ({run.epoch} epochs).",
            )
        if st.source == "checkpoint" and st.checkpoint is not None:
            ck = st.checkpoint
            return ck, f"The loaded checkpoint has trained {ck.step:,} steps ({ck.epoch} epochs)."
        return None, None

    @staticmethod
    def why_not_continue(ck, mcfg, tcfg, ds) -> str | None:
        """Why ``ck`` cannot continue with these settings and data (None: it can): another dataset first (the image
        size and the classes come from it), then the settings that differ, by name."""
        if ck.dataset.get("fingerprint") != ds.fingerprint():
            return (
                f"It was trained on another dataset ({ck.dataset.get('name', '?')}), not {ds.name}: open that "
                "dataset to continue it."
            )
        if ck.model_config != mcfg:
            a, b = ck.model_config, mcfg
            names = {**LABELS, "n_classes": "Classes (Condition on label)", "image_shape": "Image size"}
            diff = [
                f"{names.get(f, f)} {getattr(a, f)} in the checkpoint, {getattr(b, f)} here"
                for f in a.to_dict()
                if getattr(a, f) != getattr(b, f)
            ]
            return f"Its model settings differ ({'; '.join(diff)}): change them back to continue."
        if ck.epoch >= tcfg.epochs:
            return f"It has done its {ck.epoch} epochs: raise Epochs above {ck.epoch} to continue it."
        return None

    # -- control -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        sp = self.settings
        if self.session.is_active() or self.closed:
            return
        ds = self.state.dataset
        if ds is None:
            self.dialogs.show_error("No dataset", "Open a dataset first (File → Open dataset…).")
            return
        try:
            if (why := sp.refusal()) is not None:
                raise ConfigError(why)
            mcfg = sp.model_config(ds.image_shape, ds.n_classes)
            tcfg = sp.train_config()
            check_run(mcfg, tcfg, ds.image_shape, len(ds.x_train), len(ds.x_test), label_classes=ds.n_classes)
        except ConfigError as e:  # shown where the settings are and in the status bar; nothing starts
            text = str(e)
            text = f"Cannot start: {text[:1].upper()}{text[1:]}."
            sp.refuse(text)
            self.status.message(text, 10_000)
            return
        sp.show_problem(None)
        ck, described = self.trained_model()
        choice = "new"
        if ck is not None:
            choice = self.dialogs.ask_start_choice(described, self.why_not_continue(ck, mcfg, tcfg, ds))
            if choice == "cancel":
                return
        self.cancel_encoding()
        if choice == "continue":
            self.state.continue_model("run")
            self.session.start(ds, mcfg, tcfg, ck)
            note = f"Continuing the model from step {ck.step:,}."
        else:
            self.state.new_model(mcfg, "run")
            self.session.start(ds, mcfg, tcfg)
            note = "Starting a new model…"
        self.last_chunk = None
        self.state.set_status(RunStatus.STARTING)
        self.status.run_starting(tcfg.batch_size)
        self.status.message(note, 6000)

    def toggle_pause(self) -> None:
        st = self.state.status
        if st is RunStatus.RUNNING:
            self.session.pause()
        elif st.halted:
            if (why := self.settings.refusal()) is not None:
                self.settings.show_problem(f"Cannot resume: {why}.")
                return
            before = self.session.train_config
            tcfg = self.settings.train_config()
            try:
                self.session.resume(tcfg)
            except ConfigError as e:
                self.settings.show_problem(f"Cannot resume: {e}.")
                return
            self.settings.show_problem(None)
            if before is not None and (before.lr, before.precision) != (tcfg.lr, tcfg.precision):
                self.status.message(f"Resuming with learning rate {tcfg.lr:g}, {tcfg.precision}.", 8000)

    def stop(self) -> None:
        if self.session.is_active():
            self.session.stop()
            self.status.stopping()

    # -- session messages --------------------------------------------------------------------------------------
    def _on_metrics(self, chunk) -> None:
        # the epoch's last step: the worker now evaluates on the test set until its EpochSummary arrives (a chunk
        # that comes after the run's end, whose evaluation is over, must not hold the next run's redraws)
        end_of_epoch = chunk.steps_per_epoch > 0 and chunk.step > 0 and chunk.step % chunk.steps_per_epoch == 0
        self.evaluating = end_of_epoch and self.state.status is RunStatus.RUNNING
        self.state.add_chunk(chunk)
        self.last_chunk = chunk
        self.status.add_rate(chunk.samples_per_s)

    def _on_epoch(self, summary) -> None:
        self.evaluating = False
        self.state.add_epoch(summary)

    def _on_state(self, msg) -> None:
        self.evaluating = False
        self.state.set_status(msg.state)
        if msg.text:
            self.status.message(msg.text, 8000)
        if msg.state is RunStatus.DIVERGED:
            self.dialogs.show_error(
                "Training diverged",
                f"{msg.text} The learning rate and the precision can be changed in Settings now; Resume uses them.",
            )
        if msg.state in (RunStatus.STOPPED, RunStatus.PAUSED, RunStatus.DIVERGED):
            # the run sent the weights a save would write just before: the scatter follows them (the rest of the
            # views redraw from the new weights on their own)
            lat, snap = self.state.latent, self.state.snapshot
            if snap is not None and (lat is None or lat.step != snap.step):
                self.encode_latents()
        if self.state.status.at_rest:
            self.at_rest.emit()

    def _on_worker_error(self, msg) -> None:
        if not msg.fatal:  # the run goes on (a checkpoint that could not be saved)
            self.status.message(msg.text, 10000)
            self.dialogs.show_error("Could not save the checkpoint", msg.text)
            return
        self.state.set_status(RunStatus.ERROR)
        self.dialogs.show_error("Training error", msg.text, msg.detail)

    # -- the scatter of a model that is not training -----------------------------------------------------------
    def encode_latents(self) -> None:
        """Posterior means of the test subset under the current model (a loaded checkpoint, a finished run on a
        newly opened dataset), computed off the GUI thread; dropped if the model or dataset changes meanwhile."""
        st = self.state
        snap, ds = st.snapshot, st.dataset
        if snap is None or ds is None or not st.model_fits_dataset():
            return
        if self.state.status in (RunStatus.STARTING, RunStatus.RUNNING):
            return  # the run sends its own scatter
        n = self.settings.train_config().latent_examples
        token = st.identity()
        self.cancel_encoding()
        self._encoder = Worker(
            lambda: latent_snapshot(snapshot_model(snap), ds, n, snap.step),
            on_result=lambda lat: (st.latent is None or st.latent.step <= lat.step) and st.set_latent(lat, token),
            parent=self,
            name="latentEncoder",
        )
        self._encoder.done.connect(self._on_encoder_done)

    def _on_encoder_done(self) -> None:
        if self._encoder is not None and not self._encoder.is_running():
            self._encoder = None

    def shutdown(self) -> None:
        """The window closes: nothing starts any more, and a scatter being encoded is dropped."""
        self.closed = True
        self.cancel_encoding()

    def cancel_encoding(self) -> None:
        if self._encoder is not None:
            self._encoder.cancel()
            self._encoder.wait(3000)
            self._encoder = None
