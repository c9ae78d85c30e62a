"""Training throughput of the engine against the loop people copy from tutorials, on Fashion-MNIST.

Reference (pytorch/examples vae/main.py style): the same 784-400-20 MLP, Bernoulli (BCE on logits), Adam 1e-3,
batch 128, ``DataLoader(TensorDataset(x), shuffle=True)``, a ``.item()`` per step. Engine: ``Trainer`` with the
same model, fp32 and bf16 autocast. Rounds are interleaved and medians reported (this machine is shared).

    .venv/bin/python benchmarks/engine_throughput.py [--rounds 3] [--steps 300] [--epochs-quality 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.config import ModelConfig, TrainConfig  # noqa: E402
from engine.data import default_dataset  # noqa: E402
from engine.data.dataset import as_float01  # noqa: E402
from engine.messages import EpochSummary, MetricsChunk  # noqa: E402
from engine.devices import device_label, pick_device  # noqa: E402
from engine.trainer import Trainer  # noqa: E402

LAYERS = [(784, 400), (400, 40), (20, 400), (400, 784)]  # (in, out) of the four linear layers


class RefVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar


def reference_samples_per_s(x: torch.Tensor, steps: int, device) -> float:
    torch.manual_seed(0)
    model = RefVAE().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x), batch_size=128, shuffle=True)
    done, total, t0 = 0, 0.0, None
    while done < steps + 20:
        for (xb,) in loader:
            if done == 20:  # warm-up steps excluded
                t0 = time.perf_counter()
            xb = xb.to(device)
            logits, mu, logvar = model(xb)
            bce = F.binary_cross_entropy_with_logits(logits, xb.view(-1, 784), reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (bce + kld) / len(xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()  # the per-step sync tutorials have
            done += 1
            if done == steps + 20:
                break
    return steps * 128 / (time.perf_counter() - t0)


def engine_samples_per_s(ds, steps: int, precision: str, device: str) -> float:
    """Median of the run's own per-flush throughput figures would hide warm-up; time the steps directly."""
    run = Trainer(
        ds,
        ModelConfig(image_shape=ds.image_shape, latent_dim=20, hidden=400),
        TrainConfig(epochs=100, precision=precision, device=device, metrics_hz=10, snapshot_interval_s=1e9),
    )
    t0, start_step = None, 0
    for m in run.run():
        if isinstance(m, MetricsChunk):
            if t0 is None and m.step >= 20:
                t0, start_step = time.perf_counter(), m.step
            elif t0 is not None and m.step - start_step >= steps:
                rate = (m.step - start_step) * 128 / (time.perf_counter() - t0)
                run.stop()
    return rate


def test_elbo_after(ds, epochs: int, precision: str, device: str) -> float:
    run = Trainer(
        ds,
        ModelConfig(image_shape=ds.image_shape, latent_dim=20, hidden=400),
        TrainConfig(epochs=epochs, precision=precision, device=device, iwae_examples=100, snapshot_interval_s=1e9),
    )
    last = None
    for m in run.run():
        if isinstance(m, EpochSummary):
            last = m
    return last.test_elbo


def matmul_gflops(dtype, device, reps=200) -> float:
    """The same GEMMs one training step does (forward, dX, dW for each layer), timed alone."""
    b = 128
    shapes = []
    for i, (fin, fout) in enumerate(LAYERS):
        shapes.append(((b, fin), (fin, fout)))  # forward
        shapes.append(((fin, b), (b, fout)))  # dW
        if i:
            shapes.append(((b, fout), (fout, fin)))  # dX (not for the first layer)
    mats = [
        (torch.randn(*a, device=device, dtype=dtype), torch.randn(*c, device=device, dtype=dtype)) for a, c in shapes
    ]
    flops = sum(2 * a[0] * a[1] * c[1] for a, c in shapes)
    for _ in range(10):
        [x @ y for x, y in mats]
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        [x @ y for x, y in mats]
    _sync(device)
    return flops * reps / (time.perf_counter() - t0) / 1e9


def flops_per_sample() -> int:
    macs = [i * o for i, o in LAYERS]
    return 2 * sum(macs) + 2 * (2 * sum(macs) - macs[0])  # forward + backward (no dX for the input layer)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--epochs-quality", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = pick_device(args.device)
    ds = default_dataset()
    print(
        f"data: {ds.summary()}; device {device_label(dev)}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    x = torch.from_numpy(as_float01(ds.x_train))  # the reference loop trains on floats, as a plain script would
    precisions = ["fp32", "bf16"] + (["fp16"] if dev.type == "cuda" else [])
    res = {k: [] for k in ["reference"] + precisions}
    for r in range(args.rounds):
        res["reference"].append(reference_samples_per_s(x, args.steps, dev))
        for p in precisions:
            res[p].append(engine_samples_per_s(ds, args.steps, p, args.device))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in res.items()), flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    fps = flops_per_sample()
    print(f"\nsamples/s (median of {args.rounds} rounds, {args.steps} steps each, batch 128):")
    for k, v in med.items():
        ratio = "" if k == "reference" else f"  {v / med['reference']:.2f}x reference"
        print(f"  {k:10s} {v:10,.0f}  {v * fps / 1e9:7.1f} GFLOP/s{ratio}")
    for dt, name in [(torch.float32, "fp32"), (torch.bfloat16, "bf16")]:
        print(f"  plain matmul of the step's GEMMs, {name}: {matmul_gflops(dt, dev):7.1f} GFLOP/s")
    if args.epochs_quality:
        q = {p: test_elbo_after(ds, args.epochs_quality, p, args.device) for p in precisions}
        print(
            f"\ntest ELBO after {args.epochs_quality} epochs (nats per example): "
            + ", ".join(f"{p} {v:.3f}" for p, v in q.items())
            + "".join(f"; |{p} - fp32| = {abs(q[p] - q['fp32']):.3f}" for p in precisions[1:])
        )


if __name__ == "__main__":
    main()
