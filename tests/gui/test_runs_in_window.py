"""The "Runs" page through the real window: two checkpoints added with "Add checkpoint…" are overlaid (both curves
and both rate–distortion traces, a legend naming the differing β), unticking hides one, removing frees it; a run
replaced by a new one stays in the list; a bad file gets one line."""

from __future__ import annotations

import gc
import weakref

import numpy as np
from PySide6.QtCore import Qt

from engine.checkpoint import checkpoint_of_run, write_checkpoint
from engine.config import TrainConfig
from engine.runs import rate_distortion
from engine.trainer import Trainer

from .conftest import SMALL_MODEL, SMALL_TRAIN, make_tiny
from .window_helpers import train_to_end


def _checkpoint(path, beta):
    ds = make_tiny()
    run = Trainer(ds, SMALL_MODEL, SMALL_TRAIN.replace(beta=beta, metrics_hz=1e9, snapshot_interval_s=0.0))
    for _ in run.run():
        pass
    write_checkpoint(path, checkpoint_of_run(run))
    return run.history


def _add(qtbot, w, path):
    n = len(w.runs.records)
    w.ask_open_path = lambda title, kinds: str(path)
    qtbot.mouseClick(w.runs.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(w.runs.records) == n + 1 or w.runs.message.isVisible(), timeout=10_000)
    qtbot.waitUntil(lambda: w.inside_actions.run_loader is None, timeout=5000)


def test_two_checkpoints_overlaid_untick_and_remove(qtbot, make_window, tmp_path):
    h1 = _checkpoint(tmp_path / "b1.ckpt", 1.0)
    h4 = _checkpoint(tmp_path / "b4.ckpt", 4.0)
    w = make_window()
    w.show_page(w.runs)
    _add(qtbot, w, tmp_path / "b1.ckpt")
    _add(qtbot, w, tmp_path / "b4.ckpt")
    assert [r.name for r in w.runs.records] == ["b1.ckpt", "b4.ckpt"]
    assert w.runs.list.count() == 2
    for record, history in zip(w.runs.records, (h1, h4)):
        elbo, kl, rd = w.runs.items[id(record)]
        np.testing.assert_allclose(elbo.getData()[1], [e.test_elbo for e in history.epochs])
        np.testing.assert_allclose(kl.getData()[1], [e.test_kl for e in history.epochs])
        np.testing.assert_allclose(rd.getData()[0], rate_distortion(history)[0])
        np.testing.assert_allclose(rd.getData()[1], rate_distortion(history)[1])
    del record, elbo, kl, rd  # the test holds no run of its own
    assert "b1.ckpt (β=1)" in w.runs.legend.text() and "b4.ckpt (β=4)" in w.runs.legend.text()
    # untick the first: its curves leave the plots
    w.runs.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert id(w.runs.records[0]) not in w.runs.items and len(w.runs.items) == 1
    # remove the second: it leaves the list and nothing holds its curves any more
    freed = weakref.ref(w.runs.records[1].history)
    w.runs.list.setCurrentRow(1)
    qtbot.mouseClick(w.runs.remove_button, Qt.MouseButton.LeftButton)
    assert [r.name for r in w.runs.records] == ["b1.ckpt"] and w.runs.list.count() == 1 and not w.runs.items
    gc.collect()
    assert freed() is None


def test_a_replaced_run_stays_in_the_list_and_a_bad_file_gets_one_line(qtbot, make_window, tmp_path):
    w = make_window(train=SMALL_TRAIN.replace(epochs=1))
    train_to_end(qtbot, w)
    first = w.state.history
    w.settings_panel.set_configs(train_cfg=TrainConfig(**{**SMALL_TRAIN.to_dict(), "epochs": 1, "beta": 2.0}))
    w.ask_start_choice = lambda described, cannot: "new"
    train_to_end(qtbot, w)
    assert [r.name for r in w.runs.records] == ["run 1"] and w.runs.records[0].history is first
    assert w.runs.current.name == "run 2" and w.runs.current.history is w.state.history
    assert w.runs.list.item(0).text() == "run 2 (current) · 1 epoch"  # counted as the epochs arrive
    assert len(w.runs.items) == 2  # both ticked, both drawn
    assert "(β=2)" in w.runs.legend.text() and "(β=1)" in w.runs.legend.text()
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    w.show_page(w.runs)
    _add(qtbot, w, bad)
    assert w.runs.message.isVisible() and "bad.ckpt" in w.runs.message.text() and "\n" not in w.runs.message.text()
    assert len(w.runs.records) == 1
