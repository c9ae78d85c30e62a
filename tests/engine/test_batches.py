"""uint8 storage, float batches: a batch converted on the device is exactly the float the loader used to store."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from engine.batches import to_float
from engine.config import ModelConfig, TrainConfig
from engine.data.dataset import as_float01
from engine.data.npz import load_npz
from engine.messages import EpochSummary
from engine.trainer import Trainer
from tests.conftest import make_blobs

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_a_uint8_batch_on_the_device_equals_the_old_float_storage(tmp_path, device):
    raw = np.random.default_rng(0).integers(0, 256, (40, 3, 6, 7), dtype=np.uint8)
    np.save(tmp_path / "x.npy", raw)
    ds = load_npz(tmp_path / "x.npy")
    assert ds.x_train.dtype == np.uint8 and ds.x_train.nbytes == ds.x_train.size
    old = np.empty(ds.x_train.shape, np.float32)
    np.divide(ds.x_train, np.float32(255), out=old, dtype=np.float32)  # what the float32 loader stored
    idx = torch.tensor([5, 0, 17, 3])
    batch = to_float(torch.from_numpy(ds.x_train).to(device)[idx.to(device)])
    assert batch.dtype == torch.float32 and batch.device.type == device
    if device == "cpu":
        assert np.array_equal(batch.numpy(), old[idx.numpy()])  # bit for bit
    else:  # a GPU may divide by multiplying with the reciprocal: within one unit in the last place
        np.testing.assert_allclose(batch.cpu().numpy(), old[idx.numpy()], rtol=1.5e-7, atol=0)
    np.testing.assert_array_equal(as_float01(ds.x_train), old)


def test_a_float_batch_passes_through_without_a_copy():
    x = torch.rand(4, 1, 3, 3)
    assert to_float(x) is x


def test_training_on_uint8_storage_matches_training_on_floats():
    """The same pixels stored as uint8 and as float32 train to the same numbers (CPU, seeded)."""
    floats = make_blobs(n_train=256, n_test=64)
    raw = dataclasses.replace(
        floats,
        x_train=(floats.x_train * 255).astype(np.uint8),
        x_test=(floats.x_test * 255).astype(np.uint8),
        _fingerprint=[],
    )
    assert raw.fingerprint() == floats.fingerprint()  # the storage does not change the data's identity
    mcfg = ModelConfig(image_shape=floats.image_shape, hidden=32)
    tcfg = TrainConfig(epochs=2, batch_size=32, iwae_k=3, iwae_examples=20, metrics_hz=1e9, snapshot_interval_s=0.0)
    out = []
    for ds in (floats, raw):
        run = Trainer(ds, mcfg, tcfg)
        out.append([m.test_elbo for m in run.run() if isinstance(m, EpochSummary)] + list(run.history.column("elbo")))
    assert len(out[0]) == 2 + 16 and out[0] == out[1]
