"""The 2-D Lab's run: a Gaussian mixture (EM) and a VAE on the same points, stepped together on one thread.

``LabRun.frames()`` is the job a worker drains. Each *tick* is one EM step plus the VAE minibatch steps that fit
in the tick's time (1 / FRAME_HZ s), and ends with a ``LabFrame``: both models' parameters and views as plain
numpy. About DENSITY_HZ times a second a ``DensityMaps`` follows: log p(x) on a 100×100 grid, exact for the
mixture, importance-sampled (IWAE-K) for the VAE. Controls (``pause``, ``resume``, ``step``, ``stop``,
``set_points``, ``set_live``) may be called from any thread; they take effect between two minibatch steps.
While running, a map is built DENSITY_ROWS grid rows per tick from a copy of the models taken when it starts, so
no tick stalls for a whole map and each map shows one state of the models.

Paused, the run waits; a ``step()`` then does one tick of exactly one VAE minibatch and one EM step. New points
while paused give a new frame (responsibilities, posteriors) without training."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from . import points as pts_mod
from .mixture import GaussianMixture, MixtureParams, ellipse
from .vae import PointVaeConfig, PointVaeTrainer, decoder_sigma, log_density, manifold, posterior, sample

FRAME_HZ = 25.0  # ticks a second while running: each ends with a frame
DENSITY_HZ = 3.0  # density maps a second while running
DENSITY_GRID = 100  # cells per side of the density maps
DENSITY_ROWS = 20  # grid rows a running tick adds to the map being built (a map takes 5 ticks)
N_SAMPLES = 1000  # model samples drawn in each frame, per model
EVAL_POINTS = 256  # points the curves' ELBO, KL and IWAE are measured on (a fixed subset)


@dataclass(frozen=True, eq=False)
class LabFrame:
    tick: int  # EM steps so far
    vae_steps: int  # VAE minibatch steps so far
    data_version: int  # which point set the per-point arrays belong to
    mixture: MixtureParams
    mixture_log_lik: float  # exact, nats per point
    labels: np.ndarray  # (N,) int: each point's most responsible component
    mixture_samples: np.ndarray  # (S, 2)
    mixture_ellipses: np.ndarray  # (K, 65, 2): each component's 2σ contour
    vae_samples: np.ndarray  # (S, 2)
    manifold: np.ndarray  # (lines, L, 2): μθ(z) along lines of the latent grid (one line for d = 1)
    q_mean: np.ndarray  # (N, d) posterior means of every point
    q_log_var: np.ndarray  # (N, d)
    decoded: np.ndarray  # (N, 2) μθ(E_q[z|x]) of every point
    sigma: np.ndarray  # (2,) the decoder's σ
    elbo: float  # nats per point, on a fixed subset of the points
    recon: float
    kl: float
    iwae: float


@dataclass(frozen=True, eq=False)
class DensityMaps:
    tick: int
    data_version: int
    box: tuple[float, float, float, float]  # (x0, x1, y0, y1)
    mixture: np.ndarray  # (n, n) log p(x), row-major with y the slow axis, exact
    vae: np.ndarray  # (n, n) log p̂_K(x), IWAE-K
    cell_area: float


@dataclass(frozen=True)
class LabConfig:
    components: int = 8
    vae: PointVaeConfig = PointVaeConfig()
    seed: int = 0


class LabRun:
    def __init__(self, points: np.ndarray, cfg: LabConfig, data_version: int = 0):
        self.cfg = cfg
        self.points = np.asarray(points, float).reshape(-1, 2)
        self.data_version = data_version
        self.mixture = GaussianMixture(self.points, cfg.components, seed=cfg.seed)
        self.vae = PointVaeTrainer(self.points, replace(cfg.vae, seed=cfg.seed))
        self.tick = 0
        self._rng = np.random.default_rng(cfg.seed)
        self._eval_x = self._eval_subset()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._paused = True
        self._steps_asked = 0
        self._pending_points: tuple[np.ndarray, int] | None = None
        self._pending_live: dict = {}
        self._density_due = True

    # -- controls: any thread ------------------------------------------------------------------------------
    def resume(self) -> None:
        with self._lock:
            self._paused = False
        self._wake.set()

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    @property
    def paused(self) -> bool:
        return self._paused

    def step(self) -> None:
        """One tick of one minibatch (when paused)."""
        with self._lock:
            self._steps_asked += 1
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def set_points(self, points: np.ndarray, data_version: int) -> None:
        """New data for both models, from the next step on (raises ValueError when the mixture cannot take it)."""
        p = np.asarray(points, float).reshape(-1, 2)
        if len(p) < self.cfg.components:
            raise ValueError(f"{len(p)} points for {self.cfg.components} components: at least one per component")
        with self._lock:
            self._pending_points = (p.copy(), data_version)
        self._wake.set()

    def set_live(self, **kw) -> None:
        """β, lr, iwae_k, train_k of the VAE, from the next step on."""
        replace(self.vae.cfg, **kw).check()  # refused here, on the caller's thread, not later on the worker
        with self._lock:
            self._pending_live.update(kw)
        self._wake.set()

    # -- the worker ----------------------------------------------------------------------------------------
    def frames(self) -> Iterator[LabFrame | DensityMaps]:
        """Runs until ``stop()``: yields a frame per tick and density maps at up to DENSITY_HZ (and after each
        tick while paused). Starts paused with a first frame and maps of the untrained models."""
        yield self.frame()
        yield self.density_maps()
        last_map = time.monotonic()
        job: _MapJob | None = None
        tick_start = time.monotonic()
        overhead = 0.0  # seconds the last running tick spent on its frame and map
        while not self._stop.is_set():
            changed = self._apply_pending()
            with self._lock:
                paused, asked = self._paused, self._steps_asked
                if paused and asked:
                    self._steps_asked -= 1
            if paused and not asked:
                if changed:
                    yield self.frame()
                    yield self.density_maps()
                job = None
                self._wake.wait(0.1)
                self._wake.clear()
                tick_start = time.monotonic()
                continue
            if paused:
                self.vae.step()
            else:  # minibatches until the tick's time is up, and for at least as long as the last frame and map
                # took: training keeps half of this thread however slow the machine (a busy one makes ticks rarer)
                end = max(tick_start + 1.0 / FRAME_HZ, time.monotonic() + overhead)
                while True:
                    self.vae.step()
                    if self._pending_points is not None or self._pending_live:
                        self._apply_pending()
                    if time.monotonic() >= end or self._stop.is_set() or self._paused:
                        break
            tick_start = time.monotonic()
            self.mixture.em_step()
            self.tick += 1
            yield self.frame()
            if paused:
                job = None
                yield self.density_maps()
                continue
            if job is None and time.monotonic() - last_map >= 1.0 / DENSITY_HZ:
                job, last_map = self._map_job(), time.monotonic()
            if job is not None and job.advance(DENSITY_ROWS):
                yield job.maps
                job = None
            overhead = time.monotonic() - tick_start

    def _map_job(self) -> "_MapJob":
        return _MapJob(self, copy.deepcopy(self.vae.model))

    def _apply_pending(self) -> bool:
        with self._lock:
            new, live = self._pending_points, self._pending_live
            self._pending_points, self._pending_live = None, {}
        if live:
            self.vae.set_live(**live)
        if new is None:
            return bool(live)
        self.points, self.data_version = new
        self.mixture.set_points(self.points)
        self.vae.set_points(self.points)
        self._eval_x = self._eval_subset()
        return True

    def _eval_subset(self) -> torch.Tensor:
        n = len(self.points)
        idx = np.sort(self._rng.choice(n, EVAL_POINTS, replace=False)) if n > EVAL_POINTS else np.arange(n)
        return torch.as_tensor(self.points[idx], dtype=torch.float32)

    def frame(self) -> LabFrame:
        model = self.vae.model
        m = self.vae.metrics(self._eval_x)
        q_mean, q_log_var, decoded = posterior(model, self.points)
        seed = self.tick
        return LabFrame(
            tick=self.tick,
            vae_steps=self.vae.steps,
            data_version=self.data_version,
            mixture=self.mixture.params,
            mixture_log_lik=self.mixture.log_likelihood,
            labels=self.mixture.resp.argmax(1).astype(np.int32),
            mixture_samples=self.mixture.params.sample(N_SAMPLES, np.random.default_rng(seed)),
            mixture_ellipses=np.stack(
                [ellipse(m, c, 2.0) for m, c in zip(self.mixture.params.means, self.mixture.params.covs)]
            ),
            vae_samples=sample(model, N_SAMPLES, seed=seed),
            manifold=manifold(model),
            q_mean=q_mean,
            q_log_var=q_log_var,
            decoded=decoded,
            sigma=decoder_sigma(model),
            **m,
        )

    def density_maps(self) -> DensityMaps:
        """Both maps now, whole."""
        job = _MapJob(self, self.vae.model)
        job.advance(DENSITY_GRID)
        return job.maps


class _MapJob:
    """One pair of density maps, computed a few grid rows at a time."""

    def __init__(self, run: LabRun, model):
        self.box = pts_mod.bounds(run.points)
        _, _, self.grid, self.area = pts_mod.grid(self.box, DENSITY_GRID)
        self.model, self.mixture, self.k = model, run.mixture.params, run.vae.cfg.iwae_k
        self.tick, self.version = run.tick, run.data_version
        self.rows = 0
        n = DENSITY_GRID
        self.log_p_mixture = np.empty((n, n))
        self.log_p_vae = np.empty((n, n))
        self.maps: DensityMaps | None = None

    def advance(self, rows: int) -> bool:
        """``rows`` more grid rows; True when the maps are complete (then in ``maps``)."""
        n = DENSITY_GRID
        r0, r1 = self.rows, min(self.rows + rows, n)
        pts = self.grid[r0 * n : r1 * n]
        self.log_p_mixture[r0:r1] = self.mixture.log_density(pts).reshape(-1, n)
        self.log_p_vae[r0:r1] = log_density(self.model, pts, self.k, seed=self.tick * n + r0).reshape(-1, n)
        self.rows = r1
        if r1 < n:
            return False
        self.maps = DensityMaps(self.tick, self.version, self.box, self.log_p_mixture, self.log_p_vae, self.area)
        return True
