"""Built-in data: the Shapes generator (factors really drawn, deterministic, fast) and the Fashion-MNIST default."""

from __future__ import annotations


import numpy as np
import pytest

from engine.data import default_dataset, fashion_mnist_path, make_shapes, shape_factors
from engine.data.builtin import FASHION_DIR_ENV, SHAPE_CLASSES
from engine.data.idx import FASHION_MNIST_CLASSES
from tests.engine.test_data_idx import FASHION, make_set


def test_shapes_defaults():
    ds = make_shapes()
    assert ds.x_train.shape == (12000, 1, 28, 28) and ds.x_test.shape == (2000, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.name == "Shapes (built-in)" and ds.source == "builtin:shapes" and ds.class_names == SHAPE_CLASSES
    counts = np.bincount(ds.y_train, minlength=4)
    assert counts.min() > 2700 and counts.sum() == 12000
    soft = ((ds.x_train > 0) & (ds.x_train < 1)).mean()
    assert 0.01 < soft < 0.2  # anti-aliased edges: some, not most, pixels are in between


def test_shapes_are_deterministic_per_seed():
    a, b, c = make_shapes(300, 50, seed=3), make_shapes(300, 50, seed=3), make_shapes(300, 50, seed=4)
    assert a.fingerprint() == b.fingerprint() and np.array_equal(a.x_test, b.x_test)
    assert a.fingerprint() != c.fingerprint()
    assert make_shapes(300, 50, size=20).image_shape == (1, 20, 20)


def test_images_follow_their_factors():
    size, n = 32, 400
    ds, f = make_shapes(n, 1, size=size, seed=1), shape_factors(n + 1, size, seed=1)
    x = ds.x_train[:, 0]
    assert ds.y_train.tolist() == f["kind"][:n].tolist()
    # nothing touches the border: shapes stay inside the frame
    assert x[:, 0].max() == x[:, -1].max() == x[:, :, 0].max() == x[:, :, -1].max() == 0
    mass = x.sum(axis=(1, 2))
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    cx, cy = (x * xx).sum(axis=(1, 2)) / mass, (x * yy).sum(axis=(1, 2)) / mass
    r, kind = f["radius"][:n], f["kind"][:n]
    assert np.abs(cx - f["x"][:n]).max() < 0.1 and np.abs(cy - f["y"][:n]).max() < 0.1  # all four are centred
    area = {"square": 1.44**2, "circle": np.pi * 0.85**2, "triangle": 3 * np.sqrt(3) / 4, "cross": 2 * 2 * 0.6 - 0.6**2}
    for name, per_r2 in area.items():
        m = kind == SHAPE_CLASSES.index(name)
        assert np.abs(mass[m] / (per_r2 * r[m] ** 2) - 1).max() < 0.03, name
    # rotation is drawn: a square's ink width is its side times |cos| + |sin| of the angle
    sq = kind == SHAPE_CLASSES.index("square")
    width = (x[sq].max(axis=1) > 0.5).sum(axis=1)
    rot = f["rotation"][:n][sq]
    assert np.abs(width - 1.44 * r[sq] * (np.abs(np.cos(rot)) + np.abs(np.sin(rot)))).max() < 1.5
    assert np.ptp(rot) > 1.2  # angles over most of the square's quarter turn
    # a bigger radius means more ink, whatever the kind
    for k in range(4):
        m = kind == k
        assert np.corrcoef(r[m], mass[m])[0, 1] > 0.95


def test_default_is_shapes_when_fashion_mnist_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(FASHION_DIR_ENV, str(tmp_path / "nowhere"))
    assert fashion_mnist_path() is None
    ds = default_dataset()
    assert ds.source == "builtin:shapes" and len(ds.x_train) == 12000


def test_default_loads_fashion_mnist_from_the_env_folder(tmp_path, monkeypatch):
    make_set(tmp_path / "fm", n_train=20, n_test=5)
    monkeypatch.setenv(FASHION_DIR_ENV, str(tmp_path / "fm"))
    assert fashion_mnist_path() == tmp_path / "fm"
    ds = default_dataset()
    assert ds.name == "Fashion-MNIST" and ds.class_names == FASHION_MNIST_CLASSES
    assert (len(ds.x_train), len(ds.x_test)) == (20, 5) and ds.source == str(tmp_path / "fm")


def test_default_is_the_real_fashion_mnist_when_installed(monkeypatch):
    monkeypatch.delenv(FASHION_DIR_ENV, raising=False)
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{FASHION} is not installed")
    ds = default_dataset()
    assert ds.summary() == "Fashion-MNIST: 60,000 train / 10,000 test, 1×28×28, 10 classes"
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
