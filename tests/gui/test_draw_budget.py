"""The GUI's drawing budget: a token bucket on the GUI thread's CPU while training runs, and the scheduler that
spends it. Pure-Python parts with fake clocks, then through the real window while a run trains."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gui.draw_budget import DrawBudget, RedrawJob, RedrawScheduler
from .conftest import SMALL_TRAIN


class FakeClocks:
    def __init__(self):
        self.wall = 0.0
        self.cpu = 0.0


def make_budget(share=0.05, **kw):
    c = FakeClocks()
    return DrawBudget(share=share, wall=lambda: c.wall, cpu=lambda: c.cpu, **kw), c


def test_budget_caps_the_cpu_share_over_time():
    b, c = make_budget(share=0.05)
    assert b.allow(limited=True)  # first call only starts the clocks
    drawn = 0
    for _ in range(800):  # 100 s of an 8 Hz timer; every allowed draw burns 12 ms of CPU
        c.wall += 0.125
        if b.allow(limited=True):
            drawn += 1
            c.cpu += 0.012
    spent = drawn * 0.012
    assert spent / 100.0 == pytest.approx(0.05, abs=0.004)  # ~5% of a core, not the 9.6% an uncapped timer burns
    assert b.used_share() == pytest.approx(spent / 100.0, rel=0.02)
    assert 380 <= drawn <= 450


def test_budget_is_unlimited_when_not_training_and_refills():
    b, c = make_budget(share=0.05, burst_s=0.03)
    b.allow(limited=True)
    c.wall += 0.125
    c.cpu += 0.5  # an expensive moment while training: deep in debt
    assert not b.allow(limited=True)
    assert b.balance == pytest.approx(-b.debt_s)  # debt is floored: one big action delays redraws a bounded time
    for _ in range(5):
        c.wall += 0.125
        c.cpu += 0.05
        assert b.allow(limited=False)  # paused / idle: every tick may draw, nothing is counted
    assert b.balance == pytest.approx(b.burst_s)
    c.wall += 0.125
    assert b.allow(limited=True)  # a new run starts with a full bucket


def test_budget_recovers_from_debt_in_bounded_time():
    b, c = make_budget(share=0.05, debt_s=0.1)
    b.allow(limited=True)
    c.wall += 0.1
    c.cpu += 1.0
    b.allow(limited=True)
    waited = 0.0
    while not b.allow(limited=True):
        c.wall += 0.125
        waited += 0.125
    assert waited == pytest.approx(0.1 / 0.05, abs=0.2)  # debt_s / share


def test_budget_rejects_a_bad_share():
    with pytest.raises(ValueError, match="share"):
        DrawBudget(share=0.0)
    with pytest.raises(ValueError, match="share"):
        DrawBudget(share=1.5)


def test_scheduler_shares_draws_in_proportion_to_the_periods():
    now = [0.0]
    b, c = make_budget(share=0.05)
    jobs = [RedrawJob("fast", lambda: True, 0.5), RedrawJob("slow", lambda: True, 2.0)]
    s = RedrawScheduler(jobs, b, clock=lambda: now[0])
    for _ in range(2000):
        now[0] += 0.125
        c.wall = now[0]
        if s.tick(limited=True):
            c.cpu += 0.010
    # the budget allows ~5 draws/s; the periods ask for 2 + 0.5: both get some, in about a 4:1 ratio
    assert s.counts["slow"] > 0
    assert s.counts["fast"] / s.counts["slow"] == pytest.approx(4.0, rel=0.25)


def test_scheduler_skips_jobs_with_nothing_new_and_draws_one_per_tick():
    calls = []
    dirty = {"a": False, "b": True}

    def job(name):
        def draw():
            calls.append(name)
            if dirty[name]:
                dirty[name] = False
                return True
            return False

        return draw

    s = RedrawScheduler([RedrawJob("a", job("a"), 1.0), RedrawJob("b", job("b"), 1.0)], DrawBudget(share=1.0))
    assert s.tick(limited=False) == "b"  # "a" had nothing new: asked, skipped
    assert calls == ["a", "b"]
    assert s.tick(limited=False) is None
    dirty["a"] = dirty["b"] = True
    assert s.tick(limited=False) in ("a", "b")
    assert sum(dirty.values()) == 1  # one heavy draw per tick, never two


# -- through the window ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_window_holds_redraws_while_over_budget_and_resumes(qtbot, make_window):
    """While a run trains and the GUI thread is over its CPU share, the curves wait; once the share is earned back
    they catch up with every step trained meanwhile. Nothing is lost, only drawn later."""
    w = make_window(train=dataclasses.replace(SMALL_TRAIN, epochs=500))
    busy = [False]
    cpu = [0.0]

    def fake_cpu():  # the window's own clock of its CPU use, driven by the test
        if busy[0]:
            cpu[0] += 1.0  # a second of CPU between any two ticks: always over budget while training
        return cpu[0]

    w.draw_budget._cpu = fake_cpu
    w.draw_budget.allow(limited=False)  # the clocks start now (a budget's very first call allows, unaccounted)
    w.start_training()
    qtbot.waitUntil(lambda: w.state.status == "running", timeout=20000)
    busy[0] = True
    qtbot.waitUntil(lambda: len(w.curves.steps) > 0, timeout=20000)  # data arrives (slots still run)
    drawn_before = dict(w.redraws.counts)
    x_before = w.curves.elbo.smooth.xData
    n_before = 0 if x_before is None else len(x_before)
    qtbot.wait(1500)
    assert w.state.status == "running"
    assert w.redraws.counts == drawn_before
    assert len(w.curves.steps) > n_before  # trained and received meanwhile
    x_now = w.curves.elbo.smooth.xData
    assert (0 if x_now is None else len(x_now)) == n_before  # but not drawn
    busy[0] = False  # the GUI thread goes quiet: the share is earned back within debt_s / share seconds
    qtbot.waitUntil(lambda: w.redraws.counts["curves"] > drawn_before["curves"], timeout=10000)
    w.session.pause()
    qtbot.waitUntil(lambda: w.state.status == "paused", timeout=10000)
    qtbot.waitUntil(lambda: not w.curves.dirty, timeout=10000)  # paused: unlimited, everything catches up
    xs = w.curves.elbo.smooth.xData
    assert np.array_equal(xs, w.curves.steps)
    w.session.stop()
    qtbot.waitUntil(lambda: not w.session.is_active(), timeout=10000)


@pytest.mark.slow
def test_window_draws_nothing_in_the_background_during_the_end_of_epoch_evaluation(qtbot, make_window):
    """Between an epoch's last metrics chunk and its EpochSummary the worker evaluates on the test set: the window
    holds its background redraws then (they would only slow the evaluation down) and catches up afterwards."""
    from engine.messages import EpochSummary, MetricsChunk, StateChanged

    w = make_window()
    spe = 10
    session = w.session
    session._on_message(StateChanged("running"))

    def chunk(first, last):
        steps = np.arange(first, last)
        e = -100.0 + steps * 0.1
        return MetricsChunk(steps, e, e - 5.0, np.full(len(steps), 5.0), 0, last, 10 * spe, spe, 1000.0, 1.0)

    session._on_message(chunk(0, 6))  # mid-epoch: drawn as usual
    qtbot.waitUntil(lambda: not w.curves.dirty, timeout=5000)
    session._on_message(chunk(6, spe))  # the epoch's last step: evaluation starts on the worker
    drawn = dict(w.redraws.counts)
    qtbot.wait(600)  # ~5 ticks of the refresh timer
    assert w.curves.dirty and w.redraws.counts == drawn
    kl = np.array([5.0, 0.001])
    session._on_message(EpochSummary(0, spe, -99.0, -98.0, -93.0, 5.0, -97.5, -98.1, 5, 0.1, kl, 1, kl, 1.0))
    try:  # the summary ends it: everything drawn, as soon as the draw budget allows (later on a busy machine)
        qtbot.waitUntil(lambda: not w.curves.dirty, timeout=20_000)
    except qtbot.TimeoutError:
        why = dict(evaluating=w.training.evaluating, counts=w.redraws.counts, balance=w.redraws.budget.balance)
        raise AssertionError(f"the curves were not redrawn after the evaluation: {why}") from None
    assert np.array_equal(w.curves.elbo.smooth.xData, np.arange(1, spe + 1))
    assert len(w.curves.epochs) == 1


def test_scheduler_keeps_each_job_to_its_period_while_training_only():
    now = [0.0]
    s = RedrawScheduler(
        [RedrawJob("scatter", lambda: True, 1.0), RedrawJob("curves", lambda: True, 1.5)],
        DrawBudget(share=1.0),
        clock=lambda: now[0],
    )
    drawn = []
    for _ in range(80):  # 10 s of an 8 Hz timer with an unlimited budget, while training
        now[0] += 0.125
        drawn.append((now[0], s.tick(limited=True)))
    times = {k: [t for t, name in drawn if name == k] for k in ("scatter", "curves")}
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(times["scatter"], times["scatter"][1:]))
    assert all(b - a >= 1.5 - 1e-9 for a, b in zip(times["curves"], times["curves"][1:]))
    assert len(times["scatter"]) >= 8 and len(times["curves"]) >= 5  # and they do get drawn that often
    n = sum(name is not None for _, name in drawn)
    for _ in range(8):  # paused or idle: every tick draws
        now[0] += 0.125
        assert s.tick(limited=False) is not None
    assert sum(s.counts.values()) == n + 8
