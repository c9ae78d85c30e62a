"""One frozen copy of the weights that other threads may use (DESIGN.md boundary 4).

The worker thread copies the live model into a ``WeightsSnapshot`` (plain numpy) about twice a second;
everything else, on any thread, builds a CPU ``SnapshotModel`` from it and gets fresh numpy arrays back:

* ``decoder_snapshot(model, step)`` / ``snapshot_from_state(config, state, step)``: the copy, from a live model or
  from a checkpoint (a loaded checkpoint decodes like a live run).
* ``snapshot_model(snapshot)``: the one ``SnapshotModel`` of a snapshot, built once and shared by every thread
  (the GUI's decodes, the posterior, the amortization study, the scatter of a loaded checkpoint).
* ``SnapshotModel(snapshot)``: ``decode(z)``, ``encode(x)`` -> (μ, log σ²), ``reconstruct(x)`` = E[x | z = μ(x)];
  ``.model`` is the CPU VAE itself (eval mode) for the posterior grid and the amortization study. Each takes the
  labels ``y`` a conditional model needs (one class for all rows, or one per row); others ignore them.
* ``prior_samples(model, n, seed, y)``: E[x | z] for z ~ N(0, I) with a fixed seed (the same noise every refresh,
  so the picture shows the model changing, not the noise).
* ``every_class(model, z)``: E[x | z, y] for one z and each class y: z's style across the classes.
* ``latent_subset(n_test, n)``: the fixed test subset whose posterior means make the scatter.
* ``latent_snapshot(model, dataset, n, step, epoch)``: a LatentSnapshot from a snapshot model (a loaded
  checkpoint, a new dataset under a finished model), identical in layout to the trainer's."""

from __future__ import annotations

import threading

import numpy as np
import torch

from .batches import to_float
from .chunking import decode_rows, rows
from .config import ModelConfig
from .messages import WeightsSnapshot, LatentSnapshot
from .model import VAE


def decoder_snapshot(model: VAE, step: int) -> WeightsSnapshot:
    """Fresh float32 numpy copies of all the model's parameters (one device→host copy). The encoder comes along
    so that reconstructions, the true-posterior view and the amortization-gap study can run off the worker."""
    state = {k: v.detach().float().cpu().numpy().copy() for k, v in model.state_dict().items()}
    return WeightsSnapshot(step=step, model_config=model.cfg.to_dict(), weights=state)


def snapshot_from_state(model_config: ModelConfig, model_state: dict, step: int) -> WeightsSnapshot:
    """A WeightsSnapshot from a checkpoint's model state."""
    model = VAE(model_config)
    model.load_state_dict(model_state)
    return decoder_snapshot(model, step)


def model_from_snapshot(snapshot: WeightsSnapshot) -> VAE:
    """A fresh CPU VAE (eval mode) holding the snapshot's weights: safe to use from any thread."""
    model = VAE(ModelConfig.from_dict(snapshot.model_config))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in snapshot.weights.items()})
    return model.eval()


class SnapshotModel:
    """A CPU copy of the whole VAE (eval mode) from a snapshot: ``decode``, ``encode``, ``reconstruct``."""

    def __init__(self, snapshot: WeightsSnapshot):
        self.snapshot = snapshot
        self.step = snapshot.step
        self.model = model_from_snapshot(snapshot)
        self.config = self.model.cfg

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def n_classes(self) -> int:
        """Classes a conditional model takes (0: not conditional)."""
        return self.config.n_classes

    @torch.inference_mode()
    def decode(self, z: np.ndarray, y=None) -> np.ndarray:
        """(n, d) -> (n, C, H, W) mean images in [0, 1], decoded in chunks sized by memory (engine.chunking)."""
        z = torch.from_numpy(np.asarray(z, dtype=np.float32).reshape(-1, self.latent_dim))
        step = decode_rows(self.model)
        parts = [self.model.mean_image(z[s : s + step], _rows(y, s, step)) for s in range(0, len(z), step)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, *self.config.image_shape), np.float32)

    @torch.inference_mode()
    def encode(self, x: np.ndarray, y=None) -> tuple[np.ndarray, np.ndarray]:
        """(n, C, H, W) float in [0, 1] or stored uint8 -> (μ, log σ²), each (n, d) float32."""
        x = np.asarray(x)
        mus, lvs = [], []
        step = rows(self.config, "cpu", decodes_per_row=0)  # images per forward pass, by memory
        for s in range(0, len(x), step):
            xs = to_float(torch.from_numpy(np.ascontiguousarray(x[s : s + step])))
            mu, lv = self.model.encode(xs, _rows(y, s, step))
            mus.append(mu.numpy().copy())
            lvs.append(lv.numpy().copy())
        d = self.latent_dim
        if not mus:
            return np.zeros((0, d), np.float32), np.zeros((0, d), np.float32)
        return np.concatenate(mus), np.concatenate(lvs)

    def reconstruct(self, x: np.ndarray, y=None) -> np.ndarray:
        """E[x | z = μ(x)]: the decoder's mean image at the posterior mean, (n, C, H, W) in [0, 1]."""
        mu, _ = self.encode(x, y)
        return self.decode(mu, y)


_BUILT: list[tuple[WeightsSnapshot, SnapshotModel]] = []  # the newest snapshots' models, newest last
_BUILT_KEEP = 2  # the GUI's current snapshot and the one a background job may still be using
_BUILT_LOCK = threading.Lock()


def snapshot_model(snapshot: WeightsSnapshot) -> SnapshotModel:
    """The CPU model of ``snapshot``, built on whichever thread asks first and shared afterwards (its forward
    passes change nothing, so threads may use it at once)."""
    with _BUILT_LOCK:
        for snap, model in _BUILT:
            if snap is snapshot:
                return model
        model = SnapshotModel(snapshot)
        _BUILT.append((snapshot, model))
        del _BUILT[:-_BUILT_KEEP]
        return model


def _rows(y, start: int, n: int):
    """The labels of rows start..start+n: a single class as it is, per-row labels sliced (None stays None)."""
    if y is None or np.ndim(y) == 0:
        return None if y is None else int(y)
    return torch.from_numpy(np.asarray(y, dtype=np.int64)[start : start + n])


def prior_samples(model: SnapshotModel, n: int, seed: int = 0, y=None) -> np.ndarray:
    """Mean images E[x|z] (E[x|z, y] for a conditional model) of n draws z ~ N(0, I) (fixed seed), (n, C, H, W)."""
    z = np.random.default_rng(seed).standard_normal((n, model.latent_dim)).astype(np.float32)
    return model.decode(z, y)


def every_class(model: SnapshotModel, z: np.ndarray, classes=None) -> np.ndarray:
    """E[x | z, y] at one latent point z for each class y in ``classes`` (default 0..k-1), (len, C, H, W): what z
    keeps (style) as the class changes."""
    classes = np.arange(model.n_classes) if classes is None else np.asarray(classes, np.int64)
    return model.decode(np.repeat(np.asarray(z, np.float32).reshape(1, -1), len(classes), 0), classes)


def latent_subset(n_test: int, n: int) -> np.ndarray:
    """Sorted indices of the fixed test subset the trainer encodes for the scatter."""
    rng = np.random.default_rng(1234)
    return np.sort(rng.permutation(n_test)[: min(n, n_test)])


def latent_snapshot(model: SnapshotModel, dataset, n: int, step: int = 0, epoch: int = 0) -> LatentSnapshot:
    idx = latent_subset(len(dataset.x_test), n)
    y = dataset.y_test
    mu, log_var = model.encode(dataset.x_test[idx], None if y is None else y[idx])
    return LatentSnapshot(step, epoch, mu, log_var, None if y is None else y[idx].copy(), idx.astype(np.int64))
