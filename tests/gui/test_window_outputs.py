"""The window never loses a trained model or an open file without asking: closing with unsaved training asks Save /
Discard / Cancel, and a save dialog's answer that is the open dataset (compared as files) asks before replacing it."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.checkpoint import load_checkpoint
from engine.data import load_dataset

from .conftest import make_tiny, wait_finished

pytestmark = pytest.mark.slow  # each test trains through the window


def _finished(qtbot, w):
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, w)


def _record(w, answer):
    asked = []
    w.ask_save_model_before_close = lambda described: asked.append(described) or answer
    return asked


# ------------------------------------------------------------------------------------------ closing
def test_closing_after_a_finished_run_asks_and_cancel_keeps_the_window(qtbot, make_window):
    w = make_window()
    _finished(qtbot, w)
    asked = _record(w, "cancel")
    assert not w.close()
    assert w.isVisible() and asked == [f"The current model has trained {w.session.run.step:,} steps (2 epochs)."]
    asked = _record(w, "discard")
    assert w.close() and len(asked) == 1


def test_save_on_close_writes_the_model_then_closes(qtbot, make_window, tmp_path):
    w = make_window()
    _finished(qtbot, w)
    _record(w, "save")
    path = tmp_path / "kept.pt"
    w.pick_save_file = lambda *a: str(path)
    assert w.close()
    assert load_checkpoint(path).step == w.session.run.step == 20


def test_a_save_that_fails_keeps_the_window_open(qtbot, make_window, tmp_path):
    w = make_window()
    _finished(qtbot, w)
    _record(w, "save")
    (tmp_path / "file").write_text("x")
    w.pick_save_file = lambda *a: str(tmp_path / "file" / "kept.pt")  # a folder that is a file
    assert not w.close()
    assert w.errors and w.errors[-1][0] == "Could not save the checkpoint"
    _record(w, "discard")
    assert w.close()


def test_a_saved_model_closes_without_asking_until_it_trains_again(qtbot, make_window, tmp_path):
    w = make_window()
    _finished(qtbot, w)
    w.pick_save_file = lambda *a: str(tmp_path / "run.pt")
    w.window_actions.save_checkpoint.trigger()
    asked = _record(w, "cancel")
    assert w.checkpoints.unsaved() is None
    # continued (Start → continue) from the saved step: the new steps are unsaved again
    w.settings_panel.set_configs(w.state.model_config, w.settings_panel.train_config().replace(epochs=3))
    _finished(qtbot, w)
    assert w.session.run.step == 30 and w.start_asks
    assert not w.close() and len(asked) == 1
    _record(w, "discard")


def test_a_loaded_checkpoint_closes_without_asking(qtbot, make_window, tmp_path):
    w = make_window()
    _finished(qtbot, w)
    path = str(tmp_path / "run.pt")
    w.pick_save_file = lambda *a: path
    w.window_actions.save_checkpoint.trigger()
    w2 = make_window()
    w2.ask_open_path = lambda *a: path
    w2.window_actions.load_checkpoint.trigger()
    qtbot.waitUntil(lambda: w2.state.source == "checkpoint", timeout=20_000)
    asked = _record(w2, "cancel")
    assert w2.close() and asked == []


# ------------------------------------------------------------------------------------------ save dialogs
def _window_on_file(make_window, tmp_path):
    ds = make_tiny()
    path = tmp_path / "tiny.npz"
    np.savez(path, x=(ds.x_train[:, 0] * 255).astype(np.uint8), y=ds.y_train)
    return make_window(dataset=load_dataset(path)), path


def test_exporting_over_the_open_dataset_asks_naming_it(qtbot, make_window, tmp_path):
    w, data = _window_on_file(make_window, tmp_path)
    _finished(qtbot, w)
    before = data.read_bytes()
    os.link(data, tmp_path / "alias.csv")  # another name of the same file
    for name in (data, tmp_path / "sub" / ".." / "tiny.npz", tmp_path / "alias.csv"):
        asked = []
        w.ask_replace_input = lambda clash: asked.append(clash) or False
        w.pick_save_file = lambda *a, n=name: str(n)
        w.window_actions.export_metrics.trigger()
        assert len(asked) == 1 and asked[0].other_role == "the open dataset" and asked[0].other == str(data)
        assert data.read_bytes() == before
    w.ask_replace_input = lambda clash: True  # the user says yes: replaced as asked
    w.pick_save_file = lambda *a: str(data)
    w.window_actions.export_metrics.trigger()
    assert data.read_bytes().startswith(b"step,")


def test_saving_elsewhere_does_not_ask(qtbot, make_window, tmp_path):
    w, data = _window_on_file(make_window, tmp_path)
    _finished(qtbot, w)
    w.ask_replace_input = lambda clash: (_ for _ in ()).throw(AssertionError("asked"))
    w.pick_save_file = lambda *a: str(tmp_path / "metrics.csv")
    w.window_actions.export_metrics.trigger()
    assert (tmp_path / "metrics.csv").read_bytes().startswith(b"step,")
