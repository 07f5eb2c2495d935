"""CSV files of numbers: a robust reader built on Python's ``csv`` module, and :func:`load_csv`.

What the reader accepts and how it decides:

- **Encoding**: UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8"); anything else is an error.
- **Quoting**: standard double-quoted fields (a delimiter or a newline inside quotes, ``""`` for a quote).
- **Delimiter**: given, or detected with :class:`csv.Sniffer` among ``,`` ``;`` tab and ``|`` from the
  first 4 KiB (at most 100 lines) of the file. A file in which none of them occurs has one column; a file in
  which some occur but no delimiter can be determined is an error asking for ``delimiter=``, and so is a
  file that parses to a single column although its rows hold another of them.
- **Trailing delimiter**: when every row ends with an empty field (``1,2,``), that empty column is dropped.
- **Header**: ``header=None`` detects it from the first 100 rows. A first row of numbers is data. A first
  row of text only is a header when at least one of its columns holds numbers in the rows below. Anything
  else (a first row mixing numbers and text, as a header-less file with class names in its target column
  has; or text above text) is an error asking for ``header=True`` or ``header=False``: a data row is never
  dropped silently.
- **Blank lines** are skipped. Rows must all have the same number of fields.
- **Errors** name the file, the row (1-based line number of the row's start, as an editor shows it) and
  the column (0-based index, as ``target_column`` takes it, and its name when there is a header).
- **Non-finite values**: ``nan``, ``inf`` and numbers beyond the float32 range (about ±3.4e38) are refused
  by default (``nonfinite="error"``); ``"keep"`` keeps them (as NaN / ±inf) and ``"drop"`` drops their rows.

Reading never writes to the file; special files (pipes, devices) are refused without being opened.
"""

from __future__ import annotations

import array
import csv
import decimal
import math
import os
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from neuro.data._files import open_regular

_CANDIDATES = ",;\t|"
_SAMPLE_CHARS = 4096  # csv.Sniffer's quote regex is quadratic in its sample: keep it small
_SAMPLE_LINES = 100
_DETECT_ROWS = 100
NONFINITE_POLICIES = ("error", "keep", "drop")


@dataclass
class CsvTable:
    """The numeric content of one CSV file, as read by :func:`read_csv_table`.

    Attributes:
        path: the file, as given.
        names: the header's cells, or ``None`` without a header.
        width: number of columns.
        values: float64 ``(rows, len(numeric))``: the numeric columns, in the order of ``numeric``.
        numeric: indices of the numeric columns.
        text: stripped cells of the text columns, by column index.
        lines: int64 ``(rows,)``: line number in the file where each data row starts.
        nonfinite: bool ``(rows,)``: rows holding a non-finite value (after float32 conversion).
        delimiter: the delimiter used.
    """

    path: str
    names: list[str] | None
    width: int
    values: np.ndarray
    numeric: list[int]
    text: dict[int, list[str]]
    lines: np.ndarray
    nonfinite: np.ndarray
    delimiter: str

    def __len__(self) -> int:
        return len(self.lines)

    def column_label(self, j: int) -> str:
        """Describe column ``j`` for an error message: its index and, with a header, its name."""
        if self.names is not None:
            return f"column {j} ({self.names[j]!r})"
        return f"column {j}"

    def column(self, j: int) -> np.ndarray:
        """Return numeric column ``j`` as float64 ``(rows,)``."""
        return self.values[:, self.numeric.index(j)]


def check_csv_options(delimiter: Any, header: Any, nonfinite: Any) -> None:
    """Check the reader's options.

    Args:
        delimiter: ``None`` or one character other than a quote, a newline or a space.
        header: ``None``, ``True`` or ``False``.
        nonfinite: one of ``"error"``, ``"keep"``, ``"drop"``.

    Raises:
        ValueError: naming the bad option.
    """
    if delimiter is not None and (
        not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n ' or delimiter.isalnum()
    ):
        raise ValueError(
            f"delimiter must be None (detect) or one character such as ',' ';' '\\t' '|', got {delimiter!r}"
        )
    if header is not None and not isinstance(header, bool):
        raise ValueError(f"header must be None (detect), True or False, got {header!r}")
    if nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _detect_delimiter(sample: str, path: str) -> str:
    lines = [ln for ln in sample.splitlines() if ln.strip()][:_SAMPLE_LINES]
    text = "\n".join(lines)
    present = [c for c in _CANDIDATES if c in text]
    if not present:
        return ","  # one column: no candidate occurs at all
    try:
        found = csv.Sniffer().sniff(text, delimiters=_CANDIDATES).delimiter
    except csv.Error:
        found = None
    if found is not None and len(found) == 1 and found in _CANDIDATES:
        return found
    if len(present) == 1:
        return present[0]  # ragged rows, say; the row check reports them with their line numbers
    shown = " ".join(repr(c) for c in present)
    raise ValueError(
        f"{path!r}: cannot detect the delimiter (the file holds {shown}); pass delimiter=, "
        "for instance delimiter=';'"
    )


def _check_single_column(
    records: list[tuple[int, list[str]]], delimiter: str, path: str, given: bool
) -> None:
    """Refuse a file that parses to one column although its lines hold another candidate delimiter."""
    if not records or any(len(cells) != 1 for _, cells in records):
        return
    others = sorted({c for _, cells in records for c in _CANDIDATES if c != delimiter and c in cells[0]})
    if others:
        how = f"with delimiter={delimiter!r}" if given else "with the detected delimiter"
        raise ValueError(
            f"{path!r} parses to a single column {how}, but its rows hold {' '.join(map(repr, others))}; "
            f"pass delimiter=, for instance delimiter={others[0]!r}"
        )


def _detect_header(records: list[tuple[int, list[str]]], path: str) -> bool:
    first = [c.strip() for c in records[0][1]]
    filled = [c for c in first if c]
    if not filled or all(_is_number(c) for c in filled):
        return False  # numbers (an empty cell is reported as such when the row is read as data)
    line = records[0][0]
    if any(_is_number(c) for c in filled):
        raise ValueError(
            f"{path!r}: cannot tell whether row {line} is a header: it mixes numbers and text; "
            "pass header=True or header=False"
        )
    rest = records[1:]
    if not rest:
        raise ValueError(
            f"{path!r} holds a single row, of text: a header without data? pass header=True or header=False"
        )
    for j, cell in enumerate(first):
        later = [cells[j].strip() for _, cells in rest if j < len(cells) and cells[j].strip()]
        if cell and later and all(_is_number(v) for v in later):
            return True  # a name above numbers
    raise ValueError(
        f"{path!r}: cannot tell whether row {line} is a header: its columns hold text in the following rows "
        "too; pass header=True or header=False"
    )


def read_csv_table(
    path: str | os.PathLike,
    *,
    delimiter: str | None = None,
    header: bool | None = None,
    nonfinite: str = "error",
    text_columns: Callable[[list[str] | None, int], Collection[int]] | None = None,
) -> CsvTable:
    """Read a CSV file whose cells are numbers, except for chosen text columns.

    Args:
        path: the file (UTF-8, optionally with a byte-order mark).
        delimiter: the field separator, or ``None`` to detect it.
        header: whether the first row names the columns; ``None`` detects it (see the module docstring).
        nonfinite: ``"error"`` refuses NaN, inf and values beyond float32; ``"keep"`` and ``"drop"`` record
            them in ``CsvTable.nonfinite`` (the caller drops the rows).
        text_columns: called with the header names (or ``None``) and the number of columns once they are
            known; returns the columns to keep as text. It may raise to refuse a column choice early.

    Returns:
        The :class:`CsvTable`.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: for a special file, bad options, text that is not UTF-8, malformed CSV, an undetectable
            delimiter or header, an empty or header-only file, rows of different lengths, an empty or
            non-numeric cell, or (``nonfinite="error"``) a non-finite value; each naming the path and, for
            a cell, its row and column.
    """
    check_csv_options(delimiter, header, nonfinite)
    name = os.fspath(path)
    with open_regular(path) as raw:
        try:
            return _read(raw, name, delimiter, header, nonfinite, text_columns)
        except csv.Error as exc:  # pragma: no cover - _records names the row of every csv.Error
            raise ValueError(f"{name!r} is not valid CSV: {exc}") from None


def _read(
    raw: BinaryIO,
    path: str,
    delimiter: str | None,
    header: bool | None,
    nonfinite: str,
    text_columns: Callable[[list[str] | None, int], Collection[int]] | None,
) -> CsvTable:
    given = delimiter is not None
    if delimiter is None:
        sample = _sample(raw, path)
        if len(sample) == _SAMPLE_CHARS and "\n" in sample:
            sample = sample[: sample.rindex("\n")]  # drop a partial last line
        delimiter = _detect_delimiter(sample, path)
        raw.seek(0)
    lines = _Lines(raw, path)
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, skipinitialspace=True)
    records = _records(reader, lines, path, delimiter)

    head: list[tuple[int, list[str]]] = []
    for rec in records:
        head.append(rec)
        if len(head) >= _DETECT_ROWS:
            break
    if not head:
        raise ValueError(f"{path!r} holds no rows (an empty file)")
    _check_single_column(head, delimiter, path, given)

    def ends_empty(recs: list[tuple[int, list[str]]]) -> bool:
        return bool(recs) and all(len(c) > 1 and not c[-1].strip() for _, c in recs)

    if header is None:
        probe = [(line, cells[:-1]) for line, cells in head] if ends_empty(head) else head
        header = _detect_header(probe, path)

    names: list[str] | None = None
    if header:
        _, cells = head.pop(0)
        if not head:
            raise ValueError(f"{path!r} has a header row but no data rows")
        trailing = ends_empty(head)
        extra = len(cells) == len(head[0][1]) + (0 if trailing else 1)
        if extra and len(cells) > 1 and not cells[-1].strip():
            cells = cells[:-1]  # the header row ends with a delimiter
        names = [c.strip() for c in cells]
        width = len(names)
    else:
        trailing = ends_empty(head)
        width = len(head[0][1]) - trailing

    textset = set(text_columns(names, width)) if text_columns is not None else set()
    numeric = [j for j in range(width) if j not in textset]
    text_out: dict[int, list[str]] = {j: [] for j in sorted(textset)}
    values = array.array("d")
    lines = array.array("q")
    label = _labeller(names)

    def rows() -> Iterator[tuple[int, list[str]]]:
        yield from head
        yield from records

    for line, cells in rows():
        if trailing:
            if len(cells) == width + 1 and not cells[-1].strip():
                cells = cells[:-1]
            elif len(cells) == width + 1:
                raise ValueError(
                    f"{path!r}: row {line} ends with {cells[-1].strip()!r} where the other rows end with an "
                    "empty field (a trailing delimiter)"
                )
        if len(cells) != width:
            raise ValueError(f"{path!r}: row {line} must have {width} fields, got {len(cells)}")
        try:
            values.extend([float(cells[j]) for j in numeric])
        except ValueError:
            for j in numeric:
                cell = cells[j].strip()
                if not cell:
                    raise ValueError(
                        f"{path!r}: row {line}, {label(j)} is empty; expected a number"
                    ) from None
                if not _is_number(cell):
                    raise ValueError(
                        f"{path!r}: row {line}, {label(j)}: expected a number, got {_short(cell)}"
                    ) from None
            raise  # pragma: no cover - float() failed on a cell that _is_number accepts
        for j, out in text_out.items():
            cell = cells[j].strip()
            if not cell:
                raise ValueError(f"{path!r}: row {line}, {label(j)} is empty")
            out.append(cell)
        lines.append(line)

    n = len(lines)
    if n == 0:
        raise ValueError(f"{path!r} has a header row but no data rows")
    table = np.frombuffer(values, dtype=np.float64).reshape(n, len(numeric)) if numeric else np.empty((n, 0))
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~np.isfinite(table.astype(np.float32))
    bad_rows = bad.any(axis=1)
    line_arr = np.frombuffer(lines, dtype=np.int64).copy()
    if nonfinite == "error" and bad_rows.any():
        r, k = np.argwhere(bad)[0]
        v = float(table[r, k])
        what = f"{v!r}" if not math.isfinite(v) else f"{v!r}, beyond the float32 range ±3.4e38"
        raise ValueError(
            f"{path!r}: row {line_arr[r]}, {label(numeric[k])}: non-finite value ({what}); "
            "pass nonfinite='keep' or nonfinite='drop'"
        )
    return CsvTable(path, names, width, table, numeric, text_out, line_arr, bad_rows, delimiter)


_BOM = b"\xef\xbb\xbf"
_BARE_CR = re.compile(r"(?<=\r)(?!\n)")  # a line break that is a lone carriage return
_BARE_CR_BYTES = re.compile(rb"\r(?!\n)")


def _not_utf8(path: str, exc: UnicodeDecodeError, data: bytes, line: int, offset: int) -> ValueError:
    """The error for bytes that are not UTF-8: the line, the byte in it and the byte in the file."""
    before = data[: exc.start]
    breaks = len(_BARE_CR_BYTES.findall(before))  # lone carriage returns end lines too
    last = max(before.rfind(b"\r"), before.rfind(b"\n"))
    column = exc.start - last  # 1-based byte of the line
    return ValueError(
        f"{path!r} is not UTF-8 text: {exc.reason} at line {line + breaks}, byte {column} of the line (byte "
        f'{offset + exc.start} of the file, counting from 0); save it as UTF-8 ("CSV UTF-8")'
    )


def _sample(raw: BinaryIO, path: str) -> str:
    """The first :data:`_SAMPLE_CHARS` characters of the file (byte-order mark dropped), for detection."""
    data = raw.read(_SAMPLE_CHARS * 4)
    skip = len(_BOM) if data.startswith(_BOM) else 0
    data = data[skip:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end < len(data) and exc.reason != "unexpected end of data":
            raise _not_utf8(path, exc, data, 1 + data[: exc.start].count(b"\n"), skip) from None
        text = data[: exc.start].decode("utf-8")  # a character cut by the block's end
    return text[:_SAMPLE_CHARS]


class _Lines:
    """The lines of a UTF-8 file (byte-order mark dropped, ends kept), as ``csv.reader`` reads them.

    Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (as ``open(newline="")`` splits them), so that their
    count is the line number an editor shows. Bytes that are not UTF-8 raise ``ValueError`` naming the
    line, the byte in it and the byte in the file. The lines handed out since the caller last cleared
    :attr:`record` are kept there, to check a record that ends at the end of the file.
    """

    def __init__(self, raw: BinaryIO, path: str) -> None:
        self._raw = raw
        self._path = path
        self.exhausted = False
        self.record: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self._lines()

    def _lines(self) -> Iterator[str]:
        keep = self.record.append
        number = offset = 0
        for data in self._raw:
            start = offset
            offset += len(data)
            if start == 0 and data.startswith(_BOM):
                data, start = data[len(_BOM) :], len(_BOM)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(self._path, exc, data, number + 1, start) from None
            ending = 2 if text.endswith("\r\n") else 1 if text.endswith(("\n", "\r")) else 0
            if text.find("\r", 0, len(text) - ending) < 0:  # no lone carriage return before the line's end
                number += 1
                keep(text)
                yield text
            else:  # lone carriage returns end lines too
                for piece in _BARE_CR.split(text):
                    if piece:
                        number += 1
                        keep(piece)
                        yield piece
        self.exhausted = True


def _unclosed_quote(text: str, delimiter: str) -> tuple[int, int] | None:
    """``(field index, offset)`` of a quoted field of one record that is never closed, or None.

    Follows ``csv.reader``'s rules (``skipinitialspace``, ``""`` inside quotes, characters after a closing
    quote belong to the field): a quote opens a field only as its first character after spaces.
    """
    d = re.escape(delimiter)
    opening = re.compile(r" *\"")
    quoted = re.compile(r'[^"]*(?:""[^"]*)*(")?')  # the rest of a quoted field, and its closing quote
    rest = re.compile(rf"[^{d}\r\n]*")  # unquoted text up to the end of the field
    pos, field = 0, 0
    while pos < len(text):
        m = opening.match(text, pos)
        if m:
            q = quoted.match(text, m.end())
            if q.group(1) is None:
                return field, m.end() - 1
            pos = q.end()
        pos = rest.match(text, pos).end()
        if pos >= len(text) or text[pos] != delimiter:
            return None  # the record ends here (a line break or the end of the text)
        pos += 1
        field += 1
    return None


def _records(reader: Any, lines: _Lines, path: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line, cells)`` for each non-blank record, ``line`` the 1-based line where it starts.

    A record that ends at the end of the file inside a quoted field (an unbalanced quote, which
    ``csv.reader`` would silently close there, swallowing the rest of the file) and any ``csv.Error`` raise
    ``ValueError`` naming the row.
    """
    prev = 0
    record = lines.record
    while True:
        record.clear()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            _check_quotes(record, prev + 1, delimiter, path)
            raise ValueError(f"{path!r}: row {prev + 1} is not valid CSV: {exc}") from None
        start = prev + 1
        prev = reader.line_num
        if lines.exhausted:  # this record ended at the end of the file: perhaps inside a quote
            _check_quotes(record, start, delimiter, path)
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        yield start, cells


def _check_quotes(record: list[str], row: int, delimiter: str, path: str) -> None:
    found = _unclosed_quote("".join(record), delimiter)
    if found is None:
        return
    field, offset = found
    line = row
    for text in record:  # the line holding the opening quote
        if offset < len(text):
            break
        offset -= len(text)
        line += 1
    where = f"on line {line}" if line == row else f"on line {line}, in the row that starts on line {row}"
    raise ValueError(
        f"{path!r}: row {row}, column {field}: the quote that opens this field {where} is never closed (an "
        "unbalanced quote would make the rest of the file one field); close it, or write a quote inside a "
        'quoted field as ""'
    )


def _labeller(names: list[str] | None) -> Callable[[int], str]:
    def label(j: int) -> str:
        return f"column {j} ({names[j]!r})" if names is not None else f"column {j}"

    return label


def _short(cell: str, limit: int = 40) -> str:
    return repr(cell if len(cell) <= limit else cell[:limit] + "…")


def _is_column(item: Any) -> bool:
    return isinstance(item, (str, int, np.integer)) and not isinstance(item, (bool, np.bool_))


def check_columns(spec: Any, argname: str, *, single: bool) -> None:
    """Check the type of a column selection before any file is read.

    Args:
        spec: a column index (an integer, negative from the end) or header name; unless ``single``, also a
            non-empty list or tuple of them.
        argname: the argument's name, for errors.
        single: whether one column must be given.

    Raises:
        ValueError: naming ``argname`` and what was given, for anything else (a float, ``None``, a bool).
    """
    if _is_column(spec):
        return
    if single:
        raise ValueError(f"{argname} must be one index or name, got {spec!r}")
    if not isinstance(spec, (list, tuple)) or not spec or not all(_is_column(item) for item in spec):
        raise ValueError(
            f"{argname} must be a column index (an integer) or name (a string), or a non-empty list of them, "
            f"got {spec!r}"
        )


def resolve_columns(
    spec: int | str | Sequence[int | str], names: list[str] | None, width: int, argname: str
) -> list[int]:
    """Turn column indices (negative allowed) and/or header names into sorted-as-given column indices.

    Args:
        spec: one index or name, or a sequence of them.
        names: header names, or ``None`` when the file has no header.
        width: number of columns.
        argname: the argument's name, for errors.

    Returns:
        Distinct column indices in ``[0, width)``, in the order given.

    Raises:
        ValueError: for an index out of range, an unknown, missing or duplicated name, or an empty or
            repeated selection.
    """
    if not _is_column(spec) and not isinstance(spec, (list, tuple)):
        raise ValueError(f"{argname} must be a column index or name, or a sequence of them, got {spec!r}")
    items = [spec] if _is_column(spec) else list(spec)
    if not items:
        raise ValueError(f"{argname} must name at least one column, got {spec!r}")
    out: list[int] = []
    for item in items:
        if isinstance(item, str):
            if names is None:
                raise ValueError(f"{argname} {item!r} is a column name, but the file has no header row")
            if names.count(item) != 1:
                how = "is not a column name" if item not in names else "names more than one column"
                raise ValueError(f"{argname} {item!r} {how} (columns: {names})")
            j = names.index(item)
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not -width <= item < width:
                raise ValueError(
                    f"{argname} must be in [{-width}, {width - 1}] for {width} columns, got {item}"
                )
            j = int(item) % width
        else:
            raise ValueError(f"{argname} must hold column indices or names, got {item!r}")
        if j in out:
            raise ValueError(f"{argname} selects column {j} twice")
        out.append(j)
    return out


def format_class(v: float) -> str:
    """Format a numeric class label: ``1.0`` → ``"1"``, ``0.5`` → ``"0.5"``."""
    return str(int(v)) if v == int(v) else repr(v)


def _class_name(d: decimal.Decimal) -> str:
    """The name of an exact numeric class label: a whole number in all its digits, else as
    :func:`format_class` names it."""
    return str(int(d)) if d == d.to_integral_value() else format_class(float(d))


def nonfinite_labels(labels: list[str]) -> np.ndarray:
    """Return a bool mask of the non-finite labels when every label is a number, else all False.

    Args:
        labels: class labels as text.

    Returns:
        bool ``(len(labels),)``.
    """
    mask = np.zeros(len(labels), dtype=bool)
    if all(_is_number(v) for v in labels):
        for i, v in enumerate(labels):
            mask[i] = not math.isfinite(float(v))
    return mask


def encode_classes(
    labels: list[str],
    where: Callable[[int], str],
    class_names: list[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Map class labels (text cells) to int64 class ids.

    Labels that are all finite numbers are classes ordered by value and named by :func:`format_class`
    (``"1"`` and ``"1.0"`` are one class); otherwise the distinct texts, sorted, are the classes.

    Args:
        labels: one label per row.
        where: describes row ``i`` for an error message.
        class_names: the classes to map onto (e.g. those of the training file), or ``None`` to derive them.

    Returns:
        ``(ids, class_names)``.

    Raises:
        ValueError: for a numeric non-finite label (drop those rows first, see :func:`nonfinite_labels`),
            or a label that is not one of ``class_names``.
    """
    numeric = all(_is_number(v) for v in labels)
    if numeric:
        for i, v in enumerate(labels):
            if not math.isfinite(float(v)):
                raise ValueError(f"{where(i)}: a class label must be finite, got {labels[i]!r}")
        exact = [decimal.Decimal(v.strip()) for v in labels]  # long integer labels stay apart (not float64)
        names = {d: _class_name(d) for d in set(exact)}
        if len(set(names.values())) != len(names):
            same = sorted(d for d in names if list(names.values()).count(names[d]) > 1)[:2]
            raise ValueError(
                f"class labels {[str(d) for d in same]} are different numbers that float64 cannot tell "
                "apart; write them as text labels"
            )
        keys = [names[d] for d in exact]
        if class_names is None:
            class_names = [names[d] for d in sorted(names)]
    else:
        keys = labels
        if class_names is None:
            class_names = sorted(set(labels))
    index = {c: i for i, c in enumerate(class_names)}
    ids = np.empty(len(keys), dtype=np.int64)
    for i, k in enumerate(keys):
        if k not in index:
            raise ValueError(f"{where(i)}: class {k!r} is not one of the training classes {class_names}")
        ids[i] = index[k]
    return ids, class_names


def load_csv(
    path: str | os.PathLike,
    target_column: int | str = -1,
    delimiter: str | None = None,
    header: bool | None = None,
    classification: bool = True,
    nonfinite: str = "error",
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Load a CSV file of numbers with one target column (which may hold class names).

    See the module docstring for how the delimiter and the header are detected, and the errors.

    Args:
        path: the file.
        target_column: 0-based index (negative counts from the end) or, with a header, name of the target.
        delimiter: field separator; ``None`` detects it among ``,`` ``;`` tab ``|``.
        header: whether the first row names the columns; ``None`` detects it.
        classification: map the target to class ids ``0..C-1`` (numbers ordered by value, else names
            sorted); else read it as a float.
        nonfinite: ``"error"`` (default), ``"keep"`` or ``"drop"`` rows with NaN, inf or values beyond
            float32.

    Returns:
        ``(x, y, class_names)``: x float32; y int64 class ids or float32 values; ``class_names`` the
        classes for classification, else ``None``.

    Shape:
        x: ``(N, columns - 1)``; y: ``(N,)``.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: for a bad option or target column, a file with no feature column, or any reading error
            of :func:`read_csv_table` (naming path, row and column).
    """
    chosen: list[int] = []

    def pick(names: list[str] | None, width: int) -> list[int]:
        chosen.extend(resolve_columns(target_column, names, width, "target_column"))
        if width < 2:
            raise ValueError(
                f"{os.fspath(path)!r} has a single column, so no feature column besides the target; "
                "pass delimiter= if its fields are not separated by ',', ';', tabs or '|'"
            )
        return chosen if classification else []

    check_columns(target_column, "target_column", single=True)
    table = read_csv_table(path, delimiter=delimiter, header=header, nonfinite=nonfinite, text_columns=pick)
    t = chosen[0]
    keep = ~table.nonfinite if nonfinite == "drop" else np.ones(len(table), dtype=bool)
    if classification and nonfinite == "drop":
        keep &= ~nonfinite_labels(table.text[t])
    features = [k for k, j in enumerate(table.numeric) if j != t]
    with np.errstate(over="ignore"):  # nonfinite="keep": beyond float32 becomes ±inf
        x = table.values[keep][:, features].astype(np.float32)
        if not classification:
            return x, table.column(t)[keep].astype(np.float32), None
    labels = table.text[t]
    if nonfinite == "drop":
        labels = [lab for lab, k in zip(labels, keep, strict=True) if k]
        lines = table.lines[keep]
    else:
        lines = table.lines
    ids, names = encode_classes(labels, lambda i: f"{table.path!r}: row {lines[i]}, {table.column_label(t)}")
    return x, ids, names
