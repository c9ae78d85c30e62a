"""The training loop as a generator of plain messages (engine/messages.py).

The GUI's worker thread iterates ``Trainer.run()`` and re-emits each message as a Qt signal; the CLI and the
tests iterate it directly. Control (pause / resume / stop / checkpoint) is thread-safe and takes effect between
two steps.

Synchronisation: the step itself never copies anything to the host. Each step writes its batch's
(ELBO, recon, KL) into a preallocated device tensor; ``_flush`` copies the rows written since the last flush in
one ``.cpu()`` about ``metrics_hz`` times a second. Snapshots (latent scatter, decoder weights) are one more copy
about twice a second. Those are the only sync points, each marked ``# SYNC``."""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections.abc import Iterator

import numpy as np
import torch

from .checkpoint import Checkpoint, checkpoint_of_run, restore_run, write_checkpoint
from .compiled import for_run as compiled_step_for
from .config import ModelConfig, TrainConfig
from .data.dataset import Dataset
from .devices import autocast_dtype, device_label, make_optimizer, pick_device
from .distributed import AGREE_EVERY, Distributed
from .evaluation import RunEvaluation, StopRequested
from .snapshot import decoder_snapshot, latent_subset
from .history import MetricHistory
from .messages import (
    CheckpointSaved,
    CompileStatus,
    EpochSummary,
    MetricsChunk,
    RunStarted,
    RunStatus,
    StateChanged,
    WorkerError,
)
from .model import VAE, n_parameters
from .files import WriteError, display_name
from .objectives import elbo_terms
from .placement import TrainingImages, can_pin_memory, choose_placement, free_memory
from .preflight import check_run
from .threads import ThreadGovernor, flush_denormals, governor_for, set_training_threads, start_training_thread


SNAPSHOT_MAX_SHARE = 0.2  # latent + decoder snapshots take at most this share of a run's wall time


# ----------------------------------------------------------------------------------------------- the run
class Trainer(RunEvaluation):
    """One training run: model, optimizer and data on the device, plus the host-side metric history.

    Only the thread that iterates ``run()`` touches the model and optimizer (DESIGN.md boundary 4)."""

    def __init__(
        self,
        dataset: Dataset,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        checkpoint: Checkpoint | None = None,
        dist: Distributed | None = None,
    ):
        flush_denormals()  # before this thread's first parallel op, so that its OpenMP workers flush too
        self.device = dist.device(train_cfg.device) if dist else pick_device(train_cfg.device)
        # where the training images live (engine/placement.py), decided before the memory check that counts them
        placement = choose_placement(dataset.x_train.nbytes, self.device, free_memory(self.device), can_pin_memory())
        copied = (
            0 if self.device.type == "cpu" else dataset.x_test.nbytes + placement.on_device * dataset.x_train.nbytes
        )
        check_run(
            model_cfg,
            train_cfg,
            dataset.image_shape,
            len(dataset.x_train),
            len(dataset.x_test),
            device_data=copied,
            device=self.device,
            label_classes=dataset.n_classes,
        )
        self.dataset, self.model_cfg, self.cfg, self.dist = dataset, model_cfg, train_cfg, dist
        if dist:
            dist.check_batch(train_cfg.batch_size)
            dist.start(self.device)
        self.amp_dtype = autocast_dtype(train_cfg.precision, self.device)
        torch.manual_seed(train_cfg.seed)
        self.model = VAE(model_cfg).to(self.device)
        self._forward = dist.wrap(self.model) if dist else self.model  # DDP averages the gradients across ranks
        self.optimizer = make_optimizer(self.model, train_cfg.lr, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.noise = torch.Generator(device=self.device).manual_seed(train_cfg.seed + 1)
        # CPU threads of the training steps; under torchrun the machine's ranks share its cores
        self.governor = governor_for(self.device.type, train_cfg.threads, dist.cpu_threads() if dist else None)

        # Data lives on the device as stored (uint8, or float32 off the 1/255 grid); batches are drawn by indexing
        # (no DataLoader, no per-batch collate) and become float there (to_float).
        self.train_images = TrainingImages(dataset.x_train, self.device, placement)  # (N, C, H, W)
        self.x_test = torch.from_numpy(dataset.x_test).to(self.device)
        # a conditional model's labels: on the training device whatever the images' placement (8 bytes each)
        labelled = model_cfg.conditional
        self.y_train = torch.from_numpy(dataset.y_train).to(self.device) if labelled else None
        self.y_test = torch.from_numpy(dataset.y_test).to(self.device) if labelled else None
        n = len(self.train_images)
        self.steps_per_epoch = math.ceil(n / train_cfg.batch_size)
        self.total_steps = self.steps_per_epoch * train_cfg.epochs
        self.latent_idx = latent_subset(len(dataset.x_test), train_cfg.latent_examples)  # fixed scatter subset

        self.history = MetricHistory()
        self.step, self.epoch, self.batch = 0, 0, 0
        if checkpoint is not None:
            restore_run(self, checkpoint)
        self.compiled, self.compile_note = compiled_step_for(self)  # compiling in the background, or why not

        self._pause = threading.Event()
        self._stop = threading.Event()
        self._stop_agreed = False  # under torchrun: every rank has seen a stop request (see _flush_due)
        self._wake = threading.Event()
        self._save_requests: list[str] = []
        self._retuned: TrainConfig | None = None  # settings for the steps after the next resume (retune)
        self._lock = threading.Lock()
        self.state = RunStatus.IDLE

    # -- control, from any thread ------------------------------------------------------------------
    def pause(self) -> None:
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def retune(self, lr: float | None = None, precision: str | None = None) -> TrainConfig:
        """New learning rate and/or precision for the steps after the next resume (e.g. after a divergence): checked
        here (ConfigError), applied by the training thread when it leaves its pause. Returns the settings then in
        force; the checkpoint records them."""
        changes = {k: v for k, v in (("lr", lr), ("precision", precision)) if v is not None}
        cfg = self.cfg.replace(**changes)  # ConfigError names a value out of range
        autocast_dtype(cfg.precision, self.device)  # ConfigError: fp16 without CUDA
        with self._lock:
            self._retuned = cfg
        return cfg

    def _apply_retune(self) -> None:  # the training thread, while paused
        with self._lock:
            cfg, self._retuned = self._retuned, None
        if cfg is None:
            return
        if cfg.precision != self.cfg.precision:
            self.amp_dtype = autocast_dtype(cfg.precision, self.device)
            self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr
        self.cfg = cfg

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
    def save(self, path: str) -> None:
        """Write a checkpoint now. Call only from the training thread, or when no run is iterating."""
        write_checkpoint(path, checkpoint_of_run(self, copy=False))

    def _handle_saves(self) -> Iterator[CheckpointSaved | WorkerError]:
        with self._lock:
            paths, self._save_requests = self._save_requests, []
        for p in paths:
            try:
                self.save(p)
                yield CheckpointSaved(p, self.step)
            except (OSError, RuntimeError) as e:  # a failed save is reported; training goes on
                reason = (
                    str(e)
                    if isinstance(e, WriteError)
                    else f"could not write {display_name(p)}: {getattr(e, 'strerror', None) or e}"
                )
                yield WorkerError(f"Checkpoint not saved: {reason}", fatal=False)

    # -- the loop ----------------------------------------------------------------------------------------
    def _beta(self, step: int) -> float:
        if self.cfg.warmup_epochs <= 0:
            return self.cfg.beta
        return self.cfg.beta * min(1.0, step / (self.cfg.warmup_epochs * self.steps_per_epoch))

    def _permutation(self, epoch: int) -> torch.Tensor:
        """The batch order of an epoch depends only on (seed, epoch): a resumed run sees the same batches."""
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.train_images), generator=g).to(self.train_images.index_device)

    def _train_step(self, idx: torch.Tensor, beta: float, out_row: torch.Tensor, y: torch.Tensor | None) -> None:
        """One Adam step on the batch ``idx`` (labels ``y`` for a conditional model); under torchrun on this rank's
        part of it (engine/distributed.py)."""
        eps = torch.randn((len(idx), self.model_cfg.latent_dim), device=self.device, generator=self.noise)
        if self.dist:
            rows = self.dist.rows(len(idx))
            idx, eps = idx[rows], eps[rows]
            y = None if y is None else y[rows]
        x = self.train_images.batch(idx)
        fast = self.compiled.loss(x, eps, beta, y, self.step) if self.compiled else None  # None: not ready/this shape
        if fast is None:
            with torch.autocast(
                self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
            ):
                t = elbo_terms(self._forward, x, beta, self.cfg.free_bits, eps, y)
            fast = t.loss, torch.stack((t.elbo.mean(), t.recon.mean(), t.kl.mean())).detach()
        loss, row = fast
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        out_row.copy_(row)  # stays on the device
        if self.dist:
            self.dist.average_(out_row)  # the global batch's figures, the same on every rank

    def run(self) -> Iterator:
        """Train until the configured number of epochs, or until stopped. Yields messages; never raises for
        a training problem (it yields WorkerError / StateChanged instead)."""
        try:
            yield from self._run()
        except Exception as e:  # the window must survive anything the worker hits
            self.state = RunStatus.ERROR
            yield WorkerError(f"Training failed: {type(e).__name__}: {e}", traceback.format_exc())

    def _run(self) -> Iterator:
        cfg, spe, gov = self.cfg, self.steps_per_epoch, self.governor
        start_training_thread(gov)  # this thread may not be the one that built the run
        yield RunStarted(
            device_label(self.device),
            cfg.precision,
            self.total_steps,
            spe,
            self.step,
            self.epoch,
            n_parameters(self.model),
            _threads_label(gov),
            self.train_images.placement.reason,
        )
        yield CompileStatus(*(self.compiled.announce() if self.compiled else ("eager", self.compile_note)), self.step)
        self.model.train()
        buf = torch.zeros((spe, 3), device=self.device)  # per-step (elbo, recon, kl) of the current epoch
        good = self._copy_state()  # last weights whose losses were all finite
        self.state = RunStatus.RUNNING
        yield StateChanged(RunStatus.RUNNING, step=self.step, epoch=self.epoch)
        t_snap = time.monotonic()
        yield from self._snapshots()
        snap_every = self._snapshot_period(time.monotonic() - t_snap)
        flush_every = 1.0 / cfg.metrics_hz
        while self.epoch < cfg.epochs:
            perm = self._permutation(self.epoch)
            labels = None if self.y_train is None else self.y_train[perm.to(self.device)]  # in batch order
            flushed = self.batch  # rows of buf already sent
            t_epoch = t_flush = t_snap = time.monotonic()
            samples = 0
            while self.batch < spe:
                if self._stopping():
                    yield from self._finish_flush(buf, flushed, samples, t_flush)
                    yield from self._stopped("")
                    return
                if self._pause.is_set():
                    yield from self._finish_flush(buf, flushed, samples, t_flush)
                    flushed, samples = self.batch, 0
                    yield from self._paused(RunStatus.PAUSED, "Paused.")
                    t_flush = time.monotonic()
                    continue
                if self._save_requests:
                    yield from self._handle_saves()
                i = self.batch
                batch = slice(i * cfg.batch_size, (i + 1) * cfg.batch_size)
                idx, y = perm[batch], None if labels is None else labels[batch]
                t_step = time.perf_counter()
                self._train_step(idx, self._beta(self.step), buf[i], y)
                if gov is not None:  # a CPU step has finished when it returns: its wall time is real
                    set_training_threads(gov.step_done(len(idx), time.perf_counter() - t_step))
                samples += len(idx)
                self.batch += 1
                self.step += 1
                now = time.monotonic()
                if self._flush_due(now - t_flush >= flush_every):
                    chunk = self._flush(buf, flushed, self.batch, samples / max(now - t_flush, 1e-9))
                    flushed, samples, t_flush = self.batch, 0, now
                    if not chunk.finite():
                        yield from self._diverge(good)
                        continue
                    yield chunk
                    yield from self._compile_news()
                    if self._snapshot_due(now - t_snap >= snap_every):
                        good = self._copy_state()
                        yield from self._snapshots()
                        t_snap = time.monotonic()
                        snap_every = self._snapshot_period(t_snap - now)
            chunk = self._flush(buf, flushed, spe, samples / max(time.monotonic() - t_flush, 1e-9))
            if len(chunk.steps) and not chunk.finite():
                yield from self._diverge(good)
            elif len(chunk.steps):
                yield chunk
                yield from self._compile_news()
            if self._stopping():
                yield from self._stopped(" (at the end of the epoch)")
                return
            seconds = time.monotonic() - t_epoch
            if gov is not None:  # the evaluation at the held thread count, not at a probe's
                set_training_threads(gov.interrupt())
            try:
                summary = self.evaluate(seconds)
            except StopRequested:
                self.epoch, self.batch = self.epoch + 1, 0
                yield from self._stopped(" (during the end-of-epoch evaluation)")
                return
            self.epoch, self.batch = self.epoch + 1, 0
            if not _finite_summary(summary):  # the weights are bad although the last steps looked fine
                yield from self._diverge(good)
                if self._stopping():
                    yield from self._stopped("")
                    return
                continue
            self.history.add_epoch(summary)
            good = self._copy_state()  # only weights whose evaluation was finite become the good copy
            yield summary
            yield from self._snapshots()
        self.state = RunStatus.FINISHED
        yield StateChanged(
            RunStatus.FINISHED, f"Finished {cfg.epochs} epoch{'s' * (cfg.epochs != 1)}.", self.step, self.epoch
        )

    def _compile_news(self):
        """A CompileStatus after a metrics chunk when the compiled step's state changed (e.g. the switch to it):
        after every chunk, in-epoch or end-of-epoch, since a short epoch sends only the latter."""
        if self.compiled and (news := self.compiled.news()):
            yield CompileStatus(*news, self.step)

    def _flush_due(self, by_clock: bool) -> bool:
        """Single process: by the wall clock. Under torchrun every rank must decide alike, so by the step count,
        and the ranks agree there on stopping (a stop on any rank stops them all after the same step)."""
        if not self.dist:
            return by_clock
        if self.step % AGREE_EVERY:
            return False
        self._stop_agreed = self.dist.any_(self._stop.is_set(), self.device)
        return True

    def _stopping(self) -> bool:
        """Stop was asked for; under torchrun, only once every rank knows, so that all leave after the same
        step and none waits in an exchange for a rank that has gone."""
        return self._stop_agreed if self.dist else self._stop.is_set()

    def _snapshot_due(self, by_clock: bool) -> bool:
        return by_clock if not self.dist else self.step % (8 * AGREE_EVERY) == 0

    def _diverge(self, good) -> Iterator:
        """Restore the last good weights and pause as "diverged" until resumed or stopped."""
        self._load_state(good)
        yield StateChanged(
            RunStatus.DIVERGED,
            "The loss became NaN/Inf: training paused and the last good weights "
            f"restored. Lower the learning rate (now {self.cfg.lr:g})"
            + (" or use fp32" if self.cfg.precision != "fp32" else "")
            + ", then resume.",
            self.step,
            self.epoch,
        )
        yield from self._paused(RunStatus.DIVERGED, None)

    def _stopped(self, when: str) -> Iterator:
        self.state = RunStatus.STOPPED
        yield decoder_snapshot(self.model, self.step)  # what is shown is what would be saved
        yield StateChanged(RunStatus.STOPPED, f"Stopped by the user{when}.", self.step, self.epoch)

    def _paused(self, state: RunStatus, text: str | None) -> Iterator:
        self.state = state
        self._pause.set()  # before anything is yielded: a resume that comes while a message is out is not lost
        yield decoder_snapshot(self.model, self.step)  # what a save now writes (diverged: the good weights)
        if text is not None:
            yield StateChanged(state, text, self.step, self.epoch)
        while self._pause.is_set() and not self._stop.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            if self._save_requests:
                yield from self._handle_saves()
        if self.governor is not None:
            set_training_threads(self.governor.interrupt())
        if not self._stop.is_set():
            self._apply_retune()
            self.state = RunStatus.RUNNING
            yield StateChanged(RunStatus.RUNNING, "Resumed.", self.step, self.epoch)

    def _flush(self, buf: torch.Tensor, start: int, end: int, samples_per_s: float) -> MetricsChunk:
        rows = buf[start:end].double().cpu().numpy()  # SYNC: the one device→host copy of metrics per flush
        n = end - start
        first = self.epoch * self.steps_per_epoch + start
        chunk = MetricsChunk(
            np.arange(first, first + n, dtype=np.int64),
            rows[:, 0].copy(),
            rows[:, 1].copy(),
            rows[:, 2].copy(),
            self.epoch,
            self.step,
            self.total_steps,
            self.steps_per_epoch,
            float(samples_per_s),
            float(self._beta(self.step)),
            self.governor.threads if self.governor is not None else 0,
        )
        if n and np.isfinite(rows).all():
            self.history.add_chunk(chunk)
        return chunk

    def _finish_flush(self, buf, start, samples, t0) -> Iterator[MetricsChunk]:
        if self.batch > start:
            chunk = self._flush(buf, start, self.batch, samples / max(time.monotonic() - t0, 1e-9))
            yield chunk

    def _copy_state(self) -> tuple[dict, dict]:
        return (
            {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            _clone(self.optimizer.state_dict()),
        )

    def _load_state(self, state: tuple[dict, dict]) -> None:
        self.model.load_state_dict(state[0])
        self.optimizer.load_state_dict(state[1])

    # -- evaluation & snapshots ----------------------------------------------------------------------------
    def _snapshot_period(self, cost_s: float) -> float:
        """Seconds between snapshots: the configured period, longer when a snapshot is slow (a conv model at 64 px
        encodes its 2,000 scatter images in seconds on a CPU), so that snapshots take at most SNAPSHOT_MAX_SHARE
        of the training time."""
        return max(self.cfg.snapshot_interval_s, cost_s * (1.0 / SNAPSHOT_MAX_SHARE - 1.0))

    def _snapshots(self) -> Iterator:
        yield self.latent_snapshot()
        yield decoder_snapshot(self.model, self.step)  # SYNC: decoder weights to the host, ~2 Hz


def _threads_label(gov: ThreadGovernor | None) -> str:
    if gov is None:
        return ""
    return f"{gov.threads} (fixed)" if gov.fixed else f"auto, up to {gov.max_threads}"


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
