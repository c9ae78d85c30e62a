"""Screenshots of the window for docs/: Fashion-MNIST, a conditional model trained for one epoch, at 1024×700 and
1600×1000, the Training, Posterior & gap and VI explorer tabs. Also prints, for each title and number on show,
whether its text fits its widget (fontMetrics().horizontalAdvance(text) <= width).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py docs/ [epochs] [checkpoint]

With a checkpoint path, the model is loaded from it when the file exists, else trained and saved there."""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.data import default_dataset  # noqa: E402
from gui.fit_check import clipped_texts  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui import style  # noqa: E402


def wait(app, cond, seconds: float) -> None:
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main(out: str, epochs: int = 1, ckpt: str | None = None) -> int:
    app = QApplication.instance() or QApplication([])
    app.setApplicationDisplayName("ELBO Studio")
    style.apply_app_style(app)
    ini = os.path.join(tempfile.mkdtemp(), "shots.ini")
    w = MainWindow(settings=QSettings(ini, QSettings.Format.IniFormat), dataset=default_dataset(), load_default=False)
    w.ask_start_choice = lambda described, why: "new"
    w.show()
    panel = w.settings_panel
    panel.set_configs(panel.model_config((1, 28, 28)), panel.train_config().replace(epochs=epochs))
    if w.state.dataset.n_classes >= 2:
        panel.widgets["conditional"].setChecked(True)
    if ckpt and os.path.exists(ckpt):
        w.checkpoints.load(ckpt)
        wait(app, lambda: w.state.checkpoint is not None and w.state.latent is not None, 600)
    else:
        w.start_training()
        wait(app, lambda: w.state.status == "finished" and not w.session.is_active(), 3600)
        if ckpt:
            w.session.run.save(ckpt)
    wait(app, lambda: False, 1.0)
    x0, x1, y0, y1 = w.latent.view_rect()
    w._on_latent_clicked((x0 + x1) / 2 + 0.3, (y0 + y1) / 2 + 0.2)
    w.state.select_example(0)
    failures = 0
    for width, height in ((1024, 700), (1600, 1000)):
        w.resize(width, height)
        for page, name in ((w.latent, "training"), (w.inference, "posterior"), (w.explorer, "explorer")):
            w.show_page(page)
            wait(app, lambda: False, 2.5)
            w.draw_all()
            wait(app, lambda: False, 0.5)
            path = os.path.join(out, f"first-hour-{name}-{width}x{height}.png")
            w.grab().save(path)
            bad = clipped_texts(w)
            failures += len(bad)
            size = f"{w.width()}×{w.height()}"
            print(f"{path}: window {size}; {len(bad)} clipped" + "".join(f"\n  {b}" for b in bad))
    w.session.close(3000)
    w.inference.shutdown()
    w.close()
    return 1 if failures else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(
        main(args[0] if args else "docs", int(args[1]) if len(args) > 1 else 1, args[2] if len(args) > 2 else None)
    )
