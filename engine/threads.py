"""The one CPU-thread policy for every thread of this process that runs torch.

Why a policy at all (2-core machine, torch 2.13 CPU, libgomp, Fashion-MNIST MLP): torch's OpenMP workers spin at
barriers, so when another process holds a core, two threads ran an epoch in 6.6 s against 2.7 s with one; idle,
two threads are 1.6x faster than one. No fixed count is right, so:

- the training thread's count is chosen by a ``ThreadGovernor`` from the cores this process may use and from
  the training steps' own measured rate, and re-chosen while it runs (fewer when the rate drops, more again
  when probing shows they pay);
- every other thread that runs torch (the GUI thread, decoding a click, image grids, the posterior grid, the
  amortization study, loading) runs it single-threaded through ``use_helper_threads``: a second multi-threaded
  OpenMP team in the same process stops libgomp's spin-waiting and halves the trainer;
- on CUDA and MPS the governor leaves the CPU threads alone: one dispatching thread is what matters there;
- every thread that runs torch flushes denormal floats to zero (``flush_denormals``). Adam's moments of weights
  whose gradient is zero (the weights of dead ReLU units, of pixels that are blank in a batch) shrink
  geometrically into the denormal range, and x86 cores take microcode assists on them: after 2,800 steps of the
  Fashion-MNIST MLP, 154,000 of the 1.3 M moment entries were denormal, the fused Adam step took 1.15 ms instead
  of 0.34 ms, and compiled training steps ran at 39.1k samples/s instead of 52.5k (eager 37.2k instead of
  49.1k: benchmarks/engine_throughput.py, steps from 2,800 on). No result changes above 1e-38.

``torch.set_num_threads`` sets the calling thread's count and takes effect at the next parallel op, both ways."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable

_DEFAULT_THREADS: int | None = None


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """torch's own intra-op count for this machine, read before this module changed any thread's count."""
    global _DEFAULT_THREADS
    if _DEFAULT_THREADS is None:
        import torch

        _DEFAULT_THREADS = max(1, torch.get_num_threads())
    return _DEFAULT_THREADS


def flush_denormals() -> None:
    """Flush denormal floats to zero (FTZ and DAZ) on the calling thread. A thread inherits the floating-point
    mode of the thread that starts it, so this is called before a thread's first parallel op: the OpenMP workers
    it starts then flush too (the mode of workers started earlier cannot be changed from here)."""
    import torch

    torch.set_flush_denormal(True)  # False where the CPU has no such mode: denormals are then merely slow


def start_training_thread(gov: "ThreadGovernor | None") -> None:
    """The calling thread is about to run training steps: denormals flushed, the governor's thread count set."""
    flush_denormals()
    if gov is not None:
        set_training_threads(gov.threads)


def use_helper_threads() -> None:
    """Run torch single-threaded on the calling thread, settled now, before its first parallel op.

    Called at the start of every thread other than the training thread (and once on the GUI thread)."""
    import torch

    flush_denormals()
    default_threads()
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    torch.ones(8).add_(1)  # a thread's first parallel op fixes its OpenMP team: do it now, at one thread


def set_training_threads(n: int) -> None:
    """Set the calling (training) thread's intra-op count."""
    import torch

    default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def governor_for(device_type: str, threads: int = 0, max_threads: int | None = None) -> "ThreadGovernor | None":
    """The training thread's governor on a CPU (``threads`` 0 = automatic, else fixed; at most ``max_threads``,
    default the usable cores); None on a GPU, whose steps need one dispatching thread and whose step times are
    not known without a sync."""
    return ThreadGovernor(max_threads, fixed=threads or None) if device_type == "cpu" else None


class ThreadGovernor:
    """Chooses the training thread's intra-op thread count from its measured step rate.

    The trainer reports each step's samples and seconds (``step_done``); the rate is judged over windows of at
    least ``window_s`` seconds of stepping: a second averages out the window's drawing bursts (0.25 s windows took
    them for a lost core and moved half the steps to one thread). Between probes the count holds. A probe runs
    one window at a neighbouring count and keeps it when its rate beats the held count's last window by
    ``margin``; a probe that is clearly losing (below ``give_up`` times that rate after ``min_steps`` steps or
    an eighth of a window) ends at once, so a losing probe costs a few steps, not a window. Probes come:
    - at once when the rate drops below ``drop`` times its running level (someone took a core: try fewer);
    - after the first window (a quarter of ``window_s``: when another process already holds a core, a collapsed
      OpenMP team can run 100× slower, and the first probe down should come after a step or two, not a second's
      worth), then every ``probe_s`` seconds, the period doubling after each lost probe up to
      ``max_probe_s``: upwards below the maximum (a freed core does not speed up fewer threads, so only a probe
      finds it), downwards at it.
    The first probe (itself a quarter window) is kept only when it at least doubles the rate (``first_margin``):
    it is there for a collapsed team, many times slower, and the first quarter second of a run in the window is
    slowed by the window's first draws, which made two threads look worse than one by 10–25%.
    A probe that wins is followed at once by one more step in the same direction, and resets the period. A probe
    down that won is checked a quarter window later by a probe back up: the window it beat may have been slowed
    by a burst (an evaluation's end, a redraw, the host's other guests) rather than by a lost core, and waiting
    ``probe_s`` to find that out would leave a short run on too few threads. On an idle 2-core machine such
    bursts put 6–17% of a run's steps on one thread when the recheck waited a whole window.

    ``fixed`` pins the count (the user's override, at most ``max_threads``); the governor then never changes it. The count always stays
    within 1..``max_threads``."""

    def __init__(
        self,
        max_threads: int | None = None,
        fixed: int | None = None,
        *,
        window_s: float = 1.0,
        min_steps: int = 4,
        drop: float = 0.8,
        margin: float = 0.1,
        first_margin: float = 1.0,
        give_up: float = 0.7,
        probe_s: float = 4.0,
        max_probe_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_threads = max(1, int(max_threads or usable_cores()))
        self.fixed = None if not fixed else min(max(1, int(fixed)), self.max_threads)
        self.threads = self.fixed or self.max_threads
        self.window_s, self.min_steps = window_s, min_steps
        self.drop, self.margin, self.first_margin, self.give_up = drop, margin, first_margin, give_up
        self.probe_s, self.max_probe_s = probe_s, max_probe_s
        self._clock = clock
        self._period = probe_s
        self._next_probe = clock()
        self._level: float | None = None  # running rate (samples/s) at the held count
        self._probe_from: tuple[int, float, bool] | None = None  # (held count, its last rate, first?) while probing
        self._recheck = False  # a probe down won: probe back up after the next window
        self._win_samples = 0
        self._win_seconds = 0.0
        self._win_steps = 0
        self.changes: deque[tuple[float, int]] = deque(maxlen=256)  # (time, new count), the newest last

    @property
    def adaptive(self) -> bool:
        return self.fixed is None and self.max_threads > 1

    def interrupt(self) -> int:
        """A gap in training (pause, evaluation): the window being measured is discarded, and a probe under way
        ends undecided, back at the held count, which is returned for the calling thread to use. Otherwise the
        end-of-epoch evaluation ran at the probe's count: with the window open, 2 of 18 evaluations ran on one
        thread, in 0.51 and 1.09 s against 0.25–0.30 s."""
        self._new_window()
        if self._probe_from is not None:
            self._set(self._probe_from[0])
            self._probe_from = None
        return self.threads

    def _new_window(self) -> None:
        self._win_samples, self._win_seconds, self._win_steps = 0, 0.0, 0

    def step_done(self, samples: int, seconds: float) -> int:
        """Report one training step; returns the count the next step should use."""
        if not self.adaptive:
            return self.threads
        self._win_samples += samples
        self._win_seconds += seconds
        self._win_steps += 1
        rate = self._win_samples / max(self._win_seconds, 1e-12)
        quarter = self._level is None or self._recheck  # the first window, and the one before a recheck
        full = self._win_seconds >= (self.window_s / 4 if quarter else self.window_s)
        if self._probe_from is not None and not full:
            started = self._win_steps >= self.min_steps or self._win_seconds >= self.window_s / 8
            full = started and rate < self.give_up * self._probe_from[1]
        if full:
            self._new_window()
            self._judge(rate)
        return self.threads

    # -- decisions -----------------------------------------------------------------------------------------
    def _judge(self, rate: float) -> None:
        now = self._clock()
        if self._probe_from is not None:
            held, held_rate, first = self._probe_from
            self._probe_from = None
            margin = self.first_margin if first else self.margin
            if rate > held_rate * (1.0 + margin):  # the probe won: keep it and go on the same way
                step = self.threads - held
                self._recheck = step < 0
                self._level = rate
                self._period = self.probe_s
                self._next_probe = now + self.probe_s
                if 1 <= self.threads + step <= self.max_threads:
                    self._start_probe(self.threads + step, rate)
            else:  # the probe lost: back, and probe less often (the first probe, which asked for more, does not count)
                self._set(held)
                self._level = held_rate
                self._next_probe = now + self._period
                if not first:
                    self._period = min(self._period * 2.0, self.max_probe_s)
            return
        if self._level is None:  # the first window (a quarter one): a collapsed team? The probe's end sets the level
            self._start_probe(self.threads - 1, rate, first=True)
            return
        if rate < self.drop * self._level and self.threads > 1:
            self._start_probe(self.threads - 1, rate)
            return
        self._level = 0.7 * self._level + 0.3 * rate
        if self._recheck and self.threads < self.max_threads:
            self._recheck = False
            self._start_probe(self.threads + 1, rate)
        elif now >= self._next_probe:
            self._start_probe(self.threads + 1 if self.threads < self.max_threads else self.threads - 1, rate)

    def _start_probe(self, target: int, held_rate: float, first: bool = False) -> None:
        self._probe_from = (self.threads, held_rate, first)
        self._set(target)

    def _set(self, n: int) -> None:
        if n != self.threads:
            self.threads = n
            self.changes.append((self._clock(), n))
