"""Scaler: statistics, transforms, dtypes, and the validated JSON configuration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuro.data import Scaler


def test_normalize_values_and_constant_columns():
    x = np.array([[0.0, 7.0, -1.0], [5.0, 7.0, 1.0], [10.0, 7.0, 3.0]], dtype=np.float32)
    s = Scaler.fit("normalize", x)
    np.testing.assert_array_equal(s.a, [0, 7, -1])
    np.testing.assert_array_equal(s.b, [10, 1, 4])
    out = s.transform(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[0, 0, 0], [0.5, 0, 0.5], [1, 0, 1]], dtype=np.float32))


def test_standardize_values_and_zero_std():
    x = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])
    s = Scaler.fit("standardize", x)
    np.testing.assert_allclose(s.a, [3, 2])
    np.testing.assert_allclose(s.b, [np.sqrt(8 / 3), 1])
    out = s.transform(x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.mean(axis=0), [0, 0], atol=1e-12)
    np.testing.assert_allclose(out[:, 0].std(), 1)
    np.testing.assert_array_equal(out[:, 1], 0)


@pytest.mark.parametrize("kind", ["normalize", "standardize"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_keeps_dtype(kind, dtype, rng):
    x = (rng.standard_normal((50, 4)) * [1, 10, 100, 1e-3] + [0, -5, 1e3, 2]).astype(dtype)
    s = Scaler.fit(kind, x)
    y = s.transform(x)
    back = s.inverse_transform(y)
    assert y.dtype == dtype and back.dtype == dtype
    np.testing.assert_allclose(back, x, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    one = s.transform(x[0])  # one sample, no batch axis
    np.testing.assert_array_equal(one, y[0])


def test_integer_input_becomes_float64_and_multi_axis_features():
    s = Scaler.fit("normalize", np.array([[0, 2], [4, 6]], dtype=np.uint8))
    assert s.transform(np.array([[2, 4]], dtype=np.uint8)).dtype == np.float64
    img = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    s = Scaler.fit("standardize", img)
    assert s.a.shape == (3, 2)
    restored = Scaler.from_config(json.loads(json.dumps(s.get_config())))
    assert restored == s and restored.a.shape == (3, 2)


def test_config_is_plain_json_and_round_trips():
    s = Scaler.fit("normalize", np.array([[1.0, 2.0], [3.0, 8.0]]))
    cfg = s.get_config()
    assert cfg == {"kind": "normalize", "a": [1.0, 2.0], "b": [2.0, 6.0]}
    restored = Scaler.from_config(json.loads(json.dumps(cfg)))
    assert restored == s
    one = Scaler.fit("standardize", np.array([1.0, 3.0]))  # (N,) samples: bare numbers
    assert one.get_config() == {"kind": "standardize", "a": 2.0, "b": 1.0}
    assert Scaler.from_config(one.get_config()) == one


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([1, 2], r"scaler config must be a dict, got list"),
        ({"kind": "normalize", "a": [0.0]}, r"scaler config is missing the key 'b'"),
        ({"kind": "normalize", "a": [0.0], "b": [1.0], "c": 1}, r"scaler config has unknown keys \['c'\]"),
        (
            {"kind": "minmax", "a": [0.0], "b": [1.0]},
            r"scaler config key 'kind' must be one of \('normalize', 'standardize'\), got 'minmax'",
        ),
        ({"kind": 3, "a": [0.0], "b": [1.0]}, r"scaler config key 'kind' must be one of .* got 3"),
        (
            {"kind": "normalize", "a": "0", "b": [1.0]},
            r"scaler config key 'a' must hold only numbers, got '0'",
        ),
        (
            {"kind": "normalize", "a": [0.0, None], "b": [1.0, 1.0]},
            r"scaler config key 'a' must hold only numbers, got None",
        ),
        (
            {"kind": "normalize", "a": [True], "b": [1.0]},
            r"scaler config key 'a' must hold only numbers, got True",
        ),
        (
            {"kind": "normalize", "a": [0.0, float("nan")], "b": [1.0, 1.0]},
            r"scaler config key 'a' must hold finite numbers, got nan",
        ),
        (
            {"kind": "normalize", "a": [0.0], "b": [float("inf")]},
            r"scaler config key 'b' must hold finite numbers, got inf",
        ),
        (
            {"kind": "normalize", "a": [0.0, 1.0], "b": [1.0]},
            r"scaler config keys 'a' and 'b' must have the same length/shape, got \(2,\) and \(1,\)",
        ),
        ({"kind": "normalize", "a": [0.0], "b": [0.0]}, r"scaler config key 'b' must hold positive numbers"),
        ({"kind": "normalize", "a": [], "b": []}, r"scaler config key 'a' must not be empty"),
        (
            {"kind": "normalize", "a": [[0.0], [1.0, 2.0]], "b": [1.0]},
            r"scaler config key 'a' must be a regular \(non-ragged\) list of numbers",
        ),
    ],
)
def test_from_config_validates(config, message):
    with pytest.raises(ValueError, match=message):
        Scaler.from_config(config)


def test_fit_and_transform_errors():
    with pytest.raises(ValueError, match=r"kind must be one of \('normalize', 'standardize'\), got 'scale'"):
        Scaler.fit("scale", np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"x must hold at least one sample, got shape \(0, 3\)"):
        Scaler.fit("normalize", np.ones((0, 3)))
    with pytest.raises(ValueError, match=r"x must hold finite numbers to fit a scaler, got NaN or inf"):
        Scaler.fit("standardize", np.array([[1.0], [np.inf]]))
    s = Scaler.fit("normalize", np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"x must end in the feature shape \(3,\), got shape \(2, 4\)"):
        s.transform(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"b must hold finite positive numbers"):
        Scaler("normalize", [0.0], [-1.0])
