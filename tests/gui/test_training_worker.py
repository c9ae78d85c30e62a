"""TrainingWorker: messages arrive as signals on the GUI thread; stop/close end the worker quickly."""

from __future__ import annotations

import threading

import numpy as np

from engine.messages import EpochSummary, LatentSnapshot, MetricsChunk, RunStatus
from gui.training_worker import TrainingWorker
from gui.workers import Worker, live_threads

from .conftest import SMALL_MODEL, SMALL_TRAIN


def test_session_emits_every_kind_of_message(qtbot, tiny):
    s = TrainingWorker()
    got = {"metrics": [], "epoch": [], "latent": [], "decoder": [], "state": []}
    for name, lst in got.items():
        getattr(s, name).connect(lambda m, lst=lst: lst.append((m, threading.current_thread())))
    with qtbot.waitSignals([s.started, s.finished], timeout=30_000, order="strict"):
        s.start(tiny, SMALL_MODEL, SMALL_TRAIN)
    assert got["state"][-1][0].state is RunStatus.FINISHED
    assert all(isinstance(m, MetricsChunk) for m, _ in got["metrics"]) and got["metrics"]
    assert [m.epoch for m, _ in got["epoch"]] == [0, 1] and isinstance(got["epoch"][0][0], EpochSummary)
    assert isinstance(got["latent"][-1][0], LatentSnapshot)
    assert got["decoder"][-1][0].step == 2 * 10  # 600 / 64 -> 10 steps per epoch
    main = threading.main_thread()
    assert all(t is main for lst in got.values() for _, t in lst), "signals must be delivered on the GUI thread"
    # every step arrived once, in order
    steps = np.concatenate([m.steps for m, _ in got["metrics"]])
    assert steps.tolist() == list(range(s.run.step)) and s.run.step == 20
    assert not live_threads()


def test_stop_and_close_are_quick(qtbot, tiny):
    s = TrainingWorker()
    with qtbot.waitSignal(s.metrics, timeout=30_000):
        s.start(tiny, SMALL_MODEL, SMALL_TRAIN.replace(epochs=10_000))
    assert s.close(2000)  # True only when the thread ended within the 2 s wait
    assert not s.thread.isRunning()
    assert s.run.step < s.run.total_steps  # stopped at a step, not run to its end


def test_stop_before_the_run_is_built(qtbot, tiny):
    s = TrainingWorker()
    states = []
    s.state.connect(lambda m: states.append(m.state))
    with qtbot.waitSignal(s.finished, timeout=10_000):  # after the run's last message
        s.start(tiny, SMALL_MODEL, SMALL_TRAIN.replace(epochs=10_000))
        s.stop()  # the worker may still be constructing the Trainer
    assert not s.is_active() and states[-1:] in ([], [RunStatus.STOPPED])  # stopped before it ran, or at a step


def test_config_error_becomes_an_error_signal(qtbot, tiny):
    s = TrainingWorker()
    bad = SMALL_MODEL.replace(image_shape=(1, 28, 28))  # does not fit the 12×12 data
    with qtbot.waitSignal(s.error, timeout=10_000) as blocker:
        s.start(tiny, bad, SMALL_TRAIN)
    assert "12" in blocker.args[0].text and "28" in blocker.args[0].text
    qtbot.waitUntil(lambda: not s.is_active())


def test_worker_delivers_result_items_and_error(qtbot):
    results = []
    with qtbot.waitSignal(Worker(lambda: 41 + 1, on_result=results.append).done, timeout=5000):
        pass
    assert results == [42]
    items = []
    w = Worker(lambda: iter(range(3)), on_item=items.append, on_result=results.append)
    with qtbot.waitSignal(w.done, timeout=5000):
        pass
    assert items == [0, 1, 2] and results[-1] is None
    errors = []
    w = Worker(lambda: 1 / 0, on_result=results.append, on_error=lambda e, tb: errors.append((type(e), tb)))
    with qtbot.waitSignal(w.done, timeout=5000):
        pass
    assert errors[0][0] is ZeroDivisionError and "ZeroDivisionError" in errors[0][1] and len(results) == 2


def test_worker_applies_the_thread_policy_and_a_cancelled_one_delivers_nothing(qtbot):
    import torch

    seen = []
    w = Worker(lambda: seen.append(torch.get_num_threads()) or "x", on_result=seen.append)
    with qtbot.waitSignal(w.done, timeout=5000):
        pass
    assert seen == [1, "x"]  # a background job runs torch single-threaded
    gate = threading.Event()
    got = []
    w = Worker(lambda: gate.wait(5) and "late", on_result=got.append)
    w.cancel()
    gate.set()
    with qtbot.waitSignal(w.done, timeout=5000):
        pass
    assert got == []
