"""Every thread the window runs torch on follows the one CPU-thread policy (engine/threads.py): the training
thread uses the governor's count, every other thread (GUI, decoding, posterior grid, amortization study,
checkpoint loading) runs torch single-threaded. Checked from inside each thread, at every model call."""

from __future__ import annotations

import threading

import pytest
import torch
from PySide6.QtCore import QSettings, QThread, Qt

from engine.threads import usable_cores

from .window_helpers import click_latent, train_to_end


def _as_if_the_trainer_just_set(n: int) -> None:
    """torch gives a new thread the count last set by any thread: set it the way the training thread would, so a
    worker that skipped the policy would inherit it."""
    t = threading.Thread(target=torch.set_num_threads, args=(n,))
    t.start()
    t.join()


@pytest.mark.slow
def test_every_thread_that_runs_a_model_follows_the_policy(qtbot, make_window, tmp_path, monkeypatch):
    calls: list[tuple[str, int]] = []
    lock = threading.Lock()
    real_call = torch.nn.Module.__call__

    def recording_call(self, *args, **kwargs):
        name = QThread.currentThread().objectName() or threading.current_thread().name
        with lock:
            calls.append((name, torch.get_num_threads()))
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "__call__", recording_call)
    reported: list[int] = []
    w = make_window()
    w.session.metrics.connect(lambda chunk: reported.append(chunk.threads))
    train_to_end(qtbot, w)

    # a click on a test example: decoding on the GUI thread, its true posterior on a worker
    many = usable_cores()
    _as_if_the_trainer_just_set(many)
    x, y = (float(v) for v in w.latent.points[0])
    click_latent(qtbot, w, x, y)
    w.show_page(w.inference)
    qtbot.waitUntil(lambda: w.inference.view is not None and not w.inference.running_workers(), timeout=20_000)
    # the amortization study on its worker
    _as_if_the_trainer_just_set(many)
    with qtbot.waitSignal(w.inference.study_finished, timeout=60_000):
        qtbot.mouseClick(w.inference.study.selected_button, Qt.MouseButton.LeftButton)
    # a checkpoint saved, and loaded into a second window (loading encodes the scatter on a worker)
    path = str(tmp_path / "run.pt")
    w.ask_save_path = lambda *a: path
    w.window_actions.save_checkpoint.trigger()
    w2 = make_window(configure=False, settings=QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat))
    w2.ask_open_path = lambda *a: path
    _as_if_the_trainer_just_set(many)
    w2.window_actions.load_checkpoint.trigger()
    qtbot.waitUntil(lambda: w2.state.checkpoint is not None and w2.latent.shown is not None, timeout=10_000)

    training = [n for name, n in calls if name == "trainingThread"]
    others = {}
    for name, n in calls:
        if name != "trainingThread":
            others.setdefault(name, set()).add(n)
    assert training and reported
    assert set(training) <= set(range(1, usable_cores() + 1))
    assert set(reported) <= set(range(1, usable_cores() + 1))
    assert len(others) >= 3, f"expected the GUI thread and at least two workers to run a model: {sorted(others)}"
    assert all(counts == {1} for counts in others.values()), others
