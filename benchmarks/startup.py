"""Start-up time of the window (prints figures; not a test): from launching a fresh process to the first paint
of its window, the default dataset read, the main window ready with it, and the first training steps.

    python benchmarks/startup.py [--rounds 3]

Each round starts ``gui.app.run_app`` in a new Python process (offscreen, an empty settings folder, so the
default dataset and default settings), presses Start once the main window is shown, and quits at the first
metrics of the run (the first ~0.1 s of steps). Times are from the launch, Python's own start included."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
offset = time.time() - time.perf_counter()
from gui.app import run_app

marks = {}

def on_ready(startup):
    for k, v in startup.timeline.items():
        marks[k] = startup.t0 + v + offset
    w = startup.window

    def first(chunk):
        marks["first training steps"] = time.time()
        w.session.metrics.disconnect(first)
        w.ask_save_before_close = lambda: "discard"  # no dialog: quit
        w.close()

    w.session.metrics.connect(first)
    marks["start pressed"] = time.time()
    w.window_actions.start.trigger()

run_app([], on_ready=on_ready)
print("MARKS " + json.dumps(marks))
"""

ORDER = ("first paint", "dataset loaded", "modules loaded", "window ready", "first training steps")


def one_round() -> dict:
    with tempfile.TemporaryDirectory() as home:
        env = dict(
            os.environ,
            QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
            HOME=home,
            XDG_CONFIG_HOME=str(Path(home) / "config"),
            PYTHONPATH=str(ROOT),
            ELBO_STUDIO_COMPILE="off",  # the first steps are eager either way; no compile left running at the quit
        )
        t0 = time.time()
        r = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True)
        line = [s for s in r.stdout.splitlines() if s.startswith("MARKS ")]
        if r.returncode or not line:
            raise SystemExit(f"the app failed: {r.stderr[-2000:]}")
        return {k: v - t0 for k, v in json.loads(line[0][6:]).items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"load before: {os.getloadavg()}")
    rounds = []
    for r in range(args.rounds):
        rounds.append(one_round())
        print(
            f"round {r + 1}: " + ", ".join(f"{k} {rounds[-1][k]:.2f} s" for k in ORDER if k in rounds[-1]), flush=True
        )
    print(f"\nmedian of {args.rounds} rounds (seconds from launching the process):")
    for k in ORDER:
        print(f"  {k:22s} {statistics.median(r[k] for r in rounds):6.2f}")
    print("targets: first paint <= 1.5 s, dataset ready <= 3 s")
    print(f"load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
