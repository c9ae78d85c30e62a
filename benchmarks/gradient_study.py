"""How long the VI explorer's gradient-estimator lab takes (prints figures; not a test).

    .venv/bin/python benchmarks/gradient_study.py [--n 100000] [--rounds 5]

For each surrogate family at its starting q on the default model (α = 1, σ = 1, D = 2): the wall time of
``gradient_study`` (three estimators, N samples each) with torch on one thread, as the lab's worker runs it, and the
fit's steps per second with each estimator (32 samples per step). Medians over rounds. Run it under
``flock /work/bench.lock`` on a shared machine and quote ``uptime`` with the figures."""

from __future__ import annotations

import argparse
import statistics
import time

from engine import explorer as ex
from engine.threads import use_helper_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fit-steps", type=int, default=200)
    args = parser.parse_args()
    use_helper_threads()
    model = ex.ExpNormalModel()
    for family in ex.FAMILIES.values():
        q = family.starting_point(model)
        times = []
        for r in range(args.rounds):
            t = time.perf_counter()
            ex.gradient_study(model, q, n=args.n, seed=r)
            times.append(time.perf_counter() - t)
        fit_rates = {}
        for estimator in ex.ESTIMATORS:
            rates = []
            for r in range(args.rounds):
                t = time.perf_counter()
                for _ in ex.fit(model, family, q, steps=args.fit_steps, n_samples=32, seed=r, estimator=estimator):
                    pass
                rates.append(args.fit_steps / (time.perf_counter() - t))
            fit_rates[estimator] = statistics.median(rates)
        fits = ", ".join(f"{e} {v:.0f}" for e, v in fit_rates.items())
        print(
            f"{family.name:12s} study N={args.n:,}: median {statistics.median(times):.2f} s "
            f"(min {min(times):.2f}, max {max(times):.2f}); fit steps/s: {fits}"
        )


if __name__ == "__main__":
    main()
