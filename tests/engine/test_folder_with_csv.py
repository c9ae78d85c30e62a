"""A folder of class sub-folders of images with a CSV beside them (metadata.csv: a common layout) is an image
folder; a CSV is the data only when no images are there. An IDX folder named fashion-mnist is "Fashion-MNIST"."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.data import DatasetError, load_dataset
from engine.data.registry import detect_format


def image_folder_with_metadata(root, per_class=6, classes=("circle", "square")):
    rows = ["file,label"]
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            px = np.full((8, 8), 40 + 150 * k + i, np.uint8)
            Image.fromarray(px).save(root / name / f"{name}_{i:03d}.png")
            rows.append(f"{name}/{name}_{i:03d}.png,{k}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


def test_class_folders_beside_a_csv_are_read_as_images_and_the_note_says_so(tmp_path):
    root = image_folder_with_metadata(tmp_path / "shapes")
    assert detect_format(root) == "images"
    ds = load_dataset(root)
    assert len(ds.x_train) + len(ds.x_test) == 12 and ds.n_classes == 2
    assert list(ds.class_names) == ["circle", "square"]
    assert "metadata.csv" in ds.note and "not read" in ds.note, ds.note


def test_train_and_test_folders_of_classes_beside_a_csv_are_images(tmp_path):
    root = tmp_path / "split"
    image_folder_with_metadata(root / "train")
    image_folder_with_metadata(root / "test", per_class=2)
    (root / "labels.csv").write_text("a,b\n1,2\n")
    assert detect_format(root) == "images"


def test_a_lone_csv_is_still_the_data_and_loose_csvs_without_a_train_file_are_refused(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    (one / "data.csv").write_text("label," + ",".join(f"p{i}" for i in range(4)) + "\n" + "1,0,255,0,255\n" * 12)
    assert detect_format(one) == "csv"
    assert load_dataset(one).image_shape == (1, 2, 2)
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a.csv", "b.csv"):
        (two / name).write_text("1,2\n")
    with pytest.raises(DatasetError, match="holds 2 CSV files"):
        load_dataset(two)


def test_fashion_mnist_opened_by_its_folder_has_the_default_datasets_name(tmp_path):
    from tests.engine.test_data_idx import make_set

    make_set(tmp_path / "fashion-mnist")
    make_set(tmp_path / "my-digits")
    assert load_dataset(tmp_path / "fashion-mnist").name == "Fashion-MNIST"
    assert load_dataset(tmp_path / "my-digits").name == "my-digits"  # other folders keep their own name
