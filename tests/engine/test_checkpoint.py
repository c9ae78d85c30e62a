"""Checkpoints: atomic, safe to load, schema-checked, and a resumed run continues exactly where it stopped."""

import os

import numpy as np
import pytest
import torch

from engine.checkpoint import CheckpointError, load_checkpoint
from engine.files import atomic_write
from engine.config import ModelConfig, TrainConfig
from engine.messages import MetricsChunk
from engine.trainer import Trainer

FAST = dict(batch_size=32, iwae_k=5, iwae_examples=50, metrics_hz=1e9, snapshot_interval_s=1e9)


def _cfgs(ds, epochs=2, hidden=32):
    return ModelConfig(image_shape=ds.image_shape, hidden=hidden), TrainConfig(epochs=epochs, **FAST)


def _steps(run, n):
    """Drive `run` for n more steps; return the per-step ELBOs it emitted."""
    gen, out = run.run(), []
    for m in gen:
        if isinstance(m, MetricsChunk):
            out.extend(m.elbo.tolist())
            if len(out) >= n:
                run.stop()
    list(gen)
    return out[:n]


def test_resume_gives_the_same_next_steps(blobs, tmp_path):
    mcfg, tcfg = _cfgs(blobs, epochs=3)
    a = Trainer(blobs, mcfg, tcfg)
    _steps(a, 25)  # stops mid-epoch (19 steps per epoch)
    a.save(tmp_path / "a.ckpt")
    a.rearm()
    cont = _steps(a, 5)
    b = Trainer(blobs, mcfg, tcfg, checkpoint=load_checkpoint(tmp_path / "a.ckpt"))
    assert b.step == 25 and b.epoch == 1 and b.batch == 6
    resumed = _steps(b, 5)
    np.testing.assert_allclose(resumed, cont, rtol=1e-6)
    assert len(b.history) == 30  # the curves continue


def test_checkpoint_restores_history_and_epochs(blobs, tmp_path):
    mcfg, tcfg = _cfgs(blobs, epochs=2)
    run = Trainer(blobs, mcfg, tcfg)
    list(run.run())
    run.save(tmp_path / "done.ckpt")
    ck = load_checkpoint(tmp_path / "done.ckpt")
    assert ck.model_config == mcfg and ck.train_config == tcfg
    np.testing.assert_array_equal(ck.history.column("elbo"), run.history.column("elbo"))
    assert [e.test_elbo for e in ck.history.epochs] == [e.test_elbo for e in run.history.epochs]
    np.testing.assert_array_equal(ck.history.epochs[-1].kl_per_dim, run.history.epochs[-1].kl_per_dim)
    assert ck.dataset["fingerprint"] == blobs.fingerprint()


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def half(f):
        f.write(b"new but")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, half)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["x.bin"]  # no temp file left behind


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/elbo_studio_pwned",))


@pytest.mark.parametrize("case", ["empty", "garbage", "truncated", "pickle", "foreign", "arch", "nan", "missing"])
def test_bad_checkpoints_get_one_clear_line(blobs, tmp_path, case):
    mcfg, tcfg = _cfgs(blobs, epochs=1)
    run = Trainer(blobs, mcfg, tcfg)
    good = tmp_path / "good.ckpt"
    run.save(good)
    p = tmp_path / f"{case}.ckpt"
    if case == "empty":
        p.write_bytes(b"")
    elif case == "garbage":
        p.write_bytes(os.urandom(1000))
    elif case == "truncated":
        p.write_bytes(good.read_bytes()[:2000])
    elif case == "pickle":
        torch.save({"format": "elbo-studio-checkpoint", "x": Evil()}, p)
    elif case == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(3)}}, p)
    else:
        raw = torch.load(good, weights_only=True)
        if case == "arch":
            raw["model"]["encoder.net.1.weight"] = torch.zeros(5, 5)
        elif case == "nan":
            raw["model"]["decoder.net.0.bias"][0] = float("nan")
        elif case == "missing":
            del raw["history"]
        torch.save(raw, p)
    if os.path.exists("/tmp/elbo_studio_pwned"):
        os.unlink("/tmp/elbo_studio_pwned")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(p)
    msg = str(e.value)
    assert msg.startswith(f"'{case}.ckpt': ") and "\n" not in msg
    assert not os.path.exists("/tmp/elbo_studio_pwned")  # nothing was unpickled


def test_resuming_with_other_model_settings_is_refused(blobs, tmp_path):
    mcfg, tcfg = _cfgs(blobs)
    Trainer(blobs, mcfg, tcfg).save(tmp_path / "a.ckpt")
    with pytest.raises(CheckpointError, match="different model settings"):
        Trainer(blobs, mcfg.replace(hidden=64), tcfg, checkpoint=load_checkpoint(tmp_path / "a.ckpt"))


def test_resuming_leaves_the_loaded_checkpoint_untouched(blobs, tmp_path):
    mcfg, tcfg = _cfgs(blobs, epochs=2)
    a = Trainer(blobs, mcfg, tcfg.replace(epochs=1))
    list(a.run())
    a.save(tmp_path / "a.ckpt")
    ck = load_checkpoint(tmp_path / "a.ckpt")
    n = len(ck.history)
    b = Trainer(blobs, mcfg, tcfg, checkpoint=ck)
    list(b.run())
    assert len(b.history) == 2 * n and len(ck.history) == n
