"""The ELBO (by quadrature, closed form and Monte Carlo), KL(q ‖ p(z|D)), the family's best q and the ELBO surface
over q's parameters."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from .numerics import LOG_2PI, _composite_gl, _edges_uniform_and_graded
from .model import ExpNormalModel
from .surrogates import Surrogate, _family_of


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
        eta = _newton_maximize(
            lambda e: _elbo_nodes(model, family._from_search_coords(e), order), guess._search_coords()
        )
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
