"""Host-side metric history: what the curves show, what a checkpoint keeps, what the CSV export writes."""

from __future__ import annotations

import csv
import io
from dataclasses import fields

import numpy as np

from .messages import EpochSummary, MetricsChunk

STEP_FIELDS = ("steps", "elbo", "recon", "kl")
EPOCH_SCALARS = tuple(f.name for f in fields(EpochSummary) if f.name not in ("kl_per_dim", "au_variance"))
OPTIONAL_EPOCH_SCALARS = ("test_mi", "test_marginal_kl")  # absent from histories saved before they were measured


class MetricHistory:
    """Per-step rows (appended one chunk at a time) and per-epoch summaries."""

    def __init__(self):
        self._parts: dict[str, list[np.ndarray]] = {k: [] for k in STEP_FIELDS}
        self._cache: dict[str, np.ndarray] | None = None
        self.epochs: list[EpochSummary] = []

    def add_chunk(self, chunk: MetricsChunk) -> bool:
        """Append a chunk's rows; a chunk with any NaN/Inf value (a diverging step) is left out whole, so every
        copy of a run's history holds the same rows. True when rows were added."""
        if not len(chunk.steps) or not chunk.finite():
            return False
        for k in STEP_FIELDS:
            self._parts[k].append(getattr(chunk, k))
        self._cache = None
        return True

    def add_epoch(self, summary: EpochSummary) -> None:
        self.epochs.append(summary)

    def _arrays(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._cache = {
                k: np.concatenate(self._parts[k])
                if self._parts[k]
                else np.zeros(0, np.int64 if k == "steps" else np.float64)
                for k in STEP_FIELDS
            }
            self._parts = {k: [v] for k, v in self._cache.items()}  # consolidated: later appends stay cheap
        return self._cache

    @property
    def steps(self) -> np.ndarray:
        return self._arrays()["steps"]

    def column(self, name: str) -> np.ndarray:
        return self._arrays()[name]

    def __len__(self) -> int:
        return len(self.steps)

    # --- serialisation (plain lists / numpy; the checkpoint turns them into tensors) ---
    def to_state(self) -> dict:
        a = self._arrays()
        return {
            "steps": {k: a[k].copy() for k in STEP_FIELDS},
            "epochs": [
                {
                    **{k: getattr(s, k) for k in EPOCH_SCALARS},
                    "kl_per_dim": s.kl_per_dim.copy(),
                    "au_variance": s.au_variance.copy(),
                }
                for s in self.epochs
            ],
        }

    @classmethod
    def from_state(cls, state: dict) -> "MetricHistory":
        h = cls()
        steps = state["steps"]
        arrays = {k: np.asarray(steps[k], dtype=np.int64 if k == "steps" else np.float64) for k in STEP_FIELDS}
        h._parts = {k: [v] for k, v in arrays.items()}
        for e in state["epochs"]:
            kw = {k: e[k] for k in EPOCH_SCALARS if k in e or k not in OPTIONAL_EPOCH_SCALARS}
            kw.update(
                kl_per_dim=np.asarray(e["kl_per_dim"], np.float64), au_variance=np.asarray(e["au_variance"], np.float64)
            )
            h.epochs.append(EpochSummary(**kw))
        return h

    def to_csv(self) -> str:
        """One row per training step, counted from 1 as the window and the checkpoint count them (row n: the n-th
        step done); the test columns are filled on the last step of each epoch."""
        a = self._arrays()
        by_step = {s.step: s for s in self.epochs}
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        test_cols = (
            "test_elbo",
            "test_recon",
            "test_kl",
            "test_iwae",
            "iwae_k",
            "bits_per_dim",
            "active_units",
            "test_mi",
            "test_marginal_kl",
        )
        w.writerow(("step", "train_elbo", "train_recon", "train_kl", "epoch") + test_cols)
        for i, step in enumerate(a["steps"]):
            done = int(step) + 1  # the history stores each step's 0-based index
            s = by_step.get(done)
            row = [done, f"{a['elbo'][i]:.6f}", f"{a['recon'][i]:.6f}", f"{a['kl'][i]:.6f}"]
            row += [s.epoch + 1] + [_fmt(getattr(s, c)) for c in test_cols] if s else [""] * (1 + len(test_cols))
            w.writerow(row)
        return out.getvalue()


def _fmt(v) -> str:
    return f"{v:.6f}" if isinstance(v, float) else str(v)
