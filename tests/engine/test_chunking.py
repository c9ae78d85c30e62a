"""Evaluation chunks are sized by memory: bigger images mean fewer rows, and the numbers do not depend on the size."""

from __future__ import annotations

import numpy as np
import torch

from engine import chunking
from engine.config import ModelConfig, TrainConfig
from engine.snapshot import SnapshotModel, decoder_snapshot
from engine.model import VAE
from engine.trainer import Trainer


def test_rows_follow_the_activation_size_and_the_budget():
    mlp = ModelConfig()
    conv = ModelConfig(image_shape=(3, 64, 64), arch="conv")
    enc, dec = chunking.activation_elements(mlp)
    assert enc == 784 + 784 + 400 + 400 + 4  # the input, then every layer's output (Flatten, Linear, ReLU, Linear)
    assert dec == 400 + 400 + 784 + 4 * 784  # every layer's output, then four image-sized likelihood temporaries
    budget = 1 << 30
    assert chunking.rows(mlp, "cpu", budget=budget) == budget // (4 * (enc + dec))
    assert chunking.rows(conv, "cpu", budget=budget) < chunking.rows(mlp, "cpu", budget=budget) / 10
    k100 = chunking.rows(conv, "cpu", decodes_per_row=100, budget=budget)
    assert 1 <= k100 < chunking.rows(conv, "cpu", budget=budget) / 50
    assert chunking.rows(conv, "cpu", budget=1) == 1  # never zero


def test_test_metrics_do_not_depend_on_the_chunk_size(blobs, monkeypatch):
    mcfg = ModelConfig(image_shape=blobs.image_shape, hidden=32)
    tcfg = TrainConfig(epochs=1, iwae_k=7, iwae_examples=60)
    run = Trainer(blobs, mcfg, tcfg)
    big = run.evaluate()
    monkeypatch.setattr(chunking, "CPU_BUDGET", 4 * sum(chunking.activation_elements(mcfg)) * 9)  # 9 rows a chunk
    assert chunking.rows(mcfg, "cpu") == 9
    small = run.evaluate()
    for field in ("test_elbo", "test_recon", "test_kl", "test_elbo_subset"):
        assert abs(getattr(big, field) - getattr(small, field)) < 1e-4, field
    np.testing.assert_allclose(big.kl_per_dim, small.kl_per_dim, rtol=1e-5)
    lat = run.latent_snapshot()
    assert lat.means.shape == (200, 2)


def test_snapshot_decoding_in_memory_chunks_equals_one_pass(monkeypatch):
    model = VAE(ModelConfig(image_shape=(3, 16, 16), arch="conv", latent_dim=3))
    dec = SnapshotModel(decoder_snapshot(model, 0))
    z = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    whole = dec.decode(z)
    monkeypatch.setattr(chunking, "CPU_BUDGET", 1)  # one latent point per call
    np.testing.assert_allclose(dec.decode(z), whole, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(whole, model.eval().mean_image(torch.from_numpy(z)).numpy(), rtol=1e-5, atol=1e-6)


def test_slow_snapshots_are_spaced_out_to_a_share_of_the_run(blobs, monkeypatch):
    """A snapshot that takes 50 ms (a big conv model's scatter) is not repeated after every step: snapshots keep
    to at most SNAPSHOT_MAX_SHARE of the wall time."""
    import time

    from engine import trainer
    from engine.messages import LatentSnapshot

    slow = trainer.Trainer.latent_snapshot

    def slow_snapshot(self):
        time.sleep(0.05)
        return slow(self)

    monkeypatch.setattr(trainer.Trainer, "latent_snapshot", slow_snapshot)
    mcfg = ModelConfig(image_shape=blobs.image_shape, hidden=16)
    run = Trainer(
        blobs,
        mcfg,
        TrainConfig(epochs=1, batch_size=4, iwae_k=2, iwae_examples=10, metrics_hz=1e9, snapshot_interval_s=0.0),
    )
    t0 = time.monotonic()
    n = sum(isinstance(m, LatentSnapshot) for m in run.run())
    wall = time.monotonic() - t0
    assert run.steps_per_epoch == 150 and 2 <= n
    assert n * 0.05 <= trainer.SNAPSHOT_MAX_SHARE * wall + 0.15  # the first and the epoch-end one are always taken
