"""ImageDataSet and load_image_folder: formats, depths, limits, errors, lazy loading and augmentation."""

from __future__ import annotations

import hashlib
import os
import signal
import struct
import threading
import time
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from neuro.data import Augment, ImageDataSet, ImageSplit, load_image_folder
from neuro.data.images import ImageSkippedWarning


def _save(path, arr, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def _folder(root, rng, classes=("b_dog", "a_cat"), n=3, shape=(6, 5, 3), split="train", ext="png"):
    for cls in classes:
        for i in range(n):
            _save(root / split / cls / f"{i}.{ext}", rng.integers(0, 256, size=shape, dtype=np.uint8))
    return root


def _expected(paths, scale=1 / 255):
    return np.stack(
        [np.multiply(np.asarray(Image.open(p)), np.float32(scale), dtype=np.float32) for p in paths]
    )


def _snapshot(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            st = os.lstat(p)
            if os.path.isfile(p):
                out[p] = (hashlib.sha256(open(p, "rb").read()).hexdigest(), st.st_mtime_ns, st.st_size)
    return out


class _alarm:
    """Fail instead of hanging: SIGALRM after ``seconds``."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        def fail(*_):
            raise TimeoutError("the loader blocked")

        self.old = signal.signal(signal.SIGALRM, fail)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.old)


def test_png_folder_classes_labels_and_values(tmp_path, rng):
    _folder(tmp_path, rng)
    data = ImageDataSet.from_dir(tmp_path)
    assert data.class_names == ["a_cat", "b_dog"] and data.test is None and len(data.valid) == 0
    assert data.input_shape == (6, 5, 3) and data.image_size == (6, 5) and data.channels == 3
    assert data.input_scaler is None and data.output_scaler is None
    x, y = data.train.arrays()
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 1])
    paths = [tmp_path / "train" / c / f"{i}.png" for c in ("a_cat", "b_dog") for i in range(3)]
    np.testing.assert_array_equal(x, _expected(paths))
    assert x.dtype == np.float32 and y.dtype == np.int64


def test_images_held_as_uint8_within_the_memory_bound(tmp_path, rng):
    _folder(tmp_path, rng, n=10, shape=(8, 7, 3))
    data = ImageDataSet.from_dir(tmp_path, valid_frac=0.2)
    assert isinstance(data.train, ImageSplit) and data.train.storage_dtype == np.uint8
    n = len(data.train) + len(data.valid)
    assert data.train.nbytes == n * 8 * 7 * 3 <= 1.5 * n * 8 * 7 * 3
    assert data.valid.nbytes == data.train.nbytes  # one shared array, no copy per split


def test_peak_memory_of_an_in_memory_load(tmp_path, rng):
    import tracemalloc

    _folder(tmp_path / "warm", rng, n=1)
    ImageDataSet.from_dir(tmp_path / "warm")  # Pillow's plugins are imported once
    _folder(tmp_path / "big", rng, classes=("a", "b"), n=150, shape=(32, 32, 3))
    tracemalloc.start()
    data = ImageDataSet.from_dir(tmp_path / "big", valid_frac=0.1)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = 300 * 32 * 32 * 3
    assert data.train.nbytes == size
    assert peak <= 1.5 * size and kept <= 1.5 * size


def test_jpeg_and_bmp(tmp_path, rng):
    _folder(tmp_path, rng, classes=("j",), ext="jpg", shape=(8, 8, 3))
    _folder(tmp_path, rng, classes=("k",), ext="bmp", shape=(8, 8, 3))
    data = ImageDataSet.from_dir(tmp_path)
    x, y = data.train.arrays()
    paths = [tmp_path / "train" / c / f"{i}.{e}" for c, e in (("j", "jpg"), ("k", "bmp")) for i in range(3)]
    np.testing.assert_array_equal(x, _expected(paths))
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 1])


def test_scale_one_hot_and_valid_split(tmp_path, rng):
    _folder(tmp_path, rng, n=5)
    data = ImageDataSet.from_dir(tmp_path, scale=1.0, one_hot=True, valid_frac=0.3, seed=2)
    assert len(data.train) == 7 and len(data.valid) == 3
    tx, ty = data.train.arrays()
    vx, vy = data.valid.arrays()
    assert ty.dtype == np.float32 and ty.shape == (7, 2) and (ty.sum(axis=1) == 1).all()
    assert tx.max() > 1.0 and np.array_equal(tx, np.rint(tx))  # raw 0..255
    full, fy = ImageDataSet.from_dir(tmp_path, scale=1.0).train.arrays()
    perm = np.random.default_rng(2).permutation(10)
    np.testing.assert_array_equal(vx, full[np.sort(perm[7:])])
    np.testing.assert_array_equal(tx, full[np.sort(perm[:7])])
    np.testing.assert_array_equal(vy.argmax(axis=1), fy[np.sort(perm[7:])])


def test_test_folder_uses_training_class_ids(tmp_path, rng):
    _folder(tmp_path, rng, classes=("a", "b", "c"))
    _folder(tmp_path, rng, classes=("c",), n=2, split="test")
    data = ImageDataSet.from_dir(tmp_path)
    _, y = data.test.arrays()
    np.testing.assert_array_equal(y, [2, 2])
    _folder(tmp_path, rng, classes=("zebra",), n=1, split="test")
    with pytest.raises(
        ValueError,
        match=r"class 'zebra' of test folder '.*test' is not a class of the training folder \(classes: \['a', 'b', 'c'\]\)",
    ):
        ImageDataSet.from_dir(tmp_path)


def test_folder_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match=r"path '.*nowhere' is not a folder"):
        ImageDataSet.from_dir(tmp_path / "nowhere")
    with pytest.raises(
        FileNotFoundError, match=r"has no train/ folder \(expected '.*train'/<class>/<image>\)"
    ):
        ImageDataSet.from_dir(tmp_path)
    (tmp_path / "train").mkdir()
    with pytest.raises(ValueError, match=r"train folder '.*train' holds no class sub-folders"):
        ImageDataSet.from_dir(tmp_path)
    _folder(tmp_path, rng, classes=("a",), n=1)
    (tmp_path / "train" / "empty").mkdir()
    (tmp_path / "train" / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"class folder '.*empty' holds no image files"):
        ImageDataSet.from_dir(tmp_path)


def test_hidden_entries_and_other_files_are_ignored(tmp_path, rng):
    _folder(tmp_path, rng, classes=("a",), n=2)
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "train" / "a" / ".DS_Store").write_bytes(b"\x00junk")
    (tmp_path / "train" / "a" / "readme.txt").write_text("hello")
    (tmp_path / "train" / "a" / "sub.png").mkdir()
    data = ImageDataSet.from_dir(tmp_path)
    assert data.class_names == ["a"] and len(data.train) == 2


def test_corrupt_image_raises_or_is_skipped(tmp_path, rng):
    _folder(tmp_path, rng, n=2)
    bad = tmp_path / "train" / "a_cat" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(ValueError, match=r"image '.*broken.png' cannot be read"):
        ImageDataSet.from_dir(tmp_path)
    with pytest.warns(ImageSkippedWarning, match=r"skipping: image '.*broken.png' cannot be read"):
        data = ImageDataSet.from_dir(tmp_path, on_error="skip")
    assert len(data.train) == 4
    # a valid header with truncated pixel data fails when decoded
    good = (tmp_path / "train" / "b_dog" / "0.png").read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"image '.*broken.png' cannot be decoded"):
        ImageDataSet.from_dir(tmp_path)
    with pytest.warns(ImageSkippedWarning, match=r"broken.png' cannot be decoded"):
        data = ImageDataSet.from_dir(tmp_path, on_error="skip")
    x, y = data.train.arrays()
    np.testing.assert_array_equal(y, [0, 0, 1, 1])
    assert len(x) == 4


def test_mixed_channels_and_sizes(tmp_path, rng):
    _folder(tmp_path, rng, classes=("rgb",), shape=(4, 4, 3), n=1)
    gray = _save(tmp_path / "train" / "gray" / "0.png", rng.integers(0, 256, size=(4, 4), dtype=np.uint8))
    with pytest.raises(
        ValueError,
        match=r"images have different channel counts: '.*gray/0.png' has 1 but '.*rgb/0.png' has 3; pass channels=1",
    ):
        ImageDataSet.from_dir(tmp_path)
    data = ImageDataSet.from_dir(tmp_path, channels=1)
    x, _ = data.train.arrays()
    assert x.shape == (2, 4, 4, 1)
    np.testing.assert_array_equal(x[0, ..., 0], _expected([gray])[0])
    rgb = np.asarray(Image.open(tmp_path / "train" / "rgb" / "0.png").convert("L"))
    np.testing.assert_array_equal(x[1, ..., 0], np.multiply(rgb, np.float32(1 / 255), dtype=np.float32))
    assert ImageDataSet.from_dir(tmp_path, channels=3).input_shape == (4, 4, 3)
    _save(tmp_path / "train" / "gray" / "1.png", rng.integers(0, 256, size=(5, 4), dtype=np.uint8))
    with pytest.raises(
        ValueError,
        match=r"images differ in size: '.*gray/0.png' is 4×4 \(height×width\) but '.*gray/1.png' is 5×4; pass image_size=",
    ):
        ImageDataSet.from_dir(tmp_path, channels=1)
    data = ImageDataSet.from_dir(tmp_path, channels=1, image_size=(3, 2))
    assert data.train.arrays()[0].shape == (3, 3, 2, 1)
    assert ImageDataSet.from_dir(tmp_path, channels=1, image_size=7).input_shape == (7, 7, 1)


@pytest.mark.parametrize("bad", [0, -1, (3,), (2, 0), (2, 3, 4), 2.5, True, "32", (2.0, 3)])
def test_size_must_be_a_pair_of_positive_integers(tmp_path, rng, bad):
    _folder(tmp_path, rng, n=1)
    with pytest.raises(
        ValueError,
        match=r"image_size must be a positive integer or a pair \(height, width\) of positive integers, got ",
    ):
        ImageDataSet.from_dir(tmp_path, image_size=bad)
    with pytest.raises(
        ValueError,
        match=r"^size must be a positive integer or a pair \(height, width\) of positive integers, got ",
    ):
        load_image_folder(tmp_path / "train", size=bad)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"valid_frac": 1.0}, ValueError, r"valid_frac must be in \[0, 1\), got 1.0"),
        ({"valid_frac": -0.5}, ValueError, r"valid_frac must be in \[0, 1\), got -0.5"),
        ({"channels": 5}, ValueError, r"channels must be None, 1, 2, 3 or 4, got 5"),
        ({"scale": 0}, ValueError, r"scale must be a positive finite number, got 0"),
        ({"scale": float("nan")}, ValueError, r"scale must be a positive finite number, got nan"),
        ({"on_error": "ignore"}, ValueError, r"on_error must be 'raise' or 'skip', got 'ignore'"),
        ({"max_pixels": 0}, ValueError, r"max_pixels must be a positive integer, got 0"),
        ({"workers": 0}, ValueError, r"workers must be a positive integer, got 0"),
        ({"one_hot": 1}, ValueError, r"one_hot must be True or False, got 1"),
        ({"augment": {"flip": True}}, ValueError, r"augment has unknown keys \['flip'\]"),
        ({"augment": {"rotate": 200}}, ValueError, r"augment rotate must be in \[0, 180\], got 200.0"),
        ({"augment": {"shift": 1.0}}, ValueError, r"augment shift must be in \[0, 1\), got 1.0"),
        ({"augment": {"hflip": "yes"}}, TypeError, r"augment hflip must be a probability in \[0, 1\] \(or True for 0.5\), got 'yes'"),
        ({"augment": [1]}, TypeError, r"augment must be None, a dict or an Augment, got list"),
    ],
)
def test_argument_errors(tmp_path, rng, kwargs, error, message):
    _folder(tmp_path, rng, n=1)
    with pytest.raises(error, match=message):
        ImageDataSet.from_dir(tmp_path, **kwargs)


def test_16_bit_images_keep_their_range(tmp_path):
    a16 = np.array([[0, 40000], [65535, 1000]], dtype=np.uint16)
    _save(tmp_path / "train" / "deep" / "a.png", a16)
    data = ImageDataSet.from_dir(tmp_path)
    assert data.train.storage_dtype == np.uint16
    x, _ = data.train.arrays()
    np.testing.assert_allclose(x[0, ..., 0], a16 / 65535, rtol=1e-6)
    assert x[0, 0, 1, 0] == pytest.approx(40000 / 65535, rel=1e-6)  # not clipped to 1.0
    # an 8-bit image beside it shares the range: 255 -> 65535 -> 1.0
    _save(tmp_path / "train" / "flat" / "b.png", np.array([[255, 0], [128, 1]], dtype=np.uint8))
    x, y = ImageDataSet.from_dir(tmp_path).train.arrays()
    np.testing.assert_allclose(x[y == 1][0, ..., 0], np.array([[255, 0], [128, 1]]) / 255, rtol=1e-6)
    x, _, _ = load_image_folder(tmp_path / "train", grayscale=True)
    np.testing.assert_allclose(x[0, ..., 0], a16 / 65535, rtol=1e-6)
    rgb = ImageDataSet.from_dir(tmp_path, channels=3).train.arrays()[0]
    np.testing.assert_allclose(rgb[0], np.repeat(a16[..., None] / 65535, 3, axis=2), rtol=1e-6)
    with pytest.raises(
        ValueError,
        match=r"has 16-bit pixels, which convert to 1 or 3 channels only; pass channels=1 or channels=3, got 4",
    ):
        ImageDataSet.from_dir(tmp_path, channels=4)


def test_float_images_kept_as_stored(tmp_path):
    f = np.array([[0.5, 2.0], [-1.0, 0.25]], dtype=np.float32)
    _save(tmp_path / "train" / "f" / "a.tif", f)
    data = ImageDataSet.from_dir(tmp_path, scale=1 / 255)
    assert data.train.storage_dtype == np.float32
    np.testing.assert_array_equal(data.train.arrays()[0][0, ..., 0], f)
    _save(tmp_path / "train" / "g" / "b.png", np.array([[255, 0], [51, 0]], dtype=np.uint8))
    x, y = ImageDataSet.from_dir(tmp_path).train.arrays()
    np.testing.assert_array_equal(x[y == 0][0, ..., 0], f)
    np.testing.assert_allclose(x[y == 1][0, ..., 0], [[1, 0], [0.2, 0]], rtol=1e-6)


def _png_claiming(path, width, height):
    """A valid 1×1 PNG whose IHDR (with a correct CRC) claims another size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's own, above ours
def test_huge_image_refused_from_its_header(tmp_path, rng):
    _folder(tmp_path, rng, n=1)
    _png_claiming(tmp_path / "train" / "a_cat" / "huge.png", 12000, 12000)
    start = time.perf_counter()
    with pytest.raises(
        ValueError,
        match=r"image '.*huge.png' is 12000×12000 = 144,000,000 pixels, more than max_pixels=67,108,864; pass a larger max_pixels",
    ):
        ImageDataSet.from_dir(tmp_path, image_size=(4, 4))
    assert time.perf_counter() - start < 2
    with pytest.warns(ImageSkippedWarning, match=r"huge.png' is 12000×12000"):
        data = ImageDataSet.from_dir(tmp_path, image_size=(4, 4), on_error="skip")
    assert len(data.train) == 2
    with pytest.raises(ValueError, match=r"is 6×5|is 5×6"):
        ImageDataSet.from_dir(tmp_path, max_pixels=29, on_error="raise")


def test_beyond_pillows_own_bomb_limit(tmp_path, rng):
    _folder(tmp_path, rng, n=1)
    _png_claiming(tmp_path / "train" / "a_cat" / "bomb.png", 20000, 20000)  # > 2 × PIL.Image.MAX_IMAGE_PIXELS
    with pytest.raises(ValueError, match=r"image '.*bomb.png' cannot be read: DecompressionBombError"):
        ImageDataSet.from_dir(tmp_path, max_pixels=10**9)


def test_palette_with_transparency_and_channels(tmp_path):
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], dtype=np.uint8), mode="P")
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.info["transparency"] = 0
    (tmp_path / "train" / "p").mkdir(parents=True)
    pal.save(tmp_path / "train" / "p" / "a.png", transparency=0)
    data = ImageDataSet.from_dir(tmp_path)
    assert data.input_shape == (2, 2, 4)
    x, _ = data.train.arrays()
    np.testing.assert_array_equal(x[0, 0, 0], [1, 0, 0, 0])  # red, fully transparent
    np.testing.assert_array_equal(x[0, 0, 1], [0, 0, 1, 1])  # blue, opaque
    rgb, _ = ImageDataSet.from_dir(tmp_path, channels=3).train.arrays()
    np.testing.assert_array_equal(rgb[0, :, :, 2], [[0, 1], [1, 0]])


def test_jpeg_decoded_at_reduced_size_within_the_limit(tmp_path, rng):
    big = np.kron(rng.integers(0, 256, size=(10, 10, 3)), np.ones((80, 80, 1))).astype(np.uint8)
    _save(tmp_path / "train" / "j" / "big.jpg", big, quality=90)
    data = ImageDataSet.from_dir(tmp_path, image_size=(50, 50), max_pixels=20_000)  # 800×800 > 20,000
    x, _ = data.train.arrays()
    assert x.shape == (1, 50, 50, 3)
    reference = np.asarray(Image.fromarray(big).resize((50, 50), Image.Resampling.BILINEAR)) / 255
    assert np.abs(x[0] - reference).mean() < 0.05
    _save(tmp_path / "train" / "p" / "big.png", big)
    with pytest.raises(
        ValueError, match=r"big.png' is 800×800 = 640,000 pixels, more than max_pixels=20,000"
    ):
        ImageDataSet.from_dir(tmp_path, image_size=(50, 50), max_pixels=20_000)


@pytest.mark.parametrize("lazy", [False, True])
def test_named_pipe_does_not_hang(tmp_path, rng, lazy):
    _folder(tmp_path, rng, n=2)
    os.mkfifo(tmp_path / "train" / "a_cat" / "x.png")
    with _alarm(10):
        with pytest.raises(ValueError, match=r"x.png' is a named pipe, expected a regular file"):
            ImageDataSet.from_dir(tmp_path, lazy=lazy)
        with pytest.warns(ImageSkippedWarning, match=r"x.png' is a named pipe"):
            data = ImageDataSet.from_dir(tmp_path, lazy=lazy, on_error="skip")
        assert len(data.train) == 4 and len(data.train.arrays()[0]) == 4


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_file_is_refused(tmp_path, rng):
    _folder(tmp_path, rng, n=1)
    os.symlink("/dev/zero", tmp_path / "train" / "a_cat" / "z.png")  # endless data if it were read
    with _alarm(10):
        with pytest.raises(ValueError, match=r"z.png' is a character device, expected a regular file"):
            ImageDataSet.from_dir(tmp_path)


def _all_batches(split, order, batch, augment=False, seed=None):
    rng = None if seed is None else np.random.default_rng(seed)
    return list(split.batches(order, batch, augment=augment, rng=rng))


@pytest.mark.parametrize("workers", [1, 3])
def test_lazy_equals_in_memory(tmp_path, rng, workers):
    _folder(tmp_path, rng, classes=("a", "b", "c"), n=7, shape=(9, 8, 3))
    _folder(tmp_path, rng, classes=("a", "b"), n=3, shape=(9, 8, 3), split="test")
    aug = Augment(hflip=True, vflip=True, rotate=30, shift=0.2)
    kw = dict(valid_frac=0.25, seed=4, augment=aug, one_hot=True, image_size=(7, 6))
    mem = ImageDataSet.from_dir(tmp_path, **kw)
    lazy = ImageDataSet.from_dir(tmp_path, lazy=True, workers=workers, **kw)
    assert lazy.train.lazy and not mem.train.lazy and lazy.train.nbytes == 0
    order = np.random.default_rng(9).permutation(len(mem.train))
    for augment in (False, True):
        a = _all_batches(mem.train, order, 4, augment, seed=11)
        b = _all_batches(lazy.train, order, 4, augment, seed=11)
        assert len(a) == len(b) == 4
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    for name in ("valid", "test"):
        xa, ya = getattr(mem, name).arrays()
        xb, yb = getattr(lazy, name).arrays()
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_lazy_prefetch_stops_cleanly(tmp_path, rng):
    _folder(tmp_path, rng, n=20)
    data = ImageDataSet.from_dir(tmp_path, lazy=True)
    before = threading.active_count()
    gen = data.train.batches(np.arange(40), 2)
    next(gen)
    gen.close()  # abandoned after one batch: the pool shuts down
    time.sleep(0.05)
    assert threading.active_count() == before
    deep = tmp_path / "train" / "b_dog" / "0.png"
    _save(deep, np.full((6, 5), 40000, dtype=np.uint16))  # replaced by a 16-bit image after listing
    with pytest.raises(ValueError, match=r"0.png' has 16-bit pixels but the data set holds uint8 images"):
        list(data.train.batches(np.arange(40), 8))
    bad = tmp_path / "train" / "a_cat" / "0.png"
    bad.write_bytes(bad.read_bytes()[:60])  # corrupted after the data set was built
    with pytest.raises(ValueError, match=r"image '.*a_cat/0.png' cannot be (read|decoded)"):
        list(data.train.batches(np.arange(40), 8))


def test_augmentation_only_when_asked_and_reproducible(tmp_path, rng):
    _folder(tmp_path, rng, n=6, shape=(10, 10, 3))
    data = ImageDataSet.from_dir(tmp_path, valid_frac=0.25, augment=dict(hflip=True, rotate=25.0, shift=0.2))
    order = np.arange(len(data.train))
    raw = np.concatenate([b[0] for b in _all_batches(data.train, order, 5)])
    np.testing.assert_array_equal(raw, data.train.arrays()[0])
    a = np.concatenate([b[0] for b in _all_batches(data.train, order, 5, True, seed=1)])
    b = np.concatenate([b[0] for b in _all_batches(data.train, order, 5, True, seed=1)])
    c = np.concatenate([b[0] for b in _all_batches(data.train, order, 5, True, seed=2)])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, raw) and not np.array_equal(a, c)
    assert set(np.unique(a)) <= set(np.unique(raw)) | {0.0}  # nearest-neighbour: values moved, not mixed
    v = _all_batches(data.valid, np.arange(len(data.valid)), 5, True, seed=1)  # valid: never augmented
    np.testing.assert_array_equal(v[0][0], data.valid.arrays()[0])
    with pytest.raises(ValueError, match=r"rng must be a numpy.random.Generator when augment=True, got None"):
        data.train.batches(order, 5, augment=True)


def test_flip_and_shift_exact():
    x = np.arange(2 * 5 * 4, dtype=np.float32).reshape(2, 5, 4, 1) + 1
    out = Augment(hflip=True).apply(x.copy(), np.random.default_rng(0))
    flip = np.random.default_rng(0).random(2) < 0.5
    for i in range(2):
        np.testing.assert_array_equal(out[i], x[i, :, ::-1] if flip[i] else x[i])
    out = Augment(vflip=True).apply(x.copy(), np.random.default_rng(3))
    flip = np.random.default_rng(3).random(2) < 0.5
    for i in range(2):
        np.testing.assert_array_equal(out[i], x[i, ::-1] if flip[i] else x[i])
    out = Augment(shift=0.5).apply(x.copy(), np.random.default_rng(5))
    r = np.random.default_rng(5)
    dy, dx = r.integers(-2, 3, 2), r.integers(-2, 3, 2)
    for i in range(2):
        expected = np.zeros_like(x[i])
        for row in range(5):
            for col in range(4):
                sr, sc = row - dy[i], col - dx[i]
                if 0 <= sr < 5 and 0 <= sc < 4:
                    expected[row, col] = x[i, sr, sc]
        np.testing.assert_array_equal(out[i], expected)


def test_rotation_keeps_the_centre_and_tiny_angles_are_identity():
    x = np.zeros((3, 5, 5, 2), dtype=np.float32)
    x[:, 2, 2] = 7
    x[:, 0, 2] = 3
    out = Augment(rotate=180).apply(x.copy(), np.random.default_rng(0))
    np.testing.assert_array_equal(out[:, 2, 2], 7)
    assert set(np.unique(out)) <= {0.0, 3.0, 7.0}  # nearest neighbour: pixels move, never blend
    assert len({out[i].tobytes() for i in range(3)}) == 3  # one angle per image
    np.testing.assert_array_equal(Augment(rotate=0.5).apply(x.copy(), np.random.default_rng(0)), x)


def test_load_image_folder(tmp_path, rng):
    root = tmp_path / "imgs"
    for cls in ("b_dog", "a_cat"):
        for i in range(2):
            _save(root / cls / f"{i}.png", rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8))
    x, y, names = load_image_folder(root)
    assert x.shape == (4, 6, 5, 3) and x.dtype == np.float32 and names == ["a_cat", "b_dog"]
    np.testing.assert_array_equal(y, [0, 0, 1, 1])
    np.testing.assert_array_equal(x[0], _expected([root / "a_cat" / "0.png"])[0])
    x, _, _ = load_image_folder(root, size=(4, 4), grayscale=True)
    assert x.shape == (4, 4, 4, 1)
    x, _, _ = load_image_folder(root, size=32)
    assert x.shape == (4, 32, 32, 3)
    with pytest.raises(FileNotFoundError, match=r"root '.*missing' is not a folder"):
        load_image_folder(tmp_path / "missing")


def test_loading_never_modifies_the_folder(tmp_path, rng):
    _folder(tmp_path, rng, n=3)
    _folder(tmp_path, rng, n=1, split="test")
    (tmp_path / "train" / "a_cat" / "bad.png").write_bytes(b"not a png")
    before = _snapshot(tmp_path)
    time.sleep(0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImageSkippedWarning)
        for lazy in (False, True):
            data = ImageDataSet.from_dir(tmp_path, on_error="skip", lazy=lazy, valid_frac=0.2)
            data.train.arrays()
            data.test.arrays()
    with pytest.raises(ValueError):
        ImageDataSet.from_dir(tmp_path)
    assert _snapshot(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == ["test", "train"]


# -- non-finite floats, short pixel data, links that loop: refused (naming the file) or skipped -------------
def _png_with_rows(path, width, height, rows, interlace=0):
    """An 8-bit grey PNG whose header declares ``height`` rows but whose (complete, valid) zlib stream holds
    ``rows`` of them: a file Pillow decodes without complaint, zeros in the missing rows."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = b"".join(b"\x00" + bytes([200] * width) for _ in range(rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, interlace))
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("lazy", [False, True])
def test_a_png_whose_pixel_data_stops_early_is_refused_or_skipped(tmp_path, lazy):
    good = _png_with_rows(tmp_path / "train" / "a" / "good.png", 8, 64, 64)
    short = _png_with_rows(tmp_path / "train" / "a" / "short.png", 8, 64, 3)
    _png_with_rows(tmp_path / "train" / "b" / "other.png", 8, 64, 64)
    im = Image.open(short)
    assert (np.asarray(im)[3:] == 0).all() and (np.asarray(im)[:3] == 200).all()  # Pillow: zeros, no error
    message = (
        r"image '.*short.png' cannot be decoded: its pixel data stops after 3 of 64 rows \(a truncated file; "
        r"Pillow would fill the rest with zeros\)"
    )
    with pytest.raises(ValueError, match=message):
        ImageDataSet.from_dir(tmp_path, lazy=lazy).train.arrays()
    with pytest.raises(ValueError, match=message):
        load_image_folder(tmp_path / "train", grayscale=True)
    if not lazy:
        with pytest.warns(ImageSkippedWarning, match=message):
            data = ImageDataSet.from_dir(tmp_path, on_error="skip")
        x, y = data.train.arrays()
        assert y.tolist() == [0, 1]
        np.testing.assert_allclose(x, 200 / 255, rtol=1e-6)  # the complete files, all their rows
    assert np.asarray(Image.open(good)).shape == (64, 8)


def test_complete_pngs_of_every_kind_pass_the_row_check(tmp_path, rng):
    from neuro.data.images import _check_png_data

    arrays = {
        "grey": rng.integers(0, 256, (9, 5), dtype=np.uint8),
        "rgb": rng.integers(0, 256, (9, 5, 3), dtype=np.uint8),
        "rgba": rng.integers(0, 256, (9, 5, 4), dtype=np.uint8),
        "grey16": rng.integers(0, 65536, (9, 5), dtype=np.uint16),
        "bits": rng.integers(0, 2, (13, 7)).astype(bool),
    }
    for name, arr in arrays.items():
        path = _save(tmp_path / f"{name}.png", arr)
        with open(path, "rb") as fh:
            _check_png_data(fh.fileno(), str(path))  # no error
    palette = _save(tmp_path / "p.png", rng.integers(0, 256, (9, 5), dtype=np.uint8))
    Image.open(palette).quantize(4).save(tmp_path / "p4.png", bits=2)
    big = _save(tmp_path / "big.png", rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))  # > one block
    for path in (tmp_path / "p4.png", big):
        with open(path, "rb") as fh:
            _check_png_data(fh.fileno(), str(path))
    # interlaced (Adam7): the size of its seven passes
    from neuro.data.images import _png_data_size

    full, _ = _png_data_size(10, 7, 8, 0, 1)
    assert full == 84  # passes of 2×1, 1×1, 2×1, 3×2, 5×2, 5×3 and 10×3 pixels, a filter byte per row

    def interlaced(n):
        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 7, 8, 0, 0, 0, 1))
            + chunk(b"IDAT", zlib.compress(bytes(n)))
            + chunk(b"IEND", b"")
        )

    (tmp_path / "i.png").write_bytes(interlaced(84))
    Image.open(tmp_path / "i.png").load()
    with open(tmp_path / "i.png", "rb") as fh:
        _check_png_data(fh.fileno(), "i.png")
    (tmp_path / "i.png").write_bytes(interlaced(79))
    with open(tmp_path / "i.png", "rb") as fh, pytest.raises(
        ValueError, match=r"'i.png' cannot be decoded: its \(interlaced\) pixel data stops after 79 of 84 bytes"
    ):
        _check_png_data(fh.fileno(), "i.png")


@pytest.mark.parametrize(("bad", "shown"), [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
@pytest.mark.parametrize("lazy", [False, True])
def test_float_images_holding_nan_or_inf_are_refused_naming_the_file_and_pixel(tmp_path, bad, shown, lazy):
    f = np.array([[0.5, 2.0, 1.0], [-1.0, 0.25, 3.0]], dtype=np.float32)
    _save(tmp_path / "train" / "a" / "ok.tif", f)
    f[1, 2] = bad
    _save(tmp_path / "train" / "b" / "bad.tif", f)
    message = (
        rf"image '.*bad.tif' holds a non-finite pixel value \({shown}\) at row 1, column 2; float images are "
        r"kept as stored, so they must be finite"
    )
    with pytest.raises(ValueError, match=message):
        ImageDataSet.from_dir(tmp_path, lazy=lazy).train.arrays()
    with pytest.raises(ValueError, match=message):
        ImageDataSet.from_dir(tmp_path, lazy=lazy, image_size=(4, 6)).train.arrays()  # the file's own pixel
    _save(tmp_path / "train" / "b" / "fine.tif", np.ones((2, 3), np.float32))
    if not lazy:
        with pytest.warns(ImageSkippedWarning, match=message):
            x, y = ImageDataSet.from_dir(tmp_path, on_error="skip").train.arrays()
        assert y.tolist() == [0, 1] and np.isfinite(x).all()


def test_a_symbolic_link_that_loops_is_refused_or_skipped(tmp_path, rng):
    _folder(tmp_path, rng, n=2)
    loop = tmp_path / "train" / "a_cat" / "loop.png"
    os.symlink("loop.png", loop)  # a link to itself: ELOOP
    with pytest.raises(
        ValueError, match=r"image '.*loop.png' cannot be read: OSError: \[Errno 40\] Too many levels of symbolic links"
    ):
        ImageDataSet.from_dir(tmp_path)
    with pytest.warns(ImageSkippedWarning, match=r"skipping: image '.*loop.png' cannot be read"):
        data = ImageDataSet.from_dir(tmp_path, on_error="skip")
    assert len(data.train) == 4
    with pytest.warns(ImageSkippedWarning, match=r"loop.png' cannot be read"):
        x, y, _ = load_image_folder(tmp_path / "train", on_error="skip")
    assert len(x) == 4
    # a looping link where a class folder could be
    os.unlink(loop)
    os.symlink("cls", tmp_path / "train" / "cls")
    with pytest.raises(ValueError, match=r"entry '.*train/cls' of folder '.*train' cannot be examined: \[Errno 40\]"):
        ImageDataSet.from_dir(tmp_path)
    with pytest.warns(ImageSkippedWarning, match=r"skipping: entry '.*train/cls' of folder"):
        data = ImageDataSet.from_dir(tmp_path, on_error="skip")
    assert data.class_names == ["a_cat", "b_dog"]
