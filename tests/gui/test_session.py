"""TrainingSession: messages arrive as signals on the GUI thread; stop/close end the worker quickly."""
from __future__ import annotations

import threading
import time

from engine.messages import EpochSummary, LatentSnapshot, MetricsChunk
from gui.session import BackgroundTask, TrainingSession, live_threads

from .conftest import SMALL_MODEL, SMALL_TRAIN


def test_session_emits_every_kind_of_message(qtbot, tiny):
    s = TrainingSession()
    got = {"metrics": [], "epoch": [], "latent": [], "decoder": [], "state": []}
    for name, lst in got.items():
        getattr(s, name).connect(lambda m, lst=lst: lst.append((m, threading.current_thread())))
    with qtbot.waitSignals([s.started, s.finished], timeout=30_000, order="strict"):
        s.start(tiny, SMALL_MODEL, SMALL_TRAIN)
    assert s.current_state == "finished"
    assert all(isinstance(m, MetricsChunk) for m, _ in got["metrics"]) and got["metrics"]
    assert [m.epoch for m, _ in got["epoch"]] == [0, 1] and isinstance(got["epoch"][0][0], EpochSummary)
    assert isinstance(got["latent"][-1][0], LatentSnapshot)
    assert got["decoder"][-1][0].step == 2 * 10  # 600 / 64 -> 10 steps per epoch
    main = threading.main_thread()
    assert all(t is main for lst in got.values() for _, t in lst), "signals must be delivered on the GUI thread"
    # the GUI-side history mirrors what the worker recorded
    assert len(s.history) == s.run.step == 20
    assert len(s.history.epochs) == 2
    assert not live_threads()


def test_stop_and_close_are_quick(qtbot, tiny):
    s = TrainingSession()
    with qtbot.waitSignal(s.metrics, timeout=30_000):
        s.start(tiny, SMALL_MODEL, SMALL_TRAIN.replace(epochs=10_000))
    t0 = time.monotonic()
    assert s.close(2000)
    assert time.monotonic() - t0 < 2.0
    assert not s.thread.isRunning()


def test_stop_before_the_run_is_built(qtbot, tiny):
    s = TrainingSession()
    s.start(tiny, SMALL_MODEL, SMALL_TRAIN.replace(epochs=10_000))
    s.stop()  # the worker may still be constructing the TrainingRun
    qtbot.waitUntil(lambda: not s.is_active(), timeout=10_000)
    assert s.current_state in ("stopped", "starting")


def test_config_error_becomes_an_error_signal(qtbot, tiny):
    s = TrainingSession()
    bad = SMALL_MODEL.replace(image_shape=(1, 28, 28))  # does not fit the 12×12 data
    with qtbot.waitSignal(s.error, timeout=10_000) as blocker:
        s.start(tiny, bad, SMALL_TRAIN)
    assert "12" in blocker.args[0].text and "28" in blocker.args[0].text
    qtbot.waitUntil(lambda: not s.is_active())


def test_background_task_delivers_result_and_error(qtbot):
    results = []
    with qtbot.waitCallback() as cb:
        BackgroundTask(lambda: 41 + 1, lambda r, e: (results.append((r, e)), cb()))
    assert results == [(42, None)]
    with qtbot.waitCallback() as cb:
        BackgroundTask(lambda: 1 / 0, lambda r, e: (results.append((r, type(e))), cb()))
    assert results[-1] == (None, ZeroDivisionError)
