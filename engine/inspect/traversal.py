"""Latent traversals: row i of the grid varies z_i from −span to +span prior standard deviations around a point
(the prior is N(0, I), so one prior s.d. is 1), the other coordinates fixed; rows ordered by that dimension's KL,
largest first, so the dimensions the model uses come first and the inactive ones last."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..objectives import ACTIVE_UNIT_THRESHOLD
from ..snapshot import SnapshotModel


@dataclass(frozen=True)
class Traversal:
    images: np.ndarray  # (rows, steps, C, H, W) mean images in [0, 1]; row r varies dimension dims[r]
    dims: np.ndarray  # (rows,) int64 latent dimension of each row, by KL, largest first
    kl: np.ndarray  # (rows,) float64 that dimension's mean KL, nats
    inactive: np.ndarray  # (rows,) bool: not an active unit (Cov_x(E_q[z_i|x]) ≤ ACTIVE_UNIT_THRESHOLD; Burda et al.)
    offsets: np.ndarray  # (steps,) float32 offsets from the centre, in prior standard deviations
    centre: np.ndarray  # (d,) float32 the point traversed around
    label: int | None  # the class a conditional model decoded for (None: not conditional)


def traversal_order(kl_per_dim: np.ndarray) -> np.ndarray:
    """Dimensions by mean KL, largest first (ties: the lower index first)."""
    kl = np.asarray(kl_per_dim, np.float64)
    return np.lexsort((np.arange(len(kl)), -kl)).astype(np.int64)


def traversal(
    model: SnapshotModel,
    centre: np.ndarray,
    kl_per_dim: np.ndarray,
    au_variance: np.ndarray,
    steps: int = 7,
    span: float = 3.0,
    rows: int | None = None,
    label: int | None = None,
) -> Traversal:
    """The traversal grid around ``centre`` (d,), for the ``rows`` dimensions of largest KL (all by default), from
    an epoch's ``kl_per_dim`` and ``au_variance`` (EpochSummary); ``label``: the class a conditional model decodes
    for (it needs one)."""
    d = model.latent_dim
    centre = np.asarray(centre, np.float32).reshape(d)
    kl = np.asarray(kl_per_dim, np.float64).reshape(d)
    if model.n_classes and label is None:
        raise ValueError(f"this model is conditional on a class label (0..{model.n_classes - 1}): give one")
    order = traversal_order(kl)[: d if rows is None else max(0, min(rows, d))]
    offsets = np.linspace(-span, span, steps).astype(np.float32)
    z = np.repeat(centre[None, None], len(order), 0).repeat(steps, 1)  # (rows, steps, d)
    z[np.arange(len(order)), :, order] += offsets
    y = None if not model.n_classes else int(label)
    images = model.decode(z.reshape(-1, d), y).reshape(len(order), steps, *model.config.image_shape)
    inactive = np.asarray(au_variance, np.float64).reshape(d)[order] <= ACTIVE_UNIT_THRESHOLD
    return Traversal(images, order, kl[order], inactive, offsets, centre, y)
