"""Crafted checkpoints and settings: the whole state is validated before any model is built from it, so a file
can neither corrupt memory (optimizer tensors of the wrong shape) nor allocate a huge model before it is refused."""

import os
import stat
import zipfile

import numpy as np
import pytest
import torch

from engine.checkpoint import CheckpointError, load_checkpoint, write_checkpoint
from engine.config import ConfigError, ModelConfig, TrainConfig
from engine.files import WriteError, atomic_write, clean_stale_temps
from engine.trainer import Trainer
from tests.conftest import make_blobs

FAST = dict(batch_size=32, iwae_k=5, iwae_examples=50, metrics_hz=1e9, snapshot_interval_s=1e9)


@pytest.fixture(scope="module")
def _good_file(tmp_path_factory):
    ds = make_blobs(n_train=64, n_test=32)
    run = Trainer(ds, ModelConfig(image_shape=ds.image_shape, hidden=32), TrainConfig(epochs=1, **FAST))
    list(run.run())
    p = tmp_path_factory.mktemp("ck") / "good.ckpt"
    run.save(p)
    return p


@pytest.fixture
def good(_good_file):
    """A real checkpoint after a few steps (optimizer state filled) and a fresh copy of its raw payload."""
    return _good_file, torch.load(_good_file, weights_only=True)


@pytest.fixture
def models_built(monkeypatch):
    """The devices of every VAE built while the test runs ({"meta"} for a shape check, nothing allocated)."""
    from engine.model import VAE

    built, init = [], VAE.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        built.append({p.device.type for p in self.parameters()})

    monkeypatch.setattr(VAE, "__init__", spy)
    return built


def _refused(tmp_path, raw, *needles):
    p = tmp_path / "bad.ckpt"
    torch.save(raw, p)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(p)
    msg = str(e.value)
    assert msg.startswith("'bad.ckpt': ") and "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


# ---------------------------------------------------------------------------------------- optimizer state
def test_optimizer_moments_of_the_wrong_shape_are_refused(good, tmp_path):
    _, raw = good
    for entry in raw["optimizer"]["state"].values():
        entry["exp_avg"] = torch.zeros(7)
    _refused(tmp_path, raw, "optimizer state of parameter 0", "shape (7,)")


@pytest.mark.parametrize(
    "case",
    [
        "nan_moment",
        "negative_sq",
        "string_step",
        "negative_step",
        "nan_step",
        "extra_key",
        "missing_param",
        "groups",
        "not_dict",
        "int_moment",
    ],
)
def test_every_part_of_the_optimizer_state_is_checked(good, tmp_path, case):
    _, raw = good
    opt = raw["optimizer"]
    s0 = opt["state"][0]
    if case == "nan_moment":
        s0["exp_avg"][0] = float("nan")
    elif case == "negative_sq":
        s0["exp_avg_sq"].fill_(-1.0)
    elif case == "string_step":
        s0["step"] = "12"
    elif case == "negative_step":
        s0["step"] = torch.tensor(-3.0)
    elif case == "nan_step":
        s0["step"] = torch.tensor(float("nan"))
    elif case == "extra_key":
        s0["max_exp_avg_sq"] = s0["exp_avg_sq"].clone()
    elif case == "missing_param":
        del opt["state"][1]
    elif case == "groups":
        opt["param_groups"][0]["params"] = [0, 0, 0]
    elif case == "not_dict":
        raw["optimizer"] = [1, 2, 3]
    elif case == "int_moment":
        s0["exp_avg"] = s0["exp_avg"].to(torch.int32)
    _refused(tmp_path, raw, "optimizer")


def test_flags_in_the_files_parameter_groups_never_reach_the_optimizer(good, tmp_path, blobs):
    _, raw = good
    raw["optimizer"]["param_groups"][0].update(lr=1e9, capturable="yes", foreach=3, betas="nonsense")
    p = tmp_path / "flags.ckpt"
    torch.save(raw, p)
    ck = load_checkpoint(p)
    tcfg = TrainConfig(epochs=2, lr=2e-3, **FAST)
    run = Trainer(blobs, ck.model_config, tcfg, checkpoint=ck)
    g = run.optimizer.param_groups[0]
    assert g["lr"] == 2e-3 and g["betas"] == (0.9, 0.999) and g["capturable"] is False
    assert int(run.optimizer.state[run.optimizer.param_groups[0]["params"][0]]["step"]) == ck.step
    list(run.run())  # and the resumed run trains
    assert run.epoch == 2


# ------------------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("latent_dim", 10**6, "latent_dim must lie in [1, 1,024]"),
        ("latent_dim", "2", "latent_dim must be a whole number"),
        ("latent_dim", 2.5, "latent_dim must be a whole number"),
        ("hidden", True, "hidden must be a whole number"),
        ("image_shape", [1, 8, "x"], "image_shape"),
        ("arch", ["mlp"], "arch must be one of"),
    ],
)
def test_bad_model_settings_are_refused_before_any_model_is_built(good, tmp_path, models_built, field, value, needle):
    _, raw = good
    raw["model_config"][field] = value
    _refused(tmp_path, raw, "invalid settings", needle)
    assert models_built == []


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("epochs", 10**12, "epochs must lie in"),
        ("seed", 99999999999999999999, "seed must lie in"),
        ("lr", float("nan"), "lr must be a finite number"),
        ("iwae_examples", 0, "iwae_examples must lie in"),
        ("batch_size", "128", "batch_size must be a whole number"),
    ],
)
def test_bad_training_settings_are_refused(good, tmp_path, field, value, needle):
    _, raw = good
    raw["train_config"][field] = value
    _refused(tmp_path, raw, needle)


@pytest.mark.parametrize(
    "case", ["config_list", "step_string", "step_negative", "batch_bool", "rng_float", "dataset_list", "history_ragged"]
)
def test_bad_counters_records_and_rng_state_are_refused(good, tmp_path, case):
    _, raw = good
    if case == "config_list":
        raw["model_config"] = [1, 2, 3]
    elif case == "step_string":
        raw["step"] = "12"
    elif case == "step_negative":
        raw["step"] = -1
    elif case == "batch_bool":
        raw["batch"] = True
    elif case == "rng_float":
        raw["noise_rng"] = torch.zeros(10)
    elif case == "dataset_list":
        raw["dataset"] = ["not", "a", "dict"]
    elif case == "history_ragged":
        raw["history"]["steps"]["elbo"] = raw["history"]["steps"]["elbo"][:-1]
    _refused(tmp_path, raw)


def test_a_checkpoint_claiming_a_huge_model_is_refused_from_its_settings(good, tmp_path, models_built):
    _, raw = good
    raw["model_config"].update(latent_dim=1024, hidden=65_536, image_shape=[3, 4096, 4096])
    _refused(tmp_path, raw, "weight")
    assert models_built == [{"meta"}]  # shapes compared on the meta device: nothing allocated


def test_compressed_members_are_refused_before_torch_reads_them(good, tmp_path):
    src, _ = good
    p = tmp_path / "zipped.ckpt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
    with pytest.raises(CheckpointError, match="compressed members"):
        load_checkpoint(p)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.ckpt"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="named pipe"):
        load_checkpoint(fifo)


# ------------------------------------------------------------------------------------------------- writes
def test_torch_errors_while_writing_become_one_line_naming_the_target(tmp_path):
    target = tmp_path / "run.ckpt"

    def torch_fails(f):
        f.write(b"partial")
        raise RuntimeError(
            "[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
            "data/3: unexpected pos 1280 vs 1194"
        )

    with pytest.raises(WriteError) as e:
        atomic_write(target, torch_fails)
    assert isinstance(e.value, OSError)
    msg = str(e.value)
    assert msg.startswith("could not write 'run.ckpt': ") and ".tmp" not in msg and "\n" not in msg
    assert os.listdir(tmp_path) == []


def test_a_folder_that_cannot_be_created_is_a_write_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match="could not write 'out.ckpt'"):
        atomic_write(tmp_path / "file" / "out.ckpt", lambda f: f.write(b"x"))


def test_stale_temp_files_of_killed_writes_are_removed(tmp_path):
    target = tmp_path / "run.ckpt"
    dead = tmp_path / ".run.ckpt.999999999.abcd.tmp"  # no such process
    alive = tmp_path / f".run.ckpt.{os.getpid()}.efgh.tmp"  # a write in progress in this process
    other = tmp_path / ".other.ckpt.999999999.abcd.tmp"
    for p in (dead, alive, other):
        p.write_bytes(b"junk")
    assert clean_stale_temps(target) == [dead]
    atomic_write(target, lambda f: f.write(b"new"))
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, other.name, "run.ckpt"])


def test_a_replaced_file_keeps_its_mode_and_a_new_one_follows_the_umask(tmp_path):
    target = tmp_path / "run.ckpt"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    atomic_write(target, lambda f: f.write(b"new"))
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "fresh.csv", lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "fresh.csv").st_mode) == 0o640


def test_a_saved_loaded_and_saved_again_checkpoint_still_loads(good, tmp_path):
    p, _ = good
    ck = load_checkpoint(p)
    again = tmp_path / "again.ckpt"
    write_checkpoint(again, ck)  # what the window does to save a loaded checkpoint
    ck2 = load_checkpoint(again)
    assert ck2.step == ck.step
    np.testing.assert_array_equal(ck2.optimizer_state["state"][0]["exp_avg"], ck.optimizer_state["state"][0]["exp_avg"])


def test_settings_ranges_are_enforced_by_the_configs_themselves():
    with pytest.raises(ConfigError, match="latent_dim"):
        ModelConfig(latent_dim=1_000_000_000)
    with pytest.raises(ConfigError, match="hidden"):
        ModelConfig(hidden=100_000_000)
    with pytest.raises(ConfigError, match="eval_examples"):
        TrainConfig(eval_examples=0)
    with pytest.raises(ConfigError, match="metrics_hz"):
        TrainConfig(metrics_hz=float("inf"))
