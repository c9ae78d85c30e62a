"""The conditional VAE (ModelConfig.n_classes = k): the label reaches the encoder and the decoder, labels broadcast
over sample-major stacks, labels travel through training, evaluation, checkpoints, the CLI and torchrun (that a
trained model's decodes carry its class: test_conditional_check.py)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from engine.checkpoint import CheckpointError, checkpoint_of_run, expected_shapes, load_checkpoint, write_checkpoint
from engine.cli import main as cli_main
from engine.config import ConfigError, ModelConfig, TrainConfig
from engine.data import make_shapes
from engine.data.dataset import Dataset, as_float01
from engine.messages import EpochSummary, LatentSnapshot
from engine.model import VAE, Labelled, n_parameters
from engine.objectives import elbo_terms, iwae_bound, log_normal_at_noise, log_std_normal
from engine.preflight import check_labels, check_run
from engine.snapshot import SnapshotModel, every_class, prior_samples, snapshot_from_state
from engine.trainer import Trainer
from tests.conftest import make_blobs
from tests.engine.test_checkpoint import _steps
from tests.engine.test_hostile_checkpoint import _refused

# one CPU thread: the runs are bit-reproducible and fast when other processes hold the cores
FAST = dict(iwae_k=5, iwae_examples=50, eval_examples=400, latent_examples=100, metrics_hz=1e9, snapshot_interval_s=1e9)
FAST_T = dict(FAST, threads=1)


def _model(arch="mlp", k=3, d=4, hidden=32, shape=(1, 28, 28), seed=0) -> VAE:
    torch.manual_seed(seed)
    return VAE(ModelConfig(image_shape=shape, latent_dim=d, hidden=hidden, arch=arch, n_classes=k)).eval()


# --------------------------------------------------------------------------------------------- the model
@pytest.mark.parametrize("arch", ["mlp", "conv"])
@torch.no_grad()
def test_the_decoder_and_the_encoder_depend_on_the_label(arch):
    m = _model(arch)
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    a, b = m.decode(z, 0), m.decode(z, 1)
    assert a.shape == (5, 1, 28, 28)
    assert (a - b).abs().max() > 1e-3  # the same z, another class: another image
    torch.testing.assert_close(m.decode(z, torch.zeros(5, dtype=torch.long)), a, rtol=0, atol=0)  # int == per row
    (mu0, lv0), (mu2, lv2) = m.encode(x, 0), m.encode(x, 2)
    assert (mu0 - mu2).abs().max() > 1e-4 and (lv0 - lv2).abs().max() > 1e-4
    # per-row labels: each row is decoded with its own class
    y = torch.tensor([0, 1, 2, 1, 0])
    mixed = m.decode(z, y)
    for r in range(5):
        torch.testing.assert_close(mixed[r], m.decode(z, int(y[r]))[r], rtol=1e-5, atol=1e-5)
    # the whole forward pass too, with the same noise
    eps = torch.randn(5, 4, generator=torch.Generator().manual_seed(3))
    out0, out1 = m(x, eps, 0)[0], m(x, eps, 1)[0]
    assert (out0 - out1).abs().max() > 1e-3


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@torch.no_grad()
def test_an_unconditional_model_ignores_labels(arch):
    m = _model(arch, k=0)
    assert not m.cfg.conditional and m.given(3) is m
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(1))
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    plain = m.decode(z)
    for y in (0, 3, torch.tensor([1, 0, 7, 2])):
        torch.testing.assert_close(m.decode(z, y), plain, rtol=0, atol=0)
        torch.testing.assert_close(m.encode(x, y), m.encode(x), rtol=0, atol=0)
    assert m.one_hot(5, 4, torch.device("cpu")) is None


@torch.no_grad()
def test_a_conditional_model_without_its_label_or_with_the_wrong_count_is_refused():
    m = _model(k=3)
    z, x = torch.zeros(5, 4), torch.zeros(5, 1, 28, 28)
    calls = [
        lambda: m.decode(z),
        lambda: m.encode(x),
        lambda: m.mean_image(z),
        lambda: m.log_px_given_z(x, z),
        lambda: m(x),
        lambda: elbo_terms(m, x),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"conditional on a class label \(0\.\.2\): give one"):
            call()
    with pytest.raises(ValueError, match="3 labels for 5 rows"):
        m.decode(z, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="0 labels for 5 rows"):
        m.decode(z, torch.zeros(0, dtype=torch.long))
    with pytest.raises(RuntimeError):  # a class the model has no column for (torch's one_hot refuses it)
        m.decode(z, 3)


def test_n_classes_settings_and_old_configs():
    with pytest.raises(ConfigError, match="n_classes must be 0 .* at least 2, got 1"):
        ModelConfig(n_classes=1)
    with pytest.raises(ConfigError, match="n_classes"):
        ModelConfig(n_classes=-2)
    with pytest.raises(ConfigError, match="n_classes must be a whole number"):
        ModelConfig(n_classes=2.0)
    with pytest.raises(ConfigError, match="n_classes must be 0"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "n_classes": 1})
    assert not ModelConfig().conditional and ModelConfig(n_classes=2).conditional
    cfg = ModelConfig(n_classes=10, latent_dim=5)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["n_classes"] == 10
    old = ModelConfig().to_dict()
    del old["n_classes"]  # a checkpoint written before conditioning existed
    assert ModelConfig.from_dict(old).n_classes == 0


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("k", [2, 10])
def test_the_label_adds_exactly_one_input_column_per_class_to_each_first_layer(arch, k):
    hidden = 48
    base = n_parameters(_model(arch, k=0, hidden=hidden))
    cond = n_parameters(_model(arch, k=k, hidden=hidden))
    assert cond - base == k * hidden + k * hidden  # encoder's first Linear + decoder's first Linear
    # and the checkpoint's expected shapes say the same, layer by layer
    cfg0 = ModelConfig(latent_dim=4, hidden=hidden, arch=arch)
    s0, sk = expected_shapes(cfg0), expected_shapes(cfg0.replace(n_classes=k))
    changed = {name: (s0[name], sk[name]) for name in s0 if s0[name] != sk[name]}
    assert len(changed) == 2, changed
    for before, after in changed.values():
        assert after == (before[0], before[1] + k)  # (out, in) of a Linear: k more inputs


# ------------------------------------------------------------------------------------ label broadcasting
@torch.no_grad()
def test_labels_of_n_examples_broadcast_over_a_sample_major_stack():
    m = _model(k=3)
    n, s = 3, 4
    y = torch.tensor([2, 0, 1])
    z = torch.randn(s * n, 4, generator=torch.Generator().manual_seed(5))
    stacked = m.decode(z, y)
    torch.testing.assert_close(stacked, m.decode(z, y.repeat(s)), rtol=0, atol=0)
    for r in range(s * n):  # row r belongs to example r mod n
        torch.testing.assert_close(stacked[r], m.decode(z[r : r + 1], int(y[r % n]))[0], rtol=1e-5, atol=1e-5)
    wrong = m.decode(z, y.repeat_interleave(s))  # example-major would be another labelling
    assert (wrong - stacked).abs().max() > 1e-3


@torch.no_grad()
def test_given_fixes_the_label_behind_the_unconditional_interface():
    m = _model(k=3)
    y = torch.tensor([1, 2, 0, 2])
    g = m.given(y)
    assert isinstance(g, Labelled) and g.cfg is m.cfg and g.likelihood is m.likelihood
    assert list(g.parameters()) == list(m.parameters())
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(2))
    eps = torch.randn(4, 4, generator=torch.Generator().manual_seed(3))
    same = lambda a, b: torch.testing.assert_close(a, b, rtol=0, atol=0)  # noqa: E731
    same(g.encode(x), m.encode(x, y))
    same(g.decode(z), m.decode(z, y))
    same(g.mean_image(z), m.mean_image(z, y))
    same(g.log_px_given_z(x, z), m.log_px_given_z(x, z, y))
    same(g(x, eps), m(x, eps, y))
    same(elbo_terms(g, x, eps=eps).elbo, elbo_terms(m, x, eps=eps, y=y).elbo)
    # the bound depends on the label: the wrong one gives another ELBO
    assert (elbo_terms(m, x, eps=eps, y=(y + 1) % 3).elbo - elbo_terms(g, x, eps=eps).elbo).abs().max() > 1e-3


@torch.no_grad()
def test_iwae_through_given_equals_the_bound_computed_by_hand_with_repeated_labels():
    m = _model(k=3)
    b, k, d = 4, 6, 4
    x = (torch.rand(b, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    y = torch.tensor([0, 2, 1, 2])
    got = iwae_bound(m.given(y), x, k, chunk=k, generator=torch.Generator().manual_seed(9))
    # by hand: one chunk of K samples, labels repeated sample-major
    mu, log_var = m.encode(x, y)
    eps = torch.randn((k, b, d), generator=torch.Generator().manual_seed(9))
    z = mu + (0.5 * log_var).exp() * eps
    logits = m.decode(z.reshape(k * b, d), y.repeat(k))
    log_px = m.likelihood.log_prob(x.repeat(k, 1, 1, 1), logits).view(k, b)
    log_w = log_px + log_std_normal(z) - log_normal_at_noise(eps, log_var)
    want = torch.logsumexp(log_w, 0) - math.log(k)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    # chunked the same way (one chunk per sample): the same draws, so the same bound
    torch.testing.assert_close(
        iwae_bound(m.given(y), x, k, chunk=1, generator=torch.Generator().manual_seed(9)), want, rtol=1e-5, atol=1e-4
    )
    other = iwae_bound(m.given((y + 1) % 3), x, k, chunk=k, generator=torch.Generator().manual_seed(9))
    assert (other - got).abs().max() > 1e-3


# ----------------------------------------------------------------------------------- training end to end
@pytest.fixture(scope="module")
def shapes() -> Dataset:
    return make_shapes(n_train=2000, n_test=400)


def _shapes_cfg(ds, k=None):
    return ModelConfig(image_shape=ds.image_shape, latent_dim=4, hidden=128, n_classes=ds.n_classes if k is None else k)


@pytest.fixture(scope="module")
def trained(shapes, tmp_path_factory):
    """A conditional model trained 3 epochs on Shapes (4 classes), its messages and its checkpoint file."""
    run = Trainer(shapes, _shapes_cfg(shapes), TrainConfig(epochs=3, batch_size=50, lr=3e-3, **FAST_T))
    msgs = list(run.run())
    path = tmp_path_factory.mktemp("cond") / "cond.ckpt"
    write_checkpoint(path, checkpoint_of_run(run, copy=True))
    return run, msgs, path


def test_a_conditional_model_trains_on_shapes_with_finite_improving_bounds(trained, shapes):
    run, msgs, _ = trained
    assert run.state == "finished" and run.model_cfg.n_classes == 4
    assert run.y_train is not None and len(run.y_train) == 2000
    epochs = [m for m in msgs if isinstance(m, EpochSummary)]
    assert len(epochs) == 3
    for e in epochs:
        values = (e.train_elbo, e.test_elbo, e.test_recon, e.test_kl, e.test_iwae, e.test_elbo_subset)
        assert all(np.isfinite(values)), e
    assert epochs[2].test_elbo > epochs[1].test_elbo > epochs[0].test_elbo + 1.0, [e.test_elbo for e in epochs]
    assert epochs[2].test_iwae >= epochs[2].test_elbo_subset - 0.5  # IWAE ≥ ELBO up to Monte Carlo noise
    snap = [m for m in msgs if isinstance(m, LatentSnapshot)][-1]
    np.testing.assert_array_equal(snap.labels, shapes.y_test[snap.indices])
    # the scatter's means are q(z|x, y)'s: encoding with the test labels gives them back
    with torch.no_grad():
        idx = torch.from_numpy(snap.indices)
        x = torch.from_numpy(as_float01(shapes.x_test))[idx]
        mu, _ = run.model.eval().encode(x, torch.from_numpy(shapes.y_test)[idx])
        mu_wrong, _ = run.model.encode(x, (torch.from_numpy(shapes.y_test)[idx] + 1) % 4)
        run.model.train()
    np.testing.assert_allclose(snap.means, mu.numpy(), rtol=1e-4, atol=1e-5)
    assert np.abs(snap.means - mu_wrong.numpy()).max() > 1e-3


def test_the_test_bound_uses_the_right_labels(trained, shapes):
    """The model's test ELBO with the data's labels beats the same images under shifted labels: the label is used,
    and evaluation pairs each image with its own label."""
    run, _, _ = trained
    x = torch.from_numpy(as_float01(shapes.x_test))
    y = torch.from_numpy(shapes.y_test)
    eps = torch.randn(len(x), 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        run.model.eval()
        right = elbo_terms(run.model, x, eps=eps, y=y).elbo.mean().item()
        wrong = elbo_terms(run.model, x, eps=eps, y=(y + 1) % 4).elbo.mean().item()
        run.model.train()
    assert right > wrong + 1.0, (right, wrong)
    ev = run.evaluate()
    assert abs(ev.test_elbo - run.history.epochs[-1].test_elbo) < 1e-6  # evaluation is deterministic
    assert abs(ev.test_elbo - right) < 3.0  # the same bound, other noise


def test_the_checkpoint_round_trips_and_decodes_identically(trained, tmp_path):
    run, _, path = trained
    ck = load_checkpoint(path)
    assert ck.model_config == run.model_cfg and ck.model_config.n_classes == 4
    assert ck.step == run.step == 120
    loaded = VAE(ck.model_config)
    loaded.load_state_dict(ck.model_state)
    loaded.eval()
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(4))
    y = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    with torch.no_grad():
        run.model.eval()
        torch.testing.assert_close(loaded.decode(z, y), run.model.decode(z, y), rtol=0, atol=0)
        run.model.train()
    # the snapshot path the window uses: per-row labels, every class at one z, prior samples per class
    sm = SnapshotModel(snapshot_from_state(ck.model_config, ck.model_state, ck.step))
    assert sm.n_classes == 4
    np.testing.assert_allclose(sm.decode(z.numpy(), y.numpy()), loaded.mean_image(z, y).detach().numpy(), atol=1e-6)
    each = every_class(sm, z[0].numpy())
    assert each.shape == (4, 1, 28, 28)
    for c in range(4):
        np.testing.assert_allclose(each[c], sm.decode(z[:1].numpy(), c)[0], atol=1e-6)
    assert min(np.abs(each[a] - each[b]).max() for a in range(4) for b in range(a)) > 1e-3
    p0, p1 = prior_samples(sm, 6, seed=1, y=0), prior_samples(sm, 6, seed=1, y=1)
    assert p0.shape == (6, 1, 28, 28) and np.abs(p0 - p1).max() > 1e-3
    with pytest.raises(ValueError, match="conditional on a class label"):
        sm.decode(z.numpy())
    # saved again from the loaded checkpoint: still loads, still conditional
    write_checkpoint(tmp_path / "again.ckpt", ck)
    assert load_checkpoint(tmp_path / "again.ckpt").model_config.n_classes == 4


def test_a_resumed_conditional_run_continues_exactly(shapes, tmp_path):
    """Stopped mid-epoch, saved, resumed: the next steps' ELBOs are the uninterrupted run's (the labels are taken in
    the same permuted order as the images after a resume)."""
    mcfg, tcfg = _shapes_cfg(shapes), TrainConfig(epochs=2, batch_size=100, **FAST_T)

    a = Trainer(shapes, mcfg, tcfg)
    _steps(a, 25)  # 20 steps per epoch: stops in the second
    a.save(tmp_path / "mid.ckpt")
    a.rearm()
    cont = _steps(a, 5)
    ck = load_checkpoint(tmp_path / "mid.ckpt")
    b = Trainer(shapes, mcfg, tcfg, checkpoint=ck)
    assert (b.step, b.epoch, b.batch) == (25, 1, 5)
    np.testing.assert_allclose(_steps(b, 5), cont, rtol=1e-6)
    # and to the end: a finished resumed run
    b.rearm()
    list(b.run())
    assert b.state == "finished" and b.step == 40 and len(b.history.epochs) == 2


def test_resuming_a_conditional_checkpoint_needs_its_settings_and_labels(trained, shapes):
    _, _, path = trained
    ck = load_checkpoint(path)
    # more epochs on the same data: fine
    more = Trainer(shapes, ck.model_config, TrainConfig(epochs=4, batch_size=50, lr=3e-3, **FAST_T), checkpoint=ck)
    list(more.run())
    assert more.state == "finished" and more.step == 160 and len(more.history.epochs) == 4
    with pytest.raises(CheckpointError, match="different model settings"):
        Trainer(shapes, _shapes_cfg(shapes, k=0), TrainConfig(epochs=3, **FAST_T), checkpoint=ck)
    unlabelled = dataclasses.replace(shapes, y_train=None, y_test=None, class_names=None, _fingerprint=[])
    with pytest.raises(ConfigError, match="labelled dataset"):
        Trainer(unlabelled, ck.model_config, TrainConfig(epochs=3, **FAST_T), checkpoint=ck)


def test_a_checkpoint_whose_settings_and_weights_disagree_on_the_label_is_refused(trained, shapes, tmp_path):
    _, _, cond_path = trained
    plain = Trainer(shapes, _shapes_cfg(shapes, k=0), TrainConfig(epochs=1, batch_size=100, **FAST_T))
    plain.save(tmp_path / "plain.ckpt")
    # unconditional weights under settings that say n_classes = 4
    raw = torch.load(tmp_path / "plain.ckpt", weights_only=True)
    raw["model_config"]["n_classes"] = 4
    msg = _refused(tmp_path, raw)
    assert "weight encoder.net.1.weight has shape (128, 784), the architecture needs (128, 788)" in msg, msg
    # conditional weights under settings without the key (read as an old, unconditional checkpoint)
    raw = torch.load(cond_path, weights_only=True)
    del raw["model_config"]["n_classes"]
    msg = _refused(tmp_path, raw)
    assert "has shape (128, 788), the architecture needs (128, 784)" in msg, msg
    # conditional weights claiming another class count
    raw = torch.load(cond_path, weights_only=True)
    raw["model_config"]["n_classes"] = 10
    assert "the architecture needs (128, 794)" in _refused(tmp_path, raw)
    raw["model_config"]["n_classes"] = 1
    assert "n_classes must be 0" in _refused(tmp_path, raw)
    # an old unconditional checkpoint without the key still loads
    raw = torch.load(tmp_path / "plain.ckpt", weights_only=True)
    del raw["model_config"]["n_classes"]
    torch.save(raw, tmp_path / "old.ckpt")
    assert load_checkpoint(tmp_path / "old.ckpt").model_config.n_classes == 0


# --------------------------------------------------------------------------------------------- preflight
def test_check_run_refuses_a_conditional_model_without_fitting_labels(shapes):
    tcfg = TrainConfig(**FAST)
    args = (tcfg, shapes.image_shape, 2000, 400)
    with pytest.raises(ConfigError, match="needs a labelled dataset; this one has no labels"):
        check_run(_shapes_cfg(shapes, k=4), *args, label_classes=0)
    with pytest.raises(ConfigError, match="conditional on 3 classes, the dataset has 4"):
        check_run(_shapes_cfg(shapes, k=3), *args, label_classes=4)
    check_run(_shapes_cfg(shapes, k=4), *args, label_classes=4)
    check_run(_shapes_cfg(shapes, k=6), *args, label_classes=4)  # room for classes the data lacks
    check_run(_shapes_cfg(shapes, k=0), *args, label_classes=0)  # an ordinary VAE needs no labels
    check_labels(_shapes_cfg(shapes, k=0), 0)
    # Trainer asks the dataset
    unlabelled = dataclasses.replace(shapes, y_train=None, y_test=None, class_names=None, _fingerprint=[])
    with pytest.raises(ConfigError, match="no labels"):
        Trainer(unlabelled, _shapes_cfg(shapes, k=4), tcfg)
    with pytest.raises(ConfigError, match="conditional on 2 classes, the dataset has 4"):
        Trainer(shapes, _shapes_cfg(shapes, k=2), tcfg)


# -------------------------------------------------------------------------------------------------- CLI
def _labelled_npz(tmp_path, classes=3, name="labelled.npz") -> str:
    ds = make_blobs(n_train=400, n_test=1, classes=classes)
    p = tmp_path / name
    np.savez(p, x=np.round(ds.x_train[:, 0] * 255).astype(np.uint8), y=ds.y_train)
    return str(p)


CLI_FAST = ["--epochs", "1", "--batch-size", "60", "--hidden", "32", "--iwae-k", "2", "--threads", "1"]


def test_cli_trains_a_conditional_model_and_records_its_classes(tmp_path, capsys):
    data, ck = _labelled_npz(tmp_path), tmp_path / "cond.ckpt"
    assert cli_main(["--data", data, *CLI_FAST, "--conditional", "--checkpoint", str(ck)]) == 0
    out = capsys.readouterr().out
    assert "conditional VAE on 3 classes" in out and "epoch   1/1" in out
    c = load_checkpoint(ck)
    assert c.model_config.n_classes == 3 and c.model_config.conditional
    # resumed without the flag it stays conditional; with the flag it is the same model, so accepted
    for extra in ([], ["--conditional"]):
        argv = ["--data", data, *CLI_FAST, "--epochs", "2", "--resume", str(ck), *extra]
        assert cli_main(argv) == 0
        out = capsys.readouterr().out
        assert "resuming at step 6" in out and "conditional VAE on 3 classes" in out
    # without --conditional the same data trains an ordinary VAE
    plain = tmp_path / "plain.ckpt"
    assert cli_main(["--data", data, *CLI_FAST, "--checkpoint", str(plain)]) == 0
    assert "conditional VAE" not in capsys.readouterr().out
    assert load_checkpoint(plain).model_config.n_classes == 0


def test_cli_refuses_conditional_without_labels_in_one_line(tmp_path, capsys):
    unlabelled = tmp_path / "unlabelled.npz"
    np.savez(unlabelled, x=np.zeros((50, 8, 8), np.uint8))
    assert cli_main(["--data", str(unlabelled), *CLI_FAST, "--conditional"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: --conditional needs labels of at least 2 classes; 'unlabelled' has no labels", err
    one = _labelled_npz(tmp_path, classes=1, name="one.npz")
    assert cli_main(["--data", one, *CLI_FAST, "--conditional"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --conditional needs labels of at least 2 classes") and "1 class" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_refuses_conditional_on_resuming_an_unconditional_checkpoint(tmp_path, capsys):
    data, ck = _labelled_npz(tmp_path), tmp_path / "plain.ckpt"
    assert cli_main(["--data", data, *CLI_FAST, "--checkpoint", str(ck)]) == 0
    capsys.readouterr()
    assert cli_main(["--data", data, *CLI_FAST, "--resume", str(ck), "--conditional"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--conditional True conflict" in err and "--conditional False" in err, err
    assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------- torchrun
@pytest.mark.slow
def test_two_processes_train_a_conditional_model_like_one(tmp_path, capsys):
    """gloo, 2 ranks through the CLI: each rank takes its rows' labels with its rows' images, so the per-step
    ELBO curve is the single process's."""
    from tests.engine.test_distributed import read_curve, torchrun

    data = _labelled_npz(tmp_path)
    args = ["--data", data, "--epochs", "2", "--batch-size", "64", "--hidden", "32", "--iwae-k", "2", "--seed", "5"]
    args += ["--conditional"]
    two, one = tmp_path / "two.csv", tmp_path / "one.csv"
    r = torchrun("train", tmp_path, *args, "--metrics-csv", two, "--checkpoint", tmp_path / "two.ckpt")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "conditional VAE on 3 classes" in r.stdout and "2 processes" in r.stdout
    assert cli_main([*args, "--metrics-csv", str(one)]) == 0
    a, b = read_curve(two), read_curve(one)
    assert len(a) == len(b) == 2 * math.ceil(360 / 64)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)
    assert load_checkpoint(tmp_path / "two.ckpt").model_config.n_classes == 3
