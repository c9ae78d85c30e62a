"""The 2-D Lab while it trains (prints figures; not a test).

    python benchmarks/lab2d.py [--points 2000] [--seconds 15] [--rounds 3] [--set eight_gaussians] [--train-k 1]

Opens the 2-D Lab panel (offscreen, 1024×700), presses Start on ``--points`` points and, after a second of warm-up,
measures for ``--seconds``:

* redraw rate: frames drawn a second (each redraw updates every view: the mixture's points, samples and ellipses,
  the VAE's samples and manifold, the latent view and the curves) — target ≥ 20/s;
* density-map refresh rate: 100×100 log p(x) maps (exact mixture + IWAE-K VAE) drawn a second — target ≥ 2 Hz;
* event-loop lateness: a 5 ms QTimer records each interval, lateness = interval − 5 ms (p50 / p95 / max) —
  target p95 ≤ 30 ms;
* the run's own pace: ticks (EM steps) and VAE minibatch steps a second.

Medians over the rounds; the machine's load average is printed with them (this machine is shared)."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def pct(xs, q):
    return float(np.percentile(np.asarray(xs, float), q)) if len(xs) else float("nan")


def one_round(app, n_points: int, seconds: float, name: str, train_k: int = 1) -> dict:
    from PySide6.QtCore import QElapsedTimer, QTimer

    from gui.lab2d.panel import Lab2DPanel

    lab = Lab2DPanel()
    lab.resize(1024, 700)
    lab.show()
    c = lab.controls
    c.source.setCurrentIndex(c.source.findData(name))
    c.n_points.setValue(n_points)
    c.train_k.setValue(train_k)
    assert len(lab.points) == n_points
    lab.start()

    def spin(s: float) -> None:
        end = time.monotonic() + s
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.001)

    spin(1.0)  # warm-up: first frames and maps
    intervals: list[float] = []
    clock = QElapsedTimer()
    probe = QTimer()
    probe.setInterval(5)

    def on_probe():
        intervals.append(clock.restart() / 1000.0)

    probe.timeout.connect(on_probe)
    r0, m0 = lab.redraws, lab.map_redraws
    f0 = lab.frame
    t0 = time.perf_counter()
    clock.start()
    probe.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.0005)
    probe.stop()
    dt = time.perf_counter() - t0
    f1 = lab.frame
    out = {
        "redraw_hz": (lab.redraws - r0) / dt,
        "maps_hz": (lab.map_redraws - m0) / dt,
        "late": [max(0.0, (i - 0.005) * 1000) for i in intervals[1:]],
        "ticks_hz": (f1.tick - f0.tick) / dt,
        "vae_steps_hz": (f1.vae_steps - f0.vae_steps) / dt,
    }
    lab.shutdown()
    lab.close()
    lab.deleteLater()
    app.processEvents()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", default="eight_gaussians")
    ap.add_argument("--train-k", type=int, default=1, help="the VAE's Train on setting: 1 the ELBO, K the IWAE-K bound")
    args = ap.parse_args()

    import gc

    from PySide6.QtWidgets import QApplication

    from gui import style
    from gui.workers import apply_thread_policy

    app = QApplication.instance() or QApplication(sys.argv)
    style.apply_app_style(app)
    apply_thread_policy("gui")
    gc.collect()
    gc.freeze()  # as the app does (gui/app.py): no 200 ms collections while measuring
    print(
        f"2-D Lab, {args.points:,} points ({args.set}), {args.seconds:g} s × {args.rounds} rounds, offscreen 1024×700, "
        + ("trained on the ELBO" if args.train_k == 1 else f"trained on the IWAE-{args.train_k} bound")
    )
    rows = []
    for r in range(args.rounds):
        load = os.getloadavg()[0]
        g = one_round(app, args.points, args.seconds, args.set, args.train_k)
        g["load"] = load
        rows.append(g)
        print(
            f"round {r + 1}: redraws {g['redraw_hz']:.1f}/s  density maps {g['maps_hz']:.2f}/s  "
            f"lateness ms p50 {pct(g['late'], 50):.1f} p95 {pct(g['late'], 95):.1f} max {max(g['late']):.0f}  "
            f"ticks {g['ticks_hz']:.1f}/s  VAE steps {g['vae_steps_hz']:.0f}/s  (load average {load:.1f})"
        )
    med = statistics.median
    print(
        f"median: redraws {med(g['redraw_hz'] for g in rows):.1f}/s (target >= 20), density maps "
        f"{med(g['maps_hz'] for g in rows):.2f}/s (target >= 2), lateness p95 "
        f"{med(pct(g['late'], 95) for g in rows):.1f} ms (target <= 30), VAE steps "
        f"{med(g['vae_steps_hz'] for g in rows):.0f}/s; load average {med(g['load'] for g in rows):.1f} on "
        f"{os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
