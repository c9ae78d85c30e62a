"""The status bar's permanent widgets: run state, progress, samples/s, ETA and the device. One object owns them;
it follows the run status of the window's state (``StudioState.status``), and the window tells it what happened
(a run started, a metrics chunk, a checkpoint loaded); it decides what to show."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from engine.messages import RunStatus

STATE_TEXT = {
    RunStatus.STARTING: "Starting",
    RunStatus.RUNNING: "Running",
    RunStatus.PAUSED: "Paused",
    RunStatus.STOPPED: "Stopped",
    RunStatus.FINISHED: "Finished",
    RunStatus.DIVERGED: "Diverged (paused)",
    RunStatus.ERROR: "Error",
    RunStatus.LOADED: "Checkpoint loaded",
    RunStatus.IDLE: "Idle",
}
COMPILING = "eager · compiling…"  # the step label while the run steps eagerly and its compiled step is being built


def message_room(bar: QStatusBar) -> int:
    """Pixels the message area of ``bar`` has beside its permanent widgets (each at least as wide as its text)."""
    widgets = [w for w in bar.findChildren(QWidget) if w.parent() is bar and w.isVisible()]
    if not widgets:
        return max(80, bar.width() - 12)
    left = min(w.x() for w in widgets)  # where the permanent widgets begin, as laid out now
    growing = sum(max(0, w.sizeHint().width() - w.width()) for w in widgets)  # a new text not laid out yet
    return max(80, left - growing - 8)  # the message starts a few pixels in


def fmt_seconds(s: float) -> str:
    if not np.isfinite(s) or s < 0:
        return "—"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class StatusBarView:
    """Builds the widgets on ``status_bar`` (a QStatusBar) and keeps them current."""

    def __init__(self, status_bar: QStatusBar, state):
        self.bar = status_bar
        status_bar.setObjectName("statusBar")
        self.progress = QProgressBar()
        self.progress.setObjectName("progressBar")
        self.progress.setAccessibleName("Training progress")
        self.progress.setMinimumWidth(190)  # "epoch 10/10 · step 4,690/4,690" whole
        self.progress.setMaximumWidth(230)  # and a 1024-px window's messages their room
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("not started")
        self.state_label = QLabel("Idle")
        self.rate_label = QLabel("— samples/s")
        self.eta_label = QLabel("ETA —")
        self.device_label = QLabel("device —")
        self.step_label = QLabel("")  # which training step runs: eager, compiling, compiled
        for w, name, tip in (
            (self.state_label, "stateLabel", "Run state"),
            (
                self.rate_label,
                "samplesPerSecondLabel",
                "Training throughput (training steps only) and the CPU "
                "threads the steps use now (Settings → CPU threads)",
            ),
            (self.eta_label, "etaLabel", "Time left at the current speed (epoch-end evaluation not included)"),
            (self.device_label, "deviceLabel", "Device the model trains on"),
            (self.step_label, "stepKindLabel", "Which training step runs (Settings → Compile)"),
        ):
            w.setObjectName(name)
            w.setToolTip(tip)
        for w in (self.state_label, self.progress, self.rate_label, self.eta_label, self.step_label, self.device_label):
            status_bar.addPermanentWidget(w)
        status_bar.messageChanged.connect(self._on_message_changed)
        self._rate: float | None = None  # smoothed samples/s
        self._batch_size = 1
        state.status_changed.connect(self._on_status)  # a gui.state.StudioState: the run status it shows
        self._on_status(state.status)

    def reset(self) -> None:
        """No model: nothing to report."""
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("not started")
        self.show_device("device —", "Device the model trains on")
        self.show_step_kind(None)

    def message(self, text: str, ms: int = 0) -> None:
        """Show ``text`` in the message area for ``ms`` ms (0: until the next), cut with "…" to the room the
        permanent widgets leave (about 270 px in a 1024-px window); the whole line is the bar's tooltip meanwhile."""
        room = message_room(self.bar)
        fm = self.bar.fontMetrics()
        shown = text if fm.horizontalAdvance(text) <= room else fm.elidedText(text, Qt.TextElideMode.ElideRight, room)
        self.bar.setToolTip(text if shown != text else "")
        self.bar.showMessage(shown, ms)

    def _on_message_changed(self, text: str) -> None:
        if not text:  # the message timed out or was cleared: so is its whole line
            self.bar.setToolTip("")

    # -- the run ---------------------------------------------------------------------------------------------
    def run_starting(self, batch_size: int) -> None:
        self._rate = None
        self._batch_size = max(1, batch_size)
        self.progress.setFormat("starting…")

    def run_started(self, msg) -> None:
        """A RunStarted message: the device and the run's length."""
        self.show_device(
            f"device {msg.device}" + (f" · {msg.precision}" if msg.precision != "fp32" else ""),
            f"{msg.device}, {msg.precision}, {msg.n_params:,} parameters"
            + (f"; CPU threads: {msg.threads}" if msg.threads else "")
            + (f"; {msg.data_placement}" if msg.data_placement else ""),
        )
        self.show_progress(msg.start_step, msg.start_epoch, msg.total_steps, msg.steps_per_epoch)

    def show_step_kind(self, msg) -> None:
        """A CompileStatus: 'eager step', 'compiling…' or 'compiled step', the full line (and any reason the step
        could not be compiled) in the tooltip and, when it changes, in the message area once."""
        if msg is None:
            self.step_label.setText("")
            self.step_label.setToolTip("Which training step runs (Settings → Compile)")
            return
        short = {"compiling": COMPILING, "compiled": "compiled step"}.get(msg.state, "eager step")
        self.step_label.setText(short)
        self.step_label.setToolTip(msg.text)
        if msg.state != "compiling" and msg.text != "compile off: eager step":
            self.message(f"Training step: {msg.text}", 10000)

    def show_device(self, text: str, tip: str) -> None:
        """The one place that says where (and on how many threads) the model trains."""
        self.device_label.setText(text)
        self.device_label.setToolTip(tip)

    def add_rate(self, samples_per_s: float) -> None:
        if samples_per_s > 0:
            r = self._rate
            self._rate = samples_per_s if r is None else 0.8 * r + 0.2 * samples_per_s

    def show_progress(self, step: int, epoch: int, total: int, spe: int) -> None:
        epochs = max(1, total // max(1, spe))
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(min(step, total))
        self.progress.setFormat(f"epoch {min(epoch + 1, epochs)}/{epochs} · step {step:,}/{total:,}")

    def show_chunk(self, c) -> None:
        """Progress, throughput and ETA from the newest MetricsChunk (a running run only)."""
        self.show_progress(c.step, c.epoch, c.total_steps, c.steps_per_epoch)
        if self._rate:
            threads = f" · {c.threads} CPU thread{'s' * (c.threads != 1)}" if c.threads else ""
            self.rate_label.setText(f"{self._rate:,.0f} samples/s{threads}")
            self.eta_label.setText(f"ETA {fmt_seconds((c.total_steps - c.step) * self._batch_size / self._rate)}")

    def _on_status(self, status: RunStatus) -> None:
        self.state_label.setText(STATE_TEXT[status])
        if not status.moving:  # no throughput and no time left when nothing trains
            self.rate_label.setText("— samples/s")
            self.eta_label.setText("ETA —")
        if status in (RunStatus.STOPPED, RunStatus.FINISHED, RunStatus.ERROR) and self.step_label.text() == COMPILING:
            # the run ended before its compiled step was ready: it ran eagerly, and the compile goes on for the next
            self.step_label.setText("eager step")
            self.step_label.setToolTip(
                "This run ended on the eager step before its compiled step was ready; compiling goes on in the "
                "background, so a later run of this shape can start compiled (Settings → Compile)"
            )

    def stopping(self) -> None:
        self.state_label.setText("Stopping…")

    def checkpoint_loaded(self, ck) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat(f"epoch {ck.epoch} · step {ck.step:,}")  # the state label says "Checkpoint loaded"
