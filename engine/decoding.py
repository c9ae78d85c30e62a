"""Decode latent points from a DecoderSnapshot, on the CPU, from any thread (DESIGN.md boundary 4)."""
from __future__ import annotations

import numpy as np
import torch

from .config import ModelConfig
from .messages import DecoderSnapshot
from .model import VAE


def decoder_snapshot(model: VAE, step: int) -> DecoderSnapshot:
    """Fresh float32 numpy copies of the decoder's and likelihood's parameters (one device→host copy)."""
    state = {k: v.detach().float().cpu().numpy().copy() for k, v in model.state_dict().items()
             if not k.startswith("encoder.")}
    return DecoderSnapshot(step=step, model_config=model.cfg.to_dict(), weights=state)


class SnapshotDecoder:
    """A CPU copy of the decoder; ``decode(z)`` maps latent points (n, d) to mean images (n, C, H, W) in [0, 1]."""

    def __init__(self, snapshot: DecoderSnapshot):
        self.step = snapshot.step
        self.config = ModelConfig.from_dict(snapshot.model_config)
        model = VAE(self.config)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in snapshot.weights.items()}, strict=False)
        self._decoder, self._likelihood = model.decoder.eval(), model.likelihood.eval()

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @torch.inference_mode()
    def decode(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float32).reshape(-1, self.latent_dim)
        return self._likelihood.mean(self._decoder(torch.from_numpy(z))).numpy()


def snapshot_from_state(model_config: ModelConfig, model_state: dict, step: int) -> DecoderSnapshot:
    """A DecoderSnapshot from a checkpoint's model state (a loaded checkpoint decodes like a live run)."""
    model = VAE(model_config)
    model.load_state_dict(model_state)
    return decoder_snapshot(model, step)
