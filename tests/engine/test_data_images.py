"""Image-folder loader: class folders, flat folders, train/test folders, one size, gray vs RGB, corrupt files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data import DatasetError
from engine.data.images import load_image_folder
from engine.data.dataset import as_float01

RNG = np.random.default_rng(0)


def save(path: Path, a: np.ndarray, mode: str | None = None) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, mode).save(path)
    return a


def gray(h=6, w=5):
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def raises(path, *names: str, match: str) -> str:
    with pytest.raises(DatasetError) as info:
        load_image_folder(path)
    msg = str(info.value)
    assert match in msg and "\n" not in msg and all(n in msg for n in names), msg
    return msg


def test_class_folders_give_sorted_class_names_and_labels(tmp_path):
    root = tmp_path / "pets"
    written = {}
    for cls, n in (("dog", 6), ("cat", 7), ("emu", 5)):
        for i in range(n):
            written[(cls, i)] = save(root / cls / f"{i:02d}.png", gray())
    (root / "notes.txt").write_text("not an image")  # ignored
    (root / ".cache").mkdir()  # hidden: ignored
    ds = load_image_folder(root)
    assert ds.class_names == ("cat", "dog", "emu") and ds.name == "pets"
    assert ds.image_shape == (1, 6, 5) and ds.x_train.dtype == np.uint8
    assert len(ds.x_train) + len(ds.x_test) == 18 and len(ds.x_test) == 2
    # every image comes back with its own class label and pixels
    for x, y in zip(
        np.concatenate([as_float01(ds.x_train), as_float01(ds.x_test)]), np.concatenate([ds.y_train, ds.y_test])
    ):
        cls = ds.class_names[y]
        assert any(np.array_equal(np.round(x[0] * 255), a) for (c, _), a in written.items() if c == cls)


def test_flat_folder_is_unlabelled(tmp_path):
    for i in range(9):
        save(tmp_path / f"img{i}.bmp", gray())
    save(tmp_path / "flat.jpeg", np.full((6, 5), 40, np.uint8))
    ds = load_image_folder(tmp_path)
    assert ds.y_train is None and ds.class_names is None and (len(ds.x_train), len(ds.x_test)) == (9, 1)
    xs = np.concatenate([as_float01(ds.x_train), as_float01(ds.x_test)]) * 255
    assert sum(np.abs(x - 40).max() < 3 for x in xs) == 1  # the flat JPEG came back (about) flat dark gray


def test_train_and_test_folders_keep_their_split(tmp_path):
    for i in range(4):
        save(tmp_path / "train" / "a" / f"{i}.png", gray())
        save(tmp_path / "train" / "b" / f"{i}.png", gray())
    save(tmp_path / "test" / "b" / "0.png", gray())
    save(tmp_path / "test" / "c" / "0.png", gray())  # a class seen only in test still gets a name
    ds = load_image_folder(tmp_path)
    assert (len(ds.x_train), len(ds.x_test)) == (8, 2)
    assert ds.class_names == ("a", "b", "c")
    assert ds.y_train.tolist() == [0] * 4 + [1] * 4 and ds.y_test.tolist() == [1, 2]


def test_rgb_if_any_image_has_colour_and_gray_content_counts_as_gray(tmp_path):
    g = save(tmp_path / "mixed" / "g.png", gray())
    c = save(tmp_path / "mixed" / "c.png", RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    ds = load_image_folder(tmp_path / "mixed")
    assert ds.image_shape == (3, 6, 5)
    xs = np.concatenate([as_float01(ds.x_train), as_float01(ds.x_test)])
    g_back = [x for x in xs if np.array_equal(x[0], x[1]) and np.array_equal(x[1], x[2])]
    assert len(g_back) == 1 and np.array_equal(np.round(g_back[0][0] * 255), g)  # gray repeated on 3 channels
    c_back = [x for x in xs if not np.array_equal(x[0], x[1])]
    assert len(c_back) == 1 and np.array_equal(np.round(c_back[0].transpose(1, 2, 0) * 255), c)
    # RGBA PNGs and palette GIFs whose colours are all gray load as one channel; alpha is dropped
    rgba = np.dstack([np.repeat(gray()[:, :, None], 3, axis=2), np.full((6, 5), 7, np.uint8)])
    save(tmp_path / "grayish" / "a.png", rgba, "RGBA")
    Image.fromarray(gray()).convert("P").save(tmp_path / "grayish" / "b.gif")
    ds = load_image_folder(tmp_path / "grayish")
    assert ds.image_shape == (1, 6, 5)
    assert any(
        np.array_equal(np.round(x[0] * 255), rgba[..., 0])
        for x in np.concatenate([as_float01(ds.x_train), as_float01(ds.x_test)])
    )


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n garbage", b"plain text"])
def test_corrupt_image_names_the_file(tmp_path, content):
    save(tmp_path / "cls" / "a.png", gray())
    (tmp_path / "cls" / "broken.png").write_bytes(content)
    raises(tmp_path, "cls/broken.png", match="corrupt or unreadable image")


def test_truncated_png_names_the_file(tmp_path):
    save(tmp_path / "ok.png", gray(64, 64))
    save(tmp_path / "cut.png", RNG.integers(0, 256, (64, 64), dtype=np.uint8))
    blob = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(blob[: len(blob) // 2])
    raises(tmp_path, "cut.png", match="corrupt")


def test_empty_folder_and_folder_without_images(tmp_path):
    (tmp_path / "empty").mkdir()
    raises(tmp_path / "empty", "empty", match="no images")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    raises(tmp_path / "docs", "docs", match="no images")


def test_loose_images_beside_class_folders(tmp_path):
    save(tmp_path / "cls" / "a.png", gray())
    save(tmp_path / "stray.png", gray())
    raises(tmp_path, tmp_path.name, match="mixes loose images with class sub-folders")


def test_empty_test_folder(tmp_path):
    save(tmp_path / "train" / "a.png", gray())
    (tmp_path / "test").mkdir()
    raises(tmp_path, "test", match="no images")


def test_16_bit_grayscale_pngs_are_rescaled_not_clipped(tmp_path):
    """A 16-bit PNG (microscopy, medical, astronomy scans) spans 0..65535: it must come back as the same picture on
    0..1, not as white wherever a pixel exceeds 255."""
    deep = {}
    for i in range(6):
        a = RNG.integers(0, 65536, (6, 5)).astype(np.uint16)
        a[0, 0], a[0, 1] = 0, 65535
        deep[i] = a
        im = Image.fromarray(a)
        assert im.mode.startswith("I;16")
        im.save(tmp_path / f"scan{i}.png")
        with Image.open(tmp_path / f"scan{i}.png") as back:
            assert back.mode.startswith("I") and np.array_equal(np.asarray(back).astype(np.int64), a)  # stored deep
    ds = load_image_folder(tmp_path)
    xs = np.concatenate([as_float01(ds.x_train), as_float01(ds.x_test)])[:, 0]  # (6, 6, 5) on 0..1
    assert xs.min() == 0.0 and xs.max() == 1.0
    for x in xs:  # each is one of the scans, to 8-bit precision
        assert any(np.abs(x - a / 65535.0).max() <= 0.5 / 255 + 1e-6 for a in deep.values())
    assert len({float(np.round(v, 3)) for v in xs.ravel()}) > 100  # not collapsed to a few levels


def test_32_bit_int_and_float_gray_modes_are_rescaled():
    """Older pillows open 16-bit PNGs as mode "I"; "F" comes from float images. Both become 0..255 without clipping."""
    from engine.data.images import _deep_gray

    small = np.arange(30, dtype=np.int32).reshape(6, 5) * 8  # values that fit in 8 bits: kept as they are
    assert np.array_equal(_deep_gray(Image.fromarray(small, "I")), small.astype(np.uint8))
    deep = np.arange(30, dtype=np.int32).reshape(6, 5) * 2000  # 16-bit content in an "I" image: rescaled
    assert np.array_equal(_deep_gray(Image.fromarray(deep, "I")), np.rint(deep / 257.0).astype(np.uint8))
    unit = np.linspace(0.0, 1.0, 30, dtype=np.float32).reshape(6, 5)  # "F" on 0..1: scaled to 0..255
    assert np.array_equal(_deep_gray(Image.fromarray(unit, "F")), np.rint(unit * 255).astype(np.uint8))
    big = unit * 400 - 50  # "F" outside 0..1: clipped to 0..255
    out = _deep_gray(Image.fromarray(big, "F"))
    assert out.min() == 0 and out.max() == 255 and out[2, 0] == np.uint8(np.rint(big[2, 0]))
