"""What one redraw of the latent scatter costs the GUI thread (prints figures; not a test).

    python benchmarks/scatter_redraw.py [--points 10000] [--latent 2] [--redraws 40] [--profile]

The real window (1600 x 1000, offscreen, the Training page on show) with the default dataset's classes is fed a
sequence of latent snapshots that drift a little each time, as training moves them; each redraw is the window's
own scheduled job (``MainWindow._draw_scatter``) followed by the paint that Qt does for it (``repaint`` of the
plot's viewport). Figures: median and p90 of the GUI thread's CPU time (``time.thread_time``, what the draw budget
counts) and wall time per redraw, for the draw alone, the paint alone and both; ``--profile`` adds a cProfile
table of the draws and one of the paints."""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def snapshots(n: int, d: int, classes: int, count: int, seed: int = 0):
    """``count`` snapshots of ``n`` points in ``classes`` clusters that drift a little between snapshots."""
    from engine.messages import LatentSnapshot

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(0, 2.0, (classes, d))
    spread = rng.normal(0, 0.6, (n, d))
    for k in range(count):
        drift = 1.0 + 0.002 * k
        means = (centres[labels] + spread) * drift + rng.normal(0, 0.01, (n, d))
        yield LatentSnapshot(
            1000 + k, 0, means.astype(np.float32), np.zeros((n, d), np.float32), labels.astype(np.int64), np.arange(n)
        )


def median_p90(xs) -> str:
    a = np.asarray(xs) * 1000
    return f"median {np.median(a):6.2f} ms  p90 {np.percentile(a, 90):6.2f} ms"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--latent", type=int, default=2)
    ap.add_argument("--redraws", type=int, default=40)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from engine.data import default_dataset
    from gui import style
    from gui.main_window import MainWindow

    style.apply_app_style(app)
    ds = default_dataset()
    ini = tempfile.NamedTemporaryFile(suffix=".ini", delete=False).name
    w = MainWindow(settings=QSettings(ini, QSettings.Format.IniFormat), dataset=ds, load_default=False)
    w.timer.stop()  # only this script draws
    w.resize(1600, 1000)
    w.show()
    for _ in range(20):
        app.processEvents()
    classes = max(ds.n_classes, 1)
    vp = w.latent.plot_widget.viewport()
    draw_cpu, draw_wall, paint_cpu, paint_wall = [], [], [], []
    prof = cProfile.Profile() if args.profile else None
    paint_prof = cProfile.Profile() if args.profile else None
    for i, s in enumerate(snapshots(args.points, args.latent, classes, args.redraws + 3)):
        w.state.set_latent(s)
        w.latent._last_draw = float("-inf")  # the scheduler decides when; here every snapshot is drawn
        c0, t0 = time.thread_time(), time.perf_counter()
        if prof is not None and i >= 3:
            prof.enable()
        drew = w._draw_scatter()
        if prof is not None:
            prof.disable()
        c1, t1 = time.thread_time(), time.perf_counter()
        if paint_prof is not None and i >= 3:
            paint_prof.enable()
        vp.repaint()
        if paint_prof is not None:
            paint_prof.disable()
        c2, t2 = time.thread_time(), time.perf_counter()
        app.processEvents()  # whatever else the redraw queued (layout of a new title, ...)
        if i < 3 or not drew:  # the first draws fit the view and build caches
            continue
        draw_cpu.append(c1 - c0)
        draw_wall.append(t1 - t0)
        paint_cpu.append(c2 - c1)
        paint_wall.append(t2 - t1)
    shown = sum(len(it.getData()[0]) for it in w.latent.items)
    print(
        f"scatter redraw: {args.points:,} points, d={args.latent}, {classes} classes, {len(draw_cpu)} redraws, "
        f"plot {vp.width()}x{vp.height()} px, {shown:,} points drawn in the last one; "
        f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(f"  draw  (_draw_scatter) CPU {median_p90(draw_cpu)}   wall {median_p90(draw_wall)}")
    print(f"  paint (viewport)      CPU {median_p90(paint_cpu)}   wall {median_p90(paint_wall)}")
    total = np.asarray(draw_cpu) + np.asarray(paint_cpu)
    print(f"  draw + paint          CPU {median_p90(total)}")
    if prof is not None:
        print("draws:")
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        print("paints:")
        pstats.Stats(paint_prof).sort_stats("tottime").print_stats(25)
    w.ask_save_model_before_close = lambda described: "discard"
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
