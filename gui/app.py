"""``run_app(argv)``: the QApplication, the look, a window on screen at once, the main window built behind it
(gui/startup.py), and start-up work kept off the Start click.

Start-up: torch's first ``optim.Adam`` costs ~1.7 s (it imports dynamo), so it is warmed on the start-up worker
while the first window is on screen; once the main window is shown a full ``gc.collect(); gc.freeze()`` moves the
start-up objects out of the collector's reach, which shrinks later full collections from ~250 ms to a few ms
(DESIGN.md). After that, Python's cyclic garbage collector runs only from a timer on the GUI thread (pyqtgraph's
GarbageCollector): an automatic collection can start inside any allocation, on a worker thread or in the middle
of a Qt call, and when it frees a Qt widget there it deadlocks on Qt's connection mutex or crashes.

``ELBO_STUDIO_QUIT_AFTER_MS=<ms>`` quits that long after the main window is shown (the smoke test uses it)."""

from __future__ import annotations

import gc
import os
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

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


def run_app(argv: list[str] | None = None, on_ready=None) -> int:
    """``on_ready(startup)``, when given, is called once the main window is shown (benchmarks/startup.py)."""
    argv = list(sys.argv[:1] if argv is None else ["elbo-studio", *argv])
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("ELBO Studio")
    app.setOrganizationName("ELBO Studio")
    app.setApplicationDisplayName("ELBO Studio")

    from gui import style
    from gui.startup import Startup, default_settings

    style.apply_app_style(app)
    settings = default_settings()

    def make_window(preloaded):
        from gui.main_window import MainWindow

        return MainWindow(settings=settings, preloaded=preloaded, load_default=preloaded is None)

    startup = Startup(settings, make_window)
    collector = []
    quit_after = os.environ.get(QUIT_ENV)

    def on_window(window) -> None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        QTimer.singleShot(0, _freeze_gc)
        collector.append(GarbageCollector(interval=1.0))  # kept alive until exec returns
        if quit_after:
            QTimer.singleShot(int(quit_after), window.close)
        if on_ready is not None:
            on_ready(startup)

    startup.ready.connect(on_window)
    code = app.exec()
    startup.wait(10_000)
    return int(code)
