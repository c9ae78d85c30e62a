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
(Adam, written out so no ``torch.optim`` import is paid on the first click) on the reparameterised Monte Carlo
ELBO — the thing one does when no quadrature is available.

No Qt here: the GUI panel (``gui/panels/explorer.py``) only calls these functions and draws the numpy arrays.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator, Mapping, Sequence

import numpy as np
import torch

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
]

DTYPE = torch.float64
LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------------------------- small helpers
def _t(x) -> torch.Tensor:
    """A float64 tensor; keeps the autograd graph of a tensor that already is one."""
    return torch.as_tensor(x, dtype=DTYPE)


def _array_api(fn: Callable) -> Callable:
    """Let a density method take a tensor (-> tensor, autograd intact), an array (-> array) or a scalar (-> float)."""

    @functools.wraps(fn)
    def wrapper(self, z):
        if isinstance(z, torch.Tensor):
            return fn(self, z)
        out = fn(self, torch.as_tensor(np.asarray(z, dtype=np.float64)))
        return float(out) if out.ndim == 0 else out.detach().numpy()

    return wrapper


def _log_std_normal_pdf(t: torch.Tensor) -> torch.Tensor:
    return -0.5 * LOG_2PI - 0.5 * t * t


@functools.lru_cache(maxsize=None)
def _gl(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [−1, 1]."""
    return np.polynomial.legendre.leggauss(order)


def _composite_gl(edges: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss–Legendre rule: `order` nodes on each panel [edges[i], edges[i+1]]. Returns (nodes, weights)."""
    edges = np.unique(np.asarray(edges, dtype=np.float64))
    x, w = _gl(order)
    half = 0.5 * np.diff(edges)[:, None]  # (P, 1)
    mid = 0.5 * (edges[1:] + edges[:-1])[:, None]
    return (mid + half * x).ravel(), (half * w).ravel()


def _edges_uniform_and_graded(lo: float, hi: float, n_uniform: int, n_graded: int, smallest: float) -> np.ndarray:
    """Panel edges on [lo, hi]: uniform panels plus geometrically graded ones near `lo` (for boundary layers,
    e.g. a posterior squeezed against z = 0 when D ≪ 0)."""
    width = hi - lo
    graded = lo + width * np.geomspace(smallest, 1.0, n_graded)
    return np.unique(np.concatenate([np.linspace(lo, hi, n_uniform + 1), graded, [lo]]))


@functools.lru_cache(maxsize=None)
def _unit_rule(order: int, n_uniform: int, n_graded: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed composite rule on [0, 1], graded towards 0; cached as tensors (x, log w)."""
    x, w = _composite_gl(_edges_uniform_and_graded(0.0, 1.0, n_uniform, n_graded, 1e-9), order)
    return torch.as_tensor(x), torch.as_tensor(np.log(w))


@functools.lru_cache(maxsize=None)
def _symmetric_rule(order: int, n_panels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed composite rule on [−1, 1] with uniform panels; cached as tensors (x, log w)."""
    x, w = _composite_gl(np.linspace(-1.0, 1.0, n_panels + 1), order)
    return torch.as_tensor(x), torch.as_tensor(np.log(w))


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


# ------------------------------------------------------------------------------------------------- surrogates
@dataclass(frozen=True)
class ParamRange:
    """Where a parameter's slider (and the ELBO surface) should range, and whether on a log scale."""

    lo: float
    hi: float
    log: bool


class Surrogate:
    """Common interface of the surrogate families q(z).  Subclasses are frozen dataclasses of their parameters.

    A parameter may be a float (normal use) or a tensor: a tensor that requires grad makes every method
    differentiable (the fit), and a (G, 1) tensor evaluates G parameter settings at once (the ELBO surface).
    """

    name: ClassVar[str]  # short name: the key in FAMILIES
    display_name: ClassVar[str]  # what the GUI's family combo box shows
    label: ClassVar[str]  # a one-line description with the formula
    note: ClassVar[str]  # what is special about the family, shown in the GUI
    param_names: ClassVar[tuple[str, ...]]
    param_labels: ClassVar[tuple[str, ...]]  # display names (unicode)
    support: ClassVar[tuple[float, float]] = (0.0, math.inf)

    def params(self) -> dict[str, float]:
        return {n: float(getattr(self, n)) for n in self.param_names}

    def _p(self, name: str) -> torch.Tensor:
        return _t(getattr(self, name))

    # --- densities
    def _log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @_array_api
    def log_prob(self, z):
        """log q(z); −∞ outside the support."""
        return self._log_prob(z)

    @_array_api
    def pdf(self, z):
        return torch.exp(self._log_prob(z))

    # --- reparameterisation: z = T(noise; params), noise from a fixed base distribution
    def base_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n draws of the parameter-free base noise (uniform on (0, 1) unless a subclass says otherwise)."""
        return torch.rand(n, generator=generator, dtype=DTYPE)

    def rsample(self, noise: torch.Tensor) -> torch.Tensor:
        """z = T(noise; params), differentiable w.r.t. the parameters."""
        raise NotImplementedError

    # --- closed-form moments and entropy
    def mean(self) -> torch.Tensor:
        raise NotImplementedError

    def variance(self) -> torch.Tensor:
        raise NotImplementedError

    def entropy(self) -> torch.Tensor:
        """H[q] = −E_q[log q(z)] in nats, closed form."""
        raise NotImplementedError

    # --- quadrature support
    def _expect_nodes(self, order: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, log w) with E_q[f(z)] ≈ Σ w f(z): quadrature in the base-noise coordinate, differentiable."""
        raise NotImplementedError

    def _z_interval(self) -> tuple[float, float, bool]:
        """(lo, hi, log_spaced): an interval in z holding all but ~e⁻⁶⁰ of q's mass, for quadrature in z."""
        raise NotImplementedError

    # --- optimisation coordinates
    def to_unconstrained(self) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def from_unconstrained(cls, eta: torch.Tensor) -> "Surrogate":
        raise NotImplementedError

    def _search_coords(self) -> torch.Tensor:
        """Coordinates for `best_params`' Newton search; the unconstrained ones unless a subclass knows better."""
        return self.to_unconstrained()

    @classmethod
    def _from_search_coords(cls, eta: torch.Tensor) -> "Surrogate":
        return cls.from_unconstrained(eta)

    @classmethod
    def param_ranges(cls, model: ExpNormalModel) -> dict[str, ParamRange]:
        raise NotImplementedError

    @classmethod
    def initial_guesses(cls, model: ExpNormalModel) -> list["Surrogate"]:
        raise NotImplementedError

    @classmethod
    def starting_point(cls, model: ExpNormalModel) -> "Surrogate":
        """A deliberately naive member to start a fit from, so that the fit has somewhere to go."""
        raise NotImplementedError

    def as_floats(self) -> "Surrogate":
        return type(self)(**self.params())


def _check_positive(q: Surrogate, *names: str) -> None:
    for n in names:
        v = getattr(q, n)
        if not isinstance(v, torch.Tensor) and not (float(v) > 0 and math.isfinite(float(v))):
            raise ValueError(f"{type(q).__name__}.{n} must be positive and finite, got {v}")


@dataclass(frozen=True)
class ExponentialQ(Surrogate):
    """q(z) = rate·exp(−rate·z), z ≥ 0."""

    rate: float

    name: ClassVar[str] = "Exponential"
    display_name: ClassVar[str] = "Exponential"
    label: ClassVar[str] = "q(z) = λ·exp(−λz), z ≥ 0"
    note: ClassVar[str] = "The seed's family. Its mode is always at 0, so it cannot follow a posterior that peaks at z > 0."
    param_names: ClassVar[tuple[str, ...]] = ("rate",)
    param_labels: ClassVar[tuple[str, ...]] = ("rate λ",)

    def __post_init__(self):
        _check_positive(self, "rate")

    def _log_prob(self, z):
        rate = self._p("rate")
        return torch.where(z >= 0, torch.log(rate) - rate * z, -math.inf)

    def rsample(self, noise):
        # inverse CDF: F(z) = 1 − exp(−λz)  ⇒  z = −log(1 − u)/λ
        return -torch.log1p(-noise) / self._p("rate")

    def mean(self):
        return 1.0 / self._p("rate")

    def variance(self):
        return 1.0 / self._p("rate") ** 2

    def entropy(self):
        return 1.0 - torch.log(self._p("rate"))

    def _expect_nodes(self, order):
        # e = −log(1 − u) ~ Exponential(1): E_q[f] = ∫₀^∞ e^{−e} f(e/λ) de, truncated at e = 60.
        x, logw = _unit_rule(order, 24, 0)
        e = 60.0 * x
        return e / self._p("rate"), logw + math.log(60.0) - e

    def _z_interval(self):
        return 0.0, 60.0 / float(self.rate), False

    def to_unconstrained(self):
        return torch.log(self._p("rate")).reshape(1)

    @classmethod
    def from_unconstrained(cls, eta):
        return cls(rate=torch.exp(eta[0]))

    @classmethod
    def param_ranges(cls, model):
        return {"rate": ParamRange(0.01, 300.0, True)}

    @classmethod
    def initial_guesses(cls, model):
        mean, _ = model.posterior_mean_sd()
        return [cls(1.0 / mean), cls(model.alpha)]

    @classmethod
    def starting_point(cls, model):
        mean, _ = model.posterior_mean_sd()
        return cls(0.25 / mean)  # a q whose mean is 4× the posterior's


@dataclass(frozen=True)
class TruncNormalQ(Surrogate):
    """q(z) = N(z; mu, sigma²) / Φ(mu/sigma) on z ≥ 0: a Normal truncated to the prior's support."""

    mu: float
    sigma: float

    name: ClassVar[str] = "Normal"
    display_name: ClassVar[str] = "Normal (truncated to z ≥ 0)"
    label: ClassVar[str] = "q(z) ∝ N(z; μ, σ²) on z ≥ 0"
    note: ClassVar[str] = (
        "A plain Normal puts mass on z < 0, where p(z) = 0, so E_q[log p(z)] = −∞ and its ELBO is −∞: "
        "we truncate it to z ≥ 0. The true posterior is a truncated Normal, so this family can reach KL = 0."
    )
    param_names: ClassVar[tuple[str, ...]] = ("mu", "sigma")
    param_labels: ClassVar[tuple[str, ...]] = ("μ", "σ")

    def __post_init__(self):
        _check_positive(self, "sigma")

    def _a(self) -> torch.Tensor:
        """Standardised truncation point a = (0 − μ)/σ."""
        return -self._p("mu") / self._p("sigma")

    def _log_z(self) -> torch.Tensor:
        """log of the kept mass, log P(N(μ, σ²) ≥ 0) = log Φ(μ/σ)."""
        return torch.special.log_ndtr(-self._a())

    def untruncated_mass_below_zero(self) -> float:
        """How much mass the plain N(μ, σ²) would put on z < 0 (where p(z) = 0): Φ(−μ/σ)."""
        return float(torch.special.ndtr(self._a()))

    def _log_prob(self, z):
        mu, sigma = self._p("mu"), self._p("sigma")
        inside = _log_std_normal_pdf((z - mu) / sigma) - torch.log(sigma) - self._log_z()
        return torch.where(z >= 0, inside, -math.inf)

    def rsample(self, noise):
        # Inverse CDF in log space: with v = 1 − u, solve  log Φ̄(t) = log Φ̄(a) + log v  for t ≥ a
        # (Φ̄(t) = Φ(−t), the upper tail), then z = μ + σ t.  Φ̄(a) underflows for a ≳ 37, so the root is found
        # by Newton's method on g(t) = log_ndtr(−t) − L (concave, decreasing) with no autograd, and one more
        # Newton step is taken *with* autograd from the converged root: at a root that step's derivative is
        # exactly the implicit-function gradient dt/dθ = −(∂g/∂θ)/(∂g/∂t).
        a = self._a()
        log_v = torch.log1p(-noise)
        target = torch.special.log_ndtr(-a) + log_v  # L(θ)
        with torch.no_grad():
            ad, Ld = a.detach(), target.detach()
            # start: exact inverse where nothing underflows, the tail asymptote sqrt(a² − 2 log v) otherwise
            t = torch.where(
                ad < 5.0,
                -torch.special.ndtri(torch.exp(Ld).clamp_min(1e-300)),
                torch.sqrt(ad.clamp_min(0.0) ** 2 - 2.0 * log_v),
            )
            for _ in range(30):
                g = torch.special.log_ndtr(-t) - Ld
                dg = -torch.exp(_log_std_normal_pdf(t) - torch.special.log_ndtr(-t))
                t_new = torch.maximum(t - g / dg, ad)
                if torch.all((t_new - t).abs() <= 1e-13 * (1.0 + t.abs())):
                    t = t_new
                    break
                t = t_new
        g = torch.special.log_ndtr(-t) - target  # ≈ 0, carries the dependence on θ
        dg = -torch.exp(_log_std_normal_pdf(t) - torch.special.log_ndtr(-t))
        t = t - g / dg
        return (self._p("mu") + self._p("sigma") * t).clamp_min(0.0)  # z ≥ 0 exactly, not just up to rounding

    def _mills(self) -> torch.Tensor:
        """r = φ(a)/Φ̄(a), computed in log space."""
        return torch.exp(_log_std_normal_pdf(self._a()) - self._log_z())

    def mean(self):
        return self._p("mu") + self._p("sigma") * self._mills()

    def variance(self):
        a, r = self._a(), self._mills()
        return self._p("sigma") ** 2 * (1.0 + a * r - r * r)

    def entropy(self):
        # H = ½ log(2πe) + log σ + log Φ̄(a) + a·φ(a)/(2Φ̄(a))
        return 0.5 * (LOG_2PI + 1.0) + torch.log(self._p("sigma")) + self._log_z() + 0.5 * self._a() * self._mills()

    def _expect_nodes(self, order):
        # t = (z − μ)/σ ∈ [a, ∞) has density φ(t)/Φ̄(a).  All but ~e⁻⁸⁰ of it lies in [L, U] with
        # L = max(a, −13), U = max(a, 0) + 14 (for a ≫ 0 the mass is a boundary layer of width ~1/a at t = a,
        # so the panels are graded towards L).  z = μ + σ t.
        mu, sigma = self._p("mu"), self._p("sigma")
        a = self._a()
        lower = torch.clamp(a, min=-13.0)
        width = torch.clamp(a, min=0.0) + 14.0 - lower
        x, logw = _unit_rule(order, 40, 30)
        t = lower + width * x
        z = (mu + sigma * t).clamp_min(0.0)  # ≥ 0 exactly, not just up to rounding
        return z, logw + torch.log(width) + _log_std_normal_pdf(t) - self._log_z()

    def _z_interval(self):
        mu, sigma = float(self.mu), float(self.sigma)
        return max(0.0, mu - 13.0 * sigma), max(mu, 0.0) + 15.0 * sigma, False

    def to_unconstrained(self):
        return torch.stack([self._p("mu"), torch.log(self._p("sigma"))])

    @classmethod
    def from_unconstrained(cls, eta):
        return cls(mu=eta[0], sigma=torch.exp(eta[1]))

    def _search_coords(self):
        # (μ/σ², log σ): μ/σ² is the natural parameter of z in log q.  When the Normal is truncated deep in its
        # tail only the slope at 0, ≈ μ/σ², matters, and in (μ, log σ) the optimum sits at the end of a long
        # curved ridge that Newton crawls along (~200 evaluations); in these coordinates the ridge is straight.
        sigma = self._p("sigma")
        return torch.stack([self._p("mu") / sigma**2, torch.log(sigma)])

    @classmethod
    def _from_search_coords(cls, eta):
        sigma = torch.exp(eta[1])
        return cls(mu=eta[0] * sigma**2, sigma=sigma)

    @classmethod
    def param_ranges(cls, model):
        m, s = model.posterior_loc, model.sigma
        lo = min(m, 0.0) - 3.0 * s
        hi = max(m, 0.0) + 4.0 * s
        return {"mu": ParamRange(lo, hi, False), "sigma": ParamRange(0.05 * s, 5.0 * s, True)}

    @classmethod
    def initial_guesses(cls, model):
        mean, sd = model.posterior_mean_sd()
        return [cls(mean, sd), cls(max(model.D, 0.0), model.sigma)]

    @classmethod
    def starting_point(cls, model):
        return cls(model.D, model.sigma)  # the likelihood's shape, truncated


@dataclass(frozen=True)
class LogNormalQ(Surrogate):
    """z = exp(mu + sigma·ε), ε ~ N(0, 1): log z ~ N(mu, sigma²)."""

    mu: float
    sigma: float

    name: ClassVar[str] = "Log-Normal"
    display_name: ClassVar[str] = "Log-Normal"
    label: ClassVar[str] = "log z ~ N(μ, σ²)"
    note: ClassVar[str] = "Positive by construction; q(z) → 0 as z → 0, so it cannot put its mode at 0."
    param_names: ClassVar[tuple[str, ...]] = ("mu", "sigma")
    param_labels: ClassVar[tuple[str, ...]] = ("μ (of log z)", "σ (of log z)")

    def __post_init__(self):
        _check_positive(self, "sigma")

    def base_noise(self, n, generator):
        return torch.randn(n, generator=generator, dtype=DTYPE)

    def _log_prob(self, z):
        mu, sigma = self._p("mu"), self._p("sigma")
        pos = z > 0
        log_z = torch.log(torch.where(pos, z, torch.ones_like(z)))  # no log(0) in the untaken branch
        inside = _log_std_normal_pdf((log_z - mu) / sigma) - torch.log(sigma) - log_z
        return torch.where(pos, inside, -math.inf)

    def rsample(self, noise):
        return torch.exp(self._p("mu") + self._p("sigma") * noise)

    def mean(self):
        return torch.exp(self._p("mu") + 0.5 * self._p("sigma") ** 2)

    def variance(self):
        s2 = self._p("sigma") ** 2
        return torch.expm1(s2) * torch.exp(2.0 * self._p("mu") + s2)

    def entropy(self):
        return self._p("mu") + 0.5 * (LOG_2PI + 1.0) + torch.log(self._p("sigma"))

    def _expect_nodes(self, order):
        # ε ∈ [−R, R] with R = 13 + 2σ: the integrand φ(ε)·z² peaks at ε = 2σ.
        sigma = self._p("sigma")
        R = 13.0 + 2.0 * sigma
        x, logw = _symmetric_rule(order, 40)
        eps = R * x
        return torch.exp(self._p("mu") + sigma * eps), logw + torch.log(R) + _log_std_normal_pdf(eps)

    def _z_interval(self):
        R = 13.0 + 2.0 * float(self.sigma)
        return math.exp(float(self.mu) - R * float(self.sigma)), math.exp(float(self.mu) + R * float(self.sigma)), True

    def to_unconstrained(self):
        return torch.stack([self._p("mu"), torch.log(self._p("sigma"))])

    @classmethod
    def from_unconstrained(cls, eta):
        return cls(mu=eta[0], sigma=torch.exp(eta[1]))

    @classmethod
    def param_ranges(cls, model):
        mean, _ = model.posterior_mean_sd()
        centre = math.log(mean)
        return {"mu": ParamRange(centre - 4.0, centre + 2.0, False), "sigma": ParamRange(0.02, 3.0, True)}

    @classmethod
    def initial_guesses(cls, model):
        mean, sd = model.posterior_mean_sd()
        s2 = math.log1p((sd / mean) ** 2)  # moment matching
        return [cls(math.log(mean) - 0.5 * s2, math.sqrt(s2)), cls(math.log(mean), 0.5)]

    @classmethod
    def starting_point(cls, model):
        return cls(0.0, 1.0)  # the standard Log-Normal


FAMILIES: dict[str, type[Surrogate]] = {cls.name: cls for cls in (ExponentialQ, TruncNormalQ, LogNormalQ)}


def _family_of(family: "type[Surrogate] | str") -> type[Surrogate]:
    return FAMILIES[family] if isinstance(family, str) else family


# ------------------------------------------------------------------------------------------------ ELBO and KL
def _elbo_nodes(model: ExpNormalModel, q: Surrogate, order: int = 16) -> torch.Tensor:
    """ELBO = E_q[log p(z, D) − log q(z)] by quadrature in q's base-noise coordinate. Differentiable; with (G, 1)
    parameters it returns G values."""
    z, logw = q._expect_nodes(order)  # (K,) or (G, K); logw broadcasts against z
    integrand = model.log_joint(z) - q.log_prob(z)
    return (torch.exp(logw) * integrand).sum(dim=-1)


def elbo_quadrature(model: ExpNormalModel, q: Surrogate, order: int = 16) -> float:
    """The exact ELBO, E_q[log p(z, D) − log q(z)], by Gauss–Legendre quadrature (~1e-12)."""
    with torch.no_grad():
        return float(_elbo_nodes(model, q, order))


def elbo_closed_form(model: ExpNormalModel, q: Surrogate) -> float:
    """The same ELBO from q's closed-form mean, variance and entropy (for a Normal truncated far into its tail,
    a = −μ/σ ≳ 100, the variance formula 1 + a·r − r² cancels and loses ~1e-8: trust the quadrature there):
    E_q[log p(z)] = log α − α E[z],  E_q[log p(D|z)] = −½log(2πσ²) − ((D − E[z])² + Var[z])/(2σ²),  + H[q]."""
    with torch.no_grad():
        mean, var = float(q.mean()), float(q.variance())
        expected_log_prior = math.log(model.alpha) - model.alpha * mean
        expected_log_lik = (
            -0.5 * LOG_2PI - math.log(model.sigma) - ((model.D - mean) ** 2 + var) / (2.0 * model.sigma**2)
        )
        return expected_log_prior + expected_log_lik + float(q.entropy())


def elbo_mc(model: ExpNormalModel, q: Surrogate, n: int, seed: int = 0) -> tuple[float, float]:
    """Monte Carlo ELBO: the mean of log p(z_i, D) − log q(z_i) over n reparameterised draws z_i ~ q, and its
    standard error (sample std / √n)."""
    if n < 2:
        raise ValueError(f"need n ≥ 2 samples for a standard error, got {n}")
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        z = q.rsample(q.base_noise(int(n), gen))  # (n,)
        f = model.log_joint(z) - q.log_prob(z)  # (n,)
        return float(f.mean()), float(f.std(unbiased=True)) / math.sqrt(n)


def kl_q_posterior(model: ExpNormalModel, q: Surrogate, order: int = 16) -> float:
    """KL(q ‖ p(z|D)) = ∫ q (log q − log p(z|D)) dz, integrated directly in z on its own grid (not the ELBO's),
    with the closed-form truncated-Normal posterior."""
    lo, hi, log_spaced = q._z_interval()
    if log_spaced:
        edges = np.geomspace(lo, hi, 81)
    else:
        edges = _edges_uniform_and_graded(lo, hi, 60, 40, 1e-10)
    z, w = _composite_gl(edges, order)
    z = torch.as_tensor(z)
    with torch.no_grad():
        log_q = q.log_prob(z)
        kept = torch.isfinite(log_q)
        integrand = torch.where(kept, torch.exp(log_q) * (log_q - model.log_posterior(z)), torch.zeros_like(z))
        return float((torch.as_tensor(w) * integrand).sum())


# ------------------------------------------------------------------------------------------- best and surface
def _newton_maximize(f: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, max_iter: int = 100) -> torch.Tensor:
    """Maximise a smooth f of a few variables: Newton with the Hessian's eigenvalues forced negative
    (|λ|), then a backtracking (Armijo) line search.  Deterministic."""
    x = x0.detach().clone()
    stalled = 0  # consecutive steps that improved f by less than float64 can resolve
    for _ in range(max_iter):
        xg = x.clone().requires_grad_(True)
        value = f(xg)
        (grad,) = torch.autograd.grad(value, xg, create_graph=True)
        hess = torch.stack([torch.autograd.grad(grad[i], xg, retain_graph=True)[0] for i in range(x.numel())])
        value, grad, hess = value.detach(), grad.detach(), hess.detach()
        if not torch.isfinite(value) or grad.abs().max() < 1e-10:
            break
        evals, evecs = torch.linalg.eigh(0.5 * (hess + hess.T))
        step = evecs @ ((evecs.T @ grad) / evals.abs().clamp_min(1e-8))  # ascent: grad·step > 0
        slope = float(grad @ step)
        t, accepted = 1.0, False
        while t > 1e-12:
            x_new = x + t * step
            with torch.no_grad():
                v_new = f(x_new)
            if torch.isfinite(v_new) and float(v_new) >= float(value) + 1e-4 * t * slope:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        x = x_new
        if float((t * step).abs().max()) < 1e-13:
            break
        # a flat ridge (e.g. a Normal truncated deep in its tail, where only (μ/σ², ·) is identified): stop
        # once several steps in a row change f by less than ~1e-13 relative
        stalled = stalled + 1 if float(v_new) - float(value) < 1e-13 * (1.0 + abs(float(value))) else 0
        if stalled >= 3:
            break
    return x


def best_params(model: ExpNormalModel, family: "type[Surrogate] | str", order: int = 16) -> Surrogate:
    """The family member with the largest exact (quadrature) ELBO: Newton's method in unconstrained coordinates
    from each of the family's initial guesses, best result kept."""
    family = _family_of(family)
    best, best_value = None, -math.inf
    for guess in [*family.initial_guesses(model), family.starting_point(model)]:
        eta = _newton_maximize(lambda e: _elbo_nodes(model, family._from_search_coords(e), order), guess._search_coords())
        with torch.no_grad():
            q = family._from_search_coords(eta).as_floats()
        value = elbo_quadrature(model, q, order)
        if value > best_value:
            best, best_value = q, value
    assert best is not None
    return best


@dataclass(frozen=True)
class ElboSurface:
    """ELBO over a grid of a family's parameters. 1-D: elbo[i] at axes[0][i]; 2-D: elbo[i, j] at (axes[0][i],
    axes[1][j]). log_scale[k] says whether axes[k] is best drawn on a log axis."""

    family: str
    param_names: tuple[str, ...]
    axes: tuple[np.ndarray, ...]
    log_scale: tuple[bool, ...]
    elbo: np.ndarray
    best: Mapping[str, float]
    best_elbo: float
    log_marginal: float


def _default_grid(model: ExpNormalModel, family: type[Surrogate], n: int) -> tuple[np.ndarray, ...]:
    axes = []
    for r in family.param_ranges(model).values():
        axes.append(np.geomspace(r.lo, r.hi, n) if r.log else np.linspace(r.lo, r.hi, n))
    return tuple(axes)


def elbo_surface(
    model: ExpNormalModel,
    family: "type[Surrogate] | str",
    grid: Sequence[np.ndarray] | None = None,
    order: int = 8,
    best: Surrogate | None = None,
) -> ElboSurface:
    """Exact ELBO on a grid of the family's parameters (default: `param_ranges`, 241 points in 1-D, 61×61 in 2-D),
    vectorised over the grid. `best` may be passed in if already known (saves a `best_params` call)."""
    family = _family_of(family)
    k = len(family.param_names)
    if grid is None:
        grid = _default_grid(model, family, 241 if k == 1 else 61)
    axes = tuple(np.asarray(g, dtype=np.float64) for g in grid)
    if len(axes) != k:
        raise ValueError(f"{family.name} has {k} parameter(s), got a {len(axes)}-D grid")
    mesh = np.meshgrid(*axes, indexing="ij")
    flat = {name: torch.as_tensor(m.reshape(-1, 1)) for name, m in zip(family.param_names, mesh)}  # (G, 1) each
    with torch.no_grad():
        values = _elbo_nodes(model, family(**flat), order).numpy().reshape(mesh[0].shape)
    best = best if best is not None else best_params(model, family)
    ranges = family.param_ranges(model)
    return ElboSurface(
        family=family.name,
        param_names=family.param_names,
        axes=axes,
        log_scale=tuple(ranges[n].log for n in family.param_names),
        elbo=values,
        best=best.params(),
        best_elbo=elbo_quadrature(model, best),
        log_marginal=model.log_marginal_closed_form(),
    )


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
) -> Iterator[FitStep]:
    """Stochastic gradient ascent on the reparameterised Monte Carlo ELBO; a generator, one `FitStep` per step.

    Each step draws n_samples base-noise values, pushes them through q's reparameterisation (so z depends
    differentiably on the parameters), averages log p(z, D) − log q(z), and takes an Adam step (Kingma & Ba 2015,
    Algorithm 1; ascent) in unconstrained coordinates (log rate, log σ).  With `decay`, the learning rate follows
    a cosine from lr to 0, so the last steps average the gradient noise out instead of rattling around the optimum.
    """
    family = _family_of(family)
    q0 = init if isinstance(init, Surrogate) else family(**init)
    if not isinstance(q0, family):
        raise TypeError(f"init is a {type(q0).__name__}, expected a {family.__name__}")
    eta = q0.to_unconstrained().detach().clone()  # (P,)
    m1, m2 = torch.zeros_like(eta), torch.zeros_like(eta)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    gen = torch.Generator().manual_seed(int(seed))
    for step in range(1, int(steps) + 1):
        eta_g = eta.clone().requires_grad_(True)
        q = family.from_unconstrained(eta_g)
        z = q.rsample(q.base_noise(int(n_samples), gen))  # (n,), differentiable in eta
        elbo = (model.log_joint(z) - q.log_prob(z)).mean()
        (grad,) = torch.autograd.grad(elbo, eta_g)
        estimate = float(elbo.detach())  # a host scalar per step is fine here: CPU tensors, no device sync
        if torch.isfinite(grad).all():
            m1 = beta1 * m1 + (1 - beta1) * grad
            m2 = beta2 * m2 + (1 - beta2) * grad * grad
            m_hat, v_hat = m1 / (1 - beta1**step), m2 / (1 - beta2**step)
            lr_t = lr * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / steps)) if decay else lr
            eta = eta + lr_t * m_hat / (v_hat.sqrt() + eps)
        with torch.no_grad():
            params = family.from_unconstrained(eta).params()
        yield FitStep(step=step, params=params, elbo_estimate=estimate)


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
