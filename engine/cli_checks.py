"""The ``train`` command's checks before any work: outputs that can be written and are no input, a run that fits
in memory judged from the data file's headers, and a resumed run that has something left to train. Each returns a
one-line reason or None; engine/cli.py prints it and exits."""

from __future__ import annotations

import os
from pathlib import Path

from .config import ConfigError, ModelConfig, TrainConfig
from .files import quote
from .limits import MAX_COUNT
from .outputs import find_clash, name_problem


def check_outputs(args) -> str | None:
    """Why the output paths cannot be written (before any work), or None: an empty name, a name the file system
    cannot hold, an output that is the same file as an input (--data, --resume) or as the other output (compared
    as files: engine/outputs.py), a target that is a folder, a folder that cannot be created or written. Writing
    the checkpoint back over the one it resumes is allowed (atomic; the input was read whole first)."""
    outs = {"--checkpoint": args.checkpoint, "--metrics-csv": args.metrics_csv}
    for flag, p in outs.items():
        if p is not None and not str(p).strip():
            return f"{flag} was given an empty file name"
        if p and (why := name_problem(p)):
            return f"{quote(p)}: {flag} cannot be written: {why}"
    clash = find_clash(outs, {"--data": args.data, "--resume": args.resume}, allow={("--checkpoint", "--resume")})
    if clash is not None:
        return clash.text()
    for flag, p in outs.items():
        if not p:
            continue
        path = Path(p).expanduser()
        if path.is_dir():
            return f"{quote(p)}: {flag} names a folder, not a file"
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent  # the nearest existing folder: the missing ones get created there
        if not folder.is_dir():
            return f"{quote(p)}: cannot write there ({quote(folder)} is a file, not a folder)"
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"{quote(p)}: cannot write there (the folder {quote(folder)} is not writable)"
        if path.exists() and not path.is_file():
            return f"{quote(p)}: {flag} names something that is not a regular file"
    return None


def check_from_headers(args, ck, tcfg: TrainConfig, channels: int | None) -> str | None:
    """Why a CPU run on ``--data`` cannot fit in memory, judged from the file's headers (image count and size)
    before a pixel is read or decompressed: the stored images plus the run's own estimate (engine/run_memory.py).
    None when it fits, or when the headers cannot tell (CSV, image folders: their loaders bound themselves)."""
    from .data import peek_dataset
    from .devices import pick_device
    from .run_memory import check_training_fits

    peek = peek_dataset(args.data, args.resolution, channels)
    if peek is None or pick_device(args.device).type != "cpu":
        return None
    n, shape = peek
    if ck is not None:
        mcfg = ck.model_config
        if tuple(mcfg.image_shape) != shape:
            return None  # the load reports the mismatch
    else:
        mcfg = ModelConfig(
            image_shape=shape,
            latent_dim=args.latent_dim,
            arch=args.arch,
            hidden=args.hidden,
            likelihood=args.likelihood,
        )
    n_test = max(1, n // 10)
    try:
        check_training_fits(mcfg, tcfg, max(1, n - n_test), n_test, host_data=n * mcfg.n_pixels)
    except ConfigError as e:
        return f"{quote(args.data)}: {e} (judged from the file's headers, before reading its images)"
    return None


def nothing_left(ck, epochs: int) -> str | None:
    """Why a run resumed from ``ck`` would train no step (it has done the epochs asked for, or its step counter is
    at the bound a checkpoint may hold), or None."""
    if ck.step >= MAX_COUNT:
        return f"{quote(ck.path)} is at step {ck.step:,}, the most a checkpoint may hold: nothing is left to train"
    if ck.epoch >= epochs:
        return (
            f"{quote(ck.path)} has done {ck.epoch:,} epochs (step {ck.step:,}) and --epochs is {epochs:,}: "
            f"nothing is left to train; raise --epochs to continue it"
        )
    return None
