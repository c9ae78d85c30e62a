"""NumPy files: ``.npz`` archives (Keras ``mnist.npz`` and friends) and ``.npy`` image arrays. Nothing is unpickled.

``.npz`` keys, first match wins: ``x_train``/``x_test`` (+ ``y_train``/``y_test``, split kept), ``x`` (+ ``y``),
``images`` (+ ``labels``), or a single array of any name; the last three get the 10% holdout. A ``.npy`` is
images only. Every array header is read first (``numpy.lib.format``): object dtypes are refused before their pickle
payload is touched, and an array claiming more bytes than its file or zip member holds is refused before any
allocation; only then does ``np.load(..., allow_pickle=False)`` read the data.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._common import DEFLATE_MAX_RATIO, check_budget, fail, make_dataset, open_input, read_bounded
from .dataset import Dataset, DatasetError

NPY_MAGIC, ZIP_MAGIC = b"\x93NUMPY", (b"PK\x03\x04", b"PK\x05\x06")  # zip: a member, or empty
_KEYS = (("x_train", "y_train"), ("x", "y"), ("images", "labels"))
_READ_ERRORS = (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile)


def _check_header(fp, room: int, path: Path, key: str = "") -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Parse the .npy header at ``fp``; refuse object dtypes and data needing more than ``room`` bytes.
    Returns (shape, fortran_order, dtype, data bytes)."""
    where = f"array {key!r}: " if key else ""
    try:
        version = np.lib.format.read_magic(fp)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fp)
        header = fp.tell()
    except _READ_ERRORS as e:
        raise fail(path, f"{where}not a valid .npy array ({e})") from None
    if dtype.hasobject:
        raise fail(path, f"{where}pickled object arrays are not loaded")
    need = math.prod(shape) * dtype.itemsize
    if need > room - header:
        have = max(room - header, 0)
        raise fail(path, f"{where}truncated: header claims {shape} {dtype} ({need} bytes) but the file holds {have}")
    return shape, fortran, dtype, need


def _read_array(fp, path: Path, room: int, key: str = "", images: bool = False) -> np.ndarray:
    """One .npy array from ``fp``: header checked, then exactly the claimed bytes streamed into place (never more:
    a member that would expand further is refused after one extra byte). ``images``: checked against the memory
    budget as a dataset of images before any byte of data is read."""
    shape, fortran, dtype, need = _check_header(fp, room, path, key)
    if images and len(shape) >= 2:
        check_budget(path, shape[0], math.prod(shape[1:]), "images", itemsize=dtype.itemsize)
    where = f"array {key!r}: " if key else ""
    data = read_bounded(fp, need, path, f"{where}{shape} {dtype}")
    return data.view(dtype).reshape(shape, order="F" if fortran else "C")


def _member_room(info: zipfile.ZipInfo) -> int:
    """The most bytes a zip member can expand to: its stated size, bounded by what its compression allows."""
    room = info.file_size
    if info.compress_type == zipfile.ZIP_DEFLATED:
        room = min(room, info.compress_size * DEFLATE_MAX_RATIO + 1024)
    elif info.compress_type == zipfile.ZIP_STORED:
        room = min(room, info.compress_size)
    return room


def _roles(z: zipfile.ZipFile, path: Path) -> tuple[dict[str, str], dict[str, zipfile.ZipInfo]]:
    """({"x": key, "y": key, "x_test": ..., "y_test": ...}, {key: member}) by the key rules of the module."""
    members = {n[:-4] if n.endswith(".npy") else n: n for n in z.namelist()}
    keys = set(members)
    pick = next(((x, y) for x, y in _KEYS if x in keys), None)
    if pick is None and len(keys) == 1:
        pick = (next(iter(keys)), None)
    if pick is None:
        raise fail(path, f"no image array: expected x_train/x_test, x/y or images/labels, found {sorted(keys)[:8]}")
    roles = {"x": pick[0], "y": pick[1]}
    if pick[0] == "x_train" and "x_test" in keys:
        roles.update(x_test="x_test", y_test="y_test")
    roles = {role: k for role, k in roles.items() if k in keys}
    return roles, {k: z.getinfo(members[k]) for k in roles.values()}


def peek_npz(path) -> tuple[int, tuple[int, ...]] | None:
    """(image count, image shape as stored) from the array headers alone, or None when they do not say (the
    loader then explains)."""
    path = Path(path)
    try:
        with open_input(path) as f:
            if f.read(len(NPY_MAGIC)).startswith(NPY_MAGIC):
                f.seek(0)
                shape = _check_header(f, os.fstat(f.fileno()).st_size, path)[0]
                return (shape[0], shape[1:]) if len(shape) >= 3 else None
            f.seek(0)
            with zipfile.ZipFile(f) as z:
                roles, infos = _roles(z, path)
                shapes = []
                for role in ("x", "x_test"):
                    if role in roles:
                        with z.open(infos[roles[role]]) as fp:
                            shapes.append(_check_header(fp, _member_room(infos[roles[role]]), path)[0])
    except (*_READ_ERRORS, DatasetError):
        return None
    if any(len(s) < 3 or s[1:] != shapes[0][1:] for s in shapes):
        return None
    return sum(s[0] for s in shapes), shapes[0][1:]


def _load_npz(path: Path, f) -> dict[str, np.ndarray]:
    """The arrays the key rules pick from an .npz (open file ``f``), every header checked before any is read."""
    try:
        with zipfile.ZipFile(f) as z:
            roles, infos = _roles(z, path)
            claims = {}
            for role, k in roles.items():
                with z.open(infos[k]) as fp:
                    claims[role] = _check_header(fp, _member_room(infos[k]), path, k)
            n_images = sum(claims[r][0][0] for r in ("x", "x_test") if r in claims and claims[r][0])
            x_shape = claims["x"][0]
            if len(x_shape) >= 2:
                check_budget(path, n_images, math.prod(x_shape[1:]), itemsize=claims["x"][2].itemsize)
            out = {}
            for role, k in roles.items():
                with z.open(infos[k]) as fp:
                    out[role] = _read_array(fp, path, _member_room(infos[k]), k)
            return out
    except _READ_ERRORS as e:
        raise fail(path, f"not a readable .npz archive ({_first_line(e)})") from None


def load_npz(path) -> Dataset:
    """Load a ``.npz`` or ``.npy`` file (told apart by their magic bytes, not the suffix)."""
    path = Path(path)
    with open_input(path) as f:
        magic = f.read(len(NPY_MAGIC))
        f.seek(0)
        if not magic:
            raise fail(path, "empty file")
        if magic.startswith(NPY_MAGIC):
            try:
                x = _read_array(f, path, os.fstat(f.fileno()).st_size, images=True)
            except _READ_ERRORS as e:
                raise fail(path, f"cannot read the array ({_first_line(e)})") from None
            return make_dataset(path, path.stem, x)
        if not magic.startswith(ZIP_MAGIC):
            raise fail(path, "not a NumPy .npy or .npz file")
        a = _load_npz(path, f)
    return make_dataset(path, path.stem, a["x"], a.get("y"), a.get("x_test"), a.get("y_test"))


def _first_line(e: Exception) -> str:
    s = str(e).strip().splitlines()
    return s[0][:200] if s else type(e).__name__
