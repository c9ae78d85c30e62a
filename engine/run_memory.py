"""A training run's memory: its parts estimated from the settings and the image count and size (parameters
counted on torch's meta device, nothing allocated), checked against the host budget (engine/memory.py) or a
CUDA device's free memory before anything is built. Above the loaders: engine/data never imports this (or the
model), so reading a file never builds the model."""

from __future__ import annotations

import torch

from . import memory
from .chunking import IWAE_CHUNK_VALUES
from .config import ConfigError
from .memory import budget_text, fmt_bytes
from .model import VAE

GPU_FRACTION = 0.9  # of a CUDA device's free memory a run may plan to use


def training_bytes(model_cfg, train_cfg, n_train: int, n_test: int, device_data: int = 0) -> dict[str, int]:
    """Estimated bytes of one training run, by part: ``device_data``, the bytes of the dataset the run copies to
    its device (0 when it uses the host arrays in place; engine/placement.py decides), the parameters with their gradients,
    Adam moments and the trainer's good copy, the activations of a training batch, and those of the largest
    evaluation block (a 1000-example ELBO block or an IWAE chunk). Parameters are counted on torch's meta device, so nothing is allocated."""
    with torch.device("meta"):
        n_params = sum(p.numel() for p in VAE(model_cfg).parameters())
    pixels = model_cfg.n_pixels
    c, h, w = model_cfg.image_shape
    data = int(device_data)
    # weights, gradients, two Adam moments, the good copy (weights + moments): 7 float32 copies
    model = 7 * 4 * n_params
    # per example in flight while training: input, decoder output, the likelihood's temporaries and their
    # gradients (~6 images), conv feature maps (32 channels at H/2×W/2, 64 at H/4×W/4, forward and backward)
    # and the hidden layers; evaluating (no gradients) keeps about half of that
    conv = (32 * (h // 2 + 1) * (w // 2 + 1) + 64 * (h // 4 + 1) * (w // 4 + 1)) * 2 if model_cfg.arch == "conv" else 0
    train_example = 4 * (6 * pixels + conv + 4 * model_cfg.hidden + 6 * model_cfg.latent_dim)
    eval_example = train_example // 2
    b = max(1, min(100, n_test, train_cfg.iwae_examples))
    iwae_rows = min(max(1, IWAE_CHUNK_VALUES // (b * pixels)), train_cfg.iwae_k) * b
    train_act = train_example * min(train_cfg.batch_size, n_train)
    eval_act = eval_example * max(min(1000, n_test, train_cfg.eval_examples), iwae_rows)
    return {"data": data, "model": model, "training": train_act, "evaluation": eval_act}


def device_budget(device) -> tuple[int, str] | None:
    """(bytes, how they are described) for a CUDA device: a fraction of its free memory; None for the host."""
    if getattr(device, "type", None) != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free * GPU_FRACTION), f"the {fmt_bytes(free * GPU_FRACTION)} free on {device}"


def check_training_fits(
    model_cfg,
    train_cfg,
    n_train: int,
    n_test: int,
    device_data: int = 0,
    budget: int | None = None,
    device=None,
    host_data: int = 0,
) -> None:
    """ConfigError naming the largest part and its setting when the run's estimate exceeds the budget.
    ``host_data``: bytes of a dataset not loaded yet (a check made from its headers before reading it)."""
    parts = training_bytes(model_cfg, train_cfg, n_train, n_test, device_data)
    parts["host"] = int(host_data)
    total = sum(parts.values())
    gpu = device_budget(device) if budget is None else None
    if gpu is not None:
        budget, cap = gpu
    else:
        budget = memory.budget_bytes() if budget is None else budget
        cap = budget_text(budget)
    if total <= budget:
        return
    part = max(parts, key=parts.get)
    images = "x".join(map(str, model_cfg.image_shape))
    why = {
        "data": f"the dataset on the device ({n_train + n_test:,} images of {images})",
        "host": f"the dataset in memory ({n_train + n_test:,} images of {images})",
        "model": f"the model (hidden {model_cfg.hidden}, latent dim {model_cfg.latent_dim}, images {images}) "
        f"with its optimizer state",
        "training": f"the training activations (batch size {train_cfg.batch_size}, hidden {model_cfg.hidden}, "
        f"images {images})",
        "evaluation": f"the evaluation activations (IWAE K {train_cfg.iwae_k}, hidden {model_cfg.hidden}, "
        f"images {images})",
    }[part]
    raise ConfigError(
        f"this run needs about {fmt_bytes(total)} of memory, mostly {why}: more than {cap}; lower those settings"
    )
