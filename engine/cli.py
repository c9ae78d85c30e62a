"""Headless training: ``python main.py train --data PATH [...]``.

Prints one line per epoch (and a progress bar when stdout is a terminal), writes the checkpoint and a metrics CSV,
and exits non-zero with a one-line message, never a traceback, on bad input."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

from .checkpoint import CheckpointError, atomic_write, load_checkpoint
from .config import ARCHS, DEVICES, LIKELIHOODS, PRECISIONS, ConfigError, ModelConfig, TrainConfig
from .messages import EpochSummary, MetricsChunk, RunStarted, StateChanged, WorkerError


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    m = ModelConfig()
    p = argparse.ArgumentParser(prog="main.py train", description="Train a VAE without the window.")
    p.add_argument("--data", default=None, help="dataset file or folder (IDX[.gz], .npz/.npy, image folder, CSV); "
                                                "default: Fashion-MNIST if installed, else the built-in shapes")
    p.add_argument("--resolution", type=int, metavar="PX", default=None,
                   help="make the images PX×PX (scale to cover, centre-crop), e.g. 28, 32, 64, 128; default: an image "
                        "folder's most common size up to 64 px, else 64; other formats keep their size")
    p.add_argument("--color", choices=("auto", "grey", "rgb"), default="auto",
                   help="grey or RGB images; auto: grey when every image is grey")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--latent-dim", type=int, default=m.latent_dim)
    p.add_argument("--hidden", type=int, default=m.hidden, help="width of the hidden layer")
    p.add_argument("--arch", choices=ARCHS, default=m.arch)
    p.add_argument("--likelihood", choices=LIKELIHOODS, default=m.likelihood)
    p.add_argument("--beta", type=float, default=d.beta, help="KL weight (1 = the ELBO)")
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs, help="linear KL warm-up length")
    p.add_argument("--free-bits", type=float, default=d.free_bits, help="nats per latent dim not penalised")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--device", choices=DEVICES + ("cuda:0", "cuda:1"), default=d.device)
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=_threads_arg, default=d.threads, metavar="{auto,N}",
                   help="CPU threads for the training steps: 'auto' (default) chooses and re-chooses them from the "
                        "measured step rate, so training keeps its speed when other programs take cores; N fixes them")
    p.add_argument("--iwae-k", type=int, default=d.iwae_k, help="importance samples for the log p(x) estimate")
    p.add_argument("--checkpoint", metavar="OUT", help="write the final checkpoint here")
    p.add_argument("--resume", metavar="CKPT", help="continue training from this checkpoint (curves continue too)")
    p.add_argument("--metrics-csv", metavar="OUT", help="write per-step metrics (and per-epoch test metrics) here")
    return p


def _threads_arg(text: str) -> int:
    """'auto' is 0 in TrainConfig; otherwise a positive count."""
    if text.strip().lower() == "auto":
        return 0
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive whole number, got {text!r}")
    return n


def _progress(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / max(total, 1))
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def _load_progress(tty: bool):
    """A LoadProgress printing the load's progress to stderr: on a terminal one line per phase, rewritten in place;
    otherwise (a log) only each phase's final line."""
    from .data import LoadProgress

    def show(done: int, total: int, text: str) -> None:
        if tty or done >= total:
            print(f"\r{text}: {_progress(done, total)}", end="\n" if done >= total else "", file=sys.stderr,
                  flush=True)

    return LoadProgress(show)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from .distributed import Distributed, DistributedError  # after parsing: --help stays instant

    try:
        dist = Distributed.from_environment()
    except DistributedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if dist is None:
        return _train(args, None)
    # under torchrun: rank 0 prints and writes; every rank reports its own errors
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(sys.stdout if dist.is_main else quiet):
        code = 1
        try:
            code = _train(args, dist)
        finally:
            dist.close(together=code in (0, 3))  # finished, stopped or diverged: every rank at the same step
        return code


def _train(args: argparse.Namespace, dist) -> int:
    from .data import DatasetError, LoadCancelled, adjust_images, default_dataset, load_dataset
    from .distributed import DistributedError
    from .trainer import TrainingRun

    writer = dist is None or dist.is_main

    def fail(msg: str) -> int:
        print(f"error: {f'rank {dist.rank}: ' if dist else ''}{msg}", file=sys.stderr)
        return 2

    try:
        ck = load_checkpoint(args.resume) if args.resume else None
        channels = {"auto": None, "grey": 1, "rgb": 3}[args.color]
        t_load = time.monotonic()
        if args.data:
            progress = _load_progress(sys.stderr.isatty()) if writer else None  # one progress line per job
            data = load_dataset(args.data, args.resolution, channels, progress)
        else:
            data = adjust_images(default_dataset(), args.resolution, channels)
        t_load = time.monotonic() - t_load
        if ck is not None:
            mcfg = ck.model_config
            if ck.dataset.get("fingerprint") not in (None, data.fingerprint()) and writer:
                print(f"warning: {args.resume} was trained on {ck.dataset.get('name')!r} "
                      f"({ck.dataset.get('source')}); continuing on {data.name}", file=sys.stderr)
        else:
            mcfg = ModelConfig(image_shape=data.image_shape, latent_dim=args.latent_dim, arch=args.arch,
                               hidden=args.hidden, likelihood=args.likelihood)
        tcfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta,
                           warmup_epochs=args.warmup_epochs, free_bits=args.free_bits, seed=args.seed,
                           device=args.device, precision=args.precision, iwae_k=args.iwae_k, threads=args.threads)
        run = TrainingRun(data, mcfg, tcfg, checkpoint=ck, dist=dist)
    except (DatasetError, CheckpointError, ConfigError, DistributedError) as e:
        return fail(str(e))
    except ValueError as e:  # a resolution out of range
        return fail(str(e))
    except (LoadCancelled, KeyboardInterrupt):
        print(file=sys.stderr)
        return fail("loading cancelled")
    except OSError as e:
        return fail(f"{getattr(e, 'filename', '') or ''}: {e.strerror or e}")

    tty = sys.stdout.isatty()
    print(f"data: {data.summary()}" + (f" ({data.note})" if data.note else "") + f", loaded in {t_load:.1f}s"
          + (f"; {dist.world} processes, global batch {tcfg.batch_size}" if dist else ""))
    t0 = time.monotonic()
    status = 0
    for msg in run.run():
        if isinstance(msg, RunStarted):
            threads = f", CPU threads {msg.threads}" if msg.threads else ""
            print(f"device: {msg.device}{threads}, precision {msg.precision}, {msg.n_params:,} parameters, "
                  f"{msg.steps_per_epoch} steps/epoch" + (f", resuming at step {msg.start_step}" if msg.start_step else "")
                  + (f"; {msg.data_placement}" if msg.data_placement else ""))
        elif isinstance(msg, MetricsChunk) and tty:
            print(f"\r  epoch {msg.epoch + 1} {_progress(msg.step - msg.epoch * msg.steps_per_epoch, msg.steps_per_epoch)}"
                  f"  ELBO {msg.elbo[-1]:9.2f}  {msg.samples_per_s:8.0f} samples/s"
                  + (f"  {msg.threads} thread{'s' * (msg.threads != 1)}" if msg.threads else ""), end="", flush=True)
        elif isinstance(msg, EpochSummary):
            print(("\r" if tty else "") +
                  f"epoch {msg.epoch + 1:3d}/{tcfg.epochs}  train ELBO {msg.train_elbo:9.3f}  test ELBO {msg.test_elbo:9.3f} "
                  f"(recon {msg.test_recon:9.3f}, KL {msg.test_kl:7.3f})  log p(x) ≥ {msg.test_iwae:9.3f} [IWAE K={msg.iwae_k}]  "
                  f"{msg.bits_per_dim:.4f} bits/dim  active units {msg.active_units}/{mcfg.latent_dim}  {msg.seconds:.1f}s", flush=True)
        elif isinstance(msg, StateChanged) and msg.state == "diverged":
            print(f"\nerror: {msg.text}", file=sys.stderr)
            run.stop()
            status = 3
        elif isinstance(msg, WorkerError):
            print(f"\nerror: {msg.text}", file=sys.stderr)
            return 1
    print(f"done in {time.monotonic() - t0:.1f}s, {run.step} steps")
    try:
        if args.checkpoint and writer:
            run.save(args.checkpoint)
            print(f"checkpoint: {args.checkpoint}")
        if args.metrics_csv and writer:
            text = run.history.to_csv()
            atomic_write(args.metrics_csv, lambda f: f.write(text.encode()))
            print(f"metrics: {args.metrics_csv} ({len(run.history)} steps)")
    except OSError as e:
        return fail(f"could not write {e.filename}: {e.strerror or e}")
    return status
