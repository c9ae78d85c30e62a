"""Which points of a latent snapshot are worth drawing: no more than a repaint can afford, and no more than can be
seen. Pure numpy, no Qt."""

from __future__ import annotations

import numpy as np


def class_capped(labels: np.ndarray | None, n: int, n_max: int) -> np.ndarray:
    """Indices (in order) of at most about ``n_max`` of ``n`` points: the first of each class in the same share
    for every class, and at least one of each, so that no class disappears from the plot however rare it is."""
    if n <= n_max:
        return np.arange(n)
    if labels is None:
        return np.arange(n_max)
    keep = np.zeros(n, bool)
    share = n_max / n
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        keep[members[: max(1, int(len(members) * share))]] = True
    return np.flatnonzero(keep)


def visible_points(xy: np.ndarray, view: tuple[float, float, float, float], pixel: tuple[float, float]) -> np.ndarray:
    """Indices of the points of one class worth drawing: inside the view (x0, x1, y0, y1), and one per screen
    pixel (``pixel``: a pixel's size in plot units), the first, since a same-coloured point on the same pixel
    cannot be seen."""
    x0, x1, y0, y1 = view
    inside = np.flatnonzero((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1))
    pw, ph = (max(float(v), 1e-12) for v in pixel)
    cells = np.floor((xy[inside] - (x0, y0)) / (pw, ph)).astype(np.int64)  # (n, 2) pixel of each point
    _, first = np.unique(cells[:, 0] * (2**31) + cells[:, 1], return_index=True)
    return inside[np.sort(first)]
