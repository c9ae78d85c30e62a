"""The training loop: it learns, it is reproducible, control takes effect within a step, NaN pauses and restores."""

import threading
import time

import numpy as np
import pytest
import torch

from engine import evaluation as evaluation_mod
from engine import trainer as trainer_mod
from engine.config import ConfigError, ModelConfig, TrainConfig
from engine.messages import (
    WeightsSnapshot,
    EpochSummary,
    LatentSnapshot,
    MetricsChunk,
    RunStarted,
    StateChanged,
    WorkerError,
)
from engine.model import VAE
from engine.devices import pick_device
from engine.trainer import Trainer

FAST = dict(batch_size=32, iwae_k=5, iwae_examples=50, metrics_hz=1e9, snapshot_interval_s=0.0)


def _run(ds, epochs=2, **kw):
    mcfg = ModelConfig(
        image_shape=ds.image_shape,
        hidden=32,
        **{k: kw.pop(k) for k in list(kw) if k in ("latent_dim", "arch", "likelihood")},
    )
    return Trainer(ds, mcfg, TrainConfig(epochs=epochs, **{**FAST, **kw}))


def test_short_run_raises_the_elbo_and_emits_every_message(blobs):
    run = _run(blobs, epochs=4, lr=3e-3)
    msgs = list(run.run())
    kinds = {type(m) for m in msgs}
    assert {RunStarted, StateChanged, MetricsChunk, EpochSummary, LatentSnapshot, WeightsSnapshot} <= kinds
    epochs = [m for m in msgs if isinstance(m, EpochSummary)]
    assert [e.epoch for e in epochs] == [0, 1, 2, 3]
    assert epochs[-1].test_elbo > epochs[0].test_elbo + 1.0
    elbo = run.history.column("elbo")
    assert len(elbo) == run.total_steps == 4 * 19
    assert elbo[-10:].mean() > elbo[:10].mean() + 5
    assert np.array_equal(run.history.steps, np.arange(run.total_steps))
    last = epochs[-1]
    assert last.test_iwae >= last.test_elbo_subset - 0.5  # IWAE bound ≥ ELBO up to MC noise
    assert abs(last.test_kl - last.kl_per_dim.sum()) < 1e-4
    assert abs(last.test_elbo - (last.test_recon - last.test_kl)) < 1e-4
    assert 0 <= last.active_units <= 2
    assert abs(last.bits_per_dim - (-last.test_elbo / (64 * np.log(2)))) < 1e-9
    assert msgs[-1] == StateChanged("finished", "Finished 4 epochs.", run.total_steps, 4)
    snap = [m for m in msgs if isinstance(m, LatentSnapshot)][-1]
    assert snap.means.shape == (200, 2) and snap.labels.shape == (200,)
    np.testing.assert_array_equal(snap.labels, blobs.y_test[snap.indices])


def test_metrics_cross_threads_as_fresh_numpy(blobs):
    run = _run(blobs, epochs=1)
    chunks = [m for m in run.run() if isinstance(m, MetricsChunk)]
    for c in chunks:
        for a in (c.steps, c.elbo, c.recon, c.kl):
            assert isinstance(a, np.ndarray) and a.base is None  # owns its memory, not a view of a buffer
    np.testing.assert_allclose(
        np.concatenate([c.elbo for c in chunks]),
        np.concatenate([c.recon for c in chunks]) - np.concatenate([c.kl for c in chunks]),
        rtol=1e-5,
        atol=1e-4,
    )


def test_seeded_cpu_runs_are_reproducible(blobs):
    a, b = _run(blobs, epochs=1, seed=5), _run(blobs, epochs=1, seed=5)
    list(a.run()), list(b.run())
    np.testing.assert_array_equal(a.history.column("elbo"), b.history.column("elbo"))
    c = _run(blobs, epochs=1, seed=6)
    list(c.run())
    assert not np.array_equal(a.history.column("elbo"), c.history.column("elbo"))


@pytest.mark.parametrize(
    "arch,likelihood,latent_dim", [("conv", "bernoulli", 2), ("mlp", "gaussian", 5), ("mlp", "continuous_bernoulli", 3)]
)
def test_other_architectures_train(blobs, arch, likelihood, latent_dim):
    run = _run(blobs, epochs=2, arch=arch, likelihood=likelihood, latent_dim=latent_dim, lr=3e-3)
    epochs = [m for m in run.run() if isinstance(m, EpochSummary)]
    assert len(epochs) == 2 and np.isfinite(epochs[-1].test_elbo)
    assert epochs[-1].kl_per_dim.shape == (latent_dim,)


def test_warmup_ramps_beta(blobs):
    run = _run(blobs, epochs=2, warmup_epochs=1.0, beta=2.0)
    betas = [m.beta for m in run.run() if isinstance(m, MetricsChunk)]
    assert betas[0] < 0.2 and betas[-1] == 2.0
    assert np.all(np.diff(betas) >= 0)


def _drive_in_thread(run):
    out = []
    t = threading.Thread(target=lambda: out.extend(run.run()), daemon=True)
    t.start()
    return t, out


def test_pause_resume_stop_take_effect_within_a_step(blobs):
    run = _run(blobs, epochs=1000, metrics_hz=20, snapshot_interval_s=10)
    t, out = _drive_in_thread(run)
    deadline = time.monotonic() + 10
    while run.step < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    run.pause()
    deadline = time.monotonic() + 5
    while run.state != "paused" and time.monotonic() < deadline:
        time.sleep(0.005)
    assert run.state == "paused"
    step = run.step
    time.sleep(0.3)
    assert run.step == step  # no step while paused
    run.resume()
    deadline = time.monotonic() + 5
    while run.step <= step + 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert run.step > step
    run.stop()
    t.join(5)
    assert not t.is_alive()
    states = [m.state for m in out if isinstance(m, StateChanged)]
    assert states == ["running", "paused", "running", "stopped"]
    assert run.step < run.total_steps


def test_nan_pauses_keeps_last_good_weights_and_can_resume(blobs, monkeypatch):
    real = trainer_mod.elbo_terms
    calls = {"n": 0}

    def poisoned(model, x, *a, **kw):
        calls["n"] += 1
        t = real(model, x, *a, **kw)
        if calls["n"] == 30:  # one poisoned step: its gradient turns every weight into NaN
            t.loss = t.loss * float("nan")
            t.elbo = t.elbo * float("nan")
        return t

    monkeypatch.setattr(trainer_mod, "elbo_terms", poisoned)
    run = _run(blobs, epochs=3, metrics_hz=1e9, snapshot_interval_s=1e9)
    t, out = _drive_in_thread(run)
    deadline = time.monotonic() + 10
    while run.state != "diverged" and time.monotonic() < deadline:
        time.sleep(0.005)
    assert run.state == "diverged"
    assert all(torch.isfinite(p).all() for p in run.model.parameters())  # the last good weights are back
    diverged = [m for m in out if isinstance(m, StateChanged) and m.state == "diverged"]
    assert "NaN" in diverged[0].text
    run.resume()
    t.join(20)
    assert run.state == "finished"
    assert np.isfinite(run.history.column("elbo")).all()  # the NaN row never entered the history


def test_worker_errors_become_messages(blobs, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(trainer_mod, "elbo_terms", boom)
    msgs = list(_run(blobs, epochs=1).run())
    assert isinstance(msgs[-1], WorkerError) and "kaboom" in msgs[-1].text


def test_device_selection_falls_back_to_cpu_and_refuses_missing_devices():
    if not torch.cuda.is_available():
        assert pick_device("auto").type in ("cpu", "mps")
        with pytest.raises(ConfigError, match="cuda"):
            pick_device("cuda")
    assert pick_device("cpu").type == "cpu"


def test_fp16_on_cpu_is_refused_with_a_clear_message(blobs):
    if torch.cuda.is_available():
        pytest.skip("fp16 is valid on CUDA")
    with pytest.raises(ConfigError, match="fp16"):
        _run(blobs, precision="fp16", device="cpu")


def test_bf16_autocast_trains(blobs):
    run = _run(blobs, epochs=2, precision="bf16", device="cpu", lr=3e-3)
    epochs = [m for m in run.run() if isinstance(m, EpochSummary)]
    assert epochs[-1].test_elbo > epochs[0].test_elbo - 1 and np.isfinite(epochs[-1].test_elbo)


def test_mismatched_image_shape_is_refused(blobs):
    with pytest.raises(ConfigError, match="the model takes 1×28×28 images, this dataset.s are 1×8×8"):
        Trainer(blobs, ModelConfig(image_shape=(1, 28, 28)), TrainConfig())


def test_model_shapes_for_odd_image_sizes():
    for shape in [(1, 13, 17), (3, 32, 32), (1, 28, 28)]:
        for arch in ("mlp", "conv"):
            m = VAE(ModelConfig(image_shape=shape, arch=arch, latent_dim=3, hidden=16))
            out, mu, log_var, z = m(torch.rand(4, *shape))
            assert out.shape == (4, *shape) and mu.shape == (4, 3) and z.shape == (4, 3)


def test_stop_during_the_epoch_end_evaluation_is_prompt(blobs, monkeypatch):
    real = evaluation_mod.iwae_bound
    run = _run(blobs, epochs=3, iwae_k=5, iwae_examples=200)

    def slow_iwae(*a, **k):  # a long IWAE pass, and the user presses Stop during it
        run.stop()
        return real(*a, **k)

    monkeypatch.setattr(evaluation_mod, "iwae_bound", slow_iwae)
    msgs = list(run.run())
    assert msgs[-1].state == "stopped" and "evaluation" in msgs[-1].text
    assert not any(isinstance(m, EpochSummary) for m in msgs)
    assert run.step == run.steps_per_epoch  # the epoch's training steps were kept


def test_device_setting_accepts_an_index_and_rejects_nonsense():
    assert TrainConfig(device="cuda:1").device == "cuda:1"
    with pytest.raises(ConfigError, match="device"):
        TrainConfig(device="gpu")
