"""The ELBO's gradient with respect to q's parameters: exact (autograd through the quadrature ELBO), estimated by
Monte Carlo three ways, and stochastic VI driven by any of the three.

Write ELBO(θ) = E_{q_θ}[f_θ(z)] with f_θ(z) = log p(z, D) − log q_θ(z). The parameters sit in the distribution the
expectation is over, so the gradient cannot simply be moved inside. Three unbiased ways round that (seed 002: the
reparameterisation trick "has low variance"):

* **pathwise** (reparameterisation): z = T(ε; θ) with ε from a fixed base distribution, so
  ∇θ ELBO = E_ε[∇θ f_θ(T(ε; θ))] — the gradient flows through the sample (and through log p(z, D)'s slope in z).
* **score function** (REINFORCE, the log-derivative trick): ∇θ q = q ∇θ log q gives
  ∇θ ELBO = E_q[f_θ(z) ∇θ log q_θ(z)] (the other term, E_q[∇θ f_θ] = −E_q[∇θ log q_θ], is 0). It needs only
  log q's gradient, not log p's slope, so it also works for discrete z — and it only sees f through its *value*.
* **score function with a baseline** (a control variate): E_q[∇θ log q] = 0, so any b that does not depend on the
  sample can be subtracted: E_q[(f_θ(z) − b) ∇θ log q_θ(z)]. Here b is, for each parameter θ_k, the constant
  that minimises the variance, b_k = E[f s_k²] / E[s_k²] with s = ∇θ log q (close to the ELBO itself when f and
  s² are uncorrelated), estimated from the *other* samples of the batch (leave-one-out, so still unbiased); a batch
  of one sample uses the previous step's mean of f.

"Single-sample estimates" are the per-sample terms g_i whose batch mean is the estimator; their standard deviation
sd is the estimator's noise with one sample, sd/√N with N. "Samples needed for ±1%" is N with sd/√N = 1% of |∇|.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np
import torch

from .bounds import _elbo_nodes
from .model import ExpNormalModel
from .surrogates import Surrogate, _family_of

PATHWISE = "pathwise"
SCORE = "score"
SCORE_BASELINE = "score_baseline"
ESTIMATORS: dict[str, str] = {  # key → what the GUI shows
    PATHWISE: "Pathwise (reparameterisation)",
    SCORE: "Score function (REINFORCE)",
    SCORE_BASELINE: "Score function + baseline",
}

NATURAL = "natural"  # the family's own parameters (rate; μ, σ), as on the sliders
UNCONSTRAINED = "unconstrained"  # (log rate; μ, log σ), where the fit steps


def _check_estimator(estimator: str) -> str:
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown gradient estimator {estimator!r}; expected one of {', '.join(ESTIMATORS)}")
    return estimator


def _build(family: type[Surrogate], coords: str, theta: torch.Tensor) -> Surrogate:
    """q from a (P, ...) coordinate tensor: theta[k] is parameter k, in natural or unconstrained coordinates."""
    if coords == NATURAL:
        return family(**{name: theta[k] for k, name in enumerate(family.param_names)})
    if coords == UNCONSTRAINED:
        return family.from_unconstrained(theta)
    raise ValueError(f"coords must be {NATURAL!r} or {UNCONSTRAINED!r}, got {coords!r}")


def _coords_of(q: Surrogate, coords: str) -> torch.Tensor:
    if coords == NATURAL:
        return torch.tensor([float(v) for v in q.params().values()], dtype=torch.float64)
    return q.to_unconstrained().detach().clone()


def exact_gradient(model: ExpNormalModel, q: Surrogate, coords: str = NATURAL, order: int = 16) -> np.ndarray:
    """∇θ ELBO by autograd through the quadrature ELBO (nodes in q's base-noise coordinate, so they move with θ and
    the derivative of the rule is the rule of the derivative); (P,), one entry per parameter of q."""
    family = type(q)
    theta = _coords_of(q, coords).requires_grad_(True)
    (grad,) = torch.autograd.grad(_elbo_nodes(model, _build(family, coords, theta), order), theta)
    return grad.numpy()


def single_sample_gradients(
    model: ExpNormalModel, q: Surrogate, estimator: str, n: int, generator: torch.Generator, coords: str = NATURAL
) -> tuple[torch.Tensor, torch.Tensor]:
    """n independent single-sample gradient estimates g_i, (n, P), and the values f_i = log p(z_i, D) − log q(z_i),
    (n,), of the same draws z_i ~ q. Their means are the n-sample estimator and the MC ELBO.

    Each sample gets its own copy of the parameters (a (P, n) tensor), so one backward pass gives every per-sample
    gradient."""
    return _per_sample(model, type(q), _coords_of(q, coords), coords, estimator, n, generator)


def _per_sample(model, family, theta0, coords, estimator, n, generator, fallback_baseline: float = 0.0):
    """`single_sample_gradients` at coordinates theta0 (P,); `fallback_baseline` is the baseline when n = 1."""
    _check_estimator(estimator)
    p = len(family.param_names)
    theta = theta0.detach().reshape(p, 1).expand(p, int(n)).clone().requires_grad_(True)
    qn = _build(family, coords, theta)
    noise = qn.base_noise(int(n), generator)
    if estimator == PATHWISE:
        z = qn.rsample(noise)
        f = model.log_joint(z) - qn.log_prob(z)
        (grad,) = torch.autograd.grad(f.sum(), theta)
        return grad.T.detach(), f.detach()
    with torch.no_grad():
        z = qn.rsample(noise)
    log_q = qn.log_prob(z)
    (score,) = torch.autograd.grad(log_q.sum(), theta)  # ∇θ log q(z_i), (P, n)
    f = (model.log_joint(z) - log_q).detach()
    if estimator == SCORE_BASELINE:
        return ((f - _baseline(f, score, fallback_baseline)) * score).T, f
    return (f * score).T, f


def _baseline(f: torch.Tensor, score: torch.Tensor, fallback) -> torch.Tensor:
    """The variance-minimising constant baseline for each parameter k, b_k = E[f s_k²] / E[s_k²] (s = ∇θ log q),
    estimated for sample i from the other samples only (leave-one-out), so that the estimate stays unbiased.
    (P, n); with n = 1, `fallback` (a number or a (P,) tensor)."""
    n = f.shape[-1]
    if n == 1:
        return torch.as_tensor(fallback, dtype=f.dtype).reshape(-1, 1).expand_as(score)
    s2 = score * score
    fs2 = f * s2
    den = s2.sum(dim=1, keepdim=True) - s2
    return torch.where(den > 0, (fs2.sum(dim=1, keepdim=True) - fs2) / den.clamp_min(1e-300), 0.0)


# ---------------------------------------------------------------------------------------------------- the lab
@dataclass(frozen=True)
class EstimatorStats:
    """One estimator's N single-sample estimates (N, P) and what they say, per parameter."""

    estimator: str
    samples: np.ndarray
    mean: np.ndarray  # (P,) the N-sample estimate
    sd: np.ndarray  # (P,) standard deviation of one single-sample estimate
    se: np.ndarray  # (P,) standard error of the mean, sd/√N
    n_for_1pct: np.ndarray  # (P,) samples for sd/√N = 1% of |exact gradient| (inf where the gradient is 0)


@dataclass(frozen=True)
class GradientStudy:
    """The three estimators of ∇θ ELBO at one (model, q), θ = q's natural parameters, against the exact gradient."""

    family: str
    param_names: tuple[str, ...]
    params: Mapping[str, float]
    exact: np.ndarray  # (P,)
    n: int
    stats: Mapping[str, EstimatorStats]  # keyed like ESTIMATORS, in its order

    def histograms(
        self, k: int, bins: int = 60, shared: bool = True
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Density histograms of the single-sample estimates of ∂ELBO/∂θ_k: (edges, densities) per estimator.
        The range is each estimator's central 99% (their union when `shared`), so rare huge score-function
        estimates do not squash the picture; the share of estimates outside is ≤ 1%."""

        def central(x):
            lo, hi = np.percentile(x, [0.5, 99.5])
            return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)

        ranges = {e: central(s.samples[:, k]) for e, s in self.stats.items()}
        if shared:
            union = (min(r[0] for r in ranges.values()), max(r[1] for r in ranges.values()))
            ranges = {e: union for e in ranges}
        edges, density = {}, {}
        for e, s in self.stats.items():
            counts, edges[e] = np.histogram(s.samples[:, k], bins=bins, range=ranges[e])
            density[e] = counts / (len(s.samples) * np.diff(edges[e]))  # per unit, as a share of all N estimates
        return edges, density


def _stats(estimator: str, g: np.ndarray, exact: np.ndarray) -> EstimatorStats:
    n = len(g)
    sd = g.std(axis=0, ddof=1)
    with np.errstate(divide="ignore"):
        needed = np.where(exact != 0, np.ceil((sd / (0.01 * np.abs(exact))) ** 2), np.inf)
    return EstimatorStats(estimator, g, g.mean(axis=0), sd, sd / math.sqrt(n), needed)


def gradient_study(
    model: ExpNormalModel,
    q: Surrogate,
    n: int = 100_000,
    seed: int = 0,
    cancel: threading.Event | None = None,
    chunk: int = 25_000,
) -> GradientStudy | None:
    """Estimate ∇θ ELBO (θ = q's natural parameters) with each estimator from its own n independent draws, in
    chunks of `chunk` samples (the baseline of a sample comes from the other samples of its chunk). Returns None
    as soon as `cancel` is set (checked between chunks)."""
    if n < 2:
        raise ValueError(f"need n ≥ 2 samples for a standard deviation, got {n}")
    q = q.as_floats()
    exact = exact_gradient(model, q)
    gen = torch.Generator().manual_seed(int(seed))
    sizes = [chunk] * (n // chunk) + ([n % chunk] if n % chunk else [])
    if len(sizes) > 1 and sizes[-1] < 2:  # a chunk of one sample has no others to take a baseline from
        sizes[-2:] = [sizes[-2] - 1, 2]
    stats = {}
    for estimator in ESTIMATORS:
        parts = []
        for size in sizes:
            if cancel is not None and cancel.is_set():
                return None
            parts.append(single_sample_gradients(model, q, estimator, size, gen)[0].numpy())
        stats[estimator] = _stats(estimator, np.concatenate(parts), exact)
    return GradientStudy(type(q).name, type(q).param_names, q.params(), exact, int(n), stats)


# ------------------------------------------------------------------------------------------------------- fit
@dataclass(frozen=True)
class FitStep:
    """One step of `fit`: the parameters after the update, and the MC ELBO estimate the update was computed from."""

    step: int
    params: Mapping[str, float]
    elbo_estimate: float


def fit(
    model: ExpNormalModel,
    family: "type[Surrogate] | str",
    init: "Surrogate | Mapping[str, float]",
    lr: float = 0.05,
    steps: int = 400,
    n_samples: int = 16,
    seed: int = 0,
    decay: bool = True,
    estimator: str = PATHWISE,
) -> Iterator[FitStep]:
    """Stochastic gradient ascent on the ELBO; a generator, one `FitStep` per step.

    Each step draws n_samples z ~ q, estimates ∇ELBO with `estimator` (pathwise by default, the low-variance one)
    and takes an Adam step (Kingma & Ba 2015, Algorithm 1; ascent) in unconstrained coordinates (log rate, μ,
    log σ). With `decay`, the learning rate follows a cosine from lr to 0, so the last steps average the gradient
    noise out instead of rattling around the optimum.
    """
    family = _family_of(family)
    _check_estimator(estimator)
    q0 = init if isinstance(init, Surrogate) else family(**init)
    if not isinstance(q0, family):
        raise TypeError(f"init is a {type(q0).__name__}, expected a {family.__name__}")
    eta = q0.to_unconstrained().detach().clone()  # (P,)
    m1, m2 = torch.zeros_like(eta), torch.zeros_like(eta)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    gen = torch.Generator().manual_seed(int(seed))
    previous = 0.0  # the last step's mean of f: the baseline of a one-sample batch
    for step in range(1, int(steps) + 1):
        g, f = _per_sample(model, family, eta, UNCONSTRAINED, estimator, int(n_samples), gen, previous)
        grad = g.mean(dim=0)
        estimate = float(f.mean())  # a host scalar per step is fine here: CPU tensors, no device sync
        if math.isfinite(estimate):
            previous = estimate
        if torch.isfinite(grad).all():
            m1 = beta1 * m1 + (1 - beta1) * grad
            m2 = beta2 * m2 + (1 - beta2) * grad * grad
            m_hat, v_hat = m1 / (1 - beta1**step), m2 / (1 - beta2**step)
            lr_t = lr * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / steps)) if decay else lr
            eta = eta + lr_t * m_hat / (v_hat.sqrt() + eps)
        params = family.from_unconstrained(eta).params()
        yield FitStep(step=step, params=params, elbo_estimate=estimate)
