"""The window, driven like a person would: menus, buttons, files, settings, closing (clicks in the latent plot:
test_latent_picking.py)."""

from __future__ import annotations

import csv
import io
import threading

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLabel, QProgressBar, QToolButton, QWidget

from engine.checkpoint import load_checkpoint
from gui.main_window import DatasetFileDialog, MainWindow

from .conftest import SMALL_MODEL, SMALL_TRAIN, make_tiny, wait_finished
from .window_helpers import LONG, click_latent, expected_image, train_to_end


# ------------------------------------------------------------------------------------------------ dataset
@pytest.mark.slow
def test_open_dataset_via_dialog(qtbot, make_window, tmp_path, monkeypatch):
    w = make_window()
    other = make_tiny(n_train=300, n_test=100, side=10, classes=4, seed=3)
    path = tmp_path / "other.npz"
    np.savez(
        path,
        x_train=(other.x_train[:, 0] * 255).astype(np.uint8),
        y_train=other.y_train,
        x_test=(other.x_test[:, 0] * 255).astype(np.uint8),
        y_test=other.y_test,
    )
    monkeypatch.setattr(DatasetFileDialog, "get_path", classmethod(lambda cls, parent, start="": str(path)))
    w.window_actions.open.trigger()
    assert w.dataset_panel.busy.isVisibleTo(w.dataset_panel)  # the busy indicator while loading
    qtbot.waitUntil(lambda: w.state.dataset is not None and w.state.dataset.source == str(path), timeout=10_000)
    assert not w.dataset_panel.busy.isVisibleTo(w.dataset_panel)
    text = w.dataset_panel.summary.text()
    assert "300" in text and "100" in text and "1×10×10" in text and "4 classes" in text
    assert w.dataset_panel.preview.array is not None
    assert w.errors == []
    recent = [a.data() for a in w.ui.recent_menu.actions() if a.data()]
    assert recent == [str(path)]
    assert w.window_actions.start.isEnabled()


@pytest.mark.slow
def test_bad_file_shows_loader_message_and_keeps_dataset(qtbot, make_window, tmp_path, monkeypatch, tiny):
    w = make_window()
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip archive")
    monkeypatch.setattr(DatasetFileDialog, "get_path", classmethod(lambda cls, parent, start="": str(bad)))
    w.window_actions.open.trigger()
    qtbot.waitUntil(lambda: bool(w.errors), timeout=10_000)
    title, text = w.errors[0]
    assert "broken.npz" in text and "\n" not in text
    assert w.state.dataset is tiny
    assert w.dataset_panel.title.text() == tiny.name
    assert w.window_actions.start.isEnabled()


def test_recent_dataset_reopens(qtbot, make_window, tmp_path):
    w = make_window()
    other = make_tiny(n_train=100, n_test=20, side=8, seed=5)
    path = tmp_path / "small.npz"
    np.savez(path, x_train=other.x_train, y_train=other.y_train, x_test=other.x_test, y_test=other.y_test)
    w.open_dataset(str(path))
    qtbot.waitUntil(lambda: w.state.dataset.source == str(path), timeout=10_000)
    w.set_dataset(make_tiny())
    action = next(a for a in w.ui.recent_menu.actions() if a.data() == str(path))
    action.trigger()
    qtbot.waitUntil(lambda: w.state.dataset.source == str(path), timeout=10_000)


# ------------------------------------------------------------------------------------------------ training
def test_start_fills_curves_scatter_and_status(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    qtbot.wait(250)  # a refresh tick
    x = w.curves.elbo.smooth.xData
    assert x is not None and len(x) == 20
    assert len(w.curves.test_elbo.xData) == 2 and len(w.curves.test_iwae.xData) == 2
    assert np.all(np.isfinite(w.curves.test_iwae.yData))
    assert len(w.latent.points) == 200  # every example placed; drawn: one per class and screen pixel
    assert 180 <= sum(len(it) for it in w.latent.items) <= 200
    assert len(w.latent.items) == 3
    assert w.status.progress.value() == w.status.progress.maximum() == 20
    assert "samples/s" in w.status.rate_label.text() and w.status.device_label.text().startswith("device ")
    assert w.status.state_label.text() == "Finished"
    assert w.curves.bars.opts["height"].shape == (2,)
    assert "Epoch 2" in w.curves.caption.text() and "IWAE" in w.curves.caption.text()
    for p in (w.curves.elbo, w.curves.recon, w.curves.kl):
        assert p.plot.getAxis("left").labelText == "nats per example"
        assert p.plot.getAxis("bottom").labelText == "step"
    assert w.latent.plot.getAxis("bottom").labelText == "z₁"
    assert w.window_actions.start.isEnabled() and not w.window_actions.stop.isEnabled()
    assert w.errors == []


def test_pause_resume_stop(qtbot, make_window):
    w = make_window(train=LONG)
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state.status == "running" and len(w.state.history) > 5, timeout=20_000)
    assert not w.settings_panel.widgets["latent_dim"].isEnabled()
    assert w.ui.pause_button.text() == "Pause"
    qtbot.mouseClick(w.ui.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state.status == "paused", timeout=5000)
    assert w.ui.pause_button.text() == "Resume" and w.status.state_label.text() == "Paused"
    qtbot.wait(100)
    n = w.session.run.step
    qtbot.wait(300)
    assert w.session.run.step == n  # no step while paused
    qtbot.mouseClick(w.ui.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state.status == "running" and w.session.run.step > n, timeout=5000)
    assert w.ui.pause_button.text() == "Pause"
    qtbot.mouseClick(w.ui.stop_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, w, timeout=5000)
    assert w.state.status == "stopped"
    assert w.settings_panel.widgets["latent_dim"].isEnabled() and w.window_actions.start.isEnabled()


@pytest.mark.slow
def test_shortcuts_drive_training(qtbot, make_window):
    w = make_window(train=LONG)
    w.activateWindow()  # window shortcuts need the active window
    qtbot.waitUntil(w.isActiveWindow, timeout=5000)
    qtbot.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: w.state.status == "running", timeout=20_000)
    qtbot.keyClick(w, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.state.status == "paused", timeout=5000)
    qtbot.keyClick(w, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.state.status == "running", timeout=5000)
    qtbot.keyClick(w, Qt.Key.Key_Period, Qt.KeyboardModifier.ControlModifier)
    wait_finished(qtbot, w, timeout=5000)
    assert w.state.status == "stopped"


@pytest.mark.slow
def test_worker_error_becomes_a_dialog_and_window_survives(qtbot, make_window):
    w = make_window()
    w.session.start(w.state.dataset, SMALL_MODEL.replace(image_shape=(1, 28, 28)), SMALL_TRAIN)  # wrong image size
    qtbot.waitUntil(lambda: bool(w.errors), timeout=10_000)
    qtbot.waitUntil(lambda: not w.session.is_active())
    assert "28" in w.errors[0][1]
    assert w.window_actions.start.isEnabled()
    train_to_end(qtbot, w)  # and it still trains
    assert w.state.status == "finished"


# ------------------------------------------------------------------------------------------------ panels
def test_gallery_manifold_follows_zoom_and_other_tabs(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    qtbot.waitUntil(lambda: w.gallery.images["manifold"] is not None, timeout=5000)
    n = w.gallery.grid_size()
    assert w.gallery.images["manifold"].shape == (1, 12 * n, 12 * n)
    w.latent.vb.setRange(xRange=(-0.5, 0.5), yRange=(-0.25, 0.25), padding=0)
    qtbot.waitUntil(lambda: "[-0.50, 0.50]" in w.gallery.pages["manifold"].caption.text(), timeout=3000)
    w.gallery.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: w.gallery.images["recon"] is not None, timeout=3000)
    assert w.gallery.images["recon"].shape == (1, 4 * 12 + 3, 8 * 12 + 7)
    w.gallery.tabs.setCurrentIndex(2)
    qtbot.waitUntil(lambda: w.gallery.images["prior"] is not None, timeout=3000)
    assert w.gallery.images["prior"].shape == (1, 8 * 13 - 1, 8 * 13 - 1)


# ------------------------------------------------------------------------------------------------ files
@pytest.mark.slow
def test_checkpoint_save_then_load_restores_everything(qtbot, make_window, tmp_path):
    w = make_window(model=SMALL_MODEL.replace(latent_dim=3), train=SMALL_TRAIN.replace(epochs=3, seed=7))
    train_to_end(qtbot, w)
    path = str(tmp_path / "run.pt")
    w.ask_save_path = lambda *a: path
    w.window_actions.save_checkpoint.trigger()
    assert load_checkpoint(path).step == 30
    steps = w.curves.steps.copy()
    elbo = w.curves.history.column("elbo").copy()
    means = w.state.latent.means.copy()

    w2 = make_window(configure=False, settings=QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat))
    assert w2.settings_panel.model_config((1, 12, 12)).latent_dim == 2  # defaults before loading
    w2.ask_open_path = lambda *a: path
    w2.window_actions.load_checkpoint.trigger()
    qtbot.waitUntil(lambda: w2.state.checkpoint is not None, timeout=10_000)
    qtbot.waitUntil(lambda: w2.latent.shown is not None, timeout=5000)
    assert w2.errors == []
    np.testing.assert_array_equal(w2.curves.steps, steps)
    np.testing.assert_array_equal(w2.curves.history.column("elbo"), elbo)
    assert len(w2.curves.epochs) == 3
    assert w2.settings_panel.model_config((1, 12, 12)) == w.session.model_config
    assert w2.settings_panel.train_config().seed == 7
    np.testing.assert_allclose(w2.state.latent.means, means, rtol=1e-5, atol=1e-5)  # same model, same points
    click_latent(qtbot, w2, 0.2, 0.1)
    want, _ = expected_image(w2, *w2.latent.marker_pos)
    np.testing.assert_array_equal(w2.generated.image, want)
    # continue the loaded checkpoint: raise epochs and start
    w2.settings_panel.set_train_config(w2.settings_panel.train_config().replace(epochs=4))
    train_to_end(qtbot, w2)
    assert w2.session.run.step == 40 and len(w2.state.history.epochs) == 4
    assert len(w2.curves.steps) == 40


def test_bad_checkpoint_gives_dialog(qtbot, make_window, tmp_path):
    w = make_window()
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a checkpoint at all")
    w.ask_open_path = lambda *a: str(bad)
    w.window_actions.load_checkpoint.trigger()
    qtbot.waitUntil(lambda: bool(w.errors), timeout=10_000)
    assert "junk.pt" in w.errors[0][1]
    assert w.state.checkpoint is None and w.state.dataset is not None


def test_exports(qtbot, make_window, tmp_path):
    w = make_window()
    train_to_end(qtbot, w)
    click_latent(qtbot, w, 0.1, 0.1)
    qtbot.waitUntil(lambda: w.gallery.images["manifold"] is not None, timeout=5000)
    qtbot.wait(150)
    out = {}

    def ask(title, filt, suggested):
        out[suggested] = str(tmp_path / suggested)
        return out[suggested]

    w.ask_save_path = ask
    for a in (
        w.window_actions.export_generated,
        w.window_actions.export_grid,
        w.window_actions.export_metrics,
        w.window_actions.export_latents,
    ):
        assert a.isEnabled(), a.objectName()
        a.trigger()
    with Image.open(out["generated.png"]) as im:
        assert im.size == (12, 12)
        np.testing.assert_array_equal(
            np.asarray(im), np.round(np.clip(w.generated.image[0], 0, 1) * 255).astype(np.uint8)
        )
    grid = w.gallery.images["manifold"]
    with Image.open(out["manifold.png"]) as im:
        assert im.size == (grid.shape[2], grid.shape[1])
    rows = list(csv.reader(io.StringIO(open(out["metrics.csv"]).read())))
    assert rows[0][:5] == ["step", "train_elbo", "train_recon", "train_kl", "epoch"]
    assert len(rows) - 1 == len(w.state.history) == 20
    vec = open(out["latents.tsv"]).read().splitlines()
    assert len(vec) == len(w.state.latent.means) == 200
    assert all(len(line.split("\t")) == 2 for line in vec)
    meta = open(tmp_path / "latents_metadata.tsv").read().splitlines()
    assert meta[0] == "label\tclass" and len(meta) == 201
    assert meta[1].split("\t")[1].startswith("class ")


# ------------------------------------------------------------------------------------------------ settings
def test_settings_persist_between_windows(qtbot, make_window, settings_file):
    w = make_window(configure=False)
    sp = w.settings_panel
    sp.widgets["latent_dim"].setValue(7)
    sp.widgets["hidden"].setValue(123)
    sp.widgets["arch"].setCurrentIndex(sp.widgets["arch"].findData("conv"))
    sp.widgets["lr"].setValue(3e-4)
    sp.widgets["beta"].setValue(2.5)
    sp.widgets["epochs"].setValue(4)
    w.close()
    w2 = make_window(configure=False)
    m, t = w2.settings_panel.model_config((1, 12, 12)), w2.settings_panel.train_config()
    assert (m.latent_dim, m.hidden, m.arch) == (7, 123, "conv")
    assert t.lr == pytest.approx(3e-4) and t.beta == 2.5 and t.epochs == 4
    assert w2.settings_panel.widgets["latent_dim"].value() == 7


def test_settings_tooltips_and_devices(make_window):
    w = make_window()
    for key, widget in w.settings_panel.widgets.items():
        assert len(widget.toolTip()) > 20, key
    dev = w.settings_panel.widgets["device"]
    values = [dev.itemData(i) for i in range(dev.count())]
    assert "cpu" in values and "auto" in values


# ------------------------------------------------------------------------------------------------ closing
@pytest.mark.parametrize("answer", ["discard", "save"])
def test_close_mid_training_stops_worker_quickly(qtbot, make_window, tmp_path, answer):
    w = make_window(train=LONG)
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state.status == "running" and len(w.state.history) > 5, timeout=20_000)
    asked = []
    w.ask_save_before_close = lambda: asked.append(1) or answer
    path = tmp_path / "on_close.pt"
    w.ask_save_path = lambda *a: str(path)
    thread = w.session.thread
    assert w.close()  # waits at most CLOSE_WAIT_MS for the training thread
    assert asked == [1]
    assert not thread.isRunning()  # it stopped within that wait: the run ends at the next step
    assert [t for t in threading.enumerate() if t.name.startswith("trainingThread")] == []
    if answer == "save":
        assert load_checkpoint(str(path)).step > 5


def test_close_cancel_keeps_training(qtbot, make_window):
    w = make_window(train=LONG)
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state.status == "running", timeout=20_000)
    w.ask_save_before_close = lambda: "cancel"
    assert not w.close()
    assert w.isVisible() and w.session.is_active()
    w.session.stop()
    wait_finished(qtbot, w)


# ------------------------------------------------------------------------------------------------ accessibility
def test_every_control_has_an_object_name(make_window):
    w = make_window()
    for name in (
        "startButton",
        "pauseButton",
        "stopButton",
        "openDatasetButton",
        "loadCheckpointButton",
        "saveCheckpointButton",
        "latentPlot",
        "generatedImage",
        "generatedCoords",
        "elboPlot",
        "reconPlot",
        "klPlot",
        "klDimPlot",
        "progressBar",
        "samplesPerSecondLabel",
        "etaLabel",
        "deviceLabel",
        "datasetSummary",
        "datasetPreview",
        "datasetBusy",
        "galleryTabs",
        "manifoldImage",
        "reconImage",
        "priorImage",
        "collapseWarning",
        "mainTabs",
        "setting_latent_dim",
        "setting_lr",
        "setting_device",
    ):
        assert w.findChild(QWidget, name) is not None, name
    unnamed = [
        c
        for c in w.findChildren(QWidget)
        if isinstance(c, (QAbstractButton, QAbstractSpinBox, QComboBox, QProgressBar))
        and c.isVisibleTo(w)
        and not c.objectName()
        and not (isinstance(c, QToolButton) and c.objectName() == "" and c.parent().objectName() == "")
    ]
    assert [type(c).__name__ + ":" + c.text() if hasattr(c, "text") else type(c).__name__ for c in unnamed] == []

    def walk(menu):
        for a in menu.actions():
            if a.isSeparator():
                continue
            yield a
            if a.menu() is not None:
                yield from walk(a.menu())

    for a in list(walk(w.menuBar())) + w.ui.toolbar.actions():
        if not a.isSeparator():
            assert a.objectName(), a.text()
    assert w.window_actions.start.shortcut().toString() == "Ctrl+Return"
    assert w.window_actions.open.shortcut().toString() == "Ctrl+O"


def test_add_tab(make_window):
    w = make_window()
    before = w.ui.tabs.count()
    page = QLabel("another page")
    i = w.ui.add_tab(page, "Another")
    assert w.ui.tabs.tabText(i) == "Another" and w.ui.tabs.count() == before + 1


def test_window_opens_default_dataset(qtbot, settings_file):
    w = MainWindow(settings=QSettings(settings_file, QSettings.Format.IniFormat))
    w.show_error = lambda *a: pytest.fail(f"unexpected error dialog {a}")
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.state.dataset is not None, timeout=60_000)
    assert w.window_actions.start.isEnabled()


def test_dataset_dialog_accepts_a_folder(qtbot, tmp_path):
    (tmp_path / "images" / "cats").mkdir(parents=True)
    dlg = DatasetFileDialog(None, str(tmp_path / "images"))
    qtbot.addWidget(dlg)
    dlg.show()
    btn = dlg.findChild(QAbstractButton, "openFolderButton")
    assert btn is not None
    qtbot.mouseClick(btn, Qt.MouseButton.LeftButton)
    assert dlg.result() == 1 and dlg.chosen == str(tmp_path / "images")


def test_collapse_warning(qtbot):
    from engine.messages import EpochSummary
    from gui.panels.curves import CurvesPanel
    from gui.state import StudioState

    panel = CurvesPanel(StudioState())
    qtbot.addWidget(panel)
    panel.show()
    kl = np.array([3.0, 0.001, 2.0, 0.0])
    s = EpochSummary(
        epoch=0,
        step=10,
        train_elbo=-100.0,
        test_elbo=-99.0,
        test_recon=-95.0,
        test_kl=5.0,
        test_iwae=-98.0,
        test_elbo_subset=-99.5,
        iwae_k=5,
        bits_per_dim=0.5,
        kl_per_dim=kl,
        active_units=2,
        au_variance=np.array([0.5, 0.0, 0.3, 0.001]),
        seconds=1.0,
    )
    panel.state.add_epoch(s)
    panel.refresh()
    assert panel.collapse_warning.isVisible()
    assert "2 of 4" in panel.collapse_warning.text()
    np.testing.assert_array_equal(panel.bars.opts["height"], kl)
    assert "gap IWAE − ELBO <b>1.50</b>" in panel.caption.text()


def test_continuous_bernoulli_chosen_in_settings_trains_and_decodes_its_mean(qtbot, make_window):
    """Picking the continuous Bernoulli in the Likelihood box trains that model; a click shows the mean of the
    density (λ/(2λ−1) + 1/(2·artanh(1−2λ))), not λ = σ(logits)."""
    import torch

    from engine.snapshot import model_from_snapshot

    w = make_window()
    box = w.settings_panel.widgets["likelihood"]
    box.setCurrentIndex(box.findData("continuous_bernoulli"))
    train_to_end(qtbot, w)
    assert w.session.model_config.likelihood == "continuous_bernoulli"
    assert w.state.history.epochs and np.isfinite(w.state.history.epochs[-1].test_elbo)
    x0, x1, y0, y1 = w.latent.view_rect()
    with qtbot.waitSignal(w.latent.latent_clicked, timeout=2000) as sig:
        click_latent(qtbot, w, x0 + 0.4 * (x1 - x0), y0 + 0.5 * (y1 - y0))
    z = w.latent.to_latent(*sig.args)
    model = model_from_snapshot(w.state.snapshot)
    with torch.no_grad():
        logits = model.decoder(torch.from_numpy(z[None]))
    want = torch.distributions.ContinuousBernoulli(logits=logits).mean[0].numpy()
    np.testing.assert_allclose(w.generated.image, want, atol=1e-6)
    assert not np.allclose(w.generated.image, torch.sigmoid(logits)[0].numpy(), atol=1e-3)
