"""NumPy files: ``.npz`` archives (Keras ``mnist.npz`` and friends) and ``.npy`` image arrays. Nothing is unpickled.

``.npz`` keys, first match wins: ``x_train``/``x_test`` (+ ``y_train``/``y_test``, split kept), ``x`` (+ ``y``),
``images`` (+ ``labels``), or a single array of any name; the last three get the 10% holdout. A ``.npy`` is
images only. Every array header is read first (``numpy.lib.format``): object dtypes are refused before their pickle
payload is touched, and an array claiming more bytes than its file or zip member holds is refused before any
allocation; only then does ``np.load(..., allow_pickle=False)`` read the data.
"""
from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._common import fail, make_dataset
from .dataset import Dataset

NPY_MAGIC, ZIP_MAGIC = b"\x93NUMPY", (b"PK\x03\x04", b"PK\x05\x06")  # zip: a member, or empty
_KEYS = (("x_train", "y_train"), ("x", "y"), ("images", "labels"))
_DEFLATE_MAX_RATIO = 1032  # zlib cannot expand data more than this, so a deflated member's size claim is bounded
_READ_ERRORS = (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile)


def _check_header(fp, room: int, path: Path, key: str = "") -> None:
    """Parse the .npy header at ``fp``; refuse object dtypes and data needing more than ``room`` bytes."""
    where = f"array {key!r}: " if key else ""
    try:
        version = np.lib.format.read_magic(fp)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fp)
        header = fp.tell()
    except _READ_ERRORS as e:
        raise fail(path, f"{where}not a valid .npy array ({e})") from None
    if dtype.hasobject:
        raise fail(path, f"{where}pickled object arrays are not loaded")
    need = math.prod(shape) * dtype.itemsize
    if need > room - header:
        have = max(room - header, 0)
        raise fail(path, f"{where}truncated: header claims {shape} {dtype} ({need} bytes) but the file holds {have}")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays the key rules pick from an .npz, headers checked before any is read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            pick = next(((x, y) for x, y in _KEYS if x in keys), None)
            if pick is None and len(keys) == 1:
                pick = (next(iter(keys)), None)
            if pick is None:
                raise fail(path, f"no image array: expected x_train/x_test, x/y or images/labels, found {sorted(keys)}")
            roles = {"x": pick[0], "y": pick[1]}
            if pick[0] == "x_train" and "x_test" in keys:
                roles.update(x_test="x_test", y_test="y_test")
            roles = {role: k for role, k in roles.items() if k in keys}
            for k in roles.values():
                info = z.zip.getinfo(k + ".npy" if k + ".npy" in z.zip.namelist() else k)
                room = info.file_size
                if info.compress_type == zipfile.ZIP_DEFLATED:
                    room = min(room, info.compress_size * _DEFLATE_MAX_RATIO + 1024)
                elif info.compress_type == zipfile.ZIP_STORED:
                    room = min(room, info.compress_size)
                with z.zip.open(info) as fp:
                    _check_header(fp, room, path, k)
            out = {}
            for role, k in roles.items():
                try:
                    out[role] = z[k]
                except _READ_ERRORS as e:
                    raise fail(path, f"array {k!r}: cannot read ({e})") from None
            return out
    except _READ_ERRORS as e:
        raise fail(path, f"not a readable .npz archive ({e})") from None


def load_npz(path) -> Dataset:
    """Load a ``.npz`` or ``.npy`` file (told apart by their magic bytes, not the suffix)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(len(NPY_MAGIC))
            f.seek(0)
            if magic.startswith(NPY_MAGIC):
                _check_header(f, path.stat().st_size, path)
    except OSError as e:
        raise fail(path, f"cannot read: {e.strerror or e}") from None
    if not magic:
        raise fail(path, "empty file")
    if magic.startswith(NPY_MAGIC):
        try:
            x = np.load(path, allow_pickle=False)
        except _READ_ERRORS as e:
            raise fail(path, f"cannot read the array ({e})") from None
        return make_dataset(path, path.stem, x)
    if not magic.startswith(ZIP_MAGIC):
        raise fail(path, "not a NumPy .npy or .npz file")
    a = _load_npz(path)
    return make_dataset(path, path.stem, a["x"], a.get("y"), a.get("x_test"), a.get("y_test"))
