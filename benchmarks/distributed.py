"""Data-parallel throughput: 1 process against N under torchrun (prints figures; not a test).

    .venv/bin/python benchmarks/distributed.py [--procs 1,2] [--epochs 2] [--batch-size 256] [--device auto]

Each configuration is one ``torchrun --standalone --nproc_per_node N`` job of this file, training the default
model on Fashion-MNIST (the built-in shapes without it) with the same global batch; rank 0 prints the training
samples per second (all ranks together, wall time from the run's start to its end, end-of-epoch evaluation
included) and the final test ELBO. On a CPU machine the processes share its cores, so expect about 1x: the point
there is that the result is the same. On a machine with GPUs, N defaults to 1 and every GPU."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(args) -> None:
    sys.path.insert(0, str(ROOT))
    from engine.config import ModelConfig, TrainConfig
    from engine.data import default_dataset
    from engine.distributed import Distributed
    from engine.messages import EpochSummary, RunStarted
    from engine.trainer import Trainer

    dist = Distributed.from_environment()
    ds = default_dataset()
    tcfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, iwae_k=1, device=args.device)
    run = Trainer(ds, ModelConfig(image_shape=ds.image_shape, latent_dim=20), tcfg, dist=dist)
    t0, last = None, None
    for msg in run.run():
        if isinstance(msg, RunStarted):
            t0, device = time.perf_counter(), msg.device
        elif isinstance(msg, EpochSummary):
            last = msg
    seconds = time.perf_counter() - t0
    if dist is None or dist.is_main:
        print(
            json.dumps(
                {
                    "samples_per_s": run.step * tcfg.batch_size / seconds,
                    "seconds": seconds,
                    "test_elbo": last.test_elbo,
                    "device": device,
                }
            )
        )
    if dist is not None:
        del run
        dist.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", default=None, help="comma-separated process counts (default 1,2 or 1,#GPUs)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() and args.device != "cpu" else 0
    procs = [int(p) for p in args.procs.split(",")] if args.procs else ([1, gpus] if gpus > 1 else [1, 2])
    print(
        f"torch {torch.__version__}; {gpus} GPU(s); {os.cpu_count()} CPUs; global batch {args.batch_size}, "
        f"{args.epochs} epochs, MLP 784-400-20",
        flush=True,
    )
    base = None
    for n in procs:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={n}",
            __file__,
            "--child",
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(args.batch_size),
            "--device",
            args.device,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            print(f"{n} process(es): failed\n{out.stderr[-3000:]}")
            continue
        res = json.loads(out.stdout.strip().splitlines()[-1])
        base = base or res["samples_per_s"]
        print(
            f"{n} process(es) on {res['device']}: {res['samples_per_s']:10.0f} samples/s "
            f"({res['samples_per_s'] / base:.2f}x), {res['seconds']:.1f} s, test ELBO {res['test_elbo']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
