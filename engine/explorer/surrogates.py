"""The surrogate families q(z) on z ≥ 0: Exponential, Normal truncated to z ≥ 0, Log-Normal."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch

from .numerics import DTYPE, LOG_2PI, _array_api, _log_std_normal_pdf, _symmetric_rule, _t, _unit_rule

if TYPE_CHECKING:  # annotations only: the model module builds a TruncNormalQ at run time
    from .model import ExpNormalModel


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
    note: ClassVar[str] = (
        "The seed's family. Its mode is always at 0, so it cannot follow a posterior that peaks at z > 0."
    )
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
