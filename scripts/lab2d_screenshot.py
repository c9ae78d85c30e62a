"""The README's 2-D Lab screenshot: the window at 1600×1000 on the 2-D Lab tab after ``--seconds`` of training on
the default 8 Gaussians, a point hovered; also a 1024×700 grab to check the layout (offscreen; written to docs/).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/lab2d_screenshot.py [--seconds 240]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gui import style  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402


def spin(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=240.0)
    args = p.parse_args()
    app = QApplication(sys.argv)
    style.apply_app_style(app)
    with tempfile.TemporaryDirectory() as tmp:
        w = MainWindow(settings=QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat), load_default=False)
        w.ask_save_before_close = lambda: "discard"
        w.resize(1600, 1000)
        w.show()
        w.show_page(w.lab2d)
        lab = w.lab2d
        lab.start()
        spin(app, args.seconds)
        lab.pause()
        spin(app, 0.5)
        f = lab.frame
        print(f"tick {f.tick}, {f.vae_steps} VAE batches, IWAE {f.iwae:.3f}, mixture {f.mixture_log_lik:.3f} nats")
        for size, name in (((1600, 1000), "lab2d.png"), ((1024, 700), None)):
            w.resize(*size)
            spin(app, 0.3)
            view = lab.vae_view
            QTest.mouseMove(view.widget.viewport(), view.to_pixel(*lab.points[5]))  # hover a point
            spin(app, 0.3)
            out = ROOT / "docs" / name if name else Path(tmp).parent / "lab2d-1024x700.png"
            w.grab().save(str(out))
            print("wrote", out)
        w.close()


if __name__ == "__main__":
    main()
