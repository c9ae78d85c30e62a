"""Checkpoints: written atomically (engine/files.atomic_write: temp file in the same folder, fsync, rename), read with
``torch.load(weights_only=True)`` (no pickle code runs) and checked against a schema before anything is used."""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import ConfigError, ModelConfig, TrainConfig
from .files import NotRegularFile, atomic_write, display_name, open_regular
from .history import MetricHistory
from .limits import MAX_COUNT
from .memory import budget_bytes, budget_text, fmt_bytes

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


def save_checkpoint(
    path,
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    model_state: dict,
    optimizer_state: dict | None,
    step: int,
    epoch: int,
    batch: int,
    history: MetricHistory,
    dataset: dict,
    noise_rng: torch.Tensor | None,
) -> None:
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


def write_checkpoint(path, ck: Checkpoint) -> None:
    """Save an in-memory Checkpoint (a run's, or one loaded earlier) to ``path``, atomically."""
    save_checkpoint(
        path,
        model_config=ck.model_config,
        train_config=ck.train_config,
        model_state=ck.model_state,
        optimizer_state=ck.optimizer_state,
        step=ck.step,
        epoch=ck.epoch,
        batch=ck.batch,
        history=ck.history,
        dataset=ck.dataset,
        noise_rng=ck.noise_rng,
    )


def checkpoint_of_run(run, copy: bool = True) -> Checkpoint:
    """A ``Trainer`` as an in-memory Checkpoint (weights, optimizer, curves, position), so a new run continues
    it exactly as from a file. ``copy``: weights cloned, so the run may go on training afterwards. Call only from
    the thread that iterates the run, or when none does."""
    state = run.model.state_dict()
    return Checkpoint(
        path="(this session)",
        model_config=run.model_cfg,
        train_config=run.cfg,
        model_state={k: v.detach().clone() for k, v in state.items()} if copy else state,
        optimizer_state=run.optimizer.state_dict(),
        step=run.step,
        epoch=run.epoch,
        batch=run.batch,
        history=run.history,
        dataset=run.dataset.identity(),
        noise_rng=run.noise.get_state(),
    )


def restore_run(run, ck: Checkpoint) -> None:
    """Put a new ``Trainer`` where ``ck`` left off: weights, the optimizer's per-parameter state, the noise
    generator, the curves and the position (the next epoch boundary when the batch size differs). Raises
    CheckpointError naming the file when it does not fit the run's model."""
    if ck.model_config != run.model_cfg:
        raise CheckpointError(
            f"{display_name(ck.path)}: trained with different model settings ({ck.model_config}); "
            f"load it with its own settings"
        )
    run.model.load_state_dict(ck.model_state)
    if ck.optimizer_state and ck.optimizer_state.get("state"):
        # only the validated per-parameter tensors come from the file (check_optimizer_state);
        # the parameter groups (lr, flags) are this run's own
        own = run.optimizer.state_dict()
        try:
            run.optimizer.load_state_dict({"state": ck.optimizer_state["state"], "param_groups": own["param_groups"]})
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"{display_name(ck.path)}: optimizer state does not fit the model ({e})") from None
    if ck.noise_rng is not None and run.device.type == "cpu":
        try:
            run.noise.set_state(ck.noise_rng)
        except RuntimeError:  # a state from another device's generator: the run's seed stands
            pass
    run.history = MetricHistory.from_state(ck.history.to_state())  # a copy: the caller's checkpoint stays as read
    run.step, run.epoch, run.batch = ck.step, ck.epoch, ck.batch
    done_epochs = ck.step // run.steps_per_epoch if run.steps_per_epoch else 0
    if (ck.epoch, ck.batch) != (done_epochs, ck.step % run.steps_per_epoch):
        # a checkpoint from a run with another batch size: continue at the next epoch boundary
        run.epoch, run.batch = math.ceil(ck.step / run.steps_per_epoch), 0


def load_checkpoint(path) -> Checkpoint:
    """Read and validate a whole checkpoint before anything is built from it: the settings (types and ranges),
    then every weight and every optimizer tensor against the shapes the settings imply (counted on torch's meta
    device, so a crafted file claiming a huge model allocates nothing), the counters, the history and the RNG
    state. Any problem is a CheckpointError naming the file."""
    path = Path(path)
    name = display_name(path)
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise CheckpointError(f"{name}: the file is empty")
            _check_archive(name, f)
            f.seek(0)
            raw = torch.load(f, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except NotRegularFile as e:
        raise CheckpointError(f"{name}: {e.strerror}") from None
    except FileNotFoundError:
        raise CheckpointError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{name}: is a folder, not a checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{name}: cannot read: {e.strerror or e}") from None
    except (zipfile.BadZipFile, RuntimeError, EOFError) as e:
        raise CheckpointError(
            f"{name}: not a readable PyTorch checkpoint (truncated or corrupt): {_first_line(e)}"
        ) from None
    except Exception as e:  # weights_only refuses pickled code: a file from elsewhere
        raise CheckpointError(
            f"{name}: refused to load: it holds objects other than tensors and plain data ({_first_line(e)})"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not an ELBO Studio checkpoint (no '{FORMAT}' marker)")
    if raw.get("version") != VERSION:
        raise CheckpointError(
            f"{name}: checkpoint version {_short(raw.get('version'))}, this ELBO Studio reads version {VERSION}"
        )
    missing = [
        k
        for k in ("model_config", "train_config", "model", "step", "epoch", "batch", "history", "dataset")
        if k not in raw
    ]
    if missing:
        raise CheckpointError(f"{name}: incomplete checkpoint, missing {', '.join(missing)}")
    try:
        mcfg = ModelConfig.from_dict(raw["model_config"])
        tcfg = TrainConfig.from_dict(raw["train_config"])
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{name}: invalid settings in checkpoint: {_first_line(e)}") from None
    counters = {}
    for k in ("step", "epoch", "batch"):
        v = raw[k]
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_COUNT:
            raise CheckpointError(f"{name}: the {k} counter is {_short(v)}, expected a whole number 0..{MAX_COUNT:,}")
        counters[k] = v
    params = expected_shapes(mcfg)
    check_model_state(name, mcfg, raw["model"], params)
    optimizer = check_optimizer_state(name, raw.get("optimizer"), params)
    history = _check_history(name, raw["history"])
    dataset = raw["dataset"]
    if not isinstance(dataset, dict):
        raise CheckpointError(f"{name}: the dataset record is {type(dataset).__name__}, expected a mapping")
    dataset = {
        k: v for k, v in dataset.items() if isinstance(k, str) and isinstance(v, (str, int, float, list, type(None)))
    }
    rng = raw.get("noise_rng")
    if rng is not None and not (
        isinstance(rng, torch.Tensor) and rng.dtype == torch.uint8 and rng.dim() == 1 and rng.numel() <= 1 << 16
    ):
        raise CheckpointError(f"{name}: the noise generator state is not a byte vector")
    return Checkpoint(
        str(path),
        mcfg,
        tcfg,
        raw["model"],
        optimizer,
        counters["step"],
        counters["epoch"],
        counters["batch"],
        history,
        dataset,
        rng,
    )


def _check_archive(name: str, f) -> None:
    """Refuse, before torch reads it, an archive whose members claim more memory than the budget or that are
    compressed (torch writes stored members only: a deflated one is a crafted file, possibly a bomb)."""
    try:
        with zipfile.ZipFile(f) as z:
            infos = z.infolist()
    except zipfile.BadZipFile:
        f.seek(0)
        if f.read(2) != b"PK":  # torch.save writes a zip archive: anything else is some other kind of file
            raise CheckpointError(f"{name}: not an ELBO Studio checkpoint (not a PyTorch archive)") from None
        return  # a damaged archive: torch.load explains what is wrong with it
    total = sum(i.file_size for i in infos)
    if any(i.compress_type != zipfile.ZIP_STORED for i in infos):
        raise CheckpointError(f"{name}: holds compressed members, which PyTorch never writes: refused")
    budget = budget_bytes()
    if total > budget:
        raise CheckpointError(f"{name}: its members claim {fmt_bytes(total)}, more than {budget_text(budget)}")


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Parameter and buffer shapes (state_dict order) of the VAE ``cfg`` describes, built on the meta device."""
    from .model import VAE  # local: the model module is not needed to read a checkpoint's header

    with torch.device("meta"):
        model = VAE(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _check_tensor(name: str, what: str, v, shape: tuple[int, ...], nonnegative: bool = False) -> None:
    if not isinstance(v, torch.Tensor) or v.layout != torch.strided or v.is_quantized:
        raise CheckpointError(f"{name}: {what} is not a dense tensor")
    if v.dtype != torch.float32:
        raise CheckpointError(f"{name}: {what} has dtype {str(v.dtype).replace('torch.', '')}, expected float32")
    if tuple(v.shape) != shape:
        raise CheckpointError(f"{name}: {what} has shape {tuple(v.shape)}, the architecture needs {shape}")
    if not torch.isfinite(v).all():
        raise CheckpointError(f"{name}: {what} holds NaN or Inf")
    if nonnegative and (v < 0).any():
        raise CheckpointError(f"{name}: {what} holds negative values")


def check_model_state(name: str, cfg: ModelConfig, state: dict, expected: dict | None = None) -> None:
    """Every parameter the architecture expects is present with the right shape, dtype and finite values, and
    nothing else."""
    expected = expected_shapes(cfg) if expected is None else expected
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"{name}: the model weights are not a mapping of tensors")
    if set(state) != set(expected):
        extra, miss = sorted(set(state) - set(expected)), sorted(set(expected) - set(state))
        raise CheckpointError(
            f"{name}: weights do not fit a {cfg.arch} VAE (missing {miss[:3]}, unexpected {extra[:3]})"
        )
    for k, shape in expected.items():
        _check_tensor(name, f"weight {k}", state[k], shape)


OPTIMIZER_KEYS = {"step", "exp_avg", "exp_avg_sq"}  # Adam's per-parameter state (amsgrad off)


def check_optimizer_state(name: str, opt, params: dict[str, tuple[int, ...]]) -> dict | None:
    """Adam's state validated against the model's parameters (in their order) and rebuilt from the validated
    tensors only: the hyperparameter groups are never taken from the file, so no flag in it (fused, capturable,
    foreach, the parameter index lists) reaches the optimizer. None when the file has no optimizer state."""
    if opt is None:
        return None
    if (
        not isinstance(opt, dict)
        or not isinstance(opt.get("state"), dict)
        or not isinstance(opt.get("param_groups"), list)
    ):
        raise CheckpointError(f"{name}: the optimizer state is not an Adam state (state and param_groups)")
    shapes = list(params.values())  # parameters come first in state_dict order; the likelihood's σ is one of them
    groups = opt["param_groups"]
    if len(groups) != 1 or not isinstance(groups[0], dict) or groups[0].get("params") != list(range(len(shapes))):
        raise CheckpointError(
            f"{name}: the optimizer's parameter groups do not match the model's {len(shapes)} parameters"
        )
    state = opt["state"]
    if state and set(state) != set(range(len(shapes))):
        raise CheckpointError(
            f"{name}: the optimizer holds state for {len(state)} of the model's {len(shapes)} parameters"
        )
    clean = {}
    for i, entry in state.items():
        what = f"optimizer state of parameter {i}"
        if not isinstance(entry, dict) or set(entry) != OPTIMIZER_KEYS:
            keys = sorted(map(str, entry)) if isinstance(entry, dict) else type(entry).__name__
            raise CheckpointError(f"{name}: {what} has entries {keys}, expected {sorted(OPTIMIZER_KEYS)}")
        _check_tensor(name, f"{what} (exp_avg)", entry["exp_avg"], shapes[i])
        _check_tensor(name, f"{what} (exp_avg_sq)", entry["exp_avg_sq"], shapes[i], nonnegative=True)
        step = entry["step"]
        if isinstance(step, torch.Tensor) and step.numel() == 1 and step.dtype.is_floating_point:
            step = float(step.reshape(()))
        if (
            not isinstance(step, (int, float))
            or isinstance(step, bool)
            or not math.isfinite(step)
            or step < 0
            or step > MAX_COUNT
            or step != int(step)
        ):
            raise CheckpointError(
                f"{name}: {what} has step count {_short(entry['step'])}, expected a whole number 0..{MAX_COUNT:,}"
            )
        clean[i] = {
            "step": torch.tensor(float(step)),
            "exp_avg": entry["exp_avg"].contiguous(),
            "exp_avg_sq": entry["exp_avg_sq"].contiguous(),
        }
    return {"state": clean, "param_groups": [{"params": list(range(len(shapes)))}]}


def _check_history(name: str, raw) -> MetricHistory:
    try:
        history = MetricHistory.from_state(_to_numpy(raw))
        cols = [history.column(k) for k in ("steps", "elbo", "recon", "kl")]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise CheckpointError(f"{name}: damaged metric history ({_first_line(e)})") from None
    if any(c.ndim != 1 or len(c) != len(cols[0]) for c in cols):
        raise CheckpointError(f"{name}: damaged metric history (columns of different lengths)")
    for e in history.epochs:
        if not all(isinstance(getattr(e, k), (int, float)) for k in ("epoch", "step", "test_elbo", "iwae_k")):
            raise CheckpointError(f"{name}: damaged metric history (an epoch summary holds non-numbers)")
    return history


def _short(v) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _first_line(e: Exception) -> str:
    s = str(e).strip().splitlines()
    return s[0][:200] if s else type(e).__name__
