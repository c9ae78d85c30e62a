"""Run records for the side-by-side view: a checkpoint's curves and settings without its weights, the
rate–distortion points of each epoch, and the legend's differing settings."""

from __future__ import annotations

import numpy as np

from engine.checkpoint import checkpoint_of_run, write_checkpoint
from engine.config import ModelConfig, TrainConfig
from engine.runs import RunRecord, differing_settings, rate_distortion, record_of_checkpoint
from engine.trainer import Trainer

FAST = dict(batch_size=64, iwae_k=5, iwae_examples=50, metrics_hz=1e9, snapshot_interval_s=0.0)


def _trained(blobs, **train):
    run = Trainer(blobs, ModelConfig(image_shape=blobs.image_shape, hidden=32), TrainConfig(epochs=2, **FAST, **train))
    for _ in run.run():
        pass
    return run


def test_a_checkpoint_record_holds_its_curves_and_settings_and_no_weights(blobs, tmp_path):
    run = _trained(blobs, beta=2.0)
    path = tmp_path / "b2.ckpt"
    write_checkpoint(path, checkpoint_of_run(run))
    rec = record_of_checkpoint(path)
    assert rec.name == "b2.ckpt" and rec.train_config.beta == 2.0
    assert [e.test_elbo for e in rec.history.epochs] == [e.test_elbo for e in run.history.epochs]
    assert not any(hasattr(rec, k) for k in ("model_state", "weights", "optimizer_state"))
    rate, distortion = rate_distortion(rec.history)
    np.testing.assert_array_equal(rate, [e.test_kl for e in run.history.epochs])
    np.testing.assert_array_equal(distortion, [-e.test_recon for e in run.history.epochs])
    assert (rate >= 0).all() and (distortion > 0).all()


def test_the_legend_names_only_the_settings_that_differ():
    m, t = ModelConfig(), TrainConfig()
    runs = [
        RunRecord("a", m, t, None),
        RunRecord("b", m, t.replace(beta=4.0), None),
        RunRecord("c", m.replace(latent_dim=8), t.replace(seed=3), None),
    ]
    assert differing_settings(runs) == ["d=2 · β=1 · seed=0", "d=2 · β=4 · seed=0", "d=8 · β=1 · seed=3"]
    assert differing_settings(runs[:1]) == [""]
    assert differing_settings([runs[0], RunRecord("a2", m, t, None)]) == ["", ""]
