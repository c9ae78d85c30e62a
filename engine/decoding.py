"""Decode latent points from a DecoderSnapshot, on the CPU, from any thread (DESIGN.md boundary 4)."""
from __future__ import annotations

import numpy as np
import torch

from .chunking import decode_rows
from .config import ModelConfig
from .messages import DecoderSnapshot
from .model import VAE


def decoder_snapshot(model: VAE, step: int) -> DecoderSnapshot:
    """Fresh float32 numpy copies of all the model's parameters (one device→host copy). The encoder comes along
    so that reconstructions, the true-posterior view and the amortization-gap study can run off the worker."""
    state = {k: v.detach().float().cpu().numpy().copy() for k, v in model.state_dict().items()}
    return DecoderSnapshot(step=step, model_config=model.cfg.to_dict(), weights=state)


class SnapshotDecoder:
    """A CPU copy of the decoder; ``decode(z)`` maps latent points (n, d) to mean images (n, C, H, W) in [0, 1]."""

    def __init__(self, snapshot: DecoderSnapshot):
        self.step = snapshot.step
        self._model = model_from_snapshot(snapshot)
        self.config = self._model.cfg

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @torch.inference_mode()
    def decode(self, z: np.ndarray) -> np.ndarray:
        """(n, d) -> (n, C, H, W) mean images in [0, 1], decoded in chunks sized by memory (engine.chunking)."""
        z = torch.from_numpy(np.asarray(z, dtype=np.float32).reshape(-1, self.latent_dim))
        step = decode_rows(self._model)
        if len(z) <= step:
            return self._model.mean_image(z).numpy()
        return torch.cat([self._model.mean_image(z[s:s + step]) for s in range(0, len(z), step)]).numpy()


def model_from_snapshot(snapshot: DecoderSnapshot) -> VAE:
    """A fresh CPU VAE (eval mode) holding the snapshot's weights: safe to use from any thread."""
    model = VAE(ModelConfig.from_dict(snapshot.model_config))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in snapshot.weights.items()})
    return model.eval()


def snapshot_from_state(model_config: ModelConfig, model_state: dict, step: int) -> DecoderSnapshot:
    """A DecoderSnapshot from a checkpoint's model state (a loaded checkpoint decodes like a live run)."""
    model = VAE(model_config)
    model.load_state_dict(model_state)
    return decoder_snapshot(model, step)
