"""The thread governor's decisions, on a fake clock with fake step rates, and the trainer following them."""

from __future__ import annotations

import threading

import pytest
import torch

from engine.config import ModelConfig, TrainConfig
from engine.messages import MetricsChunk, RunStarted
from engine.threads import ThreadGovernor, governor_for, use_helper_threads, usable_cores
from engine.trainer import Trainer

BATCH = 128


class Machine:
    """A fake CPU: ``rate(threads, t)`` samples/s; each step advances the fake clock by its own duration."""

    def __init__(self, rate):
        self.rate, self.t = rate, 0.0

    def clock(self) -> float:
        return self.t

    def run(self, gov: ThreadGovernor, until: float) -> list[tuple[float, int, int]]:
        """Steps until the fake time ``until``; returns (time, threads, samples) per step."""
        out = []
        while self.t < until:
            n = gov.threads
            dt = BATCH / self.rate(n, self.t)
            self.t += dt
            out.append((self.t, n, BATCH))
            gov.step_done(BATCH, dt)
        return out


def idle(n, t):  # 2 cores: two threads 1.8x one
    return {1: 20_000.0, 2: 36_000.0}[n]


def busy(n, t):  # one other busy process: the OpenMP team of two spins against it
    return {1: 19_000.0, 2: 2_000.0}[n]


def governor(machine, **kw) -> ThreadGovernor:
    kw.setdefault("max_threads", 2)
    return ThreadGovernor(clock=machine.clock, **kw)


def share_at(steps, n, t0, t1) -> float:
    """Fraction of the wall time in [t0, t1) spent at ``n`` threads."""
    spent = [dt for (t, k, _), dt in _durations(steps) if t0 <= t < t1 and k == n]
    total = [dt for (t, _, _), dt in _durations(steps) if t0 <= t < t1]
    return sum(spent) / sum(total)


def _durations(steps):
    prev = 0.0
    for s in steps:
        yield s, s[0] - prev
        prev = s[0]


def test_starts_at_all_usable_cores_and_stays_there_on_an_idle_machine():
    m = Machine(idle)
    g = governor(m)
    assert g.threads == 2
    steps = m.run(g, 120.0)
    assert g.threads == 2
    assert share_at(steps, 2, 0, 120) > 0.995
    # what probing costs on an idle machine, against always running two threads
    samples = sum(s for _, _, s in steps)
    assert samples / (120.0 * 36_000.0) > 0.99


def test_backs_off_within_two_seconds_when_another_process_takes_a_core():
    m = Machine(lambda n, t: idle(n, t) if t < 20 else busy(n, t))
    g = governor(m)
    steps = m.run(g, 60.0)
    assert share_at(steps, 2, 0, 20) > 0.99
    first_back_off = min(t for t, n, _ in steps if t >= 20 and n == 1)
    assert first_back_off < 22.0  # the window with the drop, then the probe
    assert share_at(steps, 1, 22, 60) > 0.95
    samples = sum(s for t, _, s in steps if t >= 22)
    assert samples / (38.0 * 19_000.0) > 0.93  # probing upwards under load costs under 7%


def test_returns_to_more_threads_when_the_core_comes_back():
    m = Machine(lambda n, t: busy(n, t) if t < 30 else idle(n, t))
    g = governor(m)
    steps = m.run(g, 100.0)
    assert share_at(steps, 1, 2, 30) > 0.95  # under load from the start: found within the first windows
    back = min(t for t, n, _ in steps if t >= 30 and n == 2)
    assert back < 30 + g.max_probe_s + 1
    assert share_at(steps, 2, back + 1, 100) > 0.99
    assert g.threads == 2


def test_never_leaves_one_to_the_allowed_cores():
    fewer_is_better = Machine(lambda n, t: 40_000.0 / n)
    g = governor(fewer_is_better, max_threads=4)
    fewer_is_better.run(g, 60.0)
    assert g.threads == 1
    more_is_better = Machine(lambda n, t: 10_000.0 * n)
    h = governor(more_is_better, max_threads=4)
    more_is_better.run(h, 60.0)
    assert h.threads == 4
    counts = {n for _, n in g.changes} | {n for _, n in h.changes}
    assert counts and min(counts) >= 1 and max(counts) <= 4


def test_a_slow_first_quarter_second_does_not_move_a_run_to_fewer_threads():
    """The window opening draws for the run's first quarter second, slowing two threads below one (12,000 against
    20,000 samples/s): the first probe down is there for a collapsed team, many times slower, so this one is not
    kept: a quarter window at one thread, then two threads for good."""
    m = Machine(lambda n, t: 12_000.0 if (n == 2 and t < 0.3) else idle(n, t))
    g = governor(m)
    steps = m.run(g, 20.0)
    (down, one), (back, two) = list(g.changes)[:2]
    assert (one, two) == (1, 2) and back < down + g.window_s / 4 + 0.05  # the first probe, a quarter window
    assert share_at(steps, 2, back, 20.0) > 0.99 and g.threads == 2


def test_a_probe_down_won_against_a_burst_is_taken_back_a_quarter_window_later():
    """A burst slows two threads below one for 1.5 s mid-run (a redraw, an evaluation's end): the drop's probe down
    wins against it. A quarter window later a probe back up finds two threads faster again, instead of the next
    periodic probe (probe_s later) leaving the run on one thread."""
    m = Machine(lambda n, t: 12_000.0 if (n == 2 and 4.5 <= t < 6.0) else idle(n, t))
    g = governor(m)
    steps = m.run(g, 20.0)
    down = min(t for t, n in g.changes if t >= 4.5 and n == 1)  # the drop's probe down, against the burst
    back = min(t for t, n in g.changes if t > down and n == 2)
    assert down < 6.0 and m.rate(1, down) > 1.1 * m.rate(2, down)
    assert back < down + 1.5 * g.window_s  # the probe's window won, a quarter window at one thread, the recheck
    assert share_at(steps, 2, back + 0.1, 20.0) > 0.98 and g.threads == 2


def test_climbs_to_the_best_count_in_between():
    m = Machine(lambda n, t: {1: 10e3, 2: 18e3, 3: 24e3, 4: 21e3, 5: 15e3, 6: 9e3}[n])
    g = governor(m, max_threads=6)
    steps = m.run(g, 90.0)
    assert g.threads == 3
    assert share_at(steps, 3, 10, 90) > 0.95


def test_a_fixed_count_is_honoured_whatever_the_rates():
    m = Machine(busy)
    g = governor(m, fixed=2)
    m.run(g, 30.0)
    assert g.threads == 2 and not g.changes and not g.adaptive
    one = governor(Machine(idle), fixed=1)
    assert one.threads == 1 and not one.adaptive


def test_gpus_are_left_alone_and_cpus_governed():
    assert governor_for("cuda") is None and governor_for("mps", 1) is None
    assert governor_for("cpu").adaptive == (usable_cores() > 1)
    assert governor_for("cpu", 1).threads == 1 and not governor_for("cpu", 1).adaptive


def test_one_core_means_one_thread():
    m = Machine(lambda n, t: 20_000.0)
    g = governor(m, max_threads=1)
    m.run(g, 10.0)
    assert g.threads == 1 and not g.changes


def test_a_gap_in_training_is_not_measured():
    m = Machine(idle)
    g = governor(m, max_threads=2, window_s=1.0)
    m.run(g, 30.0)
    level = g._level
    # half a window of very slow steps, then a gap (evaluation): the slow part must not count
    for _ in range(3):
        g.step_done(BATCH, 0.15)
    g.interrupt()
    m.run(g, 40.0)
    assert g.threads == 2
    assert g._level == pytest.approx(level, rel=0.05)


def test_a_gap_ends_a_probe_under_way_at_the_held_count():
    """An epoch ends while a probe runs one thread: the evaluation (or a pause) runs at the held two, and the
    probe is not judged on the steps after it."""
    m = Machine(idle)
    g = governor(m)
    m.run(g, 5.0)
    while g.threads == 2:  # step until the next periodic probe moves the run to one thread
        m.run(g, m.t + 1e-9)
    assert g.interrupt() == 2 and g.threads == 2
    assert all(n == 2 for _, n, _ in m.run(g, m.t + 0.5))


def test_the_end_of_epoch_evaluation_runs_at_the_held_count_when_a_probe_is_under_way(blobs):
    run = Trainer(blobs, ModelConfig(image_shape=blobs.image_shape), TrainConfig(epochs=1, iwae_k=1, device="cpu"))
    run.governor = ThreadGovernor(max_threads=2)  # two counts to choose from, whatever this worker's cores
    seen = []
    evaluate = run.evaluate
    run.evaluate = lambda seconds: (seen.append(torch.get_num_threads()), evaluate(seconds))[1]
    run.governor._start_probe(1, 0.0)  # a probe to one thread that the epoch's few steps do not decide
    _run_in_thread(run, 10**6)
    assert seen == [2]


def test_usable_cores_is_the_affinity_mask():
    import os

    if hasattr(os, "sched_getaffinity"):
        assert usable_cores() == len(os.sched_getaffinity(0))
    assert usable_cores() >= 1


# ------------------------------------------------------------------------------------------ in the trainer
def _run_in_thread(run: Trainer, stop_after: int):
    """Iterate the run on a fresh thread (as the window does); record the thread's torch count at each chunk."""
    seen, started = [], []

    def body():
        for msg in run.run():
            if isinstance(msg, RunStarted):
                started.append(msg)
            if isinstance(msg, MetricsChunk):
                seen.append((msg.threads, torch.get_num_threads()))
                if len(seen) >= stop_after:
                    run.stop()

    t = threading.Thread(target=body)
    t.start()
    t.join(60)
    assert not t.is_alive()
    return seen, started


def test_trainer_applies_a_fixed_count_on_its_own_thread(blobs):
    ds = blobs
    run = Trainer(
        ds,
        ModelConfig(image_shape=ds.image_shape),
        TrainConfig(epochs=50, iwae_k=1, device="cpu", threads=1, metrics_hz=100),
    )
    seen, started = _run_in_thread(run, 5)
    assert started[0].threads == "1 (fixed)"
    assert seen and all(reported == 1 and actual == 1 for reported, actual in seen)


def test_trainer_with_auto_threads_reports_the_count_it_uses(blobs):
    ds = blobs
    run = Trainer(
        ds, ModelConfig(image_shape=ds.image_shape), TrainConfig(epochs=50, iwae_k=1, device="cpu", metrics_hz=100)
    )
    assert run.governor is not None and run.governor.adaptive == (usable_cores() > 1)
    seen, started = _run_in_thread(run, 8)
    assert started[0].threads == f"auto, up to {usable_cores()}"
    assert seen and all(1 <= reported <= usable_cores() and actual == reported for reported, actual in seen)


def test_helper_threads_run_torch_single_threaded_and_flush_denormals():
    out = []

    def body():
        use_helper_threads()
        out.append((torch.get_num_threads(), _denormals_survive()))

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert out == [(1, 0)]


# ------------------------------------------------------------------------------------------ denormal floats
def _denormals_survive(n: int = 1 << 22) -> int:
    """How many of n denormal products survive a multiply: 4 M by default, split over the calling thread's whole
    OpenMP team (0 when every thread flushes them); 1,000 runs on the calling thread alone. The tensors are made
    and read through their bits: a float conversion would itself flush."""
    tiny = torch.ones(n, dtype=torch.int32).view(torch.float32)  # 1.4e-45, the smallest denormal
    return int((tiny * 3.0).view(torch.int32).count_nonzero())


def _flush_supported() -> bool:
    out = []

    def probe():
        out.append(torch.set_flush_denormal(True))

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return out[0]


@pytest.mark.skipif(not _flush_supported(), reason="this CPU has no flush-to-zero mode")
@pytest.mark.parametrize("built_on", ["the training thread", "another thread"])
def test_the_training_thread_and_its_workers_flush_denormals(blobs, built_on):
    """Adam's moments of weights without gradient decay into denormals, which x86 cores compute on 3-4x slower
    (engine/threads.py): the window builds and runs a run on one fresh thread, a script may build it on its
    own thread and run it on another; in both, every thread of the training steps flushes them."""
    train = TrainConfig(epochs=50, iwae_k=1, device="cpu", metrics_hz=100)
    cfg = (ModelConfig(image_shape=blobs.image_shape), train)
    before, seen = [], []
    prebuilt = Trainer(blobs, *cfg) if built_on == "another thread" else None

    def body():
        torch.set_flush_denormal(False)  # as in a process that never flushed (a thread inherits its starter's mode)
        before.append(_denormals_survive(1000))  # below the parallel grain: no OpenMP team started yet
        run = prebuilt or Trainer(blobs, *cfg)
        run.governor = ThreadGovernor(max_threads=2, fixed=2)  # a team of two, whatever this worker's cores
        for msg in run.run():
            if isinstance(msg, MetricsChunk):
                seen.append((torch.get_num_threads(), _denormals_survive()))
                run.stop()

    t = threading.Thread(target=body)
    t.start()
    t.join(60)
    assert before == [1000]  # denormals are kept unless the thread is told
    assert seen == [(2, 0)]


def test_a_collapsed_team_at_the_start_is_left_after_one_step():
    """Two busy processes from the start: two threads crawl (300 samples/s, a step of 0.43 s). The first window is
    a quarter of a normal one, so the first probe down comes after one such step, not after a second of them."""
    m = Machine(lambda n, t: {1: 12_000.0, 2: 300.0}[n])
    g = governor(m)
    steps = m.run(g, 20.0)
    first_one = min(t for t, n, _ in steps if n == 1)
    assert first_one < 0.5 + BATCH / 12_000.0  # one step at two threads, then one thread
    assert share_at(steps, 1, 0, 20) > 0.85
