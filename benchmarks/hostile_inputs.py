"""Peak memory of refused bombs, and how fast Stop interrupts a long IWAE evaluation.

Each bomb is written to a temp folder (streamed: never held in memory here), then loaded by ``load_dataset`` in a
fresh subprocess that reports its message and its peak RSS (``resource.getrusage``), next to the RSS of a
subprocess that only imports the loaders. Every subprocess runs under an address-space limit (RLIMIT_AS, 4 GiB
unless ``--limit-gib`` says otherwise; 0: none), as inside a 4 GiB container. The bombs are the ones of the
hostile-input probes: a 2 MB .gz IDX expanding to 2 GB, an 8 MB one whose header honestly claims 8 GB, a 1.9 MB
one honestly claiming 2,000 images of 1000×1000 followed by trailing data, a 3 MB zip-bombed .npz (a member
claiming far less than it expands to, and one honestly claiming 3 GB), a 1 MB .csv.gz holding one 1 GiB line, a
.csv symlinked to /dev/zero, a FIFO, and a 40 GB sparse .npy. Then ``main.py train`` on a 1 MB .gz IDX of 1,000
images of 1000×1000 (a run refused from the headers, before any pixel is decompressed), and two inputs that are
accepted but used to peak high: a folder of large pictures (hard links to one 5000×5000 PNG), decoded to 64×64,
and a CSV of 99,857 columns.

Then a run with IWAE K = 100,000 is stopped one second into its end-of-epoch evaluation, several times: the
figure is the time from ``stop()`` to the run's generator returning.

    .venv/bin/python benchmarks/hostile_inputs.py [--scale 1.0] [--stops 3] [--limit-gib 4]
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
# runs a command and prints the peak RSS of that one child (KiB), so every figure is one process's own peak
PEAK = r"""
import resource, subprocess, sys
limit = int(sys.argv[1])
def cap():
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
r = subprocess.run(sys.argv[2:], preexec_fn=cap, capture_output=True, text=True)
sys.stdout.write(r.stdout)
sys.stderr.write(r.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(r.returncode)
"""
LIMIT = [4 << 30]


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


def gz_idx_honest(path: Path, n: int, side: int) -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as f:
        f.write(comp.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", n, side, side)))
        _deflate_zeros(f.write, comp, n * side * side)
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


def _under_limit(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PEAK, str(LIMIT[0]), *cmd], capture_output=True, text=True, timeout=600, cwd=ROOT
    )


def measure(path) -> dict:
    out = _under_limit([sys.executable, "-c", CHILD, str(ROOT), str(path)])
    if out.returncode != 0:
        return {
            "msg": f"child failed ({out.returncode}): {out.stderr.strip().splitlines()[-1:]}",
            "peak_kib": int(out.stdout.split()[-1]) if out.stdout.strip() else 0,
            "seconds": 0,
            "budget": 0,
        }
    return json.loads(out.stdout.splitlines()[0])


def measure_cli(path) -> dict:
    """``main.py train --data path`` under the limit: its one error line and its peak RSS."""
    t0 = time.perf_counter()
    out = _under_limit([sys.executable, "main.py", "train", "--data", str(path), "--epochs", "1"])
    err = out.stderr.strip().splitlines()
    msg = err[-1] if err else f"exit {out.returncode} (not refused)"
    return {"msg": msg, "seconds": time.perf_counter() - t0, "peak_kib": int(out.stdout.split()[-1])}


def big_pictures(folder: Path, n: int, side: int = 5000) -> None:
    """``n`` hard links to one side×side RGB PNG (noise in a few rows, so it is not all one colour)."""
    from PIL import Image

    folder.mkdir()
    a = np.zeros((side, side, 3), np.uint8)
    a[:: side // 8] = np.random.default_rng(0).integers(0, 255, (8, side, 3), dtype=np.uint8)
    first = folder / "0000.png"
    Image.fromarray(a).save(first, compress_level=1)
    for i in range(1, n):
        os.link(first, folder / f"{i:04d}.png")


def wide_csv(path: Path, rows: int, side: int = 316) -> None:
    """A gzipped CSV of ``rows`` images of side×side (a label column and side² pixel columns), streamed."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        f.write(comp.compress((",".join(["label"] + [f"p{i}" for i in range(side * side)]) + "\n").encode()))
        for r in range(rows):
            row = rng.integers(0, 256, side * side)
            f.write(comp.compress((f"{r % 10}," + ",".join(map(str, row.tolist())) + "\n").encode()))
        f.write(comp.flush())


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
    p = folder / "c" / "train-images-idx3-ubyte.gz"
    p.parent.mkdir()
    with open(p, "wb") as f:
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        f.write(comp.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2000, 1000, 1000)))
        _deflate_zeros(f.write, comp, g(2_000_000_000) + (64 << 20))
        f.write(comp.flush())
    made.append(("gz IDX, header honestly 2000x1000x1000, + trailing", p))
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
    ap.add_argument("--limit-gib", type=float, default=4, help="RLIMIT_AS of every subprocess, GiB (0: none)")
    args = ap.parse_args()
    LIMIT[0] = int(args.limit_gib * 2**30)
    base = measure("-")
    limit = f"RLIMIT_AS {LIMIT[0] / 2**30:.0f} GiB" if LIMIT[0] else "no limit"
    print(
        f"{limit}; budget (half the available memory) in the child: {base['budget'] / 1e9:.1f} GB; "
        f"RSS of a subprocess that only imports the loaders: {base['peak_kib'] / 1024:.0f} MiB"
    )
    with tempfile.TemporaryDirectory(prefix="bombs-") as d:
        print(f"{'bomb':<52} {'file':>9} {'peak RSS':>9} {'time':>7}  message")

        def row(label, path, r):
            size = path.lstat().st_size if path.is_symlink() or not path.exists() else os.stat(path).st_size
            if path.is_fifo() or path.is_symlink() or path.is_dir():
                size = 0
            print(
                f"{label:<52} {size / MB:>7.1f}MB {r['peak_kib'] / 1024:>6.0f}MiB {r['seconds']:>6.2f}s  {r['msg'][:150]}"
            )

        for label, path in bombs(Path(d), args.scale):
            row(label, path, measure(path))
        p = Path(d) / "cli" / "train-images-idx3-ubyte.gz"
        p.parent.mkdir()
        gz_idx_honest(p, 1000, 1000)
        row("main.py train: gz IDX honestly 1000x1000x1000", p, measure_cli(p))
        p = Path(d) / "pictures"
        big_pictures(p, max(8, int(64 * args.scale)))
        row(f"folder of {max(8, int(64 * args.scale))} 5000x5000 PNGs (accepted, 64x64)", p, measure(p))
        p = Path(d) / "wide.csv.gz"
        wide_csv(p, max(50, int(2000 * args.scale)))
        row(f"CSV of 99,857 columns, {max(50, int(2000 * args.scale))} rows (accepted)", p, measure(p))
    if args.stops:
        lat = stop_latency(args.stops)
        print(
            f"stop → return during IWAE K=100,000: median {statistics.median(lat) * 1000:.0f} ms, "
            f"max {max(lat) * 1000:.0f} ms over {len(lat)} stops ({', '.join(f'{x * 1000:.0f}' for x in lat)} ms)"
        )


if __name__ == "__main__":
    main()
