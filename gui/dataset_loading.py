"""Loading a dataset off the GUI thread: ``DatasetLoader.load(job, label, path)`` runs the engine's loader in a
gui.workers.Worker and reports back with signals. One load at a time; the current dataset stays until a load
succeeds. Loads take the image size and colour to bring images to, and a LoadProgress (its counts drive the
dataset panel's bar, its cancel event is the panel's Cancel); ``reload`` repeats the last successful load with
new options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.files import display_name
from gui.workers import Worker


class DatasetLoader(QObject):
    started = Signal(str)  # "Loading <label>…"
    loaded = Signal(object, object)  # (Dataset, path or None for the default dataset)
    failed = Signal(str)  # one line naming the file and the problem
    cancelled = Signal()  # the user cancelled the load; the previous dataset stays
    finished = Signal()  # after loaded/failed

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.setObjectName("datasetLoader")
        self.worker: Worker | None = None
        self._last: tuple | None = None  # (open_path, (path,)) or (open_default, ()): what loaded the dataset

    def busy(self) -> bool:
        return self.worker is not None

    def open_path(self, path: str, resolution: int | None = None, channels: int | None = None, progress=None) -> bool:
        from engine.data import load_dataset

        self._next = (self.open_path, (str(path),))
        return self.load(
            lambda p=str(path): load_dataset(p, resolution, channels, progress), Path(path).name or str(path), str(path)
        )

    def open_default(self, resolution: int | None = None, channels: int | None = None, progress=None) -> bool:
        self._next = (self.open_default, ())
        return self.load(lambda: read_default(resolution, channels, progress), "the default dataset", None)

    def adopt_default(self, ds) -> None:
        """The default dataset, read before the window existed (gui/startup.py): shown as if this loader had read
        it, so that a new image size or colour reloads it."""
        self._next = (self.open_default, ())
        self._on_result(ds, None)

    def reload(self, resolution: int | None, channels: int | None, progress=None) -> bool:
        """Load the current dataset again with a new image size or colour; False when no loader made it."""
        if self._last is None:
            return False
        fn, args = self._last
        return fn(*args, resolution, channels, progress)

    def forget(self) -> None:
        """The dataset on show did not come from this loader (a test, a checkpoint): nothing to reload."""
        self._last = None

    def load(self, job: Callable[[], object], label: str, path: str | None) -> bool:
        """Start loading; False when a load is already running."""
        if self.worker is not None:
            return False
        self.worker = Worker(
            job,
            on_result=lambda ds: self._on_result(ds, path),
            on_error=lambda e, _tb: self._on_error(e, path),
            parent=self,
            name="datasetLoader",
        )
        self.started.emit(f"Loading {label}…")
        return True

    def _on_result(self, ds, path) -> None:
        self.worker = None
        self._last = self._next
        self.loaded.emit(ds, path)
        self.finished.emit()

    def _on_error(self, err: BaseException, path) -> None:
        from engine.data import DatasetError, LoadCancelled

        self.worker = None
        if isinstance(err, LoadCancelled):
            self.cancelled.emit()
            self.finished.emit()
            return
        text = (
            str(err)
            if isinstance(err, DatasetError)
            else f"{display_name(path) if path else 'dataset'}: {type(err).__name__}: {err}"
        )
        self.failed.emit(text)
        self.finished.emit()

    def cancel(self) -> bool:
        """Drop a running load (its result is never delivered); True when one was running."""
        if self.worker is None:
            return False
        self.worker.cancel()
        self.worker.wait(3000)  # a decode in progress stops within a chunk
        self.worker = None
        return True


def read_default(resolution: int | None = None, channels: int | None = None, progress=None):
    """The default dataset at the chosen image size and colour (a worker's job)."""
    from engine.data import adjust_images, default_dataset

    ds = default_dataset()
    if progress is not None:
        progress.check()  # Cancel while it was read
    return adjust_images(ds, resolution, channels)
