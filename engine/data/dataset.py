"""The one Dataset type every loader returns, and the one error every loader raises."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


PIXEL_SCALE = 255.0  # uint8 pixels are value / 255 in [0, 1]


def as_float01(a: np.ndarray) -> np.ndarray:
    """Stored pixels as float32 in [0, 1]: uint8 divided by 255 (exactly what ``engine.batches.to_float`` gives on
    the CPU), float32 returned as it is. For previews, the GUI and tests; training converts batch by batch."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        out = np.empty(a.shape, np.float32)
        np.divide(a, np.float32(PIXEL_SCALE), out=out, dtype=np.float32)
        return out
    return np.asarray(a, dtype=np.float32)


class DatasetError(Exception):
    """Bad input. The message is one line naming the file and what is wrong, e.g.
    ``train-images-idx3-ubyte.gz: truncated: header claims 60000 images of 28x28, file holds 1234``."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images (N, C, H, W) as uint8 (pixel value / 255 is the intensity in [0, 1]) or, only when the source's values
    are not all on the 1/255 grid, float32 in [0, 1]; labels int64 (N,) or None. ``as_float01`` gives floats on the
    host; the trainer converts each batch on its device (``engine.batches.to_float``): a quarter of the memory.

    ``source`` is the path the user picked (or ``builtin:<name>``); the file's own train/test split is kept,
    otherwise loaders make a deterministic 10% held-out split (``split_holdout``). ``note`` says what loading did
    to the images, when it did more than read them (e.g. ``"1,204 images of 17 sizes → 64×64 RGB"``)."""

    name: str
    source: str
    x_train: np.ndarray  # (N, C, H, W) uint8, or float32 in [0, 1]
    x_test: np.ndarray  # (M, C, H, W) same dtype as x_train
    y_train: np.ndarray | None = None  # (N,) int64
    y_test: np.ndarray | None = None  # (M,) int64
    class_names: tuple[str, ...] | None = None
    note: str = ""
    _fingerprint: list = field(default_factory=list, repr=False, compare=False)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x_train.shape[1:])  # (C, H, W)

    @property
    def n_classes(self) -> int:
        if self.class_names:
            return len(self.class_names)
        if self.y_train is None:
            return 0
        return int(max(self.y_train.max(initial=-1), -1 if self.y_test is None else self.y_test.max(initial=-1))) + 1

    def fingerprint(self) -> str:
        """A short content hash (sha1 of shapes + a strided sample of pixels and labels), cached. Pixels are hashed
        as float32 in [0, 1] whatever the storage, so a dataset keeps its fingerprint across storage dtypes."""
        if not self._fingerprint:
            h = hashlib.sha1()
            for a in (self.x_train, self.x_test, self.y_train, self.y_test):
                if a is None:
                    h.update(b"none")
                    continue
                h.update(str(a.shape).encode())
                flat = a.reshape(-1)
                step = max(1, flat.size // 100_000)
                sample = flat[::step]
                h.update(np.ascontiguousarray(as_float01(sample) if a.dtype == np.uint8 else sample).tobytes())
            self._fingerprint.append(h.hexdigest()[:16])
        return self._fingerprint[0]

    def identity(self) -> dict:
        """What a checkpoint records about the data it was trained on (plain Python types)."""
        return {
            "name": self.name,
            "source": self.source,
            "image_shape": list(self.image_shape),
            "n_train": int(len(self.x_train)),
            "n_test": int(len(self.x_test)),
            "class_names": list(self.class_names) if self.class_names else None,
            "fingerprint": self.fingerprint(),
        }

    def summary(self, name: str | None = None) -> str:
        """One line: the name (``name`` if given: the CLI passes it quoted), the split sizes, image shape and
        classes."""
        c, h, w = self.image_shape
        classes = f", {self.n_classes} classes" if self.y_train is not None else ", unlabelled"
        return f"{self.name if name is None else name}: {len(self.x_train):,} train / {len(self.x_test):,} test, {c}×{h}×{w}{classes}"


def split_holdout(x: np.ndarray, y: np.ndarray | None, fraction: float = 0.1, seed: int = 0):
    """Deterministic held-out split for files without their own: returns x_train, x_test, y_train, y_test."""
    n = len(x)
    n_test = max(1, int(round(n * fraction))) if n > 1 else 0
    perm = np.random.default_rng(seed).permutation(n)
    test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return (
        x[train_idx],
        x[test_idx],
        None if y is None else y[train_idx],
        None if y is None else y[test_idx],
    )
