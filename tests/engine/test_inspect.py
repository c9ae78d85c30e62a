"""Looking inside a model: the traversal grid (shape, rows by KL, inactive units flagged, a conditional model's
class), interpolation paths that start and end at the chosen codes, an image file encoded by the dataset's own
rules (same q as the same array through the engine; one line for a file the model cannot take), PNG / GIF export."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from engine.config import ModelConfig
from engine.data.images import load_image_folder
from engine.inspect.frames import gif_bytes, png_bytes, write_gif
from engine.inspect.interpolation import interpolate, interpolation
from engine.inspect.traversal import traversal, traversal_order
from engine.inspect.user_image import ImageRefused, encode_image
from engine.model import VAE
from engine.snapshot import SnapshotModel, decoder_snapshot


def _model(shape=(1, 8, 8), d=3, classes=0, arch="mlp") -> SnapshotModel:
    torch.manual_seed(0)
    return SnapshotModel(decoder_snapshot(VAE(ModelConfig(shape, d, arch, 32, n_classes=classes)), 0))


def test_traversal_grid_shape_rows_by_kl_and_inactive_rows():
    model = _model(d=4)
    kl = np.array([0.5, 0.001, 2.0, 0.5])
    centre = np.array([0.1, -0.2, 0.3, 0.4], np.float32)
    au_variance = np.array([0.3, 0.001, 0.9, 0.2])  # dimension 1 is not an active unit
    t = traversal(model, centre, kl, au_variance, steps=7)
    assert t.images.shape == (4, 7, 1, 8, 8)
    assert t.dims.tolist() == [2, 0, 3, 1]  # largest KL first; a tie keeps the lower index first
    assert t.kl.tolist() == [2.0, 0.5, 0.5, 0.001] and t.inactive.tolist() == [False, False, False, True]
    np.testing.assert_allclose(t.offsets, np.linspace(-3, 3, 7))
    for r, dim in enumerate(t.dims):  # row r moves only its own dimension, from −3 to +3 around the centre
        z = np.repeat(centre[None], 7, 0)
        z[:, dim] += np.linspace(-3, 3, 7)
        np.testing.assert_allclose(t.images[r], model.decode(z), atol=1e-6)
    middle = model.decode(centre[None])[0]
    for r in range(4):
        np.testing.assert_allclose(t.images[r, 3], middle, atol=1e-6)
    assert traversal(model, centre, kl, au_variance, steps=5, rows=2).images.shape == (2, 5, 1, 8, 8)


def test_traversal_of_a_conditional_model_is_for_the_chosen_class():
    model = _model(d=2, classes=3)
    t = traversal(model, np.zeros(2), np.array([1.0, 0.0]), np.ones(2), steps=3, label=2)
    assert t.label == 2
    z = np.zeros((3, 2), np.float32)
    z[:, 0] = [-3, 0, 3]
    np.testing.assert_allclose(t.images[0], model.decode(z, 2), atol=1e-6)
    assert not np.allclose(t.images[0], model.decode(z, 0), atol=1e-4)
    with pytest.raises(ValueError, match="conditional"):
        traversal(model, np.zeros(2), np.ones(2), np.ones(2))
    assert traversal_order(np.array([0.0, 3.0, 1.0])).tolist() == [1, 2, 0]


@pytest.mark.parametrize("method", ["linear", "spherical"])
def test_interpolation_end_points_decode_to_the_end_points_images(method):
    model = _model(d=3)
    a, b = np.array([1.0, -0.5, 2.0], np.float32), np.array([-1.5, 0.7, 0.2], np.float32)
    z, images = interpolation(model, a, b, steps=9, method=method)
    assert z.shape == (9, 3) and images.shape == (9, 1, 8, 8)
    np.testing.assert_array_equal(z[0], a)
    np.testing.assert_array_equal(z[-1], b)
    np.testing.assert_allclose(images[0], model.decode(a[None])[0], atol=1e-6)
    np.testing.assert_allclose(images[-1], model.decode(b[None])[0], atol=1e-6)
    np.testing.assert_allclose(images, model.decode(z), atol=1e-6)


def test_linear_is_the_straight_line_and_spherical_keeps_the_radius():
    a, b = np.array([2.0, 0.0]), np.array([0.0, 2.0])
    np.testing.assert_allclose(interpolate(a, b, 3, "linear")[1], [1.0, 1.0])
    s = interpolate(a, b, 5, "spherical")
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 2.0, rtol=1e-6)  # on the circle, not inside it
    np.testing.assert_allclose(s[2], [np.sqrt(2), np.sqrt(2)], rtol=1e-6)
    np.testing.assert_allclose(interpolate(a, 3 * a, 3, "spherical")[1], 2 * a)  # parallel: the line
    with pytest.raises(ValueError, match="method"):
        interpolate(a, b, 3, "cubic")


def _png(path, a: np.ndarray, mode: str):
    Image.fromarray(a, mode).save(path)
    return path


def test_an_encoded_file_gives_the_same_q_as_the_same_array_through_the_engine(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "mine"
    folder.mkdir()
    pixels = rng.integers(0, 256, (20, 13, 3), dtype=np.uint8)  # RGB, an odd size
    path = _png(folder / "photo.png", pixels, "RGB")
    _png(folder / "copy.png", pixels, "RGB")  # a folder dataset needs two images (one is held out for testing)
    model = _model(shape=(1, 8, 8), d=2)
    enc = encode_image(model, path)
    as_dataset = load_image_folder(folder, resolution=8, channels=1).x_train[:1]  # the dataset's resize and colour
    np.testing.assert_array_equal(enc.x, as_dataset)
    mu, log_var = model.encode(as_dataset)
    np.testing.assert_array_equal(enc.mu, mu[0])
    np.testing.assert_array_equal(enc.log_var, log_var[0])
    np.testing.assert_allclose(enc.reconstruction, model.decode(mu)[0], atol=1e-6)
    # grey file, RGB conv model: repeated on the three channels, as the folder loader does
    grey = _png(tmp_path / "grey.png", rng.integers(0, 256, (16, 16), dtype=np.uint8), "L")
    rgb = encode_image(_model(shape=(3, 16, 16), d=2, arch="conv"), grey)
    assert rgb.x.shape == (1, 3, 16, 16) and (rgb.x[:, 0] == rgb.x[:, 2]).all()
    cond = encode_image(_model(d=2, classes=3), path, label=1)
    assert cond.label == 1


def test_a_file_the_model_cannot_take_gets_one_line_naming_it(tmp_path):
    model = _model()
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"not a png at all")
    cases = [
        (text, "notes.txt", "not an image file"),
        (fake, "fake.png", "unreadable"),
        (tmp_path / "gone.png", "gone.png", "not a file"),
    ]
    for path, name, why in cases:
        with pytest.raises(ImageRefused) as e:
            encode_image(model, path)
        assert name in str(e.value) and why in str(e.value) and "\n" not in str(e.value)
    ok = _png(tmp_path / "ok.png", np.zeros((8, 8), np.uint8), "L")
    with pytest.raises(ImageRefused, match="4-channel"):
        encode_image(_model(shape=(4, 8, 8)), ok)
    with pytest.raises(ImageRefused, match="class"):
        encode_image(_model(classes=3), ok)


def test_png_grid_and_looping_gif(tmp_path):
    frames = np.random.default_rng(0).random((5, 3, 8, 8)).astype(np.float32)  # 5 RGB frames
    gif = Image.open(io.BytesIO(gif_bytes(frames, scale=2)))
    assert gif.n_frames == 8 and gif.size == (16, 16) and gif.info["loop"] == 0  # forward, then back
    grid = Image.open(io.BytesIO(png_bytes(frames.reshape(1, 5, 3, 8, 8))))
    assert grid.size == (5 * 8 + 4 * 2, 8) and grid.mode == "RGB"
    tiles = np.asarray(grid)
    np.testing.assert_array_equal(tiles[:, 10:18], np.rint(frames[1].transpose(1, 2, 0) * 255).astype(np.uint8))
    out = tmp_path / "t.gif"
    write_gif(out, frames[:, None, None].repeat(2, 1))  # frames that are themselves grids (2 rows × 1)
    assert Image.open(out).size == (8, 18)
