"""Dataset loading: one loader per format, all returning ``Dataset`` or raising ``DatasetError``.

``load_dataset(path)`` picks the loader (IDX, .npz/.npy, CSV, image folder); ``default_dataset()`` is
Fashion-MNIST when installed, else the built-in Shapes set (``make_shapes``). Nothing here imports Qt.
"""
from .builtin import default_dataset, fashion_mnist_path, make_shapes, shape_factors
from .dataset import Dataset, DatasetError, split_holdout
from .registry import FILE_DIALOG_FILTER, SUPPORTED_SUFFIXES, detect_format, load_dataset

__all__ = [
    "Dataset",
    "DatasetError",
    "FILE_DIALOG_FILTER",
    "SUPPORTED_SUFFIXES",
    "default_dataset",
    "detect_format",
    "fashion_mnist_path",
    "load_dataset",
    "make_shapes",
    "shape_factors",
    "split_holdout",
]
