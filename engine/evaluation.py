"""Evaluation of a training run: the test-set figures of an epoch (ELBO, IWAE, KL per dimension, active units,
I_q(x; z)) and the latent snapshot of the scatter's test subset.

``RunEvaluation`` is a mixin of ``engine.trainer.Trainer``: these methods read the run's model, data, devices and
settings and are called from its loop (and by tests and the CLI as ``run.evaluate()``). Kept apart from the loop so
each file reads as one concern: the loop's control flow there, what an epoch measures here."""

from __future__ import annotations

import math

import numpy as np
import torch

from .batches import to_float
from .chunking import rows as chunk_rows
from .messages import EpochSummary, LatentSnapshot
from .mutual_information import MutualInformation, mutual_information
from .objectives import Interrupted, active_units, elbo_terms, iwae_bound


class StopRequested(Exception):
    """Raised inside a long evaluation when Stop arrives, so a close never waits for a whole IWAE pass."""


class RunEvaluation:
    """What a ``Trainer`` measures between steps; needs its ``model``, ``cfg``, ``model_cfg``, data and ``dist``."""

    def _check_stop(self) -> None:
        """Leave a long evaluation when Stop arrives; under torchrun ranks leave together, after a step."""
        if self._stop.is_set() and not self.dist:
            self.model.train()
            raise StopRequested

    @torch.no_grad()
    def latent_snapshot(self) -> LatentSnapshot:
        was_training = self.model.training
        self.model.eval()
        idx = torch.from_numpy(self.latent_idx).to(self.device)
        step = chunk_rows(self.model_cfg, self.device, decodes_per_row=0)  # encode only
        y = self.y_test[idx] if self.y_test is not None else None
        parts = [
            self.model.encode(to_float(self.x_test[idx[s : s + step]]), None if y is None else y[s : s + step])
            for s in range(0, max(len(idx), 1), step)
        ]
        mu, log_var = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        self.model.train(was_training)
        y = self.dataset.y_test
        return LatentSnapshot(
            self.step,
            self.epoch,
            mu.cpu().numpy().copy(),
            log_var.cpu().numpy().copy(),  # SYNC
            None if y is None else y[self.latent_idx].copy(),
            self.latent_idx.copy(),
        )

    @torch.no_grad()
    def evaluate(self, seconds: float = 0.0) -> EpochSummary:
        """Test ELBO (one reparameterised sample per example, fixed noise seed), IWAE on a subset, KL per
        dimension and active units. Chunks are sized by memory (engine.chunking); the ELBO noise is drawn for the
        whole set first, so only the IWAE estimate's draws depend on the chunk size."""
        cfg = self.cfg
        self.model.eval()
        g = torch.Generator(device=self.device).manual_seed(cfg.seed + 7)
        x_eval = self._own(self.x_test[: cfg.eval_examples])
        y_eval = self._own(self.y_test[: cfg.eval_examples]) if self.y_test is not None else None
        lab = lambda y, s, e: None if y is None else y[s:e]  # noqa: E731 - a conditional model's labels of a chunk
        d = self.model_cfg.latent_dim
        sums = torch.zeros(3, device=self.device)
        kl_dims = torch.zeros(d, device=self.device)
        mus, log_vars = [], []
        eps_eval = torch.randn((len(x_eval), d), device=self.device, generator=g)
        step = chunk_rows(self.model_cfg, self.device)
        for start in range(0, len(x_eval), step):
            self._check_stop()
            x, e, y = (
                to_float(x_eval[start : start + step]),
                eps_eval[start : start + step],
                lab(y_eval, start, start + step),
            )
            part = self.compiled.eval_chunk(x, e, y) if self.compiled else None  # None: evaluate eagerly
            if part is None:
                t = elbo_terms(self.model, x, 1.0, 0.0, e, y)
                part = torch.stack((t.elbo.sum(), t.recon.sum(), t.kl.sum())), t.kl_dims.sum(0), t.mu, t.log_var
            sums += part[0]
            kl_dims += part[1]
            mus.append(part[2])
            log_vars.append(part[3])
        n = min(cfg.eval_examples, len(self.x_test))
        mus = torch.cat(mus) if mus else torch.zeros((0, d), device=self.device)
        log_vars = torch.cat(log_vars) if log_vars else torch.zeros((0, d), device=self.device)
        if self.dist:
            self.dist.sum_(sums)
            self.dist.sum_(kl_dims)
            mus, log_vars = self.dist.gather_rows(mus, n), self.dist.gather_rows(log_vars, n)
        au, au_var = active_units(mus)
        mi = self._mutual_information(mus, log_vars)
        x_iw = self._own(self.x_test[: cfg.iwae_examples])
        y_iw = self._own(self.y_test[: cfg.iwae_examples]) if self.y_test is not None else None
        eps_sub = torch.randn((len(x_iw), d), device=self.device, generator=g)  # before IWAE: its draws vary by chunk
        iw_parts = [torch.zeros(0, device=self.device)]
        # examples per IWAE call: what fits K decodes each, and at most 100 so that Stop stays prompt
        iw_step = min(100, chunk_rows(self.model_cfg, self.device, decodes_per_row=cfg.iwae_k))
        stop = None if self.dist else self._stop.is_set
        for s in range(0, len(x_iw), iw_step):
            self._check_stop()
            try:
                model = self.model.given(lab(y_iw, s, s + iw_step))
                iw_parts.append(
                    iwae_bound(model, to_float(x_iw[s : s + iw_step]), cfg.iwae_k, generator=g, should_stop=stop)
                )
            except Interrupted:
                self._check_stop()
        el_parts = [torch.zeros(0, device=self.device)]
        for s in range(0, len(x_iw), step):
            x, y = to_float(x_iw[s : s + step]), lab(y_iw, s, s + step)
            el_parts.append(elbo_terms(self.model, x, 1.0, 0.0, eps_sub[s : s + step], y).elbo)
        iw, el_sub = torch.cat(iw_parts), torch.cat(el_parts)
        if self.dist:
            n_iw = min(cfg.iwae_examples, len(self.x_test))
            iw, el_sub = self.dist.gather_rows(iw, n_iw), self.dist.gather_rows(el_sub, n_iw)
        self.model.train()
        host = torch.cat((sums / n, iw.mean().view(1), el_sub.mean().view(1))).double().cpu().numpy()  # SYNC, per epoch
        test_elbo = float(host[0])
        return EpochSummary(
            epoch=self.epoch,
            step=self.step,
            train_elbo=float(np.mean(self.history.column("elbo")[-self.steps_per_epoch :]))
            if len(self.history)
            else float("nan"),
            test_elbo=test_elbo,
            test_recon=float(host[1]),
            test_kl=float(host[2]),
            test_iwae=float(host[3]),
            test_elbo_subset=float(host[4]),
            iwae_k=cfg.iwae_k,
            bits_per_dim=-test_elbo / (self.model_cfg.n_pixels * math.log(2)),
            kl_per_dim=(kl_dims / n).double().cpu().numpy(),
            active_units=au,
            au_variance=au_var.double().cpu().numpy(),
            seconds=seconds,
            test_mi=mi.mi,
            test_marginal_kl=mi.marginal_kl,
        )

    def _mutual_information(self, mu: torch.Tensor, log_var: torch.Tensor) -> MutualInformation:
        """I_q(x; z) over the evaluated test examples (engine/mutual_information.py), with its own noise so the
        other evaluation figures draw what they drew without it; every rank computes the same figure."""
        g = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 11)
        return mutual_information(mu, log_var, self.cfg.mi_samples, g, self._check_stop)

    def _own(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's part of an evaluation set (all of it in a single process)."""
        return x[self.dist.rows(len(x))] if self.dist else x
