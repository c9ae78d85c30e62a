"""One source of truth, driven through the window: another dataset or another model empties every view that
belonged to the old one, stale results are dropped, Start after a trained model asks, and the layout holds at
1024×700."""

from __future__ import annotations

import os
import stat

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from gui.panels.curves import IDLE_CAPTION
from gui.panels.latent import EMPTY_TITLE

from .conftest import SMALL_MODEL, SMALL_TRAIN, make_tiny, wait_finished
from .window_helpers import LONG, click_latent, train_to_end


def _plotted(w) -> int:
    return sum(len(it) for it in w.latent.items)


def test_another_dataset_empties_every_view_of_the_old_model(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    click_latent(qtbot, w, *(float(v) for v in w.latent.points[0]))  # decodes, selects example
    qtbot.waitUntil(lambda: w.gallery.images["manifold"] is not None, timeout=5000)
    assert w.generated.image is not None and w.state.example is not None
    # all 200 codes are placed; points that share a screen pixel with one of their class are drawn once
    assert len(w.latent.points) == 200 and 180 <= _plotted(w) <= 200
    assert w.state.picked is not None and w.latent.marker_pos is not None
    asked = []
    w.ask_close_model = lambda described, name: asked.append((described, name)) or "discard"
    other = make_tiny(n_train=200, n_test=60, side=10, classes=4, seed=9)  # 10×10: the 12×12 model cannot use it
    assert w.set_dataset(other)
    assert asked and "20 steps" in asked[0][0] and asked[0][1] == other.name
    qtbot.wait(200)  # a few refresh ticks
    # the dataset panel and the title show the new data
    assert w.dataset_panel.title.text() == other.name and "4 classes" in w.dataset_panel.summary.text()
    assert w.windowTitle() == other.name
    # everything that belonged to the old model is empty
    assert w.state.snapshot is None and w.state.model_config is None and len(w.state.history) == 0
    assert _plotted(w) == 0 and len(w.latent.items) == 4
    assert w.latent.plot.titleLabel.text == EMPTY_TITLE
    assert len(w.curves.steps) == 0 and w.curves.caption.text() == IDLE_CAPTION
    assert len(w.curves.test_elbo.xData if w.curves.test_elbo.xData is not None else []) == 0
    assert len(w.curves.bars.opts["height"]) == 0
    assert w.generated.image is None and w.generated.coords.text() == "z = —"
    assert w.state.picked is None and w.latent.marker_pos is None
    assert all(img is None for img in w.gallery.images.values())
    assert w.inference.current_index is None and w.inference.view is None
    assert w.inference.values["log_px"].text() == "—" and "Example #" not in w.inference.status.text()
    assert w.status.progress.format() == "not started" and w.status.device_label.text() == "device —"
    assert not w.window_actions.save_checkpoint.isEnabled()
    for a in w.window_actions.exports.values():
        assert not a.isEnabled() and a.toolTip().startswith(("Nothing", "No "))
    # and a new model trains on the new data without asking
    train_to_end(qtbot, w)
    assert w.start_asks == [] and w.latent.shown.means.shape == (60, 2)


def test_the_picked_point_is_a_point_of_the_model_and_the_marker_follows_it(qtbot, make_window):
    w = make_window(model=SMALL_MODEL.replace(latent_dim=4))
    train_to_end(qtbot, w)
    seen = []
    w.state.picked_changed.connect(seen.append)
    assert not w.state.pick(np.zeros(2, np.float32))  # not a point of this 4-d model: nothing changes
    assert not w.state.pick(np.array([0, np.nan, 0, 0], np.float32))
    assert seen == [] and w.state.picked is None and w.latent.marker_pos is None
    z = w.latent.plane.from_plane(np.array([[0.5, -0.25]]))[0]
    assert w.state.pick(z)
    assert len(seen) == 1 and w.state.picked.dtype == np.float32
    np.testing.assert_allclose(w.latent.marker_pos, (0.5, -0.25), atol=1e-5)  # through the PCA plane
    qtbot.waitUntil(lambda: w.generated.image is not None, timeout=2000)
    assert "PC = (+0.50, -0.25)" in w.generated.coords.text()


def test_cancelling_the_switch_keeps_model_and_dataset(qtbot, make_window, tiny):
    w = make_window()
    train_to_end(qtbot, w)
    w.ask_close_model = lambda described, name: "cancel"
    assert not w.set_dataset(make_tiny(n_train=100, n_test=20, side=8, seed=4))
    assert w.state.dataset is tiny and w.state.snapshot is not None and len(w.state.history) == 20


def test_a_dataset_the_model_fits_keeps_the_model_and_redraws_its_views(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    snap = w.state.snapshot
    other = make_tiny(n_train=300, n_test=80, side=12, classes=3, seed=11)
    assert w.set_dataset(other)
    assert w.state.snapshot is snap and len(w.state.history) == 20  # the same model, its curves
    qtbot.waitUntil(lambda: w.state.latent is not None, timeout=10_000)  # re-encoded for the new test images
    assert w.state.latent.indices.max() < 80
    qtbot.waitUntil(lambda: w.latent.shown is w.state.latent, timeout=5000)
    assert _plotted(w) == 80


def test_d8_run_then_d2_run_has_the_posterior_page(qtbot, make_window):
    w = make_window(model=SMALL_MODEL.replace(latent_dim=8), train=SMALL_TRAIN.replace(epochs=1))
    train_to_end(qtbot, w)
    w.state.select_example(3)
    qtbot.waitUntil(lambda: w.inference.view is not None, timeout=15_000)
    assert "d = 8" in w.inference.status.text() and w.inference.view.grid is None
    assert w.ui.tabs.currentIndex() == 0  # selecting never switches away from the Training page
    w.settings_panel.set_configs(SMALL_MODEL, SMALL_TRAIN.replace(epochs=1))  # d = 2
    train_to_end(qtbot, w)
    described, why = w.start_asks[-1]
    assert "10 steps" in described and "model settings" in why  # continuing was impossible: a new model
    assert "d = 8" not in w.inference.status.text() and w.inference.view is None
    qtbot.wait(200)
    assert len(w.curves.bars.opts["height"]) == 2
    w.show_page(w.inference)
    w.state.select_example(3)
    qtbot.waitUntil(lambda: w.inference.view is not None, timeout=15_000)
    assert w.inference.view.grid is not None and w.inference.values["log_px"].text().endswith("nats")
    assert sum(w.inference.overlay.contour_vertex_counts()) > 0


def test_a_result_for_a_replaced_model_is_dropped(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    st = w.state
    token, lat = st.identity(), st.latent
    st.select_example(5)
    worker = w.inference.posterior_worker
    assert worker is not None  # the posterior is being computed for the trained model
    st.new_model(SMALL_MODEL, "run")  # the model is replaced meanwhile ...
    st.select_example(5)  # ... and the same example selected again: only the identity tells the result is stale
    qtbot.waitUntil(lambda: not worker.is_running(), timeout=15_000)
    qtbot.wait(50)
    assert w.inference.current_index == 5
    assert w.inference.view is None and w.inference.values["log_px"].text() == "—"
    assert not st.set_latent(lat, token) and st.latent is None  # a scatter for the old model is refused too


def test_start_after_stop_asks_and_each_choice_does_what_it_says(qtbot, make_window):
    w = make_window(train=LONG)
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(w.state.history) > 5, timeout=20_000)
    w.stop_training()
    wait_finished(qtbot, w)
    steps = w.session.run.step
    rows = len(w.state.history)
    answers = []
    w.ask_start_choice = lambda described, why: answers.append((described, why)) or choice
    # Cancel: nothing starts, nothing changes
    choice = "cancel"
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    assert answers[-1][1] is None and f"{steps:,} steps" in answers[-1][0]
    assert not w.session.is_active() and w.session.run.step == steps and len(w.state.history) == rows
    # Continue: the same model goes on from its step, with its curves
    choice = "continue"
    with qtbot.waitSignal(w.session.started, timeout=20_000) as started:
        qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    assert started.args[0].start_step == steps
    qtbot.waitUntil(lambda: len(w.state.history) > rows + 3, timeout=20_000)
    logged = w.state.history.steps
    assert logged[0] == 0 and np.all(np.diff(logged) == 1)  # one history, no gap, no restart
    w.stop_training()
    wait_finished(qtbot, w)
    assert w.session.run.step > steps
    # New: a fresh model from step 0, its curves start over
    choice = "new"
    model_before = w.state.identity().model
    runs = []
    w.session.started.connect(runs.append)
    with qtbot.waitSignals([w.state.history_reset, w.session.started], timeout=20_000):
        qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    assert runs[-1].start_step == 0
    assert w.state.identity().model != model_before
    qtbot.waitUntil(lambda: len(w.state.history) > 0, timeout=20_000)
    assert w.state.history.steps[0] == 0  # the curves start over
    w.stop_training()
    wait_finished(qtbot, w)
    assert len(answers) == 3


def test_a_finished_run_says_how_to_continue_it(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    train_to_end(qtbot, w)  # Start again: the fixture answers "new" when continuing is impossible
    described, why = w.start_asks[0]
    assert "Epochs above 2" in why
    assert w.session.run.step == 20  # a new model trained its 2 epochs


def test_paused_and_stopped_status_shows_no_speed(qtbot, make_window):
    w = make_window(train=LONG)
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: "samples/s" in w.status.rate_label.text() and w.status.rate_label.text()[0].isdigit(), timeout=20_000
    )
    w.session.pause()
    qtbot.waitUntil(lambda: w.state.status == "paused", timeout=5000)
    qtbot.wait(300)
    assert w.status.rate_label.text() == "— samples/s" and w.status.eta_label.text() == "ETA —"
    w.stop_training()
    wait_finished(qtbot, w)
    assert w.status.rate_label.text() == "— samples/s" and w.status.eta_label.text() == "ETA —"


def test_at_1024_by_700_no_settings_widget_is_clipped(qtbot, make_window):
    w = make_window()
    w.resize(1024, 700)
    qtbot.waitUntil(lambda: w.width() <= 1024, timeout=2000)
    train_to_end(qtbot, w)  # results arrive: the column must not shrink
    qtbot.wait(300)
    QApplication.processEvents()
    for key, widget in w.settings_panel.widgets.items():
        assert widget.width() >= widget.minimumSizeHint().width(), key
    assert w.ui.sidebar.width() >= w.ui.sidebar.widget().minimumSizeHint().width()
    # the curves' legend sits above the plots, never inside them
    assert w.curves.legend.isVisible()
    for p in (w.curves.elbo, w.curves.recon, w.curves.kl):
        assert p.plot.legend is None


def test_exports_say_why_they_are_disabled(make_window):
    w = make_window()
    assert not w.window_actions.export_generated.isEnabled() and "click" in w.window_actions.export_generated.toolTip()
    assert not w.window_actions.export_metrics.isEnabled() and "No metrics" in w.window_actions.export_metrics.toolTip()


def test_written_files_follow_the_umask(qtbot, make_window, tmp_path):
    w = make_window()
    train_to_end(qtbot, w)
    old = os.umask(0o022)
    try:
        w.ask_save_path = lambda *a: str(tmp_path / a[2])
        w.window_actions.save_checkpoint.trigger()
        w.window_actions.export_metrics.trigger()
        os.umask(0o077)
        w.ask_save_path = lambda *a: str(tmp_path / ("private-" + a[2]))
        w.window_actions.export_latents.trigger()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "vae.pt").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "metrics.csv").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "private-latents.tsv").st_mode) == 0o600


def test_loading_a_checkpoint_over_a_trained_model_asks_first(qtbot, make_window, tmp_path):
    w = make_window()
    train_to_end(qtbot, w)
    path = str(tmp_path / "a.pt")
    w.checkpoints.save(path)
    train_to_end(qtbot, w)  # a second, new model (20 more steps of its own)
    snap = w.state.snapshot
    asked = []
    w.ask_replace_model = lambda described, name: asked.append((described, name)) or "cancel"
    w.checkpoints.load(path)
    qtbot.waitUntil(lambda: bool(asked), timeout=10_000)
    qtbot.wait(50)
    assert asked[0][1] == "a.pt" and w.state.snapshot is snap and w.state.source == "run"
    w.ask_replace_model = lambda described, name: "discard"
    w.checkpoints.load(path)
    qtbot.waitUntil(lambda: w.state.source == "checkpoint", timeout=10_000)
    assert w.state.checkpoint.step == 20 and w.state.snapshot is not snap
