"""Observation models p(x|z). ``log_prob`` returns log p(x|z) summed over pixels: one number per example, in nats.

The decoder network outputs one tensor of the image's shape (B, C, H, W); the likelihood turns it into a
distribution. Gaussian keeps its own learned per-pixel scale as a parameter (it does not depend on z)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)


class Bernoulli(nn.Module):
    """x ∈ [0, 1] per pixel, decoder output = logits. log p = x·log σ(l) + (1−x)·log(1−σ(l)), computed as
    −BCEWithLogits, which is stable for any logit (no log(0)). For grey (non-binary) pixels this is the usual
    'Bernoulli on intensities' cross-entropy, not a normalised density: see README."""

    name = "bernoulli"

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B,)
        return -F.binary_cross_entropy_with_logits(out.float(), x, reduction="none").flatten(1).sum(1)

    def mean(self, out: torch.Tensor) -> torch.Tensor:  # E[x|z] = σ(logits)
        return torch.sigmoid(out.float())


class ContinuousBernoulli(nn.Module):
    """x ∈ [0, 1] per pixel, decoder output = logits l of λ = σ(l). p(x|λ) = C(λ)·λ^x·(1−λ)^(1−x) is a normalised
    density on [0, 1] (Loaiza-Ganem & Cunningham, 2019, "The continuous Bernoulli: fixing a pervasive error in
    variational autoencoders"), so on grey pixels its log p(x|z) and ELBO are true log-densities in nats.

    log p = −BCEWithLogits(l, x) + log C, and with λ = σ(l): 1 − 2λ = −tanh(l/2), artanh(1 − 2λ) = −l/2, so
    C = 2·artanh(1 − 2λ)/(1 − 2λ) = l / tanh(l/2): even in l, 2 at l = 0 (= 2 + l²/6 + O(l⁴)), ≈ |l| for large |l|."""

    name = "continuous_bernoulli"

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B,)
        logits = out.float()
        log_p = -F.binary_cross_entropy_with_logits(logits, x, reduction="none") + log_normalizer(logits)
        return log_p.flatten(1).sum(1)

    def mean(self, out: torch.Tensor) -> torch.Tensor:  # E[x|z] = λ/(2λ−1) + 1/(2·artanh(1−2λ)), not λ
        return torch.distributions.ContinuousBernoulli(logits=out.float(), validate_args=False).mean


def log_normalizer(logits: torch.Tensor) -> torch.Tensor:
    """log C(λ) of the continuous Bernoulli as a function of its logits: log(l / tanh(l/2)), elementwise."""
    a = logits.abs()
    small = a < 1e-2  # Taylor: log(2 + l²/6) = log 2 + l²/12 + O(l⁴), exact to ~1e-10 here
    safe = torch.where(small, torch.ones_like(a), a)
    return torch.where(small, math.log(2.0) + a * a / 12.0, torch.log(safe) - torch.log(torch.tanh(safe / 2)))


class Gaussian(nn.Module):
    """x | z ~ N(μ(z), diag σ²), decoder output = μ, σ a learned per-pixel parameter.

    σ = σ_min + softplus(ρ) with σ_min = 0.01: pixels that are constant in the data (a black border) would
    otherwise drive σ → 0 and log p(x|z) → +∞."""

    name = "gaussian"
    sigma_min = 0.01

    def __init__(self, image_shape: tuple[int, int, int]):
        super().__init__()
        # softplus(ρ) + 0.01 = 0.1 at start: a sensible scale for [0, 1] pixels
        self.rho = nn.Parameter(torch.full(image_shape, math.log(math.expm1(0.09))))

    def sigma(self) -> torch.Tensor:
        return self.sigma_min + F.softplus(self.rho)

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B,)
        sigma = self.sigma()  # (C, H, W)
        z = (x - out.float()) / sigma
        return (-0.5 * z * z - torch.log(sigma) - 0.5 * LOG_2PI).flatten(1).sum(1)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return out.float().clamp(0.0, 1.0)


def make_likelihood(name: str, image_shape: tuple[int, int, int]) -> nn.Module:
    if name == "bernoulli":
        return Bernoulli()
    if name == "gaussian":
        return Gaussian(image_shape)
    if name == "continuous_bernoulli":
        return ContinuousBernoulli()
    raise ValueError(f"unknown likelihood {name!r}")
