"""How much the window costs training, and how responsive it stays (prints figures; not a test).

    python benchmarks/gui_responsiveness.py [--epochs 6 | --epochs 0 --seconds 20] [--rounds 3] [--arch mlp]
                                            [--latent 2] [--gui-share 0.06]

For each round: train headless (a Trainer built and run in a plain thread, nothing listening but a counter), then
train the same way with the window open offscreen and updating, then keep training while clicking the latent
plot. Each phase trains N whole epochs (default 6), so both contain the same number of end-of-epoch evaluations
(a fixed number of seconds would cut them at different points: ±2% noise on this machine). Figures:

* throughput: samples/s over the phase (N epochs of samples / wall time from the run's start to the N-th
  EpochSummary, evaluation included) and the median of the trainer's own per-flush samples/s (training steps
  only); GUI / headless ratio;
* event-loop lateness while training: a QTimer (``--probe-ms``, 5 ms) records each interval; lateness = interval −
  its period (p50 / p95 / max). The probe is GUI work the window itself does not do (200 wake-ups a second at
  5 ms); at 50 ms the ratio below was the same within the noise;
* the GUI thread's CPU share while training (its draw budget's own account, gui/draw_budget.py) and how many
  background redraws a second each part of the window got;
* click → image: a real mouse press/release sent to the latent plot; time from the release (pyqtgraph turns
  press+release into a click) to the Generated panel's image being set, and to it being painted.

Uses Fashion-MNIST when installed (engine.data.default_dataset), else the built-in Shapes set."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def _shares(threads: dict) -> str:
    total = sum(threads.values()) or 1
    return " ".join(f"{n}: {100 * c / total:.0f}%" for n, c in sorted(threads.items()))


def pct(xs, q):
    return float(np.percentile(np.asarray(xs, float), q)) if len(xs) else float("nan")


def headless(ds, mcfg, tcfg, seconds: float, epochs: int = 0) -> dict:
    from engine.messages import EpochSummary, MetricsChunk, RunStarted
    from engine.trainer import Trainer

    rows, rates, t0, t1, seen, threads = [0], [], [None], [None], [0], {}
    runs = []

    def work():  # built and run on one thread, as the window's worker and the CLI do
        run = Trainer(ds, mcfg, tcfg)
        runs.append(run)
        for m in run.run():
            if isinstance(m, RunStarted):
                t0[0] = time.perf_counter()
            elif isinstance(m, MetricsChunk):
                rows[0] += len(m.steps)
                rates.append(m.samples_per_s)
                threads[m.threads] = threads.get(m.threads, 0) + len(m.steps)
            elif isinstance(m, EpochSummary):
                seen[0] += 1
                if epochs and seen[0] == epochs:
                    t1[0] = time.perf_counter()
                    run.stop()

    t = threading.Thread(target=work, name="headless-train")
    t.start()
    if epochs:
        t.join()
    else:
        time.sleep(seconds)
        runs[0].stop()
        t.join()
        t1[0] = time.perf_counter()
    dt = t1[0] - t0[0]
    n = epochs * len(ds.x_train) if epochs else rows[0] * tcfg.batch_size
    return {
        "samples_per_s": n / dt,
        "median_flush_rate": statistics.median(rates[2:] or rates),
        "seconds": dt,
        "threads": threads,
    }


def with_window(
    app,
    ds,
    mcfg,
    tcfg,
    seconds: float,
    clicks: int,
    gui_share: float | None = None,
    epochs: int = 0,
    probe_ms: int = 5,
) -> dict:
    from PySide6.QtCore import QEvent, QEventLoop, QPointF, QSettings, Qt, QTimer
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    ini = tempfile.NamedTemporaryFile(suffix=".ini", delete=False).name
    w = MainWindow(settings=QSettings(ini, QSettings.Format.IniFormat), dataset=ds, load_default=False)
    w.show_error = lambda *a: print("error dialog:", a)
    w.ask_save_before_close = lambda: "discard"
    w.ask_save_model_before_close = lambda described: "discard"
    w.resize(1600, 1000)
    w.show()
    w.settings_panel.set_configs(mcfg, tcfg)
    if gui_share is not None:
        w.draw_budget.share = gui_share
    rows, rates, threads = [0], [], {}

    def on_chunk(m):
        rows[0] += len(m.steps)
        rates.append(m.samples_per_s)
        threads[m.threads] = threads.get(m.threads, 0) + len(m.steps)

    w.session.metrics.connect(on_chunk)
    # event-loop lateness probe
    intervals = []
    last = [None]
    probe = QTimer()
    probe.setTimerType(Qt.TimerType.PreciseTimer)
    probe.setInterval(probe_ms)

    def tick():
        now = time.perf_counter()
        if last[0] is not None:
            intervals.append(now - last[0])
        last[0] = now

    probe.timeout.connect(tick)

    def run_loop(sec):
        loop = QEventLoop()
        QTimer.singleShot(int(sec * 1000), loop.quit)
        loop.exec()

    # Like the headless phase, the clock starts once the run exists (its construction on the worker excluded).
    started = [None]
    w.session.started.connect(lambda _m: started.__setitem__(0, time.perf_counter()))
    w.start_training()
    while started[0] is None:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)
    t0 = started[0]
    probe.start()
    drawn0 = dict(w.redraws.counts)  # background redraws so far (see gui/draw_budget.py)
    spent0, elapsed0 = w.draw_budget.spent, w.draw_budget.elapsed
    if epochs:  # until the epochs' last EpochSummary has reached the window
        done, t1 = [0], [None]

        def on_epoch(_s):
            done[0] += 1
            if done[0] == epochs:
                t1[0] = time.perf_counter()

        w.session.epoch.connect(on_epoch)
        while t1[0] is None:
            run_loop(0.05)
    else:
        run_loop(seconds)
        t1 = [time.perf_counter()]
    probe.stop()
    dt = t1[0] - t0
    gui_share = (w.draw_budget.spent - spent0) / max(w.draw_budget.elapsed - elapsed0, 1e-9)
    draws_per_s = {k: (v - drawn0[k]) / dt for k, v in w.redraws.counts.items()}
    samples_per_s = (epochs * len(ds.x_train) if epochs else rows[0] * tcfg.batch_size) / dt
    flush = statistics.median(rates[2:] or rates)
    late_ms = [max(0.0, i * 1000 - probe_ms) for i in intervals]

    # clicks while training goes on
    lp = w.latent
    vp = lp.plot_widget.viewport()
    view = w.generated.view
    set_at, lat_set, lat_paint = [None], [], []
    orig_set = view.set_image

    def timed_set(a):
        orig_set(a)
        set_at[0] = time.perf_counter()

    view.set_image = timed_set
    rng = np.random.default_rng(0)
    for _ in range(clicks):
        x0, x1, y0, y1 = lp.view_rect()
        pt = QPointF(
            lp.plot_widget.mapFromScene(
                lp.scene_pos_of(x0 + rng.uniform(0.1, 0.9) * (x1 - x0), y0 + rng.uniform(0.1, 0.9) * (y1 - y0))
            )
        )
        g = vp.mapToGlobal(pt)
        left, none, mods = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
        QApplication.sendEvent(vp, QMouseEvent(QEvent.Type.MouseButtonPress, pt, g, left, left, mods))
        set_at[0] = None
        t_click = time.perf_counter()
        QApplication.sendEvent(vp, QMouseEvent(QEvent.Type.MouseButtonRelease, pt, g, left, none, mods))
        if set_at[0] is not None:
            lat_set.append((set_at[0] - t_click) * 1000)
            view.repaint()  # paint now, synchronously: what the user sees
            lat_paint.append((time.perf_counter() - t_click) * 1000)
        run_loop(0.25)
    w.session.stop()
    w.close()
    app.processEvents()
    return {
        "samples_per_s": samples_per_s,
        "median_flush_rate": flush,
        "late_p50": pct(late_ms, 50),
        "late_p95": pct(late_ms, 95),
        "late_max": max(late_ms) if late_ms else float("nan"),
        "ticks": len(intervals),
        "seconds": dt,
        "gui_share": gui_share,
        "draws_per_s": draws_per_s,
        "threads": threads,
        "click_set": lat_set,
        "click_paint": lat_paint,
        "clicks_missed": clicks - len(lat_set),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--epochs",
        type=int,
        default=6,
        help="each phase trains this many whole epochs, evaluation included (0: use --seconds)",
    )
    ap.add_argument("--seconds", type=float, default=20.0, help="phase length when --epochs is 0")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--warmup",
        type=float,
        default=10.0,
        help="seconds of headless training before the rounds, not counted (the process's first steps are slow)",
    )
    ap.add_argument("--threads", default="auto", help="the training steps' CPU threads: auto (the governor) or N")
    ap.add_argument("--clicks", type=int, default=40)
    ap.add_argument("--probe-ms", type=int, default=5, help="period of the event-loop lateness probe (ms)")
    ap.add_argument("--arch", default="mlp")
    ap.add_argument("--latent", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument(
        "--gui-share",
        type=float,
        default=None,
        help="override the window's draw budget (share of a core while training; 1 = uncapped)",
    )
    args = ap.parse_args(argv)
    args.threads = 0 if args.threads == "auto" else int(args.threads)

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from engine.config import ModelConfig, TrainConfig
    from engine.data import default_dataset
    from gui import style
    from gui.app import warm_torch
    from gui.workers import apply_thread_policy

    style.apply_app_style(app)
    apply_thread_policy("gui")  # as the window does on its thread: one OpenMP team in the process, the trainer's
    warm_torch()
    ds = default_dataset()
    mcfg = ModelConfig(image_shape=ds.image_shape, arch=args.arch, latent_dim=args.latent)
    tcfg = TrainConfig(epochs=1000, batch_size=args.batch, threads=args.threads)
    import torch

    print(
        f"dataset {ds.summary()}; model {args.arch} d={args.latent}; batch {args.batch}; torch threads "
        f"{torch.get_num_threads()}; {os.cpu_count()} CPUs; "
        + (
            f"{args.epochs} whole epochs (evaluation included) per phase"
            if args.epochs
            else f"{args.seconds:.0f} s per phase"
        )
    )
    import gc

    gc.collect()
    gc.freeze()
    if args.warmup > 0:
        w = headless(ds, mcfg, tcfg, args.warmup)
        print(f"warm-up (not counted): headless {w['samples_per_s']:,.0f} samples/s in {w['seconds']:.1f} s")
    ratios, ratios_flush, late95, clicks_set, clicks_paint = [], [], [], [], []
    for r in range(args.rounds):
        h = headless(ds, mcfg, tcfg, args.seconds, args.epochs)
        g = with_window(app, ds, mcfg, tcfg, args.seconds, args.clicks, args.gui_share, args.epochs, args.probe_ms)
        ratios.append(g["samples_per_s"] / h["samples_per_s"])
        ratios_flush.append(g["median_flush_rate"] / h["median_flush_rate"])
        late95.append(g["late_p95"])
        clicks_set += g["click_set"]
        clicks_paint += g["click_paint"]
        print(
            f"round {r + 1}: headless {h['samples_per_s']:,.0f} samples/s in {h['seconds']:.1f} s "
            f"(steps only {h['median_flush_rate']:,.0f}); "
            f"window {g['samples_per_s']:,.0f} samples/s in {g['seconds']:.1f} s (steps only {g['median_flush_rate']:,.0f}); "
            f"ratio {ratios[-1]:.3f} (steps only {ratios_flush[-1]:.3f}); "
            f"steps by CPU threads: headless {_shares(h['threads'])}, window {_shares(g['threads'])}"
        )
        print(
            f"         event-loop lateness ms: p50 {g['late_p50']:.2f}  p95 {g['late_p95']:.2f}  max {g['late_max']:.1f} "
            f"({g['ticks']} ticks of a {args.probe_ms} ms timer)"
        )
        print(
            f"         GUI thread CPU while training: {100 * g['gui_share']:.1f}% of a core; redraws/s: "
            + ", ".join(f"{k} {v:.2f}" for k, v in g["draws_per_s"].items())
        )
        print(
            f"         click -> image set ms: p50 {pct(g['click_set'], 50):.2f}  p95 {pct(g['click_set'], 95):.2f}  "
            f"max {max(g['click_set'] or [float('nan')]):.2f}; -> painted p50 {pct(g['click_paint'], 50):.2f}  "
            f"p95 {pct(g['click_paint'], 95):.2f}  ({len(g['click_set'])} clicks, {g['clicks_missed']} missed)"
        )
    print(
        f"SUMMARY throughput ratio window/headless: {min(ratios):.3f}..{max(ratios):.3f} (target >= 0.95 in every round); "
        f"lateness p95 {max(late95):.1f} ms (target <= 30); click->painted p95 {pct(clicks_paint, 95):.1f} ms "
        f"(target <= 50)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
