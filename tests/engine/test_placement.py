"""Where the training images live (engine/placement.py): the memory check's decision, and the host-resident path
with its staging buffers, exercised on the CPU so that a GPU user is not the first to run it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.batches import to_float
from engine.config import ModelConfig, TrainConfig
from engine.messages import RunStarted
from engine.placement import DEVICE_SHARE, Placement, TrainingImages, choose_placement
from engine.trainer import Trainer
from tests.conftest import make_blobs

GB = 10**9


def test_the_cpu_uses_the_images_in_place():
    p = choose_placement(5 * GB, torch.device("cpu"), None)
    assert p.on_device and not p.pinned and "in place" in p.reason
    x = np.arange(24, dtype=np.uint8).reshape(6, 1, 2, 2)
    images = TrainingImages(x, torch.device("cpu"))
    assert images.x.data_ptr() == torch.from_numpy(x).data_ptr()  # no copy


def test_a_gpu_takes_the_images_when_they_fit_in_its_share_of_free_memory():
    gpu = torch.device("cuda", 0)
    fits = choose_placement(int(DEVICE_SHARE * 20 * GB), gpu, 20 * GB)
    assert fits.on_device and "cuda:0" in fits.reason
    too_big = choose_placement(12 * GB, gpu, 20 * GB)
    assert not too_big.on_device and too_big.pinned
    assert "12.0 GB" in too_big.reason and "20.0 GB free on cuda:0" in too_big.reason and "pinned" in too_big.reason
    no_pin = choose_placement(12 * GB, gpu, 20 * GB, can_pin=False)
    assert not no_pin.on_device and not no_pin.pinned and "pinned" not in no_pin.reason
    assert choose_placement(12 * GB, torch.device("mps"), None).on_device  # free memory unknown: try the device


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_host_resident_batches_equal_indexing_for_many_batches_in_a_row(dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (300, 1, 5, 5)).astype(dtype)
    if dtype == np.float32:
        x /= 255.0
    host = TrainingImages(x, torch.device("cpu"), Placement(False, False, "host memory (test)"))
    assert host.index_device == torch.device("cpu")
    want = torch.from_numpy(x)
    seen = []
    for b in range(12):  # more than the two staging buffers, of varying sizes
        idx = torch.from_numpy(rng.permutation(300)[: 7 + 9 * (b % 4)])
        got = host.batch(idx)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, to_float(want[idx]), rtol=0, atol=0)
        seen.append((idx, got.clone()))
    for idx, got in seen[-2:]:  # earlier batches were not overwritten while in use
        torch.testing.assert_close(got, to_float(want[idx]), rtol=0, atol=0)


def test_training_from_host_resident_images_matches_device_resident(monkeypatch):
    ds = make_blobs(n_train=256, n_test=64)
    mcfg = ModelConfig(image_shape=ds.image_shape, hidden=32)
    tcfg = TrainConfig(epochs=2, batch_size=32, iwae_k=3, iwae_examples=20, seed=4)
    curves, reasons = [], []
    for placement in (None, Placement(False, False, "images kept in host memory (forced)")):
        if placement is not None:
            monkeypatch.setattr("engine.trainer.choose_placement", lambda *a, **k: placement)
        run = Trainer(ds, mcfg, tcfg)
        reasons += [m.data_placement for m in run.run() if isinstance(m, RunStarted)]
        curves.append(run.history.column("elbo").copy())
    assert reasons[0].startswith("images used in place") and reasons[1].endswith("(forced)")
    assert len(curves[0]) == 16
    np.testing.assert_array_equal(curves[0], curves[1])
