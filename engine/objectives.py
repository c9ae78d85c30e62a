"""The objectives, written like the seeds write them.

ELBO (seed 000, the lecture; seed 002, the course post):
    log p(x) ≥ E_{q(z|x)}[log p(x|z)] − KL(q(z|x) ‖ p(z)) = ELBO,    log p(x) = ELBO + KL(q(z|x) ‖ p(z|x)).
With q = N(μ, diag σ²) and p(z) = N(0, I) the KL is analytic (Kingma & Welling 2014, Appendix B):
    KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²).
IWAE bound (Burda, Grosse & Salakhutdinov 2016): with z_k ~ q(z|x), k = 1..K,
    log p̂_K(x) = log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x) ≤ log p(x), non-decreasing in K, → log p(x) as K → ∞.

Units: every per-example quantity is summed over pixels and latent dimensions (nats per example); batch means are
taken only at the very end."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .chunking import iwae_sample_chunk

LOG_2PI = math.log(2 * math.pi)


def kl_per_dim(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) per example and dimension, (B, d)."""
    return 0.5 * (mu * mu + log_var.exp() - 1.0 - log_var)


def log_normal(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; μ, diag exp(log_var)) summed over the last dimension."""
    return -0.5 * (LOG_2PI + log_var + (z - mu) ** 2 / log_var.exp()).sum(-1)


def log_normal_at_noise(eps: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(μ + σε; μ, diag σ²) = −½ Σ (log 2π + log σ² + ε²), from the noise ε that drew the sample: exact even
    when σ² underflows to zero in float32 (log σ² < −103), where ``log_normal``'s (z − μ)²/σ² would be 0/0."""
    return -0.5 * (LOG_2PI + log_var + eps * eps).sum(-1)


def log_std_normal(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (LOG_2PI + z * z).sum(-1)


@dataclass
class ElboTerms:
    elbo: torch.Tensor  # (B,) recon − kl, nats
    recon: torch.Tensor  # (B,) single-sample estimate of E_q[log p(x|z)]
    kl: torch.Tensor  # (B,) analytic KL(q(z|x) ‖ p(z))
    kl_dims: torch.Tensor  # (B, d)
    loss: torch.Tensor  # scalar to minimise: −mean(recon − β·KL'), KL' with free bits applied
    mu: torch.Tensor
    log_var: torch.Tensor


def elbo_terms(
    model,
    x: torch.Tensor,
    beta: float | torch.Tensor = 1.0,
    free_bits: float = 0.0,
    eps: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
) -> ElboTerms:
    """One-sample reparameterised ELBO of a batch x (B, C, H, W); ``y``: its labels, for a conditional VAE (the
    bound is then on log p(x|y)).

    β weights the KL (β = 1 is the true bound). Free bits (Kingma et al. 2016): the batch-mean KL of each
    latent dimension is clamped below at ``free_bits`` nats in the *loss only*; the reported terms stay the ELBO."""
    out, mu, log_var, z = model(x, eps) if y is None else model(x, eps, y)
    recon = model.likelihood.log_prob(x, out)  # (B,)
    kl_dims = kl_per_dim(mu, log_var)  # (B, d)
    kl = kl_dims.sum(1)  # (B,)
    if free_bits > 0:
        kl_pen = kl_dims.mean(0).clamp(min=free_bits).sum()  # scalar, per-dim mean over the batch
    else:
        kl_pen = kl.mean()
    loss = -(recon.mean() - beta * kl_pen)
    return ElboTerms(recon - kl, recon, kl, kl_dims, loss, mu, log_var)


def iwae_log_weights(
    model,
    x: torch.Tensor,
    k: int,
    mu: torch.Tensor | None = None,
    log_var: torch.Tensor | None = None,
    chunk: int = 0,
    generator: torch.Generator | None = None,
    should_stop=None,
    grad: bool = False,
) -> Iterator[torch.Tensor]:
    """The IWAE importance weights, chunk by chunk: yields log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x),
    (K', B), for z_k ~ q = N(mu, diag exp(log_var)), the encoder's q(z|x) unless another proposal is given. The K
    samples go through the decoder ``chunk`` at a time (default: engine.chunking.iwae_sample_chunk). ``should_stop()`` is asked
    between chunks; when it returns True the estimate is abandoned with ``Interrupted``. ``grad``: keep the graph
    (reparameterised z), to train on the IWAE bound; otherwise nothing is recorded."""
    record = grad and torch.is_grad_enabled()
    if mu is None or log_var is None:
        with torch.set_grad_enabled(record):
            mu, log_var = model.encode(x)  # (B, d)
    b, d = mu.shape
    if chunk <= 0:
        chunk = iwae_sample_chunk(model, b)
    done = 0
    while done < k:
        if should_stop is not None and should_stop():
            raise Interrupted
        kc = min(chunk, k - done)
        with torch.set_grad_enabled(record):
            eps = torch.randn((kc, b, d), device=x.device, generator=generator)  # (K', B, d)
            z = mu + (0.5 * log_var).exp() * eps  # (K', B, d)
            out = model.decode(z.reshape(kc * b, d))  # (K'B, C, H, W)
            xk = x.unsqueeze(0).expand(kc, *x.shape).reshape(kc * b, *x.shape[1:])
            log_px = model.likelihood.log_prob(xk, out).view(kc, b)  # (K', B)
            log_w = log_px + log_std_normal(z) - log_normal_at_noise(eps, log_var)  # (K', B)
        done += kc
        yield log_w


class Interrupted(Exception):
    """A long estimate abandoned because its caller asked to stop."""


def iwae_bound(
    model,
    x: torch.Tensor,
    k: int,
    chunk: int = 0,
    generator: torch.Generator | None = None,
    should_stop=None,
    grad: bool = False,
) -> torch.Tensor:
    """log p̂_K(x) per example, (B,), with the encoder's q as the proposal: a running log-sum-exp over the chunks
    of ``iwae_log_weights``, so K = 100,000 fits in memory; ``should_stop`` and ``grad`` as there (with ``grad``,
    −mean is the IWAE training loss of Burda et al. 2016)."""
    total = torch.full((x.shape[0],), -math.inf, device=x.device)
    for log_w in iwae_log_weights(model, x, k, chunk=chunk, generator=generator, should_stop=should_stop, grad=grad):
        total = torch.logaddexp(total, torch.logsumexp(log_w, 0))  # records a graph only when log_w has one
    return total - math.log(k)


ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016): a unit is active when Cov_x(E_q[z_j|x]) exceeds this


@torch.no_grad()
def active_units(mu: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> tuple[int, torch.Tensor]:
    """Burda et al. (2016): dimension j is active if Cov_x(E_q[z_j|x]) > threshold. mu: (N, d) posterior means."""
    var = mu.float().var(0, unbiased=True) if len(mu) > 1 else torch.zeros(mu.shape[1], device=mu.device)
    return int((var > threshold).sum()), var
