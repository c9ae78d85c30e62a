"""Shared numerics of the 1-D explorer: float64 tensors, Gauss–Legendre rules in log space."""

from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np
import torch


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
