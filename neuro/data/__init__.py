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

from typing import Any

from neuro.data.dataset import ArraySplit, DataSet, Split

# Everything else loads on first use (PEP 562), so that `import neuro` does not read the CSV, image and text
# readers it may never need: `neuro.data.ImageDataSet` imports neuro.data.images then.
_LAZY = {
    "Augment": "augment",
    "rotate": "augment",
    "load_csv": "csv",
    "load_digits": "digits",
    "ImageDataSet": "images",
    "ImageSplit": "images",
    "load_image_folder": "images",
    "load_idx": "mnist",
    "load_mnist": "mnist",
    "Scaler": "scaling",
    "one_hot": "split",
    "train_test_split": "split",
    "TabularDataSet": "tabular",
    "TextDataSet": "text",
    "TextSplit": "text",
    "Vocabulary": "text",
    "pad_sequences": "text",
}


_SUBMODULES = frozenset(
    ("augment", "csv", "digits", "idx_to_folder", "images", "mnist", "scaling", "split", "tabular", "text")
)


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBMODULES:  # neuro.data.mnist and the like, as before they loaded lazily
        return importlib.import_module(f"neuro.data.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neuro.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"neuro.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
    "pad_sequences",
    "rotate",
    "train_test_split",
]
