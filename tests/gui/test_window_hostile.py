"""The window under hostile and unlucky input: a FIFO as the dataset, saves that fail mid-run, closing during a
long IWAE evaluation, settings that cannot work with the dataset, a damaged settings file, and a checkpoint of
other data in the posterior panel."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from PySide6.QtCore import QSettings, Qt

from engine.config import ModelConfig
from engine.data.dataset import Dataset
from engine.model import VAE
from engine.snapshot import decoder_snapshot

from .conftest import SMALL_MODEL, SMALL_TRAIN, wait_finished

LONG = SMALL_TRAIN.replace(epochs=100_000)


def _running(qtbot, w, steps=5):
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state.status == "running" and len(w.state.history) > steps, timeout=20_000)


def test_a_fifo_as_dataset_is_refused_and_the_window_stays_usable(qtbot, make_window, tmp_path, tiny):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    w = make_window()
    w.open_dataset(str(fifo))
    qtbot.waitUntil(lambda: bool(w.errors), timeout=10_000)
    assert w.errors[0][1] == "'pipe.npz': is a named pipe (FIFO), not a regular file"
    assert w.state.dataset is tiny and not w.loader.busy()
    assert w.window_actions.start.isEnabled() and w.window_actions.open.isEnabled()


@pytest.mark.parametrize("failure", ["folder_is_a_file", "disk_full"])
def test_a_failed_save_mid_run_is_a_message_and_training_goes_on(qtbot, make_window, tmp_path, monkeypatch, failure):
    w = make_window(train=LONG)
    _running(qtbot, w)
    if failure == "folder_is_a_file":
        (tmp_path / "blocker").write_text("x")
        target = tmp_path / "blocker" / "run.pt"
    else:

        def disk_full(obj, f):
            f.write(b"partial")
            raise RuntimeError("[enforce fail at inline_container.cc:778] . unexpected pos 4224 vs 4112")

        monkeypatch.setattr(torch, "save", disk_full)
        target = tmp_path / "run.pt"
    w.checkpoints.save(str(target))
    qtbot.waitUntil(lambda: bool(w.errors), timeout=10_000)
    title, text = w.errors[0]
    assert title == "Could not save the checkpoint" and "'run.pt'" in text and ".tmp" not in text
    n = len(w.state.history)
    qtbot.waitUntil(lambda: len(w.state.history) > n + 5, timeout=10_000)  # still training
    assert w.state.status == "running" and w.session.is_active()
    assert w.window_actions.pause.isEnabled() and w.window_actions.stop.isEnabled()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]  # no temp file left behind
    w.training.stop()
    wait_finished(qtbot, w)


def test_a_failed_save_after_the_run_is_a_message(qtbot, make_window, tmp_path):
    w = make_window()
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, w)
    (tmp_path / "blocker").write_text("x")
    w.checkpoints.save(str(tmp_path / "blocker" / "done.pt"))
    assert w.errors and "'done.pt'" in w.errors[0][1]
    assert w.state.status == "finished"


def test_closing_during_a_long_iwae_evaluation_returns_promptly(qtbot, make_window):
    w = make_window(train=SMALL_TRAIN.replace(iwae_k=100_000, iwae_examples=200))
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.training.evaluating, timeout=20_000)  # the epoch's last step: the evaluation runs now
    time.sleep(0.3)
    thread = w.session.thread
    assert thread.isRunning()
    assert w.close()
    assert not thread.isRunning()


def test_settings_that_cannot_work_with_the_dataset_are_refused_in_the_settings_panel(qtbot, make_window, monkeypatch):
    monkeypatch.setattr("engine.memory.available_bytes", lambda: 16 << 20)  # a tiny machine: an 8 MB budget
    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 3, 3)).astype(np.float32)
    w = make_window(
        dataset=Dataset("three", "test:three", x[:30], x[30:]),
        model=SMALL_MODEL.replace(image_shape=(1, 3, 3), hidden=65536),
    )
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    assert not w.session.is_active()
    problem = w.settings_panel.problem
    assert problem.isVisible() and "mostly the model (hidden 65536" in problem.text()
    assert w.errors == []
    w.settings_panel.widgets["hidden"].setValue(32)
    assert not problem.isVisible()  # a change clears it
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, w)
    assert w.state.status == "finished" and w.errors == []


def test_a_damaged_value_in_the_settings_file_falls_back_alone(qtbot, make_window, settings_file):
    s = QSettings(settings_file, QSettings.Format.IniFormat)
    s.setValue("train/iwae_examples", 0)
    s.setValue("train/eval_examples", 0)
    s.setValue("train/epochs", 2)
    s.setValue("model/hidden", 24)
    s.sync()
    w = make_window(configure=False, settings=QSettings(settings_file, QSettings.Format.IniFormat))
    t = w.settings_panel.train_config()
    assert t.iwae_examples >= 1 and t.eval_examples >= 1
    assert t.epochs == 2 and w.settings_panel.model_config((1, 12, 12)).hidden == 24


def test_a_checkpoint_of_other_images_gives_a_sentence_in_the_posterior_panel(qtbot, make_window, tmp_path):
    w = make_window()
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, w)
    snap = w.state.snapshot
    other = dict(snap.model_config, image_shape=[1, 28, 28])
    # as if a checkpoint of 28×28 data was loaded (weights of that shape: the drawing timer may decode with them)
    w.state.set_snapshot(decoder_snapshot(VAE(ModelConfig.from_dict(other)), snap.step))
    w.inference.show_example(0)
    text = w.inference.status.text()
    assert "The model takes 1×28×28 images, this dataset's are 1×12×12" in text
    assert "mat1" not in text
