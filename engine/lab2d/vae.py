"""A VAE on 2-D points: z ∈ R^d (d = 1 or 2), p(z) = N(0, I), a small MLP decoder μθ(z) and a Gaussian
p(x|z) = N(μθ(z), diag σ²) with σ learned or fixed; q_φ(z|x) = N(μφ(x), diag σφ²(x)) from a small MLP encoder.

Seed 002's lesson in two dimensions: p(x) = ∫ p(x|z) p(z) dz composes two Gaussians into a multimodal density,
but μθ is continuous, so the image of the prior is one connected sheet (d = 2) or curve (d = 1): between two modes
the decoder must pass through the gap and leaves a bridge of density there.

The model has the engine VAE's interface (``encode``, ``decode``, ``forward(x, eps)``, ``likelihood.log_prob``), so
its ELBO, its IWAE bound and its importance-sampled density are the engine's (engine/objectives.py), not copies."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..likelihoods import Gaussian
from ..objectives import elbo_terms, iwae_bound


MAX_LAYERS = 6
MAX_TRAIN_K = 256  # samples per point of the IWAE training bound: memory and time grow with it (graph kept)


@dataclass(frozen=True)
class PointVaeConfig:
    latent_dim: int = 2  # d: 1 (a curve) or 2 (a warped sheet)
    hidden: int = 32  # units in each hidden layer of the encoder and of the decoder
    layers: int = 2  # hidden layers of the encoder and of the decoder (a deeper decoder draws steeper bridges)
    learned_sigma: bool = True  # σ of p(x|z) learned (one per coordinate) or fixed at ``sigma``
    sigma: float = 0.1  # the fixed σ, or the learned σ's starting value
    beta: float = 1.0  # weight of the KL in the loss (1: the true ELBO)
    lr: float = 3e-3  # Adam's learning rate
    batch_size: int = 256
    iwae_k: int = 16  # importance samples of the IWAE curve and of the density map
    train_k: int = 1  # samples per point of the training objective: 1 the (β-)ELBO, K > 1 the IWAE-K bound
    seed: int = 0

    def check(self) -> None:
        if self.latent_dim not in (1, 2):
            raise ValueError(f"latent dimension {self.latent_dim}: 1 or 2")
        if not 4 <= self.hidden <= 1024:
            raise ValueError(f"hidden width {self.hidden}: between 4 and 1,024")
        if not 1 <= self.layers <= MAX_LAYERS:
            raise ValueError(f"hidden layers {self.layers}: between 1 and {MAX_LAYERS}")
        if not (math.isfinite(self.sigma) and Gaussian.sigma_min < self.sigma <= 10):
            raise ValueError(f"σ {self.sigma}: above {Gaussian.sigma_min} and at most 10")
        if not (math.isfinite(self.beta) and 0 <= self.beta <= 100):
            raise ValueError(f"β {self.beta}: between 0 and 100")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 1):
            raise ValueError(f"learning rate {self.lr}: in (0, 1]")
        if not 1 <= self.batch_size <= 20_000 or not 1 <= self.iwae_k <= 10_000:
            raise ValueError("batch size 1–20,000 and IWAE K 1–10,000")
        if not 1 <= self.train_k <= MAX_TRAIN_K:
            raise ValueError(f"training K {self.train_k}: between 1 (the ELBO) and {MAX_TRAIN_K}")


class PointGaussian(Gaussian):
    """The engine's Gaussian likelihood on a point (x, y): log p(x|z) = Σ log N(x_i; μ_i, σ_i²); its mean is μ
    itself (no clamping to [0, 1], which is for pixels); σ learned or fixed."""

    def __init__(self, sigma: float, learned: bool):
        super().__init__((2,))
        with torch.no_grad():
            self.rho.fill_(math.log(math.expm1(sigma - self.sigma_min)))
        self.rho.requires_grad_(learned)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return out.float()


def _mlp(n_in: int, hidden: int, layers: int, n_out: int) -> nn.Sequential:
    mods: list[nn.Module] = [nn.Linear(n_in, hidden), nn.ReLU()]
    for _ in range(layers - 1):
        mods += [nn.Linear(hidden, hidden), nn.ReLU()]
    return nn.Sequential(*mods, nn.Linear(hidden, n_out))


class PointVAE(nn.Module):
    def __init__(self, cfg: PointVaeConfig):
        super().__init__()
        cfg.check()
        self.latent_dim = cfg.latent_dim
        self.encoder = _mlp(2, cfg.hidden, cfg.layers, 2 * cfg.latent_dim)
        self.decoder = _mlp(cfg.latent_dim, cfg.hidden, cfg.layers, 2)
        self.likelihood = PointGaussian(cfg.sigma, cfg.learned_sigma)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) = N(μ, diag exp(log σ²)): (μ, log σ²), each (B, d)."""
        return self.encoder(x).chunk(2, dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:  # (B, d) -> μθ(z), (B, 2)
        return self.decoder(z)

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None):
        mu, log_var = self.encode(x)
        if eps is None:
            eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * log_var) * eps  # reparameterised (Kingma & Welling 2014)
        return self.decode(z), mu, log_var, z


class PointVaeTrainer:
    """Adam on the ELBO (β-weighted) over minibatches of the current points; only its own thread touches the
    model. ``set_points`` swaps the data between steps; ``set_live`` changes β, the learning rate and K."""

    def __init__(self, points: np.ndarray, cfg: PointVaeConfig):
        cfg.check()
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.model = PointVAE(cfg)
        self.opt = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr, fused=True)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.steps = 0
        self.set_points(points)

    def set_points(self, points: np.ndarray) -> None:
        self.x = torch.as_tensor(np.asarray(points, np.float32).reshape(-1, 2))

    def set_live(
        self,
        beta: float | None = None,
        lr: float | None = None,
        iwae_k: int | None = None,
        train_k: int | None = None,
    ) -> None:
        from dataclasses import replace

        cfg = replace(
            self.cfg,
            beta=self.cfg.beta if beta is None else float(beta),
            lr=self.cfg.lr if lr is None else float(lr),
            iwae_k=self.cfg.iwae_k if iwae_k is None else int(iwae_k),
            train_k=self.cfg.train_k if train_k is None else int(train_k),
        )
        cfg.check()
        self.cfg = cfg
        for g in self.opt.param_groups:
            g["lr"] = cfg.lr

    def step(self) -> None:
        """One Adam step on a minibatch drawn with replacement (no host sync: nothing is read back): on the β-ELBO
        (K = 1), or on the IWAE-K bound, whose tighter bound lets the decoder thin the bridges between modes."""
        n = len(self.x)
        idx = torch.randint(n, (min(self.cfg.batch_size, n),), generator=self.gen)
        x = self.x[idx]
        if self.cfg.train_k == 1:
            loss = elbo_terms(self.model, x, beta=self.cfg.beta).loss
        else:
            loss = -iwae_bound(self.model, x, self.cfg.train_k, generator=self.gen, grad=True).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.steps += 1

    @torch.no_grad()
    def metrics(self, x: torch.Tensor, seed: int = 0) -> dict[str, float]:
        """ELBO, its two terms and the IWAE-K bound on ``x``, nats per point (fixed noise: smooth curves)."""
        g = torch.Generator().manual_seed(seed)
        eps = torch.randn((len(x), self.model.latent_dim), generator=g)
        t = elbo_terms(self.model, x, eps=eps)
        iwae = iwae_bound(self.model, x, self.cfg.iwae_k, generator=g)
        return {
            "elbo": float(t.elbo.mean()),
            "recon": float(t.recon.mean()),
            "kl": float(t.kl.mean()),
            "iwae": float(iwae.mean()),
        }


@torch.no_grad()
def log_density(model: PointVAE, points: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """log p(x) importance-sampled with K draws of q(z|x) (the IWAE estimate log (1/K) Σ w_k, whose exp is an
    unbiased estimate of p(x)), (N,) float64."""
    g = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(np.asarray(points, np.float32).reshape(-1, 2))
    return iwae_bound(model, x, k, generator=g).double().numpy()


@torch.no_grad()
def sample(model: PointVAE, n: int, seed: int = 0) -> np.ndarray:
    """n draws of x: z ~ N(0, I), x ~ N(μθ(z), diag σ²), (n, 2)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn((n, model.latent_dim), generator=g)
    mu = model.decode(z)
    return (mu + model.likelihood.sigma() * torch.randn(mu.shape, generator=g)).double().numpy()


@torch.no_grad()
def manifold(model: PointVAE, lines: int = 11, per_line: int = 40, extent: float = 3.0) -> np.ndarray:
    """The decoder's mean μθ(z) over the prior's bulk |z_j| ≤ extent: for d = 1 one curve, (1, per_line, 2); for
    d = 2 a warped grid, ``lines`` lines of constant z₁ then ``lines`` of constant z₂, (2·lines, per_line, 2)."""
    t = torch.linspace(-extent, extent, per_line)
    if model.latent_dim == 1:
        return model.decode(t[:, None]).double().numpy()[None]
    c = torch.linspace(-extent, extent, lines)
    a = torch.stack(torch.meshgrid(c, t, indexing="ij"), -1)  # (lines, per_line, 2): z₁ fixed along each row
    z = torch.cat([a, a.flip(-1)], 0).reshape(-1, 2)  # then z₂ fixed
    return model.decode(z).double().numpy().reshape(2 * lines, per_line, 2)


@torch.no_grad()
def posterior(model: PointVAE, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each point: q(z|x)'s mean and log-variance, (N, d) each, and the decoded mean μθ(E_q[z]), (N, 2)."""
    x = torch.as_tensor(np.asarray(points, np.float32).reshape(-1, 2))
    mu, log_var = model.encode(x)
    return mu.numpy().copy(), log_var.numpy().copy(), model.decode(mu).double().numpy()


def decoder_sigma(model: PointVAE) -> np.ndarray:
    return model.likelihood.sigma().detach().double().numpy().copy()
