"""CSV data sets: numeric columns, one of which is the target."""

from __future__ import annotations

import os

import numpy as np


def load_csv(
    path: str | os.PathLike,
    target_column: int | str = -1,
    delimiter: str = ",",
    header: bool | None = None,
    classification: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Load a CSV file of numbers (the target column may hold class names).

    Args:
        path: the file.
        target_column: index or (with a header) name of the target column.
        delimiter: field separator.
        header: whether the first row names the columns; ``None`` detects it (a first row that is not
            all numbers is a header).
        classification: map the target to class ids ``0..C-1`` (sorted names); else keep it as float.

    Returns:
        ``(x, y, class_names)``: x float32 ``(N, features)``; y int64 class ids or float32 values;
        ``class_names`` the sorted distinct targets for classification, else ``None``.

    Raises:
        ValueError: for ragged rows, non-numeric features or an unknown target column.
    """
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\r\n").split(delimiter) for line in f if line.strip()]
    if not rows:
        raise ValueError(f"path {str(path)!r} holds no rows")
    if header is None:
        header = not all(_is_number(v) for v in rows[0])
    names = [c.strip() for c in rows[0]] if header else None
    body = rows[1:] if header else rows
    width = len(rows[0])
    for i, r in enumerate(body):
        if len(r) != width:
            raise ValueError(f"row {i + 1 + bool(header)} must have {width} fields, got {len(r)}")
    if isinstance(target_column, str):
        if names is None or target_column not in names:
            raise ValueError(f"target_column {target_column!r} is not a column name ({names})")
        t = names.index(target_column)
    else:
        if not -width <= target_column < width:
            raise ValueError(
                f"target_column must be in [{-width}, {width - 1}] for {width} columns, got {target_column}"
            )
        t = target_column % width
    try:
        x = np.array([[float(v) for j, v in enumerate(r) if j != t] for r in body], dtype=np.float32)
    except ValueError as exc:
        raise ValueError(f"path {str(path)!r}: feature columns must be numbers ({exc})") from None
    targets = [r[t].strip() for r in body]
    if not classification:
        return x, np.array([float(v) for v in targets], dtype=np.float32), None
    if all(_is_number(v) for v in targets):
        values = sorted({float(v) for v in targets})
        class_names = [_fmt(v) for v in values]
        index = {v: i for i, v in enumerate(values)}
        y = np.array([index[float(v)] for v in targets], dtype=np.int64)
    else:
        class_names = sorted(set(targets))
        index = {v: i for i, v in enumerate(class_names)}
        y = np.array([index[v] for v in targets], dtype=np.int64)
    return x, y, class_names


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _fmt(v: float) -> str:
    return str(int(v)) if v == int(v) else str(v)
