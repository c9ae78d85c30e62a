"""Every CUDA-only decision of the engine, run on the CPU: the ``torch.cuda`` queries those branches make
(``is_available``, ``device_count``, ``current_device``, ``get_device_name``, ``mem_get_info``, ``set_device``) are
replaced by a fake machine with two GPUs of different names and free memory, so a branch that asks the wrong GPU
or computes the wrong figure fails here, before a GPU user runs it. Nothing is allocated on a CUDA device."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist

import engine.distributed
import engine.memory
import engine.placement
import engine.trainer
from engine import chunking
from engine.config import ConfigError, ModelConfig, TrainConfig
from engine.data.dataset import Dataset
from engine.devices import autocast_dtype, available_devices, device_label, pick_device
from engine.distributed import Distributed, DistributedError
from engine.memory import fmt_bytes
from engine.run_memory import GPU_FRACTION, check_training_fits, device_budget, training_bytes
from engine.model import VAE
from engine.placement import DEVICE_SHARE, TrainingImages, can_pin_memory, choose_placement, free_memory
from engine.threads import governor_for
from tests.conftest import make_blobs

MB = 10**6
GIB = 1 << 30
CUDA0, CUDA1 = torch.device("cuda", 0), torch.device("cuda", 1)


class FakeGpus:
    """A machine with ``len(names)`` CUDA GPUs as ``torch.cuda`` reports it; records which GPU each query asked."""

    def __init__(self, monkeypatch, names, free, total=80 * GIB, current=0):
        self.names, self.free, self.total, self.current = list(names), list(free), total, current
        self.asked: list[int] = []  # GPU index of every mem_get_info call
        self.set_devices: list = []
        monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(self.names))
        monkeypatch.setattr(torch.cuda, "device_count", lambda: len(self.names))
        monkeypatch.setattr(torch.cuda, "current_device", lambda: self.current)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: self.names[self.index(device)])
        monkeypatch.setattr(torch.cuda, "mem_get_info", self.mem_get_info)
        monkeypatch.setattr(torch.cuda, "set_device", self.set_devices.append)

    def index(self, device) -> int:
        if device is None:
            i = self.current
        elif isinstance(device, int):
            i = device
        else:
            device = torch.device(device)
            assert device.type == "cuda", f"a CUDA query about {device}"
            i = self.current if device.index is None else device.index
        if not 0 <= i < len(self.names):
            raise RuntimeError("CUDA error: invalid device ordinal")
        return i

    def mem_get_info(self, device=None) -> tuple[int, int]:
        i = self.index(device)
        self.asked.append(i)
        return self.free[i], self.total


@pytest.fixture
def gpus(monkeypatch):
    """Two fake GPUs, "Fake GPU A" (3 GiB free) and "Fake GPU B" (40 GiB free); no MPS. Attributes may be changed."""
    _no_mps(monkeypatch)
    return FakeGpus(monkeypatch, ["Fake GPU A", "Fake GPU B"], [3 * GIB, 40 * GIB])


@pytest.fixture
def no_gpu(monkeypatch):
    """A machine without CUDA (and without MPS), whatever this one has."""
    _no_mps(monkeypatch)
    return FakeGpus(monkeypatch, [], [])


def _no_mps(monkeypatch, available=False):
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: available)


# ----------------------------------------------------------------------------------------- engine/devices.py
def test_auto_picks_the_current_cuda_device_before_mps(gpus, monkeypatch):
    assert pick_device("auto") == CUDA0
    gpus.current = 1  # torch.cuda.set_device(1) was called
    assert pick_device("auto") == CUDA1
    _no_mps(monkeypatch, available=True)
    assert pick_device("auto") == CUDA1  # CUDA first, MPS only without it


def test_auto_without_cuda_picks_mps_then_the_cpu(no_gpu, monkeypatch):
    assert pick_device("auto") == torch.device("cpu")
    _no_mps(monkeypatch, available=True)
    assert pick_device("auto") == torch.device("mps")


def test_a_forced_cuda_device_is_used_when_present_and_refused_clearly_when_not(gpus, monkeypatch):
    assert pick_device("cuda").type == "cuda"
    assert pick_device("cuda:1") == CUDA1
    monkeypatch.setattr(gpus, "names", [])  # the same machine without CUDA
    for requested in ("cuda", "cuda:0", "cuda:1"):
        with pytest.raises(ConfigError, match="device 'cuda' asked for, but this torch build sees no CUDA GPU"):
            pick_device(requested)
    with pytest.raises(ConfigError, match="MPS is not available"):
        pick_device("mps")
    assert pick_device("cpu") == torch.device("cpu")


def test_a_forced_cuda_index_beyond_the_machines_gpus_is_refused(gpus):
    try:
        pick_device("cuda:2")  # two GPUs: cuda:0 and cuda:1
    except ConfigError as e:
        assert "cuda:2" in str(e)
    else:
        raise AssertionError("pick_device('cuda:2') accepted a GPU this machine does not have")


def test_available_devices_lists_every_gpu_by_name_before_the_cpu(gpus, monkeypatch):
    listed = available_devices()
    assert listed[0][0] == "auto"
    assert listed[1:] == [("cuda:0", "CUDA 0: Fake GPU A"), ("cuda:1", "CUDA 1: Fake GPU B"), ("cpu", "CPU")]
    _no_mps(monkeypatch, available=True)
    assert [v for v, _ in available_devices()] == ["auto", "cuda:0", "cuda:1", "mps", "cpu"]


def test_available_devices_lists_no_gpu_when_cuda_is_unavailable_whatever_the_count(no_gpu, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # a driver that counts GPUs torch cannot use
    assert [v for v, _ in available_devices()] == ["auto", "cpu"]


def test_device_label_names_the_gpu_of_its_index(gpus):
    assert device_label(CUDA1) == "cuda:1 (Fake GPU B)"
    assert device_label(CUDA0) == "cuda:0 (Fake GPU A)"
    assert device_label(torch.device("cpu")) == "cpu"


def test_autocast_dtype_gives_fp16_only_on_cuda():
    cpu = torch.device("cpu")
    for device in (cpu, torch.device("mps")):
        with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
            autocast_dtype("fp16", device)
    assert autocast_dtype("fp16", CUDA1) is torch.float16
    for device in (cpu, CUDA0):
        assert autocast_dtype("bf16", device) is torch.bfloat16
        assert autocast_dtype("fp32", device) is None


# ---------------------------------------------------------------------------------------- engine/chunking.py
def test_the_cuda_budget_is_a_quarter_of_the_free_memory_up_to_its_cap(gpus):
    cap = chunking.CUDA_BUDGET_MAX
    gpus.free = [cap + 12_345, 8 * cap + 7]  # little free on cuda:0, plenty on cuda:1
    assert chunking.memory_budget(CUDA0) == (cap + 12_345) // 4 < cap
    assert gpus.asked == [0]
    assert chunking.memory_budget("cuda:1") == cap
    assert gpus.asked == [0, 1]
    gpus.free[1] = 4 * cap - 4  # just under the cap
    assert chunking.memory_budget(CUDA1) == cap - 1
    assert chunking.memory_budget(torch.device("cpu")) == chunking.CPU_BUDGET
    assert gpus.asked == [0, 1, 1]  # the CPU asks no GPU


def test_evaluation_rows_on_a_gpu_shrink_with_its_free_memory(gpus):
    cfg = ModelConfig(image_shape=(3, 32, 32), arch="conv", hidden=64)
    enc, dec = chunking.activation_elements(cfg)
    counts = []
    for free in (chunking.CUDA_BUDGET_MAX, 64 * MB, 4 * MB):
        gpus.free[0] = free
        n = chunking.rows(cfg, "cuda:0")
        assert n == max(1, min(chunking.CUDA_BUDGET_MAX, free // 4) // (4 * (enc + dec)))
        counts.append(n)
        assert chunking.rows(cfg, "cuda:0", decodes_per_row=10) < n  # K decodes per row: fewer rows
    assert counts[0] > counts[1] > counts[2] >= 1
    gpus.free[0] = 0  # a full GPU still evaluates, one example at a time
    assert chunking.rows(cfg, "cuda:0") == 1


# ------------------------------------------------------------------------------------------ engine/memory.py
def _small_run():
    return ModelConfig(image_shape=(1, 28, 28), hidden=256, latent_dim=8), TrainConfig(batch_size=256, iwae_k=5)


def test_device_budget_is_a_share_of_the_gpus_free_memory(gpus):
    budget, text = device_budget(CUDA1)
    assert budget == int(40 * GIB * GPU_FRACTION) and gpus.asked == [1]
    assert text == f"the {fmt_bytes(40 * GIB * GPU_FRACTION)} free on cuda:1"
    assert device_budget(torch.device("cpu")) is None and device_budget(None) is None
    assert gpus.asked == [1]


def test_a_run_too_big_for_the_gpus_free_memory_is_refused_and_one_that_fits_passes(gpus):
    mcfg, tcfg = _small_run()
    n_train, n_test = 60_000, 10_000
    parts = training_bytes(mcfg, tcfg, n_train, n_test, device_data=(n_train + n_test) * 784)
    assert max(parts, key=parts.get) == "data"  # 55 MB of uint8 images: the largest part
    need = sum(parts.values())
    gpus.free[0] = math.ceil(need / GPU_FRACTION) + 64  # just enough
    check_training_fits(mcfg, tcfg, n_train, n_test, device_data=(n_train + n_test) * 784, device=CUDA0)
    gpus.free[0] = int(need / GPU_FRACTION) - 64 * 1024  # 64 kB short
    with pytest.raises(ConfigError) as e:
        check_training_fits(mcfg, tcfg, n_train, n_test, device_data=(n_train + n_test) * 784, device=CUDA0)
    msg = str(e.value)
    assert f"about {fmt_bytes(need)} of memory" in msg
    assert f"more than the {fmt_bytes(gpus.free[0] * GPU_FRACTION)} free on cuda:0" in msg
    assert "mostly the dataset on the device (70,000 images of 1x28x28)" in msg
    assert gpus.asked == [0, 0]


def test_on_a_gpu_its_free_memory_is_the_budget_not_the_hosts(gpus, monkeypatch):
    mcfg, tcfg = _small_run()
    monkeypatch.setattr(engine.memory, "available_bytes", lambda: 1 * MB)  # a host too small for this run
    with pytest.raises(ConfigError, match="cap .half the memory available"):
        check_training_fits(mcfg, tcfg, 60_000, 10_000)
    check_training_fits(mcfg, tcfg, 60_000, 10_000, device_data=70_000 * 784, device=CUDA1)  # 40 GiB free there
    need = sum(training_bytes(mcfg, tcfg, 60_000, 10_000, device_data=70_000 * 784).values())
    with pytest.raises(ConfigError, match="cap .half the memory available"):  # an explicit budget wins
        check_training_fits(mcfg, tcfg, 60_000, 10_000, device_data=70_000 * 784, budget=need - 1, device=CUDA1)
    assert gpus.asked == [1]


def test_a_training_run_on_a_gpu_with_too_little_free_memory_is_refused_before_building_the_model(gpus, monkeypatch):
    blobs = make_blobs(n_train=100, n_test=50)
    gpus.free[0] = 1 * MB
    built = []
    monkeypatch.setattr(VAE, "to", lambda self, *a, **k: built.append(1) or self)
    with pytest.raises(ConfigError, match=r"free on cuda:0; lower those settings$"):
        engine.trainer.Trainer(blobs, ModelConfig(image_shape=blobs.image_shape), TrainConfig(device="auto"))
    assert not built and set(gpus.asked) == {0}  # the placement and the memory check ask GPU 0 alone


class _PastTheMemoryCheck(Exception):
    pass


def test_images_kept_on_the_host_do_not_count_against_the_gpus_memory(gpus, monkeypatch):
    ds = make_blobs(n_train=20_000, n_test=100)
    ds = Dataset("blobs", "test:blobs", (ds.x_train * 255).astype(np.uint8), (ds.x_test * 255).astype(np.uint8))
    mcfg = ModelConfig(image_shape=ds.image_shape, hidden=8, latent_dim=2)
    tcfg = TrainConfig(batch_size=32, iwae_k=2, iwae_examples=10, eval_examples=100)
    gpus.free[0] = 1 * MB
    placement = choose_placement(ds.x_train.nbytes, CUDA0, gpus.free[0], True)
    assert not placement.on_device  # the trainer would keep the 1.28 MB of training images on the host
    on_gpu = sum(training_bytes(mcfg, tcfg, len(ds.x_train), len(ds.x_test)).values())
    assert on_gpu + ds.x_test.nbytes < GPU_FRACTION * gpus.free[0] / 2  # the rest fits twice over

    def past(*a, **k):
        raise _PastTheMemoryCheck

    monkeypatch.setattr(engine.trainer, "autocast_dtype", past)  # the first step after the checks
    with pytest.raises(_PastTheMemoryCheck):
        engine.trainer.Trainer(ds, mcfg, tcfg)


def test_the_training_thread_has_no_cpu_thread_governor_on_a_gpu():
    assert governor_for("cuda") is None and governor_for("cuda", threads=4) is None
    assert governor_for("cpu") is not None


# --------------------------------------------------------------------------------------- engine/placement.py
def test_free_memory_asks_the_gpu_in_question_and_only_a_gpu(gpus):
    assert free_memory(CUDA1) == 40 * GIB and free_memory(CUDA0) == 3 * GIB
    assert gpus.asked == [1, 0]
    assert free_memory(torch.device("cpu")) is None and free_memory(torch.device("mps")) is None
    assert gpus.asked == [1, 0]


def test_pinning_follows_cuda_availability(gpus, monkeypatch):
    assert can_pin_memory() is True
    monkeypatch.setattr(gpus, "names", [])
    assert can_pin_memory() is False


def test_the_placement_from_the_gpus_own_free_memory_switches_at_its_share(gpus, monkeypatch):
    """TrainingImages' default: choose_placement(nbytes, device, free_memory(device), can_pin_memory())."""
    gpus.free[1] = 2 * 10**9
    edge = math.floor(DEVICE_SHARE * gpus.free[1])  # the most bytes that fit: exactly the share
    fits = choose_placement(edge, CUDA1, free_memory(CUDA1), can_pin_memory())
    assert fits.on_device and not fits.pinned and fits.reason.startswith("images on cuda:1")
    over = choose_placement(edge + 1, CUDA1, free_memory(CUDA1), can_pin_memory())
    assert not over.on_device and over.pinned and "pinned host memory" in over.reason
    assert f"{engine.placement._fmt_bytes(edge + 1)} is more than {DEVICE_SHARE:.0%}" in over.reason
    assert over.reason.endswith(f"of the {engine.placement._fmt_bytes(gpus.free[1])} free on cuda:1")
    gpus.free[0] = GIB  # the same images on a smaller GPU
    on0 = choose_placement(edge + 1, CUDA0, free_memory(CUDA0), can_pin_memory())
    assert not on0.on_device and on0.reason.endswith(f"the {engine.placement._fmt_bytes(GIB)} free on cuda:0")
    assert gpus.asked == [1, 1, 0]
    monkeypatch.setattr(gpus, "names", [])  # CUDA gone (a driver problem): host memory, not pinned
    assert not choose_placement(edge + 1, CUDA1, gpus.free[1], can_pin_memory()).pinned


def test_training_images_too_big_for_the_gpu_stay_on_the_host_indexed_there(gpus, monkeypatch):
    monkeypatch.setattr(engine.placement, "can_pin_memory", lambda: False)  # pinning needs a real CUDA runtime
    x = np.arange(4 * 1 * 6 * 6, dtype=np.uint8).reshape(4, 1, 6, 6)
    gpus.free[0] = 2 * x.nbytes - 2  # half of it is one byte short
    images = TrainingImages(x, CUDA0)
    assert gpus.asked == [0]
    assert not images.placement.on_device and not images.placement.pinned
    assert images.index_device == torch.device("cpu") and images.device == CUDA0
    assert images.x.data_ptr() == torch.from_numpy(x).data_ptr() and len(images) == 4  # not copied


# ------------------------------------------------------------------------------------- engine/distributed.py
def _launched(rank, world, local_rank, local_world) -> Distributed:
    env = {"RANK": rank, "WORLD_SIZE": world, "LOCAL_RANK": local_rank, "LOCAL_WORLD_SIZE": local_world}
    d = Distributed.from_environment({k: str(v) for k, v in env.items()})
    assert d == Distributed(rank, world, local_rank, local_world)
    return d


def test_each_rank_trains_on_the_gpu_of_its_local_rank(gpus):
    for rank, local in ((0, 0), (1, 1), (2, 0), (3, 1)):  # two machines of two GPUs each
        d = _launched(rank, 4, local, 2)
        for requested in ("auto", "cuda"):
            assert d.device(requested) == torch.device("cuda", local)
        assert d.device("cpu") == torch.device("cpu")  # a CPU run on a GPU machine stays on the CPU


def test_a_local_rank_without_a_gpu_is_refused_naming_the_count(gpus):
    d = _launched(2, 3, 2, 3)
    for requested in ("auto", "cuda"):
        with pytest.raises(DistributedError, match="local rank 2 has no GPU: this machine has 2; start fewer"):
            d.device(requested)
    gpus.names.append("Fake GPU C")  # a machine with three GPUs has one for local rank 2
    assert d.device("auto") == torch.device("cuda", 2)


def test_an_explicit_gpu_index_under_torchrun_is_refused(gpus):
    d = _launched(1, 2, 1, 2)
    for requested in ("cuda:0", "cuda:1"):
        with pytest.raises(DistributedError, match=f"device '{requested}'.*pass --device cuda .or auto"):
            d.device(requested)


def test_without_cuda_distributed_runs_on_the_cpu_and_refuses_cuda(no_gpu):
    d = _launched(1, 2, 1, 2)
    assert d.device("auto") == torch.device("cpu") and d.device("cpu") == torch.device("cpu")
    with pytest.raises(DistributedError, match="device 'cuda' asked for, but this torch build sees no CUDA GPU"):
        d.device("cuda")


def test_the_process_group_uses_nccl_on_the_ranks_gpu_and_gloo_on_the_cpu(gpus, monkeypatch):
    joined = []
    initialized = [False]
    monkeypatch.setattr(torch_dist, "is_initialized", lambda: initialized[0])
    monkeypatch.setattr(torch_dist, "init_process_group", lambda *a, **k: joined.append((a, k)))
    d = _launched(1, 2, 1, 2)
    d.start(d.device("auto"))
    assert gpus.set_devices == [CUDA1]
    assert joined == [(("nccl",), {"device_id": CUDA1})]
    joined.clear()
    d.start(d.device("cpu"))
    assert joined == [(("gloo",), {})] and gpus.set_devices == [CUDA1]  # the CPU selects no GPU
    joined.clear()
    initialized[0] = True
    d.start(d.device("auto"))  # already in the group: nothing again
    assert joined == [] and gpus.set_devices == [CUDA1]


def test_ddp_is_given_the_models_gpu_and_no_device_ids_on_the_cpu(monkeypatch):
    wrapped = []

    def fake_ddp(module, device_ids=None):
        wrapped.append(device_ids)
        return module

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", fake_ddp)
    model = VAE(ModelConfig(image_shape=(1, 4, 4), hidden=8, latent_dim=2))
    d = Distributed(1, 2, 1, 2)
    d.wrap(model)
    assert wrapped == [None]  # CPU parameters
    monkeypatch.setattr(engine.distributed, "model_device", lambda m: CUDA1)
    forward = d.wrap(model)
    assert wrapped == [None, [1]] and forward.likelihood is model.likelihood


@pytest.mark.slow
def test_a_float32_dataset_on_the_gpu_counts_four_bytes_a_value(gpus, monkeypatch):
    """Values off the 1/255 grid are stored as float32: the training run counts the bytes it really copies."""
    blobs = make_blobs(n_train=2_000, n_test=500)  # float32 in [0, 1]
    assert blobs.x_train.dtype == np.float32
    seen = []
    real = engine.trainer.check_run
    monkeypatch.setattr(engine.trainer, "check_run", lambda *a, **k: seen.append(k["device_data"]) or real(*a, **k))

    def past(*a, **k):
        raise _PastTheMemoryCheck

    monkeypatch.setattr(engine.trainer, "autocast_dtype", past)
    with pytest.raises(_PastTheMemoryCheck):
        engine.trainer.Trainer(blobs, ModelConfig(image_shape=blobs.image_shape, hidden=8), TrainConfig())
    assert seen == [blobs.x_train.nbytes + blobs.x_test.nbytes] and seen[0] == 2_500 * 4 * blobs.x_train[0].size


def test_an_unindexed_cuda_device_is_labelled_with_the_current_gpu(gpus):
    gpus.current = 1
    assert device_label(torch.device("cuda")) == "cuda:1 (Fake GPU B)"
