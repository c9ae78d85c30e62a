"""Plain messages that cross from the worker thread to the GUI (DESIGN.md boundary 3).

Frozen dataclasses of *fresh* numpy arrays and Python scalars: never tensors, never views into buffers the
trainer reuses. All ELBO-type numbers are in nats per example (summed over pixels, averaged over examples)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


@dataclass(frozen=True)
class MetricsChunk:
    """Per-step training metrics since the last flush (~10 Hz)."""

    steps: np.ndarray  # (n,) int64 global step index (0-based) of each row
    elbo: np.ndarray  # (n,) float64 batch ELBO, nats per example
    recon: np.ndarray  # (n,) float64 batch E_q[log p(x|z)], nats per example
    kl: np.ndarray  # (n,) float64 batch KL(q(z|x) || p(z)), nats per example
    epoch: int  # 0-based epoch the last row belongs to
    step: int  # global steps done so far
    total_steps: int  # steps in the whole run
    steps_per_epoch: int
    samples_per_s: float  # training throughput over the last flush interval
    beta: float  # current KL weight (after warm-up)
    threads: int = 0  # CPU threads the training steps use now (engine/threads.py); 0 on a GPU

    def finite(self) -> bool:
        """Every row's ELBO and its two terms are finite: the rule for a diverged chunk (the trainer restores
        the last good weights) and for a chunk a history keeps (rows with NaN/Inf are left out whole)."""
        return all(bool(np.isfinite(v).all()) for v in (self.elbo, self.recon, self.kl))


@dataclass(frozen=True)
class EpochSummary:
    """End-of-epoch evaluation on the test set."""

    epoch: int  # 0-based epoch just finished
    step: int
    train_elbo: float  # mean batch ELBO over the epoch
    test_elbo: float
    test_recon: float
    test_kl: float
    test_iwae: float  # importance-weighted estimate of log p(x), K samples, on a subset
    test_elbo_subset: float  # ELBO on that same subset, so the gap iwae - elbo is like-for-like
    iwae_k: int
    bits_per_dim: float  # -test_elbo / (D ln 2)
    kl_per_dim: np.ndarray  # (d,) mean KL per latent dimension, nats
    active_units: int  # dims with Cov_x(E_q[z]) > 0.01 (Burda et al., 2016)
    au_variance: np.ndarray  # (d,) the statistic behind active_units
    seconds: float  # wall time of the epoch (training only)
    test_mi: float = float("nan")  # I_q(x; z) over the test examples, nats (engine/mutual_information.py)
    test_marginal_kl: float = float("nan")  # KL(q(z) ‖ p(z)) = test_kl − test_mi: the aggregate posterior's KL


@dataclass(frozen=True)
class LatentSnapshot:
    """Posterior means of a fixed test subset (about twice a second)."""

    step: int
    epoch: int
    means: np.ndarray  # (n, d) float32, E_q[z|x] = μ(x)
    log_var: np.ndarray  # (n, d) float32
    labels: np.ndarray | None  # (n,) int64
    indices: np.ndarray  # (n,) int64 positions in the dataset's test split


@dataclass(frozen=True)
class WeightsSnapshot:
    """A copy of the model's weights (decoder, encoder, likelihood), so another thread can decode, reconstruct
    and study inference while training goes on (boundary 4)."""

    step: int
    model_config: dict  # ModelConfig.to_dict()
    weights: dict = field(repr=False)  # parameter name -> fresh float32 numpy array


class RunStatus(str, Enum):
    """Where a run (or the model on show) stands: the one vocabulary of the trainer, the CLI and the window. A str,
    so it compares equal to its value ("running")."""

    IDLE = "idle"  # no model
    STARTING = "starting"  # Start pressed: the run is being built on its thread
    RUNNING = "running"
    PAUSED = "paused"
    DIVERGED = "diverged"  # NaN/Inf: the last good weights restored, paused until resumed or stopped
    STOPPED = "stopped"  # by the user (or the run's thread ended early)
    FINISHED = "finished"  # every epoch done
    ERROR = "error"
    LOADED = "loaded"  # a checkpoint is the model on show

    def __str__(self) -> str:
        return self.value

    @property
    def active(self) -> bool:
        """A run exists and has not ended: it may train on, so its settings and data are in use."""
        return self in (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.DIVERGED)

    @property
    def halted(self) -> bool:
        """Paused, by the user or by a divergence: Resume goes on."""
        return self in (RunStatus.PAUSED, RunStatus.DIVERGED)

    @property
    def moving(self) -> bool:
        """Steps are being taken (or about to be): throughput and time left mean something."""
        return self in (RunStatus.STARTING, RunStatus.RUNNING)

    @property
    def at_rest(self) -> bool:
        """The weights stand still (paused, stopped, finished): every view may be drawn in full."""
        return self in (RunStatus.PAUSED, RunStatus.STOPPED, RunStatus.FINISHED)

    def ended(self) -> "RunStatus":
        """The status once the run's thread has ended: a run that had not finished or failed was stopped."""
        return RunStatus.STOPPED if self.active else self


@dataclass(frozen=True)
class StateChanged:
    """A run's new status (RunStatus): running, paused, stopped (by the user), finished, diverged (NaN/Inf, paused)."""

    state: RunStatus
    text: str = ""
    step: int = 0
    epoch: int = 0


@dataclass(frozen=True)
class CheckpointSaved:
    path: str
    step: int


@dataclass(frozen=True)
class WorkerError:
    """An exception in the worker, as one line for a dialog plus the traceback for a 'details' box. ``fatal``
    False: a failure the run survives (a checkpoint that could not be saved); training goes on."""

    text: str
    detail: str = ""
    fatal: bool = True


@dataclass(frozen=True)
class RunStarted:
    device: str  # e.g. "cpu", "cuda:0 (NVIDIA H100)"
    precision: str
    total_steps: int
    steps_per_epoch: int
    start_step: int  # > 0 when resuming from a checkpoint
    start_epoch: int
    n_params: int
    threads: str = ""  # how CPU threads are chosen: "auto (up to N)", "N (fixed)"; "" on a GPU
    data_placement: str = ""  # where the training images live (engine/placement.py), one line


@dataclass(frozen=True)
class CompileStatus:
    """Which training step runs (engine/compiled.py): 'compiling' (eager meanwhile), 'compiled' (the compiled
    step runs, from ``step`` on), or 'eager' (off, unsupported, or compiling failed: ``text`` says why)."""

    state: str
    text: str
    step: int = 0
