"""TabularDataSet: CSV files (two files or one with target columns) and arrays, splits and scalers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from neuro.data import ArraySplit, Scaler, TabularDataSet


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(a):
    return "\n".join(",".join(str(v) for v in row) for row in a) + "\n"


def _all(split):
    x, y = split.arrays()
    return x, y


def test_two_files_regression(tmp_path):
    xin = _write(tmp_path, "x.csv", "a;b\n1;10\n2;20\n3;30\n4;40\n")
    yout = _write(tmp_path, "y.csv", "t\n0.5\n1.5\n2.5\n3.5\n")
    data = TabularDataSet.from_csv(xin, yout)
    assert data.feature_names == ["a", "b"] and data.target_names == ["t"]
    assert data.class_names is None and data.test is None and len(data.valid) == 0
    x, y = _all(data.train)
    np.testing.assert_array_equal(x, np.array([[1, 10], [2, 20], [3, 30], [4, 40]], dtype=np.float32))
    np.testing.assert_array_equal(y, np.array([[0.5], [1.5], [2.5], [3.5]], dtype=np.float32))
    assert x.dtype == np.float32 and y.dtype == np.float32 and data.input_shape == (2,)


def test_one_file_with_target_names_and_indices(tmp_path):
    path = _write(tmp_path, "d.csv", "a,t1,b,t2\n1,0.1,2,0.2\n3,0.3,4,0.4\n")
    data = TabularDataSet.from_csv(path, target_columns=["t1", "t2"])
    x, y = _all(data.train)
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(y, np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32))
    assert data.feature_names == ["a", "b"] and data.target_names == ["t1", "t2"]
    data = TabularDataSet.from_csv(path, target_columns=-1)
    np.testing.assert_array_equal(_all(data.train)[1], np.array([[0.2], [0.4]], dtype=np.float32))
    assert data.target_names == ["t2"]


def test_classification_with_class_names(tmp_path):
    path = _write(tmp_path, "d.csv", "a,b,kind\n1,2,dog\n3,4,cat\n5,6,dog\n")
    data = TabularDataSet.from_csv(path, target_columns="kind", classification=True)
    assert data.class_names == ["cat", "dog"]
    x, y = _all(data.train)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [1, 0, 1])
    with pytest.raises(
        ValueError,
        match=r"normalize_output\(\) needs float regression targets, got int64 targets \(class ids\)",
    ):
        data.normalize_output()
    with pytest.raises(
        ValueError, match=r"classification needs one target column, got target_columns=\['a', 'kind'\]"
    ):
        TabularDataSet.from_csv(path, target_columns=["a", "kind"], classification=True)


def test_two_files_classification_and_test_pair(tmp_path):
    xin = _write(tmp_path, "x.csv", "1,2\n3,4\n5,6\n")
    yout = _write(tmp_path, "y.csv", "b\na\nb\n")
    xt = _write(tmp_path, "xt.csv", "7,8\n")
    yt = _write(tmp_path, "yt.csv", "a\n")
    with pytest.raises(
        ValueError,
        match=r"y.csv': cannot tell whether row 1 is a header: its columns hold text in the following rows too; pass header=True or header=False",
    ):
        TabularDataSet.from_csv(xin, yout, classification=True)
    data = TabularDataSet.from_csv(xin, yout, classification=True, test_path=(xt, yt), header=False)
    assert data.class_names == ["a", "b"]
    np.testing.assert_array_equal(_all(data.train)[1], [1, 0, 1])
    x, y = _all(data.test)
    np.testing.assert_array_equal(x, [[7, 8]])
    np.testing.assert_array_equal(y, [0])
    yt_bad = _write(tmp_path, "yt2.csv", "c\n")
    with pytest.raises(
        ValueError,
        match=r"yt2.csv': row 1, column 0: class 'c' is not one of the training classes \['a', 'b'\]",
    ):
        TabularDataSet.from_csv(xin, yout, classification=True, test_path=(xt, yt_bad), header=False)
    with pytest.raises(ValueError, match=r"test_path must be a pair \(test inputs file, test outputs file\)"):
        TabularDataSet.from_csv(xin, yout, classification=True, test_path=xt, header=False)


def test_single_file_test_path(tmp_path):
    path = _write(tmp_path, "d.csv", "a,b,y\n1,2,3\n4,5,6\n")
    test = _write(tmp_path, "t.csv", "a,b,y\n7,8,9\n")
    data = TabularDataSet.from_csv(path, target_columns="y", test_path=test)
    np.testing.assert_array_equal(_all(data.test)[0], [[7, 8]])
    np.testing.assert_array_equal(_all(data.test)[1], np.array([[9]], dtype=np.float32))
    wide = _write(tmp_path, "w.csv", "7,8,1,9\n")
    with pytest.raises(
        ValueError, match=r"test file '.*w.csv' must have 2 feature columns as the training data, got 3"
    ):
        TabularDataSet.from_csv(path, target_columns=-1, test_path=wide)
    with pytest.raises(ValueError, match=r"test_path must be one file in the single-file layout"):
        TabularDataSet.from_csv(path, target_columns=-1, test_path=(test, test))


def test_row_count_mismatch_names_both_counts(tmp_path):
    xin = _write(tmp_path, "x.csv", _rows([[1, 2], [3, 4], [5, 6]]))
    yout = _write(tmp_path, "y.csv", _rows([[1], [2]]))
    with pytest.raises(
        ValueError,
        match=r"inputs file '.*x.csv' has 3 data rows but outputs file '.*y.csv' has 2; they must match row for row",
    ):
        TabularDataSet.from_csv(xin, yout)


def test_argument_errors(tmp_path):
    path = _write(tmp_path, "d.csv", "1,2,3\n4,5,6\n")
    with pytest.raises(
        ValueError, match=r"target_columns must give the target column\(s\) of the single file .* got None"
    ):
        TabularDataSet.from_csv(path)
    with pytest.raises(ValueError, match=r"target_columns must be None when outputs_path is given .* got 0"):
        TabularDataSet.from_csv(path, path, target_columns=0)
    with pytest.raises(
        ValueError, match=r"target_columns selects all 3 columns of '.*d.csv', leaving no feature column"
    ):
        TabularDataSet.from_csv(path, target_columns=[0, 1, 2])
    with pytest.raises(ValueError, match=r"target_columns must be in \[-3, 2\] for 3 columns, got 5"):
        TabularDataSet.from_csv(path, target_columns=5)
    with pytest.raises(ValueError, match=r"target_columns selects column 2 twice"):
        TabularDataSet.from_csv(path, target_columns=[2, -1])
    for bad in (-0.1, 1.0, 1.5, "0.2", None):
        with pytest.raises(ValueError, match=r"valid_frac must be (a number )?in \[0, 1\), got"):
            TabularDataSet.from_csv(path, target_columns=-1, valid_frac=bad)
        with pytest.raises(ValueError, match=r"valid_frac must be (a number )?in \[0, 1\)"):
            TabularDataSet.from_arrays(np.zeros((4, 2)), np.zeros(4), valid_frac=bad)


def test_valid_split_is_seeded_disjoint_and_complete(tmp_path):
    n = 20
    x = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    y = np.arange(n, dtype=np.float32)
    path = _write(tmp_path, "d.csv", "a,b,y\n" + _rows(np.column_stack([x, y]).astype(int)))
    data = TabularDataSet.from_csv(path, target_columns="y", valid_frac=0.25, seed=3)
    assert len(data.train) == 15 and len(data.valid) == 5
    vy = _all(data.valid)[1][:, 0]
    ty = _all(data.train)[1][:, 0]
    expected = np.sort(np.random.default_rng(3).permutation(n)[15:])
    np.testing.assert_array_equal(vy, expected)  # the last quarter of the seeded permutation
    assert sorted(np.concatenate([ty, vy]).tolist()) == list(range(n))
    again = TabularDataSet.from_csv(path, target_columns="y", valid_frac=0.25, seed=3)
    np.testing.assert_array_equal(_all(again.valid)[1][:, 0], vy)
    other = TabularDataSet.from_arrays(x, y, valid_frac=0.25, seed=4)
    assert not np.array_equal(_all(other.valid)[1], vy)
    tiny = TabularDataSet.from_arrays(np.ones((1, 2)), np.ones(1), valid_frac=0.9)
    assert len(tiny.train) == 1 and len(tiny.valid) == 0


def test_scalers_fitted_on_the_training_split_only(tmp_path):
    x = np.array([[0, 5], [10, 5], [20, 5], [1000, 5]], dtype=np.float32)
    y = np.array([[1.0], [3.0], [5.0], [99.0]], dtype=np.float32)
    data = TabularDataSet.from_arrays(x, y, valid_frac=0.25, seed=0)
    held = int(_all(data.valid)[0][0, 0])
    train_x, train_y = _all(data.train)
    assert held not in train_x[:, 0]
    assert data.normalize_input() is data and data.standardize_output() is data
    np.testing.assert_array_equal(data.input_scaler.a, [train_x[:, 0].min(), 5])
    np.testing.assert_array_equal(data.input_scaler.b, [np.ptp(train_x[:, 0]), 1])  # constant column: 1
    np.testing.assert_allclose(data.output_scaler.a, [train_y.mean()])
    np.testing.assert_allclose(data.output_scaler.b, [train_y.std()])
    scaled = data.input_scaler.transform(train_x)
    assert scaled.min() == 0 and scaled.max() == 1 and (scaled[:, 1] == 0).all()
    data.standardize_input()
    assert data.input_scaler.kind == "standardize"
    # the splits stay raw
    np.testing.assert_array_equal(_all(data.train)[0], train_x)


def test_from_arrays(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.array([0, 1, 2, 0, 1, 2])
    data = TabularDataSet.from_arrays(x, y, class_names=["a", "b", "c"], test=(x[:2], y[:2]))
    assert isinstance(data.train, ArraySplit) and data.class_names == ["a", "b", "c"]
    tx, ty = _all(data.train)
    assert np.shares_memory(tx, x)  # float32 input is held, not copied
    assert ty.dtype == np.int64
    np.testing.assert_array_equal(_all(data.test)[1], [0, 1])
    with pytest.raises(ValueError, match=r"y must have one row per sample of x \(6\), got shape \(5,\)"):
        TabularDataSet.from_arrays(x, y[:5])
    with pytest.raises(ValueError, match=r"x contains 1 NaN or inf values"):
        TabularDataSet.from_arrays(np.array([[np.nan], [1]]), [0, 1])
    with pytest.raises(ValueError, match=r"x must be at least 2-D \(samples, features\), got shape \(3,\)"):
        TabularDataSet.from_arrays(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"test must match the training shapes"):
        TabularDataSet.from_arrays(x, y, test=(np.ones((2, 3)), y[:2]))
    with pytest.raises(TypeError, match=r"x must hold numbers, got dtype <U1"):
        TabularDataSet.from_arrays(np.array([["a"]]), [0])


def test_nonfinite_drop_across_two_files(tmp_path):
    xin = _write(tmp_path, "x.csv", "1,2\nnan,4\n5,6\n7,8\n")
    yout = _write(tmp_path, "y.csv", "1\n2\n1e40\n4\n")
    with pytest.raises(ValueError, match=r"x.csv': row 2, column 0: non-finite value \(nan\)"):
        TabularDataSet.from_csv(xin, yout)
    data = TabularDataSet.from_csv(xin, yout, nonfinite="drop")
    x, y = _all(data.train)
    np.testing.assert_array_equal(x, [[1, 2], [7, 8]])
    np.testing.assert_array_equal(y, np.array([[1], [4]], dtype=np.float32))
    data = TabularDataSet.from_csv(xin, yout, nonfinite="keep")
    assert len(data.train) == 4 and np.isinf(_all(data.train)[1][2, 0])


def test_scaler_is_a_plain_scaler(tmp_path):
    data = TabularDataSet.from_arrays(np.array([[1.0], [3.0]]), np.array([[2.0], [4.0]])).normalize_output()
    assert isinstance(data.output_scaler, Scaler)
    np.testing.assert_array_equal(
        data.output_scaler.inverse_transform(np.array([[0.0], [1.0]], dtype=np.float32)), [[2], [4]]
    )


@pytest.mark.parametrize("bad", [1.5, True, [0, 1.5], [], (None,), {"y": 2}])
def test_target_columns_of_the_wrong_type_name_the_argument(tmp_path, bad):
    path = _write(tmp_path, "d.csv", "1,2,3\n4,5,6\n")
    message = (
        r"^target_columns must be a column index \(an integer\) or name \(a string\), or a non-empty list of "
        rf"them, got {re.escape(repr(bad))}$"
    )
    with pytest.raises(ValueError, match=message):
        TabularDataSet.from_csv(path, target_columns=bad)
