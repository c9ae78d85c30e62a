"""``run_app(argv)``: the QApplication, the look, the main window, and start-up work kept off the Start click.

Start-up: torch's first ``optim.Adam`` costs ~1.7 s (it imports dynamo), so it is warmed on a background thread
while the window opens; after the first events a full ``gc.collect(); gc.freeze()`` moves the start-up objects
out of the collector's reach, which shrinks later full collections from ~250 ms to a few ms (DESIGN.md).
After that, Python's cyclic garbage collector runs only from a timer on the GUI thread (pyqtgraph's
GarbageCollector): an automatic collection can start inside any allocation, on a worker thread or in the middle
of a Qt call, and when it frees a Qt widget there it deadlocks on Qt's connection mutex or crashes.

``ELBO_STUDIO_QUIT_AFTER_MS=<ms>`` quits after that long (the smoke test uses it)."""

from __future__ import annotations

import gc
import os
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from pyqtgraph.util.garbage_collector import GarbageCollector

QUIT_ENV = "ELBO_STUDIO_QUIT_AFTER_MS"


def warm_torch() -> None:
    """Pay torch's one-off costs now: the first Adam (dynamo import) and a first forward/backward."""
    import torch

    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.Adam([p], lr=1e-3)
    (p * p).sum().backward()
    opt.step()


def _freeze_gc() -> None:
    gc.collect()
    gc.freeze()


def run_app(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[:1] if argv is None else ["elbo-studio", *argv])
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("ELBO Studio")
    app.setOrganizationName("ELBO Studio")
    app.setApplicationDisplayName("ELBO Studio")

    from gui import style
    from gui.main_window import MainWindow
    from gui.workers import Worker

    style.apply_app_style(app)
    window = MainWindow()
    warm = Worker(warm_torch, parent=window, name="torchWarmup")
    window.show()
    QTimer.singleShot(0, _freeze_gc)
    collector = GarbageCollector(interval=1.0)  # noqa: F841 - keeps the timer alive until exec returns
    quit_after = os.environ.get(QUIT_ENV)
    if quit_after:
        QTimer.singleShot(int(quit_after), window.close)
    code = app.exec()
    warm.wait(10_000)
    return int(code)
