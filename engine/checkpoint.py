"""Checkpoints: written atomically (temp file in the same folder, fsync, rename), read with
``torch.load(weights_only=True)`` (no pickle code runs) and checked against a schema before anything is used."""
from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import ConfigError, ModelConfig, TrainConfig
from .history import MetricHistory

FORMAT = "elbo-studio-checkpoint"
VERSION = 1


class CheckpointError(Exception):
    """One line naming the file and what is wrong with it."""


@dataclass(frozen=True)
class Checkpoint:
    path: str
    model_config: ModelConfig
    train_config: TrainConfig
    model_state: dict
    optimizer_state: dict | None
    step: int  # global steps done
    epoch: int  # epoch the next step belongs to (0-based)
    batch: int  # batch index within that epoch of the next step
    history: MetricHistory
    dataset: dict  # Dataset.identity() of the data it was trained on
    noise_rng: torch.Tensor | None  # state of the reparameterisation-noise generator


def _to_tensors(obj):
    """numpy → torch recursively, so the file holds only what weights_only can read."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, dict):
        return {k: _to_tensors(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_tensors(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _to_numpy(obj):
    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_numpy(v) for v in obj]
    return obj


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(file_object)`` on a temp file beside ``path``, fsync, then rename over ``path``.
    A crash or error leaves the old file (or none), never a half-written one. The file gets the mode a plain
    ``open(path, "w")`` would give it (0666 less the umask), not the temp file's private 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o666 & ~current_umask())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save_checkpoint(path, *, model_config: ModelConfig, train_config: TrainConfig, model_state: dict,
                    optimizer_state: dict | None, step: int, epoch: int, batch: int, history: MetricHistory,
                    dataset: dict, noise_rng: torch.Tensor | None) -> None:
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model_state.items()},
        "optimizer": optimizer_state,
        "step": int(step),
        "epoch": int(epoch),
        "batch": int(batch),
        "history": _to_tensors(history.to_state()),
        "dataset": dataset,
        "noise_rng": noise_rng,
    }
    atomic_write(path, lambda f: torch.save(payload, f))


def checkpoint_of_run(run) -> Checkpoint:
    """A stopped or finished ``TrainingRun`` as an in-memory Checkpoint (weights, optimizer, curves, position), so
    a new run continues it exactly as from a file. Call only when no thread iterates the run."""
    return Checkpoint(path="(this session)", model_config=run.model_cfg, train_config=run.cfg,
                      model_state={k: v.detach().clone() for k, v in run.model.state_dict().items()},
                      optimizer_state=run.optimizer.state_dict(), step=run.step, epoch=run.epoch, batch=run.batch,
                      history=run.history, dataset=run.dataset.identity(), noise_rng=run.noise.get_state())


def load_checkpoint(path) -> Checkpoint:
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise CheckpointError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{name}: the file is empty")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, RuntimeError, EOFError) as e:
        raise CheckpointError(f"{name}: not a readable PyTorch checkpoint (truncated or corrupt): {_first_line(e)}") from None
    except Exception as e:  # weights_only refuses pickled code: a file from elsewhere
        raise CheckpointError(f"{name}: refused to load: it holds objects other than tensors and plain data "
                              f"({_first_line(e)})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not an ELBO Studio checkpoint (no '{FORMAT}' marker)")
    if raw.get("version") != VERSION:
        raise CheckpointError(f"{name}: checkpoint version {raw.get('version')!r}, this ELBO Studio reads version {VERSION}")
    missing = [k for k in ("model_config", "train_config", "model", "step", "epoch", "batch", "history", "dataset") if k not in raw]
    if missing:
        raise CheckpointError(f"{name}: incomplete checkpoint, missing {', '.join(missing)}")
    try:
        mcfg = ModelConfig.from_dict(raw["model_config"])
        tcfg = TrainConfig.from_dict(raw["train_config"])
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{name}: invalid settings in checkpoint: {e}") from None
    check_model_state(name, mcfg, raw["model"])
    try:
        history = MetricHistory.from_state(_to_numpy(raw["history"]))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{name}: damaged metric history ({e})") from None
    return Checkpoint(str(path), mcfg, tcfg, raw["model"], raw.get("optimizer"), raw["step"], raw["epoch"],
                      raw["batch"], history, raw["dataset"], raw.get("noise_rng"))


def check_model_state(name: str, cfg: ModelConfig, state: dict) -> None:
    """Every parameter the architecture expects is present with the right shape, and nothing else."""
    from .model import VAE  # local: the model module is not needed to read a checkpoint's header

    expected = {k: tuple(v.shape) for k, v in VAE(cfg).state_dict().items()}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{name}: the model weights are not a mapping of tensors")
    got = {k: tuple(v.shape) for k, v in state.items()}
    if set(got) != set(expected):
        extra, miss = sorted(set(got) - set(expected)), sorted(set(expected) - set(got))
        raise CheckpointError(f"{name}: weights do not fit a {cfg.arch} VAE (missing {miss[:3]}, unexpected {extra[:3]})")
    bad = [k for k in expected if got[k] != expected[k]]
    if bad:
        k = bad[0]
        raise CheckpointError(f"{name}: weight {k} has shape {got[k]}, the architecture needs {expected[k]}")
    for k, v in state.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{name}: weight {k} holds NaN or Inf")


def _first_line(e: Exception) -> str:
    s = str(e).strip().splitlines()
    return s[0][:200] if s else type(e).__name__
