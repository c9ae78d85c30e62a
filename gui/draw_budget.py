"""How much the window may draw while training runs, and what it draws first.

On a 2-core laptop the trainer's OpenMP team uses both cores, and its Python thread needs the GIL between torch
ops. Each background redraw (pyqtgraph paints largely in Python) takes the GIL and a core for a few
milliseconds, and the trainer stalls meanwhile. Measured with benchmarks/gui_responsiveness.py (Fashion-MNIST
MLP): a window redrawing one plot per tick at a fixed 8 Hz used 11–12% of a core and cost training 12–18% of
its throughput; the loss follows the number of redraws as much as their CPU time, so fewer, batched redraws
cost less than many small ones.

``DrawBudget`` is a token bucket on the GUI thread's own CPU time (``time.thread_time``, which counts Qt's
painting too, since it runs on this thread): each wall-clock second earns ``share`` seconds of CPU; everything
the thread burns is paid for, whoever asked for it; background redraws run only while the balance is positive.
What the user asks for (a click, a zoom) is never throttled: it only delays the next background redraw.

``RedrawScheduler`` spends what the budget allows on the job most overdue relative to its period, and while
training never redraws a job more often than its period: the scatter up to twice a second (once per snapshot),
all curves together every second or two, the Generated image and the Inside page once a second, the image grids every
ten seconds. Paused, stopped or idle, everything redraws at once.

Pure Python, no Qt: the window calls ``RedrawScheduler.tick()`` from its timer, on the GUI thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


class DrawBudget:
    """``allow(limited)``: may the next background redraw run now?

    ``share``: the fraction of one core the thread may use while limited (default 5%). ``burst_s``: most CPU
    seconds saved up, so a quiet spell buys a few draws at once but never a long one. ``debt_s``: the deepest
    the balance goes, so one expensive user action (a big grid, a resize) delays redraws by at most
    ``debt_s / share`` seconds. The clocks are injectable for tests."""

    def __init__(
        self,
        share: float = 0.05,
        burst_s: float = 0.03,
        debt_s: float = 0.1,
        wall: Callable[[], float] = time.perf_counter,
        cpu: Callable[[], float] = time.thread_time,
    ):
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.share, self.burst_s, self.debt_s = share, burst_s, debt_s
        self._wall, self._cpu = wall, cpu
        self._t: float | None = None
        self._c = 0.0
        self.balance = burst_s
        self.spent = 0.0  # CPU seconds of this thread seen while limited (for benchmarks)
        self.elapsed = 0.0  # wall seconds seen while limited

    def allow(self, limited: bool) -> bool:
        t, c = self._wall(), self._cpu()
        if self._t is None:
            self._t, self._c = t, c
            return True
        dt, dc = t - self._t, c - self._c
        self._t, self._c = t, c
        if not limited:  # idle, paused or finished: draw freely, and start the next run with a full bucket
            self.balance = self.burst_s
            return True
        self.spent += dc
        self.elapsed += dt
        self.balance = min(self.burst_s, max(-self.debt_s, self.balance + dt * self.share - dc))
        return self.balance > 0.0

    def used_share(self) -> float:
        """CPU the thread used while limited, as a share of the wall time (what the cap aims at)."""
        return self.spent / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class RedrawJob:
    """``draw()`` redraws one thing if it has something new and returns whether it drew; ``period_s`` is the
    shortest interval between two of its redraws while training (and its weight when the budget is tight)."""

    name: str
    draw: Callable[[], bool]
    period_s: float


class RedrawScheduler:
    """At most one job per tick: the one most overdue relative to its period, among those with something new
    whose period has passed. While not ``limited`` every tick may draw any job (the budget only keeps score), so
    an idle or paused window stays snappy."""

    def __init__(
        self, jobs: list[RedrawJob], budget: DrawBudget | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.jobs = list(jobs)
        self.budget = budget if budget is not None else DrawBudget()
        self._clock = clock
        self.last_drawn: dict[str, float] = {j.name: float("-inf") for j in self.jobs}
        self.counts: dict[str, int] = {j.name: 0 for j in self.jobs}

    def tick(self, limited: bool) -> str | None:
        """Called by the window's timer. Returns the name of the job that drew, or None."""
        if not self.budget.allow(limited):
            return None
        now = self._clock()
        for job in sorted(self.jobs, key=lambda j: (self.last_drawn[j.name] - now) / j.period_s):
            if limited and now - self.last_drawn[job.name] < job.period_s:
                continue  # while training, no job redraws more often than its period
            if job.draw():
                self.last_drawn[job.name] = now
                self.counts[job.name] += 1
                return job.name
        return None
