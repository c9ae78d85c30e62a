"""A Gaussian mixture on 2-D points, fitted by EM (seed 002: p(x) = Σ_z p(x|z) p(z), z a categorical "which
cluster", p(x|z) a full-covariance Gaussian). Its posterior p(z|x) is exact (the responsibilities), its
log-likelihood too: the contrast with the VAE, whose p(x) needs importance sampling and whose q(z|x) is amortized.

EM (Dempster, Laird & Rubin 1977): the E step computes the responsibilities r_nk = p(z=k | x_n) under the current
parameters, the M step maximises Q = Σ_n Σ_k r_nk log(π_k N(x_n; μ_k, Σ_k)) in closed form:
    N_k = Σ_n r_nk,   π_k = N_k / N,   μ_k = Σ_n r_nk x_n / N_k,   Σ_k = Σ_n r_nk (x_n − μ_k)(x_n − μ_k)ᵀ / N_k.
Each step never lowers the log-likelihood. Covariances are kept from collapsing onto a point by a floor on
their eigenvalues; the M step then maximises Q over covariances that respect the floor (the eigenvalues of Σ_k
clipped from below: the constrained maximiser), so EM stays monotone. All in float64, log-likelihoods in nats
per point."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LOG_2PI = math.log(2 * math.pi)
MAX_COMPONENTS = 20
FLOOR_SHARE = 1e-4  # the eigenvalue floor, as a share of the data's mean per-coordinate variance


@dataclass(frozen=True, eq=False)
class MixtureParams:
    """One frozen copy of a mixture's parameters (safe to hand to another thread)."""

    weights: np.ndarray  # (K,) π
    means: np.ndarray  # (K, 2) μ
    covs: np.ndarray  # (K, 2, 2) Σ

    def component_log_pdf(self, x: np.ndarray) -> np.ndarray:
        """log π_k + log N(x_n; μ_k, Σ_k), (N, K)."""
        a, b, c = self.covs[:, 0, 0], self.covs[:, 0, 1], self.covs[:, 1, 1]  # (K,)
        det = a * c - b * b
        d = x[:, None, :] - self.means[None]  # (N, K, 2)
        maha = (c * d[..., 0] ** 2 - 2 * b * d[..., 0] * d[..., 1] + a * d[..., 1] ** 2) / det  # (N, K)
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights)
        return log_w - LOG_2PI - 0.5 * np.log(det) - 0.5 * maha

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """log p(x_n) = log Σ_k π_k N(x_n; μ_k, Σ_k), (N,), exact."""
        return _logsumexp(self.component_log_pdf(np.asarray(x, float)))

    def responsibilities(self, x: np.ndarray) -> np.ndarray:
        """The exact posterior p(z = k | x_n), (N, K)."""
        lp = self.component_log_pdf(np.asarray(x, float))
        return np.exp(lp - _logsumexp(lp)[:, None])

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws of x: z ~ Categorical(π), x ~ N(μ_z, Σ_z), (n, 2)."""
        z = rng.choice(len(self.weights), size=n, p=self.weights / self.weights.sum())
        chol = np.linalg.cholesky(self.covs)  # (K, 2, 2)
        return self.means[z] + np.einsum("nij,nj->ni", chol[z], rng.standard_normal((n, 2)))


def _logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(1)
    m = np.where(np.isfinite(m), m, 0.0)
    return m + np.log(np.exp(a - m[:, None]).sum(1))


class GaussianMixture:
    """K full-covariance components on ``points`` (N, 2). Starts from K points picked by k-means++ (seeded),
    the data's covariance for each component and equal weights; ``em_step()`` does one E + M step."""

    def __init__(self, points: np.ndarray, k: int, seed: int = 0):
        if not 1 <= int(k) <= MAX_COMPONENTS:
            raise ValueError(f"{k} components: between 1 and {MAX_COMPONENTS}")
        self.k = int(k)
        self.steps = 0
        self._rng = np.random.default_rng(seed)
        self.set_points(points)
        pts = self.points
        means = _kmeans_pp(pts, self.k, self._rng)
        cov = np.cov(pts.T) if len(pts) > 1 else np.eye(2)
        covs = np.repeat(self._clip(cov[None]), self.k, 0)
        self.params = MixtureParams(np.full(self.k, 1.0 / self.k), means, covs)
        self._e_step()

    def set_points(self, points: np.ndarray) -> None:
        """New data (drawn, loaded): the parameters stay, the responsibilities and log-likelihood follow."""
        pts = np.asarray(points, float).reshape(-1, 2)
        if len(pts) < self.k:
            raise ValueError(f"{len(pts)} points for {self.k} components: at least one point per component")
        self.points = pts
        var = float(pts.var(0).mean()) if len(pts) > 1 else 1.0
        self.floor = FLOOR_SHARE * max(var, 1e-12)
        if hasattr(self, "params"):
            self.params = MixtureParams(self.params.weights, self.params.means, self._clip(self.params.covs))
            self._e_step()

    def _clip(self, covs: np.ndarray) -> np.ndarray:
        """Each Σ with its eigenvalues raised to the floor (the M step's constraint)."""
        sym = 0.5 * (covs + np.swapaxes(covs, 1, 2))
        lam, u = np.linalg.eigh(sym)
        lam = np.maximum(lam, self.floor)
        return np.einsum("kij,kj,klj->kil", u, lam, u)

    def _e_step(self) -> None:
        lp = self.params.component_log_pdf(self.points)  # (N, K)
        log_px = _logsumexp(lp)  # (N,)
        self.resp = np.exp(lp - log_px[:, None])
        self.log_likelihood = float(log_px.mean())  # nats per point

    def em_step(self) -> float:
        """One EM step; returns the log-likelihood (nats per point) under the new parameters."""
        x, r = self.points, self.resp
        nk = r.sum(0)  # (K,)
        old = self.params
        live = nk > 1e-10 * len(x)
        safe = np.where(live, nk, 1.0)
        means = np.where(live[:, None], (r.T @ x) / safe[:, None], old.means)
        d = x[:, None, :] - means[None]  # (N, K, 2)
        covs = np.einsum("nk,nki,nkj->kij", r, d, d) / safe[:, None, None]
        covs = np.where(live[:, None, None], self._clip(covs), old.covs)  # an empty component keeps its shape
        self.params = MixtureParams(nk / nk.sum(), means, covs)
        self.steps += 1
        self._e_step()
        return self.log_likelihood


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; scikit-learn's greedy variant): each next centre is
    the best of 2 + ⌊ln k⌋ candidates drawn ∝ squared distance to the nearest centre, the one that lowers the
    total squared distance most. Picking two starts in one cluster is then rare."""
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    trials = 2 + int(math.log(k))
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:
            centres.append(x[rng.integers(len(x))])
            continue
        cand = rng.choice(len(x), size=trials, p=d2 / total)
        new_d2 = np.minimum(d2[None], ((x[None] - x[cand][:, None]) ** 2).sum(2))  # (trials, N)
        best = int(np.argmin(new_d2.sum(1)))
        centres.append(x[cand[best]])
        d2 = new_d2[best]
    return np.asarray(centres, float)


def ellipse(mean, cov, scale: float = 2.0, n: int = 64) -> np.ndarray:
    """The closed curve {mean + scale·Σ^½ u : |u| = 1}, (n + 1, 2): the ``scale``-σ contour of N(mean, cov)."""
    lam, u = np.linalg.eigh(np.asarray(cov, float))
    t = np.linspace(0, 2 * math.pi, n + 1)
    circle = np.stack([np.cos(t), np.sin(t)], 1) * np.sqrt(np.maximum(lam, 0))[None] * scale
    return np.asarray(mean, float)[None] + circle @ u.T
