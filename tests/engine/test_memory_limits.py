"""The memory budget inside containers: the cgroup limit that applies to this process (v1 or v2, its own cgroup and
every parent), the machine's MemAvailable and RLIMIT_AS, the smallest of them. cgroup and /proc files are faked
under tmp_path; RLIMIT_AS is set for real in a subprocess."""

import struct
import subprocess
import sys
from pathlib import Path

import pytest

import engine.memory as memory
from engine.data import DatasetError, load_dataset

GIB = 1 << 30
ROOT = Path(__file__).resolve().parents[2]


def _write(folder: Path, **files) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(f"{text}\n")
    return folder


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Point engine.memory at a fake /proc and /sys/fs/cgroup under tmp_path, with 20 GiB available."""
    proc = tmp_path / "proc"
    proc.mkdir()
    _write(proc, meminfo="MemTotal: 33554432 kB\nMemAvailable: 20971520 kB")
    root = tmp_path / "cgroup"
    root.mkdir()
    monkeypatch.setattr(memory, "MEMINFO", proc / "meminfo")
    monkeypatch.setattr(memory, "PROC_CGROUP", proc / "cgroup")
    monkeypatch.setattr(memory, "CGROUP_ROOT", root)
    monkeypatch.setattr(memory, "address_space_room", lambda *a: None)
    return proc, root


def test_cgroup_v1_limit_of_a_parent_holds_the_nested_process(fake):
    proc, root = fake
    (proc / "cgroup").write_text("5:devices:/\n4:memory:/ci/job42\n1:cpu,cpuacct:/\n0::/\n")
    unlimited = 9223372036854771712
    _write(root / "memory", memory__limit_in_bytes=unlimited, memory__usage_in_bytes=9 * GIB)
    _write(root / "memory" / "ci", memory__limit_in_bytes=4 * GIB, memory__usage_in_bytes=GIB)
    _write(root / "memory" / "ci" / "job42", memory__limit_in_bytes=unlimited, memory__usage_in_bytes=GIB // 2)
    assert memory.cgroup_room() == 3 * GIB  # the parent's 4 GiB less its 1 GiB in use
    assert memory.available_bytes() == 3 * GIB
    assert memory.budget_text() == "the 1.6 GB cap (half the memory available)"


def test_cgroup_v1_limit_on_the_process_own_cgroup(fake):
    proc, root = fake
    (proc / "cgroup").write_text("4:memory:/docker/abc\n")
    _write(root / "memory" / "docker" / "abc", memory__limit_in_bytes=4 * GIB, memory__usage_in_bytes=GIB // 4)
    assert memory.cgroup_room() == 4 * GIB - GIB // 4


def test_cgroup_v2_nested_takes_the_tightest_level(fake):
    proc, root = fake
    (proc / "cgroup").write_text("0::/user.slice/app.scope\n")
    _write(root, cgroup__controllers="cpu memory", memory__current=10 * GIB)  # the root has no memory.max
    _write(root / "user.slice", memory__max=2 * GIB, memory__current=GIB)
    _write(root / "user.slice" / "app.scope", memory__max="max", memory__current=GIB // 2)
    assert memory.cgroup_room() == GIB
    _write(root / "user.slice" / "app.scope", memory__max=GIB // 4, memory__current=GIB // 8)
    assert memory.cgroup_room() == GIB // 8


def test_cgroup_v2_inside_a_container_reads_the_mount_itself(fake):
    """With a cgroup namespace the process sees its own cgroup as the mount's root (the path in /proc may even
    name a folder that is not there)."""
    proc, root = fake
    (proc / "cgroup").write_text("0::/kubepods/pod1/ctr\n")
    _write(root, cgroup__controllers="memory", memory__max=4 * GIB, memory__current=GIB)
    assert memory.cgroup_room() == 3 * GIB


def test_no_limit_anywhere_leaves_memavailable(fake):
    proc, root = fake
    (proc / "cgroup").write_text("4:memory:/\n0::/\n")
    _write(root / "memory", memory__limit_in_bytes=9223372036854771712, memory__usage_in_bytes=GIB)
    assert memory.cgroup_room() is None
    assert memory.available_bytes() == 20 * GIB


def test_a_dataset_refused_in_a_4_gib_cgroup_states_that_cap(fake, tmp_path):
    """The refusal gives the container's cap, not one from the machine's MemAvailable."""
    proc, root = fake
    (proc / "cgroup").write_text("4:memory:/job\n")
    _write(root / "memory" / "job", memory__limit_in_bytes=4 * GIB, memory__usage_in_bytes=0)
    p = tmp_path / "train-images-idx3-ubyte"
    n = 1_000_000  # 784 MB of pixels: 2.4 GB while stored, more than half of 4 GiB
    with open(p, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", n, 28, 28))
        f.truncate(16 + n * 784)
    with pytest.raises(DatasetError) as e:
        load_dataset(p)
    assert "more than the 2.1 GB cap" in str(e.value), e.value


@pytest.mark.slow  # a subprocess
def test_rlimit_as_bounds_the_budget():
    """``ulimit -v`` (RLIMIT_AS) of 4 GiB, set for real in a subprocess: what is left of it bounds the budget."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
        "import engine.memory as m\n"
        "print(m.address_space_room(), m.available_bytes(), m.meminfo_available())\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    room, avail, meminfo = map(int, r.stdout.split())
    assert 0 < room < 4 * GIB
    assert avail <= min(room, meminfo)  # a cgroup limit of the machine running the tests may be lower still
