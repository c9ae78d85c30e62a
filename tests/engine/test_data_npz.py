"""NumPy loader: key rules, layouts, the pixel rule, and nothing ever unpickled or over-allocated."""

from __future__ import annotations

import io
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest

from engine.data import DatasetError
from engine.data.npz import load_npz
from engine.data.dataset import as_float01

RNG = np.random.default_rng(0)


def raises(path, match: str) -> str:
    with pytest.raises(DatasetError) as info:
        load_npz(path)
    msg = str(info.value)
    assert path.name in msg and match in msg and "\n" not in msg, msg
    return msg


class SideEffect:
    """Unpickling this creates the file ``marker``: proof that a pickle payload ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_keras_layout_keeps_its_split(tmp_path):
    x_train = RNG.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    x_test = RNG.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    y_train, y_test = np.arange(20) % 10, np.arange(5)
    np.savez_compressed(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    ds = load_npz(tmp_path / "mnist.npz")
    assert ds.name == "mnist" and ds.x_train.shape == (20, 1, 28, 28) and ds.x_test.shape == (5, 1, 28, 28)
    assert ds.x_train.dtype == np.uint8
    np.testing.assert_allclose(as_float01(ds.x_test)[:, 0], x_test / 255, rtol=1e-6)
    assert ds.y_train.tolist() == y_train.tolist() and ds.y_test.tolist() == y_test.tolist()
    assert ds.y_train.dtype == np.int64


@pytest.mark.parametrize("keys", [("x", "y"), ("images", "labels"), ("x_train", "y_train")])
def test_single_split_keys_get_a_holdout_with_labels_following_images(tmp_path, keys):
    x = np.repeat(np.arange(40, dtype=np.uint8)[:, None, None], 9, axis=1).reshape(40, 3, 3)  # image i is all i
    np.savez(tmp_path / "d.npz", **{keys[0]: x, keys[1]: np.arange(40) % 4})
    ds = load_npz(tmp_path / "d.npz")
    assert (len(ds.x_train), len(ds.x_test)) == (36, 4)
    ids = np.round(as_float01(ds.x_train)[:, 0, 0, 0] * 255).astype(int)
    assert ds.y_train.tolist() == (ids % 4).tolist()


def test_channels_last_rgb_becomes_channels_first_and_alpha_is_dropped(tmp_path):
    x = RNG.integers(0, 256, (6, 5, 7, 4), dtype=np.uint8)  # (N, H, W, RGBA)
    np.savez(tmp_path / "rgba.npz", x_train=x, x_test=x[:2])
    ds = load_npz(tmp_path / "rgba.npz")
    assert ds.image_shape == (3, 5, 7)
    np.testing.assert_allclose(as_float01(ds.x_train), x[..., :3].transpose(0, 3, 1, 2) / 255, rtol=1e-6)
    assert ds.y_train is None


def test_channels_first_is_kept(tmp_path):
    x = RNG.random((10, 3, 8, 8), dtype=np.float32)
    np.save(tmp_path / "cf.npy", x)
    ds = load_npz(tmp_path / "cf.npy")
    assert ds.image_shape == (3, 8, 8)
    assert {tuple(r.ravel()[:5]) for r in np.concatenate([as_float01(ds.x_train), as_float01(ds.x_test)])} == {
        tuple(r.ravel()[:5]) for r in x
    }


def test_pixel_rule(tmp_path):
    unit = RNG.random((10, 4, 4))  # float64 in [0, 1): kept, as float32
    np.save(tmp_path / "unit.npy", unit)
    ds = load_npz(tmp_path / "unit.npy")
    assert ds.x_train.dtype == np.float32  # off the 1/255 grid: kept exact as floats
    back = np.sort(np.concatenate([as_float01(ds.x_train), as_float01(ds.x_test)]).ravel())
    assert np.array_equal(back, np.sort(unit.ravel().astype(np.float32)))
    whole = np.floor(RNG.random((10, 4, 4)) * 256)  # float whole numbers 0..255: divided by 255
    np.save(tmp_path / "whole.npy", whole)
    ds = load_npz(tmp_path / "whole.npy")
    assert np.isclose(
        np.sort(np.concatenate([as_float01(ds.x_train), as_float01(ds.x_test)]).ravel()), np.sort(whole.ravel()) / 255
    ).all()
    np.save(tmp_path / "bool.npy", np.eye(4, dtype=bool)[None].repeat(5, 0))
    assert as_float01(load_npz(tmp_path / "bool.npy").x_train).max() == 1.0


def test_storage_is_uint8_when_exact_and_float_otherwise(tmp_path):
    grid = RNG.integers(0, 256, (12, 5, 5)).astype(np.float32) / np.float32(255)  # floats on the 1/255 grid
    np.save(tmp_path / "grid.npy", grid.astype(np.float64))
    ds = load_npz(tmp_path / "grid.npy")
    assert ds.x_train.dtype == np.uint8 and ds.x_test.dtype == np.uint8
    back = np.concatenate([as_float01(ds.x_train), as_float01(ds.x_test)])[:, 0]
    assert {r.tobytes() for r in back} == {r.tobytes() for r in grid}  # bit-exact, not merely close
    off = grid.copy()
    off[3, 2, 2] = np.nextafter(off[3, 2, 2], np.float32(2))  # one value a hair off the grid: all stays float
    np.save(tmp_path / "off.npy", off)
    ds = load_npz(tmp_path / "off.npy")
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert {r.tobytes() for r in np.concatenate([ds.x_train, ds.x_test])[:, 0]} == {r.tobytes() for r in off}


def test_train_and_test_share_one_scale(tmp_path):
    # test alone would look like [0, 1] floats; together with train (0..255 whole numbers) both are divided
    np.savez(tmp_path / "s.npz", x_train=np.full((3, 2, 2), 200.0), x_test=np.full((3, 2, 2), 1.0))
    ds = load_npz(tmp_path / "s.npz")
    assert np.allclose(as_float01(ds.x_train), 200 / 255) and np.allclose(as_float01(ds.x_test), 1 / 255)


def test_single_array_of_any_name(tmp_path):
    np.savez(tmp_path / "one.npz", digits=np.zeros((10, 4, 4), np.uint8))
    assert load_npz(tmp_path / "one.npz").image_shape == (1, 4, 4)


# ---- bad files ----


@pytest.mark.parametrize("suffix", ["npz", "npy"])
def test_pickled_object_arrays_are_refused_and_never_unpickled(tmp_path, suffix):
    marker = tmp_path / "payload-ran"
    evil = np.array([SideEffect(marker)] * 4, dtype=object)
    path = tmp_path / f"evil.{suffix}"
    if suffix == "npz":
        np.savez(path, x=evil)
    else:
        np.save(path, evil, allow_pickle=True)
    pickle.loads(pickle.dumps(SideEffect(tmp_path / "control")))  # the payload does work when unpickled
    assert (tmp_path / "control").exists()
    raises(path, "pickled object arrays are not loaded")
    assert not marker.exists()


def test_a_bare_pickle_named_npy_is_never_unpickled(tmp_path):
    marker = tmp_path / "payload-ran"
    (tmp_path / "evil.npy").write_bytes(pickle.dumps(SideEffect(marker)))
    raises(tmp_path / "evil.npy", "not a NumPy")
    assert not marker.exists()


@pytest.mark.parametrize(
    "x, match",
    [
        (np.array([[[0.5, np.nan]]] * 3), "NaN or infinite pixel value in image 0"),
        (np.array([[[0.5]], [[0.5]], [[np.inf]]]), "NaN or infinite pixel value in image 2"),
        (np.full((3, 2, 2), -0.5), "outside the pixel range"),
        (np.full((3, 2, 2), 300, np.int16), "span 300..300"),
        (np.full((3, 2, 2), 12.5), "expected 0..1, or whole numbers 0..255"),
        (np.zeros((3, 4)), "expected (N,H,W)"),
        (np.zeros((3, 5, 6, 7)), "expected 1, 3 or 4 channels"),
        (np.zeros((3, 0, 4)), "no pixels"),
        (np.full((3, 2, 2), "a"), "not numbers"),
        (np.zeros((1, 4, 4)), "need at least 2"),
    ],
)
def test_bad_pixels(tmp_path, x, match):
    np.save(tmp_path / "bad.npy", x)
    raises(tmp_path / "bad.npy", match)


@pytest.mark.parametrize(
    "y, match",
    [(np.arange(9), "9 labels for 10 images"), (np.full(10, 1.5), "not whole numbers"), (-np.ones(10), "span -1..-1")],
)
def test_bad_labels(tmp_path, y, match):
    np.savez(tmp_path / "bad.npz", x=np.zeros((10, 4, 4), np.uint8), y=y)
    raises(tmp_path / "bad.npz", match)


def test_unknown_keys(tmp_path):
    np.savez(tmp_path / "k.npz", a=np.zeros((4, 2, 2)), b=np.zeros((4, 2, 2)))
    raises(tmp_path / "k.npz", "found ['a', 'b']")


def test_empty_and_non_numpy_files(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"")
    raises(tmp_path / "e.npz", "empty file")
    (tmp_path / "t.npz").write_text("hello")
    raises(tmp_path / "t.npz", "not a NumPy .npy or .npz file")


def test_truncated_npy_and_npz(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.zeros((10, 4, 4), np.uint8))
    (tmp_path / "cut.npy").write_bytes(buf.getvalue()[:-10])
    raises(tmp_path / "cut.npy", "truncated")
    np.savez(tmp_path / "full.npz", x=RNG.random((50, 8, 8)))
    blob = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(blob[: len(blob) // 2])
    raises(tmp_path / "cut.npz", "not a readable .npz")


@pytest.mark.parametrize("suffix", ["npy", "npz"])
def test_header_claiming_huge_array_fails_fast_without_allocating(tmp_path, suffix):
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "|u1", "fortran_order": False, "shape": (10**9, 28, 28)})
    raw = head.getvalue() + bytes(100)
    path = tmp_path / f"huge.{suffix}"
    if suffix == "npy":
        path.write_bytes(raw)
    else:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("x.npy", raw)
    tracemalloc.start()
    try:
        msg = raises(path, "truncated")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 4 * 2**20, peak  # the claim is 784 GB: refused from the header, nothing of that size allocated
    assert "784000000000 bytes" in msg and "holds 100" in msg
