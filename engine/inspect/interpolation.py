"""Interpolation between two latent codes, linear or spherical, and the decoded path.

Spherical (slerp; White, 2016, "Sampling generative networks"): z(t) = sin((1−t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b,
Ω the angle between a and b. Under a Gaussian prior most mass lies near a shell of radius √d, and the straight
line between two codes cuts inside it; slerp stays near it. Both paths start at a and end at b exactly."""

from __future__ import annotations

import numpy as np

from ..snapshot import SnapshotModel

METHODS = ("linear", "spherical")


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, method: str = "linear") -> np.ndarray:
    """(steps, d) float32 codes from a to b (both included)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    t = np.linspace(0.0, 1.0, steps)[:, None]  # (steps, 1)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if method == "linear" or na == 0 or nb == 0:
        path = (1 - t) * a + t * b
    else:
        omega = np.arccos(np.clip(a @ b / (na * nb), -1.0, 1.0))
        if np.sin(omega) < 1e-6:  # (anti)parallel codes: no unique great circle; the line is the limit
            path = (1 - t) * a + t * b
        else:
            path = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    path[0], path[-1] = a, b  # exactly the end points
    return path.astype(np.float32)


def interpolation(
    model: SnapshotModel, a: np.ndarray, b: np.ndarray, steps: int = 9, method: str = "linear", label=None
) -> tuple[np.ndarray, np.ndarray]:
    """(codes (steps, d), mean images (steps, C, H, W)) along the path from a to b; ``label``: a conditional
    model's class (one for the whole path)."""
    z = interpolate(a, b, steps, method)
    return z, model.decode(z, None if not model.n_classes else label)
