"""The VAE: encoder q_φ(z|x) = N(μ(x), diag σ²(x)), decoder p_θ(x|z), prior p(z) = N(0, I).

A conditional VAE (``ModelConfig.n_classes`` = k > 0; Sohn et al. 2015) has q_φ(z|x, y) and p_θ(x|z, y): the
label's one-hot vector is concatenated to the encoder's features before its first fully connected layer (the
flattened image for the MLP, the flattened convolution output for the conv model) and to z at the decoder's input.
The prior stays N(0, I), so z carries what the label does not (style) and y carries the class."""

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
            nn.Flatten(),
            nn.Linear(cfg.n_pixels + cfg.n_classes, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, 2 * cfg.latent_dim),
        )

    def forward(self, x, c=None):  # (B, C, H, W), one-hot (B, k) or None -> (B, 2d)
        return self.net(_joined(x.flatten(1), c))


class MLPDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.shape = cfg.image_shape
        self.net = nn.Sequential(
            nn.Linear(cfg.latent_dim + cfg.n_classes, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.n_pixels)
        )

    def forward(self, z, c=None):  # (B, d), one-hot (B, k) or None -> (B, C, H, W)
        return self.net(_joined(z, c)).view(-1, *self.shape)


def _joined(h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """Features with the label's one-hot columns appended (unchanged without a label)."""
    return h if c is None else torch.cat((h, c.to(h.dtype)), 1)


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
            nn.Flatten(),
            nn.Linear(g.flat + cfg.n_classes, cfg.hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.hidden, 2 * cfg.latent_dim),
        )

    def forward(self, x, c=None):  # (B, C, H, W), one-hot (B, k) or None -> (B, 2d)
        x = F.pad(x, self.geometry.pad) if any(self.geometry.pad) else x  # (B, C, fh·2^L, fw·2^L)
        return self.fc(_joined(self.conv(x).flatten(1), c))  # conv: (B, 32·2^(L-1), fh, fw)


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder: fully connected to a (32·2^(L-1), 4, 4) map, stride-2 transposed convolutions
    halving the channels back to 32, a last one to C channels (the likelihood's parameters), cropped to (H, W)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        g = self.geometry = _ConvGeometry(cfg)
        self.fc = nn.Sequential(
            nn.Linear(cfg.latent_dim + cfg.n_classes, cfg.hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.hidden, g.flat),
            nn.LeakyReLU(0.2),
        )
        layers = []
        for c_in, c_out in zip(g.channels[::-1], g.channels[-2::-1]):
            layers += _block(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), c_out)
        layers.append(nn.ConvTranspose2d(g.channels[0], g.c, 4, 2, 1))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z, c=None):  # (B, d), one-hot (B, k) or None -> (B, C, H, W)
        g = self.geometry
        y = self.deconv(self.fc(_joined(z, c)).view(-1, g.channels[-1], g.fh, g.fw))  # (B, C, fh·2^L, fw·2^L)
        left, _, top, _ = g.pad
        return y[:, :, top : top + g.h, left : left + g.w]


ARCHITECTURES = {"mlp": (MLPEncoder, MLPDecoder), "conv": (ConvEncoder, ConvDecoder)}


class VAE(nn.Module):
    """``y`` (class labels) matters only to a conditional model, which requires it; an unconditional one ignores
    it. It is one class for every row, or (n,) labels: of the n rows, or of n examples when the rows are a
    sample-major stack of s draws for each of them (s·n rows, row r belongs to example r mod n: the layout of
    IWAE, the posterior grid and the amortization study)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        enc, dec = ARCHITECTURES[cfg.arch]
        self.encoder = enc(cfg)
        self.decoder = dec(cfg)
        self.likelihood = make_likelihood(cfg.likelihood, cfg.image_shape)

    def one_hot(self, y, rows: int, device: torch.device) -> torch.Tensor | None:
        """The label columns for ``rows`` rows, (rows, k) float32; None for an unconditional model."""
        k = self.cfg.n_classes
        if not k:
            return None
        if y is None:
            raise ValueError(f"this model is conditional on a class label (0..{k - 1}): give one")
        y = torch.as_tensor(y, dtype=torch.long, device=device).reshape(-1)
        if rows % max(len(y), 1) or not len(y):
            raise ValueError(f"{len(y)} labels for {rows} rows: give one label, one per row, or one per example")
        if len(y) != rows:
            y = y.repeat(rows // len(y))  # sample-major stack: row r takes example r mod n's label
        return F.one_hot(y, k).float()

    def encode(self, x: torch.Tensor, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        """q_φ(z|x) (or q_φ(z|x, y)) = N(μ, diag exp(log σ²)); returns (μ, log σ²), each (B, d)."""
        c = self.one_hot(y, len(x), x.device)
        h = self.encoder(x) if c is None else self.encoder(x, c)
        mu, log_var = h.float().chunk(2, dim=1)  # float32 even under autocast: the KL and exp() need the range
        return mu, log_var

    @staticmethod
    def reparameterize(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """z = μ + σ ⊙ ε, ε ~ N(0, I): the sample is a differentiable function of (μ, σ) (Kingma & Welling, 2014)."""
        if eps is None:
            eps = torch.randn_like(mu)
        return mu + torch.exp(0.5 * log_var) * eps

    def decode(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """The likelihood's parameters (logits or means) of p(x|z) (or p(x|z, y)), (B, C, H, W)."""
        c = self.one_hot(y, len(z), z.device)
        return self.decoder(z) if c is None else self.decoder(z, c)

    def mean_image(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """E[x|z] (or E[x|z, y]) in [0, 1], (B, C, H, W)."""
        return self.likelihood.mean(self.decode(z, y))

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor, y=None) -> torch.Tensor:  # (B, ...) -> (B,)
        return self.likelihood.log_prob(x, self.decode(z, y))

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None, y=None):
        mu, log_var = self.encode(x, y)
        z = self.reparameterize(mu, log_var, eps)
        return self.decode(z, y), mu, log_var, z

    def given(self, y) -> "VAE | Labelled":
        """This model with its label fixed (itself when it is unconditional): for code written for p(x|z)."""
        return Labelled(self, y) if self.cfg.n_classes else self


class Labelled:
    """A conditional VAE with its labels fixed, with the unconditional model's interface (``encode(x)``,
    ``decode(z)``, ``mean_image``, ``log_px_given_z``, a call, ``cfg``, ``likelihood``, ``parameters``): IWAE, the
    posterior grid and the amortization study run on it unchanged. ``y`` as in ``VAE``: one class, per row, or
    per example of a sample-major stack."""

    def __init__(self, vae: VAE, y):
        self.vae, self.y = vae, y

    def __getattr__(self, name):  # cfg, likelihood, parameters, eval, ...
        return getattr(self.vae, name)

    def encode(self, x):
        return self.vae.encode(x, self.y)

    def decode(self, z):
        return self.vae.decode(z, self.y)

    def mean_image(self, z):
        return self.vae.mean_image(z, self.y)

    def log_px_given_z(self, x, z):
        return self.vae.log_px_given_z(x, z, self.y)

    def __call__(self, x, eps=None):
        return self.vae(x, eps, self.y)


def for_example(model, j: int):
    """The model example ``j`` of a batch sees on its own: a Labelled model with per-example labels becomes one
    with example j's label; any other model is itself."""
    if isinstance(model, Labelled) and torch.as_tensor(model.y).ndim > 0:
        return Labelled(model.vae, int(torch.as_tensor(model.y).reshape(-1)[j]))
    return model


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
