"""The training-curves panel on its own: data in, ranges that keep the data in view and stay still otherwise
(a still axis is a cheap repaint: no tick relabelling, no relayout)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.messages import MetricsChunk
from gui.panels.curves import CurvesPanel
from gui.state import StudioState


def _chunk(first: int, n: int, level: float) -> MetricsChunk:
    steps = np.arange(first, first + n)
    rng = np.random.default_rng(first)
    elbo = level + rng.normal(0.0, 2.0, n)
    kl = np.full(n, 6.0) + rng.normal(0.0, 0.2, n)
    return MetricsChunk(steps, elbo, elbo - kl, kl, 0, first + n, 100_000, 469, 1000.0, 1.0)


@pytest.fixture
def panel(qtbot):
    p = CurvesPanel(StudioState())
    qtbot.addWidget(p)
    p.resize(1400, 320)
    p.show()
    qtbot.waitExposed(p)
    return p


def test_ranges_stay_still_while_new_data_fits_and_move_when_it_does_not(panel):
    panel.set_total_steps(100_000)  # a run of known length: x spans it all from the start
    panel.state.add_chunk(_chunk(0, 50, -400.0))
    for k in range(1, 40):  # the ELBO climbs, then levels off
        panel.state.add_chunk(_chunk(50 * k, 50, -400.0 + 150.0 * (1 - np.exp(-k / 5))))
    panel.refresh()
    vb = panel.elbo.vb
    (x0, x1), (y0, y1) = vb.viewRange()
    assert x0 <= 0 and x1 >= 100_000
    assert y0 < -280 and y1 > -250  # the smoothed curve is in view
    changes = []
    vb.sigRangeChanged.connect(lambda *_: changes.append(vb.viewRange()))
    for k in range(40, 60):  # more steps at the level reached: inside the current range
        panel.state.add_chunk(_chunk(50 * k, 50, -250.5))
        panel.refresh()
    assert changes == []  # nothing to re-fit: the axes stay as they are
    assert len(panel.elbo.smooth.xData) == 60 * 50  # while the curve did grow
    for k in range(60, 90):  # a new jump upwards, above the top of the range
        panel.state.add_chunk(_chunk(50 * k, 50, -150.0))
        panel.refresh()
    assert changes, "data left the view: the range must follow"
    (_, _), (y0, y1) = vb.viewRange()
    assert y1 > panel.smoothed["elbo"].values.max()


def test_without_a_run_length_x_follows_the_data(panel):
    panel.state.add_chunk(_chunk(0, 100, -300.0))
    panel.refresh()
    (_, x1), _ = panel.elbo.vb.viewRange()
    assert 100 <= x1 < 200
    for k in range(1, 20):
        panel.state.add_chunk(_chunk(100 * k, 100, -300.0))
        panel.refresh()
    (_, x1), _ = panel.elbo.vb.viewRange()
    assert x1 >= 2000


def test_a_long_climb_from_thousands_of_nats_below_is_not_flattened(panel):
    """A Gaussian or continuous-Bernoulli likelihood starts thousands of nats down and keeps climbing: the ELBO
    axis follows the curve after its first tenth instead of keeping the first steps' plunge in view."""
    n = 3000
    steps = np.arange(n)
    elbo = 1500.0 - 6500.0 * np.exp(-steps / 60.0)  # −5000 at step 0, about +1500 at the end
    for s in range(0, n, 100):
        sl = slice(s, s + 100)
        panel.state.add_chunk(
            MetricsChunk(steps[sl], elbo[sl], elbo[sl] + 5.0, np.full(100, 5.0), 0, s + 100, n, 469, 1000.0, 1.0)
        )
    panel.refresh()
    (_, _), (y0, y1) = panel.elbo.vb.viewRange()
    assert y1 > 1400 and y0 > 0  # the last 90% of the run fills the plot


def test_mi_beside_the_kl_only_for_epochs_that_measured_it(panel):
    from engine.messages import EpochSummary

    z = np.zeros(2)

    def epoch(i, mi):
        return EpochSummary(
            i, 10 * (i + 1), -90.0, -90.0, -85.0, 5.0, -89.0, -90.0, 5, 1.0, z, 2, z + 1, 1.0, mi, 5.0 - mi
        )

    st = panel.state
    st.add_epoch(epoch(0, float("nan")))  # e.g. from a checkpoint saved before the MI was measured
    panel.refresh()
    assert len(panel.test_mi.getData()[0] if panel.test_mi.getData()[0] is not None else []) == 0
    assert "I(x;z)" not in panel.caption.text()
    st.add_epoch(epoch(1, 3.25))
    panel.refresh()
    xs, ys = panel.test_mi.getData()
    assert list(xs) == [20.0] and list(ys) == [3.25]
    assert "KL 5.00 = I(x;z) 3.25 + KL(q(z) ‖ p(z)) 1.75" in panel.caption.text()
