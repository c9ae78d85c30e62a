"""Peak memory of refused bombs, and how fast Stop interrupts a long IWAE evaluation.

Each bomb is written to a temp folder (streamed: never held in memory here), then loaded by ``load_dataset`` in a
fresh subprocess that reports its message and its peak RSS (``resource.getrusage``), next to the RSS of a
subprocess that only imports the loaders. The bombs are the ones of the hostile-input probe: a 2 MB .gz IDX
expanding to 2 GB, an 8 MB one whose header honestly claims 8 GB, a 3 MB zip-bombed .npz (a member claiming far
less than it expands to, and one honestly claiming 3 GB), a 1 MB .csv.gz holding one 1 GiB line, a .csv symlinked
to /dev/zero, a FIFO, and a 40 GB sparse .npy.

Then a run with IWAE K = 100,000 is stopped one second into its end-of-epoch evaluation, several times: the
figure is the time from ``stop()`` to the run's generator returning.

    .venv/bin/python benchmarks/hostile_inputs.py [--scale 1.0] [--stops 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from engine.data import DatasetError, load_dataset
from engine.memory import budget_bytes
t0 = time.perf_counter()
try:
    if sys.argv[2] != "-":
        load_dataset(sys.argv[2])
    msg = "loaded (not refused)"
except DatasetError as e:
    msg = str(e)
print(json.dumps({"msg": msg, "seconds": time.perf_counter() - t0, "budget": budget_bytes(),
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""
MB = 1 << 20


def _deflate_zeros(write, comp, n: int) -> None:
    block = bytes(MB)
    for _ in range(n // MB):
        write(comp.compress(block))
    write(comp.compress(bytes(n % MB)))


def gz_idx(path: Path, claim_images: int, total_bytes: int) -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as f:
        f.write(comp.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", claim_images, 28, 28)))
        _deflate_zeros(f.write, comp, total_bytes)
        f.write(comp.flush())


def npz_bomb(path: Path, claim_shape: tuple[int, ...], payload: int) -> None:
    header = io.BytesIO()
    import numpy.lib.format as fmt

    fmt.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": claim_shape})
    info = zipfile.ZipInfo("x.npy")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as z, z.open(info, "w", force_zip64=True) as m:
        m.write(header.getvalue())
        block = bytes(MB)
        left = payload
        while left > 0:
            m.write(block[: min(left, MB)])
            left -= MB


def csv_long_line(path: Path, chars: int) -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"0," * (MB // 2)
    with open(path, "wb") as f:
        for _ in range(chars // MB):
            f.write(comp.compress(block))
        f.write(comp.flush())


def sparse_npy(path: Path, shape: tuple[int, ...]) -> None:
    header = io.BytesIO()
    import numpy.lib.format as fmt

    fmt.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with open(path, "wb") as f:
        f.write(header.getvalue())
        f.truncate(len(header.getvalue()) + int(np.prod(shape)))


def measure(path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(path)], capture_output=True, text=True, timeout=600
    )
    if out.returncode != 0:
        return {
            "msg": f"child failed ({out.returncode}): {out.stderr.strip().splitlines()[-1:]}",
            "peak_kib": 0,
            "seconds": 0,
            "budget": 0,
        }
    return json.loads(out.stdout)


def bombs(folder: Path, scale: float) -> list[tuple[str, Path]]:
    g = lambda n: int(n * scale)  # noqa: E731
    made = []
    p = folder / "a" / "train-images-idx3-ubyte.gz"
    p.parent.mkdir()
    gz_idx(p, 60_000, g(2 << 30))
    made.append(("gz IDX, header 60000x28x28, expands to 2 GB", p))
    p = folder / "b" / "train-images-idx3-ubyte.gz"
    p.parent.mkdir()
    n = g(8 << 30) // 784
    gz_idx(p, n, n * 784)
    made.append((f"gz IDX, header honestly claims {n * 784 / 1e9:.1f} GB", p))
    p = folder / "bomb-trailing.npz"
    npz_bomb(p, (10, 28, 28), g(3 << 30))
    made.append(("zip-bombed npz, member claims 7840 B, expands to 3 GB", p))
    p = folder / "bomb-honest.npz"
    n = g(3 << 30) // 784
    npz_bomb(p, (n, 28, 28), n * 784)
    made.append((f"zip-bombed npz, member honestly claims {n * 784 / 1e9:.1f} GB", p))
    p = folder / "long.csv.gz"
    csv_long_line(p, g(1 << 30))
    made.append(("csv.gz, one 1 GiB line", p))
    p = folder / "zero.csv"
    os.symlink("/dev/zero", p)
    made.append(("csv symlinked to /dev/zero", p))
    p = folder / "pipe.npz"
    os.mkfifo(p)
    made.append(("FIFO named .npz", p))
    p = folder / "sparse.npy"
    sparse_npy(p, (g(40 << 30) // 4096, 64, 64))
    made.append(("sparse .npy claiming 40 GB", p))
    return made


def stop_latency(stops: int) -> list[float]:
    """Seconds from stop() to the run's generator returning, stopped 1 s into an IWAE K = 100,000 evaluation."""
    import torch

    from engine.config import ModelConfig, TrainConfig
    from engine.data import default_dataset
    from engine.data.dataset import Dataset
    from engine.messages import MetricsChunk
    from engine.trainer import Trainer

    torch.set_num_threads(1)
    full = default_dataset()
    ds = Dataset(full.name, full.source, full.x_train[:3000], full.x_test[:1000], None, None)
    out = []
    for _ in range(stops):
        run = Trainer(
            ds, ModelConfig(image_shape=ds.image_shape), TrainConfig(epochs=1, iwae_k=100_000, iwae_examples=500)
        )
        gen = run.run()
        ended = threading.Event()
        t_stop = [0.0]

        def stopper():
            time.sleep(1.0)
            t_stop[0] = time.perf_counter()
            run.stop()

        for msg in gen:
            if isinstance(msg, MetricsChunk) and msg.step == run.steps_per_epoch:
                threading.Thread(target=stopper, daemon=True).start()
                break
        for _ in gen:  # the evaluation runs inside this next()
            pass
        ended.set()
        out.append(time.perf_counter() - t_stop[0])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="size factor for the bombs (1 = the probe's sizes)")
    ap.add_argument("--stops", type=int, default=3, help="stop-latency repetitions (0 to skip)")
    args = ap.parse_args()
    base = measure("-")
    print(
        f"budget (half the available memory): {base['budget'] / 1e9:.1f} GB; "
        f"RSS of a subprocess that only imports the loaders: {base['peak_kib'] / 1024:.0f} MiB"
    )
    with tempfile.TemporaryDirectory(prefix="bombs-") as d:
        print(f"{'bomb':<52} {'file':>9} {'peak RSS':>9} {'time':>7}  message")
        for label, path in bombs(Path(d), args.scale):
            size = path.lstat().st_size if path.is_symlink() or not path.exists() else os.stat(path).st_size
            if path.is_fifo() or path.is_symlink():
                size = 0
            r = measure(path)
            print(
                f"{label:<52} {size / MB:>7.1f}MB {r['peak_kib'] / 1024:>6.0f}MiB {r['seconds']:>6.2f}s  {r['msg'][:110]}"
            )
    if args.stops:
        lat = stop_latency(args.stops)
        print(
            f"stop → return during IWAE K=100,000: median {statistics.median(lat) * 1000:.0f} ms, "
            f"max {max(lat) * 1000:.0f} ms over {len(lat)} stops ({', '.join(f'{x * 1000:.0f}' for x in lat)} ms)"
        )


if __name__ == "__main__":
    main()
