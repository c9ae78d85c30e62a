"""Plot ranges that follow the data with hysteresis (numbers only, no Qt).

A range that moves relabels and re-lays out its axis (and, for the latent plot, invalidates the manifold grid),
so the curves and the latent scatter move theirs only when the data leaves it or fills too little of it, and then
leave some headroom so that data which keeps growing is re-fitted only now and then."""

from __future__ import annotations

HEADROOM = 0.12  # fraction of the data's extent added on each side when a range is re-fitted


def needs_refit(view: tuple[float, float], lo: float, hi: float, max_loose: float, min_span: float = 0.0) -> bool:
    """True when [lo, hi] is not inside ``view``, or ``view`` is more than ``max_loose`` times as wide as the data."""
    v0, v1 = view
    return not (v0 <= lo and hi <= v1) or (v1 - v0) > max_loose * max(hi - lo, min_span)


def padded(lo: float, hi: float, min_span: float = 0.0) -> tuple[float, float]:
    """[lo, hi] widened by HEADROOM of its extent on each side."""
    pad = HEADROOM * max(hi - lo, min_span)
    return lo - pad, hi + pad
