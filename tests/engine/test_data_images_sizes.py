"""Image folders of any size and colour: resize + centre crop, the default size, mode mixes, progress and cancel,
and one short conv training run on a mixed-size colour folder."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.config import ModelConfig, TrainConfig
from engine.data import LoadCancelled, LoadProgress, as_float01, load_dataset
from engine.data.images import load_image_folder
from engine.messages import EpochSummary
from engine.trainer import Trainer

RNG = np.random.default_rng(0)
RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def save(path: Path, a: np.ndarray, mode: str | None = None) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, mode).save(path)
    return a


def pattern(side: int, strip: int, vertical: bool = False) -> np.ndarray:
    """A (side × side) centre of four coloured quadrants between two red strips of ``strip`` px (left/right, or
    top/bottom when ``vertical``): a resize + centre crop to ``side`` must give exactly the four quadrants."""
    q = side // 2
    centre = np.zeros((side, side, 3), np.uint8)
    centre[:q, :q], centre[:q, q:], centre[q:, :q], centre[q:, q:] = GREEN, BLUE, WHITE, BLACK
    red = np.empty((strip, side, 3) if vertical else (side, strip, 3), np.uint8)
    red[:] = RED
    return np.concatenate([red, centre, red], axis=0 if vertical else 1)


def all_images(ds) -> np.ndarray:
    return np.concatenate([ds.x_train, ds.x_test])


def test_resize_and_centre_crop_keep_the_centre_of_a_known_pattern(tmp_path):
    save(tmp_path / "a.png", pattern(20, 10))  # 40×20: the shorter side is already 20, the strips are cut off
    save(tmp_path / "b.png", pattern(40, 20, vertical=True))  # 40×80: halved, then cropped
    save(tmp_path / "c.png", pattern(10, 3))  # 16×10: doubled to 20 high, cropped
    ds = load_image_folder(tmp_path, resolution=20)
    assert ds.image_shape == (3, 20, 20) and ds.x_train.dtype == np.uint8
    expect = pattern(20, 0).transpose(2, 0, 1)  # (3, 20, 20): the four quadrants, no red
    inner = np.zeros((20, 20), bool)
    for r in (slice(2, 8), slice(12, 18)):
        for c in (slice(2, 8), slice(12, 18)):
            inner[r, c] = True  # away from the quadrant edges, where bilinear filtering mixes neighbours
    for x in all_images(ds):
        assert np.abs(x[:, inner].astype(int) - expect[:, inner]).max() <= 1
        assert (x[0, 2:8, 0] <= 70).all() and (x[0, 2:8, -1] <= 70).all()  # edge columns: at most a blur of red
    exact = [x for x in all_images(ds) if np.array_equal(x, expect)]
    assert len(exact) >= 1  # the 40×20 image is a pure crop: every pixel exact


def test_default_size_is_the_most_common_one_up_to_64_and_the_note_says_what_was_done(tmp_path):
    for i in range(5):
        save(tmp_path / "cls" / f"s{i}.png", RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    for i, (h, w) in enumerate([(93, 89), (53, 55), (20, 20)]):
        save(tmp_path / "cls" / f"o{i}.png", RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))
    ds = load_dataset(tmp_path)
    assert ds.image_shape == (3, 30, 40)
    assert ds.note == "8 images of 4 sizes → 30×40 RGB"
    big = tmp_path.parent / (tmp_path.name + "_big")
    for i in range(3):
        save(big / f"{i}.png", RNG.integers(0, 256, (100, 120 + i), dtype=np.uint8))
    ds = load_dataset(big)
    assert ds.image_shape == (1, 64, 64) and ds.note == "3 images of 3 sizes → 64×64 grey"
    assert load_dataset(big, resolution=28).image_shape == (1, 28, 28)


def test_mode_mixes_of_any_size_grey_rgb_rgba_palette_16_bit(tmp_path):
    g = RNG.integers(0, 256, (30, 30), dtype=np.uint8)
    save(tmp_path / "g.png", g)  # L
    save(tmp_path / "deep.png", (RNG.integers(0, 65536, (50, 50))).astype(np.uint16))  # I;16
    Image.fromarray(g).convert("P").save(tmp_path / "p.gif")  # palette of greys
    save(tmp_path / "bw.png", (RNG.random((17, 23)) > 0.5), "1")  # 1-bit
    ds = load_image_folder(tmp_path, resolution=16)
    assert ds.image_shape == (1, 16, 16)  # all grey: one channel
    rgba = np.dstack([RNG.integers(0, 256, (20, 40, 3), dtype=np.uint8), np.full((20, 40), 9, np.uint8)])
    save(tmp_path / "rgba.png", rgba, "RGBA")
    colour = Image.fromarray(RNG.integers(0, 256, (12, 12, 3), dtype=np.uint8)).convert("P", palette=Image.ADAPTIVE)
    colour.save(tmp_path / "pc.gif")
    ds = load_image_folder(tmp_path, resolution=16)
    assert ds.image_shape == (3, 16, 16)
    xs = all_images(ds)
    grey = [x for x in xs if np.array_equal(x[0], x[1]) and np.array_equal(x[1], x[2])]
    assert len(grey) == 4 and len(xs) == 6  # the grey images repeated on three channels
    # forced: grey for the colour folder, RGB for a grey one
    assert load_image_folder(tmp_path, resolution=16, channels=1).image_shape == (1, 16, 16)
    for f in ("rgba.png", "pc.gif"):
        (tmp_path / f).unlink()
    forced = load_image_folder(tmp_path, channels=3)
    assert forced.image_shape[0] == 3 and all(np.array_equal(x[0], x[2]) for x in all_images(forced))


def test_jpegs_decoded_at_reduced_scale_match_a_full_decode(tmp_path):
    yy, xx = np.mgrid[0:300, 0:400]
    smooth = np.stack([xx * 255 // 400, yy * 255 // 300, (xx + yy) * 255 // 700], -1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "big.jpg", quality=95)
    Image.fromarray(smooth).save(tmp_path / "big2.png")
    ds = load_image_folder(tmp_path, resolution=32)
    a, b = all_images(ds).astype(int)
    assert np.abs(a - b).mean() < 3  # the JPEG (draft-scaled) and the PNG give the same small picture


def test_progress_reports_both_phases_and_cancel_stops_the_load(tmp_path):
    for i in range(100):
        save(tmp_path / f"{i:03d}.png", RNG.integers(0, 256, (10 + i % 7, 12), dtype=np.uint8))
    seen = []
    ds = load_dataset(tmp_path, progress=LoadProgress(lambda d, t, text: seen.append((d, t, text)), hz=1e9))
    assert len(ds.x_train) + len(ds.x_test) == 100
    phases = [text for _, _, text in seen]
    assert phases[0] == "Reading image sizes" and phases[-1] == "Decoding images"
    for phase in set(phases):
        done = [d for d, t, text in seen if text == phase]
        assert done == sorted(done) and done[-1] == 100 and all(t == 100 for _, t, p in seen if p == phase)
    cancel = threading.Event()
    threads_before = threading.active_count()

    def cancel_midway(done, total, text):
        if text == "Decoding images" and done >= 32:
            cancel.set()

    with pytest.raises(LoadCancelled):
        load_dataset(tmp_path, progress=LoadProgress(cancel_midway, cancel, hz=1e9))
    assert threading.active_count() == threads_before  # the decoding pool is gone


def test_array_formats_keep_their_size_unless_a_resolution_is_chosen(tmp_path):
    x = RNG.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    assert load_dataset(tmp_path / "x.npy").image_shape == (1, 28, 28)
    ds = load_dataset(tmp_path / "x.npy", resolution=32, channels=3)
    assert ds.image_shape == (3, 32, 32) and ds.x_train.dtype == np.uint8 and "28×28 → 32×32 RGB" in ds.note
    flat = np.full((4, 8, 8), 77, np.uint8)
    np.save(tmp_path / "flat.npy", flat)
    small = load_dataset(tmp_path / "flat.npy", resolution=4)
    assert (all_images(small) == 77).all()  # a flat image stays flat through the antialiased resize


@pytest.mark.slow
def test_a_short_conv_run_on_a_mixed_size_colour_folder_at_64_px(tmp_path):
    """End to end: mixed sizes (48..90 px) of RGB PNGs in two classes → 64×64 RGB uint8 → conv VAE trains."""
    for i in range(48):
        h, w = RNG.integers(48, 91, 2)
        yy, xx = np.mgrid[0:h, 0:w]
        cls = i % 2
        base = np.array([200, 60, 40] if cls else [40, 90, 210], np.float64)
        a = base + 40 * np.sin((xx if cls else yy) / 6.0)[..., None] + RNG.normal(0, 8, (h, w, 3))
        save(tmp_path / f"c{cls}" / f"{i:02d}.png", np.clip(a, 0, 255).astype(np.uint8))
    ds = load_dataset(tmp_path, resolution=64)
    assert ds.image_shape == (3, 64, 64) and ds.x_train.dtype == np.uint8 and ds.class_names == ("c0", "c1")
    mcfg = ModelConfig(image_shape=ds.image_shape, arch="conv", hidden=64, latent_dim=4)
    tcfg = TrainConfig(
        epochs=3, batch_size=16, lr=2e-3, iwae_k=4, iwae_examples=5, metrics_hz=1e9, snapshot_interval_s=0.0
    )
    run = Trainer(ds, mcfg, tcfg)
    summaries = [m for m in run.run() if isinstance(m, EpochSummary)]
    elbos = [s.test_elbo for s in summaries]
    assert len(elbos) == 3 and np.isfinite(elbos).all() and elbos[-1] > elbos[0]
    assert as_float01(ds.x_test).shape == (5, 3, 64, 64)
