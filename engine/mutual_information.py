"""How much the codes say about the images: the mutual information I_q(x; z) of the encoder's joint distribution
q(x, z) = q(x) q(z|x), q(x) uniform on the N test examples, and the collapse warning built on it.

The average KL the ELBO pays splits in two (Hoffman & Johnson, 2016, "ELBO surgery"):

    E_x KL(q(z|x) ‖ p(z)) = I_q(x; z) + KL(q(z) ‖ p(z)),    q(z) = (1/N) Σ_n q(z|x_n)  (the aggregate posterior).

A KL that falls because I_q falls is posterior collapse (the codes stop depending on x); a KL that falls because
q(z) moves onto the prior is not. I_q lies in [0, log N]: q(x) is uniform on N points, so I_q ≤ H(x) = log N.

Estimate (He et al., 2019, "Lagging inference networks", their appendix): I_q = E_n E_{z ~ q(z|x_n)}
[log q(z|x_n) − log q(z)], with one draw z_n ~ q(z|x_n) for each of S examples spread evenly over the set and
log q(z_n) = logsumexp_m log q(z_n|x_m) − log N over all N examples (more draws than examples: the
examples in turn, several draws each): an S×N table of Gaussian log densities, one
matrix product (in float64: the expanded square (z − μ)²/σ² cancels badly in float32 when σ is small). Every term
is at most log N (the sum over m includes m = n), so the estimate is too; it is clipped at 0, the bound Monte Carlo
noise can cross by a little when the codes carry almost nothing."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .messages import EpochSummary
from .objectives import LOG_2PI, log_normal_at_noise

NEAR_ZERO_MI = 0.1  # nats: codes that tell fewer than ~1.1 images apart on average carry (almost) nothing
_TABLE_ENTRIES = 1 << 22  # log densities held at once (32 MiB in float64)


@dataclass(frozen=True)
class MutualInformation:
    mi: float  # I_q(x; z), nats, in [0, log N]
    marginal_kl: float  # KL(q(z) ‖ p(z)) = mean KL(q(z|x) ‖ p(z)) − I_q, nats
    n: int  # examples whose aggregate posterior q(z) is


def sample_rows(n: int, samples: int, device=None) -> torch.Tensor:
    """``samples`` row indices of 0..n-1: spread evenly when samples ≤ n (every class of a test set stored class
    by class is represented), each row in turn again and again when there are more draws than rows."""
    k = torch.arange(samples, device=device)
    return torch.div(k * n, samples, rounding_mode="floor") if samples <= n else k % n


def log_q_table(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z_s; μ_m, diag σ²_m) for every draw s and example m, (S, N) float64, as one matrix product:
    −½ Σ_j [log 2π + log σ²_mj + z²_sj/σ²_mj − 2 z_sj μ_mj/σ²_mj + μ²_mj/σ²_mj]."""
    z, mu, log_var = z.double(), mu.double(), log_var.double()
    prec = torch.exp(-log_var)  # (N, d) 1/σ²
    d = z.shape[1]
    a = torch.cat((z * z, z, torch.ones_like(z[:, :1])), 1)  # (S, 2d+1)
    const = -0.5 * (d * LOG_2PI + log_var.sum(1) + (mu * mu * prec).sum(1))  # (N,)
    b = torch.cat((-0.5 * prec, mu * prec, const[:, None]), 1)  # (N, 2d+1)
    return a @ b.T


def mutual_information(
    mu: torch.Tensor,
    log_var: torch.Tensor,
    samples: int,
    generator: torch.Generator | None = None,
    check: Callable[[], None] | None = None,
) -> MutualInformation:
    """I_q(x; z) and KL(q(z) ‖ p(z)) of the N examples whose posteriors are (μ, log σ²), each (N, d), from one draw
    for each of ``samples`` of them (module docstring). ``check`` is called between blocks (to leave on Stop)."""
    n, d = mu.shape
    if n == 0:
        return MutualInformation(float("nan"), float("nan"), 0)
    rows = sample_rows(n, samples, mu.device)
    eps = torch.randn((len(rows), d), device=mu.device, generator=generator)
    mu, log_var, eps = mu.double(), log_var.double(), eps.double()
    z = mu[rows] + torch.exp(0.5 * log_var[rows]) * eps  # (S, d) one draw per sampled example
    own = log_normal_at_noise(eps, log_var[rows])  # (S,) log q(z_s | x_s), exact
    block = max(1, _TABLE_ENTRIES // n)
    total = torch.zeros((), dtype=torch.float64, device=mu.device)
    for s in range(0, len(rows), block):
        if check is not None:
            check()
        log_qz = torch.logsumexp(log_q_table(z[s : s + block], mu, log_var), 1) - math.log(n)  # (b,) log q(z)
        total += (own[s : s + block] - log_qz).sum()
    mean_kl = 0.5 * (mu * mu + log_var.exp() - 1.0 - log_var).sum(1).mean()
    host = torch.stack((total / len(rows), mean_kl)).cpu()  # SYNC: once per evaluation
    mi = min(max(float(host[0]), 0.0), math.log(n))
    return MutualInformation(mi, float(host[1]) - mi, n)


def collapse_warning(epochs: Sequence[EpochSummary]) -> str:
    """A plain-language warning when the test KL fell over the last epoch while I_q(x; z) is near zero (the run's
    epoch summaries, oldest first); "" otherwise."""
    if len(epochs) < 2:
        return ""
    last, before = epochs[-1], epochs[-2]
    if not (math.isfinite(last.test_mi) and last.test_mi < NEAR_ZERO_MI and last.test_kl < before.test_kl):
        return ""
    return (
        f"Posterior collapse: the KL is falling ({before.test_kl:.3g} → {last.test_kl:.3g} nats) while the codes "
        f"carry almost no information about the images (I(x; z) = {last.test_mi:.3f} nats): the decoder is learning "
        "to ignore z. Try KL warm-up, free bits or a smaller β."
    )
