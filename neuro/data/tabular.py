"""Tabular data sets: rows of numeric features and targets, from CSV files or arrays."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from neuro.data.csv import (
    CsvTable,
    check_columns,
    check_csv_options,
    encode_classes,
    nonfinite_labels,
    read_csv_table,
    resolve_columns,
)
from neuro.data.dataset import ArraySplit, DataSet, check_class_names, check_fraction, split_indices

PathLike = str | os.PathLike
Columns = int | str | Sequence[int | str]


class TabularDataSet(DataSet):
    """Rows of numeric features with regression targets or class ids, split into train / valid / test.

    Build one with :meth:`from_csv` or :meth:`from_arrays`. The splits hand out raw values; the scalings
    fitted by :meth:`normalize_input`, :meth:`standardize_input`, :meth:`normalize_output` and
    :meth:`standardize_output` (statistics of the training split only) are attached as ``input_scaler`` and
    ``output_scaler`` for the network to apply and save.

    Args:
        train: the training split.
        valid: the validation split (``None``: empty).
        test: the test split, or ``None``.
        class_names: the classes (index = class id) for classification, else ``None``.
        feature_names: the input columns' names when a header named them, else ``None``.
        target_names: the target columns' names when a header named them, else ``None``.

    Attributes:
        train, valid, test: the splits (:class:`~neuro.data.ArraySplit`).
        class_names: list of class names or ``None``.
        input_scaler, output_scaler: a :class:`~neuro.data.Scaler` or ``None``.
        feature_names, target_names: column names or ``None``.
    """

    def __init__(
        self,
        train: ArraySplit,
        valid: ArraySplit | None = None,
        test: ArraySplit | None = None,
        class_names: list[str] | None = None,
        feature_names: list[str] | None = None,
        target_names: list[str] | None = None,
    ) -> None:
        super().__init__(train, valid, test, class_names)
        self.feature_names = feature_names
        self.target_names = target_names

    # The four scaling methods come from DataSet; restated here for the return type and the docs.
    def normalize_input(self) -> TabularDataSet:
        """Fit a min–max scaling of each input column to [0, 1] on the training split.

        Returns:
            ``self``, with ``input_scaler`` set (constant columns map to 0).
        """
        super().normalize_input()
        return self

    def standardize_input(self) -> TabularDataSet:
        """Fit a standardisation (mean 0, standard deviation 1) of each input column on the training split.

        Returns:
            ``self``, with ``input_scaler`` set (constant columns map to 0).
        """
        super().standardize_input()
        return self

    def normalize_output(self) -> TabularDataSet:
        """Fit a min–max scaling of each regression target column to [0, 1] on the training split.

        Returns:
            ``self``, with ``output_scaler`` set.

        Raises:
            ValueError: for a classification data set (class ids are not scaled).
        """
        super().normalize_output()
        return self

    def standardize_output(self) -> TabularDataSet:
        """Fit a standardisation of each regression target column on the training split.

        Returns:
            ``self``, with ``output_scaler`` set.

        Raises:
            ValueError: for a classification data set (class ids are not scaled).
        """
        super().standardize_output()
        return self

    def _summary_rows(self) -> list[tuple[str, str]]:
        rows = super()._summary_rows()
        at = 3
        for label, names in (("input names", self.feature_names), ("target names", self.target_names)):
            if names:
                shown = ", ".join(names[:10]) + (f", … ({len(names)} in all)" if len(names) > 10 else "")
                rows.insert(at, (label, shown))
                at += 1
        return rows

    @classmethod
    def from_arrays(
        cls,
        x: Any,
        y: Any,
        valid_frac: float = 0.0,
        seed: int | None = 0,
        *,
        test: tuple[Any, Any] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> TabularDataSet:
        """Build a data set from arrays (held, not copied, when ``x`` is float32 already).

        Args:
            x: inputs, numbers, first axis the samples.
            y: targets: integer class ids (kept as int64) or float values (kept as float32).
            valid_frac: share of the samples held out for validation, in [0, 1): the last ``valid_frac`` of
                a permutation seeded by ``seed`` (see :func:`~neuro.data.dataset.split_indices`).
            seed: seed of that permutation.
            test: optional ``(x_test, y_test)``.
            class_names: optional names of the classes (index = class id).

        Returns:
            The data set.

        Shape:
            ``x``: ``(N, *features)``; ``y``: ``(N,)`` or ``(N, outputs)``.

        Raises:
            TypeError: for non-numeric arrays.
            ValueError: for ``valid_frac`` outside [0, 1), mismatched lengths, no samples, NaN or inf in
                ``x`` or float ``y``, or a test set of another feature shape.
        """
        valid_frac = check_fraction(valid_frac, "valid_frac")
        x, y = _xy_arrays(x, y, "x", "y")
        train_idx, valid_idx = split_indices(len(x), valid_frac, seed)
        train = ArraySplit(x, y, None if len(valid_idx) == 0 else train_idx)
        valid = ArraySplit(x, y, valid_idx)
        test_split = None
        if test is not None:
            if not isinstance(test, (tuple, list)) or len(test) != 2:
                raise ValueError(f"test must be a pair (x_test, y_test), got {type(test).__name__}")
            xt, yt = _xy_arrays(test[0], test[1], "test x", "test y")
            if xt.shape[1:] != x.shape[1:] or yt.shape[1:] != y.shape[1:]:
                raise ValueError(
                    f"test must match the training shapes {x.shape[1:]} / {y.shape[1:]} per sample, got "
                    f"{xt.shape[1:]} / {yt.shape[1:]}"
                )
            test_split = ArraySplit(xt, yt)
        names = None if class_names is None else check_class_names(class_names)
        if names is not None and y.ndim == 1 and y.dtype.kind in "iu" and len(names) <= int(y.max()):
            raise ValueError(
                f"class_names must name the classes of y (ids up to {int(y.max())}), got {len(names)}"
            )
        if names is not None and y.ndim == 2 and y.shape[1] > 1 and len(names) != y.shape[1]:
            raise ValueError(f"class_names must name the {y.shape[1]} columns of one-hot y, got {len(names)}")
        return cls(train, valid, test_split, names)

    @classmethod
    def from_csv(
        cls,
        inputs_path: PathLike,
        outputs_path: PathLike | None = None,
        *,
        target_columns: Columns | None = None,
        valid_frac: float = 0.0,
        test_path: PathLike | tuple[PathLike, PathLike] | None = None,
        header: bool | None = None,
        delimiter: str | None = None,
        seed: int | None = 0,
        classification: bool = False,
        nonfinite: str = "error",
    ) -> TabularDataSet:
        """Read a data set from CSV: an inputs file and an outputs file, or one file with target columns.

        The files are read by :func:`~neuro.data.csv.read_csv_table` (quoted fields, UTF-8 with or without a
        byte-order mark, delimiter and header detection; see :mod:`neuro.data.csv`).

        Args:
            inputs_path: the inputs file (every column a feature), or the single file holding features and
                targets.
            outputs_path: the outputs file (every column a target), row for row with ``inputs_path``; or
                ``None`` when the targets are columns of ``inputs_path``.
            target_columns: with a single file, the target column(s): 0-based index (negative from the end),
                header name, or a sequence of them. Must be ``None`` with ``outputs_path``.
            valid_frac: share held out for validation, in [0, 1): the last ``valid_frac`` of a permutation
                seeded by ``seed``.
            test_path: optional test data in the same layout: one file (single-file layout) or a pair
                ``(inputs, outputs)``; when both the training and the test files have headers, the test
                feature columns are matched by name (in any order) and other names are refused; the target
                columns are matched by name when the test file has the training's, else taken by position.
            header: whether the files' first rows name the columns; ``None`` detects it per file.
            delimiter: field separator of all files; ``None`` detects it per file.
            seed: seed of the validation permutation.
            classification: the (single) target column holds class labels: numbers (ordered by value) or
                names (sorted); ``y`` becomes int64 class ids and ``class_names`` is set. Otherwise the
                targets are float32 rows ``(N, targets)``.
            nonfinite: ``"error"`` refuses NaN, inf and values beyond float32; ``"keep"`` keeps them;
                ``"drop"`` drops the rows holding one (in either file).

        Returns:
            The data set, unscaled (call the ``normalize_*`` / ``standardize_*`` methods to fit scalers).

        Shape:
            x: ``(N, features)`` float32; y: ``(N,)`` int64 (classification) or ``(N, targets)`` float32.

        Raises:
            FileNotFoundError: when a file does not exist.
            ValueError: for ``valid_frac`` outside [0, 1), an unknown option, a bad target column, files
                with different row counts (naming both counts), a test file of another width or with a
                class not in training, or any reading error (naming path, row and column).
        """
        valid_frac = check_fraction(valid_frac, "valid_frac")
        check_csv_options(delimiter, header, nonfinite)
        if not isinstance(classification, bool):
            raise ValueError(f"classification must be True or False, got {classification!r}")
        opts = dict(header=header, delimiter=delimiter, nonfinite=nonfinite, classification=classification)
        if outputs_path is None:
            if target_columns is None:
                raise ValueError(
                    "target_columns must give the target column(s) of the single file (index or header "
                    "name), or pass outputs_path; got None"
                )
            check_columns(target_columns, "target_columns", single=False)
            x, y, names, feat, targ = _read_one_file(inputs_path, target_columns, None, **opts)
        else:
            if target_columns is not None:
                raise ValueError(
                    f"target_columns must be None when outputs_path is given (all of its columns are "
                    f"targets), got {target_columns!r}"
                )
            x, y, names, feat, targ = _read_two_files(inputs_path, outputs_path, None, **opts)

        test_split = None
        if test_path is not None:
            if outputs_path is None:
                if isinstance(test_path, (tuple, list)):
                    raise ValueError(
                        "test_path must be one file in the single-file layout (no outputs_path), got a pair"
                    )
                # with headers on both sides, the test file's target columns are found by name
                xt, yt, _, feat_t, targ_t = _read_one_file(
                    test_path, target_columns, names, by_name=targ, **opts
                )
                what = f"test file {os.fspath(test_path)!r}"
            else:
                if not isinstance(test_path, (tuple, list)) or len(test_path) != 2:
                    raise ValueError(
                        "test_path must be a pair (test inputs file, test outputs file) when outputs_path is "
                        f"given, got {test_path!r}"
                    )
                xt, yt, _, feat_t, targ_t = _read_two_files(test_path[0], test_path[1], names, **opts)
                what = f"test files {os.fspath(test_path[0])!r} / {os.fspath(test_path[1])!r}"
            if xt.shape[1] != x.shape[1]:
                raise ValueError(
                    f"{what} must have {x.shape[1]} feature columns as the training data, got {xt.shape[1]}"
                )
            if yt.shape[1:] != y.shape[1:]:
                raise ValueError(
                    f"{what} must have {y.shape[1]} target columns as the training data, got {yt.shape[1]}"
                )
            xt = _same_columns(xt, feat, feat_t, what, "feature")
            if yt.ndim == 2 and targ_t is not None and targ is not None and set(targ_t) == set(targ):
                yt = _same_columns(yt, targ, targ_t, what, "target")  # else: taken by position
            test_split = ArraySplit(xt, yt)

        if len(x) == 0:
            raise ValueError(f"{os.fspath(inputs_path)!r} has no data rows left after nonfinite='drop'")
        train_idx, valid_idx = split_indices(len(x), valid_frac, seed)
        train = ArraySplit(x, y, None if len(valid_idx) == 0 else train_idx)
        valid = ArraySplit(x, y, valid_idx)
        return cls(train, valid, test_split, names, feat, targ)


def _xy_arrays(x: Any, y: Any, xname: str, yname: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{xname} must hold numbers, got dtype {x.dtype}")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{yname} must hold numbers, got dtype {y.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{xname} must be at least 2-D (samples, features), got shape {x.shape}")
    if y.ndim < 1 or len(y) != len(x):
        raise ValueError(f"{yname} must have one row per sample of {xname} ({len(x)}), got shape {y.shape}")
    if len(x) == 0:
        raise ValueError(f"{xname} must hold at least one sample, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{xname} contains {int((~np.isfinite(x)).sum())} NaN or inf values")
    with np.errstate(over="ignore"):
        x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise ValueError(f"{xname} holds values beyond float32's range (about 3.4e38), which become inf")
    if y.dtype.kind in "biu":
        y = y.astype(np.int64, copy=False)
    else:
        y = y.astype(np.float32, copy=False)
        if not np.isfinite(y).all():
            raise ValueError(f"{yname} contains {int((~np.isfinite(y)).sum())} NaN or inf values")
    return x, y


def _targets(
    table: CsvTable,
    cols: list[int],
    keep: np.ndarray,
    classification: bool,
    class_names: list[str] | None,
) -> tuple[np.ndarray, list[str] | None]:
    """Return the targets of the kept rows: class ids and names, or float32 rows."""
    if classification:
        (t,) = cols
        labels = [lab for lab, k in zip(table.text[t], keep, strict=True) if k]
        lines = table.lines[keep]
        return encode_classes(
            labels, lambda i: f"{table.path!r}: row {lines[i]}, {table.column_label(t)}", class_names
        )
    idx = [table.numeric.index(j) for j in cols]
    with np.errstate(over="ignore"):
        return table.values[keep][:, idx].astype(np.float32), None


def _same_columns(a: np.ndarray, names: list[str] | None, test_names: list[str] | None, what: str,
                  kind: str) -> np.ndarray:
    """The test data's columns in the training data's order, by their header names (by position when either
    file has no header).

    Raises:
        ValueError: when both files name their columns and the names differ.
    """
    if names is None or test_names is None or test_names == names:
        return a
    if sorted(test_names) == sorted(names) and len(set(names)) == len(names):
        return a[:, [test_names.index(n) for n in names]]
    raise ValueError(
        f"{what} has the {kind} columns {test_names}, but the training data has {names}; give the test data "
        "the training data's columns (the same names, in any order)"
    )


def _read_one_file(
    path: PathLike,
    target_columns: Columns,
    class_names: list[str] | None,
    *,
    header: bool | None,
    delimiter: str | None,
    nonfinite: str,
    classification: bool,
    by_name: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str] | None, list[str] | None, list[str] | None]:
    """Read a file of features and target columns. ``by_name``: the target columns' names in the training
    file, which pick them in a file whose header has them all (whatever their position there), else
    ``target_columns``."""
    chosen: list[int] = []

    def pick(names: list[str] | None, width: int) -> list[int]:
        named = by_name is not None and names is not None and all(n in names for n in by_name)
        spec = by_name if named else target_columns  # a test file's target found by name, else by position
        chosen.extend(resolve_columns(spec, names, width, "target_columns"))
        if classification and len(chosen) != 1:
            raise ValueError(f"classification needs one target column, got target_columns={target_columns!r}")
        if len(chosen) == width:
            raise ValueError(
                f"target_columns selects all {width} columns of {os.fspath(path)!r}, leaving no feature "
                "column; pass delimiter= if its fields are not separated by ',', ';', tabs or '|'"
            )
        return chosen if classification else []

    table = read_csv_table(path, delimiter=delimiter, header=header, nonfinite=nonfinite, text_columns=pick)
    keep = np.ones(len(table), dtype=bool)
    if nonfinite == "drop":
        keep = ~table.nonfinite
        if classification:
            keep &= ~nonfinite_labels(table.text[chosen[0]])
    features = [k for k, j in enumerate(table.numeric) if j not in chosen]
    with np.errstate(over="ignore"):
        x = table.values[keep][:, features].astype(np.float32)
    y, names = _targets(table, chosen, keep, classification, class_names)
    feat = targ = None
    if table.names is not None:
        feat = [table.names[table.numeric[k]] for k in features]
        targ = [table.names[j] for j in chosen]
    return x, y, names, feat, targ


def _read_two_files(
    inputs_path: PathLike,
    outputs_path: PathLike,
    class_names: list[str] | None,
    *,
    header: bool | None,
    delimiter: str | None,
    nonfinite: str,
    classification: bool,
) -> tuple[np.ndarray, np.ndarray, list[str] | None, list[str] | None, list[str] | None]:
    def all_text(names: list[str] | None, width: int) -> list[int]:
        if classification and width != 1:
            raise ValueError(
                f"classification needs one target column, but outputs file {os.fspath(outputs_path)!r} has "
                f"{width}; pass delimiter= if it is not separated by ',', ';', tabs or '|'"
            )
        return [0] if classification else []

    tx = read_csv_table(inputs_path, delimiter=delimiter, header=header, nonfinite=nonfinite)
    ty = read_csv_table(
        outputs_path, delimiter=delimiter, header=header, nonfinite=nonfinite, text_columns=all_text
    )
    if len(tx) != len(ty):
        raise ValueError(
            f"inputs file {os.fspath(inputs_path)!r} has {len(tx)} data rows but outputs file "
            f"{os.fspath(outputs_path)!r} has {len(ty)}; they must match row for row"
        )
    keep = np.ones(len(tx), dtype=bool)
    if nonfinite == "drop":
        keep = ~(tx.nonfinite | ty.nonfinite)
        if classification:
            keep &= ~nonfinite_labels(ty.text[0])
    with np.errstate(over="ignore"):
        x = tx.values[keep].astype(np.float32)
    y, names = _targets(ty, list(range(ty.width)), keep, classification, class_names)
    return x, y, names, tx.names, ty.names
