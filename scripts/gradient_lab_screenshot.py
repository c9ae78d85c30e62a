"""Make docs/gradient_lab.png: the VI explorer's "Gradient estimators" page for the Normal family's starting q,
showing ∂ELBO/∂σ, at 1024×700 (and a 1600×1000 copy in the temp folder, to check the layout at that size).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/gradient_lab_screenshot.py"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QComboBox, QTabWidget

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    app = QApplication(sys.argv)
    from gui import style
    from gui.main_window import MainWindow

    style.apply_app_style(app)  # the look main.py gives the window

    tmp = Path(tempfile.mkdtemp())
    w = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat), load_default=False)
    w.ask_save_before_close = lambda: "discard"
    w.resize(1024, 700)
    w.show()
    w.show_page(w.explorer)
    family = w.explorer.findChild(QComboBox, "explorer_family")
    family.setCurrentIndex(family.findData("Normal"))
    w.explorer.findChild(QTabWidget, "explorer_right_tabs").setCurrentWidget(w.explorer.gradient_lab)
    lab = w.explorer.gradient_lab
    deadline = time.monotonic() + 300
    while (lab.study is None or lab.study.family != "Normal" or lab.is_estimating()) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    lab.param_combo.setCurrentIndex(1)  # ∂ELBO/∂σ
    for size, out in (((1024, 700), ROOT / "docs" / "gradient_lab.png"), ((1600, 1000), tmp / "gradient_lab_1600.png")):
        w.resize(*size)
        for _ in range(30):
            app.processEvents()
        w.grab().save(str(out))
        print(f"{out}  ({w.width()}×{w.height()})")
    w.close()


if __name__ == "__main__":
    main()
