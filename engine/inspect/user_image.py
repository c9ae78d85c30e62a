"""An image file of the user's through a trained model: read by the dataset's own rules (engine/data/images.py:
scaled to cover the model's size, centre-cropped, grey or RGB as the model takes), then q(z|x) and the
reconstruction E[x | z = μ(x)]. A file the model cannot take raises ``ImageRefused`` with one line naming it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.dataset import DatasetError
from ..data.images import read_image
from ..files import quote
from ..snapshot import SnapshotModel


class ImageRefused(ValueError):
    """One line: the file and why the model cannot take it."""


@dataclass(frozen=True)
class EncodedImage:
    path: str
    x: np.ndarray  # (1, C, H, W) uint8, the image as the model sees it
    mu: np.ndarray  # (d,) float32 mean of q(z|x)
    log_var: np.ndarray  # (d,) float32 log variance of q(z|x)
    reconstruction: np.ndarray  # (C, H, W) E[x | z = μ] in [0, 1]
    label: int | None  # the class a conditional model was given


def image_for_model(path, image_shape: tuple[int, int, int]) -> np.ndarray:
    """The file as a (1, C, H, W) uint8 batch of one for a model of ``image_shape``; ImageRefused if it cannot be."""
    c, h, w = image_shape
    if c not in (1, 3):
        raise ImageRefused(
            f"{quote(Path(path).name)}: the model takes {c}-channel images; an image file gives grey or RGB"
        )
    try:
        return read_image(path, (h, w), c)[None]
    except DatasetError as e:
        raise ImageRefused(str(e)) from None


def encode_image(model: SnapshotModel, path, label: int | None = None) -> EncodedImage:
    """q(z|x) (q(z|x, y) with y = ``label`` for a conditional model) and the reconstruction of an image file."""
    if model.n_classes and label is None:
        raise ImageRefused(
            f"{quote(Path(path).name)}: the model is conditional on a class label (0..{model.n_classes - 1}): "
            "choose the class first"
        )
    return encode_array(model, image_for_model(path, model.config.image_shape), str(path), label)


def encode_array(model: SnapshotModel, x: np.ndarray, path: str = "", label: int | None = None) -> EncodedImage:
    """q(z|x) and the reconstruction of one image x (1, C, H, W) as the model takes it (e.g. again, with newer
    weights)."""
    y = None if not model.n_classes else int(label)
    mu, log_var = model.encode(x, y)
    return EncodedImage(path, x, mu[0], log_var[0], model.decode(mu, y)[0], y)
