"""A run under bad luck: divergence at an epoch's end or in its evaluation, saves that fail, a stop during a long
IWAE evaluation, and settings that cannot work with the dataset (refused before anything is built)."""

import dataclasses
import threading
import time

import numpy as np
import pytest
import torch

import engine.memory
from engine.config import ConfigError, ModelConfig, TrainConfig
from engine.data.dataset import Dataset
from engine.messages import EpochSummary, MetricsChunk, StateChanged, WorkerError
from engine.objectives import Interrupted, iwae_bound
from engine.preflight import check_run
from engine.trainer import Trainer

FAST = dict(batch_size=32, iwae_k=5, iwae_examples=50, snapshot_interval_s=1e9)


def _run(ds, epochs=2, **kw):
    mcfg = ModelConfig(
        image_shape=ds.image_shape, hidden=32, **{k: kw.pop(k) for k in list(kw) if k in ("arch", "likelihood")}
    )
    return Trainer(ds, mcfg, TrainConfig(epochs=epochs, **{**FAST, **kw}))


def _drive(run):
    """Iterate the run on a thread; returns (thread, messages list)."""
    out = []
    t = threading.Thread(target=lambda: out.extend(run.run()), daemon=True)
    t.start()
    return t, out


def _wait_state(run, state, timeout=30):
    deadline = time.monotonic() + timeout
    while run.state != state and time.monotonic() < deadline:
        time.sleep(0.005)
    assert run.state == state


# ------------------------------------------------------------------------------------------------ divergence
def test_nan_at_the_epochs_last_flush_restores_the_good_weights(blobs):
    run = _run(blobs, epochs=3, metrics_hz=1e-6)  # one flush per epoch: at its end
    spe = run.steps_per_epoch
    step = run._train_step

    def poisoned(x, beta, row, y=None):
        step(x, beta, row, y)
        if run.step == 2 * spe - 1:  # the last step of the second epoch
            with torch.no_grad():
                for p in run.model.parameters():
                    p.fill_(float("nan"))
            row.fill_(float("nan"))

    run._train_step = poisoned
    t, out = _drive(run)
    _wait_state(run, "diverged")
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    run.resume()
    t.join(30)
    assert run.state == "finished"
    assert len(run.history.epochs) == 3
    assert all(np.isfinite(e.test_elbo) for e in run.history.epochs)
    assert [m.state for m in out if isinstance(m, StateChanged)].count("diverged") == 1


def test_a_non_finite_evaluation_is_divergence_not_a_nan_epoch(blobs):
    run = _run(blobs, epochs=3, metrics_hz=1e9)
    evaluate = run.evaluate
    before = {}

    def bad_second_epoch(seconds=0.0):
        s = evaluate(seconds)
        if s.epoch == 1:
            before.update({k: v.clone() for k, v in run.model.state_dict().items()})
            with torch.no_grad():
                for p in run.model.parameters():
                    p.add_(1.0)  # weights moved away from the good copy, and the evaluation is nan
            return dataclasses.replace(s, test_elbo=float("nan"), test_kl=float("inf"))
        return s

    run.evaluate = bad_second_epoch
    t, out = _drive(run)
    _wait_state(run, "diverged")
    restored = run.model.state_dict()
    assert any(not torch.equal(restored[k], before[k] + 1.0) for k in before if k.endswith("weight"))
    run.resume()
    t.join(30)
    assert run.state == "finished"
    assert [e.epoch for e in run.history.epochs] == [0, 2]  # no NaN epoch in the history
    assert all(np.isfinite(e.test_elbo) and np.isfinite(e.test_kl) for e in run.history.epochs)
    assert not any(isinstance(m, EpochSummary) and not np.isfinite(m.test_elbo) for m in out)


# --------------------------------------------------------------------------------------------------- saving
def test_a_failed_save_is_a_message_and_training_goes_on(blobs, tmp_path, monkeypatch):
    def disk_full(obj, f):
        f.write(b"some")
        raise RuntimeError("[enforce fail at inline_container.cc:778] . unexpected pos 4224 vs 4112")

    monkeypatch.setattr(torch, "save", disk_full)
    run = _run(blobs, epochs=2, metrics_hz=1e9)
    run.request_checkpoint(str(tmp_path / "full.ckpt"))
    msgs = list(run.run())
    errors = [m for m in msgs if isinstance(m, WorkerError)]
    assert len(errors) == 1 and errors[0].fatal is False
    assert "'full.ckpt'" in errors[0].text and ".tmp" not in errors[0].text and "\n" not in errors[0].text
    assert run.state == "finished" and len(run.history.epochs) == 2


# ------------------------------------------------------------------------------------------- stop during IWAE
def test_iwae_bound_asks_whether_to_stop_between_chunks(blobs):
    model = _run(blobs, epochs=1).model
    x = torch.from_numpy(blobs.x_test[:10])
    calls = []

    def stop_on_second():
        calls.append(1)
        return len(calls) >= 2

    with pytest.raises(Interrupted):
        iwae_bound(model, x, 100_000, chunk=10, should_stop=stop_on_second)
    assert len(calls) == 2


def test_stop_during_a_long_iwae_evaluation_ends_the_run_promptly(blobs):
    run = _run(blobs, epochs=1, iwae_k=100_000, iwae_examples=200, metrics_hz=1e9)
    spe = run.steps_per_epoch
    t, out = _drive(run)
    deadline = time.monotonic() + 30
    while not any(isinstance(m, MetricsChunk) and m.step == spe for m in list(out)) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # now inside the evaluation (K = 100,000 takes minutes here)
    run.stop()
    t.join(30)
    assert not t.is_alive()
    stopped = [m for m in out if isinstance(m, StateChanged) and m.state == "stopped"]
    assert stopped and "evaluation" in stopped[0].text
    assert not any(isinstance(m, EpochSummary) for m in out)


# --------------------------------------------------------------------------------------- settings × dataset
def _tiny(side):
    x = np.random.default_rng(0).random((20, 1, side, side)).astype(np.float32)
    return Dataset("tiny", "test:tiny", x[:16], x[16:])


def test_images_smaller_than_the_kernels_go_through_the_conv_model_padded():
    ds = _tiny(3)
    run = _run(ds, arch="conv", epochs=1)
    out = list(run.run())
    assert any(isinstance(m, EpochSummary) and np.isfinite(m.test_elbo) for m in out)


def test_an_architecture_that_cannot_take_the_images_is_refused_before_building(monkeypatch):
    import engine.model

    def cannot(self, x, eps=None, y=None):
        raise RuntimeError("Kernel size can't be greater than actual input size")

    monkeypatch.setattr(engine.model.VAE, "forward", cannot)
    built = []
    monkeypatch.setattr(engine.model.VAE, "to", lambda self, *a, **k: built.append(1) or self)
    with pytest.raises(ConfigError, match="conv architecture cannot take 3x3 images"):
        _run(_tiny(3), arch="conv")
    assert not built  # refused on the meta device, before a real model was made


def test_a_run_that_cannot_fit_in_memory_is_refused_naming_the_setting(blobs, monkeypatch):
    monkeypatch.setattr(engine.memory, "available_bytes", lambda: 64 << 20)
    mcfg = ModelConfig(image_shape=blobs.image_shape, hidden=65_536, latent_dim=64)
    with pytest.raises(ConfigError, match=r"mostly the .*hidden 65536"):
        Trainer(blobs, mcfg, TrainConfig())
    big_images = ModelConfig(image_shape=(3, 2048, 2048), hidden=8)
    with pytest.raises(ConfigError, match="training activations .batch size 4096"):
        check_run(big_images, TrainConfig(batch_size=4096), (3, 2048, 2048), 10_000, 100)


def test_the_default_settings_fit_a_small_machine(monkeypatch):
    monkeypatch.setattr(engine.memory, "available_bytes", lambda: 2 << 30)
    check_run(ModelConfig(), TrainConfig(), (1, 28, 28), 60_000, 10_000)
    check_run(ModelConfig(), TrainConfig(iwae_k=100_000), (1, 28, 28), 60_000, 10_000)
    check_run(ModelConfig(arch="conv", latent_dim=16), TrainConfig(), (1, 28, 28), 60_000, 10_000)
