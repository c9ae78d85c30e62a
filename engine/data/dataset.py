"""The one Dataset type every loader returns, and the one error every loader raises."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


class DatasetError(Exception):
    """Bad input. The message is one line naming the file and what is wrong, e.g.
    ``train-images-idx3-ubyte.gz: truncated: header claims 60000 images of 28x28, file holds 1234``."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images as float32 in [0, 1], shape (N, C, H, W); labels int64 (N,) or None.

    ``source`` is the path the user picked (or ``builtin:<name>``); the file's own train/test split is kept,
    otherwise loaders make a deterministic 10% held-out split (``split_holdout``)."""

    name: str
    source: str
    x_train: np.ndarray  # (N, C, H, W) float32 in [0, 1]
    x_test: np.ndarray  # (M, C, H, W) float32 in [0, 1]
    y_train: np.ndarray | None = None  # (N,) int64
    y_test: np.ndarray | None = None  # (M,) int64
    class_names: tuple[str, ...] | None = None
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
        """A short content hash (sha1 of shapes + a strided sample of pixels and labels), cached."""
        if not self._fingerprint:
            h = hashlib.sha1()
            for a in (self.x_train, self.x_test, self.y_train, self.y_test):
                if a is None:
                    h.update(b"none")
                    continue
                h.update(str(a.shape).encode())
                flat = a.reshape(-1)
                step = max(1, flat.size // 100_000)
                h.update(np.ascontiguousarray(flat[::step]).tobytes())
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

    def summary(self) -> str:
        c, h, w = self.image_shape
        classes = f", {self.n_classes} classes" if self.y_train is not None else ", unlabelled"
        return f"{self.name}: {len(self.x_train):,} train / {len(self.x_test):,} test, {c}×{h}×{w}{classes}"


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
