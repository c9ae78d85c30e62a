"""The amortization-gap study: per-example q_i against the encoder, and against log p̂(x)."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch

from engine.amortization import (
    AmortizationCancelled,
    AmortizationProgress,
    AmortizationResult,
    amortization_study,
    iwae_with_se,
    run_study,
    sobol_normals,
)
from engine.objectives import iwae_bound
from tests.engine.test_posterior import random_linear_model, sample_x, train_small_vae

FAST = dict(steps=120, iwae_k=1000, eval_every=20)


@pytest.fixture(scope="module")
def trained():
    return train_small_vae()


@pytest.fixture(scope="module")
def bad_encoder(trained):
    model, xs = trained
    bad = copy.deepcopy(model)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        last = bad.encoder.net[-1]
        last.weight.add_(0.3 * torch.randn(last.weight.shape, generator=g))
        last.bias.add_(0.5 * torch.randn(last.bias.shape, generator=g))
    return bad.eval(), xs


def _check_bounds(r: AmortizationResult):
    assert np.all(r.optimised_elbo >= r.encoder_elbo)
    assert np.all(r.amortization_gap >= 0)
    se = np.sqrt(r.log_px_se**2 + r.optimised_elbo_se**2)
    assert np.all(r.optimised_elbo <= r.log_px_iwae + 3 * se + 1e-3), (r.approximation_gap / se).min()
    if r.encoder_mu.shape[1] == 2:  # the exact log p(x) bounds both from above
        assert np.all(r.optimised_elbo <= r.log_px_quadrature + 3 * r.optimised_elbo_se + 1e-3)
        assert np.all(r.log_px_iwae <= r.log_px_quadrature + 3 * r.log_px_se + 1e-3)
        assert np.allclose(r.approximation_gap_exact, r.log_px_quadrature - r.optimised_elbo)
    else:
        assert np.all(np.isnan(r.log_px_quadrature)) and np.isnan(r.mean_log_px_quadrature)
    assert np.allclose(r.inference_gap, r.amortization_gap + r.approximation_gap)
    assert r.mean_amortization_gap == pytest.approx(float(np.mean(r.amortization_gap)))


@pytest.mark.slow
def test_trained_vae_bounds_hold_per_example(trained):
    model, xs = trained
    idx = np.arange(100, 120)
    msgs = list(amortization_study(model, xs[idx], indices=idx, **FAST))
    r = msgs[-1]
    assert isinstance(r, AmortizationResult)
    assert r.n == 20 and np.array_equal(r.indices, idx)
    _check_bounds(r)
    assert r.encoder_mu.shape == (20, 2) and r.optimised_log_var.shape == (20, 2)
    # progress: monotone fractions, everything before the result is progress
    prog = msgs[:-1]
    assert all(isinstance(m, AmortizationProgress) for m in prog)
    fr = [m.fraction for m in prog]
    assert fr == sorted(fr) and fr[0] == 0.0 and fr[-1] == pytest.approx(1.0)
    assert [m.phase for m in prog][-1] == "quadrature"
    assert {"optimise", "evaluate", "iwae"} <= {m.phase for m in prog}
    assert all(m.total_steps == prog[0].total_steps for m in prog)


@pytest.mark.slow
def test_bad_encoder_has_a_large_amortization_gap(trained, bad_encoder):
    bad, xs = bad_encoder
    good, _ = trained
    idx = np.arange(20)
    rb = run_study(bad, xs[idx], **FAST)
    rg = run_study(good, xs[idx], **FAST)
    _check_bounds(rb)
    assert rb.mean_amortization_gap > 1.0
    assert rb.mean_amortization_gap > rg.mean_amortization_gap
    assert np.mean(rb.improved) > 0.9
    # the decoder is shared: with the same decoder, optimising q_i reaches about the same ELBO either way
    assert abs(rb.mean_optimised_elbo - rg.mean_optimised_elbo) < 0.5


@pytest.mark.slow
def test_model_is_not_modified(trained):
    model, xs = trained
    model = copy.deepcopy(model)
    model.zero_grad(set_to_none=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run_study(model, xs[:5], steps=10, iwae_k=50)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_cancel_stops_early(trained):
    model, xs = trained
    ev = threading.Event()
    msgs = []
    for m in amortization_study(model, xs[:10], steps=200, iwae_k=100, cancel=ev):
        msgs.append(m)
        if isinstance(m, AmortizationProgress) and m.done_steps >= 20:
            ev.set()
    assert isinstance(msgs[-1], AmortizationCancelled)
    assert msgs[-1].done_steps < 30 and msgs[-1].total_steps > 200
    assert not any(isinstance(m, AmortizationResult) for m in msgs)


def test_cancel_during_quadrature(trained):
    model, xs = trained
    ev = threading.Event()
    msgs = []
    for m in amortization_study(model, xs[:10], steps=10, iwae_k=50, cancel=ev):
        msgs.append(m)
        if isinstance(m, AmortizationProgress) and m.phase == "quadrature":
            ev.set()
    assert isinstance(msgs[-1], AmortizationCancelled) and msgs[-1].done_steps < msgs[-1].total_steps


def test_cancel_before_start(trained):
    model, xs = trained
    ev = threading.Event()
    ev.set()
    msgs = list(amortization_study(model, xs[:3], steps=50, iwae_k=10, cancel=ev))
    assert isinstance(msgs[-1], AmortizationCancelled) and msgs[-1].done_steps == 0


@pytest.mark.slow
def test_any_latent_dim():
    model, xs = train_small_vae(latent_dim=5, steps=150)
    r = run_study(model, xs[:8], steps=60, iwae_k=200, eval_every=20)
    assert r.encoder_mu.shape == (8, 5)
    _check_bounds(r)


def test_iwae_matches_objectives_iwae_bound(trained):
    model, xs = trained
    x = torch.from_numpy(xs[:6])
    mu, lv = model.encode(x)
    ours, se = iwae_with_se(model, x, mu.detach(), lv.detach(), 300, generator=torch.Generator().manual_seed(3))
    ref = iwae_bound(model, x, 300, generator=torch.Generator().manual_seed(3))
    assert np.allclose(ours, ref.double().numpy(), atol=1e-4)
    assert np.all(se > 0) and np.all(se < 1)


def test_sobol_normals_are_standard_normal():
    e = sobol_normals(4096, 3, seed=1).double()
    assert e.shape == (4096, 3)
    assert e.mean(0).abs().max() < 0.01 and (e.var(0) - 1).abs().max() < 0.02


@pytest.mark.slow
@pytest.mark.parametrize("steps, tol", [(300, 0.02), (1000, 0.005)])
def test_linear_gaussian_reaches_the_analytic_optimum(steps, tol):
    """With correlated W the best diagonal q is N(m, diag 1/Λ_jj); start from a badly perturbed encoder.
    ``tol``: how far (nats) the true ELBO of the q_i found may stay below that optimum."""
    model = random_linear_model(seed=0, mu_shift=(0.8, -0.6), log_var_shift=(1.5, -1.0))
    zs = [(0.3, -0.5), (-1.0, 0.2), (1.2, 1.1), (0.0, -1.5)]
    x = np.stack([sample_x(model, z, seed=i) for i, z in enumerate(zs)])  # (4, 1, 4, 4)
    r = run_study(model, x, steps=steps, iwae_k=2000)
    _check_bounds(r)
    for i in range(len(zs)):
        xi = x[i].astype(np.float64)
        best = model.log_px(xi) - model.kl_to_posterior(xi, model.post_mean(xi), 1 / np.diag(model.prec))
        enc = model.elbo(xi, r.encoder_mu[i], np.exp(r.encoder_log_var[i]))
        found = model.elbo(xi, r.optimised_mu[i].astype(np.float64), np.exp(r.optimised_log_var[i].astype(np.float64)))
        assert best - tol < found <= best + 1e-6  # the q_i found, evaluated exactly
        # the Monte Carlo estimates against the exact values
        assert abs(r.encoder_elbo[i] - enc) < 4 * r.encoder_elbo_se[i] + 1e-3
        assert abs(r.optimised_elbo[i] - found) < 4 * r.optimised_elbo_se[i] + 1e-3
        assert abs(r.log_px_iwae[i] - model.log_px(xi)) < 4 * r.log_px_se[i] + 1e-3
        assert abs(r.log_px_quadrature[i] - model.log_px(xi)) < 1e-4
        assert np.allclose(r.optimised_mu[i], model.post_mean(xi), atol=0.05)
    assert r.mean_amortization_gap > 1.0


@pytest.mark.slow
def test_a_conditional_model_studies_each_example_with_its_own_label():
    """A batch of examples of different classes through a Labelled model: every per-example figure equals the
    study of that example alone under its own label (the exact 2-D log p(x) included)."""
    from engine.config import ModelConfig
    from engine.model import VAE

    torch.manual_seed(0)
    model = VAE(ModelConfig(image_shape=(1, 6, 6), hidden=16, n_classes=3)).eval()
    xs = np.random.default_rng(0).random((3, 1, 6, 6)).astype(np.float32)
    labels = torch.tensor([2, 0, 1])
    together = run_study(model.given(labels), xs, steps=10, iwae_k=50, eval_every=5)
    for j in range(3):
        alone = run_study(model.given(int(labels[j])), xs[j : j + 1], steps=10, iwae_k=50, eval_every=5)
        assert together.log_px_quadrature[j] == pytest.approx(alone.log_px_quadrature[0], abs=1e-6)
        assert together.encoder_elbo[j] == pytest.approx(alone.encoder_elbo[0], abs=0.5)  # Monte Carlo estimates
    other = run_study(model.given(torch.tensor([0, 1, 2])), xs, steps=10, iwae_k=50, eval_every=5)
    assert not np.allclose(other.log_px_quadrature, together.log_px_quadrature)  # the labels matter
