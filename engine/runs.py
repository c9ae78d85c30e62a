"""Finished runs side by side: a run's record is its settings and its metric history (curves only: no weights, so a
run in the list costs a few arrays and removing it frees them), its rate–distortion points, and the settings that
tell the compared runs apart (for the legend)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoint import load_checkpoint
from .config import ModelConfig, TrainConfig
from .history import MetricHistory

# settings a legend names, in this order, with their short names; the others (seeds, evaluation sizes) are left out
_NAMED = (
    ("model", "arch", "arch"),
    ("model", "latent_dim", "d"),
    ("model", "hidden", "hidden"),
    ("model", "likelihood", "likelihood"),
    ("model", "n_classes", "classes"),
    ("train", "beta", "β"),
    ("train", "warmup_epochs", "warm-up"),
    ("train", "free_bits", "free bits"),
    ("train", "batch_size", "batch"),
    ("train", "lr", "lr"),
    ("train", "precision", "precision"),
    ("train", "seed", "seed"),
)


@dataclass(frozen=True, eq=False)
class RunRecord:
    name: str  # "run 2", or the checkpoint's file name
    model_config: ModelConfig
    train_config: TrainConfig
    history: MetricHistory

    def setting(self, group: str, key: str):
        return getattr(self.model_config if group == "model" else self.train_config, key)


def record_of_checkpoint(path) -> RunRecord:
    """A checkpoint's settings and curves (its weights are read, checked and dropped); raises CheckpointError."""
    ck = load_checkpoint(path)
    return RunRecord(Path(path).name, ck.model_config, ck.train_config, ck.history)


def rate_distortion(history: MetricHistory) -> tuple[np.ndarray, np.ndarray]:
    """Each epoch's (rate, distortion) on the test set: rate = KL(q(z|x) ‖ p(z)), distortion = −E_q[log p(x|z)],
    both nats per example. Runs with different β lie on one plane: a larger β buys a lower rate with more
    distortion (Alemi et al., 2018, "Fixing a broken ELBO")."""
    rate = np.array([e.test_kl for e in history.epochs], np.float64)
    return rate, -np.array([e.test_recon for e in history.epochs], np.float64)


def differing_settings(runs: list[RunRecord]) -> list[str]:
    """For each run, the settings in which the runs differ, as "β=4 · d=8" ("" when they all agree or there is one)."""
    keys = [(g, k, short) for g, k, short in _NAMED if len({str(r.setting(g, k)) for r in runs}) > 1]
    return [" · ".join(f"{short}={_show(r.setting(g, k))}" for g, k, short in keys) for r in runs]


def _show(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
