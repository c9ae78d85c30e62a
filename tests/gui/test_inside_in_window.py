"""The "Inside the model" page through the real window: the traversal grid around the picked point (rows by KL),
Shift+click two points on the latent plot (or two test images of the Recon grid) for an interpolation (path drawn, end images decoded), an image file
encoded (File → Encode image…, or dropped: q ellipse on the plot, reconstruction), a dropped non-image refused in
one line, GIF / PNG export, and I(x;z) drawn beside the KL curve."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from engine.data.images import read_image
from engine.inspect.frames import grid_image
from engine.inspect.interpolation import interpolate
from engine.snapshot import SnapshotModel

from .test_main_window import train_to_end


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
    w.actions.encode_image.trigger()
    qtbot.waitUntil(lambda: w.inside.encoded is not None, timeout=5000)
    e = w.inside.encoded
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
    assert msg.isVisible() and "notes.txt" in msg.text() and "\n" not in msg.text()
    assert w.inside.encoded is e and w.errors == []
    np.testing.assert_array_equal(w.latent.ellipse_item.getData()[0], ex)
    # a dropped image is encoded like the menu's
    drop_file(w, photo)
    assert not msg.isVisible() and w.inside.encoded is not e
    np.testing.assert_allclose(w.inside.encoded.mu, mu[0], atol=1e-6)


def test_shift_click_two_test_images_of_the_recon_grid_interpolates_between_their_codes(qtbot, make_window):
    w = make_window()
    train_to_end(qtbot, w)
    w.gallery.tabs.setCurrentIndex(1)  # Reconstructions
    qtbot.waitUntil(lambda: w.gallery.images["recon"] is not None, timeout=5000)
    view = w.gallery.pages["recon"].view
    idx, half, th, tw = w.gallery._recon_layout
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
