"""A new user's first hour, driven through the real window: a divergence they can recover from, views that show
what Save would write after Pause and Stop, placeholders that follow the run status, an image folder with a CSV
beside it, messages that name the real reason, out-of-range settings shown as such, and small datasets that say
why their images stay grey."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QScrollArea

from engine.checkpoint import load_checkpoint
from engine.limits import range_text
from engine.messages import CompileStatus
from gui.main_window import DatasetFileDialog
from tests.engine.test_folder_with_csv import image_folder_with_metadata

from .conftest import SMALL_TRAIN, make_tiny, wait_finished
from .window_helpers import click_latent, status_line, train_to_end

LONG = SMALL_TRAIN.replace(epochs=100_000)


def type_into(qtbot, w, key: str, text: str) -> None:
    """Select a settings field's text and type ``text`` into it, as a user would."""
    box = w.settings_panel.widgets[key]
    box.setFocus()
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), text)
    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)


# ------------------------------------------------------------------------------------------------ 1. divergence
def test_a_diverged_run_takes_a_lower_learning_rate_and_goes_on_from_the_good_weights(qtbot, make_window):
    # lr 10 diverges within ten steps on this data, before the first refresh of the last good weights
    w = make_window(train=SMALL_TRAIN.replace(lr=10.0, epochs=5))
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state.status == "diverged", timeout=20_000)
    title, text = w.errors[-1]
    assert title == "Training diverged" and "learning rate (now 10)" in text and "Settings" in text
    lr, precision = w.settings_panel.widgets["lr"], w.settings_panel.widgets["precision"]
    assert lr.isEnabled() and precision.isEnabled()  # the two a resume applies...
    assert not w.settings_panel.widgets["latent_dim"].isEnabled()  # ... and not the model's shape
    at = w.session.run.step
    good = w.state.snapshot  # the weights restored after the divergence, sent before the pause
    assert good is not None and all(np.isfinite(v).all() for v in good.weights.values())
    type_into(qtbot, w, "lr", "0.002")
    assert w.settings_panel.train_config().lr == 0.002
    qtbot.mouseClick(w.ui.pause_button, Qt.MouseButton.LeftButton)
    try:
        wait_finished(qtbot, w, timeout=60_000)
    except Exception:
        r = w.session.run
        raise AssertionError(
            (
                w.state.status,
                w.errors,
                r.step,
                r.cfg.lr,
                r.state,
                r._pause.is_set(),
                r.optimizer.param_groups[0]["lr"],
            )
        )
    run = w.session.run
    assert w.state.status == "finished" and len(w.errors) == 1
    assert run.cfg.lr == 0.002 and all(g["lr"] == 0.002 for g in run.optimizer.param_groups)
    assert run.step == run.total_steps and run.step > at
    elbo = run.history.column("elbo")
    assert np.isfinite(elbo).all() and run.history.epochs
    assert elbo[-5:].mean() > elbo[at : at + 5].mean()  # it learns again, from the restored weights


# ------------------------------------------------------------------------------------------------ 2. stale views
def test_after_pause_and_stop_every_view_shows_the_weights_save_writes(qtbot, make_window, tmp_path):
    # snapshots every 100 s: without the one sent on Pause and Stop, the views would stay at the first steps
    w = make_window(train=LONG.replace(snapshot_interval_s=100.0))
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state.snapshot is not None and w.latent.shown is not None, timeout=20_000)
    qtbot.waitUntil(lambda: w.session.run is not None and w.session.run.step > 40, timeout=20_000)
    x0, x1, y0, y1 = w.latent.view_rect()
    click_latent(qtbot, w, (x0 + x1) / 2, (y0 + y1) / 2)
    qtbot.waitUntil(lambda: w.state.picked is not None and w.generated.image is not None, timeout=5000)
    for button, state in ((w.ui.pause_button, "paused"), (w.ui.stop_button, "stopped")):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda s=state: w.state.status == s, timeout=10_000)
        step = w.session.run.step
        assert step > 40
        qtbot.waitUntil(lambda s=step: w.state.latent is not None and w.state.latent.step == s, timeout=10_000)
        assert w.state.snapshot.step == step
        assert f"decoder at step {step:,}<" in w.generated.coords.text()
        qtbot.waitUntil(lambda s=step: f"step {s:,}" in w.gallery.pages["manifold"].caption.text(), timeout=5000)
        if state == "paused":
            qtbot.wait(200)
            assert w.session.run.step == step  # paused: nothing moved on meanwhile
    wait_finished(qtbot, w)
    path = str(tmp_path / "stopped.pt")
    w.ask_save_path = lambda *a: path
    w.window_actions.save_checkpoint.trigger()
    assert load_checkpoint(path).step == w.state.snapshot.step == w.state.latent.step


# ------------------------------------------------------------------------------------------------ 3. placeholders
def test_placeholders_follow_the_run_status(qtbot, make_window):
    w = make_window(train=LONG)
    assert "Press Start" in w.curves.caption.text()
    assert "press Start" in w.gallery.pages["manifold"].view.placeholder
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    seen, manifold = set(), []
    while w.session.run is None or w.session.run.step < 60:  # the run's first seconds
        seen.add(w.curves.caption.text())
        seen.update(p.view.placeholder for p in w.gallery.pages.values())
        manifold.append(w.gallery.pages["manifold"].caption.text())
        qtbot.wait(10)
        assert w.state.status in ("idle", "starting", "running"), w.errors
    assert not any("press start" in t.lower() for t in seen), seen
    assert any(t.startswith(("Training", "Starting")) for t in seen), seen
    assert not any(c.endswith("step 0") for c in manifold), set(manifold)  # never the untrained grey noise
    qtbot.mouseClick(w.ui.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.state.status == "paused", timeout=10_000)
    assert w.curves.caption.text().startswith("Paused") or "Epoch" in w.curves.caption.text()
    qtbot.waitUntil(lambda: w.gallery.images["manifold"] is not None, timeout=10_000)
    assert not w.gallery.pages["manifold"].caption.text().endswith("step 0")
    qtbot.mouseClick(w.ui.stop_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, w)


# ------------------------------------------------------------------------------------------------ 4. folder + CSV
def test_an_image_folder_with_a_metadata_csv_opens_as_images(qtbot, make_window, tmp_path, monkeypatch):
    w = make_window()
    root = image_folder_with_metadata(tmp_path / "shapes", per_class=10)
    monkeypatch.setattr(DatasetFileDialog, "get_path", classmethod(lambda cls, parent, start="": str(root)))
    w.window_actions.open.trigger()
    qtbot.waitUntil(lambda: w.state.dataset is not None and w.state.dataset.source == str(root), timeout=20_000)
    assert w.errors == []
    assert list(w.state.dataset.class_names) == ["circle", "square"]
    assert "metadata.csv" in status_line(w) and "not read" in status_line(w)


# ------------------------------------------------------------------------------------------------ 6. messages
def test_a_checkpoint_of_another_dataset_names_the_dataset_not_the_settings(qtbot, make_window, tmp_path):
    w = make_window()
    train_to_end(qtbot, w)
    path = str(tmp_path / "tiny.pt")
    w.ask_save_path = lambda *a: path
    w.window_actions.save_checkpoint.trigger()
    other = make_tiny(seed=9)  # the same image size and classes, other images
    w2 = make_window(
        dataset=other, configure=False, settings=QSettings(str(tmp_path / "o.ini"), QSettings.Format.IniFormat)
    )
    w2.ask_open_path = lambda *a: path
    w2.window_actions.load_checkpoint.trigger()
    qtbot.waitUntil(lambda: w2.state.checkpoint is not None, timeout=10_000)
    # right after loading, no grid says "press Start or load a checkpoint"
    assert not any("press Start" in p.view.placeholder for p in w2.gallery.pages.values())
    w2.settings_panel.set_train_config(w2.settings_panel.train_config().replace(epochs=5))
    qtbot.mouseClick(w2.ui.start_button, Qt.MouseButton.LeftButton)
    _, why = w2.start_asks[-1]
    assert "another dataset" in why and w.state.dataset.name in why and "settings" not in why, why
    wait_finished(qtbot, w2)
    # the settings that really differ are named
    ck = load_checkpoint(path)
    text = w2.training.why_not_continue(ck, ck.model_config.replace(latent_dim=5), ck.train_config, w.state.dataset)
    assert "Latent dimension 2 in the checkpoint, 5 here" in text, text


def test_a_text_file_loaded_as_a_checkpoint_is_not_an_elbo_studio_checkpoint(qtbot, make_window, tmp_path):
    w = make_window()
    notes = tmp_path / "notes.txt"
    notes.write_text("hello, these are my notes\n")
    w.ask_open_path = lambda *a: str(notes)
    w.window_actions.load_checkpoint.trigger()
    qtbot.waitUntil(lambda: bool(w.errors), timeout=10_000)
    assert "'notes.txt': not an ELBO Studio checkpoint" in w.errors[-1][1], w.errors


# ------------------------------------------------------------------------------------------------ 7. limits
def test_out_of_range_settings_are_shown_as_typed_and_refused_not_clamped(qtbot, make_window):
    w = make_window()
    panel = w.settings_panel
    for key, typed, words in (
        ("latent_dim", "0", "Latent dimension"),
        ("lr", "1e9", "Learning rate"),
        ("batch_size", "999999", "Batch size"),
    ):
        before = panel.train_config(), panel.model_config((1, 12, 12))
        type_into(qtbot, w, key, typed)
        box = panel.widgets[key]
        assert float(box.value()) == float(typed)  # the typed value stays on show
        assert panel.problem.isVisibleTo(panel) and panel.problem.text().startswith(words), panel.problem.text()
        assert typed.replace("1e9", "1e+09").replace("999999", "999,999") in panel.problem.text()
        assert "border" in box.styleSheet()
        assert (panel.train_config(), panel.model_config((1, 12, 12))) == before  # nothing silently changed
        qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
        assert w.session.run is None and panel.problem.text().startswith(f"Cannot start: {words}")
        assert range_text(key) in box.toolTip()  # the same table as the CLI and the README
        type_into(qtbot, w, key, {"latent_dim": "3", "lr": "0.002", "batch_size": "32"}[key])
        assert not panel.problem.isVisibleTo(panel) and box.styleSheet() == ""
    assert panel.model_config((1, 12, 12)).latent_dim == 3 and panel.train_config().batch_size == 32
    assert panel.widgets["latent_dim"].maximum() > 1024 and panel.widgets["lr"].maximum() > 10  # typed, not clamped


# ------------------------------------------------------------------------------------------------ 8. small data
def test_a_small_dataset_says_its_epochs_are_only_a_few_steps(qtbot, make_window):
    small = make_tiny(n_train=270, n_test=30)
    w = make_window(dataset=small, train=SMALL_TRAIN.replace(batch_size=128, epochs=15))
    note = w.settings_panel.note
    assert note.isVisibleTo(w.settings_panel)
    assert "Only 3 steps per epoch" in note.text() and "batch size of 8" in note.text() and "100 epochs" in note.text()
    type_into(qtbot, w, "batch_size", "8")
    assert not note.isVisibleTo(w.settings_panel)
    w3 = make_window(train=SMALL_TRAIN)  # 600 images at batch 64 for 2 epochs: 20 steps, said too
    assert "10 steps per epoch" in w3.settings_panel.note.text()
    w3.settings_panel.set_train_config(SMALL_TRAIN.replace(epochs=30))
    assert not w3.settings_panel.note.isVisibleTo(w3.settings_panel)


# ------------------------------------------------------------------------------------------------ 9. 1024×700
LONG_NAMES = ("T-shirt/top", "Ankle boot", "Sneaker")


def assert_fits(qtbot, w):
    """No text cut or overlapping once the layout has settled (pyqtgraph lays out its plots a moment after a
    resize, later on a busy machine)."""
    from gui.fit_check import clipped_texts

    try:
        qtbot.waitUntil(lambda: not clipped_texts(w), timeout=3000)
    except qtbot.TimeoutError:
        pass
    assert not (bad := clipped_texts(w)), bad


def test_at_first_launch_at_1024_by_700_nothing_is_cut_before_any_run(qtbot, make_window):
    """What a new user sees first: the empty plots' titles and axis numbers fit (an empty curve plot 110 px wide
    labelled 0.2, 0.4, 0.6, 0.8 with no room between them; the scatter's longer empty title)."""
    w = make_window()
    w.resize(1024, 700)
    qtbot.waitUntil(lambda: w.width() == 1024 and w.height() == 700, timeout=5000)
    assert w.state.dataset is not None and not w.session.is_active()  # a dataset open, nothing trained yet
    assert_fits(qtbot, w)


def test_at_1024_by_700_every_title_and_number_fits_its_widget(qtbot, make_window, tiny):
    import dataclasses

    named = dataclasses.replace(tiny, class_names=LONG_NAMES)
    w = make_window(dataset=named)
    w.settings_panel.widgets["conditional"].setChecked(True)
    train_to_end(qtbot, w)
    x0, x1, y0, y1 = w.latent.view_rect()
    click_latent(qtbot, w, (x0 + x1) / 2, (y0 + y1) / 2)
    w.state.set_label(1)  # "Ankle boot"
    w.resize(1024, 700)
    qtbot.waitUntil(lambda: w.width() == 1024 and w.height() == 700, timeout=5000)
    assert w.minimumSizeHint().width() <= 1024 and w.minimumSizeHint().height() <= 700
    w.draw_all()
    qtbot.wait(300)
    # the titles and numbers the issue saw clipped, one by one
    title = w.latent.plot.titleLabel
    assert title.item.boundingRect().width() <= w.latent.plot_widget.width(), title.text
    combo = w.generated.class_combo
    assert combo.fontMetrics().horizontalAdvance(combo.currentText()) <= combo.width() - 28, combo.width()
    saved = "Checkpoint saved: /home/user/runs/fashion-mnist/beta-3/fmnist.pt (step 4,690)"
    w.status.message(saved)  # longer than a 1024-px window's message area: cut, and whole in the tooltip
    assert w.statusBar().currentMessage().endswith("…") and w.statusBar().toolTip() == saved
    assert_fits(qtbot, w)
    # the widest the status bar's permanent widgets get (a run still compiling), so the message area is narrowest
    w.status.show_step_kind(CompileStatus("compiling", "eager step; compiling in the background"))
    kind = w.status.step_label
    qtbot.waitUntil(lambda: kind.width() >= kind.sizeHint().width(), timeout=5000)  # laid out anew
    w.show_page(w.inference)
    w.state.select_example(len(w.state.dataset.x_test) - 1)  # and the status bar says so, by its widest number
    assert w.statusBar().currentMessage().startswith("Example #") and not w.statusBar().toolTip()  # whole
    qtbot.waitUntil(lambda: w.inference.values["log_px"].text() != "—", timeout=20_000)
    qtbot.wait(100)
    assert_fits(qtbot, w)
    for key, label in w.inference.values.items():
        assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width() or label.wordWrap(), key
        assert label.fontMetrics().height() <= label.height(), key  # letter tails kept
    w.show_page(w.explorer)
    for i in range(w.explorer.controls.family_combo.count()):  # Normal or Log-Normal must not grow the window
        w.explorer.controls.family_combo.setCurrentIndex(i)
        qtbot.wait(100)
        assert (w.width(), w.height()) == (1024, 700), w.explorer.controls.family_combo.currentText()
        assert_fits(qtbot, w)


def test_the_settings_column_folds_away_for_the_plots(qtbot, make_window):
    w = make_window()
    w.resize(1024, 700)
    qtbot.waitUntil(lambda: w.width() == 1024, timeout=5000)
    before = w.latent.plot_widget.width()
    w.window_actions.sidebar.trigger()
    qtbot.waitUntil(lambda: not w.ui.sidebar.isVisible(), timeout=2000)
    qtbot.waitUntil(lambda: w.latent.plot_widget.width() > before + 100, timeout=2000)
    assert w.settings.value("ui/sidebar") in (False, "false")
    w.window_actions.sidebar.trigger()
    qtbot.waitUntil(lambda: w.ui.sidebar.isVisible(), timeout=2000)


# ------------------------------------------------------------------------------------------------ 10. smaller
def test_plain_axes_labelled_thumbnails_and_singular_counts(qtbot, make_window):
    w = make_window(train=SMALL_TRAIN.replace(epochs=1))
    plots = [w.latent.plot, w.inference.plot, w.curves.elbo.widget.getPlotItem()]
    for plot in plots:
        for side in ("bottom", "left"):
            assert plot.getAxis(side).autoSIPrefix is False  # never "z₁ (x0.001)"
    w.latent.plot.setXRange(0, 0.002)
    qtbot.wait(50)
    assert "x0.001" not in w.latent.plot.getAxis("bottom").labelString()
    assert [c.text() for c in w.inference.thumb_captions] == ["test image x", "reconstruction"]
    texts = []
    w.session.state.connect(lambda msg: texts.append(msg.text))
    train_to_end(qtbot, w)
    assert "Finished 1 epoch." in texts, texts


def test_a_save_dialog_adds_the_extension_and_forgets_an_unwritable_folder(qtbot, make_window, tmp_path, monkeypatch):
    import os

    from PySide6.QtWidgets import QFileDialog

    w = make_window()
    from gui import dialogs

    answer = {"path": str(tmp_path / "vae")}
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (answer["path"], "")))
    got = dialogs.DialogsMixin.ask_save_path(w, "Save checkpoint", "ELBO Studio checkpoints (*.pt)", "vae.pt")
    assert got == str(tmp_path / "vae.pt")
    assert w.settings.value("ui/last_file_dir") == str(tmp_path)
    answer["path"] = str(tmp_path / "gone" / "grid.png")  # a folder that is not there cannot be written
    assert dialogs.DialogsMixin.ask_save_path(w, "Export", "PNG images (*.png)", "g.png") == answer["path"]
    assert w.settings.value("ui/last_file_dir") == str(tmp_path)  # the next dialog starts where writing worked
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        answer["path"] = str(locked / "grid.png")
        if not os.access(locked, os.W_OK):  # (root may write anywhere)
            dialogs.DialogsMixin.ask_save_path(w, "Export", "PNG images (*.png)", "g.png")
            assert w.settings.value("ui/last_file_dir") == str(tmp_path)
    finally:
        os.chmod(locked, 0o700)


def test_start_refused_at_1024_by_700_shows_why_on_screen_and_puts_the_cursor_in_the_field(qtbot, make_window):
    """The refusal sits below the last field, under the column's fold at 1024×700; the user who typed a value out of
    range and scrolled back up, or never saw the refusal appear, presses Start: the column scrolls the refusal into
    view, the status bar says it, and the field is focused with its value selected, so typing replaces it."""
    w = make_window()
    w.resize(1024, 700)
    panel, box = w.settings_panel, w.settings_panel.widgets["batch_size"]
    type_into(qtbot, w, "batch_size", "999999")
    area = panel.parentWidget()
    while not isinstance(area, QScrollArea):
        area = area.parentWidget()
    area.verticalScrollBar().setValue(0)
    qtbot.waitUntil(lambda: panel.problem.visibleRegion().isEmpty())  # under the fold
    qtbot.mouseClick(w.ui.start_button, Qt.MouseButton.LeftButton)
    assert w.session.run is None
    qtbot.waitUntil(lambda: panel.problem.visibleRegion().boundingRect().height() == panel.problem.height())
    assert panel.problem.text().startswith("Cannot start: Batch size")
    said = w.statusBar().toolTip() or w.statusBar().currentMessage()
    assert said.startswith("Cannot start: Batch size") and "999,999" in said
    assert box.hasFocus() and box.lineEdit().selectedText() == box.lineEdit().text()
    qtbot.keyClicks(box.lineEdit(), "64")  # typing replaces the selected value
    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)
    assert panel.train_config().batch_size == 64 and not panel.problem.isVisibleTo(panel)


# ------------------------------------------------------------------------------------------------ 11. conditional
def test_ticking_condition_on_label_suggests_the_beta_that_passes_the_class_check(qtbot, make_window):
    from engine.config import CONDITIONAL_BETA

    w = make_window(train=SMALL_TRAIN.replace(epochs=30))  # enough steps: no other advice
    panel, box, beta = w.settings_panel, w.settings_panel.widgets["conditional"], w.settings_panel.widgets["beta"]
    assert panel.train_config().beta == 1.0 and not panel.note.isVisibleTo(panel)
    w.resize(1024, 700)
    qtbot.keyClick(box, Qt.Key.Key_Space)  # the box may sit below the column's fold
    assert box.isChecked() and beta.value() == CONDITIONAL_BETA == panel.train_config().beta
    assert panel.note.isVisibleTo(panel) and f"β = {CONDITIONAL_BETA:g}" in panel.note.text()
    # the note appears below the last field, under the column's fold at 1024×700: the column scrolls it into view,
    # the box stays on screen too
    qtbot.waitUntil(lambda: panel.note.visibleRegion().boundingRect().height() == panel.note.height())
    assert box.visibleRegion().boundingRect().height() == box.height()
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert beta.value() == 1.0 and not panel.note.isVisibleTo(panel)
    type_into(qtbot, w, "beta", "2")  # a β of the user's own is left alone
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert panel.train_config().beta == 2.0 and not panel.note.isVisibleTo(panel)
    qtbot.keyClick(box, Qt.Key.Key_Space)  # off: β stays the user's 2
    type_into(qtbot, w, "beta", "1")
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert panel.train_config().beta == CONDITIONAL_BETA and panel.note.isVisibleTo(panel)
    panel.set_configs(None, panel.train_config().replace(beta=1.0))  # a checkpoint's own β
    assert not panel.note.isVisibleTo(panel)  # the note speaks of the β on show only


def test_no_two_actions_share_a_shortcut_and_the_lazy_pages_build_when_opened(qtbot, make_window):
    """A key bound twice does nothing in Qt (an ambiguous shortcut); the VI explorer and the 2-D Lab are built when
    their tab is first shown."""
    from PySide6.QtGui import QAction

    w = make_window()
    seen: dict[str, str] = {}
    for a in w.findChildren(QAction):
        for key in a.shortcuts():
            text = key.toString()
            assert text not in seen, f"{text}: {seen.get(text)} and {a.objectName()}"
            seen[text] = a.objectName()
    assert "Ctrl+I" in seen and "Ctrl+E" in seen
    assert not w.explorer_page.is_built and not w.lab2d_page.is_built
    w.ui.tabs.setCurrentWidget(w.explorer_page)
    qtbot.waitUntil(lambda: w.explorer_page.is_built and w.explorer.isVisible())
    assert not w.lab2d_page.is_built
