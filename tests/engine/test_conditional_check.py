"""The classifier-free check of a conditional VAE: the mean image decoded for class k is nearest the class-k
training mean, and the check fails for a model decoded with the wrong labels or one that ignores its label."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from engine.config import ModelConfig, TrainConfig
from engine.data import fashion_mnist_path, load_dataset, make_shapes
from engine.data.dataset import Dataset, as_float01
from engine.messages import MetricsChunk
from engine.model import VAE
from engine.trainer import Trainer
from tests.engine.test_conditional import FAST_T


def _class_means(ds: Dataset) -> np.ndarray:
    return np.stack(
        [
            as_float01(ds.x_train[ds.y_train == c]).reshape(-1, math.prod(ds.image_shape)).mean(0)
            for c in range(ds.n_classes)
        ]
    )


@torch.no_grad()
def _decoded_class_means(model: VAE, labels, draws: int = 200) -> np.ndarray:
    """Row i: the average of E[x | z, labels[i]] over ``draws`` prior draws z ~ N(0, I) (the same draws per row)."""
    z = torch.randn(draws, model.cfg.latent_dim, generator=torch.Generator().manual_seed(0))
    model.eval()
    return np.stack([model.mean_image(z, int(c)).mean(0).reshape(-1).numpy() for c in labels])


def _nearest_mean_check(model: VAE, ds: Dataset, labels=None):
    """Distances (k, k) from the decoded mean of class k (decoded with ``labels[k]``, default k) to each class's
    training mean, the number of classes whose own mean is the nearest, and a one-line summary."""
    k = ds.n_classes
    labels = range(k) if labels is None else labels
    dist = np.linalg.norm(_decoded_class_means(model, labels)[:, None] - _class_means(ds)[None], axis=2)
    passes = int((dist.argmin(1) == np.arange(k)).sum())
    others = np.where(np.eye(k, dtype=bool), np.inf, dist).min(1)
    text = ", ".join(
        f"{name}: own {dist[c, c]:.2f} / nearest other {others[c]:.2f}" for c, name in enumerate(ds.class_names)
    )
    return dist, passes, f"{passes}/{k} classes nearest their own mean ({text})"


def _train_for_the_check(ds, latent_dim, beta, epochs, batch_size):
    cfg = ModelConfig(image_shape=ds.image_shape, latent_dim=latent_dim, hidden=256, n_classes=ds.n_classes)
    tcfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=2e-3, beta=beta, seed=0, **{**FAST_T, "iwae_k": 2})
    run = Trainer(ds, cfg, tcfg)
    msgs = list(run.run())
    assert run.state == "finished", [m for m in msgs if not isinstance(m, MetricsChunk)][-3:]
    assert all(np.isfinite(e.test_elbo) for e in run.history.epochs)
    return run.model.eval()


def _check_and_controls(model, ds, need):
    k = ds.n_classes
    dist, passes, text = _nearest_mean_check(model, ds)
    print(f"\n{ds.name}: {text}")
    assert passes >= need, text
    # the check can fail: decoded with the next class's label, the images sit at that class's mean instead...
    _, shifted, shifted_text = _nearest_mean_check(model, ds, [(c + 1) % k for c in range(k)])
    assert shifted <= k - need, shifted_text
    # ... and one label for every class (a model that ignored its label) passes at most one class
    _, same, same_text = _nearest_mean_check(model, ds, [0] * k)
    assert same <= 1, same_text
    return dist, passes


@pytest.mark.slow(seconds=14)
def test_classifier_free_check_on_fashion_mnist():
    """For a conditional model trained on Fashion-MNIST, the mean image decoded for class k (E[x|z, k] averaged
    over 200 draws z ~ N(0, I)) is nearer the class-k training mean than any other class's mean for at least 8 of
    the 10 classes. β = 3 and 16 latent dimensions: at this short training (6 epochs, ~2,800 steps) a β = 1 model
    decodes prior draws visibly dimmer than the data (its aggregate posterior leaves holes in the prior), so
    pullover and coat land nearest the dimmer shirt mean; with β = 3 all 10 pass on seeds 0-2."""
    folder = fashion_mnist_path()
    if folder is None:
        pytest.skip("Fashion-MNIST is not installed (dataset-fashion-mnist, or $ELBO_STUDIO_FASHION_DIR)")
    ds = load_dataset(folder)
    ds = dataclasses.replace(ds, x_test=ds.x_test[:400], y_test=ds.y_test[:400], _fingerprint=[])
    assert ds.n_classes == 10
    model = _train_for_the_check(ds, latent_dim=16, beta=3.0, epochs=6, batch_size=128)
    _check_and_controls(model, ds, need=8)


@pytest.mark.slow(seconds=7)
def test_classifier_free_check_on_shapes():
    """The same check on the built-in Shapes (runs without Fashion-MNIST). Square and circle means are only 0.69
    apart (position-averaged blobs of similar area), and prior decodes come out slightly dimmer than the data, so
    the circle's decoded mean lies within ±0.5 of the midpoint between the two: it passes on seed 0, not on seeds
    1 and 2 (3 of 4 there, at any training length tried up to 40 epochs). Three of four are required."""
    ds = make_shapes(n_train=12000, n_test=400)
    model = _train_for_the_check(ds, latent_dim=8, beta=4.0, epochs=10, batch_size=64)
    _check_and_controls(model, ds, need=3)
