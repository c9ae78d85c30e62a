"""The "Inside the model" page through the real window: the traversal grid around the picked point (rows by KL),
Shift+click two points on the latent plot (or two test images of the Recon grid) for an interpolation (path drawn,
end images decoded), an image file encoded off the GUI thread (File → Encode image…, or dropped: q ellipse on the
plot, reconstruction, for d = 2 its true posterior on the "Posterior & gap" tab), a dropped non-image refused in one
line, a second drop while one is encoding replacing it, GIF / PNG export, and I(x;z) drawn beside the KL curve."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from engine.data.dataset import as_float01
from engine.data.images import read_image
from engine.inspect.frames import grid_image
from engine.inspect.interpolation import interpolate
from engine.posterior import posterior_grid
from engine.snapshot import SnapshotModel
from gui.panels.inference import HINT
from gui.workers import live_threads

from .window_helpers import train_to_end


def shift_click_latent(qtbot, w, x, y):
    lp = w.latent
    pos = lp.plot_widget.mapFromScene(lp.scene_pos_of(x, y))
    qtbot.mouseMove(lp.plot_widget.viewport(), pos)
    qtbot.mouseClick(lp.plot_widget.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, pos)


def drop_file(w, path):
    """A drag of one file onto the window (accepted on entering) and its drop, handed to the window's handler
    (offscreen Qt does not route a synthetic drop without a drag in progress)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(50, 50), *args)
    QApplication.sendEvent(w, enter)
    assert enter.isAccepted()
    w.dropEvent(QDropEvent(QPointF(50, 50), *args))


def test_traversal_rows_by_kl_around_the_picked_point_and_mi_beside_the_kl(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    w.state.pick(np.array([0.25, -0.5], np.float32))
    w.show_page(w.inside)
    qtbot.waitUntil(lambda: w.inside.result is not None and w.inside.isVisible(), timeout=5000)
    t = w.inside.result
    last = w.state.history.epochs[-1]
    assert t.images.shape == (2, 7, 1, 12, 12)  # d = 2 rows, 7 steps, 12×12 grey tiles
    assert list(t.dims) == list(np.argsort(-last.kl_per_dim, kind="stable"))
    np.testing.assert_array_equal(t.centre, [0.25, -0.5])
    model = SnapshotModel(w.state.snapshot)
    z = np.repeat(t.centre[None], 7, 0)
    z[:, t.dims[0]] += np.linspace(-3, 3, 7)
    np.testing.assert_allclose(t.images[0], model.decode(z), atol=1e-6)
    assert w.inside.trav_view.array.shape == grid_image(t.images).shape
    assert "rows by KL" in w.inside.trav_caption.text()
    # the KL plot holds the MI of each epoch beside the KL, and the caption splits the KL in two
    xs, ys = w.curves.test_mi.getData()
    assert len(ys) == len(w.state.history.epochs) and np.allclose(ys, [e.test_mi for e in w.state.history.epochs])
    assert all(0 <= v <= np.log(len(w.state.dataset.x_test)) for v in ys)
    assert "I(x;z)" in w.curves.caption.text()


def test_shift_click_two_points_draws_the_path_and_decodes_its_ends(qtbot, make_window, tmp_path):
    w = make_window()
    train_to_end(qtbot, w)
    x0, x1, y0, y1 = w.latent.view_rect()
    a_xy = (x0 + 0.25 * (x1 - x0), y0 + 0.3 * (y1 - y0))
    b_xy = (x0 + 0.7 * (x1 - x0), y0 + 0.8 * (y1 - y0))
    picked_before = w.state.picked
    shift_click_latent(qtbot, w, *a_xy)
    qtbot.waitUntil(lambda: len(w.inside.ends) == 1, timeout=2000)
    shift_click_latent(qtbot, w, *b_xy)
    qtbot.waitUntil(lambda: len(w.inside.ends) == 2, timeout=2000)
    assert w.state.picked is picked_before  # a Shift+click does not pick a point to decode
    a, b = w.inside.ends
    px = (x1 - x0) / w.latent.vb.width()
    assert abs(a[0] - a_xy[0]) < 2 * px and abs(b[0] - b_xy[0]) < 2 * px
    xs, ys = w.latent.path_item.getData()
    assert len(xs) == 9 and (xs[0], ys[0]) == (a[0], a[1]) and (xs[-1], ys[-1]) == (b[0], b[1])  # drawn on the plot
    w.show_page(w.inside)
    qtbot.waitUntil(lambda: w.inside.path is not None, timeout=5000)
    z, images = w.inside.path
    model = SnapshotModel(w.state.snapshot)
    np.testing.assert_allclose(images[0], model.decode(a[None])[0], atol=1e-6)
    np.testing.assert_allclose(images[-1], model.decode(b[None])[0], atol=1e-6)
    w.inside.method.setCurrentText("spherical")
    np.testing.assert_array_equal(w.inside.path[0], interpolate(a, b, 9, "spherical"))  # the page follows the choice
    assert not np.allclose(w.inside.path[0], z)
    np.testing.assert_array_equal(w.latent.path_item.getData()[0], w.inside.path[0][:, 0])
    # export as an animated GIF through the page's button
    out = tmp_path / "path.gif"
    w.ask_save_path = lambda title, kind, suggested: str(out)
    qtbot.mouseClick(w.inside.interp_gif, Qt.MouseButton.LeftButton)
    gif = Image.open(out)
    assert gif.n_frames == 2 * 9 - 2 and gif.size == (12 * 5, 12 * 5)  # there and back; tiles scaled ×5
    out_png = tmp_path / "trav.png"
    w.ask_save_path = lambda title, kind, suggested: str(out_png)
    qtbot.mouseClick(w.inside.trav_png, Qt.MouseButton.LeftButton)
    assert Image.open(out_png).size == ((7 * 12 + 6 * 2) * 5, (2 * 12 + 2) * 5)
    qtbot.mouseClick(w.inside.interp_clear, Qt.MouseButton.LeftButton)
    assert w.latent.path_item.getData()[0] is None or len(w.latent.path_item.getData()[0]) == 0


def test_encode_image_via_menu_then_a_dropped_non_image_gets_one_line(qtbot, make_window, tmp_path):
    w = make_window()
    train_to_end(qtbot, w)
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (30, 20, 3), dtype=np.uint8), "RGB").save(photo)
    w.ask_open_path = lambda title, kinds: str(photo)
    w.window_actions.encode_image.trigger()
    qtbot.waitUntil(lambda: w.state.encoded is not None, timeout=5000)
    e = w.state.encoded
    model = SnapshotModel(w.state.snapshot)
    x = read_image(photo, (12, 12), 1)[None]  # the dataset's own rules: 12×12 grey
    np.testing.assert_array_equal(e.x, x)
    mu, log_var = model.encode(x)
    np.testing.assert_allclose(e.mu, mu[0], atol=1e-6)
    np.testing.assert_allclose(e.log_var, log_var[0], atol=1e-6)
    np.testing.assert_allclose(w.inside.encoded_recon.array, model.decode(mu)[0], atol=1e-6)
    ex, ey = w.latent.ellipse_item.getData()
    assert len(ex) > 10
    centre = np.array([ex.mean(), ey.mean()])
    np.testing.assert_allclose(centre, mu[0], atol=0.05 * np.exp(0.5 * log_var[0]).max() + 1e-3)
    assert w.ui.tabs.currentWidget() is w.inside  # the page is shown
    # a dropped text file: one line naming it, the encoded image and everything else unchanged
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    drop_file(w, notes)
    msg = w.inside.encode_message
    qtbot.waitUntil(lambda: msg.isVisible(), timeout=5000)
    assert "notes.txt" in msg.text() and "\n" not in msg.text()
    assert w.state.encoded is e and w.errors == []
    np.testing.assert_array_equal(w.latent.ellipse_item.getData()[0], ex)
    # a dropped image is encoded like the menu's
    drop_file(w, photo)
    qtbot.waitUntil(lambda: w.state.encoded is not e, timeout=5000)
    assert not msg.isVisible()
    np.testing.assert_allclose(w.state.encoded.mu, mu[0], atol=1e-6)


def save_png(path, image):
    """A (1, H, W) float image in [0, 1] as a grey PNG file."""
    Image.fromarray(np.round(image[0] * 255).astype(np.uint8), "L").save(path)
    return path


def test_a_dropped_image_is_encoded_off_the_gui_thread_and_its_posterior_is_on_the_posterior_tab(
    qtbot, make_window, tmp_path
):
    w = make_window()
    train_to_end(qtbot, w)
    panel = w.inference
    w.state.select_example(3)  # a test example on show first
    qtbot.waitUntil(
        lambda: panel.view is not None and panel.view.index == 3 and not panel.running_workers(), timeout=20_000
    )
    cat = save_png(tmp_path / "cat.png", w.state.test_image(7))
    drop_file(w, cat)
    encoder = w.inside_actions.encoder
    # read, resized and encoded on a worker thread: nothing has arrived when the drop returns
    assert encoder.worker is not None and encoder.worker.thread is not QApplication.instance().thread()
    assert w.state.encoded is None and panel.view.index == 3
    qtbot.waitUntil(lambda: w.state.encoded is not None and encoder.worker is None, timeout=5000)
    e = w.state.encoded
    assert w.latent.ellipse_item.getData()[0] is not None and len(w.latent.ellipse_item.getData()[0]) > 10
    # the Posterior & gap tab follows: the grid is that image's, named as its file
    qtbot.waitUntil(
        lambda: panel.view is not None and panel.view.index is None and not panel.running_workers(), timeout=20_000
    )
    assert panel.current_index is None and panel.view.name == "cat.png"
    assert "cat.png" in panel.title.text() and "cat.png" in panel.status.text()
    g = panel.view.grid
    model = SnapshotModel(w.state.snapshot)
    expected = posterior_grid(model.model, as_float01(e.x[0]), g.grid_size)
    np.testing.assert_allclose(g.log_px, expected.log_px, atol=1e-9)
    np.testing.assert_allclose(g.mu, e.mu, atol=1e-5)  # the encoder's q is the one drawn on the latent plot
    sd = np.exp(0.5 * e.log_var)
    assert np.all(np.abs(g.map_point - e.mu) < 3 * sd + 2 * (g.xs[1] - g.xs[0]))  # a test image: q sits on p(z|x)
    np.testing.assert_allclose(panel.overlay.q_mean.getData()[0], [e.mu[0]], atol=1e-5)
    assert panel.values["kl_gap"].text() == f"{g.kl_gap:.4f} nats"
    # selecting a test example again switches back
    w.state.select_example(3)
    qtbot.waitUntil(lambda: panel.view is not None and panel.view.index == 3, timeout=20_000)
    assert "Test example #3" in panel.title.text()
    # another dataset: the image goes, from the state, the Inside page, the latent plot and the Posterior tab
    drop_file(w, cat)
    qtbot.waitUntil(
        lambda: panel.view is not None and panel.view.index is None and not panel.running_workers(), timeout=20_000
    )
    w.set_dataset(w.state.dataset)
    assert w.state.encoded is None and panel.subject is None and panel.title.text() == HINT
    assert w.inside.encoded_input.array is None and len(w.latent.ellipse_item.getData()[0] or []) == 0


def test_a_second_drop_while_one_is_encoding_replaces_it_and_a_bad_file_changes_nothing(qtbot, make_window, tmp_path):
    w = make_window()
    train_to_end(qtbot, w)
    first = save_png(tmp_path / "first.png", w.state.test_image(1))
    second = save_png(tmp_path / "second.png", w.state.test_image(2))
    arrived = []
    w.state.encoded_changed.connect(arrived.append)
    drop_file(w, first)
    drop_file(w, second)  # while the first is still being encoded (its result cannot have arrived yet)
    encoder = w.inside_actions.encoder
    assert encoder.waiting == str(second)
    qtbot.waitUntil(lambda: w.state.encoded is not None and encoder.worker is None, timeout=5000)
    assert [e.path for e in arrived] == [str(second)]  # the first's result was dropped, the newest encoded
    qtbot.waitUntil(lambda: w.inference.view is not None and not w.inference.running_workers(), timeout=20_000)
    e, view = w.state.encoded, w.inference.view
    ellipse = w.latent.ellipse_item.getData()[0].copy()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    drop_file(w, broken)
    msg = w.inside.encode_message
    qtbot.waitUntil(lambda: msg.isVisible() and encoder.worker is None, timeout=5000)
    assert "broken.png" in msg.text() and "\n" not in msg.text() and w.errors == []
    assert w.state.encoded is e and arrived[-1] is e and w.inference.view is view
    assert w.inference.view.name == "second.png"
    np.testing.assert_array_equal(w.latent.ellipse_item.getData()[0], ellipse)
    assert not live_threads()


def test_shift_click_two_test_images_of_the_recon_grid_interpolates_between_their_codes(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    w.gallery.tabs.setCurrentIndex(1)  # Reconstructions
    qtbot.waitUntil(lambda: w.gallery.images["recon"] is not None, timeout=5000)
    view = w.gallery.pages["recon"].view
    idx, half, th, tw = w.gallery.recon_layout
    r = view.target_rect()
    scale = r.width() / view.qimage.width()
    for col in (0, 3):  # the first and the fourth test image of the first half (tile row 0)
        pos = QPoint(r.x() + int((col * tw + tw // 2) * scale), r.y() + int((th // 2) * scale))
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, pos)
    assert len(w.inside.ends) == 2
    model = SnapshotModel(w.state.snapshot)
    mu, _ = model.encode(np.stack([w.state.test_image(int(idx[0])), w.state.test_image(int(idx[3]))]))
    np.testing.assert_allclose(np.stack(w.inside.ends), mu, atol=1e-6)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=pos)  # a plain click only selects the example
    assert len(w.inside.ends) == 2 and w.state.example == int(idx[3])
