"""Headless training: ``python main.py train --data PATH [...]``.

Prints one line per epoch (and a progress bar when stdout is a terminal), writes the checkpoint and a metrics CSV,
and exits non-zero with a one-line message, never a traceback, on bad input."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time

from .config import (
    ARCHS,
    COMPILE_MODES,
    DEVICES,
    LIKELIHOODS,
    PRECISIONS,
    ConfigError,
    ModelConfig,
    TrainConfig,
    check_model_ranges,
)
from .files import WriteError, atomic_write, quote
from .limits import range_text
from .messages import CompileStatus, EpochSummary, MetricsChunk, RunStarted, RunStatus, StateChanged, WorkerError
from .cli_checks import check_from_headers, check_outputs, nothing_left


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    m = ModelConfig()
    p = argparse.ArgumentParser(prog="main.py train", description="Train a VAE without the window.")
    p.add_argument(
        "--data",
        default=None,
        help="dataset file or folder (IDX[.gz], .npz/.npy, image folder, CSV); "
        "default: Fashion-MNIST if installed, else the built-in shapes",
    )
    p.add_argument(
        "--resolution",
        type=int,
        metavar="PX",
        default=None,
        help="make the images PX×PX (scale to cover, centre-crop), e.g. 28, 32, 64, 128; default: an image "
        "folder's most common size up to 64 px, else 64; other formats keep their size",
    )
    p.add_argument(
        "--color",
        choices=("auto", "grey", "rgb"),
        default="auto",
        help="grey or RGB images; auto: grey when every image is grey",
    )
    p.add_argument(
        "--epochs", type=int, default=d.epochs, help=f"passes over the training set ({range_text('epochs')})"
    )
    p.add_argument(
        "--latent-dim",
        type=int,
        default=m.latent_dim,
        help=f"dimension d of the latent code z ({range_text('latent_dim')})",
    )
    p.add_argument("--hidden", type=int, default=m.hidden, help=f"width of the hidden layer ({range_text('hidden')})")
    p.add_argument(
        "--arch", choices=ARCHS, default=m.arch, help="encoder/decoder networks: MLP or stride-2 convolutions"
    )
    p.add_argument(
        "--likelihood",
        choices=LIKELIHOODS,
        default=m.likelihood,
        help="observation model p(x|z): Bernoulli, Gaussian with a learned σ, or the continuous Bernoulli",
    )
    p.add_argument(
        "--conditional",
        action="store_true",
        help="condition on the dataset's labels: q(z|x, y) and p(x|z, y), a conditional VAE",
    )
    p.add_argument("--beta", type=float, default=d.beta, help=f"KL weight (1 = the ELBO; {range_text('beta')})")
    p.add_argument(
        "--warmup-epochs",
        type=float,
        default=d.warmup_epochs,
        help=f"linear KL warm-up length in epochs (0 = off; {range_text('warmup_epochs')})",
    )
    p.add_argument(
        "--free-bits",
        type=float,
        default=d.free_bits,
        help=f"nats per latent dim not penalised (0 = off; {range_text('free_bits')})",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help=f"examples per Adam step, the global batch under torchrun ({range_text('batch_size')})",
    )
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam's learning rate, in {range_text('lr')}")
    p.add_argument(
        "--device",
        type=_device_arg,
        default=d.device,
        metavar="{auto,cpu,cuda,cuda:N,mps}",
        help="where to train: auto picks CUDA, then MPS, then the CPU; a device this machine lacks is refused",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=d.precision,
        help="fp32, bf16 autocast (CPU with AMX, CUDA) or fp16 autocast (CUDA only)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help=f"seeds the weights, the batch order and the noise ({range_text('seed')})",
    )
    p.add_argument(
        "--threads",
        type=_threads_arg,
        default=d.threads,
        metavar="{auto,N}",
        help="CPU threads for the training steps: 'auto' (default) chooses and re-chooses them from the "
        "measured step rate, so training keeps its speed when other programs take cores; N fixes them",
    )
    p.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default=d.compile,
        help="'auto' (default): torch.compile the training step in the background and switch to it when it is "
        "ready (the reason is printed if it cannot be); 'off': the eager step only",
    )
    p.add_argument(
        "--iwae-k",
        type=int,
        default=d.iwae_k,
        help=f"importance samples for the log p(x) estimate ({range_text('iwae_k')})",
    )
    p.add_argument(
        "--checkpoint",
        metavar="OUT",
        help="write the final checkpoint here; without it the trained model is discarded when the run ends",
    )
    p.add_argument("--resume", metavar="CKPT", help="continue training from this checkpoint (curves continue too)")
    p.add_argument("--metrics-csv", metavar="OUT", help="write per-step metrics (and per-epoch test metrics) here")
    return p


def _device_arg(text: str) -> str:
    """One of DEVICES or cuda:N; whether this machine has it is checked when the run is built."""
    if text in DEVICES or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(DEVICES)} or cuda:N, got {text!r}")


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
            print(f"\r{text}: {_progress(done, total)}", end="\n" if done >= total else "", file=sys.stderr, flush=True)

    return LoadProgress(show)


MODEL_FLAGS = {
    "latent_dim": "--latent-dim",
    "hidden": "--hidden",
    "arch": "--arch",
    "likelihood": "--likelihood",
    "conditional": "--conditional",
}
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal number, as shells report it


def given_flags(argv: list[str]) -> dict:
    """The options the user really typed (not argparse's defaults), by destination name."""
    p = build_parser()
    for action in p._actions:
        action.default = argparse.SUPPRESS
    return vars(p.parse_args(argv))


def train_config(args) -> TrainConfig:
    """The run's TrainConfig from the flags (ConfigError for a value out of range), before any data is read."""
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        beta=args.beta,
        warmup_epochs=args.warmup_epochs,
        free_bits=args.free_bits,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        iwae_k=args.iwae_k,
        threads=args.threads,
        compile=args.compile,
    )


def resume_conflicts(given: dict, ck) -> str | None:
    """A model flag typed together with --resume that differs from the checkpoint's setting: refused, since the
    checkpoint's weights fix the model. Flags equal to the checkpoint's are fine."""
    clash = [
        f"{MODEL_FLAGS[k]} {given[k]}" for k in MODEL_FLAGS if k in given and given[k] != getattr(ck.model_config, k)
    ]
    if not clash:
        return None
    have = ", ".join(f"{MODEL_FLAGS[k]} {getattr(ck.model_config, k)}" for k in MODEL_FLAGS)
    return (
        f"{quote(ck.path)}: {' and '.join(clash)} conflict with the checkpoint's model ({have}); "
        f"drop them to resume, or train a new model without --resume"
    )


class StopOnSignal:
    """While active, SIGINT and SIGTERM ask the run to stop at its next step (or inside its evaluation) instead of
    raising KeyboardInterrupt: the checkpoint and metrics are written and the exit status is 130 / 143. A second
    signal exits at once (every write is atomic, so no file is left half-written)."""

    def __init__(self, run):
        self.run, self.signum, self._old = run, None, {}

    def __enter__(self):
        for sig in SIGNAL_EXIT:
            self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum, frame) -> None:
        if self.signum is not None:
            print(f"\n{signal.Signals(signum).name} again: exiting without saving", file=sys.stderr, flush=True)
            os._exit(SIGNAL_EXIT[signum])
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: stopping at the next step and saving", file=sys.stderr, flush=True)
        self.run.stop()

    @property
    def exit_status(self) -> int | None:
        return None if self.signum is None else SIGNAL_EXIT[self.signum]


def write_outputs(args, run) -> list[str]:
    """Write the checkpoint and the metrics CSV (each on its own: one failing does not skip the other).
    Returns the error messages."""
    errors = []
    if args.checkpoint:
        try:
            run.save(args.checkpoint)
            print(f"checkpoint: {quote(args.checkpoint)}")
        except (OSError, RuntimeError) as e:
            errors.append(str(e) if isinstance(e, WriteError) else f"could not write {quote(args.checkpoint)}: {e}")
    if args.metrics_csv:
        text = run.history.to_csv()
        try:
            atomic_write(args.metrics_csv, lambda f: f.write(text.encode()))
            print(f"metrics: {quote(args.metrics_csv)} ({len(run.history)} steps)")
        except OSError as e:
            errors.append(str(e))
    return errors


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from .launch import DistributedError, job_place

    try:
        place = job_place()
    except DistributedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # outputs and every setting's range before torch loads or the data is read: a bad flag is answered at once
    problem = check_outputs(args)
    if not problem:
        try:
            tcfg = train_config(args)
            check_model_ranges(latent_dim=args.latent_dim, hidden=args.hidden)
        except ConfigError as e:
            problem = f"invalid settings: {e}"
    if problem:
        print(f"error: {f'rank {place.rank}: ' if place else ''}{problem}", file=sys.stderr)
        return 2
    try:
        from .distributed import Distributed

        if place is None:
            return _train(args, tcfg, given_flags(argv), None)
        dist = Distributed(place.rank, place.world, place.local_rank, place.local_world)
        # under torchrun: rank 0 prints and writes; every rank reports its own errors
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(sys.stdout if dist.is_main else quiet):
            code = 1
            try:
                code = _train(args, tcfg, given_flags(argv), dist)
            finally:
                dist.close(together=code in (0, 3, *SIGNAL_EXIT.values()))  # every rank ended at the same step
            return code
    except KeyboardInterrupt:  # before training started: nothing to save
        print("\ninterrupted", file=sys.stderr)
        return SIGNAL_EXIT[signal.SIGINT]


def _train(args: argparse.Namespace, tcfg: TrainConfig, given: dict, dist) -> int:
    from .checkpoint import CheckpointError, load_checkpoint
    from .data import DatasetError, LoadCancelled, adjust_images, default_dataset, load_dataset
    from .distributed import DistributedError
    from .mutual_information import collapse_warning
    from .preflight import few_steps_hint
    from .threads import flush_denormals
    from .trainer import Trainer

    flush_denormals()  # the training thread, before its first parallel op (engine/threads.py)
    writer = dist is None or dist.is_main

    def fail(msg: str) -> int:
        print(f"error: {f'rank {dist.rank}: ' if dist else ''}{msg}", file=sys.stderr)
        return 2

    if writer and not args.checkpoint:
        print("note: no --checkpoint given: the trained model is discarded when the run ends", flush=True)
    try:
        ck = load_checkpoint(args.resume) if args.resume else None
        if ck is not None and (problem := resume_conflicts(given, ck)):
            return fail(problem)
        if ck is not None and (problem := nothing_left(ck, args.epochs)):
            if not (args.checkpoint or args.metrics_csv):
                return fail(f"{problem} (and no output was asked for)")
            if writer:
                print(f"note: {problem}")
        channels = {"auto": None, "grey": 1, "rgb": 3}[args.color]
        if args.data and (problem := check_from_headers(args, ck, tcfg, channels)):
            return fail(problem)
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
                print(
                    f"warning: {quote(args.resume)} was trained on {quote(ck.dataset.get('name'))} "
                    f"({quote(ck.dataset.get('source'))}); continuing on {quote(data.name)}",
                    file=sys.stderr,
                )
        else:
            if args.conditional and (data.y_train is None or data.n_classes < 2):
                have = "no labels" if data.y_train is None else f"labels of {data.n_classes} class"
                return fail(f"--conditional needs labels of at least 2 classes; {quote(data.name)} has {have}")
            mcfg = ModelConfig(
                image_shape=data.image_shape,
                latent_dim=args.latent_dim,
                arch=args.arch,
                hidden=args.hidden,
                likelihood=args.likelihood,
                n_classes=data.n_classes if args.conditional else 0,
            )
        run = Trainer(data, mcfg, tcfg, checkpoint=ck, dist=dist)
    except (DatasetError, CheckpointError, DistributedError) as e:
        return fail(str(e))
    except ConfigError as e:
        return fail(f"invalid settings: {e}")
    except ValueError as e:  # a resolution out of range
        return fail(str(e))
    except LoadCancelled:
        print(file=sys.stderr)
        return fail("loading cancelled")
    except OSError as e:
        return fail(f"{quote(getattr(e, 'filename', '') or '')}: {e.strerror or e}")

    tty = sys.stdout.isatty()
    print(
        f"data: {data.summary(quote(data.name))}"
        + (f" ({data.note})" if data.note else "")
        + f", loaded in {t_load:.1f}s"
        + (f"; {dist.world} processes, global batch {tcfg.batch_size}" if dist else "")
        + (f"; conditional VAE on {mcfg.n_classes} classes" if mcfg.conditional else "")
    )
    if writer and (hint := few_steps_hint(len(data.x_train), tcfg.batch_size, tcfg.epochs)):
        print(f"note: {hint}", file=sys.stderr)
    t0 = time.monotonic()
    status = 0
    with StopOnSignal(run) as stopper:
        for msg in run.run():
            if isinstance(msg, RunStarted):
                threads = f", CPU threads {msg.threads}" if msg.threads else ""
                print(
                    f"device: {msg.device}{threads}, precision {msg.precision}, {msg.n_params:,} parameters, "
                    f"{msg.steps_per_epoch} steps/epoch"
                    + (f", resuming at step {msg.start_step}" if msg.start_step else "")
                    + (f"; {msg.data_placement}" if msg.data_placement else "")
                )
            elif isinstance(msg, MetricsChunk) and tty:
                print(
                    f"\r  epoch {msg.epoch + 1} {_progress(msg.step - msg.epoch * msg.steps_per_epoch, msg.steps_per_epoch)}"
                    f"  ELBO {msg.elbo[-1]:9.2f}  {msg.samples_per_s:8.0f} samples/s"
                    + (f"  {msg.threads} thread{'s' * (msg.threads != 1)}" if msg.threads else ""),
                    end="",
                    flush=True,
                )
            elif isinstance(msg, CompileStatus):
                print(("\n" if tty and msg.step else "") + f"step: {msg.text}", flush=True)
            elif isinstance(msg, EpochSummary):
                print(
                    ("\r" if tty else "")
                    + f"epoch {msg.epoch + 1:3d}/{tcfg.epochs}  train ELBO {msg.train_elbo:9.3f}  test ELBO {msg.test_elbo:9.3f} "
                    f"(recon {msg.test_recon:9.3f}, KL {msg.test_kl:7.3f} = I(x;z) {msg.test_mi:6.3f} + KL(q(z)‖p(z)) "
                    f"{msg.test_marginal_kl:6.3f})  log p(x) ≥ {msg.test_iwae:9.3f} [IWAE K={msg.iwae_k}]  "
                    f"{msg.bits_per_dim:.4f} bits/dim  active units {msg.active_units}/{mcfg.latent_dim}  {msg.seconds:.1f}s",
                    flush=True,
                )
                warning = collapse_warning(run.history.epochs)
                if warning:
                    print(f"warning: {warning}", flush=True)
            elif isinstance(msg, StateChanged) and msg.state is RunStatus.DIVERGED:
                print(f"\nerror: {msg.text}", file=sys.stderr)
                run.stop()
                status = 3
            elif isinstance(msg, WorkerError):
                print(f"\nerror: {msg.text}", file=sys.stderr)
                if msg.fatal:
                    return 1
    trained = run.step - (ck.step if ck is not None else 0)
    if trained == 0 and not stopper.signum:
        print(f"nothing was left to train: the model stays at step {run.step:,}")
    else:
        print(f"{'stopped' if stopper.signum else 'done'} in {time.monotonic() - t0:.1f}s, {run.step} steps")
    errors = write_outputs(args, run) if writer else []
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if stopper.exit_status is not None:
        return stopper.exit_status
    return 2 if errors else status
