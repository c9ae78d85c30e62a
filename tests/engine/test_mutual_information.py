"""I_q(x; z) by the aggregate-posterior decomposition: within [0, log N], equal to a quadrature of its definition
on a small model, 0 for a collapsed encoder, log N for codes that identify every example; the trainer reports it
each epoch (summary, history, CSV, CLI line) and the collapse warning fires on a falling KL with near-zero MI."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from engine.config import ModelConfig, TrainConfig
from engine.history import MetricHistory
from engine.messages import EpochSummary
from engine.mutual_information import NEAR_ZERO_MI, collapse_warning, log_q_table, mutual_information, sample_rows
from engine.objectives import log_normal
from engine.snapshot import SnapshotModel, decoder_snapshot
from engine.trainer import Trainer

FAST = dict(batch_size=32, iwae_k=5, iwae_examples=50, metrics_hz=1e9, snapshot_interval_s=0.0)


def _posteriors(blobs, n=40, seed=0):
    """(μ, log σ²) of the first n test images under a small (lightly trained) VAE with a 2-d latent."""
    run = Trainer(blobs, ModelConfig(image_shape=blobs.image_shape, hidden=32), TrainConfig(epochs=4, lr=3e-3, **FAST))
    for _ in run.run():
        pass
    model = SnapshotModel(decoder_snapshot(run.model, run.step))
    mu, lv = model.encode(blobs.x_test[:n])
    return torch.from_numpy(mu), torch.from_numpy(lv)


def _quadrature_mi(mu: torch.Tensor, lv: torch.Tensor, points: int = 401) -> float:
    """(1/N) Σ_n ∫ q_n(z) [log q_n(z) − log q(z)] dz on a fine 2-D grid covering every posterior to ±8σ."""
    mu, lv = mu.double(), lv.double()
    sd = (0.5 * lv).exp()
    lo, hi = (mu - 8 * sd).min(0).values, (mu + 8 * sd).max(0).values
    g0, g1 = (
        torch.linspace(lo[0], hi[0], points, dtype=torch.float64),
        torch.linspace(lo[1], hi[1], points, dtype=torch.float64),
    )
    z = torch.cartesian_prod(g0, g1)  # (P², 2)
    cell = float((g0[1] - g0[0]) * (g1[1] - g1[0]))
    logq = torch.stack([log_normal(z, mu[m], lv[m]) for m in range(len(mu))], 1)  # (P², N)
    log_agg = torch.logsumexp(logq, 1, keepdim=True) - math.log(len(mu))
    return float((logq.exp() * (logq - log_agg)).sum() * cell / len(mu))


@pytest.mark.slow
def test_matches_a_quadrature_of_the_definition_on_a_small_model(blobs):
    mu, lv = _posteriors(blobs)
    truth = _quadrature_mi(mu, lv)
    est = mutual_information(mu, lv, samples=1_000_000, generator=torch.Generator().manual_seed(0))
    assert 0.2 < truth < math.log(len(mu))  # a case that is neither collapsed nor trivially log N
    assert abs(est.mi - truth) < 1e-3
    m, v = mu.double(), lv.double()
    kl = 0.5 * (m**2 + v.exp() - 1 - v).sum(1).mean()
    assert est.marginal_kl == pytest.approx(float(kl) - est.mi, abs=1e-9)  # the decomposition
    assert est.marginal_kl >= -1e-3  # KL(q(z) ‖ p(z)) ≥ 0 up to Monte Carlo noise


def test_the_log_density_table_is_the_gaussian_log_density():
    g = torch.Generator().manual_seed(1)
    mu, lv = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g) - 3.0  # σ down to ~0.1
    z = torch.randn(5, 3, generator=g)
    brute = torch.stack(
        [torch.stack([log_normal(z[s].double(), mu[m].double(), lv[m].double()) for m in range(7)]) for s in range(5)]
    )
    np.testing.assert_allclose(log_q_table(z, mu, lv).numpy(), brute.numpy(), rtol=0, atol=1e-9)


def test_bounds_zero_for_a_collapsed_encoder_and_log_n_for_codes_that_identify_every_example():
    n = 500
    collapsed = mutual_information(torch.zeros(n, 4), torch.zeros(n, 4), samples=n)
    assert 0.0 <= collapsed.mi < 1e-9 and collapsed.marginal_kl == pytest.approx(0.0, abs=1e-9)
    g = torch.Generator().manual_seed(2)
    apart = mutual_information(10 * torch.randn(n, 4, generator=g), torch.full((n, 4), -12.0), samples=n)
    assert apart.mi == pytest.approx(math.log(n), abs=1e-6) and apart.mi <= math.log(n)
    for seed in range(5):  # random posteriors of every overlap: always within [0, log N]
        g = torch.Generator().manual_seed(seed)
        mi = mutual_information(torch.randn(50, 2, generator=g) * seed, torch.randn(50, 2, generator=g), 30, g).mi
        assert 0.0 <= mi <= math.log(50)


def test_draws_spread_over_the_set_and_cycle_when_there_are_more_than_examples():
    assert sample_rows(10, 5).tolist() == [0, 2, 4, 6, 8]
    assert sample_rows(3, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]


def _summary(epoch, kl, mi) -> EpochSummary:
    z = np.zeros(2)
    return EpochSummary(epoch, 10 * epoch, -90.0, -90.0, -85.0, kl, -89.0, -90.0, 5, 1.0, z, 0, z, 1.0, mi, kl - mi)


def test_collapse_warning_when_the_kl_falls_with_near_zero_mi():
    assert collapse_warning([_summary(0, 3.0, 0.02)]) == ""  # one epoch: no trend yet
    falling = collapse_warning([_summary(0, 3.0, 0.5), _summary(1, 2.0, NEAR_ZERO_MI / 2)])
    assert "collapse" in falling and "2 nats" in falling and "0.050" in falling
    assert collapse_warning([_summary(0, 3.0, 0.5), _summary(1, 2.0, 1.5)]) == ""  # codes still informative
    assert collapse_warning([_summary(0, 2.0, 0.01), _summary(1, 2.5, 0.01)]) == ""  # KL not falling


def test_each_epoch_reports_mi_in_the_summary_history_and_csv(blobs):
    run = Trainer(
        blobs, ModelConfig(image_shape=blobs.image_shape, hidden=32), TrainConfig(epochs=2, mi_samples=150, **FAST)
    )
    summaries = [m for m in run.run() if isinstance(m, EpochSummary)]
    n = len(blobs.x_test)
    for s in summaries:
        assert 0.0 <= s.test_mi <= math.log(n)
        assert s.test_marginal_kl == pytest.approx(s.test_kl - s.test_mi, abs=1e-6)
    # the figure is the estimator's on the evaluated test set with the trainer's weights
    model = SnapshotModel(decoder_snapshot(run.model, run.step))
    mu, lv = model.encode(blobs.x_test)
    again = mutual_information(torch.from_numpy(mu), torch.from_numpy(lv), 150, torch.Generator().manual_seed(11))
    assert summaries[-1].test_mi == pytest.approx(again.mi, abs=1e-4)
    header, *rows = run.history.to_csv().splitlines()
    cols = header.split(",")
    last = dict(zip(cols, rows[-1].split(",")))
    assert float(last["test_mi"]) == pytest.approx(summaries[-1].test_mi, abs=1e-6)
    assert float(last["test_marginal_kl"]) == pytest.approx(summaries[-1].test_marginal_kl, abs=1e-6)
    # a history saved before MI was measured still loads (the figure is then unknown)
    state = run.history.to_state()
    for e in state["epochs"]:
        del e["test_mi"], e["test_marginal_kl"]
    old = MetricHistory.from_state(state)
    assert math.isnan(old.epochs[-1].test_mi) and old.epochs[-1].test_elbo == summaries[-1].test_elbo


@pytest.mark.slow
def test_cli_epoch_line_and_csv_carry_the_mi_and_a_collapsing_run_is_warned(tmp_path):
    from tests.engine.test_cli import _npz, _train

    met = tmp_path / "m.csv"
    args = ("--data", _npz(tmp_path), "--batch-size", 50, "--hidden", 32, "--iwae-k", 5, "--metrics-csv", met)
    r = _train(*args, "--epochs", 4, "--beta", 30)  # a heavy KL weight drives q(z|x) onto the prior
    assert r.returncode == 0, r.stderr
    epochs = [line for line in r.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 4 and all("I(x;z)" in line and "KL(q(z)‖p(z))" in line for line in epochs)
    assert "warning: Posterior collapse" in r.stdout
    with open(met) as f:
        rows = [row for row in csv.DictReader(f) if row["test_mi"]]
    assert len(rows) == 4 and all(0.0 <= float(row["test_mi"]) <= math.log(100) for row in rows)
    assert float(rows[-1]["test_mi"]) < NEAR_ZERO_MI
