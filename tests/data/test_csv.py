"""The CSV reader: quoting, encodings, delimiters, headers, bad cells and non-finite values."""

from __future__ import annotations

import os
import re
import signal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuro.data import load_csv
from neuro.data.csv import read_csv_table


def _write(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_header_and_class_names(tmp_path):
    path = _write(tmp_path, "a,b,kind\n1,2,cat\n3,4.5,dog\n5,6,cat\n")
    x, y, names = load_csv(path, target_column="kind")
    np.testing.assert_array_equal(x, np.array([[1, 2], [3, 4.5], [5, 6]], dtype=np.float32))
    assert x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y, [0, 1, 0])
    assert names == ["cat", "dog"]


def test_regression_target_and_numeric_classes(tmp_path):
    path = _write(tmp_path, "1,2,0.5\n3,4,1.5\n")
    x, y, names = load_csv(path, classification=False)
    np.testing.assert_array_equal(y, np.array([0.5, 1.5], dtype=np.float32))
    assert names is None
    path = _write(tmp_path, "1,2,10\n3,4,2\n5,6,2.0\n")
    _, y, names = load_csv(path)
    assert names == ["2", "10"]  # numeric classes ordered by value, 2 and 2.0 one class
    np.testing.assert_array_equal(y, [1, 0, 0])


def test_target_column_by_index_first_column(tmp_path):
    path = _write(tmp_path, "7,1,2\n8,3,4\n")
    x, y, names = load_csv(path, target_column=0)
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])
    assert names == ["7", "8"]


def test_quoted_field_with_comma(tmp_path):
    path = _write(tmp_path, 'f1,f2,label\n1,2,"cat, black"\n3,4,"dog"\n')
    x, y, names = load_csv(path, target_column="label")
    assert names == ["cat, black", "dog"]
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])
    path = _write(tmp_path, '"a","b","y"\n"1","2","0.5"\n"3","4","1.5"\n')
    x, y, _ = load_csv(path, classification=False)
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])


def test_utf8_bom_does_not_lose_a_row_or_rename_a_column(tmp_path):
    path = _write(tmp_path, b"\xef\xbb\xbfa,b,y\n1,2,0\n3,4,1\n")
    x, y, _ = load_csv(path, target_column="a")
    np.testing.assert_array_equal(x, [[2, 0], [4, 1]])
    path = _write(tmp_path, b"\xef\xbb\xbf1,2,0\n3,4,1\n")
    x, y, _ = load_csv(path)
    assert len(x) == 2
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "text",
    ["1,2,0,\n3,4,1,\n", "a,b,y,\n1,2,0,\n3,4,1,\n", "a,b,y\n1,2,0,\n3,4,1,\n", "a,b,y,\n1,2,0\n3,4,1\n"],
)
def test_trailing_delimiter(tmp_path, text):
    x, y, names = load_csv(_write(tmp_path, text))
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(y, [0, 1])


def test_trailing_delimiter_must_be_in_every_row(tmp_path):
    path = _write(tmp_path, "1,2,0,\n3,4,1,\n5,6,1,7\n")  # then it is a fourth column
    with pytest.raises(ValueError, match=r"row 1, column 3 is empty"):
        load_csv(path)
    path = _write(tmp_path, "1,2,0,\n" * 150 + "5,6,1,7\n")  # a row after the first hundred
    with pytest.raises(
        ValueError, match=r"row 151 ends with '7' where the other rows end with an empty field"
    ):
        load_csv(path)


@pytest.mark.parametrize("sep", [";", "\t", "|", ","])
def test_delimiter_detected(tmp_path, sep):
    path = _write(tmp_path, f"a{sep}b{sep}y\n1{sep}2{sep}0.5\n3{sep}4{sep}1.5\n")
    x, y, _ = load_csv(path, classification=False)
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(y, np.array([0.5, 1.5], dtype=np.float32))
    assert read_csv_table(path).delimiter == sep


def test_semicolon_file_read_with_a_comma_is_an_error(tmp_path):
    path = _write(tmp_path, "1;2;0\n3;4;1\n")
    with pytest.raises(
        ValueError,
        match=r"parses to a single column with delimiter=',', but its rows hold ';'; pass delimiter=",
    ):
        load_csv(path, delimiter=",")
    path = _write(tmp_path, "1\t2\n3\t4\n")
    with pytest.raises(ValueError, match=r"rows hold '\\t'; pass delimiter=, for instance delimiter='\\t'"):
        read_csv_table(path, delimiter=",")


def test_undetectable_delimiter_asks_for_it(tmp_path):
    path = _write(tmp_path, "1;2,3\n4,5;6;7\n8\n")
    with pytest.raises(
        ValueError, match=r"cannot detect the delimiter \(the file holds ',' ';'\); pass delimiter="
    ):
        load_csv(path)


def test_single_column_file_has_no_features(tmp_path):
    path = _write(tmp_path, "y\n1\n2\n")
    with pytest.raises(ValueError, match=r"has a single column, so no feature column besides the target"):
        load_csv(path)
    table = read_csv_table(path)
    assert table.names == ["y"] and table.width == 1
    np.testing.assert_array_equal(table.values[:, 0], [1, 2])


def test_semicolon_decimal_commas_are_not_silently_misread(tmp_path):
    path = _write(tmp_path, "1,5;2,5;0\n3,5;4,5;1\n")
    with pytest.raises(ValueError, match=r"row 1 is a header: it mixes numbers and text"):
        load_csv(path)
    with pytest.raises(ValueError, match=r"row 1, column 1: expected a number, got '5;2'"):
        load_csv(path, header=False)


def test_headerless_text_target_is_an_error_not_a_lost_row(tmp_path):
    path = _write(tmp_path, "1,2,cat\n3,4,dog\n")
    with pytest.raises(
        ValueError,
        match=r"cannot tell whether row 1 is a header: it mixes numbers and text; pass header=True or header=False",
    ):
        load_csv(path)
    x, y, names = load_csv(path, header=False)
    assert len(x) == 2 and names == ["cat", "dog"]
    path = _write(tmp_path, "cat\ndog\n")
    with pytest.raises(
        ValueError, match=r"its columns hold text in the following rows too; pass header=True or header=False"
    ):
        read_csv_table(path, text_columns=lambda names, width: [0])
    table = read_csv_table(path, header=False, text_columns=lambda names, width: [0])
    assert table.text[0] == ["cat", "dog"]


def test_typo_in_first_row_is_not_taken_for_a_header(tmp_path):
    path = _write(tmp_path, "1,x,0\n3,4,1\n")
    with pytest.raises(ValueError, match=r"it mixes numbers and text"):
        load_csv(path)
    with pytest.raises(ValueError, match=r"row 1, column 1: expected a number, got 'x'"):
        load_csv(path, header=False)


def test_header_true_and_false(tmp_path):
    path = _write(tmp_path, "1,2,0\n3,4,1\n")
    x, _, _ = load_csv(path, header=True)
    np.testing.assert_array_equal(x, [[3, 4]])
    x, _, _ = load_csv(path, header=False)
    assert len(x) == 2


@pytest.mark.parametrize(
    ("text", "header", "message"),
    [
        ("", None, r"holds no rows \(an empty file\)"),
        ("\n\n  \n", None, r"holds no rows \(an empty file\)"),
        (
            "a,b,y\n",
            None,
            r"holds a single row, of text: a header without data\? pass header=True or header=False",
        ),
        ("a,b,y\n", True, r"has a header row but no data rows"),
        ("a,b,y\n\n\n", True, r"has a header row but no data rows"),
    ],
)
def test_empty_and_header_only(tmp_path, text, header, message):
    with pytest.raises(ValueError, match=message):
        load_csv(_write(tmp_path, text), header=header)


def test_blank_lines_skipped_and_rows_numbered_as_in_the_file(tmp_path):
    path = _write(tmp_path, "a,b,y\n\n1,2,0\n\n3,,1\n")
    with pytest.raises(ValueError, match=r"d.csv': row 5, column 1 \('b'\) is empty; expected a number"):
        load_csv(path)
    path = _write(tmp_path, 'a,b,y\n1,2,"two\nlines"\n3,oops,x\n')
    with pytest.raises(ValueError, match=r"row 4, column 1 \('b'\): expected a number, got 'oops'"):
        load_csv(path)


def test_bad_cell_names_path_row_and_column(tmp_path):
    path = _write(tmp_path, "1,2,0\n3,abc,1\n")
    with pytest.raises(ValueError, match=r"d.csv': row 2, column 1: expected a number, got 'abc'"):
        load_csv(path)
    with pytest.raises(ValueError, match=r"row 2 must have 3 fields, got 2"):
        load_csv(_write(tmp_path, "1,2,0\n3,0\n"))
    with pytest.raises(ValueError, match=r"row 1, column 2 is empty"):
        load_csv(_write(tmp_path, "1,2,\n3,4,1\n5,6,0\n"))


def test_target_column_errors(tmp_path):
    path = _write(tmp_path, "1,2,0\n3,4,1\n")
    with pytest.raises(ValueError, match=r"target_column must be in \[-3, 2\] for 3 columns, got 3"):
        load_csv(path, target_column=3)
    with pytest.raises(
        ValueError, match=r"target_column 'y' is a column name, but the file has no header row"
    ):
        load_csv(path, target_column="y")
    path = _write(tmp_path, "a,b,y\n1,2,0\n")
    with pytest.raises(
        ValueError, match=r"target_column 'z' is not a column name \(columns: \['a', 'b', 'y'\]\)"
    ):
        load_csv(path, target_column="z")
    with pytest.raises(ValueError, match=r"target_column must be one index or name, got \[0, 1\]"):
        load_csv(path, target_column=[0, 1])


@pytest.mark.parametrize(
    ("cell", "shown"),
    [("nan", r"nan"), ("inf", r"inf"), ("-Infinity", r"-inf"), ("1e39", r"1e\+39, beyond the float32 range")],
)
def test_nonfinite_refused_by_default(tmp_path, cell, shown):
    path = _write(tmp_path, f"a,b,y\n1,2,0\n3,{cell},1\n")
    with pytest.raises(
        ValueError,
        match=rf"row 3, column 1 \('b'\): non-finite value \({shown}.*pass nonfinite='keep' or nonfinite='drop'",
    ):
        load_csv(path)


def test_nonfinite_keep_and_drop(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,nan,0\n3,4,1\n5,1e39,0\n7,8,0.5\n")
    x, y, _ = load_csv(path, classification=False, nonfinite="keep")
    assert np.isnan(x[0, 1]) and x[2, 1] == np.inf
    np.testing.assert_array_equal(y, np.array([0, 1, 0, 0.5], dtype=np.float32))
    x, y, _ = load_csv(path, classification=False, nonfinite="drop")
    np.testing.assert_array_equal(x, [[3, 4], [7, 8]])
    np.testing.assert_array_equal(y, np.array([1, 0.5], dtype=np.float32))
    path = _write(tmp_path, "a,b,y\n1,2,nan\n3,4,1\n5,6,2\n")
    with pytest.raises(ValueError, match=r"row 2, column 2 \('y'\): a class label must be finite, got 'nan'"):
        load_csv(path)
    x, y, names = load_csv(path, nonfinite="drop")
    np.testing.assert_array_equal(y, [0, 1])
    assert names == ["1", "2"]


def test_options_validated(tmp_path):
    path = _write(tmp_path, "1,2\n")
    with pytest.raises(
        ValueError, match=r"nonfinite must be one of \('error', 'keep', 'drop'\), got 'ignore'"
    ):
        load_csv(path, nonfinite="ignore")
    with pytest.raises(ValueError, match=r"delimiter must be None \(detect\) or one character .*got ';;'"):
        load_csv(path, delimiter=";;")
    with pytest.raises(ValueError, match=r"header must be None \(detect\), True or False, got 'yes'"):
        load_csv(path, header="yes")


def test_not_utf8_and_nul(tmp_path):
    with pytest.raises(ValueError, match=r"is not UTF-8 text: invalid start byte"):
        load_csv(_write(tmp_path, b"a,b\n1,\xff\n"))
    with pytest.raises(ValueError):
        load_csv(_write(tmp_path, b"1,2,0\n3,\x00,1\n"))


def test_fifo_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    signal.alarm(10)
    try:
        with pytest.raises(ValueError, match=r"pipe.csv' is a named pipe, expected a regular file"):
            load_csv(fifo)
    finally:
        signal.alarm(0)
    with pytest.raises(ValueError, match=r"is a directory, expected a regular file"):
        load_csv(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_csv(tmp_path / "missing.csv")


def test_loading_does_not_touch_the_file(tmp_path):
    path = _write(tmp_path, b"\xef\xbb\xbfa;b;y\r\n1;2;0\r\n3;4;1;\r\n")
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    with pytest.raises(ValueError):
        load_csv(path)
    _write(tmp_path, b"\xef\xbb\xbfa;b;y\r\n1;2;0\r\n3;4;1\r\n", name="ok.csv")
    load_csv(tmp_path / "ok.csv")
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before


def test_crlf_and_large_file_streamed(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((3000, 4)).astype(np.float32)
    lines = ["f0,f1,f2,f3"] + [",".join(repr(float(v)) for v in row) for row in data]
    path = _write(tmp_path, "\r\n".join(lines) + "\r\n")
    table = read_csv_table(path)
    np.testing.assert_array_equal(table.values.astype(np.float32), data)
    assert table.lines[0] == 2 and table.lines[-1] == 3001


def test_sniffing_a_hostile_file_is_bounded(tmp_path):
    import time

    path = _write(tmp_path, ',"' * 40000)  # quadratic for csv.Sniffer on the whole text
    start = time.perf_counter()
    with pytest.raises(ValueError):
        load_csv(path)
    assert time.perf_counter() - start < 3


# -- an unbalanced quote, a bad byte, a column of the wrong type: the error names the row, line or argument --
UNBALANCED = "a,b,c,d,y\n1,2,3,4,cat\n5,6,7,8,\"dog\n9,10,11,12,cat\n13,14,15,16,dog\n"


def test_an_unbalanced_quote_is_an_error_naming_the_row_where_it_opened(tmp_path):
    # csv.reader closes the quote at the end of the file: 2 rows, and a class named "dog\n9,10,11,12,cat\n..."
    message = (
        r"d.csv': row 3, column 4: the quote that opens this field on line 3 is never closed \(an unbalanced "
        r"quote would make the rest of the file one field\); close it, or write a quote inside a quoted "
        r'field as ""'
    )
    with pytest.raises(ValueError, match=message):
        load_csv(_write(tmp_path, UNBALANCED))
    with pytest.raises(ValueError, match=r"row 2, column 4: the quote that opens this field on line 2"):
        load_csv(_write(tmp_path, UNBALANCED.split("\n", 1)[1]))  # no header
    with pytest.raises(ValueError, match=r"row 3, column 1: the quote that opens this field on line 3"):
        load_csv(_write(tmp_path, 'a,b,y\n1,2,0\n3,"4,1\n5,6,0\n'), classification=False)  # a numeric column
    with pytest.raises(ValueError, match=r"row 3, column 2: the quote that opens this field on line 3"):
        load_csv(_write(tmp_path, 'a,b,y\n1,2,x\n3,4,"y'))  # on the last line, no line break
    with pytest.raises(ValueError, match=r"row 4, column 2: the quote that opens this field on line 5, in the row that starts on line 4"):
        load_csv(_write(tmp_path, 'a,b,y\n1,2,x\n3,4,y\n5,"6\n7",  "z\n8,9,x\n'))


def test_an_unbalanced_quote_longer_than_a_field_may_be_names_its_row(tmp_path):
    text = "a,b,y\n1,2,x\n3,4,\"y\n" + "5,6,x\n" * 40_000  # more than csv's field limit (131,072 characters)
    with pytest.raises(ValueError, match=r"row 3, column 2: the quote that opens this field on line 3 is never closed"):
        load_csv(_write(tmp_path, text))


def test_other_csv_errors_name_the_row(tmp_path):
    text = "a,b,y\n1,2,x\n3," + "4" * 200_000 + ",y\n"
    with pytest.raises(ValueError, match=r"d.csv': row 3 is not valid CSV: field larger than field limit \(131072\)"):
        load_csv(_write(tmp_path, text))


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_quoted_fields_across_lines_and_quotes_inside_fields_still_load(tmp_path, ending):
    text = 'a,b,y\n1,2,"two\nlines"\n3,4, "say ""hi"""\n5,6,a"b\n7,8,"x" \n'.replace("\n", ending)
    x, y, names = load_csv(_write(tmp_path, text))
    np.testing.assert_array_equal(x, [[1, 2], [3, 4], [5, 6], [7, 8]])
    assert names == ['a"b', 'say "hi"', f"two{ending}lines", "x"] and y.tolist() == [2, 1, 0, 3]
    assert read_csv_table(_write(tmp_path, text), text_columns=lambda names, width: [2]).lines.tolist() == [2, 4, 5, 6]


def test_a_byte_that_is_not_utf8_is_reported_by_line_and_byte(tmp_path):
    lines = [b"a,b,y"] + [b"%d,%d,0" % (i, i) for i in range(30_005)]
    lines[30_001] = b"7,8\xff,0"  # line 30,002 of the file
    data = b"\n".join(lines) + b"\n"
    offset = data.index(b"\xff")
    message = (
        rf"d.csv' is not UTF-8 text: invalid start byte at line 30002, byte 4 of the line \(byte {offset} of the "
        r'file, counting from 0\); save it as UTF-8 \("CSV UTF-8"\)'
    )
    with pytest.raises(ValueError, match=message):
        load_csv(_write(tmp_path, data))
    with pytest.raises(ValueError, match=r"invalid start byte at line 3, byte 2 of the line \(byte 18 of the"):
        load_csv(_write(tmp_path, b"\xef\xbb\xbfa,b,y\r\n1,2,0\r\n3\xfe,4,1\r\n"))  # in the delimiter sample
    with pytest.raises(ValueError, match=r"invalid continuation byte at line 4, byte 3 of the line"):
        load_csv(_write(tmp_path, b"a;b;y\r1;2;0\r3;4;1\r5;\xc3(;1\r"), delimiter=";")  # lone CRs end lines


@pytest.mark.parametrize("bad", [1.5, None, True, ["y"], {"y": 1}])
def test_a_target_column_of_the_wrong_type_names_the_argument(tmp_path, bad):
    path = _write(tmp_path, "a,b,y\n1,2,0\n3,4,1\n")
    with pytest.raises(ValueError, match=rf"^target_column must be one index or name, got {re.escape(repr(bad))}$"):
        load_csv(path, target_column=bad)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(st.integers(-999, 999), min_size=3, max_size=3), min_size=1, max_size=12),
    where=st.tuples(st.integers(0, 11), st.integers(0, 2)),
    header=st.booleans(),
    space=st.booleans(),
)
def test_one_stray_quote_at_the_start_of_a_field_is_always_reported_where_it_opened(tmp_path, rows, where, header, space):
    """Each number of a valid file, in turn, gets a quote in front of it: the file has no other quote, so
    that quote never closes, and the error names its row and column (never a silent load of fewer rows)."""
    r, c = where[0] % len(rows), where[1]
    cells = [[str(v) for v in row] for row in rows]
    cells[r][c] = (" " if space else "") + '"' + cells[r][c]
    lines = (["a,b,y"] if header else []) + [",".join(row) for row in cells]
    path = _write(tmp_path, "\n".join(lines) + "\n", name="q.csv")
    row = r + 1 + header
    with pytest.raises(ValueError, match=rf"q.csv': row {row}, column {c}: the quote that opens this field on line {row} is never closed"):
        read_csv_table(path, header=header)
