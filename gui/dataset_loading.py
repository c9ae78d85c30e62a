"""Loading a dataset off the GUI thread: ``DatasetLoader.load(job, label, path)`` runs the engine's loader in a
gui.workers.Worker and reports back with signals. One load at a time; the current dataset stays until a load
succeeds."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from gui.workers import Worker


class DatasetLoader(QObject):
    started = Signal(str)  # "Loading <label>…"
    loaded = Signal(object, object)  # (Dataset, path or None for the default dataset)
    failed = Signal(str)  # one line naming the file and the problem
    finished = Signal()  # after loaded/failed

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.setObjectName("datasetLoader")
        self.worker: Worker | None = None

    def busy(self) -> bool:
        return self.worker is not None

    def open_path(self, path: str) -> bool:
        from engine.data import load_dataset

        return self.load(lambda p=str(path): load_dataset(p), Path(path).name or str(path), str(path))

    def open_default(self) -> bool:
        from engine.data import default_dataset

        return self.load(default_dataset, "the default dataset", None)

    def load(self, job: Callable[[], object], label: str, path: str | None) -> bool:
        """Start loading; False when a load is already running."""
        if self.worker is not None:
            return False
        self.worker = Worker(job, on_result=lambda ds: self._on_result(ds, path),
                             on_error=lambda e, _tb: self._on_error(e, path), parent=self, name="datasetLoader")
        self.started.emit(f"Loading {label}…")
        return True

    def _on_result(self, ds, path) -> None:
        self.worker = None
        self.loaded.emit(ds, path)
        self.finished.emit()

    def _on_error(self, err: BaseException, path) -> None:
        from engine.data import DatasetError

        self.worker = None
        text = str(err) if isinstance(err, DatasetError) else \
            f"{Path(path).name if path else 'dataset'}: {type(err).__name__}: {err}"
        self.failed.emit(text)
        self.finished.emit()

    def cancel(self) -> bool:
        """Drop a running load (its result is never delivered); True when one was running."""
        if self.worker is None:
            return False
        self.worker.cancel()
        self.worker.wait(10_000)
        self.worker = None
        return True
