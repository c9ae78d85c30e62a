"""Frozen configuration dataclasses. Every default is commented; every field is a plain Python type so a
config round-trips through a checkpoint (``asdict`` / ``from_dict``) and QSettings unchanged."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace

from .limits import MAX_CHANNELS, MAX_SIDE, MODEL_RANGES, TRAIN_RANGES

ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian", "continuous_bernoulli")
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
COMPILE_MODES = ("auto", "off")


class ConfigError(ValueError):
    """A setting out of range; the message names the field."""


def _from_dict(cls, d: dict):
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__}: expected a mapping of settings, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(map(str, d)) - known)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown field(s) {', '.join(map(repr, unknown[:5]))}")
    kw = dict(d)
    if "image_shape" in kw:
        shape = kw["image_shape"]
        if not isinstance(shape, (list, tuple)) or not all(_is_int(v) for v in shape):
            raise ConfigError(f"image_shape must be a list of 3 whole numbers, got {_show(shape)}")
        kw["image_shape"] = tuple(int(v) for v in shape)
    return cls(**kw)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _show(v) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def check_range(name: str, value, lo, hi, kind=int, lo_open: bool = False) -> None:
    """ConfigError unless ``value`` is a ``kind`` (int: a whole number, not a bool; float: any finite real) in
    [lo, hi] (or (lo, hi] when ``lo_open``). The one place where a setting's type and range are enforced."""
    if kind is int:
        ok_type = _is_int(value)
    else:
        ok_type = (_is_int(value) or isinstance(value, float)) and math.isfinite(value)
    if not ok_type:
        what = "a whole number" if kind is int else "a finite number"
        raise ConfigError(f"{name} must be {what}, got {_show(value)}")
    if value < lo or value > hi or (lo_open and value == lo):
        left = "(" if lo_open else "["
        raise ConfigError(f"{name} must lie in {left}{_num(lo)}, {_num(hi)}], got {_num(value)}")


def _num(v) -> str:
    return f"{v:,}" if _is_int(v) else f"{v:g}"


def _check_choice(name: str, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {_show(value)}")


# β that "Condition on label" suggests in the window. Fashion-MNIST, the default model (MLP 400, d = 2) and the
# default 10 epochs, seed 0: the mean image decoded from prior draws for class k is nearest the class-k training
# mean for 7 of 10 classes at β = 1 and for 10 of 10 at β = 3 (tests/engine/test_conditional_check.py): at β = 1 the
# class posteriors q(z|x, y) leave much of N(0, I) unvisited, and prior draws there decode to blurred blends.
CONDITIONAL_BETA = 3.0


def check_model_ranges(**settings) -> None:
    """ConfigError unless each given model setting (e.g. latent_dim=0) lies in its range: a check that needs no
    dataset, so that a command line is refused before its data is read."""
    for name, value in settings.items():
        kind, lo, hi, lo_open = MODEL_RANGES[name]
        check_range(name, value, lo, hi, kind, lo_open)


@dataclass(frozen=True)
class ModelConfig:
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of the data; set from the dataset
    latent_dim: int = 2  # 2 so the scatter *is* the latent space; any d >= 1 works (PCA view for d > 2)
    arch: str = "mlp"  # "mlp": 784-400-d as in Kingma & Welling; "conv": stride-2 convs down to 4×4 (engine/model.py)
    hidden: int = 400  # width of the fully connected hidden layer (MLP: the only one; conv: after the convolutions)
    likelihood: str = "bernoulli"  # "bernoulli" for [0,1] pixels (logits); "gaussian" with a learned per-pixel σ;
    # "continuous_bernoulli": a normalised density on [0, 1] (logits), for grey pixels
    n_classes: int = 0  # 0: a VAE; k >= 2: a conditional VAE q(z|x, y), p(x|z, y) on labels 0..k-1 (one-hot)

    def __post_init__(self):
        shape = self.image_shape
        if not isinstance(shape, tuple) or len(shape) != 3 or not all(_is_int(v) for v in shape):
            raise ConfigError(f"image_shape must be (C, H, W) whole numbers, got {_show(shape)}")
        c, h, w = shape
        if not (1 <= c <= MAX_CHANNELS and 1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
            raise ConfigError(
                f"image_shape must be (C, H, W) with 1..{MAX_CHANNELS} channels and sides 1..{MAX_SIDE}, got {shape}"
            )
        check_model_ranges(**{name: getattr(self, name) for name in MODEL_RANGES})
        if self.n_classes == 1:
            raise ConfigError("n_classes must be 0 (not conditional) or at least 2, got 1")
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("likelihood", self.likelihood, LIKELIHOODS)

    @property
    def conditional(self) -> bool:
        return self.n_classes > 0

    @property
    def n_pixels(self) -> int:
        c, h, w = self.image_shape
        return c * h * w

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return _from_dict(cls, d)

    replace = replace


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10  # passes over the training set
    batch_size: int = 128  # examples per Adam step
    lr: float = 1e-3  # Adam learning rate
    beta: float = 1.0  # weight on the KL term (β-VAE); 1 is the true ELBO
    warmup_epochs: float = 0.0  # linear KL warm-up: β ramps 0 → beta over this many epochs (0 = off)
    free_bits: float = 0.0  # nats per latent dimension below which the KL is not penalised (0 = off)
    seed: int = 0  # seeds torch and the batch order: CPU runs are reproducible
    device: str = "auto"  # "auto" picks CUDA, then MPS, then CPU; also "cpu", "cuda", "cuda:N", "mps"
    precision: str = "fp32"  # "bf16" autocast (CPU with AMX, CUDA), "fp16" autocast (CUDA only)
    threads: int = 0  # CPU threads for the training steps: 0 = chosen and re-chosen while training (engine/threads.py)
    iwae_k: int = 100  # importance samples for the per-epoch log p(x) estimate
    iwae_examples: int = 500  # test examples used for that estimate
    eval_examples: int = 10_000  # test examples for the per-epoch test ELBO (all of Fashion-MNIST's test set)
    latent_examples: int = 2_000  # fixed test subset whose posterior means make the latent scatter
    mi_samples: int = 500  # draws z ~ q(z|x) (one per example, spread over the test set) for the I(x; z) estimate;
    # its cost is mi_samples × eval_examples Gaussian densities per epoch
    metrics_hz: float = 10.0  # how often per-step metrics are copied to the host and emitted
    snapshot_interval_s: float = 0.5  # latent scatter + decoder snapshot period (seconds): the scatter's redraw rate
    compile: str = "auto"  # "auto": torch.compile the step in the background and switch to it (engine/compiled.py)

    def __post_init__(self):
        for name, (kind, lo, hi, lo_open) in TRAIN_RANGES.items():
            check_range(name, getattr(self, name), lo, hi, kind, lo_open)
        if not isinstance(self.device, str) or not (self.device in DEVICES or re.fullmatch(r"cuda:\d+", self.device)):
            raise ConfigError(f"device must be one of {', '.join(DEVICES)} or cuda:N, got {_show(self.device)}")
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("compile", self.compile, COMPILE_MODES)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return _from_dict(cls, d)

    replace = replace
