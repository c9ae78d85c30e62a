"""The conditional VAE through the window: ticked in the settings, trained with Start, then the class selector
beside the Generated image drives the generated image, the "same z, every class" row, the manifold, the prior
samples and the highlighted scatter; checkpoints and a second run in the same window keep it straight."""

from __future__ import annotations

import pytest
import numpy as np
from PySide6.QtCore import QPoint, Qt

from PIL import Image

from engine.data.dataset import Dataset, as_float01
from engine.posterior import posterior_grid
from engine.snapshot import SnapshotModel, every_class, prior_samples
from gui.panels.latent import FADED

from .conftest import SMALL_MODEL, SMALL_TRAIN, wait_finished
from .window_helpers import click_latent, train_to_end


def tick_conditional(qtbot, w, on: bool = True) -> None:
    box = w.settings_panel.widgets["conditional"]
    assert box.isEnabled()
    if box.isChecked() != on:
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    assert box.isChecked() == on


def choose_class(qtbot, w, label: int) -> None:
    combo = w.generated.class_combo
    combo.setFocus()
    while combo.currentIndex() != label:  # the keyboard, as a person would
        key = Qt.Key.Key_Down if combo.currentIndex() < label else Qt.Key.Key_Up
        qtbot.keyClick(combo, key)


@pytest.mark.slow
def test_a_conditional_vae_trains_and_generates_the_chosen_class(qtbot, make_window, tiny, tmp_path):
    w = make_window(train=SMALL_TRAIN.replace(epochs=3))
    assert not w.generated.class_row.isVisible()  # no conditional model yet
    tick_conditional(qtbot, w)
    train_to_end(qtbot, w)
    cfg = w.state.model_config
    assert cfg.n_classes == tiny.n_classes == 3
    model = SnapshotModel(w.state.snapshot)
    assert model.n_classes == 3

    combo = w.generated.class_combo
    assert w.generated.class_row.isVisible() and combo.count() == 3
    assert [combo.itemText(i) for i in range(3)] == [f"{i}: {w.state.class_name(i)}" for i in range(3)]

    x0, x1, y0, y1 = w.latent.view_rect()
    click_latent(qtbot, w, x0 + 0.4 * (x1 - x0), y0 + 0.6 * (y1 - y0))
    z = w.state.picked
    np.testing.assert_array_equal(w.generated.image, model.decode(z[None], 0)[0])
    row = every_class(model, z)
    assert row.shape == (3, 1, 12, 12)
    assert w.generated.every_class_image.shape == (1, 12, 3 * 13 - 1)  # one row of 3 tiles, 1 px apart
    assert "y = " in w.generated.coords.text()

    choose_class(qtbot, w, 2)
    assert w.state.label == 2
    np.testing.assert_array_equal(w.generated.image, model.decode(z[None], 2)[0])
    assert np.abs(model.decode(z[None], 2) - model.decode(z[None], 0)).max() > 1e-3  # the class changed the image
    np.testing.assert_allclose(w.generated.image, row[2], atol=1e-6)  # the row's tile for class 2 (batch rounding)

    # the scatter: class 2 in front, the others faint
    opacities = [it.opacity() for it in w.latent.items]
    assert opacities == [FADED, FADED, 1.0]

    # the manifold and the prior follow the class
    w.gallery.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: w.gallery.images["manifold"] is not None and not w.gallery.dirty["manifold"], timeout=5000)
    assert f"class {w.state.class_name(2)}" in w.gallery.pages["manifold"].caption.text()
    w.gallery.tabs.setCurrentIndex(2)
    qtbot.waitUntil(lambda: w.gallery.images["prior"] is not None, timeout=5000)
    imgs = prior_samples(model, 64, seed=0, y=2)
    np.testing.assert_array_equal(w.gallery.images["prior"][:, :12, :12], imgs[0])
    # a click on the first tile of "same z, every class" chooses class 0; the prior grid is redrawn for it
    view = w.generated.every_view
    r = view.target_rect()
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(r.x() + r.width() // 6, r.center().y()))
    assert w.state.label == 0 and combo.currentIndex() == 0
    np.testing.assert_allclose(w.generated.image, row[0], atol=1e-6)
    qtbot.waitUntil(lambda: not w.gallery.dirty["prior"], timeout=5000)
    np.testing.assert_array_equal(w.gallery.images["prior"][:, :12, :12], prior_samples(model, 64, seed=0, y=0)[0])
    assert [it.opacity() for it in w.latent.items] == [1.0, FADED, FADED]

    # the posterior tab works on the example with its own label
    w.state.select_example(3)
    with qtbot.waitSignal(w.inference.posterior_ready, timeout=20_000) as blocker:
        w.inference.show_example(3)
    assert blocker.args[0].grid is not None and np.isfinite(blocker.args[0].grid.log_px)
    assert f"p(z | x, y = {w.state.class_name(int(tiny.y_test[3]))})" in w.inference.title.text()
    w.inference.show_example(10)  # a second example of another class, then the amortization study of both
    qtbot.waitUntil(lambda: not w.inference.running_workers(), timeout=20_000)
    assert len({int(tiny.y_test[3]), int(tiny.y_test[10])}) == 2
    study = w.inference.study
    study.steps_spin.setValue(20)
    with qtbot.waitSignal(w.inference.study_finished, timeout=60_000) as done:
        qtbot.mouseClick(study.selected_button, Qt.MouseButton.LeftButton)
    r = done.args[0]
    assert sorted(r.indices.tolist()) == [3, 10] and np.all(np.isfinite(r.log_px_quadrature))
    assert np.all(r.optimised_elbo >= r.encoder_elbo)

    # an image of the user's is encoded for the chosen class, and its posterior on this tab is given that class
    mine = tmp_path / "mine.png"
    Image.fromarray(np.round(w.state.test_image(5)[0] * 255).astype(np.uint8), "L").save(mine)
    w.ask_open_path = lambda title, kinds: str(mine)
    w.window_actions.encode_image.trigger()
    qtbot.waitUntil(lambda: w.inference.view is not None and w.inference.view.index is None, timeout=20_000)
    e = w.state.encoded
    assert e.label == w.state.label == 0 and "mine.png" in w.inference.title.text()
    assert f"p(z | x, y = {w.state.class_name(0)})" in w.inference.title.text()
    expected = posterior_grid(model.model.given(0), as_float01(e.x[0]), w.inference.view.grid.grid_size)
    np.testing.assert_allclose(w.inference.view.grid.log_px, expected.log_px, atol=1e-9)


@pytest.mark.slow
def test_conditional_checkpoint_and_a_second_unconditional_run(qtbot, make_window, tmp_path):
    w = make_window()
    tick_conditional(qtbot, w)
    train_to_end(qtbot, w)
    path = str(tmp_path / "cvae.pt")
    w.ask_save_path = lambda *a: path
    w.checkpoints.save_dialog()
    qtbot.waitUntil(lambda: (tmp_path / "cvae.pt").exists(), timeout=10_000)

    # a second, unconditional run in the same window: the selector and the row go away
    tick_conditional(qtbot, w, on=False)
    w.ask_start_choice = lambda *a: "new"
    train_to_end(qtbot, w)
    assert w.state.model_config.n_classes == 0
    assert not w.generated.class_row.isVisible() and not w.generated.every_view.isVisible()
    assert all(it.opacity() == 1.0 for it in w.latent.items)
    x0, x1, y0, y1 = w.latent.view_rect()
    click_latent(qtbot, w, (x0 + x1) / 2, (y0 + y1) / 2)
    assert w.generated.image is not None and w.generated.every_class_image is None

    # loading the conditional checkpoint brings it all back, settings included
    w.ask_open_path = lambda *a: path
    w.checkpoints.load_dialog()
    qtbot.waitUntil(lambda: w.state.checkpoint is not None, timeout=10_000)
    assert w.state.model_config.n_classes == 3
    assert w.settings_panel.widgets["conditional"].isChecked()
    assert w.generated.class_row.isVisible() and w.generated.class_combo.count() == 3
    qtbot.waitUntil(lambda: w.latent.shown is not None, timeout=5000)
    x0, x1, y0, y1 = w.latent.view_rect()
    click_latent(qtbot, w, (x0 + x1) / 2, (y0 + y1) / 2)
    model = SnapshotModel(w.state.snapshot)
    np.testing.assert_array_equal(w.generated.image, model.decode(w.state.picked[None], 0)[0])
    assert w.generated.every_class_image is not None


def test_unlabelled_data_offers_no_conditioning(qtbot, make_window, tiny):
    bare = Dataset("no labels", "test", tiny.x_train, tiny.x_test)
    w = make_window(dataset=bare)
    box = w.settings_panel.widgets["conditional"]
    assert not box.isEnabled() and not box.isChecked()
    assert "no labels" in box.toolTip()
    train_to_end(qtbot, w)
    assert w.state.model_config.n_classes == 0
    assert not w.generated.class_row.isVisible()


@pytest.mark.slow
def test_a_conditional_model_refuses_a_dataset_without_labels(qtbot, make_window, tiny):
    """Opening unlabelled data of the same image size under a conditional model asks before closing the model
    (it cannot encode images without their labels)."""
    w = make_window()
    tick_conditional(qtbot, w)
    train_to_end(qtbot, w)
    asked = []
    w.ask_close_model = lambda described, name: asked.append(name) or "discard"
    w.set_dataset(Dataset("no labels", "test", tiny.x_train, tiny.x_test))
    assert asked == ["no labels"]
    assert w.state.model_config is None and w.state.snapshot is None
    wait_finished(qtbot, w)


def test_alt_digit_picks_a_class(qtbot, make_window):
    w = make_window(model=SMALL_MODEL)
    tick_conditional(qtbot, w)
    train_to_end(qtbot, w)
    w.activateWindow()
    qtbot.keyClick(w, Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)
    assert w.state.label == 1 and w.generated.class_combo.currentIndex() == 1


def test_many_classes_show_the_block_holding_the_chosen_one(qtbot, make_window):
    from gui.panels.generated import ROW_CLASSES

    from .conftest import make_tiny

    many = make_tiny(n_train=500, n_test=100, classes=25)
    w = make_window(dataset=many, train=SMALL_TRAIN.replace(epochs=1))
    tick_conditional(qtbot, w)
    train_to_end(qtbot, w)
    assert w.state.n_classes == 25 and ROW_CLASSES == 20
    x0, x1, y0, y1 = w.latent.view_rect()
    click_latent(qtbot, w, (x0 + x1) / 2, (y0 + y1) / 2)
    assert w.generated.every_class_image.shape[2] == 5 * 13 - 1  # rows of 5
    assert w.generated.every_class_image.shape[1] == 4 * 13 - 1  # classes 0-19: four rows
    assert w.generated.every_caption.text() == "Same z, classes 0–19 of 25"
    w.state.set_label(22)
    assert w.generated.every_caption.text() == "Same z, classes 20–24 of 25"
    model = SnapshotModel(w.state.snapshot)
    want = every_class(model, w.state.picked, range(20, 25))
    np.testing.assert_allclose(w.generated.every_class_image[:, :12, :12], want[0], atol=1e-6)
    view = w.generated.every_view
    r = view.target_rect()
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(r.x() + r.width() // 10, r.center().y()))
    assert w.state.label == 20


@pytest.mark.slow
def test_the_choice_to_condition_is_remembered_between_windows(qtbot, make_window, tiny):
    w = make_window(configure=False)
    tick_conditional(qtbot, w)
    w.close()
    w2 = make_window(configure=False)
    assert w2.settings_panel.widgets["conditional"].isChecked()
    assert w2.settings_panel.model_config(tiny.image_shape, tiny.n_classes).n_classes == 3
    assert w2.settings_panel.model_config(tiny.image_shape, 0).n_classes == 0  # unlabelled data: a plain VAE


@pytest.mark.slow
def test_a_conditional_checkpoint_opened_over_unlabelled_data_says_why_and_still_generates(
    qtbot, make_window, tiny, tmp_path
):
    w = make_window()
    tick_conditional(qtbot, w)
    train_to_end(qtbot, w)
    path = str(tmp_path / "cvae.pt")
    w.session.run.save(path)
    bare = make_window(dataset=Dataset("no labels", "test", tiny.x_train, tiny.x_test))
    bare.ask_open_path = lambda *a: path
    bare.checkpoints.load_dialog()
    qtbot.waitUntil(lambda: bare.state.checkpoint is not None, timeout=10_000)
    assert bare.state.model_config.n_classes == 3 and bare.state.latent is None  # nothing encoded without labels
    bare.gallery.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: not bare.gallery.dirty["recon"], timeout=5000)
    assert "no labels" in bare.gallery.pages["recon"].caption.text()
    bare.inference.show_example(0)
    assert "no labels" in bare.inference.status.text()
    click_latent(qtbot, bare, 0.0, 0.0)
    model = SnapshotModel(bare.state.snapshot)
    np.testing.assert_array_equal(bare.generated.image, model.decode(bare.state.picked[None], 0)[0])
    assert not bare.errors  # (an exception while drawing fails the test by itself: pytest-qt)
