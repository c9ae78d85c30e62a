"""What the per-epoch I_q(x; z) estimate costs against the epoch it is part of, at the default settings.

One epoch of the default run (Fashion-MNIST, MLP 784-400-d, batch 128, evaluation on the 10,000 test images) is
trained; then, with those weights, the end-of-epoch evaluation (which includes the estimate) and the estimate on
its own are each timed ``--rounds`` times, interleaved, and the medians printed with the share of the epoch
(training + evaluation) the estimate takes.

    .venv/bin/python benchmarks/mutual_information.py [--rounds 5] [--latent-dims 2 16] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.batches import to_float  # noqa: E402
from engine.config import ModelConfig, TrainConfig  # noqa: E402
from engine.data import default_dataset  # noqa: E402
from engine.devices import device_label  # noqa: E402
from engine.messages import EpochSummary  # noqa: E402
from engine.trainer import Trainer  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(ds, latent_dim: int, rounds: int, device: str) -> None:
    tcfg = TrainConfig(epochs=1, device=device)
    run = Trainer(ds, ModelConfig(image_shape=ds.image_shape, latent_dim=latent_dim), tcfg)
    train_s = next(m.seconds for m in run.run() if isinstance(m, EpochSummary))
    x = run.x_test[: tcfg.eval_examples]
    with torch.no_grad():
        run.model.eval()
        mu, log_var = zip(*(run.model.encode(to_float(x[s : s + 1000])) for s in range(0, len(x), 1000)))
    mu, log_var = torch.cat(mu), torch.cat(log_var)
    evals, mis, values = [], [], []
    for _ in range(rounds):
        _sync(run.device)
        t0 = time.perf_counter()
        run.evaluate()
        _sync(run.device)
        evals.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        values.append(run._mutual_information(mu, log_var).mi)
        mis.append(time.perf_counter() - t0)
    ev, mi = statistics.median(evals), statistics.median(mis)
    epoch = train_s + ev
    print(
        f"d={latent_dim:3d}  {device_label(run.device)}  epoch {epoch:6.2f} s (training {train_s:.2f} s, evaluation "
        f"{ev:.3f} s)  I(x;z) estimate {mi * 1000:7.1f} ms = {100 * mi / epoch:.2f}% of the epoch  "
        f"[{tcfg.mi_samples} draws x {len(mu):,} examples; I = {statistics.median(values):.3f} nats, "
        f"log N = {torch.log(torch.tensor(float(len(mu)))):.3f}]",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--latent-dims", type=int, nargs="+", default=[2, 16])
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    ds = default_dataset()
    print(f"{ds.name}: {len(ds.x_train):,} train / {len(ds.x_test):,} test; load {os.getloadavg()[0]:.2f}")
    for d in a.latent_dims:
        measure(ds, d, a.rounds, a.device)


if __name__ == "__main__":
    main()
