"""The compiled training step and evaluation pass (engine/compiled.py): the same numbers as the eager code, the
eager fallback when compiling fails, no compile on the training thread, and the run's switch without a lost step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import compiled
from engine.batches import to_float
from engine.config import ModelConfig, TrainConfig
from engine.messages import CompileStatus, EpochSummary, MetricsChunk
from engine.objectives import elbo_terms
from engine.trainer import Trainer
from tests.conftest import make_blobs


@pytest.fixture
def compiling(monkeypatch):
    """Compile: auto really compiles in this test (the suite turns it off elsewhere)."""
    monkeypatch.delenv(compiled.ENV, raising=False)


@pytest.fixture
def one_thread():
    """This thread at the count the runs below compile for (threads=1), as the trainer sets it before stepping."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _run(ds, arch="mlp", likelihood="bernoulli", **train):
    mcfg = ModelConfig(image_shape=ds.image_shape, latent_dim=2, hidden=32, arch=arch, likelihood=likelihood)
    tcfg = TrainConfig(**{"epochs": 1, "batch_size": 64, "threads": 1, "iwae_examples": 20, **train})
    return Trainer(ds, mcfg, tcfg)


def _wait(run) -> None:
    run.compiled.graphs.thread.join(600)
    assert not run.compiled.graphs.error, run.compiled.graphs.error


# a real Inductor compile each: the three take 47 s with no Inductor disk cache, 22 s in a fresh checkout beside a
# cache that another checkout filled (only part of it is reused there), 7 s in the checkout that filled it
@pytest.mark.slow(seconds=20)
@pytest.mark.parametrize(
    "arch, likelihood", [("mlp", "bernoulli"), ("mlp", "continuous_bernoulli"), ("conv", "gaussian")]
)
def test_compiled_and_eager_steps_give_the_same_loss(compiling, one_thread, arch, likelihood):
    ds = make_blobs(n_train=256, n_test=64)
    run = _run(ds, arch, likelihood, compile="off")
    run.compiled = compiled.build_step(run)  # the conv model is compiled here although auto leaves it eager on a CPU
    _wait(run)
    x = to_float(torch.from_numpy(ds.x_train[:64]))
    eps = torch.randn((64, 2), generator=torch.Generator().manual_seed(3))
    for beta in (1.0, 0.25):  # β is an input of the graph, not a constant baked in
        t = elbo_terms(run.model, x, beta, 0.0, eps)
        loss, row = run.compiled.loss(x, eps, beta, None, step=0)
        # to 1e-4, relative above 1 nat (a Gaussian's first losses are ~10³ nats, where float32 resolves 1e-4)
        torch.testing.assert_close(loss.detach(), t.loss.detach(), atol=1e-4, rtol=1e-4)
        eager_row = torch.stack((t.elbo.mean(), t.recon.mean(), t.kl.mean())).detach()
        torch.testing.assert_close(row, eager_row, atol=1e-4, rtol=1e-4)
    # the gradients the optimizer sees are the eager ones too
    run.model.zero_grad()
    elbo_terms(run.model, x, 1.0, 0.0, eps).loss.backward()
    eager = [p.grad.clone() for p in run.model.parameters()]
    run.model.zero_grad()
    run.compiled.loss(x, eps, 1.0, None, step=0)[0].backward()
    for g, p in zip(eager, run.model.parameters()):
        torch.testing.assert_close(p.grad, g, atol=1e-4, rtol=1e-4)
    # the evaluation chunk: a chunk of the compiled size is compiled, any other size is left to the eager code
    rows = run.compiled.eval_rows
    xe = to_float(torch.from_numpy(ds.x_test[:rows]))
    ee = torch.randn((rows, 2), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        sums, kl_dims, mu, log_var = run.compiled.eval_chunk(xe, ee, None)
        t = elbo_terms(run.model, xe, 1.0, 0.0, ee)
        assert run.compiled.eval_chunk(xe[:-1], ee[:-1], None) is None
    torch.testing.assert_close(sums, torch.stack((t.elbo.sum(), t.recon.sum(), t.kl.sum())), atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(kl_dims, t.kl_dims.sum(0), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(mu, t.mu, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(log_var, t.log_var, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_a_run_switches_to_the_compiled_step_without_losing_a_step_and_a_second_run_starts_compiled(compiling):
    ds = make_blobs(n_train=200, n_test=64)  # 200 = 3 full batches of 64 and a short one (eager) per epoch
    run = _run(ds, epochs=3)
    _wait(run)  # ready before the first step: the switch happens at step 0
    msgs = list(run.run())
    status = [m for m in msgs if isinstance(m, CompileStatus)]
    assert status[-1].state == "compiled" and run.compiled.switched_at == 0
    steps = np.concatenate([m.steps for m in msgs if isinstance(m, MetricsChunk)])
    np.testing.assert_array_equal(steps, np.arange(3 * 4))  # every step, the short ones eager, in order
    assert len([m for m in msgs if isinstance(m, EpochSummary)]) == 3
    # the same configuration again (a new model, new weights): compiled from its first step, nothing recompiled
    again = _run(ds, epochs=1)
    assert again.compiled.graphs is run.compiled.graphs
    assert again.compiled.status()[0] == "compiled"
    assert not again.compiled.graphs.thread.is_alive()


def test_the_switch_is_told_when_every_metrics_chunk_is_an_end_of_epoch_flush(compiling, monkeypatch):
    """Short epochs (2 steps, no flush inside one): the switch to the compiled step is still told, with the run."""
    import threading

    gate = threading.Event()

    def held_backend(gm, example_inputs):  # a real compile (AOTAutograd, eager kernels), held until released
        assert gate.wait(120)
        return torch._dynamo.lookup_backend("aot_eager")(gm, example_inputs)

    monkeypatch.setattr(compiled, "_REGISTRY", {})
    monkeypatch.setattr(compiled, "BACKEND", held_backend)
    torch._dynamo.reset()
    run = _run(make_blobs(n_train=128, n_test=64), epochs=8, metrics_hz=1e-3)
    msgs, told = [], []
    try:
        for m in run.run():
            msgs.append(m)
            if isinstance(m, EpochSummary) and m.epoch == 2:  # two epochs trained eagerly; now let it compile
                gate.set()
                _wait(run)
            if isinstance(m, CompileStatus):
                told.append((m.state, m.step))
    finally:
        gate.set()
    switched = run.compiled.switched_at
    assert switched is not None and switched >= 4
    assert told[0][0] == "compiling" and told[-1] == ("compiled", switched + 2)  # told with the switch's epoch
    assert len(told) == 2
    steps = np.concatenate([m.steps for m in msgs if isinstance(m, MetricsChunk)])
    np.testing.assert_array_equal(steps, np.arange(8 * 2))


def test_every_configuration_of_a_session_is_compiled_past_dynamos_limit_of_eight_graphs(compiling, monkeypatch):
    """Dynamo compiles one function into at most 8 graphs and then refuses: ten models of one session (a user
    trying settings) each get graphs of their own, none falls back to the eager step."""
    compiled_for = []

    def counting_backend(gm, example_inputs):  # records which model's graph was compiled, runs it as traced
        compiled_for.append(tuple(example_inputs[0].shape))
        return gm.forward

    monkeypatch.setattr(compiled, "_REGISTRY", {})
    monkeypatch.setattr(compiled, "BACKEND", counting_backend)
    torch._dynamo.reset()
    ds = make_blobs(n_train=128, n_test=64)
    hidden = [8 + 2 * i for i in range(10)]
    for h in hidden:
        run = Trainer(
            ds,
            ModelConfig(image_shape=ds.image_shape, latent_dim=2, hidden=h),
            TrainConfig(epochs=1, batch_size=64, threads=1, iwae_examples=20),
        )
        _wait(run)
    pixels = int(np.prod(ds.image_shape))
    first_weights = set(compiled_for)  # a graph's first input: the encoder's first weight, (hidden, pixels)
    assert {(h, pixels) for h in hidden} <= first_weights, sorted(first_weights)


def test_compiling_that_raises_falls_back_to_the_eager_step_and_says_why_once(compiling, monkeypatch):
    def broken_backend(gm, example_inputs):
        raise RuntimeError("no kernels for you")

    monkeypatch.setattr(compiled, "BACKEND", broken_backend)
    ds = make_blobs(n_train=128, n_test=64)
    run = _run(ds, epochs=2, batch_size=32)
    run.compiled.graphs.thread.join(600)
    assert "no kernels for you" in run.compiled.graphs.error
    msgs = list(run.run())
    status = [m for m in msgs if isinstance(m, CompileStatus)]
    assert [m.state for m in status] == ["eager"]  # said once, at the start
    assert "compiling failed" in status[0].text and "no kernels for you" in status[0].text
    assert run.compiled.switched_at is None
    summaries = [m for m in msgs if isinstance(m, EpochSummary)]
    assert len(summaries) == 2 and np.isfinite(summaries[-1].test_elbo)


def test_auto_leaves_the_conv_model_eager_on_a_cpu_and_says_why(compiling):
    run = _run(make_blobs(n_train=128, n_test=64), "conv", "gaussian")
    assert run.compiled is None and "conv model steps eagerly" in run.compile_note
    status = [m for m in run.run() if isinstance(m, CompileStatus)]
    assert [m.state for m in status] == ["eager"] and "conv model steps eagerly" in status[0].text


def test_compile_off_steps_eagerly_and_says_so(monkeypatch):
    monkeypatch.delenv(compiled.ENV, raising=False)
    ds = make_blobs(n_train=128, n_test=64)
    run = _run(ds, compile="off")
    assert run.compiled is None
    status = [m for m in run.run() if isinstance(m, CompileStatus)]
    assert [(m.state, m.text) for m in status] == [("eager", "compile off: eager step")]


def test_thread_counts_cover_the_governors_choices_the_one_in_use_first():
    from engine.threads import ThreadGovernor

    assert compiled.thread_counts(ThreadGovernor(2), 2) == [2, 1]
    assert compiled.thread_counts(ThreadGovernor(8, fixed=3), 8) == [3]
    assert compiled.thread_counts(None, 5) == [5]
    g = ThreadGovernor(16)
    assert compiled.thread_counts(g, 16) == [16, 15, 14, 13]
