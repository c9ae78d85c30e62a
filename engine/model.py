"""The VAE: encoder q_φ(z|x) = N(μ(x), diag σ²(x)), decoder p_θ(x|z), prior p(z) = N(0, I)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .likelihoods import make_likelihood


class MLPEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(cfg.n_pixels, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 2 * cfg.latent_dim)
        )

    def forward(self, x):  # (B, C, H, W) -> (B, 2d)
        return self.net(x)


class MLPDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.shape = cfg.image_shape
        self.net = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.n_pixels))

    def forward(self, z):  # (B, d) -> (B, C, H, W)
        return self.net(z).view(-1, *self.shape)


FIRST_CHANNELS = 32  # channels of the first convolution; each further level doubles them
FINAL_SIDE = 4  # the convolutions stop once the feature map is at most 4×4
_GROUPS = 8  # GroupNorm groups: per-example statistics, so evaluation in any chunk size gives the same numbers


def conv_levels(h: int, w: int) -> int:
    """Stride-2 levels until the map is at most 4×4: 28 and 32 px → 3, 64 → 4, 128 → 5 (at least 1)."""
    levels = 1
    while math.ceil(max(h, w) / 2**levels) > FINAL_SIDE:
        levels += 1
    return levels


class _ConvGeometry:
    """The shared shape plan of the conv encoder and decoder: the image is zero-padded (evenly on both sides) to
    a multiple of 2^L, halved L times to an (fh, fw) map with 32·2^(L-1) channels; the decoder crops it back."""

    def __init__(self, cfg: ModelConfig):
        self.c, self.h, self.w = cfg.image_shape
        self.levels = conv_levels(self.h, self.w)
        scale = 2**self.levels
        self.fh, self.fw = math.ceil(self.h / scale), math.ceil(self.w / scale)  # (4, 4) for square 28..128 px
        ph, pw = self.fh * scale - self.h, self.fw * scale - self.w
        self.pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)  # (left, right, top, bottom), F.pad's order
        self.channels = [FIRST_CHANNELS * 2**i for i in range(self.levels)]  # 32, 64, 128, ...
        self.flat = self.channels[-1] * self.fh * self.fw


def _block(conv: nn.Module, channels: int) -> list[nn.Module]:
    return [conv, nn.GroupNorm(_GROUPS, channels), nn.LeakyReLU(0.2)]


class ConvEncoder(nn.Module):
    """Stride-2 4×4 convolutions (32, 64, 128, ... channels, GroupNorm, LeakyReLU) until the map is 4×4, then a
    hidden fully connected layer: the DCGAN-style encoder PyTorch-VAE uses for 64 px CelebA."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        g = self.geometry = _ConvGeometry(cfg)
        layers, c_in = [], g.c
        for c in g.channels:
            layers += _block(nn.Conv2d(c_in, c, 4, 2, 1), c)
            c_in = c
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(g.flat, cfg.hidden), nn.LeakyReLU(0.2), nn.Linear(cfg.hidden, 2 * cfg.latent_dim)
        )

    def forward(self, x):  # (B, C, H, W) -> (B, 2d)
        x = F.pad(x, self.geometry.pad) if any(self.geometry.pad) else x  # (B, C, fh·2^L, fw·2^L)
        return self.fc(self.conv(x))  # conv: (B, 32·2^(L-1), fh, fw)


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder: fully connected to a (32·2^(L-1), 4, 4) map, stride-2 transposed convolutions
    halving the channels back to 32, a last one to C channels (the likelihood's parameters), cropped to (H, W)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        g = self.geometry = _ConvGeometry(cfg)
        self.fc = nn.Sequential(
            nn.Linear(cfg.latent_dim, cfg.hidden), nn.LeakyReLU(0.2), nn.Linear(cfg.hidden, g.flat), nn.LeakyReLU(0.2)
        )
        layers = []
        for c_in, c_out in zip(g.channels[::-1], g.channels[-2::-1]):
            layers += _block(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), c_out)
        layers.append(nn.ConvTranspose2d(g.channels[0], g.c, 4, 2, 1))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z):  # (B, d) -> (B, C, H, W)
        g = self.geometry
        y = self.deconv(self.fc(z).view(-1, g.channels[-1], g.fh, g.fw))  # (B, C, fh·2^L, fw·2^L)
        left, _, top, _ = g.pad
        return y[:, :, top : top + g.h, left : left + g.w]


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
