"""Loading image folders in the window: progress, Cancel keeps the dataset you had, the size and colour choices."""

from __future__ import annotations

import time

import pytest
import numpy as np
from PIL import Image
from PySide6.QtCore import QSettings, Qt

import engine.data.images as images_mod

from .window_helpers import status_line


def make_folder(root, n, sizes=((20, 24), (31, 17), (12, 12)), colour=False):
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        a = rng.integers(0, 256, (h, w, 3) if colour else (h, w), dtype=np.uint8)
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(root / f"c{i % 2}" / f"{i:03d}.png")
    return root


@pytest.mark.slow
def test_cancel_mid_load_keeps_the_previous_dataset(qtbot, make_window, tmp_path, monkeypatch, tiny):
    folder = make_folder(tmp_path / "many", 300)
    slow = images_mod._decode

    def slow_decode(*args):
        time.sleep(0.01)  # so that the load is still running when Cancel is clicked
        return slow(*args)

    monkeypatch.setattr(images_mod, "_decode", slow_decode)
    w = make_window()
    panel = w.dataset_panel
    w.open_dataset(str(folder))
    assert panel.busy.isVisibleTo(panel) and panel.cancel_button.isVisibleTo(panel)
    qtbot.waitUntil(lambda: panel.busy.maximum() == 300 and "Decoding" in panel.title.text(), timeout=10_000)
    assert 0 <= panel.busy.value() < 300  # a determinate bar, part way
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.loader.busy(), timeout=10_000)
    assert w.state.dataset is tiny and panel.dataset is tiny and panel.title.text() == tiny.name
    assert not panel.busy.isVisibleTo(panel) and not panel.cancel_button.isVisibleTo(panel)
    assert "cancelled" in status_line(w) and w.errors == []
    assert w.window_actions.start.isEnabled()
    assert w.ui.recent_menu.actions() == [] or all(a.data() != str(folder) for a in w.ui.recent_menu.actions())


@pytest.mark.slow
def test_a_mixed_size_folder_loads_with_the_chosen_size_and_says_what_was_done(
    qtbot, make_window, tmp_path, settings_file
):
    folder = make_folder(tmp_path / "pics", 30, colour=True)
    w = make_window()
    panel = w.dataset_panel
    w.open_dataset(str(folder))
    qtbot.waitUntil(lambda: w.state.dataset is not None and w.state.dataset.source == str(folder), timeout=10_000)
    assert w.state.dataset.image_shape == (3, 20, 24)  # the most common size (ties: the first seen)
    assert "30 images of 3 sizes → 20×24 RGB" in panel.summary.text()
    panel.resolution_box.setCurrentIndex(panel.resolution_box.findData(32))  # reloads the folder at 32×32
    qtbot.waitUntil(lambda: w.state.dataset.image_shape == (3, 32, 32), timeout=10_000)
    assert "→ 32×32 RGB" in panel.summary.text() and w.errors == []
    panel.colour_box.setCurrentIndex(panel.colour_box.findData(1))
    qtbot.waitUntil(lambda: w.state.dataset.image_shape == (1, 32, 32), timeout=10_000)
    s = QSettings(settings_file, QSettings.Format.IniFormat)
    assert (s.value("data/resolution", type=int), s.value("data/channels", type=int)) == (32, 1)
    w2 = make_window(settings=s)
    assert (w2.dataset_panel.resolution(), w2.dataset_panel.channels()) == (32, 1)  # remembered


@pytest.mark.slow
def test_a_conv_run_on_a_uint8_colour_folder_draws_every_view(qtbot, make_window, tmp_path):
    """uint8 RGB storage end to end in the window: preview, training, reconstructions, a clicked example."""
    from engine.config import ModelConfig, TrainConfig

    from .conftest import wait_finished

    folder = make_folder(tmp_path / "pics", 40, colour=True)
    w = make_window(configure=False)
    w.dataset_panel.set_load_options(28, None)
    w.open_dataset(str(folder))
    qtbot.waitUntil(lambda: w.state.dataset is not None and w.state.dataset.source == str(folder), timeout=10_000)
    assert w.state.dataset.image_shape == (3, 28, 28) and w.state.dataset.x_train.dtype == np.uint8
    preview = w.dataset_panel.preview.array
    assert preview is not None and preview.max() <= 1.0 and preview.dtype == np.float32  # floats in [0, 1]
    w.settings_panel.set_configs(
        ModelConfig(image_shape=(3, 28, 28), arch="conv", hidden=16),
        TrainConfig(
            epochs=1,
            batch_size=12,
            iwae_k=2,
            iwae_examples=4,
            eval_examples=4,
            latent_examples=4,
            snapshot_interval_s=0.2,
        ),
    )
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, w)
    assert w.errors == [] and w.state.status == "finished"
    w.gallery.tabs.setCurrentIndex(1)  # reconstructions: test images (stored uint8) beside the model's output
    qtbot.waitUntil(lambda: w.gallery.images["recon"] is not None, timeout=10_000)
    tiles = w.gallery.images["recon"]
    assert tiles.shape[0] == 3 and 0.0 <= tiles.min() and tiles.max() <= 1.0
    w.inference.show_example(0)  # the true posterior of a stored-uint8 test image
    qtbot.waitUntil(lambda: w.inference.view is not None and not w.inference.running_workers(), timeout=60_000)
    assert w.state.dataset.x_test.dtype == np.uint8 and w.inference.view.index == 0 and w.errors == []
