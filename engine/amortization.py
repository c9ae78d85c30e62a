"""The amortization gap: one encoder network against a separate q_i for every data point (seed 000).

The encoder gives every x the Gaussian q_φ(z|x) = N(μ_φ(x), diag σ²_φ(x)) in one forward pass ("amortized
inference", seed 002). The lecture's original recipe instead fits a separate q_i = N(μ_i, diag σ_i²) to each
example by maximising that example's ELBO. For a fixed decoder, Cremer, Li & Duvenaud ("Inference Suboptimality in
Variational Autoencoders", ICML 2018) split the encoder's gap to log p(x) into two parts:

    log p(x) − ELBO(q_φ)  =  [log p(x) − ELBO(q_i*)]   +   [ELBO(q_i*) − ELBO(q_φ)]
      inference gap           approximation gap             amortization gap
                              (the Gaussian family is         (one shared network is worse
                               too simple for p(z|x))          than a q_i per example)

``amortization_study`` estimates all three for a batch of examples:

* **q_i*.** (μ_i, log σ_i²) start at the encoder's output and are optimised jointly for all examples with Adam on
  the reparameterised ELBO (``n_samples`` samples per step, analytic KL). The examples' ELBOs are independent, so
  the loss Σ_i ELBO_i gives each q_i exactly its own gradient: one batched Adam = per-example SGD. The decoder is
  frozen: gradients are taken with ``torch.autograd.grad`` w.r.t. the variational parameters only, so the model is
  never modified (it may be shared). The learning rate decays from ``lr`` = 0.2 to 1% of it (cosine): early steps
  of ~0.2 latent units let q_i travel several units when the encoder is badly wrong, the last ones (~0.002) settle
  it to well under a posterior standard deviation. (Measured: on a 2-D Fashion-MNIST VAE, 300 steps reach within
  ~0.005 nats of 1500 steps; with a deliberately broken encoder, 0.2 recovers the same optimum as a trained one,
  while steps scaled by the encoder's σ — μ = μ_φ + σ_φ ⊙ δ — got stuck 15 nats short.)
* **Keeping the best.** Every ``eval_every`` steps each example's ELBO is evaluated precisely (the same scrambled
  Sobol normals each time: randomised quasi-Monte Carlo with common random numbers) and its best parameters so far
  are kept. The encoder's parameters are the first candidate, so the kept q_i is never worse than the encoder's q
  under that evaluation.
* **Reported ELBOs.** Encoder and optimised q_i are then evaluated again with *fresh* noise: ``eval_replicates``
  independent Sobol scrambles of ``eval_points`` points, shared by the two (common random numbers, so their
  difference is very precise). The standard errors come from the spread between replicates (an honest RQMC
  estimate). If the optimised q_i comes out below the encoder's under the fresh noise (possible only when
  optimisation found nothing, by less than the noise), the encoder's q is kept for that example: the comparison is
  between two candidates, so the selection bias is at most the difference's tiny s.e.
* **log p̂(x).** The IWAE bound (Burda et al. 2016, ``objectives.iwae_bound``'s estimator, same noise draws) with
  ``iwae_k`` samples from the optimised q_i as the proposal: any proposal gives a stochastic lower bound
  E[log p̂_K] ≤ log p(x), and with q_i as proposal E[log p̂_K] ≥ ELBO(q_i) for every K (the better proposal gives a
  tighter bound than the encoder's). Its standard error is the delta-method estimate
  s.e.(log p̂) ≈ sd(w)/(√K · mean(w)) from the importance weights w (an underestimate for heavy-tailed weights).
* **Exact log p(x) for a 2-D latent.** IWAE only sees the posterior mass its proposal reaches: when q_i settles in
  a minor mode of a multi-modal posterior, log p̂ stays near ELBO(q_i) and the approximation gap looks tiny while
  the truth is many nats (seen on Fashion-MNIST: 1 example in 100, 14 nats). With ``exact_2d`` (default) and
  d = 2, log p(x) is also computed by quadrature (engine.posterior.log_px_quadrature, ``exact_grid``² nodes,
  ~40 ms an example) and ``approximation_gap_exact`` = log p(x) − ELBO(q_i) is reported next to the IWAE one.

Cost (784-400-2 MLP, 100 examples, defaults, two CPU cores): ~7 s — 300 Adam steps 1.8 s, the final ELBO
evaluations 0.9 s, IWAE K = 1000 0.9 s, the 2-D quadrature 3.4 s.

Everything is in nats per example. The study is a generator of plain messages (like the trainer): progress,
then the result, or a ``AmortizationCancelled`` if ``cancel`` (a ``threading.Event``) is set; engine tests just
iterate it, the GUI iterates it on a worker thread. Works for any latent dimension and any ``LatentModel``
(engine/posterior.py)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .chunking import decode_rows, iwae_sample_chunk
from .model import for_example
from .objectives import iwae_log_weights, kl_per_dim
from .posterior import as_image_batch, log_px_quadrature, model_device

LR_FLOOR = 0.01  # the cosine schedule decays the learning rate to this fraction of ``lr``


# ----------------------------------------------------------------------------------------------- messages
@dataclass(frozen=True)
class AmortizationProgress:
    done_steps: int  # work units: optimisation steps, 1 for the final evaluation, IWAE chunks, quadrature examples
    total_steps: int
    fraction: float  # done_steps / total_steps, non-decreasing
    phase: str  # "optimise" | "evaluate" | "iwae" | "quadrature"
    mean_encoder_elbo: float  # mean over the examples, selection evaluation (nats)
    mean_best_elbo: float  # mean of the best ELBO found so far per example, same evaluation
    elapsed_s: float


@dataclass(frozen=True)
class AmortizationCancelled:
    done_steps: int
    total_steps: int
    text: str = "Cancelled."


@dataclass(frozen=True)
class AmortizationResult:
    """Per-example arrays are (n,) float64 in nats, in the order of ``indices``."""

    indices: np.ndarray  # (n,) int64 positions of the examples in the caller's array (e.g. the test split)
    encoder_elbo: np.ndarray  # ELBO of the encoder's q_φ(z|x)
    optimised_elbo: np.ndarray  # ELBO of the per-example q_i (≥ encoder_elbo by construction)
    log_px_iwae: np.ndarray  # log p̂(x), IWAE with iwae_k samples from q_i
    encoder_elbo_se: np.ndarray  # Monte Carlo standard errors
    optimised_elbo_se: np.ndarray
    amortization_gap_se: np.ndarray  # s.e. of the difference (common random numbers make it small)
    log_px_se: np.ndarray
    amortization_gap: np.ndarray  # optimised − encoder ≥ 0
    approximation_gap: np.ndarray  # log p̂ − optimised (≥ 0 up to Monte Carlo error)
    inference_gap: np.ndarray  # log p̂ − encoder = the sum of the two
    log_px_quadrature: np.ndarray  # 2-D latents only (else NaN): log p(x) by quadrature on a grid, exact to ~1e-6
    approximation_gap_exact: np.ndarray  # log p(x) (quadrature) − optimised; NaN unless 2-D
    improved: np.ndarray  # (n,) bool: optimisation beat the encoder (else q_i = the encoder's q)
    encoder_mu: np.ndarray  # (n, d) float32
    encoder_log_var: np.ndarray  # (n, d)
    optimised_mu: np.ndarray  # (n, d)
    optimised_log_var: np.ndarray  # (n, d)
    mean_encoder_elbo: float
    mean_optimised_elbo: float
    mean_log_px: float
    mean_amortization_gap: float
    mean_approximation_gap: float
    mean_inference_gap: float
    mean_log_px_quadrature: float  # NaN unless 2-D
    mean_approximation_gap_exact: float  # NaN unless 2-D
    iwae_k: int
    steps: int
    lr: float
    n_samples: int
    eval_samples: int  # samples per example behind the reported ELBOs
    seconds: float

    @property
    def n(self) -> int:
        return len(self.indices)


# ----------------------------------------------------------------------------------------------- estimators
def sobol_normals(n_points: int, d: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n_points, d) standard-normal points from a scrambled Sobol sequence (randomised QMC): each point is
    N(0, I)-distributed, the set covers the space far more evenly than iid draws."""
    u = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed).draw(n_points, dtype=torch.float64)
    u = u.clamp(1e-12, 1 - 1e-12)
    return (math.sqrt(2.0) * torch.erfinv(2 * u - 1)).to(device=device, dtype=torch.float32)


@torch.no_grad()
def mc_recon(
    model, x: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor, max_decodes: int = 0
) -> torch.Tensor:
    """Per-sample log p(x_i|z) at z = μ_i + σ_i ⊙ ε_s for every ε_s in eps (S, d): returns (S, n) float64.
    Decoded in chunks of about ``max_decodes`` images (0: as many as fit the memory budget, engine.chunking)."""
    n, d = mu.shape
    s_tot = eps.shape[0]
    out = torch.empty((s_tot, n), dtype=torch.float64)
    per = max(1, (max_decodes or decode_rows(model)) // max(n, 1))
    sd = (0.5 * log_var).exp()
    for s0 in range(0, s_tot, per):
        e = eps[s0 : s0 + per]  # (s, d)
        s = e.shape[0]
        z = mu.unsqueeze(0) + sd.unsqueeze(0) * e.unsqueeze(1)  # (s, n, d)
        params = model.decode(z.reshape(s * n, d))
        xs = x.unsqueeze(0).expand(s, *x.shape).reshape(s * n, *x.shape[1:])
        out[s0 : s0 + s] = model.likelihood.log_prob(xs, params).view(s, n).double().cpu()
    return out


def _kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:  # (n,) float64 KL(q ‖ N(0, I))
    return kl_per_dim(mu.double(), log_var.double()).sum(1).cpu()


def _iwae_chunks(model, x, mu, log_var, k: int, chunk: int, generator: torch.Generator | None):
    """Generator over the chunks of ``objectives.iwae_log_weights`` with q = N(mu, diag exp(log_var)) as the
    proposal; yields after every chunk, returns (log p̂_K(x) (n,), delta-method s.e. (n,)), float64. With the
    encoder's (mu, log_var) and the same generator state the value is iwae_bound's."""
    b = mu.shape[0]
    lse_w = torch.full((b,), -math.inf, dtype=torch.float64)
    lse_w2 = torch.full((b,), -math.inf, dtype=torch.float64)
    for log_w in iwae_log_weights(model, x, k, mu, log_var, chunk, generator):
        log_w = log_w.double().cpu()  # (K', B)
        lse_w = torch.logaddexp(lse_w, torch.logsumexp(log_w, 0))
        lse_w2 = torch.logaddexp(lse_w2, torch.logsumexp(2 * log_w, 0))
        yield
    log_p = lse_w - math.log(k)
    # relative variance of the weights: E[w²]/E[w]² − 1, then s.e.(log mean w) ≈ sqrt(relvar / K)
    rel_var = (lse_w2 - math.log(k) - 2 * log_p).exp() - 1.0
    se = (rel_var.clamp(min=0.0) / k).sqrt()
    return log_p.numpy(), se.numpy()


def iwae_with_se(model, x, mu, log_var, k: int, chunk: int = 0, generator: torch.Generator | None = None):
    """log p̂_K(x) with proposal N(mu, diag exp(log_var)) and its delta-method standard error, (n,) each."""
    it = _iwae_chunks(model, x, mu, log_var, k, chunk, generator)
    while True:
        try:
            next(it)
        except StopIteration as stop:
            return stop.value


# ----------------------------------------------------------------------------------------------- the study
def amortization_study(
    model,
    x_batch,
    steps: int = 300,
    lr: float = 0.2,
    n_samples: int = 4,
    iwae_k: int = 1000,
    seed: int = 0,
    cancel: threading.Event | None = None,
    *,
    indices=None,
    eval_every: int = 50,
    select_points: int = 128,
    eval_points: int = 128,
    eval_replicates: int = 4,
    progress_every: int = 5,
    max_decodes: int = 0,
    exact_2d: bool = True,
    exact_grid: int = 61,
) -> Iterator[AmortizationProgress | AmortizationCancelled | AmortizationResult]:
    """Fit a separate Gaussian q_i to each of the n examples in ``x_batch`` (n, C, H, W) and compare it with the
    encoder's q and with log p̂(x) (module docstring). Yields AmortizationProgress messages, then one
    AmortizationResult, or AmortizationCancelled if ``cancel`` gets set (checked between steps and chunks)."""
    t0 = time.perf_counter()
    device = model_device(model)
    x = as_image_batch(x_batch, device)
    n = x.shape[0]
    if n == 0:
        raise ValueError("amortization_study needs at least one example")
    idx = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    if len(idx) != n:
        raise ValueError(f"{len(idx)} indices for {n} examples")
    steps = max(0, int(steps))
    chunk = iwae_sample_chunk(model, n)
    n_iwae_chunks = math.ceil(iwae_k / chunk)
    total = steps + 1 + n_iwae_chunks  # + n quadrature examples for a 2-D latent, added below
    cancelled = lambda: cancel is not None and cancel.is_set()  # noqa: E731

    with torch.no_grad():
        mu0, lv0 = model.encode(x)  # (n, d) each
    mu0, lv0 = mu0.detach().float(), lv0.detach().float()
    d = mu0.shape[1]
    exact = exact_2d and d == 2
    if exact:
        total += n

    # the selection evaluation: fixed scrambled-Sobol normals, the same at every evaluation (common random numbers)
    eps_sel = sobol_normals(select_points, d, seed, device)  # (S, d)

    def select_elbo(mu, lv):  # (n,) float64
        return mc_recon(model, x, mu, lv, eps_sel, max_decodes).mean(0) - _kl(mu, lv)

    enc_sel = select_elbo(mu0, lv0)
    best_elbo = enc_sel.clone()
    best_mu, best_lv = mu0.clone(), lv0.clone()
    mean_enc = float(enc_sel.mean())

    def progress(done, phase):
        return AmortizationProgress(
            done, total, done / total, phase, mean_enc, float(best_elbo.mean()), time.perf_counter() - t0
        )

    yield progress(0, "optimise")

    # the variational parameters (μ_i, log σ_i²), (n, d) each, starting at the encoder's output
    mu_v = mu0.clone().requires_grad_(True)
    lv_v = lv0.clone().requires_grad_(True)
    opt = torch.optim.Adam([mu_v, lv_v], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / max(steps, 1)))
    )
    gen = torch.Generator(device=device).manual_seed(seed)
    x_rep = x.unsqueeze(0).expand(n_samples, *x.shape).reshape(n_samples * n, *x.shape[1:])  # (S·n, C, H, W)
    for step in range(1, steps + 1):
        if cancelled():
            yield AmortizationCancelled(step - 1, total)
            return
        mu, lv = mu_v, lv_v  # (n, d)
        eps = torch.randn((n_samples, n, d), device=device, generator=gen)
        z = mu + (0.5 * lv).exp() * eps  # (S, n, d), reparameterised
        log_px = model.likelihood.log_prob(x_rep, model.decode(z.reshape(-1, d))).view(n_samples, n)
        elbo = log_px.mean(0) - kl_per_dim(mu, lv).sum(1)  # (n,) one MC estimate per example
        g_mu, g_lv = torch.autograd.grad(-elbo.sum(), [mu_v, lv_v])  # decoder weights untouched
        mu_v.grad, lv_v.grad = g_mu, g_lv
        opt.step()
        sched.step()
        with torch.no_grad():
            lv_v.clamp_(-30.0, 10.0)  # keep exp() finite whatever happens
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                mu_c, lv_c = mu_v.detach().clone(), lv_v.detach().clone()
                e = select_elbo(mu_c, lv_c)
                better = e > best_elbo  # (n,) NaN compares False: a diverged q_i is never kept
                best_elbo = torch.where(better, e, best_elbo)
                best_mu = torch.where(better.unsqueeze(1).to(device), mu_c, best_mu)
                best_lv = torch.where(better.unsqueeze(1).to(device), lv_c, best_lv)
        if step % progress_every == 0 or step == steps:
            yield progress(step, "optimise")

    # the reported ELBOs: fresh RQMC noise, shared by encoder and optimised q (common random numbers)
    if cancelled():
        yield AmortizationCancelled(steps, total)
        return
    reps_enc, reps_opt = [], []
    for r in range(eval_replicates):
        eps_r = sobol_normals(eval_points, d, seed + 1000 + r, device)
        reps_enc.append(mc_recon(model, x, mu0, lv0, eps_r, max_decodes).mean(0))
        reps_opt.append(mc_recon(model, x, best_mu, best_lv, eps_r, max_decodes).mean(0))
    re, ro = torch.stack(reps_enc), torch.stack(reps_opt)  # (R, n)
    kl_enc, kl_opt = _kl(mu0, lv0), _kl(best_mu, best_lv)

    def se(a):  # standard error of the mean of R replicates
        return (a.std(0, unbiased=True) / math.sqrt(a.shape[0])).numpy() if a.shape[0] > 1 else np.zeros(a.shape[1])

    enc_elbo = (re.mean(0) - kl_enc).numpy()
    opt_elbo = (ro.mean(0) - kl_opt).numpy()
    enc_se, opt_se, diff_se = se(re), se(ro), se(ro - re)
    improved = opt_elbo > enc_elbo
    keep = torch.as_tensor(improved, device=device).unsqueeze(1)
    best_mu = torch.where(keep, best_mu, mu0)
    best_lv = torch.where(keep, best_lv, lv0)
    opt_elbo = np.where(improved, opt_elbo, enc_elbo)
    opt_se = np.where(improved, opt_se, enc_se)
    diff_se = np.where(improved, diff_se, 0.0)
    yield progress(steps + 1, "evaluate")

    # log p̂(x) with the optimised q_i as the proposal
    gen_iw = torch.Generator(device=device).manual_seed(seed + 2)
    it = _iwae_chunks(model, x, best_mu, best_lv, iwae_k, chunk, gen_iw)
    done = steps + 1
    while True:
        if cancelled():
            yield AmortizationCancelled(done, total)
            return
        try:
            next(it)
        except StopIteration as stop:
            log_p, log_p_se = stop.value
            break
        done += 1
        yield progress(done, "iwae")

    # 2-D latents: the true log p(x) by quadrature, which also sees modes that no Gaussian proposal reaches
    log_px_quad = np.full(n, np.nan)
    if exact:
        for j in range(n):
            if cancelled():
                yield AmortizationCancelled(done, total)
                return
            log_px_quad[j] = log_px_quadrature(for_example(model, j), x[j], exact_grid)[0]
            done += 1
            yield progress(done, "quadrature")

    amort = opt_elbo - enc_elbo
    approx = log_p - opt_elbo
    infer = log_p - enc_elbo
    approx_exact = log_px_quad - opt_elbo
    nanmean = lambda a: float(a.mean()) if np.all(np.isfinite(a)) else float("nan")  # noqa: E731
    f32 = lambda t: t.detach().float().cpu().numpy().copy()  # noqa: E731
    yield AmortizationResult(
        indices=idx.copy(),
        encoder_elbo=enc_elbo,
        optimised_elbo=opt_elbo,
        log_px_iwae=log_p,
        encoder_elbo_se=enc_se,
        optimised_elbo_se=opt_se,
        amortization_gap_se=diff_se,
        log_px_se=log_p_se,
        amortization_gap=amort,
        approximation_gap=approx,
        inference_gap=infer,
        log_px_quadrature=log_px_quad,
        approximation_gap_exact=approx_exact,
        improved=np.asarray(improved),
        encoder_mu=f32(mu0),
        encoder_log_var=f32(lv0),
        optimised_mu=f32(best_mu),
        optimised_log_var=f32(best_lv),
        mean_encoder_elbo=float(enc_elbo.mean()),
        mean_optimised_elbo=float(opt_elbo.mean()),
        mean_log_px=float(log_p.mean()),
        mean_amortization_gap=float(amort.mean()),
        mean_approximation_gap=float(approx.mean()),
        mean_inference_gap=float(infer.mean()),
        mean_log_px_quadrature=nanmean(log_px_quad),
        mean_approximation_gap_exact=nanmean(approx_exact),
        iwae_k=int(iwae_k),
        steps=steps,
        lr=float(lr),
        n_samples=int(n_samples),
        eval_samples=int(eval_points * eval_replicates),
        seconds=time.perf_counter() - t0,
    )


def run_study(model, x_batch, **kw) -> AmortizationResult | AmortizationCancelled:
    """Iterate ``amortization_study`` to the end and return its last message (for scripts and tests)."""
    last = None
    for last in amortization_study(model, x_batch, **kw):
        pass
    return last
