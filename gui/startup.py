"""Start-up: a window on screen at once, the heavy rest loaded behind it.

Importing torch, pyqtgraph and the panels and reading the default dataset take seconds (longer on a busy
machine); a window that appears only after them looks like a program that did not start. So ``Startup`` shows a
light window first (Qt only: the title, the remembered geometry, a line saying what is loading) and, on two
workers, reads the default dataset (a "files" worker: no torch, so it does not wait for torch's import) and
imports the rest (torch with its first Adam step, pyqtgraph, the main window's modules). When both are done, the
main window is built on the GUI thread at the same place and size, with the dataset already in it, and the light
window closes.

``timeline`` records when each stage ended (seconds since the process started) for benchmarks/startup.py."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtWidgets import QLabel, QMainWindow, QProgressBar, QVBoxLayout, QWidget

from gui.workers import Worker

APP_NAME = "ELBO Studio"


def default_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "ELBO Studio", "elbo-studio")


def import_the_rest() -> None:
    """Everything the main window needs beyond Qt (a worker's job): imported once, here, off the GUI thread."""
    import pyqtgraph  # noqa: F401

    import engine.trainer  # noqa: F401 - torch, and every engine module a run uses
    import gui.main_window  # noqa: F401 - the panels
    from gui.app import warm_torch

    warm_torch()


class StartupWindow(QMainWindow):
    """The window as it first appears: the title, its remembered size and place, and what is loading."""

    def __init__(self, settings: QSettings):
        super().__init__()
        self.setObjectName("startupWindow")
        self.setWindowTitle(APP_NAME)
        geo = settings.value("ui/geometry")
        if geo is None or not self.restoreGeometry(geo):
            self.resize(1500, 940)
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.addStretch(1)
        self.label = QLabel("Loading torch, the plots and the default dataset…")
        self.label.setObjectName("startupLabel")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        bar = QProgressBar()
        bar.setRange(0, 0)  # busy
        bar.setMaximumWidth(320)
        lay.addWidget(self.label)
        lay.addWidget(bar, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addStretch(2)
        self.setCentralWidget(body)
        self.statusBar().showMessage("Starting…")
        self.painted_at: float | None = None
        self.closed_by_user = False
        self.replaced = False  # closed because the main window took its place

    def paintEvent(self, event):  # noqa: N802 - Qt name
        if self.painted_at is None:
            self.painted_at = time.perf_counter()
        super().paintEvent(event)

    def closeEvent(self, event):  # noqa: N802 - Qt name
        self.closed_by_user = not self.replaced
        super().closeEvent(event)


class Startup(QObject):
    """Shows the start-up window and builds the main window behind it; ``ready(window)`` when it is shown."""

    ready = Signal(object)

    def __init__(self, settings: QSettings, make_window, t0: float | None = None):
        super().__init__()
        self.settings, self._make_window = settings, make_window
        self.t0 = time.perf_counter() if t0 is None else t0
        self.timeline: dict[str, float] = {}
        self.window: QMainWindow | None = None
        self.dataset = None
        self._waiting = {"dataset", "modules"}
        self.shell = StartupWindow(settings)
        self.shell.show()
        from gui.dataset_loading import read_default

        res = settings.value("data/resolution", 0, type=int) or None
        ch = settings.value("data/channels", 0, type=int) or None
        self._data = Worker(
            lambda: read_default(res, ch),
            on_result=self._on_dataset,
            on_error=lambda _e, _tb: self._done("dataset"),  # the main window reads it again and says why
            parent=self,
            name="startupDataset",
            role="files",
        )
        self._modules = Worker(
            import_the_rest,
            on_result=lambda _r: self._done("modules"),
            on_error=lambda _e, _tb: self._done("modules"),  # importing again on this thread shows the error
            parent=self,
            name="startupImports",
        )

    def _mark(self, stage: str) -> None:
        self.timeline[stage] = time.perf_counter() - self.t0

    def _on_dataset(self, ds) -> None:
        self.dataset = ds
        self._done("dataset")

    def _done(self, what: str) -> None:
        self._mark(f"{what} loaded")
        self._waiting.discard(what)
        if self.shell.closed_by_user:  # closed before the main window was ready: nothing to build
            return
        if self._waiting:
            self.shell.label.setText(
                "Loading torch and the plots…" if what == "dataset" else "Reading the default dataset…"
            )
            return
        if self.shell.painted_at is not None:
            self.timeline["first paint"] = self.shell.painted_at - self.t0
        geometry = self.shell.saveGeometry()
        self.window = self._make_window(self.dataset)
        self.window.restoreGeometry(geometry)
        self.window.show()
        self.shell.replaced = True
        self.shell.close()
        self.shell.deleteLater()
        self._mark("window ready")
        self.ready.emit(self.window)

    def wait(self, timeout_ms: int = 10_000) -> None:
        """Wait for the start-up workers (closing before they finished)."""
        for w in (self._data, self._modules):
            w.wait(timeout_ms)
