"""The VAE: encoder q_φ(z|x) = N(μ(x), diag σ²(x)), decoder p_θ(x|z), prior p(z) = N(0, I)."""
from __future__ import annotations

import math

import torch
from torch import nn

from .config import ModelConfig
from .likelihoods import make_likelihood


class MLPEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(cfg.n_pixels, cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, 2 * cfg.latent_dim))

    def forward(self, x):  # (B, C, H, W) -> (B, 2d)
        return self.net(x)


class MLPDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.shape = cfg.image_shape
        self.net = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.n_pixels))

    def forward(self, z):  # (B, d) -> (B, C, H, W)
        return self.net(z).view(-1, *self.shape)


def _down(h: int) -> int:  # size after a k=4, s=2, p=1 convolution
    return (h + 2 - 4) // 2 + 1


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (32, 64 channels), then a hidden fully connected layer."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c, h, w = cfg.image_shape
        h2, w2 = _down(_down(h)), _down(_down(w))
        self.net = nn.Sequential(
            nn.Conv2d(c, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Flatten(),
            nn.Linear(64 * h2 * w2, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 2 * cfg.latent_dim))

    def forward(self, x):
        return self.net(x)


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder: FC to a (64, ⌈H/4⌉, ⌈W/4⌉) map, two stride-2 transposed convolutions, crop to (H, W)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c, self.h, self.w = cfg.image_shape
        self.h4, self.w4 = math.ceil(self.h / 4), math.ceil(self.w / 4)
        self.fc = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.hidden), nn.ReLU(),
                                nn.Linear(cfg.hidden, 64 * self.h4 * self.w4), nn.ReLU())
        self.deconv = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, c, 4, 2, 1))

    def forward(self, z):  # (B, d) -> (B, C, H, W)
        y = self.deconv(self.fc(z).view(-1, 64, self.h4, self.w4))  # (B, C, 4⌈H/4⌉, 4⌈W/4⌉)
        return y[:, :, : self.h, : self.w]


ARCHITECTURES = {"mlp": (MLPEncoder, MLPDecoder), "conv": (ConvEncoder, ConvDecoder)}


class VAE(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        enc, dec = ARCHITECTURES[cfg.arch]
        self.encoder = enc(cfg)
        self.decoder = dec(cfg)
        self.likelihood = make_likelihood(cfg.likelihood, cfg.image_shape)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q_φ(z|x) = N(μ, diag exp(log σ²)); returns (μ, log σ²), each (B, d)."""
        h = self.encoder(x).float()  # (B, 2d); float32 even under autocast: the KL and exp() need the range
        mu, log_var = h.chunk(2, dim=1)
        return mu, log_var

    @staticmethod
    def reparameterize(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """z = μ + σ ⊙ ε, ε ~ N(0, I): the sample is a differentiable function of (μ, σ) (Kingma & Welling, 2014)."""
        if eps is None:
            eps = torch.randn_like(mu)
        return mu + torch.exp(0.5 * log_var) * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The likelihood's parameters (logits or means), (B, C, H, W)."""
        return self.decoder(z)

    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] in [0, 1], (B, C, H, W)."""
        return self.likelihood.mean(self.decoder(z))

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # (B, ...) -> (B,)
        return self.likelihood.log_prob(x, self.decoder(z))

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None):
        mu, log_var = self.encode(x)
        z = self.reparameterize(mu, log_var, eps)
        return self.decode(z), mu, log_var, z


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
