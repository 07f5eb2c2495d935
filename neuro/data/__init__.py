"""Data sets: MNIST IDX files, CSV files, folders of images, and scikit-learn's bundled digits."""

from neuro.data.csv import load_csv
from neuro.data.digits import load_digits
from neuro.data.images import load_image_folder
from neuro.data.mnist import load_idx, load_mnist
from neuro.data.split import one_hot, train_test_split

__all__ = [
    "load_csv",
    "load_digits",
    "load_idx",
    "load_image_folder",
    "load_mnist",
    "one_hot",
    "train_test_split",
]
