"""Training throughput of the engine against the loop people copy from tutorials, on Fashion-MNIST.

Reference (pytorch/examples vae/main.py style): the same 784-400-20 MLP, Bernoulli (BCE on logits), Adam 1e-3,
batch 128, ``DataLoader(TensorDataset(x), shuffle=True)``, a ``.item()`` per step. Engine: ``Trainer`` with the
same model, fp32 and bf16 autocast, each eager (Compile: off) and compiled (Compile: auto, timed once the compiled
graphs are ready); the conv model eager and compiled. Rounds are interleaved and medians reported (this machine
is shared). Also printed: the CPU model and the step's matmul limits, the compile time cold (an empty Inductor
cache), from Inductor's disk cache (a fresh process) and in the same process (a second run), and the test ELBO
after ``--epochs-quality`` epochs of each precision and step; the training steps' rate from ``--late-step`` on,
with denormal floats flushed (as every run does) and kept; ``--profile`` adds torch.profiler's table of the
compiled fp32 step.

    .venv/bin/python benchmarks/engine_throughput.py [--rounds 3] [--steps 300] [--epochs-quality 10] [--profile]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="elbo-inductor-"))  # cold, and shared
os.environ.pop("ELBO_STUDIO_COMPILE", None)  # with the cached-compile subprocess, which inherits it
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine import compiled, threads  # noqa: E402
from engine import trainer as trainer_module  # noqa: E402
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


def _trainer(ds, epochs: int, precision: str, device: str, compile: str, arch: str = "mlp", **train) -> Trainer:
    run = Trainer(
        ds,
        ModelConfig(image_shape=ds.image_shape, latent_dim=20, hidden=400, arch=arch),
        TrainConfig(epochs=epochs, precision=precision, device=device, compile=compile, **train),
    )
    if compile == "auto" and run.compiled is None and arch == "conv":
        run.compiled = compiled.build_step(run)  # measured here although auto leaves conv eager on a CPU
    if run.compiled is not None:  # time the compiled step only: wait until every graph is ready
        run.compiled.graphs.thread and run.compiled.graphs.thread.join()
        if run.compiled.graphs.error:
            raise SystemExit(f"compiling failed: {run.compiled.graphs.error}")
    return run


def engine_samples_per_s(ds, steps: int, precision: str, device: str, compile: str = "off", arch: str = "mlp"):
    """Median of the run's own per-flush throughput figures would hide warm-up; time the steps directly."""
    run = _trainer(ds, 100, precision, device, compile, arch, metrics_hz=10, snapshot_interval_s=1e9)
    t0, start_step, rate = None, 0, float("nan")
    for m in run.run():
        if isinstance(m, MetricsChunk):
            if t0 is None and m.step >= 20:
                t0, start_step = time.perf_counter(), m.step
            elif t0 is not None and m.step - start_step >= steps:
                rate = (m.step - start_step) * 128 / (time.perf_counter() - t0)
                run.stop()
    return rate


def late_samples_per_s(ds, precision: str, device: str, compile: str, flush: bool, from_step: int, chunks=30):
    """Training steps only (median of the run's per-flush figures) from ``from_step`` on, when Adam's moments of
    weights without gradient have decayed into denormals; with denormals flushed (as every run does,
    engine/threads.py) or kept. Called in a process of its own (``late_in_a_process``), whose main thread has
    neither flushed nor started an OpenMP team yet."""
    if not flush:
        threads.flush_denormals = trainer_module.flush_denormals = lambda: None  # this process only
    run = _trainer(ds, 100, precision, device, compile, metrics_hz=10, snapshot_interval_s=1e9)
    out = []
    for m in run.run():
        if isinstance(m, MetricsChunk) and m.step >= from_step:
            out.append(m.samples_per_s)
            if len(out) >= chunks:
                run.stop()
    return statistics.median(out)


def late_in_a_process(precision: str, compile: str, flush: bool, args) -> float:
    """``late_samples_per_s`` in a fresh process: here the main thread's OpenMP team from the other cases would be
    a second team in the process, which slows every team in it (libgomp stops spin-waiting)."""
    out = subprocess.run(
        [sys.executable, __file__, "--late-case", f"{precision},{compile},{int(flush)}"]
        + ["--late-step", str(args.late_step), "--device", args.device],
        capture_output=True,
        text=True,
    )
    try:
        return float(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"the late-step subprocess failed: {out.stderr[-500:]}") from None


def test_elbo_after(ds, epochs: int, precision: str, device: str, compile: str = "off") -> float:
    run = _trainer(ds, epochs, precision, device, compile, iwae_examples=100, snapshot_interval_s=1e9)
    last = None
    for m in run.run():
        if isinstance(m, EpochSummary):
            last = m
    return last.test_elbo


def compile_seconds(ds, precision: str, device: str, arch: str = "mlp") -> dict:
    """Seconds to compile each case (training step / evaluation chunk, per thread count) in this process."""
    run = _trainer(ds, 1, precision, device, "auto", arch)
    g = run.compiled.graphs
    return {f"{kind}@{n}t": round(sec, 1) for (kind, n), sec in sorted(g.seconds.items())}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def profile_table(ds, device: str, precision: str = "fp32", steps: int = 50) -> str:
    """torch.profiler over ``steps`` compiled training steps: where a step's time goes."""
    from torch.profiler import ProfilerActivity, profile

    run = _trainer(ds, 100, precision, device, "auto", metrics_hz=10, snapshot_interval_s=1e9)
    it = run.run()
    for m in it:  # warm up past the first steps
        if isinstance(m, MetricsChunk) and m.step >= 30:
            break
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = run.step
        for m in it:
            if run.step - start >= steps:
                run.stop()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18)


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


def adam_seconds(device, reps=200) -> float:
    """torch's fused Adam step alone, on the model's parameter shapes (gradients present, no denormals): a part
    of every step that no compiler removes, since it must read and write each weight and both moments."""
    shapes = [s for fin, fout in LAYERS for s in ((fout, fin), (fout,))]
    params = [torch.nn.Parameter(torch.randn(*s, device=device) * 0.01) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    opt = torch.optim.Adam(params, lr=1e-3, fused=device.type in ("cpu", "cuda"))
    for _ in range(10):
        opt.step()
    times = []
    for _ in range(5):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            opt.step()
        _sync(device)
        times.append((time.perf_counter() - t0) / reps)
    return statistics.median(times)


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
    ap.add_argument("--conv-steps", type=int, default=100)
    ap.add_argument("--epochs-quality", type=int, default=10)
    ap.add_argument(
        "--late-step",
        type=int,
        default=2800,
        help="also measure the training steps from this step on, denormals flushed and kept (0: skip)",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--profile", action="store_true", help="print torch.profiler's table of the compiled fp32 step")
    ap.add_argument("--compile-only", action="store_true", help=argparse.SUPPRESS)  # the cached-compile subprocess
    ap.add_argument("--late-case", help=argparse.SUPPRESS)  # "precision,compile,flush": one late case's subprocess
    args = ap.parse_args()
    dev = pick_device(args.device)
    ds = default_dataset()
    if args.compile_only:
        print(compile_seconds(ds, "fp32", args.device))
        return
    if args.late_case:
        p, c, flush = args.late_case.split(",")
        print(late_samples_per_s(ds, p, args.device, c, flush == "1", args.late_step))
        return
    print(
        f"data: {ds.summary()}; device {device_label(dev)}; CPU {cpu_model()}, {os.cpu_count()} CPUs; torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}; load {os.getloadavg()[0]:.1f}"
    )
    kinds = [(torch.float32, "fp32"), (torch.bfloat16, "bf16")]

    # compile time: cold (an empty Inductor cache), cached (a fresh process, the same cache), in-process (registry)
    t0 = time.perf_counter()
    cold = compile_seconds(ds, "fp32", args.device)
    print(f"compile fp32 MLP, cold cache: {cold} ({time.perf_counter() - t0:.1f} s wall)", flush=True)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--compile-only", "--device", args.device], capture_output=True, text=True
    )
    print(
        f"compile fp32 MLP, a fresh process with the disk cache: {out.stdout.strip() or out.stderr[-300:]} "
        f"(process {time.perf_counter() - t0:.1f} s, data loading included)"
    )
    t0 = time.perf_counter()
    compile_seconds(ds, "fp32", args.device)
    print(f"a second run in the same process: ready after {time.perf_counter() - t0:.2f} s (nothing recompiled)")
    for p in ("bf16",):
        print(f"compile {p} MLP: {compile_seconds(ds, p, args.device)}", flush=True)
    print(f"compile fp32 conv: {compile_seconds(ds, 'fp32', args.device, 'conv')}", flush=True)

    x = torch.from_numpy(as_float01(ds.x_train))  # the reference loop trains on floats, as a plain script would
    precisions = ["fp32", "bf16"] + (["fp16"] if dev.type == "cuda" else [])
    cases = {"reference": lambda: reference_samples_per_s(x, args.steps, dev)}
    for p in precisions:
        for c in ("off", "auto"):
            cases[f"{p} {'compiled' if c == 'auto' else 'eager'}"] = lambda p=p, c=c: engine_samples_per_s(
                ds, args.steps, p, args.device, c
            )
    for c in ("off", "auto"):
        cases[f"conv fp32 {'compiled' if c == 'auto' else 'eager'}"] = lambda c=c: engine_samples_per_s(
            ds, args.conv_steps, "fp32", args.device, c, "conv"
        )
    if args.late_step:
        for p, c in (("fp32", "off"), ("fp32", "auto")):
            for flush in (True, False):
                name = f"late {p} {'compiled' if c == 'auto' else 'eager'}, denormals {'flushed' if flush else 'kept'}"
                cases[name] = lambda p=p, c=c, flush=flush: late_in_a_process(p, c, flush, args)
    res = {k: [] for k in cases}
    lims = {n: [] for _, n in kinds}  # the step's GEMMs alone, measured in every round like the rest
    for r in range(args.rounds):
        for dt, n in kinds:
            lims[n].append(matmul_gflops(dt, dev))
        for k, f in cases.items():
            res[k].append(f())
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in res.items()), flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    limits = {n: statistics.median(v) for n, v in lims.items()}
    print(
        "limits (median of the rounds): the step's GEMMs alone, "
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in limits.items())
    )
    fps = flops_per_sample()
    adam = adam_seconds(dev)
    gemm = {n: fps * 128 / (lim * 1e9) for n, lim in limits.items()}
    print(
        f"the fused Adam step alone: {adam * 1e3:.3f} ms; the step's GEMMs at the limit take "
        + ", ".join(f"{n} {t * 1e3:.3f} ms" for n, t in gemm.items())
        + ", so GEMMs + Adam with nothing else at all would reach "
        + ", ".join(f"{100 * t / (t + adam):.0f}% of the {n} limit" for n, t in gemm.items())
        + f"; 3x the tutorial loop is {300 * med['reference'] * fps / 1e9 / limits['fp32']:.0f}% of the fp32 limit"
    )
    print(f"\nsamples/s (median of {args.rounds} rounds, {args.steps} steps each (conv {args.conv_steps}), batch 128):")
    width = max(map(len, med))
    for k, v in med.items():
        extra = ""
        if k.startswith("late"):
            extra = f"  training steps only, from step {args.late_step:,}"
        elif not k.startswith(("reference", "conv")):
            lim = limits[k.split()[0]] if k.split()[0] in limits else float("nan")
            extra = (
                f"  {v / med['reference']:.2f}x reference, {100 * v * fps / 1e9 / lim:.0f}% of the {k.split()[0]} limit"
            )
        gf = "" if k.startswith(("conv", "late")) else f"  {v * fps / 1e9:7.1f} GFLOP/s"
        print(f"  {k:{width}s} {v:10,.0f}{gf}{extra}")
    for p in precisions + ["conv fp32"]:
        print(f"  compiled / eager, {p}: {med[f'{p} compiled'] / med[f'{p} eager']:.2f}x")
    if args.epochs_quality:
        q = {}
        for name, p, c in (
            ("fp32 eager", "fp32", "off"),
            ("fp32 compiled", "fp32", "auto"),
            ("bf16 compiled", "bf16", "auto"),
        ):
            q[name] = test_elbo_after(ds, args.epochs_quality, p, args.device, c)
            print(f"  test ELBO after {args.epochs_quality} epochs, {name}: {q[name]:.3f}", flush=True)
        ref = q["fp32 eager"]
        print(
            f"\ntest ELBO after {args.epochs_quality} epochs (nats per example): "
            + ", ".join(f"{k} {v:.3f} ({v - ref:+.3f} vs fp32 eager)" for k, v in q.items())
        )
    if args.profile:
        print("\ntorch.profiler, 50 compiled fp32 training steps (CPU, self time):")
        print(profile_table(ds, args.device))
    print(f"load at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
