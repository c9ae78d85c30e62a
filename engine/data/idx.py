"""IDX files, raw or gzip-compressed: the MNIST / Fashion-MNIST / EMNIST layout.

The user may pick any one file of a set (``train-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte``, ...) or the
folder holding it; the siblings are found by name. A train and a test images file keep their split; a lone images
file gets the 10% holdout. Labels are optional. Headers are never trusted for allocation: the claimed size is
checked against what the file really holds before any array is made.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from ..files import quote
from ._common import DEFLATE_MAX_RATIO, check_budget, fail, make_dataset, open_input, read_bounded
from .dataset import Dataset, DatasetError

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

# train-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte, train-images.idx3-ubyte, emnist-letters-test-images-idx3-ubyte
IDX_NAME = re.compile(
    r"^(?P<prefix>.*?)(?P<split>train|t10k|test)[-_.](?P<kind>images|labels)[-_.]idx\d-ubyte(?P<gz>\.gz)?$", re.I
)
_DTYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """One IDX file of unsigned bytes with ``ndim`` dimensions (3: images N×H×W, 1: labels N) as a uint8 array.

    Refuses other dtypes and ranks, and a header claiming more (or less) data than the file holds, before any
    array is made: a raw file is checked against its size; a .gz against what deflate can expand its size to and
    against the memory budget, then streamed into place and refused after one byte beyond the claim."""
    path = Path(path)
    what = "images" if ndim == 3 else "labels"
    try:
        with open_input(path) as raw:
            gz = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            size = os.fstat(raw.fileno()).st_size
            with gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw as f:
                head = f.read(4)
                if len(head) < 4:
                    raise fail(path, "empty file" if not head else "truncated: no room for an IDX header")
                if head[:2] != b"\0\0" or head[2] not in _DTYPES or not 1 <= head[3] <= 4:
                    raise fail(path, f"not an IDX file (magic 0x{head.hex().upper()})")
                if head[2] != 0x08:
                    code = f"{_DTYPES[head[2]]} (0x{head[2]:02X})"
                    raise fail(path, f"IDX dtype {code} is not supported, only unsigned bytes (0x08)")
                if head[3] != ndim:
                    magic = f"0x{0x800 + ndim:08X}"
                    raise fail(path, f"expected IDX {what} (magic {magic}) but the header is 0x{head.hex().upper()}")
                raw_dims = f.read(4 * ndim)
                if len(raw_dims) < 4 * ndim:
                    raise fail(path, "truncated IDX header")
                dims = struct.unpack(f">{ndim}I", raw_dims)
                need = math.prod(dims)
                claim = f"{dims[0]} images of {dims[1]}x{dims[2]}" if ndim == 3 else f"{dims[0]} labels"
                if gz:
                    room = size * DEFLATE_MAX_RATIO
                    if need > room:
                        raise fail(
                            path,
                            f"truncated: header claims {claim} ({need} bytes) but a {size}-byte gzip "
                            f"file cannot hold more than {room}",
                        )
                else:
                    have = size - 4 - 4 * ndim
                    if have < need:
                        raise fail(path, f"truncated: header claims {claim} ({need} bytes) but the file holds {have}")
                    if have > need:
                        raise fail(path, f"trailing data after the {need:,} bytes the header claims ({claim})")
                if ndim == 3:
                    check_budget(path, dims[0], dims[1] * dims[2])
                arr = read_bounded(f, need, path, claim)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise fail(path, f"corrupt or truncated gzip data ({e})") from None
    except OSError as e:
        raise fail(path, f"cannot read: {e.strerror or e}") from None
    return arr.reshape(dims)


def _image_dims(path: Path) -> tuple[int, int, int] | None:
    """(count, height, width) from an IDX images file's header alone (16 bytes, decompressed if gzipped), or None
    when the header is not one the loader accepts (it then explains)."""
    try:
        with open_input(path) as raw:
            gz = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw as f:
                head = f.read(16)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, DatasetError):
        return None
    if len(head) < 16 or head[:4] != bytes([0, 0, 8, 3]):
        return None
    return struct.unpack(">3I", head[4:])


def peek_idx(path) -> tuple[int, tuple[int, ...]] | None:
    """(image count over the train and test files, (height, width)) from the headers alone, or None."""
    try:
        _prefix, files = find_idx_files(Path(path))
    except (OSError, DatasetError):
        return None
    dims = [_image_dims(p) for (split, kind), p in files.items() if kind == "images"]
    if not dims or None in dims or len({d[1:] for d in dims}) != 1:
        return None
    return sum(d[0] for d in dims), dims[0][1:]


def _key(m: re.Match) -> tuple[str, str, str]:
    """(prefix, "train" | "test", "images" | "labels") of a name matched by IDX_NAME (t10k is test)."""
    return m["prefix"], "train" if m["split"].lower() == "train" else "test", m["kind"].lower()


def find_idx_files(path: Path) -> tuple[str, dict[tuple[str, str], Path]]:
    """The set of IDX files ``path`` belongs to (or that folder ``path`` holds): (prefix, {(split, kind): file}).

    split is "train" or "test" (t10k), kind "images" or "labels". An unpacked sibling wins over its .gz. A picked file
    whose name does not follow the convention is returned alone as train images."""
    path = Path(path)
    found: dict[tuple[str, str, str], Path] = {}
    if path.is_file():
        m = IDX_NAME.match(path.name)
        if not m:
            return "", {("train", "images"): path}
        folder, want = path.parent, m["prefix"]
        found[_key(m)] = path  # the picked file itself, even if an unpacked copy lies beside it
    else:
        folder, want = path, None
    for p in sorted(folder.iterdir()):  # sorted: "x-ubyte" comes before "x-ubyte.gz"
        m = IDX_NAME.match(p.name)
        if m and (want is None or m["prefix"] == want) and p.is_file():
            found.setdefault(_key(m), p)
    prefixes = sorted({k[0] for k in found})
    if not prefixes:
        raise fail(path, "no IDX files (train-images-idx3-ubyte[.gz], ...) found")
    if len(prefixes) > 1:
        names = ", ".join(f"{p}*" for p in prefixes)
        raise fail(path, f"holds several IDX datasets ({names}): pick one of their files")
    return prefixes[0], {k[1:]: p for k, p in found.items()}


KNOWN_NAMES = {"fashion-mnist": "Fashion-MNIST", "fashion": "Fashion-MNIST", "mnist": "MNIST", "emnist": "EMNIST"}


def load_idx(path, *, name: str | None = None, class_names: tuple[str, ...] | None = None) -> Dataset:
    """Load an IDX dataset from one of its files or its folder.

    Folders or prefixes named like Fashion-MNIST get its class names (if the labels fit); EMNIST images, stored
    transposed, are transposed back."""
    path = Path(path)
    prefix, files = find_idx_files(path)
    splits = {}
    for split in ("train", "test"):
        img = files.get((split, "images"))
        if img is None:
            continue
        x = read_idx(img, 3)
        y, lbl = None, files.get((split, "labels"))
        if lbl is not None:
            y = read_idx(lbl, 1)
            if len(y) != len(x):
                raise fail(lbl, f"{len(y)} labels for {len(x)} images in {quote(img.name)}")
        splits[split] = (x, y)
    if not splits:
        raise fail(path, "no IDX images file (*-images-idx3-ubyte[.gz]) next to it")
    base = prefix.strip("-_. ") or (path if path.is_dir() else path.parent).resolve().name
    if base.lower().startswith("emnist"):
        splits = {k: (x.transpose(0, 2, 1), y) for k, (x, y) in splits.items()}
    labels = [y for _, y in splits.values()]
    fits = all(y is not None and y.max(initial=0) < len(FASHION_MNIST_CLASSES) for y in labels)
    if class_names is None and "fashion" in base.lower() and fits:
        class_names = FASHION_MNIST_CLASSES
    x_tr, y_tr = splits.pop("train", None) or splits.pop("test")
    x_te, y_te = splits.get("test", (None, None))  # none: make_dataset holds 10% out
    name = name or KNOWN_NAMES.get(base.lower().replace("_", "-"), base)  # the name the default dataset has
    return make_dataset(path, name, x_tr, y_tr, x_te, y_te, class_names)
