"""The worker thread: iterates ``TrainingRun.run()`` and re-emits each engine message as a Qt signal.

The run is built *inside* the worker thread (moving data to a GPU and creating the optimizer can take a
second), so ``start()`` returns at once. Messages travel worker → GUI thread as queued signals; the GUI thread
never waits on the engine except in ``close()``, which stops the run and waits at most ``timeout_ms``.

``BackgroundTask`` runs any other slow call (loading a dataset or a checkpoint, warming torch) on a QThread and
delivers its result or its exception to the GUI thread."""
from __future__ import annotations

import threading
import traceback
import weakref
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from engine.checkpoint import Checkpoint, CheckpointError
from engine.config import ConfigError, ModelConfig, TrainConfig
from engine.history import MetricHistory
from engine.messages import (CheckpointSaved, DecoderSnapshot, EpochSummary, LatentSnapshot, MetricsChunk,
                             RunStarted, StateChanged, WorkerError)

# ----------------------------------------------------------------------------------------- torch threads
# Measured on this 2-core machine (torch 2.13 CPU, libgomp): every thread that runs a parallel torch op gets an
# OpenMP team of its own, and once two teams exist the runtime stops spin-waiting, so the trainer drops from
# ~36k to ~16k samples/s (Fashion-MNIST MLP) for the rest of the process. So only the training thread runs torch
# multi-threaded; the GUI thread and the short background tasks (decoding a click, image grids, encoding for a
# loaded checkpoint) run it single-threaded. ``torch.set_num_threads`` sets the calling thread's OpenMP and MKL
# counts, plus a default that threads read on their first parallel op: each thread here sets its own first.
_TRAIN_THREADS: int | None = None


def training_threads() -> int:
    """Intra-op threads for the training thread: torch's default for this machine, read before anyone changed it."""
    global _TRAIN_THREADS
    if _TRAIN_THREADS is None:
        import torch

        _TRAIN_THREADS = max(1, torch.get_num_threads())
    return _TRAIN_THREADS


def torch_single_threaded() -> None:
    """Make torch calls on the calling thread single-threaded (and settle it now, before any parallel op)."""
    import torch

    training_threads()
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    torch.ones(8).add_(1)  # the thread's first parallel_for fixes its thread count: do it now, at 1


_LIVE_THREADS: "weakref.WeakSet[QThread]" = weakref.WeakSet()
_PENDING: set = set()  # BackgroundTasks whose result has not been delivered yet
_ABANDONED: set = set()  # run threads a closed window stopped waiting for: alive until they end


def live_threads() -> list[QThread]:
    """QThreads this package started that are still running (tests assert this is empty)."""
    out = []
    for t in list(_LIVE_THREADS):
        try:
            if t.isRunning():
                out.append(t)
        except RuntimeError:  # the C++ object is gone: not running
            pass
    return out


class _RunThread(QThread):
    message = Signal(object)

    def __init__(self, session: "TrainingSession", dataset, model_cfg, train_cfg, checkpoint):
        super().__init__()
        self.setObjectName("trainingThread")
        self._session = session
        self._args = (dataset, model_cfg, train_cfg, checkpoint)

    def run(self) -> None:  # the worker thread
        import torch

        from engine.trainer import TrainingRun

        torch.set_num_threads(training_threads())  # this thread only (see torch_single_threaded)
        try:
            run = TrainingRun(*self._args)
        except (ConfigError, CheckpointError) as e:
            self.message.emit(WorkerError(str(e)))
            return
        except Exception as e:  # noqa: BLE001 - anything here must become a dialog, not a dead thread
            self.message.emit(WorkerError(f"Could not start training: {type(e).__name__}: {e}", traceback.format_exc()))
            return
        self._args = None
        if not self._session._attach(run):  # stop() was pressed while the run was being built
            run.stop()
        for msg in run.run():
            self.message.emit(msg)


class TrainingSession(QObject):
    """Owns one training run at a time and its worker thread.

    Signals carry the engine's plain messages unchanged. ``history`` mirrors the run's MetricHistory from the
    messages (the GUI never reads the worker's copy), ``latest_latent`` / ``latest_decoder`` keep the newest
    snapshots."""

    metrics = Signal(object)  # MetricsChunk
    epoch = Signal(object)  # EpochSummary
    latent = Signal(object)  # LatentSnapshot
    decoder = Signal(object)  # DecoderSnapshot
    state = Signal(object)  # StateChanged
    error = Signal(object)  # WorkerError
    started = Signal(object)  # RunStarted
    saved = Signal(object)  # CheckpointSaved
    finished = Signal()  # the worker thread has ended (after the last message)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.setObjectName("trainingSession")
        self._thread: _RunThread | None = None
        self._run = None
        self._lock = threading.Lock()
        self._stop_requested = False
        self._closed = False
        self.current_state = "idle"  # idle | starting | running | paused | diverged | stopped | finished | error
        self.history = MetricHistory()
        self.latest_latent: LatentSnapshot | None = None
        self.latest_decoder: DecoderSnapshot | None = None
        self.run_info: RunStarted | None = None
        self.model_config: ModelConfig | None = None
        self.train_config: TrainConfig | None = None

    # -- state -------------------------------------------------------------------------------------
    @property
    def thread(self) -> QThread | None:
        return self._thread

    @property
    def run(self):
        return self._run

    def is_active(self) -> bool:
        """The worker thread is alive (starting, running, paused or winding down)."""
        return self._thread is not None and self._thread.isRunning()

    def _attach(self, run) -> bool:  # worker thread
        with self._lock:
            self._run = run
            return not self._stop_requested

    # -- control -------------------------------------------------------------------------------------
    def start(self, dataset, model_cfg: ModelConfig, train_cfg: TrainConfig, checkpoint: Checkpoint | None = None,
              history: MetricHistory | None = None) -> None:
        if self.is_active():
            raise RuntimeError("a run is already active")
        self._cleanup_thread()
        self._run, self._stop_requested = None, False
        if history is None:  # the GUI thread's own mirror: appending must not touch the loaded checkpoint
            history = MetricHistory.from_state(checkpoint.history.to_state()) if checkpoint else MetricHistory()
        self.history = history
        self.latest_latent = self.latest_decoder = self.run_info = None
        self.model_config, self.train_config = model_cfg, train_cfg
        self.current_state = "starting"
        t = _RunThread(self, dataset, model_cfg, train_cfg, checkpoint)
        t.message.connect(self._on_message)
        t.finished.connect(self._on_thread_finished)
        self._thread = t
        _LIVE_THREADS.add(t)
        t.start()

    def pause(self) -> None:
        if self._run is not None:
            self._run.pause()

    def resume(self) -> None:
        if self._run is not None:
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
        self._run.save(path)  # WriteError (an OSError naming the file) if it cannot be written
        self.saved.emit(CheckpointSaved(str(path), self._run.step))
        return True

    def close(self, timeout_ms: int = 2000) -> bool:
        """Stop the run and wait for the worker (at most ``timeout_ms``). True when no thread is left running.
        Messages still queued afterwards are dropped."""
        self._closed = True
        self.stop()
        ok = True
        if self._thread is not None:
            ok = self._thread.wait(timeout_ms)
            if not ok:  # never destroyed while running (Qt aborts the process): kept until it ends
                _ABANDONED.add(self._thread)
                self._thread.finished.connect(lambda t=self._thread: _ABANDONED.discard(t))
        return ok

    def _cleanup_thread(self) -> None:
        if self._thread is not None and not self._thread.isRunning():
            try:
                self._thread.message.disconnect(self._on_message)
            except (RuntimeError, TypeError):
                pass
            self._thread.deleteLater()
            self._thread = None

    # -- messages, on the GUI thread -----------------------------------------------------------------
    def _on_message(self, msg) -> None:
        if self._closed:
            return
        if isinstance(msg, MetricsChunk):
            if len(msg.steps) and np.isfinite(msg.elbo).all():
                self.history.add_chunk(msg)
            self.metrics.emit(msg)
        elif isinstance(msg, LatentSnapshot):
            self.latest_latent = msg
            self.latent.emit(msg)
        elif isinstance(msg, DecoderSnapshot):
            self.latest_decoder = msg
            self.decoder.emit(msg)
        elif isinstance(msg, EpochSummary):
            self.history.add_epoch(msg)
            self.epoch.emit(msg)
        elif isinstance(msg, StateChanged):
            self.current_state = msg.state
            self.state.emit(msg)
        elif isinstance(msg, RunStarted):
            self.run_info = msg
            self.started.emit(msg)
        elif isinstance(msg, CheckpointSaved):
            self.saved.emit(msg)
        elif isinstance(msg, WorkerError):
            if msg.fatal:  # a failed save is reported, but the run goes on: its state stays as it is
                self.current_state = "error"
            self.error.emit(msg)

    def _on_thread_finished(self) -> None:
        if self.current_state in ("starting", "running", "paused", "diverged"):
            self.current_state = "stopped"
        if not self._closed:
            self.finished.emit()


# ------------------------------------------------------------------------------------------ other slow calls
class _TaskThread(QThread):
    done = Signal(object, object)  # (result, exception or None)

    def __init__(self, fn: Callable[[], object], name: str):
        super().__init__()
        self.setObjectName(name)
        self._fn = fn

    def run(self) -> None:
        try:
            torch_single_threaded()
            result = self._fn()
        except BaseException as e:  # noqa: BLE001 - delivered to the GUI thread, which decides
            self.done.emit(None, e)
            return
        finally:
            self._fn = None
        self.done.emit(result, None)


class BackgroundTask(QObject):
    """``BackgroundTask(fn, on_done)``: runs ``fn()`` on a QThread; ``on_done(result, error)`` on the GUI thread."""

    def __init__(self, fn: Callable[[], object], on_done: Callable[[object, BaseException | None], None],
                 parent: QObject | None = None, name: str = "backgroundTask"):
        super().__init__(parent)
        self._on_done = on_done
        self._thread = _TaskThread(fn, name)
        self._thread.done.connect(self._done)
        self._thread.finished.connect(self._thread.deleteLater)
        self.cancelled = False
        _PENDING.add(self)  # alive until done, even if the caller keeps no reference
        _LIVE_THREADS.add(self._thread)
        self._thread.start()

    def is_running(self) -> bool:
        try:
            return self._thread.isRunning()
        except RuntimeError:
            return False

    def wait(self, timeout_ms: int = 5000) -> bool:
        try:
            return self._thread.wait(timeout_ms)
        except RuntimeError:
            return True

    def _done(self, result, error) -> None:
        _PENDING.discard(self)
        if not self.cancelled:
            self._on_done(result, error)
