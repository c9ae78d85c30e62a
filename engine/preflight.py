"""Checks of a run's settings against its dataset, made before anything is built: the architecture fits the
image size (asked of the model itself, on torch's meta device) and the run fits in memory (engine/run_memory.py).
The window runs them before Start and shows the message in the settings panel; Trainer runs them too."""

from __future__ import annotations

import math
import warnings

import torch

from .config import ConfigError, ModelConfig, TrainConfig
from .run_memory import check_training_fits


def check_architecture(model_cfg: ModelConfig) -> None:
    """ConfigError when the architecture cannot process images of ``model_cfg.image_shape`` (e.g. a conv model on
    images smaller than its kernels). A forward pass on the meta device: shapes only, nothing allocated."""
    from .model import VAE

    c, h, w = model_cfg.image_shape
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "zero-element tensors": the very case refused below
            model = VAE(model_cfg)
            out, *_ = model(torch.empty((1, c, h, w)), torch.empty((1, model_cfg.latent_dim)), 0)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"the {model_cfg.arch} architecture cannot take {h}x{w} images (its strided "
            f"convolutions need larger ones): pick the MLP"
        ) from None
    if tuple(out.shape[1:]) != (c, h, w):
        raise ConfigError(f"the {model_cfg.arch} architecture decodes {tuple(out.shape[1:])} images, not {(c, h, w)}")


def label_misfit(model_cfg: ModelConfig, label_classes: int) -> str | None:
    """Why a model cannot take a dataset's labels (``label_classes``: its class count, 0 when unlabelled), or None:
    a conditional model needs labels, and an input for each of their classes."""
    k = model_cfg.n_classes
    if not k:
        return None
    if label_classes <= 0:
        return "conditioning on the label needs a labelled dataset; this one has no labels"
    if label_classes > k:
        return f"the model is conditional on {k} classes, the dataset has {label_classes}"
    return None


def model_misfit(model_cfg: ModelConfig, image_shape, label_classes: int) -> str | None:
    """Why a model cannot take a dataset's examples, or None: the one rule of the window, the CLI and a run.
    Images of another shape, or labels a conditional model has no inputs for (``label_classes``: the dataset's
    class count, 0 when unlabelled)."""
    model, data = tuple(model_cfg.image_shape), tuple(image_shape)
    if model != data:
        fmt = "×".join
        return f"the model takes {fmt(map(str, model))} images, this dataset's are {fmt(map(str, data))}"
    return label_misfit(model_cfg, label_classes)


def check_labels(model_cfg: ModelConfig, label_classes: int) -> None:
    if (why := label_misfit(model_cfg, label_classes)) is not None:
        raise ConfigError(why)


def check_run(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    image_shape,
    n_train: int,
    n_test: int,
    device_data: int = 0,
    device=None,
    label_classes: int = 0,
) -> None:
    """Every combination check of settings × dataset; ConfigError (one sentence naming the setting) if one fails.
    ``device_data``: bytes of the dataset copied to the training device (0: used in place in host memory);
    ``device``: a CUDA device's free memory is the budget there; otherwise the host budget. ``label_classes``: the dataset's class count (0: unlabelled), which a
    conditional model's labels must fit."""
    if (why := model_misfit(model_cfg, image_shape, label_classes)) is not None:
        raise ConfigError(why)
    if n_train < 1 or n_test < 1:
        raise ConfigError("the dataset needs at least one training and one test image")
    check_architecture(model_cfg)
    check_training_fits(model_cfg, train_cfg, n_train, n_test, device_data, device=device)


FEW_STEPS = 300  # Adam steps in all below which a small dataset's decoder has barely left the mean image


def few_steps_hint(n_train: int, batch_size: int, epochs: int) -> str | None:
    """A sentence when a run would take too few steps to learn much (a small dataset at a large batch: 300 images
    at batch 128 are 3 steps an epoch, and 15 epochs stay flat grey), with a smaller batch or more epochs that
    would reach FEW_STEPS; None otherwise."""
    per_epoch = math.ceil(n_train / batch_size) if n_train and batch_size else 0
    total = per_epoch * epochs
    if not per_epoch or total >= FEW_STEPS:
        return None
    batch = 2 ** int(math.log2(max(1.0, n_train * epochs / FEW_STEPS)))
    more = math.ceil(FEW_STEPS / per_epoch)
    fix = (
        f"a batch size of {batch} or less, or about {more:,} epochs" if batch < batch_size else f"about {more:,} epochs"
    )
    return (
        f"Only {per_epoch} step{'s' * (per_epoch != 1)} per epoch ({n_train:,} training images at batch "
        f"{batch_size:,}), {total:,} in all: too few for the model to learn much (the images stay grey). Try {fix}."
    )
