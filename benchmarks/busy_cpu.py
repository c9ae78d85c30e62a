"""Training throughput on a CPU that is also doing something else (prints figures; not a test).

    .venv/bin/python benchmarks/busy_cpu.py [--seconds 20] [--rounds 2] [--busy 0,1,2] [--arch mlp]

For each condition (0, 1, 2 other busy processes, each ``python3 -c "while True: pass"``) it trains the default
model on Fashion-MNIST (the built-in shapes without it) for a fixed wall time, once with the thread governor
(``--threads auto``, engine/threads.py) and once with each fixed thread count 1..N, N = the cores this process
may use; each measurement is a fresh process, the order is shuffled within a round, and medians over rounds are
printed. samples/s counts training samples over the whole wall time from the run's start, end-of-epoch
evaluations (IWAE K = 1) included. Today's default is torch's own count (N on this machine).

Targets: the governor >= 90% of the best fixed count under every condition; with one busy process >= 2x the
default; idle no worse than 3% below the default."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(threads: int, seconds: float, arch: str) -> dict:
    """One measurement, in this process: train for ``seconds`` of wall time, return samples/s and the counts used."""
    sys.path.insert(0, str(ROOT))
    from engine.config import ModelConfig, TrainConfig
    from engine.data import default_dataset
    from engine.messages import MetricsChunk, RunStarted
    from engine.trainer import Trainer

    ds = default_dataset()
    tcfg = TrainConfig(epochs=1000, iwae_k=1, threads=threads, device="cpu")
    run = Trainer(ds, ModelConfig(image_shape=ds.image_shape, arch=arch), tcfg)
    t0, used = None, []
    for msg in run.run():
        if isinstance(msg, RunStarted):
            t0 = time.perf_counter()
        elif isinstance(msg, MetricsChunk):
            used.append(msg.threads)
            if time.perf_counter() - t0 >= seconds:
                run.stop()
    elapsed = time.perf_counter() - t0
    gov = run.governor
    return {
        "samples_per_s": run.step * tcfg.batch_size / elapsed,
        "steps": run.step,
        "threads_seen": sorted(set(used)),
        "changes": len(gov.changes) if gov else 0,
        "final_threads": gov.threads if gov else 0,
    }


def run_child(threads: int, seconds: float, arch: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(threads), "--seconds", str(seconds), "--arch", arch],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--busy", default="0,1,2", help="numbers of busy processes, comma-separated")
    ap.add_argument("--arch", default="mlp")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.seconds, args.arch)))
        return

    sys.path.insert(0, str(ROOT))
    import torch

    from engine.threads import usable_cores

    cores = usable_cores()
    configs = [0] + list(range(1, cores + 1))  # 0 = the governor
    name = {0: "governor"} | {n: f"fixed {n}" for n in range(1, cores + 1)}
    default = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {cores} usable cores (affinity), torch default {default} threads; "
        f"{args.seconds:.0f} s per measurement, {args.rounds} rounds, arch {args.arch}",
        flush=True,
    )
    results: dict[tuple[int, int], list[dict]] = {}
    for busy in [int(b) for b in args.busy.split(",")]:
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            time.sleep(0.5)
            for r in range(args.rounds):
                order = configs[:]
                random.Random(r * 31 + busy).shuffle(order)
                for c in order:
                    res = run_child(c, args.seconds, args.arch)
                    results.setdefault((busy, c), []).append(res)
                    print(
                        f"  busy {busy}, round {r + 1}: {name[c]:>9}: {res['samples_per_s']:8.0f} samples/s"
                        + (
                            f"  (threads used {res['threads_seen']}, {res['changes']} changes, ends at "
                            f"{res['final_threads']})"
                            if c == 0
                            else ""
                        ),
                        flush=True,
                    )
        finally:
            for h in hogs:
                h.kill()
                h.wait()

    print("\nmedian samples/s" + "".join(f"{name[c]:>11}" for c in configs) + "   gov/best fixed   gov/default")
    for busy in sorted({b for b, _ in results}):
        med = {c: statistics.median(x["samples_per_s"] for x in results[(busy, c)]) for c in configs}
        best = max(med[c] for c in configs if c)
        print(
            f"{busy} busy process{'es' if busy != 1 else '  '}"
            + "".join(f"{med[c]:11.0f}" for c in configs)
            + f"   {med[0] / best:14.3f}   {med[0] / med[min(default, cores)]:11.3f}"
        )


if __name__ == "__main__":
    main()
