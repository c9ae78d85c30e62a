"""The training loop as a generator of plain messages (engine/messages.py).

The GUI's worker thread iterates ``TrainingRun.run()`` and re-emits each message as a Qt signal; the CLI and the
tests iterate it directly. Control (pause / resume / stop / checkpoint) is thread-safe and takes effect between
two steps.

Synchronisation: the step itself never copies anything to the host. Each step writes its batch's
(ELBO, recon, KL) into a preallocated device tensor; ``_flush`` copies the rows written since the last flush in
one ``.cpu()`` about ``metrics_hz`` times a second. Snapshots (latent scatter, decoder weights) are one more copy
about once a second. Those are the only sync points, each marked ``# SYNC``."""
from __future__ import annotations

import math
import threading
import time
import traceback
from collections.abc import Iterator

import numpy as np
import torch

from .checkpoint import Checkpoint, CheckpointError, WriteError, save_checkpoint
from .config import ConfigError, ModelConfig, TrainConfig
from .data.dataset import Dataset
from .decoding import decoder_snapshot
from .history import MetricHistory
from .messages import (CheckpointSaved, EpochSummary, LatentSnapshot, MetricsChunk, RunStarted, StateChanged,
                       WorkerError)
from .model import VAE, n_parameters
from .snapshots_extra import latent_subset
from .files import display_name
from .objectives import Interrupted, active_units, elbo_terms, iwae_bound
from .preflight import check_run


# ----------------------------------------------------------------------------------------------- devices
def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when available, then MPS, then CPU; a forced device that is missing raises ConfigError."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if has_mps else torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for, but this torch build sees no CUDA GPU")
    if requested == "mps" and not has_mps:
        raise ConfigError("device 'mps' asked for, but Apple MPS is not available here")
    return torch.device(requested)


def available_devices() -> list[tuple[str, str]]:
    """(value, label) pairs of the devices this machine really has, best first, for a settings menu."""
    out = [("auto", "Auto (best available)")]
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        out.append((f"cuda:{i}", f"CUDA {i}: {torch.cuda.get_device_name(i)}"))
    mps = getattr(torch.backends, "mps", None)
    if mps and mps.is_available():
        out.append(("mps", "Apple MPS"))
    out.append(("cpu", "CPU"))
    return out


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return device.type


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp32":
        return None
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA GPU; use bf16 on the CPU")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def make_optimizer(model: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam; the fused kernel where torch has one for the device (CPU and CUDA), else the foreach one."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr)


# ----------------------------------------------------------------------------------------------- the run
class _StopRequested(Exception):
    """Raised inside a long evaluation when Stop arrives, so a close never waits for a whole IWAE pass."""


class TrainingRun:
    """One training run: model, optimizer and data on the device, plus the host-side metric history.

    Only the thread that iterates ``run()`` touches the model and optimizer (DESIGN.md boundary 4)."""

    def __init__(self, dataset: Dataset, model_cfg: ModelConfig, train_cfg: TrainConfig,
                 checkpoint: Checkpoint | None = None):
        self.device = pick_device(train_cfg.device)
        check_run(model_cfg, train_cfg, dataset.image_shape, len(dataset.x_train), len(dataset.x_test),
                  on_host=self.device.type == "cpu", device=self.device)
        self.dataset, self.model_cfg, self.cfg = dataset, model_cfg, train_cfg
        self.amp_dtype = autocast_dtype(train_cfg.precision, self.device)
        torch.manual_seed(train_cfg.seed)
        self.model = VAE(model_cfg).to(self.device)
        self.optimizer = make_optimizer(self.model, train_cfg.lr, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.noise = torch.Generator(device=self.device).manual_seed(train_cfg.seed + 1)

        # Data lives on the device; batches are drawn by indexing (no DataLoader, no per-batch collate).
        self.x_train = torch.from_numpy(dataset.x_train).to(self.device)  # (N, C, H, W); zero-copy on CPU
        self.x_test = torch.from_numpy(dataset.x_test).to(self.device)
        n = len(self.x_train)
        self.steps_per_epoch = math.ceil(n / train_cfg.batch_size)
        self.total_steps = self.steps_per_epoch * train_cfg.epochs
        self.latent_idx = latent_subset(len(dataset.x_test), train_cfg.latent_examples)  # fixed scatter subset

        self.history = MetricHistory()
        self.step, self.epoch, self.batch = 0, 0, 0
        if checkpoint is not None:
            self._restore(checkpoint)

        self._pause = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._save_requests: list[str] = []
        self._lock = threading.Lock()
        self.state = "idle"

    # -- control, from any thread ------------------------------------------------------------------
    def pause(self) -> None:
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def rearm(self) -> None:
        """Allow another ``run()`` after a stop: it continues from the current step (Stop is final otherwise, so a
        stop that arrives before the worker starts iterating is never lost)."""
        self._stop.clear()
        self._pause.clear()

    def request_checkpoint(self, path: str) -> None:
        """Saved by the training thread between two steps (or at once while paused); a CheckpointSaved follows."""
        with self._lock:
            self._save_requests.append(str(path))
        self._wake.set()

    # -- checkpoints ----------------------------------------------------------------------------------
    def _restore(self, ck: Checkpoint) -> None:
        if ck.model_config != self.model_cfg:
            raise CheckpointError(f"{display_name(ck.path)}: trained with different model settings ({ck.model_config}); "
                                  f"load it with its own settings")
        self.model.load_state_dict(ck.model_state)
        if ck.optimizer_state and ck.optimizer_state.get("state"):
            # only the validated per-parameter tensors come from the file (checkpoint.check_optimizer_state);
            # the parameter groups (lr, flags) are this run's own
            own = self.optimizer.state_dict()
            try:
                self.optimizer.load_state_dict({"state": ck.optimizer_state["state"], "param_groups": own["param_groups"]})
            except (ValueError, KeyError, RuntimeError) as e:
                raise CheckpointError(f"{display_name(ck.path)}: optimizer state does not fit the model ({e})") from None
        if ck.noise_rng is not None and self.device.type == "cpu":
            try:
                self.noise.set_state(ck.noise_rng)
            except RuntimeError:  # a state from another device's generator: the run's seed stands
                pass
        self.history = MetricHistory.from_state(ck.history.to_state())  # a copy: the caller's checkpoint stays as read
        self.step, self.epoch, self.batch = ck.step, ck.epoch, ck.batch
        done_epochs = ck.step // self.steps_per_epoch if self.steps_per_epoch else 0
        if (ck.epoch, ck.batch) != (done_epochs, ck.step % self.steps_per_epoch):
            # a checkpoint from a run with another batch size: continue at the next epoch boundary
            self.epoch, self.batch = math.ceil(ck.step / self.steps_per_epoch), 0

    def save(self, path: str) -> None:
        """Write a checkpoint now. Call only from the training thread, or when no run is iterating."""
        save_checkpoint(path, model_config=self.model_cfg, train_config=self.cfg, model_state=self.model.state_dict(),
                        optimizer_state=self.optimizer.state_dict(), step=self.step, epoch=self.epoch, batch=self.batch,
                        history=self.history, dataset=self.dataset.identity(), noise_rng=self.noise.get_state())

    def _handle_saves(self) -> Iterator[CheckpointSaved | WorkerError]:
        with self._lock:
            paths, self._save_requests = self._save_requests, []
        for p in paths:
            try:
                self.save(p)
                yield CheckpointSaved(p, self.step)
            except (OSError, RuntimeError) as e:  # a failed save is reported; training goes on
                reason = str(e) if isinstance(e, WriteError) else f"could not write {display_name(p)}: {getattr(e, 'strerror', None) or e}"
                yield WorkerError(f"Checkpoint not saved: {reason}", fatal=False)

    # -- the loop ----------------------------------------------------------------------------------------
    def _beta(self, step: int) -> float:
        if self.cfg.warmup_epochs <= 0:
            return self.cfg.beta
        return self.cfg.beta * min(1.0, step / (self.cfg.warmup_epochs * self.steps_per_epoch))

    def _permutation(self, epoch: int) -> torch.Tensor:
        """The batch order of an epoch depends only on (seed, epoch): a resumed run sees the same batches."""
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.x_train), generator=g).to(self.device)

    def _train_step(self, x: torch.Tensor, beta: float, out_row: torch.Tensor) -> None:
        eps = torch.randn((len(x), self.model_cfg.latent_dim), device=self.device, generator=self.noise)
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            t = elbo_terms(self.model, x, beta, self.cfg.free_bits, eps)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(t.loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            t.loss.backward()
            self.optimizer.step()
        out_row.copy_(torch.stack((t.elbo.mean(), t.recon.mean(), t.kl.mean())).detach())  # stays on the device

    def run(self) -> Iterator:
        """Train until the configured number of epochs, or until stopped. Yields messages; never raises for
        a training problem (it yields WorkerError / StateChanged instead)."""
        try:
            yield from self._run()
        except Exception as e:  # the window must survive anything the worker hits
            self.state = "error"
            yield WorkerError(f"Training failed: {type(e).__name__}: {e}", traceback.format_exc())

    def _run(self) -> Iterator:
        cfg, spe = self.cfg, self.steps_per_epoch
        yield RunStarted(device_label(self.device), cfg.precision, self.total_steps, spe, self.step, self.epoch,
                         n_parameters(self.model))
        self.model.train()
        buf = torch.zeros((spe, 3), device=self.device)  # per-step (elbo, recon, kl) of the current epoch
        good = self._copy_state()  # last weights whose losses were all finite
        self.state = "running"
        yield StateChanged("running", step=self.step, epoch=self.epoch)
        yield from self._snapshots()
        flush_every = 1.0 / cfg.metrics_hz
        while self.epoch < cfg.epochs:
            perm = self._permutation(self.epoch)
            flushed = self.batch  # rows of buf already sent
            t_epoch = t_flush = t_snap = time.monotonic()
            samples = 0
            while self.batch < spe:
                if self._stop.is_set():
                    yield from self._finish_flush(buf, flushed, samples, t_flush)
                    yield from self._stopped("")
                    return
                if self._pause.is_set():
                    yield from self._finish_flush(buf, flushed, samples, t_flush)
                    flushed, samples = self.batch, 0
                    yield from self._paused("paused", "Paused.")
                    t_flush = time.monotonic()
                    continue
                if self._save_requests:
                    yield from self._handle_saves()
                i = self.batch
                idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                self._train_step(self.x_train[idx], self._beta(self.step), buf[i])
                samples += len(idx)
                self.batch += 1
                self.step += 1
                now = time.monotonic()
                if now - t_flush >= flush_every:
                    chunk = self._flush(buf, flushed, self.batch, samples / max(now - t_flush, 1e-9))
                    flushed, samples, t_flush = self.batch, 0, now
                    if not np.isfinite(chunk.elbo).all():
                        yield from self._diverge(good)
                        continue
                    yield chunk
                    if now - t_snap >= cfg.snapshot_interval_s:
                        good = self._copy_state()
                        yield from self._snapshots()
                        t_snap = time.monotonic()
            chunk = self._flush(buf, flushed, spe, samples / max(time.monotonic() - t_flush, 1e-9))
            if len(chunk.steps) and not np.isfinite(chunk.elbo).all():
                yield from self._diverge(good)
            elif len(chunk.steps):
                yield chunk
            if self._stop.is_set():
                yield from self._stopped(" (at the end of the epoch)")
                return
            seconds = time.monotonic() - t_epoch
            try:
                summary = self.evaluate(seconds)
            except _StopRequested:
                self.epoch, self.batch = self.epoch + 1, 0
                yield from self._stopped(" (during the end-of-epoch evaluation)")
                return
            self.epoch, self.batch = self.epoch + 1, 0
            if not _finite_summary(summary):  # the weights are bad although the last steps looked fine
                yield from self._diverge(good)
                if self._stop.is_set():
                    yield from self._stopped("")
                    return
                continue
            self.history.add_epoch(summary)
            good = self._copy_state()  # only weights whose evaluation was finite become the good copy
            yield summary
            yield from self._snapshots()
        self.state = "finished"
        yield StateChanged("finished", f"Finished {cfg.epochs} epochs.", self.step, self.epoch)

    def _diverge(self, good) -> Iterator:
        """Restore the last good weights and pause as "diverged" until resumed or stopped."""
        self._load_state(good)
        yield StateChanged("diverged", "The loss became NaN/Inf: training paused and the last good weights "
                           "restored. Lower the learning rate or use fp32, then resume.", self.step, self.epoch)
        yield from self._paused("diverged", None)

    def _stopped(self, when: str) -> Iterator:
        self.state = "stopped"
        yield StateChanged("stopped", f"Stopped by the user{when}.", self.step, self.epoch)

    def _paused(self, state: str, text: str | None) -> Iterator:
        self.state = state
        if text is not None:
            yield StateChanged(state, text, self.step, self.epoch)
        self._pause.set()
        while self._pause.is_set() and not self._stop.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            if self._save_requests:
                yield from self._handle_saves()
        if not self._stop.is_set():
            self.state = "running"
            yield StateChanged("running", "Resumed.", self.step, self.epoch)

    def _flush(self, buf: torch.Tensor, start: int, end: int, samples_per_s: float) -> MetricsChunk:
        rows = buf[start:end].double().cpu().numpy()  # SYNC: the one device→host copy of metrics per flush
        n = end - start
        first = self.epoch * self.steps_per_epoch + start
        chunk = MetricsChunk(np.arange(first, first + n, dtype=np.int64), rows[:, 0].copy(), rows[:, 1].copy(),
                             rows[:, 2].copy(), self.epoch, self.step, self.total_steps, self.steps_per_epoch,
                             float(samples_per_s), float(self._beta(self.step)))
        if n and np.isfinite(rows).all():
            self.history.add_chunk(chunk)
        return chunk

    def _finish_flush(self, buf, start, samples, t0) -> Iterator[MetricsChunk]:
        if self.batch > start:
            chunk = self._flush(buf, start, self.batch, samples / max(time.monotonic() - t0, 1e-9))
            yield chunk

    def _copy_state(self) -> tuple[dict, dict]:
        return ({k: v.detach().clone() for k, v in self.model.state_dict().items()},
                _clone(self.optimizer.state_dict()))

    def _load_state(self, state: tuple[dict, dict]) -> None:
        self.model.load_state_dict(state[0])
        self.optimizer.load_state_dict(state[1])

    # -- evaluation & snapshots ----------------------------------------------------------------------------
    def _snapshots(self) -> Iterator:
        yield self.latent_snapshot()
        yield decoder_snapshot(self.model, self.step)  # SYNC: decoder weights to the host, ~1 Hz

    @torch.no_grad()
    def latent_snapshot(self) -> LatentSnapshot:
        was_training = self.model.training
        self.model.eval()
        idx = torch.from_numpy(self.latent_idx).to(self.device)
        mu, log_var = self.model.encode(self.x_test[idx])
        self.model.train(was_training)
        y = self.dataset.y_test
        return LatentSnapshot(self.step, self.epoch, mu.cpu().numpy().copy(), log_var.cpu().numpy().copy(),  # SYNC
                              None if y is None else y[self.latent_idx].copy(), self.latent_idx.copy())

    def _check_stop(self) -> None:
        if self._stop.is_set():
            self.model.train()
            raise _StopRequested

    @torch.no_grad()
    def evaluate(self, seconds: float = 0.0) -> EpochSummary:
        """Test ELBO (one reparameterised sample per example, fixed noise seed), IWAE on a subset, KL per
        dimension and active units."""
        cfg = self.cfg
        self.model.eval()
        g = torch.Generator(device=self.device).manual_seed(cfg.seed + 7)
        x_eval = self.x_test[: cfg.eval_examples]
        sums = torch.zeros(3, device=self.device)
        kl_dims = torch.zeros(self.model_cfg.latent_dim, device=self.device)
        mus = []
        for start in range(0, len(x_eval), 1000):
            self._check_stop()
            x = x_eval[start:start + 1000]
            eps = torch.randn((len(x), self.model_cfg.latent_dim), device=self.device, generator=g)
            t = elbo_terms(self.model, x, 1.0, 0.0, eps)
            sums += torch.stack((t.elbo.sum(), t.recon.sum(), t.kl.sum()))
            kl_dims += t.kl_dims.sum(0)
            mus.append(t.mu)
        n = len(x_eval)
        au, au_var = active_units(torch.cat(mus))
        x_iw = self.x_test[: cfg.iwae_examples]
        iw_parts = []
        for s in range(0, len(x_iw), 100):
            try:
                iw_parts.append(iwae_bound(self.model, x_iw[s:s + 100], cfg.iwae_k, generator=g,
                                           should_stop=self._stop.is_set))
            except Interrupted:
                self._check_stop()
        iw = torch.cat(iw_parts)
        el_sub = torch.cat([elbo_terms(self.model, x_iw[s:s + 1000], 1.0, 0.0,
                                       torch.randn((len(x_iw[s:s + 1000]), self.model_cfg.latent_dim),
                                                   device=self.device, generator=g)).elbo
                            for s in range(0, len(x_iw), 1000)])
        self.model.train()
        host = torch.cat((sums / n, iw.mean().view(1), el_sub.mean().view(1))).double().cpu().numpy()  # SYNC, per epoch
        test_elbo = float(host[0])
        return EpochSummary(
            epoch=self.epoch, step=self.step,
            train_elbo=float(np.mean(self.history.column("elbo")[-self.steps_per_epoch:])) if len(self.history) else float("nan"),
            test_elbo=test_elbo, test_recon=float(host[1]), test_kl=float(host[2]), test_iwae=float(host[3]),
            test_elbo_subset=float(host[4]), iwae_k=cfg.iwae_k,
            bits_per_dim=-test_elbo / (self.model_cfg.n_pixels * math.log(2)),
            kl_per_dim=(kl_dims / n).double().cpu().numpy(), active_units=au, au_variance=au_var.double().cpu().numpy(),
            seconds=seconds)


def _finite_summary(s: EpochSummary) -> bool:
    return all(math.isfinite(v) for v in (s.test_elbo, s.test_recon, s.test_kl, s.test_iwae, s.test_elbo_subset))


def _clone(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clone(v) for v in obj]
    return obj
