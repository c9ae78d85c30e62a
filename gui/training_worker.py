"""The training worker: iterates ``Trainer.run()`` in a ``gui.workers.Worker`` and re-emits each engine
message as a Qt signal on the GUI thread.

The run is built *inside* the worker thread (moving data to a GPU and creating the optimizer can take a
second), so ``start()`` returns at once. The GUI thread never waits on the engine except in ``close()``, which
stops the run and waits at most ``timeout_ms``. Messages still queued from an earlier run are dropped."""

from __future__ import annotations

import threading
import traceback

from PySide6.QtCore import QObject, QThread, Signal

from engine.checkpoint import Checkpoint, CheckpointError, checkpoint_of_run
from engine.config import ConfigError, ModelConfig, TrainConfig
from engine.messages import (
    CheckpointSaved,
    CompileStatus,
    WeightsSnapshot,
    EpochSummary,
    LatentSnapshot,
    MetricsChunk,
    RunStarted,
    StateChanged,
    WorkerError,
)
from gui.workers import Worker


class TrainingWorker(QObject):
    """Owns one training run at a time and its worker. Signals carry the engine's plain messages unchanged."""

    metrics = Signal(object)  # MetricsChunk
    epoch = Signal(object)  # EpochSummary
    latent = Signal(object)  # LatentSnapshot
    decoder = Signal(object)  # WeightsSnapshot
    state = Signal(object)  # StateChanged
    error = Signal(object)  # WorkerError
    started = Signal(object)  # RunStarted
    saved = Signal(object)  # CheckpointSaved
    compiled = Signal(object)  # CompileStatus
    finished = Signal()  # the worker thread has ended (after the last message)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.setObjectName("trainingSession")
        self._worker: Worker | None = None
        self._run = None
        self._lock = threading.Lock()
        self._stop_requested = False
        self._closed = False
        self.model_config: ModelConfig | None = None
        self.train_config: TrainConfig | None = None

    # -- state -------------------------------------------------------------------------------------
    @property
    def thread(self) -> QThread | None:
        return None if self._worker is None else self._worker.thread

    @property
    def run(self):
        return self._run

    def is_active(self) -> bool:
        """The worker thread is alive (starting, running, paused or winding down)."""
        return self._worker is not None and self._worker.is_running()

    def continuation(self) -> Checkpoint | None:
        """The ended run as a checkpoint to continue from (weights, optimizer, curves); None while one trains."""
        if self._run is None or self.is_active():
            return None
        return checkpoint_of_run(self._run)

    def _attach(self, run) -> bool:  # worker thread
        with self._lock:
            self._run = run
            return not self._stop_requested

    # -- control -------------------------------------------------------------------------------------
    def start(
        self, dataset, model_cfg: ModelConfig, train_cfg: TrainConfig, checkpoint: Checkpoint | None = None
    ) -> None:
        if self.is_active():
            raise RuntimeError("a run is already active")
        self._run, self._stop_requested = None, False
        self.model_config, self.train_config = model_cfg, train_cfg

        def job():  # the worker thread
            from engine.trainer import Trainer

            try:
                run = Trainer(dataset, model_cfg, train_cfg, checkpoint)
            except (ConfigError, CheckpointError) as e:
                return iter([WorkerError(str(e))])
            except Exception as e:  # noqa: BLE001 - anything here must become a dialog, not a dead thread
                return iter([WorkerError(f"Could not start training: {type(e).__name__}: {e}", traceback.format_exc())])
            if not self._attach(run):  # stop() was pressed while the run was being built
                run.stop()
            return run.run()

        worker = Worker(job, parent=self, name="trainingThread", role="training")
        worker.yielded.connect(lambda msg, w=worker: self._on_message(msg) if w is self._worker else None)
        worker.failed.connect(
            lambda e, tb, w=worker: (
                self._on_message(WorkerError(f"Training failed: {type(e).__name__}: {e}", tb))
                if w is self._worker
                else None
            )
        )
        worker.done.connect(lambda w=worker: self._on_thread_finished() if w is self._worker else None)
        self._worker = worker

    def pause(self) -> None:
        if self._run is not None:
            self._run.pause()

    def resume(self, train_cfg: TrainConfig | None = None) -> None:
        """Resume a paused or diverged run; with ``train_cfg``, its learning rate and precision apply from the next
        step (ConfigError, and no resume, when the device cannot take that precision)."""
        if self._run is None:
            return
        if train_cfg is not None and (train_cfg.lr, train_cfg.precision) != (self._run.cfg.lr, self._run.cfg.precision):
            self.train_config = self._run.retune(train_cfg.lr, train_cfg.precision)
        self._run.resume()

    def stop(self) -> None:
        with self._lock:
            self._stop_requested = True
            run = self._run
        if run is not None:
            run.stop()

    def save_checkpoint(self, path: str) -> bool:
        """While the worker iterates: a request it carries out between two steps (``saved`` follows).
        After the run ended: written now, on this thread. Returns False when there is no run to save."""
        if self._run is None:
            return False
        if self.is_active():
            self._run.request_checkpoint(path)
            return True
        self._run.save(path)
        self.saved.emit(CheckpointSaved(str(path), self._run.step))
        return True

    def close(self, timeout_ms: int = 2000) -> bool:
        """Stop the run and wait for the worker (at most ``timeout_ms``). True when no thread is left running.
        Messages still queued afterwards are dropped."""
        self._closed = True
        self.stop()
        if self._worker is not None:
            return self._worker.wait(timeout_ms)
        return True

    # -- messages, on the GUI thread -----------------------------------------------------------------
    def _on_message(self, msg) -> None:
        if self._closed:
            return
        if isinstance(msg, MetricsChunk):
            self.metrics.emit(msg)
        elif isinstance(msg, LatentSnapshot):
            self.latent.emit(msg)
        elif isinstance(msg, WeightsSnapshot):
            self.decoder.emit(msg)
        elif isinstance(msg, EpochSummary):
            self.epoch.emit(msg)
        elif isinstance(msg, StateChanged):
            self.state.emit(msg)
        elif isinstance(msg, RunStarted):
            self.started.emit(msg)
        elif isinstance(msg, CompileStatus):
            self.compiled.emit(msg)
        elif isinstance(msg, CheckpointSaved):
            self.saved.emit(msg)
        elif isinstance(msg, WorkerError):
            self.error.emit(msg)

    def _on_thread_finished(self) -> None:
        if not self._closed:
            self.finished.emit()
