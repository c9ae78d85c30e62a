"""Screenshots for the README: the "Inside the model" page at 1024×700, the training page with an interpolation
path and an encoded image's q(z|x) on the latent plot at 1600×1000, and the "Runs" page (a β = 4 run beside the
first) at 1024×700 (offscreen; written to docs/).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/inside_screenshots.py [--epochs 4] [--train 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from engine.config import ModelConfig, TrainConfig  # noqa: E402
from engine.data import default_dataset  # noqa: E402
from engine.data.dataset import as_float01  # noqa: E402
from gui import style  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402


def wait(app, until, seconds=600.0) -> None:
    end = time.monotonic() + seconds
    while not until() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--train", type=int, default=20_000, help="training images used (a subset keeps this quick)")
    a = p.parse_args()
    app = QApplication.instance() or QApplication([])
    style.apply_app_style(app)  # the look main.py gives the window
    tmp = Path(tempfile.mkdtemp())
    ds = default_dataset()
    ds = replace(ds, x_train=ds.x_train[: a.train], y_train=None if ds.y_train is None else ds.y_train[: a.train])
    w = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat), dataset=ds, load_default=False)
    w.ask_save_before_close = lambda: "discard"
    w.settings_panel.set_configs(ModelConfig(image_shape=ds.image_shape), TrainConfig(epochs=a.epochs))
    w.resize(1600, 1000)
    w.show()
    w.training.start()
    wait(app, lambda: w.state.status in ("finished", "error") and not w.session.is_active())
    wait(app, lambda: w.latent.shown is not None, 10)
    # an image of the user's: a test image enlarged to 140×100 RGB (the dataset's rules bring it back to 28×28 grey)
    img = (as_float01(ds.x_test[7])[0] * 255).astype(np.uint8)
    Image.fromarray(img).resize((100, 140)).convert("RGB").save(tmp / "my_coat.png")
    # a second run with β = 4 beside the first (the first stays in the Runs list), then back to the first
    w.ask_start_choice = lambda described, cannot: "new"
    first = Path(tmp / "first.ckpt")
    w.checkpoints.save(str(first))
    w.settings_panel.set_configs(train_cfg=TrainConfig(epochs=a.epochs, beta=4.0))
    w.training.start()
    wait(app, lambda: w.state.status in ("finished", "error") and not w.session.is_active())
    w.runs.list.setCurrentRow(0)
    w.resize(1024, 700)
    w.show_page(w.runs)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    w.grab().save(str(ROOT / "docs" / "runs_1024.png"))
    w.ask_replace_model = lambda described, name: "discard"
    w.checkpoints.load(str(first))
    wait(app, lambda: not w.checkpoints.busy() and w.state.snapshot is not None, 60)
    wait(app, lambda: w.latent.shown is not None, 10)
    w.state.pick(np.array([0.4, -0.6], np.float32))
    w.inside.add_end(np.array([-1.6, 1.2], np.float32))
    w.inside.add_end(np.array([1.5, -1.0], np.float32))
    w.inside_actions.encode(str(tmp / "my_coat.png"))
    for size, name, page in (((1024, 700), "inside", w.inside), ((1600, 1000), "inside_training", w.latent)):
        w.resize(*size)
        w.show_page(page)
        for _ in range(30):
            app.processEvents()
            time.sleep(0.02)
        w.latent.refresh(force=True)
        w.curves.refresh()
        app.processEvents()
        out = ROOT / "docs" / f"{name}_{size[0]}.png"
        w.grab().save(str(out))
        print(out)
    w.close()


if __name__ == "__main__":
    main()
