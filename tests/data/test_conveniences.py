"""The original neuro's conveniences (issue 17, item 8): image files read for prediction as a data set reads
its own (``load_images``, alias ``load_image_vec``), augmentation with probabilities (``hflip(p)``,
``vflip(p)``, ``rotate(angle, p)``) and data sets that describe themselves (``summary``, ``print``)."""

from __future__ import annotations

import doctest
import math
import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import neuro
from neuro.data import ArraySplit, Augment, DataSet, ImageDataSet, TabularDataSet, TextDataSet
from neuro.data import augment as augment_module
from neuro.data import dataset as dataset_module
from neuro.data.augment import rotate
from neuro.data.images import ImageFileError


def _save(path: pathlib.Path, arr: np.ndarray, **kw) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=kw.pop("format", None), **kw)
    return path


def _folder(root, rng, shape=(6, 5, 3), n=3, classes=("b_dog", "a_cat"), split="train"):
    for cls in classes:
        for i in range(n):
            _save(root / split / cls / f"{i}.png", rng.integers(0, 256, size=shape, dtype=np.uint8))
    return root


def _paths(root, split="train", classes=("a_cat", "b_dog"), n=3):
    return [root / split / c / f"{i}.png" for c in classes for i in range(n)]


# -- load_images -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"channels": 1}, {"image_size": (4, 7)}, {"scale": 2 / 255, "channels": 4}, {"image_size": 3}],
)
def test_load_images_equal_the_data_set_rows_bitwise(tmp_path, rng, lazy, kwargs):
    _folder(tmp_path, rng)
    data = ImageDataSet.from_dir(tmp_path, lazy=lazy, **kwargs)
    x, _ = data.train.arrays()
    paths = _paths(tmp_path)
    loaded = data.load_images(paths)
    assert loaded.dtype == np.float32 and loaded.shape == x.shape
    np.testing.assert_array_equal(loaded, x)
    np.testing.assert_array_equal(data.load_images(paths[::-1]), x[::-1])  # in the order given
    np.testing.assert_array_equal(data.load_image_vec(paths), x)  # the original's name


def test_load_images_one_path_no_path_and_any_extension(tmp_path, rng):
    _folder(tmp_path, rng)
    data = ImageDataSet.from_dir(tmp_path)
    x, _ = data.train.arrays()
    first = _paths(tmp_path)[0]
    np.testing.assert_array_equal(data.load_images(first), x[:1])  # a pathlib.Path
    np.testing.assert_array_equal(data.load_images(str(first)), x[:1])  # a str: one path, not characters
    np.testing.assert_array_equal(data.load_images(iter([first])), x[:1])
    assert data.load_images([]).shape == (0, 6, 5, 3)
    renamed = tmp_path / "photo.data"  # recognised by its contents
    renamed.write_bytes(first.read_bytes())
    np.testing.assert_array_equal(data.load_images([renamed]), x[:1])


def test_load_images_converts_new_files_as_the_folder_would(tmp_path, rng):
    _folder(tmp_path, rng, shape=(6, 5))  # 8-bit grayscale: stored as uint8
    data = ImageDataSet.from_dir(tmp_path, image_size=(6, 5))
    assert data.storage_dtype == np.uint8 and data.channels == 1
    colour = rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)  # another size and channel count
    path = _save(tmp_path / "new" / "colour.jpg", colour, quality=95)
    with Image.open(path) as im:
        im.draft(None, (5, 6))  # a large JPEG is decoded at a reduced scale first, as from_dir does
        expected = np.asarray(im.convert("L").resize((5, 6), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(data.load_images(path)[0, :, :, 0], expected * np.float32(1 / 255))
    deep = _save(tmp_path / "new" / "deep.png", np.full((6, 5), 40000, dtype=np.uint16))  # 16-bit
    np.testing.assert_array_equal(
        data.load_images(deep), np.full((1, 6, 5, 1), 40000 * np.float32(255 / 65535 / 255))
    )


def test_load_images_of_a_16_bit_data_set(tmp_path, rng):
    for i in range(2):
        _save(tmp_path / "train" / "a" / f"{i}.png", rng.integers(0, 65536, size=(4, 4), dtype=np.uint16))
        _save(tmp_path / "train" / "b" / f"{i}.png", rng.integers(0, 256, size=(4, 4), dtype=np.uint8))
    data = ImageDataSet.from_dir(tmp_path)
    assert data.storage_dtype == np.uint16
    paths = [tmp_path / "train" / c / f"{i}.png" for c in "ab" for i in range(2)]
    np.testing.assert_array_equal(data.load_images(paths), data.train.arrays()[0])  # 8-bit files too


def test_load_images_resize_rules(tmp_path, rng):
    _folder(tmp_path, rng)
    other = _save(tmp_path / "new" / "big.png", rng.integers(0, 256, size=(9, 8, 3), dtype=np.uint8))
    as_read = ImageDataSet.from_dir(tmp_path)  # no image_size: every image had one size
    message = r"image '.*big.png' is 9×8 \(height×width\) but the data set's images are 6×5; pass resize=True"
    with pytest.raises(ImageFileError, match=message):
        as_read.load_images([other])
    resized = as_read.load_images([other], resize=True)
    expected = np.asarray(Image.open(other).resize((5, 6), Image.Resampling.BILINEAR)) * np.float32(1 / 255)
    np.testing.assert_array_equal(resized[0], expected)
    sized = ImageDataSet.from_dir(tmp_path, image_size=(6, 5))  # resizes: so do its load_images
    np.testing.assert_array_equal(sized.load_images([other]), resized)
    with pytest.raises(ImageFileError, match=message):
        sized.load_images([other], resize=False)


def test_load_images_errors_name_the_file(tmp_path, rng):
    _folder(tmp_path, rng)
    data = ImageDataSet.from_dir(tmp_path)
    good = _paths(tmp_path)[0]
    with pytest.raises(FileNotFoundError, match=r"image '.*missing.png' does not exist"):
        data.load_images([good, tmp_path / "missing.png"])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ImageFileError, match=r"image '.*notes.png' cannot be read"):
        data.load_images([good, text])
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ImageFileError, match=r"image '.*cut.png' cannot be"):
        data.load_images([truncated])
    with pytest.raises(ImageFileError, match=r"'.*train' is a directory, expected a regular file"):
        data.load_images([tmp_path / "train"])
    huge = _save(tmp_path / "huge.png", np.zeros((40, 40, 3), dtype=np.uint8))
    small = ImageDataSet.from_dir(tmp_path, image_size=4, max_pixels=900)
    with pytest.raises(
        ImageFileError, match=r"image '.*huge.png' is 40×40 = 1,600 pixels, more than max_pixels=900"
    ):
        small.load_images([huge])
    with pytest.raises(TypeError, match=r"paths must hold strings or path objects, got int 3"):
        data.load_images([good, 3])
    with pytest.raises(TypeError, match=r"paths must be a path or a sequence of paths, got int"):
        data.load_images(3)
    with pytest.raises(TypeError, match=r"resize must be None, True or False, got 'yes'"):
        data.load_images([good], resize="yes")
    direct = ImageDataSet(ArraySplit(np.zeros((2, 6, 5, 3)), np.zeros(2, dtype=np.int64)))
    with pytest.raises(ValueError, match=r"load_images needs an ImageDataSet built by ImageDataSet.from_dir"):
        direct.load_images([good])


def test_load_images_then_predict_as_the_test_split(tmp_path, rng):
    _folder(tmp_path, rng, n=4)
    _folder(tmp_path, rng, n=2, split="test")
    data = ImageDataSet.from_dir(tmp_path, image_size=(5, 5), channels=1)
    net = neuro.Network(input_shape=data.input_shape, loss="crossentropy", optimizer="adam", seed=0)
    net.add(neuro.Flatten()).add(neuro.Dense(2, activation="softmax"))
    net.fit(data, batch_size=4, epochs=1, verbose=0)
    x = data.load_images(_paths(tmp_path, "test", n=2))
    np.testing.assert_array_equal(net.predict(x), net.predict(data.test.arrays()[0]))
    classes, _ = net.predict_class(x)
    assert set(classes) <= {"a_cat", "b_dog"}


# -- augmentation with probabilities ----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_rotate_by_quarter_turns_is_rot90(n):
    x = np.arange(3 * n * n * 2, dtype=np.float32).reshape(3, n, n, 2) + 1
    for k in range(-5, 6):
        np.testing.assert_array_equal(rotate(x, 90 * k), np.rot90(x, k, axes=(1, 2)))
    np.testing.assert_array_equal(
        rotate(x, [90, 0, -90]), np.stack([np.rot90(x[0]), x[1], np.rot90(x[2], -1)])
    )


def test_rotate_zero_is_the_identity_and_180_a_double_flip_for_any_shape():
    x = np.arange(2 * 4 * 7 * 3, dtype=np.uint8).reshape(2, 4, 7, 3)
    out = rotate(x, 0)
    assert out.dtype == np.uint8 and out is not x
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(rotate(x, 180), x[:, ::-1, ::-1])
    np.testing.assert_array_equal(rotate(x, -360), x)


def _rotate_reference(img: np.ndarray, degrees: float) -> np.ndarray:
    """Per-pixel loops: each output pixel reads the source pixel the counter-clockwise turn came from."""
    h, w = img.shape[:2]
    ci, cj = (h - 1) / 2, (w - 1) / 2
    t = math.radians(degrees)
    out = np.zeros_like(img)
    for r in range(h):
        for c in range(w):
            y, x = r - ci, c - cj  # rows grow downwards
            sr = round(y * math.cos(t) + x * math.sin(t) + ci)
            sc = round(-y * math.sin(t) + x * math.cos(t) + cj)
            if 0 <= sr < h and 0 <= sc < w:
                out[r, c] = img[sr, sc]
    return out


@pytest.mark.parametrize("degrees", [45, -30, 10, 135, 77.5])
def test_rotate_other_angles_against_a_loop(degrees):
    x = np.arange(1, 2 * 7 * 6 + 1, dtype=np.float64).reshape(2, 7, 6, 1)
    out = rotate(x, degrees)
    for i in range(2):
        np.testing.assert_array_equal(out[i], _rotate_reference(x[i], degrees))


def test_rotate_45_on_a_3x3_by_hand():
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    # 1 2 3 / 4 5 6 / 7 8 9 turned 45° counter-clockwise: the corners read the edge pixels beside them
    np.testing.assert_array_equal(rotate(x, 45)[0, :, :, 0], [[2, 3, 6], [1, 5, 9], [4, 7, 8]])


def test_rotate_errors():
    with pytest.raises(ValueError, match=r"rotate needs images \(B, H, W, C\), got shape \(3, 3\)"):
        rotate(np.zeros((3, 3)), 90)
    with pytest.raises(ValueError, match=r"degrees must be one finite angle or one per image \(2\)"):
        rotate(np.zeros((2, 3, 3, 1)), [1, 2, 3])
    with pytest.raises(ValueError, match=r"degrees must be one finite angle"):
        rotate(np.zeros((2, 3, 3, 1)), float("nan"))


def test_probabilities_true_false_and_exact_flips():
    assert Augment(hflip=True) == Augment(hflip=0.5) and Augment(vflip=False) == Augment()
    assert Augment(hflip=1).hflip == 1.0  # a number is a probability: 1 flips every image
    assert Augment.coerce({"hflip": 0.0, "rotate": 30, "rotate_p": 0}) is None  # nothing can happen
    x = np.arange(8 * 3 * 4, dtype=np.float32).reshape(8, 3, 4, 1)
    np.testing.assert_array_equal(Augment(hflip=1.0).apply(x.copy(), np.random.default_rng(0)), x[:, :, ::-1])
    np.testing.assert_array_equal(Augment(vflip=1.0).apply(x.copy(), np.random.default_rng(0)), x[:, ::-1])
    np.testing.assert_array_equal(Augment(rotate=(90, 0.0)).apply(x.copy(), np.random.default_rng(0)), x)
    out = Augment(hflip=0.3, vflip=0.8).apply(x.copy(), np.random.default_rng(7))
    r = np.random.default_rng(7)
    h, v = r.random(8) < 0.3, r.random(8) < 0.8
    for i in range(8):
        expected = x[i, :, ::-1] if h[i] else x[i]
        np.testing.assert_array_equal(out[i], expected[::-1] if v[i] else expected)


def test_rotation_with_a_probability_is_exact_for_a_seed():
    x = np.arange(6 * 5 * 5, dtype=np.float32).reshape(6, 5, 5, 1)
    aug = Augment(rotate=(40, 0.5))
    out = aug.apply(x.copy(), np.random.default_rng(3))
    r = np.random.default_rng(3)
    angles = r.uniform(-40, 40, 6)
    angles[r.random(6) >= 0.5] = 0
    assert 0 < (angles != 0).sum() < 6
    np.testing.assert_array_equal(out, rotate(x, angles))
    np.testing.assert_array_equal(aug.apply(x.copy(), np.random.default_rng(3)), out)  # deterministic
    # rotate_p=1 (the default) draws exactly what earlier releases drew: no mask
    everyone = Augment(rotate=40).apply(x.copy(), np.random.default_rng(3))
    np.testing.assert_array_equal(everyone, rotate(x, np.random.default_rng(3).uniform(-40, 40, 6)))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_probabilities_hold_statistically(p):
    n = 4000
    bound = 4.5 * math.sqrt(p * (1 - p) / n)  # about one failure in 10^5 seeds
    x = np.zeros((n, 2, 2, 1), dtype=np.float32)
    x[:, 0, 0] = 1  # the top-left pixel marks the orientation
    images = np.random.default_rng(9).random((n, 9, 9, 1)).astype(np.float32)
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        flipped = Augment(hflip=p).apply(x.copy(), rng)[:, 0, 1, 0] == 1
        assert abs(flipped.mean() - p) < bound
        upside_down = Augment(vflip=p).apply(x.copy(), rng)[:, 1, 0, 0] == 1
        assert abs(upside_down.mean() - p) < bound
        # a 9×9 image turned by more than about 5° changes: of the turned ones, some 3 % (|angle| < 5° of
        # ±180°) may stay as they were
        changed = (Augment(rotate=(180, p)).apply(images.copy(), rng) != images).any(axis=(1, 2, 3))
        assert p * 0.94 - bound < changed.mean() < p + bound


def test_augment_argument_errors():
    cases = [
        (
            {"hflip": 1.5},
            ValueError,
            r"augment hflip must be a probability in \[0, 1\] \(or True for 0.5\), got 1.5",
        ),
        (
            {"vflip": "often"},
            TypeError,
            r"augment vflip must be a probability in \[0, 1\] \(or True for 0.5\), got 'often'",
        ),
        (
            {"rotate": (30,)},
            ValueError,
            r"augment rotate must be an angle or a pair \(angle, p\), got \(30,\)",
        ),
        (
            {"rotate": (30, 0.5), "rotate_p": 0.5},
            ValueError,
            r"rotate=\(angle, p\) already gives the probability",
        ),
        ({"rotate": (30, 2)}, ValueError, r"augment rotate_p must be a probability in \[0, 1\]"),
        ({"rotate": (200, 0.5)}, ValueError, r"augment rotate must be in \[0, 180\], got 200.0"),
        ({"rotate": "30"}, TypeError, r"augment rotate must be a number, got '30'"),
        ({"shift": 1.0}, ValueError, r"augment shift must be in \[0, 1\), got 1.0"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            Augment(**kwargs)
        with pytest.raises(error, match=message):
            Augment.coerce(kwargs)


def test_probabilities_through_an_image_data_set(tmp_path, rng):
    _folder(tmp_path, rng, shape=(5, 5), n=4)
    data = ImageDataSet.from_dir(tmp_path, augment={"hflip": 1.0, "rotate": (90, 0.0)})
    x, _ = data.train.arrays()
    ((augmented, _),) = data.train.batches(np.arange(8), 8, augment=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(augmented, x[:, :, ::-1])


def test_the_docstring_examples_run():
    for module in (augment_module, dataset_module):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# -- summaries --------------------------------------------------------------------------------------------------
def test_image_data_set_summary_exact(tmp_path, rng):
    _folder(tmp_path, rng, n=4)
    _folder(tmp_path, rng, n=1, split="test")
    data = ImageDataSet.from_dir(tmp_path, valid_frac=0.25, augment={"hflip": True, "rotate": (10, 0.3)})
    printed = []
    text = data.summary(print_fn=printed.append)
    assert printed == [text] and str(data) == text
    assert text == "\n".join(
        [
            "ImageDataSet",
            "  samples        train 6, valid 2, test 2",
            "  inputs         (6, 5, 3) float32",
            "  targets        class ids, int64",
            "  classes        2 (samples per class in train / valid / test)",
            "                   a_cat   3 / 1 / 1",
            "                   b_dog   3 / 1 / 1",
            "  input scaler   none",
            "  output scaler  none",
            "  images         6×5 (as read), 3 channels, stored as uint8, times 1/255 per batch, in memory",
            "  augment        hflip p=0.5, rotate ±10° p=0.3 (training split)",
        ]
    )
    assert repr(data) == "ImageDataSet(train=6, valid=2, test=2, input_shape=(6, 5, 3), classes=2)"
    lazy = ImageDataSet.from_dir(tmp_path, image_size=4, channels=1, one_hot=True, lazy=True)
    text = lazy.summary(print_fn=None)
    assert "  targets        one-hot rows (2,) float32\n" in text
    assert (
        "  images         4×4 (resized), 1 channel, stored as uint8, times 1/255 per batch, decoded per batch (lazy)"
        in text
    )
    assert text.endswith("  augment        none")


def test_tabular_summary_with_names_scalers_and_many_features(tmp_path):
    csv = tmp_path / "iris.csv"
    rows = ["sepal,petal,kind"] + [f"{i % 5},{(i * 3) % 7},{'abc'[i % 3]}" for i in range(30)]
    csv.write_text("\n".join(rows) + "\n")
    data = TabularDataSet.from_csv(
        csv, target_columns=-1, classification=True, valid_frac=0.2
    ).normalize_input()
    text = str(data)
    assert "  input names    sepal, petal\n" in text
    assert "  classes        3 (samples per class in train / valid)\n" in text
    a, b = data.input_scaler.a, data.input_scaler.b
    assert (
        f"  input scaler   normalize 2 features: min [{a[0]:.4g}, {a[1]:.4g}], range [{b[0]:.4g}, {b[1]:.4g}]"
        in text
    )
    counts = np.bincount(data.train.arrays()[1], minlength=3)
    assert f"                   a   {counts[0]:>2} / " in text
    wide = TabularDataSet.from_arrays(np.arange(40.0).reshape(4, 10), np.arange(4.0)).standardize_input()
    wide.standardize_output()
    text = wide.summary(print_fn=None)
    assert "  input scaler   standardize 10 features: mean 15 to 24, std 11.18 to 11.18\n" in text
    assert "  output scaler  standardize 1 feature: mean [1.5], std [1.118]" in text
    assert "  targets        () float32\n" in text


def test_many_classes_are_cut_and_several_arrays_described():
    y = np.arange(24) % 12
    data = DataSet(ArraySplit(np.zeros((24, 3)), y), class_names=[f"c{k:02d}" for k in range(12)])
    text = data.summary(print_fn=None)
    assert "  classes        12 (samples per class in train / valid)\n" in text
    assert "                   c09   2 / 0\n" in text and "c10" not in text
    assert "                   … 2 more\n" in text
    multi = DataSet(
        ArraySplit(
            {"a": np.zeros((3, 2)), "b": np.zeros((3, 4), dtype=np.int64)}, [np.zeros(3), np.zeros((3, 2))]
        )
    )
    text = multi.summary(print_fn=None)
    assert "  inputs         a: (2,) float32, b: (4,) int64\n" in text
    assert "  targets        () float64, (2,) float64\n" in text


def test_text_data_set_summary(tmp_path):
    for cls, words in (("neg", "bad dull film"), ("pos", "good great film")):
        for i in range(3):
            (tmp_path / cls).mkdir(exist_ok=True)
            (tmp_path / cls / f"{i}.txt").write_text(words)
    data = TextDataSet.from_dir(tmp_path, sequence_length=4)
    text = str(data)
    assert text.startswith(
        "TextDataSet\n  samples        train 6, valid 0, test none\n  inputs         (4,) int64\n"
    )
    assert "  vocabulary     7 word tokens, lower-cased (id 0 padding, 1 unknown)" in text
    assert "                   neg   3 / 0\n" in text
    assert repr(data).startswith(
        "TextDataSet(train=6, valid=0, test=None, input_shape=(4,), classes=2, vocabulary="
    )
    book = tmp_path / "book.txt"
    book.write_text("abcabcabc" * 20)
    lm = TextDataSet.from_file(book, sequence_length=10)
    text = lm.summary(print_fn=None)
    assert "  targets        the next token of each position, (10,) int64\n" in text
    assert "classes" not in text and "  vocabulary     5 character tokens (id 0 padding, 1 unknown)" in text


# -- hostile files for load_images ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def png_data_set(tmp_path_factory):
    root = _folder(tmp_path_factory.mktemp("hostile"), np.random.default_rng(0), shape=(6, 5, 3), n=2)
    data = ImageDataSet.from_dir(root)
    return data, _paths(root, n=2)[0].read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_load_images_of_hostile_files_give_images_or_image_file_error(png_data_set, tmp_path, data):
    """Random bytes, PNGs cut short or with bytes flipped: an array of the data set's shape or ImageFileError
    naming the file, in bounded time."""
    import time

    ds, good = png_data_set
    kind = data.draw(st.sampled_from(["random", "cut", "flipped"]))
    if kind == "random":
        raw = data.draw(st.binary(max_size=400))
    elif kind == "cut":
        raw = good[: data.draw(st.integers(0, len(good) - 1))]
    else:
        raw = bytearray(good)
        for i in data.draw(st.lists(st.integers(0, len(good) - 1), min_size=1, max_size=4)):
            raw[i] ^= data.draw(st.integers(1, 255))
        raw = bytes(raw)
    path = tmp_path / "stranger.png"
    path.write_bytes(raw)
    start = time.perf_counter()
    try:
        out = ds.load_images([path])
    except ImageFileError as exc:
        assert str(path) in str(exc)
    else:
        assert out.shape == (1, 6, 5, 3) and out.dtype == np.float32 and np.isfinite(out).all()
    assert time.perf_counter() - start < 5
