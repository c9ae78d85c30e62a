"""Dataset loading: one loader per format, all returning ``Dataset`` or raising ``DatasetError``.

``load_dataset(path)`` picks the loader (IDX, .npz/.npy, CSV, image folder); ``default_dataset()`` is
Fashion-MNIST when installed, else the built-in Shapes set (``make_shapes``). Nothing here imports Qt.
"""

from .builtin import default_dataset, fashion_mnist_path, make_shapes, shape_factors
from .dataset import Dataset, DatasetError, as_float01, split_holdout
from .progress import LoadCancelled, LoadProgress
from .registry import (
    FILE_DIALOG_FILTER,
    SUPPORTED_SUFFIXES,
    adjust_images,
    detect_format,
    load_dataset,
    peek_dataset,
)
from .resize import RESOLUTIONS

__all__ = [
    "Dataset",
    "DatasetError",
    "FILE_DIALOG_FILTER",
    "LoadCancelled",
    "LoadProgress",
    "RESOLUTIONS",
    "SUPPORTED_SUFFIXES",
    "adjust_images",
    "as_float01",
    "default_dataset",
    "detect_format",
    "fashion_mnist_path",
    "load_dataset",
    "make_shapes",
    "peek_dataset",
    "shape_factors",
    "split_holdout",
]
