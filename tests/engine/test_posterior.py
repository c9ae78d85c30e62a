"""The grid posterior against a linear-Gaussian model, where p(z|x), log p(x) and the ELBO are analytic.

z ~ N(0, I₂),  x | z ~ N(W z + b, σ² I_P)
p(z|x) = N(m, Σ),  Σ = (I + WᵀW/σ²)⁻¹,  m = Σ Wᵀ(x − b)/σ²
log p(x) = log N(x; b, W Wᵀ + σ² I)
ELBO(q) = log p(x) − KL(q ‖ p(z|x))   for any q = N(μ, diag s²)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from engine.config import ModelConfig
from engine.snapshot import decoder_snapshot, model_from_snapshot
from engine.model import VAE
from engine.objectives import elbo_terms
from engine.posterior import LatentModel, PosteriorGrid, posterior_grid, q_ellipse

SHAPE = (1, 4, 4)
P = 16


# ----------------------------------------------------------------------------------------------- the model
class FixedGaussian:
    """log N(x; out, σ² I) summed over pixels, in float64."""

    def __init__(self, sigma: float):
        self.sigma = sigma

    def log_prob(self, x, out):
        r = (x.double() - out.double()) / self.sigma
        return (-0.5 * r * r - math.log(self.sigma) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)


class LinearGaussianVAE(nn.Module):
    """Decoder x = W z + b with a fixed Gaussian likelihood; the encoder is linear too and, unless told otherwise,
    returns the exact posterior mean and the exact posterior's diagonal variances (exact when WᵀW is diagonal).
    ``mu_shift`` / ``log_var_shift`` perturb the encoder."""

    def __init__(self, W, b, sigma, mu_shift=(0.0, 0.0), log_var_shift=(0.0, 0.0), shape=SHAPE):
        super().__init__()
        self.W = np.asarray(W, np.float64)
        self.b = np.asarray(b, np.float64)
        self.sigma = float(sigma)
        self.shape = shape
        self.likelihood = FixedGaussian(sigma)
        d = self.W.shape[1]
        prec = np.eye(d) + self.W.T @ self.W / sigma**2
        self.cov = np.linalg.inv(prec)
        self.prec = prec
        self._Wt = torch.tensor(self.W)
        self._bt = torch.tensor(self.b)
        self.A = torch.tensor(self.cov @ self.W.T / sigma**2)  # m = A (x − b)
        self.mu_shift = torch.tensor(mu_shift, dtype=torch.float64)
        self.lv = torch.tensor(np.log(np.diag(self.cov)) + np.asarray(log_var_shift), dtype=torch.float64)

    def encode(self, x):
        xf = x.double().flatten(1) - self._bt  # (B, P)
        mu = xf @ self.A.T + self.mu_shift  # (B, d)
        return mu.float(), self.lv.float().expand_as(mu).clone()

    def decode(self, z):
        return (z.double() @ self._Wt.T + self._bt).view(-1, *self.shape)

    # ---- analytic answers
    def post_mean(self, x):
        return self.cov @ self.W.T @ (np.ravel(x) - self.b) / self.sigma**2

    def log_px(self, x):
        c = self.W @ self.W.T + self.sigma**2 * np.eye(len(self.b))
        r = np.ravel(x) - self.b
        _, logdet = np.linalg.slogdet(c)
        return float(-0.5 * (len(r) * math.log(2 * math.pi) + logdet + r @ np.linalg.solve(c, r)))

    def kl_to_posterior(self, x, mu, s2):
        """KL(N(μ, diag s²) ‖ N(m, Σ))."""
        m, prec = self.post_mean(x), self.prec
        d = len(mu)
        diff = np.asarray(mu) - m
        return float(
            0.5
            * (
                np.trace(prec @ np.diag(s2))
                + diff @ prec @ diff
                - d
                + np.linalg.slogdet(self.cov)[1]
                - np.sum(np.log(s2))
            )
        )

    def elbo(self, x, mu, s2):
        return self.log_px(x) - self.kl_to_posterior(x, mu, s2)


def random_linear_model(seed=0, sigma=0.5, scale=0.3, orthogonal=False, col_scales=(1.0, 0.6), **kw):
    rng = np.random.default_rng(seed)
    if orthogonal:
        q, _ = np.linalg.qr(rng.normal(size=(P, 2)))
        W = q * np.asarray(col_scales)[None, :] * scale * math.sqrt(P)
    else:
        W = rng.normal(0, scale, size=(P, 2))
    b = rng.uniform(0.2, 0.8, P)
    return LinearGaussianVAE(W, b, sigma, **kw)


def sample_x(model, z, seed=1):
    rng = np.random.default_rng(seed)
    x = model.W @ np.asarray(z, np.float64) + model.b + model.sigma * rng.normal(size=P)
    return x.reshape(SHAPE).astype(np.float32)


# ----------------------------------------------------------------------------------------------- tests
def test_linear_model_satisfies_the_protocol():
    assert isinstance(random_linear_model(), LatentModel)
    assert isinstance(VAE(ModelConfig(image_shape=SHAPE, hidden=8)), LatentModel)


@pytest.mark.parametrize("z_true", [(0.3, -0.5), (2.5, 1.8)])
def test_grid_matches_the_analytic_posterior(z_true):
    model = random_linear_model(seed=0)
    x = sample_x(model, z_true)
    g = posterior_grid(model, x, grid_size=101)
    assert isinstance(g, PosteriorGrid)
    x64 = x.astype(np.float64)
    assert abs(g.log_px - model.log_px(x64)) < 1e-3
    m = model.post_mean(x64)
    sd = np.sqrt(np.diag(model.cov))
    assert np.all(np.abs(g.post_mean - m) < 1e-3 * sd)
    assert np.allclose(g.post_cov, model.cov, rtol=1e-3, atol=1e-6)
    assert abs(g.density.sum() * g.cell_area - 1.0) < 1e-9
    assert g.density.shape == (101, 101) and g.xs.shape == (101,) and g.ys.shape == (101,)
    assert g.mass_in_window > 1 - 1e-5 and g.edge_mass < 1e-6 and g.q_mass_in_window > 1 - 1e-6
    # ELBO of the (non-optimal: W has correlated columns) encoder against the analytic value
    s2 = np.exp(g.log_var)
    assert abs(g.elbo - model.elbo(x64, g.mu, s2)) < 1e-3
    # log p(x) = ELBO + KL(q ‖ p(z|x)), the KL also by direct quadrature
    assert g.kl_gap > 0
    assert abs(g.kl_gap - model.kl_to_posterior(x64, g.mu, s2)) < 1e-3
    assert abs(g.kl_gap - g.kl_quadrature) < 1e-3


def test_exact_posterior_gives_zero_kl():
    model = random_linear_model(seed=3, orthogonal=True)  # WᵀW diagonal: the posterior is a diagonal Gaussian
    assert abs(model.cov[0, 1]) < 1e-12
    x = sample_x(model, (-0.7, 0.4))
    g = posterior_grid(model, x)
    assert abs(g.kl_gap) < 1e-4 and abs(g.kl_quadrature) < 1e-4
    assert abs(g.elbo - g.log_px) < 1e-4
    assert abs(g.log_px - model.log_px(x.astype(np.float64))) < 1e-4


def test_finds_a_narrow_posterior_the_encoder_misses():
    """σ_post < 0.01 and the encoder's mean is ~20 posterior σ off: the coarse search still finds the mass."""
    model = random_linear_model(seed=1, sigma=0.02, scale=1.0, mu_shift=(0.15, -0.1))
    sd = np.sqrt(np.diag(model.cov))
    assert sd.max() < 0.01
    x = sample_x(model, (1.0, -1.2))
    g = posterior_grid(model, x)
    x64 = x.astype(np.float64)
    assert abs(g.log_px - model.log_px(x64)) < 1e-3
    assert np.all(np.abs(g.post_mean - model.post_mean(x64)) < 0.01 * sd)
    assert g.mass_in_window > 1 - 1e-4
    assert g.kl_gap > 100  # q sits far out in the posterior's tail
    assert abs(g.kl_gap - model.kl_to_posterior(x64, g.mu, np.exp(g.log_var))) < 1e-2 * g.kl_gap


def test_finds_a_posterior_outside_the_prior_box():
    model = random_linear_model(seed=2, sigma=0.2, scale=0.5, mu_shift=(-6.0, 0.0))
    x = sample_x(model, (7.0, 1.0))  # the encoder points at ~(1, 1): nowhere near
    g = posterior_grid(model, x)
    assert abs(g.log_px - model.log_px(x.astype(np.float64))) < 1e-3
    assert g.post_mean[0] > 5


def test_levels_enclose_the_stated_mass():
    model = random_linear_model(seed=4)
    g = posterior_grid(model, sample_x(model, (0.0, 1.0)))
    assert np.all(np.diff(g.levels) < 0)  # higher mass, lower density level
    for level, mass in zip(g.levels, g.level_masses):
        inside = g.density[g.density >= level].sum() * g.cell_area
        assert abs(inside - mass) < 0.01
    # Gaussian posterior: the 50% region is the ellipse of Mahalanobis radius √(2 ln 2)
    m = g.post_mean
    r2 = -2 * math.log(1 - 0.5)
    peak = 1 / (2 * math.pi * math.sqrt(np.linalg.det(g.post_cov)))
    assert abs(g.levels[0] - peak * math.exp(-r2 / 2)) < 1e-3 * peak
    assert np.all(np.isfinite(m))


def test_ellipses():
    e = q_ellipse([1.0, -2.0], [math.log(4.0), math.log(0.25)], 2.0, n_points=65)
    assert e.shape == (65, 2)
    assert np.allclose(e[0], e[-1])
    assert np.allclose(((e[:, 0] - 1) / 2) ** 2 + ((e[:, 1] + 2) / 0.5) ** 2, 4.0)


def test_fixed_extent_and_errors():
    model = random_linear_model(seed=5)
    x = sample_x(model, (0.5, 0.5))
    g = posterior_grid(model, x, grid_size=51, extent=(-3.0, 3.0, -3.0, 3.0))
    assert g.extent == (-3.0, 3.0, -3.0, 3.0) and g.grid_size == 51
    assert abs(g.log_px - model.log_px(x.astype(np.float64))) < 1e-3
    with pytest.raises(ValueError):
        posterior_grid(model, x, extent=(1.0, 0.0, -1.0, 1.0))
    vae3 = VAE(ModelConfig(image_shape=SHAPE, latent_dim=3, hidden=8))
    with pytest.raises(ValueError, match="2-D"):
        posterior_grid(vae3, x)


# ----------------------------------------------------------------------------------------------- a real VAE
def train_small_vae(latent_dim: int = 2, steps: int = 300, seed: int = 0):
    """A small Bernoulli MLP VAE (8×8 images, hidden 64) trained briefly on noisy copies of 4 random binary
    prototypes; returns (model in eval mode, the data (512, 1, 8, 8) float32)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = 512
    proto = rng.uniform(0, 1, (4, 1, 8, 8)) > 0.5
    xs = proto[rng.integers(0, 4, n)].astype(np.float32)
    xs = np.abs(xs - (rng.uniform(0, 1, xs.shape) < 0.05)).astype(np.float32)  # 5% flipped pixels
    model = VAE(ModelConfig(image_shape=(1, 8, 8), latent_dim=latent_dim, hidden=64))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    x = torch.from_numpy(xs)
    for _ in range(steps):
        idx = torch.randint(0, n, (64,))
        loss = elbo_terms(model, x[idx]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), xs


@pytest.fixture(scope="module")
def small_vae():
    return train_small_vae()


@pytest.mark.slow
def test_real_vae_quadrature_is_consistent(small_vae):
    from engine.amortization import iwae_with_se

    model, xs = small_vae
    for i in range(3):
        g = posterior_grid(model, xs[i])
        g2 = posterior_grid(model, xs[i], grid_size=201)
        assert abs(g.log_px - g2.log_px) < 1e-3
        assert g.kl_gap > -1e-3 and abs(g.kl_gap - g.kl_quadrature) < 1e-2
        assert g.mass_in_window > 1 - 1e-4
        x1 = torch.from_numpy(xs[i : i + 1])
        mu, lv = model.encode(x1)
        lp, se = iwae_with_se(model, x1, mu.detach(), lv.detach(), 5000, generator=torch.Generator().manual_seed(i))
        assert lp[0] <= g.log_px + 3 * se[0] + 1e-3  # IWAE is a lower bound
        assert lp[0] >= g.elbo - 3 * se[0] - 1e-3  # and no worse than the ELBO (same proposal)


def test_from_snapshot(small_vae):
    model, xs = small_vae
    snap = decoder_snapshot(model, step=7)
    g = posterior_grid(model_from_snapshot(snap), xs[0])  # the copy other threads use gives the same grid
    assert abs(g.log_px - posterior_grid(model, xs[0]).log_px) < 1e-5
