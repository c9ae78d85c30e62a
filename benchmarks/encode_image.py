"""How long encoding an image file of the user's holds the GUI thread (prints figures; not a test).

    python benchmarks/encode_image.py [--rounds 5] [--sides 640x480,4000x3000]

A window on the built-in dataset (Fashion-MNIST when installed, else the shapes) with an untrained MLP model of
d = 2 (timing does not depend on the weights). For each picture size, a random RGB JPEG is written, then per round:

* GUI thread in the drop: the time File → Encode image… / a drop spends on the GUI thread (the window's
  ``inside_actions.encode(path)`` call, which hands the file to a worker);
* the same work done on the GUI thread: ``encode_image`` called directly (what a drop cost the GUI thread when it
  encoded there);
* drop → encoded: wall time until ``StudioState.encoded`` holds the image; → posterior: until the Posterior & gap
  tab holds its posterior grid (101×101);
* event-loop lateness during the drop → posterior span: a 5 ms QTimer records each interval, lateness = interval − 5 ms.

Medians over the rounds."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def _wait(app, until, timeout_s: float = 60.0) -> float:
    t0 = time.perf_counter()
    while not until():
        if time.perf_counter() - t0 > timeout_s:
            raise TimeoutError("no result")
        app.processEvents()
        time.sleep(0.0005)
    return time.perf_counter()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sides", default="640x480,4000x3000", help="picture sizes W×H, comma separated")
    args = ap.parse_args(argv)

    from PIL import Image
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.config import ModelConfig
    from engine.data import default_dataset
    from engine.inspect.user_image import encode_image
    from engine.model import VAE
    from engine.snapshot import decoder_snapshot, snapshot_model
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="encode_bench_"))
    ds = default_dataset()
    w = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat), dataset=ds, load_default=False)
    w.resize(1400, 900)
    w.show()
    cfg = ModelConfig(image_shape=ds.image_shape, latent_dim=2)
    w.state.new_model(cfg, "run")
    w.state.set_snapshot(decoder_snapshot(VAE(cfg).eval(), 0))
    app.processEvents()
    intervals: list[float] = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        intervals.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    rng = np.random.default_rng(0)
    print(f"dataset {ds.name} {ds.image_shape}, MLP d = 2, {args.rounds} rounds, medians (ms)")
    print(
        f"{'picture':>11} {'GUI in drop':>12} {'on GUI before':>14} {'→ encoded':>10} {'→ posterior':>12} "
        f"{'late p50':>9} {'late max':>9}"
    )
    for side in args.sides.split(","):
        wd, ht = (int(v) for v in side.lower().split("x"))
        path = tmp / f"photo_{wd}x{ht}.jpg"
        Image.fromarray(rng.integers(0, 256, (ht, wd, 3), dtype=np.uint8), "RGB").save(path, quality=90)
        rows = []
        for _ in range(args.rounds):
            w.state.select_example(0)  # another subject on show, so the image's posterior is computed afresh
            _wait(app, lambda: w.inference.view is not None and not w.inference.running_workers())
            model = snapshot_model(w.state.snapshot)
            t0 = time.perf_counter()
            encode_image(model, path, None)
            direct = time.perf_counter() - t0
            before = w.state.encoded
            intervals.clear()
            last[0] = t0 = time.perf_counter()
            w.inside_actions.encode(str(path))
            in_drop = time.perf_counter() - t0
            t_enc = _wait(app, lambda: w.state.encoded is not before and w.state.encoded is not None)
            t_post = _wait(
                app,
                lambda: (
                    w.inference.view is not None
                    and w.inference.view.index is None
                    and not w.inference.running_workers()
                ),
            )
            late = [max(0.0, i - 0.005) for i in intervals] or [0.0]
            rows.append((in_drop, direct, t_enc - t0, t_post - t0, statistics.median(late), max(late)))
        med = [statistics.median(c) * 1000 for c in zip(*rows)]
        print(f"{side:>11} {med[0]:12.1f} {med[1]:14.1f} {med[2]:10.1f} {med[3]:12.1f} {med[4]:9.1f} {med[5]:9.1f}")
    timer.stop()
    w.ask_save_model_before_close = lambda described: "discard"
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
