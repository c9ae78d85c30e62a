"""How many examples an evaluation pass takes at once: sized by memory, not by example count.

A 64×64 RGB conv decoder holds about a megabyte of activations per image, a 784-400 MLP about 20 kB, so a fixed
"1,000 examples" or "2¹⁶ decoded images" is either far too much or needlessly little. Every evaluation (test ELBO,
IWAE, latent snapshot, reconstructions, manifold, posterior grid, amortization study) asks ``rows`` /
``decode_rows`` how many fit in ``memory_budget(device)``.

Activations per example are measured once per ModelConfig on the meta device (no memory, no arithmetic): the
summed sizes of every layer's output for one example, plus the input image for the encoder and four image-sized
likelihood temporaries for the decoder. Under ``no_grad`` only a few of them are alive at once, so the estimate errs
on the safe side."""

from __future__ import annotations

import functools

import torch
from torch import nn

from .config import ModelConfig

CPU_BUDGET = 256 << 20  # bytes of activations per evaluation chunk on the CPU (and MPS)
CUDA_BUDGET_MAX = 2 << 30  # on CUDA: a quarter of the free memory, at most this
FALLBACK_DECODE_ROWS = 4096  # for models without a ModelConfig (analytic test models)
_LIKELIHOOD_TEMPS = 4  # image-sized tensors alive while log p(x|z) is computed (params, x, two temporaries)


@functools.lru_cache(maxsize=64)
def activation_elements(cfg: ModelConfig) -> tuple[int, int]:
    """(encoder, decoder) float elements per example: the summed outputs of every leaf layer, plus the input image
    (encoder) and the likelihood's temporaries (decoder)."""
    from .model import VAE  # the model module imports nothing from here; kept local to avoid a cycle later

    with torch.device("meta"):
        model = VAE(cfg)
    counts = {"enc": 0, "dec": 0}

    def counter(key):
        def hook(_m, _inp, out):
            counts[key] += out[0].numel() if isinstance(out, tuple) else out.numel()

        return hook

    handles = [
        m.register_forward_hook(counter(key))
        for key, part in (("enc", model.encoder), ("dec", model.decoder))
        for m in part.modules()
        if len(list(m.children())) == 0 and not isinstance(m, nn.Identity)
    ]
    try:
        with torch.no_grad():
            mu, _ = model.encode(torch.zeros((1, *cfg.image_shape), device="meta"), 0)  # a label for a conditional VAE
            model.decode(mu, 0)
    finally:
        for h in handles:
            h.remove()
    return counts["enc"] + cfg.n_pixels, counts["dec"] + _LIKELIHOOD_TEMPS * cfg.n_pixels


def memory_budget(device: torch.device | str) -> int:
    """Bytes of activations one evaluation chunk may use on ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(min(CUDA_BUDGET_MAX, free // 4))
    return CPU_BUDGET


def rows(
    cfg: ModelConfig,
    device: torch.device | str,
    decodes_per_row: int = 1,
    encode: bool = True,
    budget: int | None = None,
) -> int:
    """Examples per chunk for a pass that encodes each example (``encode``) and decodes it ``decodes_per_row``
    times (1 for the ELBO, K for IWAE, 0 for an encode-only pass), within ``budget`` bytes (default: the device's)."""
    enc, dec = activation_elements(cfg)
    per_row = 4 * ((enc if encode else 0) + decodes_per_row * dec)  # float32 bytes
    return max(1, int((memory_budget(device) if budget is None else budget) // max(per_row, 1)))


def decode_rows(model, budget: int | None = None) -> int:
    """Latent points per decoder call for ``model`` (a VAE, or anything with ``cfg`` and parameters); models
    without a ModelConfig get FALLBACK_DECODE_ROWS."""
    cfg = getattr(model, "cfg", None)
    if not isinstance(cfg, ModelConfig):
        return FALLBACK_DECODE_ROWS
    try:
        device = next(model.parameters()).device
    except (AttributeError, StopIteration):
        device = torch.device("cpu")
    return rows(cfg, device, decodes_per_row=1, encode=False, budget=budget)


IWAE_CHUNK_VALUES = 1 << 22  # decoded pixel values per IWAE chunk at most: short enough that a stop, checked
# between chunks, takes effect within a fraction of a second whatever the image size


def iwae_sample_chunk(model, batch: int) -> int:
    """Importance samples per decoder call when ``batch`` examples are evaluated together (≥ 1): what the memory
    budget allows, and at most IWAE_CHUNK_VALUES decoded pixel values. The one rule ``objectives.iwae_bound`` and
    the amortization study share, so they draw their noise alike."""
    batch = max(batch, 1)
    cfg = getattr(model, "cfg", None)
    n_pixels = cfg.n_pixels if isinstance(cfg, ModelConfig) else 1
    return max(1, min(decode_rows(model) // batch, IWAE_CHUNK_VALUES // (batch * n_pixels)))
