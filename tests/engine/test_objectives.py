"""The math against closed forms: analytic KL vs Monte Carlo, IWAE ≥ ELBO and rising with K, and the IWAE
estimate approaching the exact log p(x) of a linear-Gaussian model."""

import pytest
import math

import torch
from torch import nn

from engine.config import ModelConfig
from engine.likelihoods import Bernoulli, ContinuousBernoulli, Gaussian, log_normalizer
from engine.model import VAE
from engine.objectives import elbo_terms, iwae_bound, kl_per_dim, log_normal, log_std_normal


def test_analytic_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    log_var = torch.tensor([[-1.0, 0.3, -2.0]], dtype=torch.float64)
    z = mu + (0.5 * log_var).exp() * torch.randn(400_000, 3, dtype=torch.float64)
    mc = (log_normal(z, mu, log_var) - log_std_normal(z)).mean().item()
    analytic = kl_per_dim(mu, log_var).sum().item()
    se = (log_normal(z, mu, log_var) - log_std_normal(z)).std().item() / math.sqrt(len(z))
    assert abs(mc - analytic) < 4 * se, (mc, analytic, se)
    assert analytic > 0


def test_kl_is_zero_only_at_the_prior():
    zero = kl_per_dim(torch.zeros(1, 4), torch.zeros(1, 4))
    assert torch.all(zero == 0)
    assert torch.all(kl_per_dim(torch.full((1, 4), 0.1), torch.zeros(1, 4)) > 0)


def test_bernoulli_log_prob_is_stable_and_exact():
    lik = Bernoulli()
    x = torch.tensor([[[[0.0, 1.0, 1.0, 0.0]]]])
    logits = torch.tensor([[[[-200.0, 200.0, 0.0, 3.0]]]])
    lp = lik.log_prob(x, logits)
    assert torch.isfinite(lp).all()
    expected = math.log(0.5) + math.log(1 - 1 / (1 + math.exp(-3.0)))
    assert abs(lp.item() - expected) < 1e-5


def test_gaussian_log_prob_matches_torch_distributions():
    lik = Gaussian((1, 2, 3))
    with torch.no_grad():
        lik.rho.normal_()
    x, mean = torch.rand(5, 1, 2, 3), torch.rand(5, 1, 2, 3)
    ref = torch.distributions.Normal(mean, lik.sigma()).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(lik.log_prob(x, mean), ref)


def test_continuous_bernoulli_is_a_normalised_density_on_the_unit_interval():
    """∫₀¹ p(x|λ) dx = 1 for every λ: by quadrature (Simpson, 2001 points) on one-pixel images, from a logit of 0
    (where the normaliser switches to its Taylor form) to saturated ones."""
    lik = ContinuousBernoulli()
    logits = torch.tensor([0.0, 1e-3, -9e-3, 0.0101, 0.3, -2.0, 5.0, -15.0, 40.0], dtype=torch.float64)
    x = torch.linspace(0.0, 1.0, 2001, dtype=torch.float64)
    for logit in logits:
        lp = lik.log_prob(x.view(-1, 1, 1, 1), torch.full((len(x), 1, 1, 1), float(logit), dtype=torch.float64))
        p = lp.exp()
        h = 1.0 / (len(x) - 1)
        integral = h / 3 * (p[0] + p[-1] + 4 * p[1:-1:2].sum() + 2 * p[2:-1:2].sum())
        tol = 1e-6 if abs(float(logit)) < 10 else 2e-3  # a steep density (λ ≈ e^-15) needs a finer grid than this
        assert abs(float(integral) - 1.0) < tol, (float(logit), float(integral))


def test_continuous_bernoulli_matches_torch_distributions_and_bernoulli_plus_log_c():
    torch.manual_seed(0)
    x = torch.rand(6, 1, 3, 4)
    logits = torch.randn(6, 1, 3, 4) * 4
    logits[0, 0, 0, :3] = torch.tensor([0.0, 1e-4, -0.3])
    lik = ContinuousBernoulli()
    ref = torch.distributions.ContinuousBernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(lik.log_prob(x, logits), ref, atol=2e-4, rtol=1e-5)
    c = log_normalizer(logits).flatten(1).sum(1)
    torch.testing.assert_close(lik.log_prob(x, logits), Bernoulli().log_prob(x, logits) + c)
    assert (log_normalizer(logits) >= math.log(2.0) - 1e-7).all()  # C(λ) ≥ 2: it only adds nats
    m = lik.mean(logits)  # the mean of the density, not λ
    torch.testing.assert_close(m, torch.distributions.ContinuousBernoulli(logits=logits).mean)
    assert ((m > 0) & (m < 1)).all() and not torch.allclose(m, torch.sigmoid(logits))


def _trained_tiny_vae(blobs, steps=300):
    torch.manual_seed(0)
    model = VAE(ModelConfig(image_shape=blobs.image_shape, latent_dim=2, hidden=32))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    x = torch.from_numpy(blobs.x_train)
    for i in range(steps):
        t = elbo_terms(model, x[(i * 64) % 512 : (i * 64) % 512 + 64])
        opt.zero_grad()
        t.loss.backward()
        opt.step()
    return model.eval()


def test_iwae_is_above_elbo_and_rises_with_k(blobs):
    model = _trained_tiny_vae(blobs)
    x = torch.from_numpy(blobs.x_test[:100])
    torch.manual_seed(1)
    with torch.no_grad():
        elbo = torch.stack([elbo_terms(model, x).elbo for _ in range(200)]).mean().item()  # precise ELBO
        bounds = [iwae_bound(model, x, k).mean().item() for k in (1, 10, 100, 1000)]
    assert abs(bounds[0] - elbo) < 0.5  # K = 1 is the ELBO estimator
    assert bounds[1] > elbo and bounds[3] > elbo
    assert bounds[0] < bounds[1] < bounds[2] < bounds[3], bounds


def test_iwae_chunking_gives_the_same_estimate(blobs):
    model = _trained_tiny_vae(blobs, steps=50)
    x = torch.from_numpy(blobs.x_test[:7])
    a = iwae_bound(model, x, 300, chunk=300, generator=torch.Generator().manual_seed(3))
    b = iwae_bound(model, x, 300, chunk=300, generator=torch.Generator().manual_seed(3))
    c = iwae_bound(model, x, 300, chunk=17, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert torch.allclose(a, c, atol=0.3)  # different noise draws, same estimator


def test_iwae_bound_with_grad_is_the_same_estimate_and_its_gradient_is_the_estimates(blobs):
    """grad=True: the same numbers under the same noise, and a gradient (the IWAE training loss) that matches a
    finite difference of the fixed-noise estimate in a decoder weight; grad=False records nothing."""
    model = _trained_tiny_vae(blobs, steps=50)
    x = torch.from_numpy(blobs.x_test[:7])

    def bound(grad):
        return iwae_bound(model, x, 20, chunk=7, generator=torch.Generator().manual_seed(3), grad=grad).mean()

    plain, kept = bound(False), bound(True)
    assert not plain.requires_grad and kept.requires_grad
    torch.testing.assert_close(plain, kept.detach())
    model.zero_grad()
    kept.backward()
    enc = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in enc) and any(g.abs().sum() > 0 for g in enc)  # through z = μ + σ·ε
    w = next(model.decoder.parameters())
    i = w.grad.abs().argmax()
    h = 1e-2
    with torch.no_grad():
        w.view(-1)[i] += h
        up = bound(False).item()
        w.view(-1)[i] -= 2 * h
        down = bound(False).item()
        w.view(-1)[i] += h
    assert abs((up - down) / (2 * h) - w.grad.view(-1)[i].item()) < 0.02 * abs(w.grad.view(-1)[i].item()) + 1e-3


class _LinearDecoder(nn.Module):
    def __init__(self, W, b, shape):
        super().__init__()
        self.W, self.b, self.shape = W, b, shape

    def forward(self, z):  # (B, d) -> (B, C, H, W)
        return (z @ self.W.T + self.b).view(-1, *self.shape)


class _FixedEncoder(nn.Module):
    """q(z|x) = N(A x + c, diag s²): the exact posterior mean and the diagonal of its covariance."""

    def __init__(self, A, c, log_var):
        super().__init__()
        self.A, self.c, self.log_var = A, c, log_var

    def forward(self, x):
        mu = x.flatten(1) @ self.A.T + self.c
        return torch.cat([mu, self.log_var.expand_as(mu)], 1)


@pytest.mark.slow
def test_iwae_approaches_exact_log_px_of_linear_gaussian_model():
    torch.manual_seed(0)
    d, D, sigma = 2, 6, 0.5
    W = torch.randn(D, d) * 0.8
    W[:, 1] = 0.8 * W[:, 0] + 0.3 * W[:, 1]  # correlated columns: a strongly non-diagonal posterior
    b = torch.randn(D) * 0.1
    model = VAE(ModelConfig(image_shape=(1, 2, 3), latent_dim=d, hidden=8, likelihood="gaussian"))
    model.decoder = _LinearDecoder(W, b, (1, 2, 3))
    with torch.no_grad():
        model.likelihood.rho.fill_(math.log(math.expm1(sigma - Gaussian.sigma_min)))
    assert torch.allclose(model.likelihood.sigma(), torch.tensor(sigma))
    # exact posterior: Σ = (I + WᵀW/σ²)⁻¹, m = Σ Wᵀ (x − b)/σ²
    Sigma = torch.linalg.inv(torch.eye(d) + W.T @ W / sigma**2)
    A = Sigma @ W.T / sigma**2
    model.encoder = _FixedEncoder(A, -(A @ b), torch.log(torch.diagonal(Sigma)))
    x = (torch.randn(20, d) @ W.T + b + sigma * torch.randn(20, D)).view(20, 1, 2, 3)
    exact = torch.distributions.MultivariateNormal(b, W @ W.T + sigma**2 * torch.eye(D)).log_prob(x.flatten(1))
    # the ELBO in closed form: E_q‖x − Wz − b‖² = ‖x − Wμ − b‖² + tr(W diag(s²) Wᵀ)
    mu, s2 = A @ (x.flatten(1) - b).T, torch.diagonal(Sigma)
    resid = ((x.flatten(1) - mu.T @ W.T - b) ** 2).sum(1) + (W**2 @ s2).sum()
    recon = -0.5 * resid / sigma**2 - D * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
    elbo_exact = recon - kl_per_dim(mu.T, torch.log(s2).expand(20, d)).sum(1)
    torch.manual_seed(1)
    with torch.no_grad():
        draws = torch.stack([elbo_terms(model, x).elbo for _ in range(4000)])  # (S, B)
        iw = iwae_bound(model, x, 5000)
    se = draws.std(0) / math.sqrt(len(draws))
    assert torch.all((draws.mean(0) - elbo_exact).abs() < 4 * se + 1e-4)  # elbo_terms is unbiased
    assert torch.all(elbo_exact < exact)
    gap_elbo = (exact - elbo_exact).mean().item()
    gap_iwae = (exact - iw).abs().max().item()
    assert gap_elbo > 0.005  # the diagonal q is not the full-covariance posterior
    assert gap_iwae < 0.1 * gap_elbo, (gap_iwae, gap_elbo)


def test_free_bits_stop_penalising_small_kl_but_keep_reporting_it(blobs):
    torch.manual_seed(0)
    model = VAE(ModelConfig(image_shape=blobs.image_shape, latent_dim=3, hidden=16))
    x = torch.from_numpy(blobs.x_train[:32])
    eps = torch.randn(32, 3)
    plain = elbo_terms(model, x, 1.0, 0.0, eps)
    freeb = elbo_terms(model, x, 1.0, 50.0, eps)  # every dimension's KL is far below 50 nats
    torch.testing.assert_close(freeb.elbo, plain.elbo)  # the reported bound is unchanged
    assert abs(freeb.loss.item() - (-plain.recon.mean().item() + 3 * 50.0)) < 1e-3
    # the KL no longer pulls on the encoder's variance: only the reconstruction's gradient is left
    g_free = torch.autograd.grad(freeb.loss, model.encoder.net[-1].bias)[0]
    g_recon = torch.autograd.grad(-elbo_terms(model, x, 1.0, 0.0, eps).recon.mean(), model.encoder.net[-1].bias)[0]
    torch.testing.assert_close(g_free, g_recon)


def test_iwae_stays_finite_when_the_posterior_variance_underflows(blobs):
    """log σ² = −160 makes σ² zero in float32; log q(z) from the drawn noise stays exact (a wide CSV did this)."""
    model = _trained_tiny_vae(blobs, steps=5)
    x = torch.from_numpy(blobs.x_test[:4])
    enc = model.encoder

    class TinyVariance(torch.nn.Module):
        def forward(self, x):
            h = enc(x)
            d = h.shape[1] // 2
            return torch.cat((h[:, :d], torch.full_like(h[:, d:], -160.0)), 1)

    model.encoder = TinyVariance()
    bound = iwae_bound(model, x, 50, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(bound).all()
