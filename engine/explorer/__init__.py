"""One-dimensional variational inference, worked exactly: the Exponential–Normal model (seed 001).

The model (seed 001, "Example: Exponential-Normal model")::

    z ~ Exponential(rate α)            p(z)   = α·exp(−α z)  for z ≥ 0, and 0 for z < 0
    x | z ~ Normal(z, σ²)              p(x|z) = N(x; z, σ²)
    observed x = D

What we can compute pointwise: the prior, the likelihood and the joint p(z, D) = p(z)·p(D|z).
What VI pretends it cannot: the marginal ("evidence") and the posterior.  Here both happen to have closed forms,
which is what makes the model a good teacher — every VI quantity can be checked exactly:

    p(D)     = α·exp(α²σ²/2 − αD)·Φ((D − ασ²)/σ)       (complete the square in z, integrate over z ≥ 0)
    p(z | D) = Normal(m, σ²) truncated to z ≥ 0,  m = D − ασ²

The ELBO of a surrogate q (lecture, seed 000: multiply by q/q, Jensen's inequality) and the gap identity::

    ELBO(q)  = E_q[log p(z, D) − log q(z)]  = E_q[log p(z)] + E_q[log p(D|z)] + H[q]
    log p(D) = ELBO(q) + KL(q ‖ p(z|D))      (so ELBO ≤ log p(D), with equality iff q is the posterior)

Everything is computed in log space (log Φ via ``torch.special.log_ndtr``, never ``log(Φ)``), in float64, in nats.

Surrogate families (all supported on z ≥ 0, like the prior):

* ``ExponentialQ(rate)`` — the seed's app.  Reparameterised by the inverse CDF: z = −log(1 − u)/rate, u ~ U(0, 1).
* ``TruncNormalQ(mu, sigma)`` — the "Normal" family, **truncated to z ≥ 0**.  A plain Normal puts mass on z < 0,
  where p(z) = 0, so E_q[log p(z)] = −∞ and its ELBO is −∞ for every (μ, σ): nothing to plot or optimise.  Truncating
  at 0 is the honest fix, and the GUI says so.  Bonus lesson: the true posterior *is* a truncated Normal, so this
  family's best KL is exactly 0 and its ELBO touches log p(D).  Reparameterised by the inverse CDF of the
  truncated Normal (solved by Newton's method in log space, gradient by the implicit function theorem).
* ``LogNormalQ(mu, sigma)`` — z = exp(mu + sigma·ε), ε ~ N(0, 1).

Numerics: ``elbo_quadrature`` integrates in each family's *base-noise* coordinate (e = −log(1−u), t = (z−μ)/σ,
ε), differentiably, so ``best_params`` can run Newton's method on it; ``kl_q_posterior`` integrates
q·(log q − log p(z|D)) on a separate grid in z.  Their sum matching the closed-form log p(D) is therefore a real
check (``explorer_summary`` reports the residual; it is ≲1e-12).  ``fit`` is plain stochastic gradient ascent
(Adam, written out so no ``torch.optim`` import is paid on the first click) on a Monte Carlo ELBO gradient — the
thing one does when no quadrature is available — estimated pathwise (reparameterised), by the score function
(REINFORCE) or by the score function with a baseline; ``gradient_study`` sets the three side by side against the
exact gradient (autograd through the quadrature ELBO).

Modules: ``numerics`` (quadrature rules), ``model``, ``surrogates``, ``bounds`` (ELBO, KL, best q, surface),
``gradients`` (exact and estimated ELBO gradients, the fit), ``summary`` (what the panel shows). No Qt here: the GUI panel (``gui/panels/explorer.py``) only calls these functions and draws the numpy arrays.
"""

from .bounds import (
    ElboSurface,
    _elbo_nodes,
    best_params,
    elbo_closed_form,
    elbo_mc,
    elbo_quadrature,
    elbo_surface,
    kl_q_posterior,
)
from .gradients import (
    ESTIMATORS,
    PATHWISE,
    SCORE,
    SCORE_BASELINE,
    EstimatorStats,
    FitStep,
    GradientStudy,
    exact_gradient,
    fit,
    gradient_study,
    single_sample_gradients,
)
from .model import ExpNormalModel
from .surrogates import FAMILIES, ExponentialQ, LogNormalQ, ParamRange, Surrogate, TruncNormalQ
from .summary import DensityCurves, ExplorerNumbers, density_curves, explorer_summary

__all__ = [
    "ExpNormalModel",
    "Surrogate",
    "ExponentialQ",
    "TruncNormalQ",
    "LogNormalQ",
    "FAMILIES",
    "ParamRange",
    "FitStep",
    "ElboSurface",
    "ExplorerNumbers",
    "DensityCurves",
    "elbo_quadrature",
    "elbo_closed_form",
    "elbo_mc",
    "kl_q_posterior",
    "best_params",
    "elbo_surface",
    "fit",
    "explorer_summary",
    "density_curves",
    "ESTIMATORS",
    "PATHWISE",
    "SCORE",
    "SCORE_BASELINE",
    "EstimatorStats",
    "GradientStudy",
    "exact_gradient",
    "gradient_study",
    "single_sample_gradients",
    "_elbo_nodes",
]
