"""PCA of posterior means, for showing a latent space of dimension > 2 in a plane (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PCAPlane:
    mean: np.ndarray  # (d,)
    components: np.ndarray  # (2, d) orthonormal rows: PC1, PC2
    explained: np.ndarray  # (2,) fraction of variance explained by each

    @classmethod
    def fit(cls, z: np.ndarray, like: "PCAPlane | None" = None) -> "PCAPlane":
        """The plane of the first two principal components of z (n, d). ``like``: the previous plane of a series
        (one fit per training snapshot); each component's sign then follows it, so the picture does not mirror
        from one snapshot to the next."""
        z = np.asarray(z, np.float64)
        d = z.shape[1]
        mean = z.mean(0)
        if d == 1:
            return cls(mean, np.array([[1.0], [0.0]]), np.array([1.0, 0.0]))
        if d == 2:  # the plane is the latent space itself: no rotation, so axes stay z₁, z₂
            var = z.var(0)
            return cls(np.zeros(2), np.eye(2), var / max(var.sum(), 1e-12))
        # The eigenvectors of the (d, d) scatter matrix rather than an SVD of the (n, d) points: the same axes, and
        # numpy's SVD runs ~40x slower once torch is loaded in the process (130 ms for 5,000 × 20 on this machine,
        # against 0.2 ms here), which made every redraw of a d > 2 scatter that long.
        c = z - mean
        lam, vecs = np.linalg.eigh(c.T @ c)  # ascending
        var = np.clip(lam[::-1], 0.0, None)
        vt = vecs[:, ::-1].T
        comps = vt[:2] * np.sign(vt[:2, :1] + 1e-30)  # fixed sign so the picture does not flip between fits
        if like is not None and like.components.shape == comps.shape:
            comps = comps * np.where(np.sum(comps * like.components, axis=1, keepdims=True) < 0, -1.0, 1.0)
        return cls(mean, comps, var[:2] / max(var.sum(), 1e-12))

    def to_plane(self, z: np.ndarray) -> np.ndarray:  # (n, d) -> (n, 2)
        return (np.asarray(z, np.float64) - self.mean) @ self.components.T

    def from_plane(self, xy: np.ndarray) -> np.ndarray:  # (n, 2) -> (n, d): the mean plus the in-plane offset
        return self.mean + np.asarray(xy, np.float64).reshape(-1, 2) @ self.components


def plane_to_latent(plane: PCAPlane | None, xy: np.ndarray, d: int) -> np.ndarray:
    """Plot points (n, 2) as latent vectors (n, d), float32: through ``plane`` when it is a plane of this dimension,
    else the plot's axes are z₁, z₂ and the other coordinates 0 (no scatter drawn yet)."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    if plane is not None and plane.components.shape[1] == d:
        return plane.from_plane(xy).astype(np.float32)
    out = np.zeros((len(xy), d), np.float32)
    out[:, : min(2, d)] = xy[:, : min(2, d)]
    return out


def latent_to_plane(plane: PCAPlane | None, z: np.ndarray) -> np.ndarray:
    """Latent vectors (n, d) as plot points (n, 2): the inverse of ``plane_to_latent`` on the plane."""
    z = np.asarray(z, np.float64)
    z = z.reshape(-1, z.shape[-1])
    if plane is not None and plane.components.shape[1] == z.shape[1]:
        return plane.to_plane(z)
    out = np.zeros((len(z), 2))
    out[:, : min(2, z.shape[1])] = z[:, :2]
    return out


def sigma_ellipse(plane: PCAPlane | None, mu: np.ndarray, log_var: np.ndarray, k: float = 1.0, n: int = 129):
    """The k-σ ellipse (n, 2), closed, of q = N(μ, diag σ²) seen on the plot's plane: its mean at
    ``latent_to_plane(μ)`` and its covariance projected, P diag(σ²) Pᵀ with P the plane's (2, d) axes (for d = 2
    without a fitted plane, the axis-aligned ellipse μ + k·σ ⊙ (cos t, sin t))."""
    mu = np.asarray(mu, np.float64).reshape(-1)
    d = len(mu)
    if plane is not None and plane.components.shape[1] == d:
        axes = plane.components
    else:
        axes = np.zeros((2, d))
        axes[0, 0] = 1.0
        if d > 1:
            axes[1, 1] = 1.0
    cov = (axes * np.exp(np.asarray(log_var, np.float64).reshape(-1))) @ axes.T  # (2, 2)
    lam, vec = np.linalg.eigh(cov)
    t = np.linspace(0.0, 2 * np.pi, n)
    circle = np.stack((np.cos(t), np.sin(t)), 1)  # (n, 2)
    return latent_to_plane(plane, mu[None]) + k * circle @ (vec * np.sqrt(np.clip(lam, 0, None))).T
