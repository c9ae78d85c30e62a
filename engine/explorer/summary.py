"""Everything the explorer panel shows for one (model, q), computed in one go."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .model import ExpNormalModel
from .surrogates import Surrogate
from .bounds import elbo_closed_form, elbo_mc, elbo_quadrature, kl_q_posterior


# --------------------------------------------------------------------------------------- for the GUI, in one go
@dataclass(frozen=True)
class ExplorerNumbers:
    """Every number the explorer shows for one (model, q), in nats."""

    log_marginal_closed: float
    log_marginal_quad: float
    elbo_quad: float
    elbo_closed: float
    elbo_mc: float
    elbo_mc_se: float
    n_samples: int
    kl: float
    identity_residual: float  # log p(D) − (ELBO + KL), closed-form log p(D), quadrature ELBO and KL


def explorer_summary(model: ExpNormalModel, q: Surrogate, n_samples: int = 1000, seed: int = 0) -> ExplorerNumbers:
    log_p = model.log_marginal_closed_form()
    elbo = elbo_quadrature(model, q)
    kl = kl_q_posterior(model, q)
    mc, se = elbo_mc(model, q, n_samples, seed)
    return ExplorerNumbers(
        log_marginal_closed=log_p,
        log_marginal_quad=model.log_marginal_quadrature(),
        elbo_quad=elbo,
        elbo_closed=elbo_closed_form(model, q),
        elbo_mc=mc,
        elbo_mc_se=se,
        n_samples=int(n_samples),
        kl=kl,
        identity_residual=log_p - (elbo + kl),
    )


@dataclass(frozen=True)
class DensityCurves:
    """Densities over a z grid, ready to draw. likelihood is p(D | z) as a function of z: for this model it
    integrates to 1 over z ∈ ℝ, so it shares the density axis without scaling."""

    z: np.ndarray
    prior: np.ndarray
    likelihood: np.ndarray
    joint: np.ndarray
    posterior: np.ndarray
    q: np.ndarray


def density_curves(model: ExpNormalModel, q: Surrogate, n_points: int = 801) -> DensityCurves:
    """All curves of the main plot on one grid: from below 0 (where the prior is 0) to past the posterior, the
    likelihood peak, and most of q (q's tail is cut at 3× the rest so the posterior stays visible)."""
    mean, sd = model.posterior_mean_sd()
    hi = max(mean + 5.0 * sd, model.D + 3.0 * model.sigma, 1e-3)
    q_hi = float(q.mean()) + 3.0 * math.sqrt(float(q.variance()))
    hi = max(hi, min(q_hi, 3.0 * hi))
    # z < 0 shows that the prior (hence joint and posterior) vanishes there, and where the likelihood peaks when
    # D < 0; but never more of it than of z > 0, or the posterior gets squeezed into a sliver
    lo = max(min(model.D - 3.0 * model.sigma, 0.0), -hi) - 0.05 * hi
    z = np.linspace(lo, hi, n_points)
    z = np.unique(np.concatenate([z, [0.0, np.nextafter(0.0, -1.0)]]))  # show the prior's jump at 0 sharply
    return DensityCurves(
        z=z,
        prior=np.exp(model.log_prior(z)),
        likelihood=np.exp(model.log_likelihood(z)),
        joint=np.exp(model.log_joint(z)),
        posterior=model.posterior_pdf(z),
        q=q.pdf(z),
    )
