"""Image folders at scale: load time and peak RSS, conv vs MLP training memory and samples/s, test ELBO over
epochs, and Fashion-MNIST with uint8 storage beside the float32 path.

    .venv/bin/python benchmarks/image_folder.py                 # 50,000 RGB PNGs of 48..160 px, resized to 64
    .venv/bin/python benchmarks/image_folder.py --n 10000 --elbo-train 2000

The folder is generated once (under the system temp folder, reused while its file count matches). Every phase runs
in a child process of its own, so each peak RSS (VmHWM) belongs to that phase alone. Targets:
  * load of 50,000 images ≤ 60 s, peak RSS during the load ≤ 3 × the uint8 dataset + 500 MB;
  * conv training on it: peak RSS ≤ 1.5 GB above the uint8 dataset (the end-of-epoch evaluation included);
  * test ELBO improves every epoch for 3 epochs;
  * Fashion-MNIST: uint8 storage no slower than float32 to load and to train.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLASSES = 10
THREADS = [1]  # torch threads in the children (--threads)


# ----------------------------------------------------------------------------------------------- the folder
def _picture(rng: np.random.Generator, cls: int) -> np.ndarray:
    """A smooth RGB picture of a random size 48..160 px per side: a class-tinted gradient and a disc."""
    h, w = rng.integers(48, 161, 2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    tint = np.array([(cls * 37) % 256, (cls * 91) % 256, (cls * 53) % 256], np.float32)
    a = tint * 0.6 + 60 * np.sin(xx / rng.uniform(4, 20))[..., None] + 40 * (yy / h)[..., None]
    cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, rng.uniform(0.1, 0.3) * min(h, w)
    a[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 255 - tint
    return np.clip(a + rng.normal(0, 4, a.shape), 0, 255).astype(np.uint8)


def make_folder(n: int, root: Path) -> Path:
    from PIL import Image

    done = root / f".complete-{n}"
    if done.exists():
        return root

    def write(i: int) -> None:
        rng = np.random.default_rng(i)
        cls = i % CLASSES
        Image.fromarray(_picture(rng, cls)).save(root / f"class{cls}" / f"{i:06d}.png", compress_level=1)

    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with ThreadPoolExecutor(max(1, len(os.sched_getaffinity(0)))) as pool:
        for k, _ in enumerate(pool.map(write, range(n)), 1):
            if k % 5000 == 0:
                print(f"  generated {k:,}/{n:,} ({time.monotonic() - t0:.0f} s)", flush=True)
    done.touch()
    return root


# ----------------------------------------------------------------------------------------------- child phases
def _rss_mb() -> tuple[float, float]:
    """(current VmRSS, peak VmHWM) of this process in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out["VmRSS"], out["VmHWM"]


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0), so the next peak belongs to the next phase."""
    Path("/proc/self/clear_refs").write_text("5")


def _steps_per_s(run, steps: int) -> float:
    """Samples/s of a Trainer over ``steps`` steps after the first flush (start-up excluded), then stopped."""
    from engine.messages import MetricsChunk

    t0 = s0 = None
    step, t1 = 0, 0.0
    gen = run.run()
    for msg in gen:
        if isinstance(msg, MetricsChunk):
            step, t1 = msg.step, time.monotonic()
            if t0 is None:
                t0, s0 = t1, step
            elif step - s0 >= steps:
                break
    run.stop()
    gen.close()
    run.rearm()  # so that an evaluate() after this one runs to the end
    return (step - s0) * run.cfg.batch_size / max(t1 - t0, 1e-9)


def child_load(folder: str) -> dict:
    import torch  # noqa: F401  (what the app has loaded before it loads data)

    from engine.data import LoadProgress, load_dataset

    base, _ = _rss_mb()
    _reset_peak()
    last = [0.0]

    def show(done, total, text):
        if time.monotonic() - last[0] > 5 or done >= total:
            last[0] = time.monotonic()
            print(f"    {text}: {done:,}/{total:,}", file=sys.stderr, flush=True)

    t0 = time.monotonic()
    ds = load_dataset(folder, resolution=64, progress=LoadProgress(show))
    seconds = time.monotonic() - t0
    _, peak = _rss_mb()
    nbytes = ds.x_train.nbytes + ds.x_test.nbytes
    return dict(
        seconds=seconds,
        base_mb=base,
        peak_mb=peak,
        data_mb=nbytes / 2**20,
        note=ds.note,
        shape=list(ds.image_shape),
        dtype=str(ds.x_train.dtype),
        n=len(ds.x_train) + len(ds.x_test),
    )


def child_train(folder: str, arch: str, steps: int, batch: int, eval_examples: int, iwae_examples: int) -> dict:
    from engine.config import ModelConfig, TrainConfig
    from engine.data import load_dataset
    from engine.model import n_parameters
    from engine.trainer import Trainer

    ds = load_dataset(folder, resolution=64)
    data_mb = (ds.x_train.nbytes + ds.x_test.nbytes) / 2**20
    mcfg = ModelConfig(image_shape=ds.image_shape, arch=arch)
    tcfg = TrainConfig(
        epochs=1,
        batch_size=batch,
        metrics_hz=20.0,
        snapshot_interval_s=1e9,
        eval_examples=eval_examples,
        iwae_examples=iwae_examples,
    )  # training steps only
    gc.collect()
    rss0, _ = _rss_mb()
    _reset_peak()  # the load's own peak is not training's
    run = Trainer(ds, mcfg, tcfg)
    rate = _steps_per_s(run, steps)
    t0 = time.monotonic()
    run.evaluate()  # the end-of-epoch evaluation: test ELBO, IWAE K = 100
    eval_s = time.monotonic() - t0
    t0 = time.monotonic()
    run.latent_snapshot()  # what the window's scatter costs: the posterior means of 2,000 test images
    snap_s = time.monotonic() - t0
    _, peak = _rss_mb()
    return dict(
        data_mb=data_mb,
        samples_per_s=rate,
        params=n_parameters(run.model),
        rss_before_mb=rss0,
        peak_mb=peak,
        above_data_mb=peak - data_mb,
        eval_s=eval_s,
        snap_s=snap_s,
    )


def child_elbo(folder: str, n_train: int, epochs: int, batch: int) -> dict:
    from dataclasses import replace

    from engine.config import ModelConfig, TrainConfig
    from engine.data import load_dataset
    from engine.messages import EpochSummary
    from engine.trainer import Trainer

    ds = load_dataset(folder, resolution=64)
    n_test = max(100, n_train // 10)
    ds = replace(
        ds,
        x_train=ds.x_train[:n_train],
        y_train=ds.y_train[:n_train],
        x_test=ds.x_test[:n_test],
        y_test=ds.y_test[:n_test],
        _fingerprint=[],
    )
    mcfg = ModelConfig(image_shape=ds.image_shape, arch="conv", latent_dim=16)
    tcfg = TrainConfig(epochs=epochs, batch_size=batch, iwae_examples=100, snapshot_interval_s=5.0)
    t0 = time.monotonic()
    summaries = [m for m in Trainer(ds, mcfg, tcfg).run() if isinstance(m, EpochSummary)]
    return dict(
        test_elbo=[m.test_elbo for m in summaries],
        kl=summaries[-1].test_kl,
        active=summaries[-1].active_units,
        n_train=len(ds.x_train),
        n_test=len(ds.x_test),
        seconds=time.monotonic() - t0,
    )


def child_fashion(steps: int, rounds: int) -> dict:
    from dataclasses import replace

    from engine.config import ModelConfig, TrainConfig
    from engine.data import as_float01, fashion_mnist_path
    from engine.data.idx import load_idx
    from engine.trainer import Trainer

    folder = fashion_mnist_path()
    if folder is None:
        return dict(skipped="Fashion-MNIST is not installed")
    loads = {"uint8": [], "float32": []}
    for _ in range(rounds):
        t0 = time.monotonic()
        ds = load_idx(folder)
        t1 = time.monotonic()
        as_float01(ds.x_train), as_float01(ds.x_test)  # what the float32 loader did on top
        t2 = time.monotonic()
        loads["uint8"].append(t1 - t0)
        loads["float32"].append(t2 - t0)
    floats = replace(ds, x_train=as_float01(ds.x_train), x_test=as_float01(ds.x_test), _fingerprint=[])
    rates = {"uint8": [], "float32": []}
    mcfg = ModelConfig(image_shape=ds.image_shape)
    tcfg = TrainConfig(epochs=1, snapshot_interval_s=1.0, metrics_hz=20.0)
    for _ in range(rounds):  # interleaved, so that load from other processes hits both alike
        for name, data in (("uint8", ds), ("float32", floats)):
            rates[name].append(_steps_per_s(Trainer(data, mcfg, tcfg), steps))
    med = lambda v: statistics.median(v)  # noqa: E731
    return dict(
        load_s={k: med(v) for k, v in loads.items()},
        samples_per_s={k: med(v) for k, v in rates.items()},
        all_rates=rates,
    )


def _child(phase: str, *args) -> dict:
    """Run one phase in a fresh interpreter; its JSON result is the last line of its stdout."""
    cmd = [sys.executable, __file__, "--child", phase, json.dumps(args), "--threads", str(THREADS[0])]
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"phase {phase} failed with status {r.returncode}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50_000, help="images in the generated folder")
    ap.add_argument("--folder", type=Path, default=None, help="where to generate it (default: the temp folder)")
    ap.add_argument("--steps", type=int, default=20, help="training steps timed per architecture")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--eval-examples", type=int, default=10_000, help="test examples of the timed evaluation")
    ap.add_argument("--iwae-examples", type=int, default=100, help="IWAE (K = 100) examples of that evaluation")
    ap.add_argument("--elbo-train", type=int, default=5000, help="training images of the 3-epoch ELBO run")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--fashion-steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip", nargs="*", default=[], choices=["load", "train", "elbo", "fashion"])
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for training (1: steady on a machine shared with other busy processes)",
    )
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    THREADS[0] = args.threads
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        phase, a = args.child[0], json.loads(args.child[1])
        result = {"load": child_load, "train": child_train, "elbo": child_elbo, "fashion": child_fashion}[phase](*a)
        print(json.dumps(result))
        return

    print(
        f"{len(os.sched_getaffinity(0))} usable cores, torch threads {args.threads}; "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    folder = args.folder or Path(tempfile.gettempdir()) / f"elbo-studio-bench-{args.n}"
    t0 = time.monotonic()
    make_folder(args.n, folder)
    print(f"folder: {folder} ({args.n:,} RGB PNGs, 48..160 px per side; ready in {time.monotonic() - t0:.0f} s)")
    if "load" not in args.skip:
        r = _child("load", str(folder))
        limit = 3 * r["data_mb"] + 500
        print(
            f"\nload: {r['seconds']:.1f} s for {r['n']:,} images ({r['n'] / r['seconds']:,.0f} images/s), target ≤ 60 s"
            f"\n  {r['note']}, stored {r['dtype']} {tuple(r['shape'])}: {r['data_mb']:,.0f} MB"
            f"\n  peak RSS during the load {r['peak_mb']:,.0f} MB (interpreter + torch before it: {r['base_mb']:,.0f} MB);"
            f" target ≤ 3 × data + 500 = {limit:,.0f} MB -> {'ok' if r['peak_mb'] <= limit else 'OVER'}"
        )
    if "train" not in args.skip:
        r = {
            arch: _child("train", str(folder), arch, args.steps, args.batch, args.eval_examples, args.iwae_examples)
            for arch in ("conv", "mlp")
        }  # one process each: each peak is its own
        print(
            f"\ntraining on {r['conv']['data_mb']:,.0f} MB of uint8 images, batch {args.batch}, {args.steps} timed steps, "
            f"no snapshots while timed, then one end-of-epoch evaluation ({args.eval_examples:,} test ELBO, {args.iwae_examples} × IWAE K=100):"
        )
        for arch in ("conv", "mlp"):
            a = r[arch]
            print(
                f"  {arch:4s}  {a['params'] / 1e6:5.2f} M params  {a['samples_per_s']:7.1f} samples/s  "
                f"peak RSS {a['peak_mb']:,.0f} MB = data + {a['above_data_mb']:,.0f} MB (target ≤ 1,536)  "
                f"evaluation {a['eval_s']:.0f} s, one latent snapshot {a['snap_s']:.1f} s"
            )
    if "elbo" not in args.skip:
        r = _child("elbo", str(folder), args.elbo_train, args.epochs, args.batch)
        e = r["test_elbo"]
        better = all(b > a for a, b in zip(e, e[1:]))
        print(
            f"\nconv, latent 16, {r['n_train']:,} train / {r['n_test']:,} test images at 64×64 RGB, {args.epochs} epochs "
            f"({r['seconds']:.0f} s): test ELBO "
            + " → ".join(f"{v:,.1f}" for v in e)
            + f" nats; improves every epoch: {'yes' if better else 'NO'}; last KL {r['kl']:.1f} nats, "
            f"{r['active']}/16 active units"
        )
    if "fashion" not in args.skip:
        r = _child("fashion", args.fashion_steps, args.rounds)
        if "skipped" in r:
            print(f"\nFashion-MNIST: {r['skipped']}")
        else:
            print(
                f"\nFashion-MNIST (median of {args.rounds} interleaved rounds, MLP, batch 128, {args.fashion_steps} steps):"
            )
            for k in ("uint8", "float32"):
                print(
                    f"  {k:8s} load {r['load_s'][k]:5.2f} s   training {r['samples_per_s'][k]:8,.0f} samples/s   "
                    f"(rounds: {', '.join(f'{v:,.0f}' for v in r['all_rates'][k])})"
                )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (a shared machine: other processes take CPU too)")


if __name__ == "__main__":
    main()
