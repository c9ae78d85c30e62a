"""The conditional VAE the window trains when "Condition on label" is ticked: its decodes from prior draws carry
their class (the classifier-free check of tests/engine/test_conditional_check.py)."""

from __future__ import annotations

import dataclasses

import pytest

from engine.config import CONDITIONAL_BETA, ModelConfig, TrainConfig
from engine.data import fashion_mnist_path, load_dataset
from engine.trainer import Trainer
from tests.engine.test_conditional import FAST_T
from tests.engine.test_conditional_check import _check_and_controls


@pytest.mark.slow(seconds=30)
@pytest.mark.timeout(1800)
def test_the_defaults_a_ticked_condition_on_label_suggests_pass_the_check_on_fashion_mnist():
    """The default model (MLP 400, d = 2), the default 10 epochs and batch 128, and β = CONDITIONAL_BETA, the one
    change the ticked box suggests. Seed 0: 10/10 classes nearest their own mean (β = 1: 7/10, with pullover, coat
    and sneaker nearest other classes' means)."""
    folder = fashion_mnist_path()
    if folder is None:
        pytest.skip("Fashion-MNIST is not installed (dataset-fashion-mnist, or $ELBO_STUDIO_FASHION_DIR)")
    ds = load_dataset(folder)
    ds = dataclasses.replace(ds, x_test=ds.x_test[:400], y_test=ds.y_test[:400], _fingerprint=[])
    cfg = ModelConfig(image_shape=ds.image_shape, n_classes=ds.n_classes)
    tcfg = TrainConfig(beta=CONDITIONAL_BETA, **{**FAST_T, "iwae_k": 2})
    run = Trainer(ds, cfg, tcfg)
    for _ in run.run():
        pass
    assert run.state == "finished" and run.epoch == TrainConfig().epochs
    _check_and_controls(run.model.eval(), ds, need=8)
