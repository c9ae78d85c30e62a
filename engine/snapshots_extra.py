"""What the window needs from a model snapshot beyond decoding a point (for the lead to integrate).

All of it runs on the CPU from a ``DecoderSnapshot`` (which now carries the encoder too), from any thread, and
returns fresh numpy arrays: the GUI calls these and draws the result, it does no model math itself.

* ``SnapshotModel(snapshot)``: ``decode(z)``, ``encode(x)`` -> (μ, log σ²), ``reconstruct(x)`` = E[x | z = μ(x)].
* ``prior_samples(decoder, n, seed)``: E[x | z] for z ~ N(0, I) with a fixed seed (the same noise every refresh,
  so the picture shows the model changing, not the noise).
* ``latent_subset(n_test, n)``: the fixed test subset whose posterior means make the scatter (the trainer's rule).
* ``latent_snapshot(model, dataset, n, step, epoch)``: a LatentSnapshot from a snapshot model, e.g. for a loaded
  checkpoint, identical in layout to the trainer's."""
from __future__ import annotations

import numpy as np
import torch

from .batches import to_float
from .chunking import rows
from .decoding import SnapshotDecoder
from .messages import LatentSnapshot



class SnapshotModel(SnapshotDecoder):
    """A CPU copy of the whole VAE (eval mode) from a snapshot: ``decode`` (inherited), ``encode``, ``reconstruct``."""

    @torch.inference_mode()
    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, C, H, W) float in [0, 1] or stored uint8 -> (μ, log σ²), each (n, d) float32."""
        x = np.asarray(x)
        mus, lvs = [], []
        step = rows(self.config, "cpu", decodes_per_row=0)  # images per forward pass, by memory
        for s in range(0, len(x), step):
            mu, lv = self._model.encode(to_float(torch.from_numpy(np.ascontiguousarray(x[s:s + step]))))
            mus.append(mu.numpy().copy())
            lvs.append(lv.numpy().copy())
        d = self.latent_dim
        if not mus:
            return np.zeros((0, d), np.float32), np.zeros((0, d), np.float32)
        return np.concatenate(mus), np.concatenate(lvs)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """E[x | z = μ(x)]: the decoder's mean image at the posterior mean, (n, C, H, W) in [0, 1]."""
        mu, _ = self.encode(x)
        return self.decode(mu)


def prior_samples(decoder: SnapshotDecoder | SnapshotModel, n: int, seed: int = 0) -> np.ndarray:
    """Mean images E[x|z] of n draws z ~ N(0, I) (fixed seed), (n, C, H, W)."""
    z = np.random.default_rng(seed).standard_normal((n, decoder.latent_dim)).astype(np.float32)
    return decoder.decode(z)


def latent_subset(n_test: int, n: int) -> np.ndarray:
    """Sorted indices of the fixed test subset the trainer encodes for the scatter (same rule as TrainingRun)."""
    rng = np.random.default_rng(1234)
    return np.sort(rng.permutation(n_test)[: min(n, n_test)])


def latent_snapshot(model: SnapshotModel, dataset, n: int, step: int = 0, epoch: int = 0) -> LatentSnapshot:
    idx = latent_subset(len(dataset.x_test), n)
    mu, log_var = model.encode(dataset.x_test[idx])
    y = dataset.y_test
    return LatentSnapshot(step, epoch, mu, log_var, None if y is None else y[idx].copy(), idx.astype(np.int64))
