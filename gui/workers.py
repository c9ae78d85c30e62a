"""One helper for every background job: ``Worker(job, ...)`` runs ``job()`` on a QThread and delivers what it
produces on the GUI thread.

``job()`` may return a value (loading a dataset or a checkpoint, a posterior grid) or an iterator (the training run,
the amortization study): an iterator is drained on the worker and each item arrives as ``yielded(item)``. Then
exactly one of ``returned(value)`` / ``failed(exception, traceback_text)`` arrives, then ``done()``. A job that
iterates is stopped after its current item by ``cancel()`` (its iterator is closed); signals from a cancelled
worker are not delivered.

Every worker thread starts with ``apply_thread_policy(role)``: the one place that decides how many CPU threads
torch may use on it."""

from __future__ import annotations

import threading
import traceback
import weakref
from collections.abc import Callable, Iterator

from PySide6.QtCore import QObject, QThread, Signal

from engine.threads import use_helper_threads


def apply_thread_policy(role: str = "background") -> None:
    """The calling thread's CPU-thread policy (engine/threads.py): the training run chooses its own count with
    its thread governor; the GUI thread and every other job run torch single-threaded."""
    if role not in ("training", "files"):  # "files": reads files and runs no torch (start-up's dataset read)
        use_helper_threads()


# ----------------------------------------------------------------------------------------- the worker
_LIVE_THREADS: "weakref.WeakSet[QThread]" = weakref.WeakSet()
_PENDING: set = set()  # workers whose ``done`` has not been delivered yet (alive without a caller's reference)


def live_threads() -> list[QThread]:
    """Worker threads that are still running (tests assert this is empty)."""
    out = []
    for t in list(_LIVE_THREADS):
        try:
            if t.isRunning():
                out.append(t)
        except RuntimeError:  # the C++ object is gone: not running
            pass
    return out


class _Thread(QThread):
    yielded = Signal(object)
    returned = Signal(object)
    failed = Signal(object, str)

    def __init__(self, job: Callable[[], object], name: str, role: str, cancelled: threading.Event):
        super().__init__()
        self.setObjectName(name)
        self._job, self._role, self._cancel = job, role, cancelled

    def run(self) -> None:  # the worker thread
        try:
            apply_thread_policy(self._role)
            result = self._job()
            if isinstance(result, Iterator):
                for item in result:
                    self.yielded.emit(item)
                    if self._cancel.is_set():
                        close = getattr(result, "close", None)
                        if close is not None:
                            close()
                        break
                result = None
        except BaseException as e:  # noqa: BLE001 - delivered to the GUI thread, which decides
            self.failed.emit(e, traceback.format_exc())
            return
        finally:
            self._job = None
        self.returned.emit(result)


class Worker(QObject):
    """``Worker(job, on_result=None, on_error=None, on_item=None, parent=None, name=..., role=...)``; starts at
    once. Callbacks run on the GUI thread; ``done`` is emitted last, also after a cancel."""

    yielded = Signal(object)
    returned = Signal(object)
    failed = Signal(object, str)
    done = Signal()

    def __init__(
        self,
        job: Callable[[], object],
        on_result: Callable[[object], None] | None = None,
        on_error: Callable[[BaseException, str], None] | None = None,
        on_item: Callable[[object], None] | None = None,
        parent: QObject | None = None,
        name: str = "worker",
        role: str = "background",
    ):
        super().__init__(parent)
        self.setObjectName(name)
        self._cancel = threading.Event()  # read by the worker thread between two items
        self.cancelled = False
        self._thread = _Thread(job, name, role, self._cancel)
        self._thread.yielded.connect(self._on_yielded)
        self._thread.returned.connect(self._on_returned)
        self._thread.failed.connect(self._on_failed)
        for sig, cb in ((self.yielded, on_item), (self.returned, on_result), (self.failed, on_error)):
            if cb is not None:
                sig.connect(cb)
        self._thread.finished.connect(self._on_finished)
        _PENDING.add(self)
        _LIVE_THREADS.add(self._thread)
        self._thread.start()

    @property
    def thread(self) -> QThread:
        return self._thread

    def cancel(self) -> None:
        """Stop delivering results, and ask an iterating job to stop after its current item."""
        self.cancelled = True
        self._cancel.set()

    def _on_yielded(self, item) -> None:  # GUI thread, like the two below
        if not self.cancelled:
            self.yielded.emit(item)

    def _on_returned(self, value) -> None:
        if not self.cancelled:
            self.returned.emit(value)

    def _on_failed(self, error, tb: str) -> None:
        if not self.cancelled:
            self.failed.emit(error, tb)

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

    def _on_finished(self) -> None:
        _PENDING.discard(self)
        self._thread.deleteLater()
        self.done.emit()
