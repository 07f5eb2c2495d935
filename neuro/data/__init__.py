"""Data: data sets with train / valid / test splits, loaders of CSV, IDX (MNIST) and image folders.

- :class:`TabularDataSet` (CSV files or arrays) and :class:`ImageDataSet` (folders of class folders) hold
  :class:`Split` objects that hand out float32 batches in the order of an index array; their scalers
  (:class:`Scaler`) are fitted on the training split. ``print(data)`` (or ``data.summary()``) describes a
  data set: sizes, shapes, classes and scaler statistics.
- :meth:`ImageDataSet.load_images` reads image files for prediction as the data set reads its own;
  :class:`Augment` flips and rotates training images with probabilities (:func:`rotate` turns images by
  given angles).
- :func:`load_csv`, :func:`load_idx`, :func:`load_mnist`, :func:`load_image_folder`, :func:`load_digits`
  return arrays.
- :func:`train_test_split` follows scikit-learn; :func:`one_hot` encodes class ids.

``python -m neuro.data.idx_to_folder`` writes an IDX pair as an image folder.
"""

from neuro.data.augment import Augment, rotate
from neuro.data.csv import load_csv
from neuro.data.dataset import ArraySplit, DataSet, Split
from neuro.data.digits import load_digits
from neuro.data.images import ImageDataSet, ImageSplit, load_image_folder
from neuro.data.mnist import load_idx, load_mnist
from neuro.data.scaling import Scaler
from neuro.data.split import one_hot, train_test_split
from neuro.data.tabular import TabularDataSet
from neuro.data.text import TextDataSet, TextSplit, Vocabulary

__all__ = [
    "ArraySplit",
    "Augment",
    "DataSet",
    "ImageDataSet",
    "ImageSplit",
    "Scaler",
    "Split",
    "TabularDataSet",
    "TextDataSet",
    "TextSplit",
    "Vocabulary",
    "load_csv",
    "load_digits",
    "load_idx",
    "load_image_folder",
    "load_mnist",
    "one_hot",
    "rotate",
    "train_test_split",
]
