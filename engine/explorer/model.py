"""The Exponential–Normal model of seed 001: prior, likelihood, joint, evidence and posterior in closed form."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from .numerics import LOG_2PI, _array_api, _composite_gl, _edges_uniform_and_graded, _log_std_normal_pdf, _t
from .surrogates import TruncNormalQ


# ------------------------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class ExpNormalModel:
    """z ~ Exponential(rate alpha), x | z ~ Normal(z, sigma²), observed x = D. Densities in nats, over z."""

    alpha: float = 1.0  # prior rate α > 0 (prior mean 1/α)
    sigma: float = 1.0  # likelihood (observation noise) standard deviation σ > 0
    D: float = 2.0  # the observed value of x; any real number (D < 0 is allowed: z ≥ 0 still)

    def __post_init__(self):
        for name in ("alpha", "sigma", "D"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value}")
            object.__setattr__(self, name, value)
        if self.alpha <= 0 or self.sigma <= 0:
            raise ValueError(f"alpha and sigma must be > 0, got alpha={self.alpha}, sigma={self.sigma}")

    # --- what we can compute (seed 001: prior, likelihood, joint)
    @_array_api
    def log_prior(self, z):
        """log p(z) = log α − α z on z ≥ 0; −∞ on z < 0."""
        return torch.where(z >= 0, math.log(self.alpha) - self.alpha * z, -math.inf)

    @_array_api
    def log_likelihood(self, z):
        """log p(D | z) = log N(D; z, σ²), as a function of z."""
        return -0.5 * LOG_2PI - math.log(self.sigma) - 0.5 * ((self.D - z) / self.sigma) ** 2

    @_array_api
    def log_joint(self, z):
        """log p(z, D) = log p(z) + log p(D | z): the unnormalised posterior."""
        return self.log_prior(z) + self.log_likelihood(z)

    # --- what VI assumes we cannot (but here we can): marginal and posterior
    @property
    def posterior_loc(self) -> float:
        """m = D − ασ²: location of the Normal that the posterior truncates."""
        return self.D - self.alpha * self.sigma**2

    def log_marginal_closed_form(self) -> float:
        """log p(D) = log α + α²σ²/2 − αD + log Φ((D − ασ²)/σ)."""
        a, s = self.alpha, self.sigma
        log_phi = float(torch.special.log_ndtr(_t(self.posterior_loc / s)))
        return math.log(a) + 0.5 * (a * s) ** 2 - a * self.D + log_phi

    def log_marginal_quadrature(self, order: int = 16) -> float:
        """log ∫₀^∞ p(z, D) dz by composite Gauss–Legendre, summed in log space (logsumexp).

        Uses only the joint: the joint is log-concave with its mode in [0, max(D, 0)], and beyond
        max(D, 0) + 40σ it has fallen by > 800 nats, so [0, max(D, 0) + 40σ] holds all the mass.  Panels are
        uniform plus graded towards z = 0, where the posterior piles up when D ≪ 0.
        """
        return _log_marginal_quadrature(self.alpha, self.sigma, self.D, order)

    @_array_api
    def log_posterior(self, z):
        """log p(z | D): Normal(m, σ²) truncated to z ≥ 0, normalised by Φ(m/σ) (in log space)."""
        m, s = self.posterior_loc, self.sigma
        log_norm = torch.special.log_ndtr(_t(m / s))
        inside = _log_std_normal_pdf((z - m) / s) - math.log(s) - log_norm
        return torch.where(z >= 0, inside, -math.inf)

    @_array_api
    def posterior_pdf(self, z):
        """p(z | D), the truncated Normal density."""
        return torch.exp(self.log_posterior(z))

    def posterior_mean_sd(self) -> tuple[float, float]:
        """Mean and standard deviation of the truncated-Normal posterior (closed form)."""
        q = TruncNormalQ(self.posterior_loc, self.sigma)
        return float(q.mean()), math.sqrt(float(q.variance()))


@functools.lru_cache(maxsize=64)
def _log_marginal_quadrature(alpha: float, sigma: float, D: float, order: int) -> float:
    model = ExpNormalModel(alpha, sigma, D)
    upper = max(D, 0.0) + 40.0 * sigma
    z, w = _composite_gl(_edges_uniform_and_graded(0.0, upper, 80, 40, 1e-12), order)  # < 2k nodes, ~1e-13
    log_terms = model.log_joint(torch.as_tensor(z)) + torch.as_tensor(np.log(w))
    return float(torch.logsumexp(log_terms, dim=0))
