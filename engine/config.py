"""Frozen configuration dataclasses. Every default is commented; every field is a plain Python type so a
config round-trips through a checkpoint (``asdict`` / ``from_dict``) and QSettings unchanged."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace

ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian", "continuous_bernoulli")
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")


class ConfigError(ValueError):
    """A setting out of range; the message names the field."""


def _from_dict(cls, d: dict):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
    kw = dict(d)
    if "image_shape" in kw:
        kw["image_shape"] = tuple(int(v) for v in kw["image_shape"])
    return cls(**kw)


@dataclass(frozen=True)
class ModelConfig:
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of the data; set from the dataset
    latent_dim: int = 2  # 2 so the scatter *is* the latent space; any d >= 1 works (PCA view for d > 2)
    arch: str = "mlp"  # "mlp": 784-400-d as in Kingma & Welling; "conv": stride-2 convs down to 4×4 (engine/model.py)
    hidden: int = 400  # width of the fully connected hidden layer (MLP: the only one; conv: after the convolutions)
    likelihood: str = "bernoulli"  # "bernoulli" for [0,1] pixels (logits); "gaussian" with a learned per-pixel σ;
    # "continuous_bernoulli": a normalised density on [0, 1] (logits), for grey pixels

    def __post_init__(self):
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ConfigError(f"image_shape must be (C, H, W) with positive sizes, got {self.image_shape}")
        if self.latent_dim < 1:
            raise ConfigError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.arch not in ARCHS:
            raise ConfigError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.hidden < 8:
            raise ConfigError(f"hidden must be >= 8, got {self.hidden}")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")

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
    metrics_hz: float = 10.0  # how often per-step metrics are copied to the host and emitted
    snapshot_interval_s: float = 1.0  # latent scatter + decoder snapshot period (seconds)

    def __post_init__(self):
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.beta >= 0, "beta must be >= 0"),
            (self.warmup_epochs >= 0, "warmup_epochs must be >= 0"),
            (self.free_bits >= 0, "free_bits must be >= 0"),
            (self.device in DEVICES or re.fullmatch(r"cuda:\d+", self.device) is not None,
             f"device must be one of {DEVICES} or cuda:N, got {self.device!r}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.threads >= 0, f"threads must be >= 0 (0 = automatic), got {self.threads}"),
            (self.iwae_k >= 1, "iwae_k must be >= 1"),
            (self.metrics_hz > 0, "metrics_hz must be > 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return _from_dict(cls, d)

    replace = replace
