"""Every example runs to completion, in-process through its ``main(argv)``, on tiny data made here.

The MNIST examples get a few dozen generated images as gzip IDX files (the format of the real ones) or as
an image folder, the CIFAR-10 example a generated image folder and generated files of CIFAR-10's binary
version; each trains one epoch. ``xor`` trains with its defaults and must print 0 1 1 0.
"""

from __future__ import annotations

import gzip
import importlib.util
import pathlib
import re
import struct
import sys
from types import ModuleType

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
N_IMAGES = 40


def _example(name: str) -> ModuleType:
    """Import ``examples/NAME.py`` (with ``examples/`` on the path for its ``_common`` helper)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    module = sys.modules.get(f"example_{name}")
    if module is None:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def _write_idx(path: pathlib.Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzip-compressed IDX file: magic (0, 0, type 0x08, ndim), dims, values."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28×28 uint8 images, each a bright bar whose position depends on its label, and the labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for img, label in zip(images, labels, strict=True):
        img[2 + 2 * label : 5 + 2 * label, 4:24] = 255
    return images, labels.astype(np.uint8)


@pytest.fixture(scope="module")
def mnist_idx(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A folder with tiny ``t10k-*`` IDX files, as the MNIST test set is laid out."""
    folder = tmp_path_factory.mktemp("mnist_idx")
    images, labels = _digits(N_IMAGES)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    return folder


def _image_folder(root: pathlib.Path, size: int, mode: str, classes: list[str], per_class: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    channels = 3 if mode == "RGB" else 1
    for split, count in (("train", per_class), ("test", 2)):
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 60, size=(size, size, channels)).astype(np.uint8)
                pixels[k : k + 2] = 250
                Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(
                    folder / f"{i}.png"
                )


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("mnist_images")
    _image_folder(root, 28, "L", [str(d) for d in range(10)], per_class=3)
    return root


def _run(name: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    status = _example(name).main(argv)
    out = capsys.readouterr().out
    assert status == 0, out
    return out


TINY = ["--epochs", "1", "--no-plot"]


def test_xor_reaches_0_1_1_0(capsys, tmp_path):
    png = tmp_path / "xor.png"
    out = _run("xor", ["--plot-file", str(png)], capsys)  # the default epochs and seed
    predictions = [float(v) for v in re.findall(r"-> ([0-9.]+)", out)]
    assert [round(p) for p in predictions] == [0, 1, 1, 0], out
    assert "XOR solved" in out
    if importlib.util.find_spec("matplotlib") is None:
        assert "note: no learning curves written" in out and not png.exists()
    else:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_regression_prints_error_in_original_units(capsys):
    out = _run("regression", ["--limit", "80", "--epochs", "3", "--no-plot"], capsys)
    mae = float(re.search(r"MAE ([0-9.]+)", out).group(1))
    assert 0 < mae < 1000, out  # progression units (tens), not standardised ones (below 2)
    assert "features ['age', 'sex', 'bmi'" in out


@pytest.mark.parametrize("name", ["mnist_feedforward", "adadelta_paper"])
def test_mnist_mlps_on_idx_files(name, mnist_idx, capsys):
    out = _run(name, ["--data", str(mnist_idx), *TINY], capsys)
    assert f"{N_IMAGES - N_IMAGES // 5} training and {N_IMAGES // 5} held-out images" in out
    assert re.search(r"held-out accuracy: [0-9.]+", out)


def test_mnist_feedforward_on_image_folder_with_limit(mnist_folder, capsys):
    out = _run("mnist_feedforward", ["--data", str(mnist_folder), "--limit", "20", *TINY], capsys)
    assert "20 training and 5 held-out images" in out


def test_mnist_cnn_on_idx_files(mnist_idx, capsys, tmp_path):
    model = tmp_path / "cnn.h5"
    out = _run("mnist_cnn", ["--data", str(mnist_idx), "--save", str(model), *TINY], capsys)
    assert "as an image folder" in out
    assert "test accuracy of the reloaded model" in out
    assert "predicts exactly as the trained one: True" in out
    assert len(re.findall(r"predicted '\d' with probability 0\.\d+", out)) == 5, out
    assert model.exists()


def test_mnist_cnn_on_image_folder(mnist_folder, capsys):
    out = _run("mnist_cnn", ["--data", str(mnist_folder), *TINY], capsys)
    assert "test accuracy of the reloaded model on 20 images" in out


def test_mnist_examples_without_data_say_how_to_get_it(tmp_path, capsys):
    status = _example("mnist_feedforward").main(["--data", str(tmp_path), *TINY])
    assert status == 1
    assert "IDX files" in capsys.readouterr().out


def test_cifar10_without_data_explains_and_exits_0(capsys):
    out = _run("cifar10", [], capsys)
    assert "--from-binary" in out and "cifar-10-binary.tar.gz" in out


def test_cifar10_on_image_folder(tmp_path, capsys):
    _image_folder(tmp_path, 12, "RGB", ["cat", "dog", "frog"], per_class=8)
    out = _run("cifar10", ["--data", str(tmp_path), *TINY], capsys)
    assert "classes ['cat', 'dog', 'frog']" in out
    assert re.search(r"test accuracy on 6 images: [0-9.]+", out)


def test_cifar10_from_binary_version(tmp_path, capsys):
    rng = np.random.default_rng(0)
    source = tmp_path / "cifar-10-batches-bin"
    source.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = (np.arange(4) % 3).reshape(-1, 1)
        pixels = rng.integers(0, 256, size=(4, 3 * 32 * 32))
        np.concatenate([labels, pixels], axis=1).astype(np.uint8).tofile(source / name)
    (source / "batches.meta.txt").write_text("airplane\nautomobile\nbird\n")
    out = _run("cifar10", ["--from-binary", str(source), "--data", str(tmp_path / "images"), *TINY], capsys)
    assert "wrote 24 images" in out
    assert {p.name for p in (tmp_path / "images" / "train").iterdir()} == {"airplane", "automobile", "bird"}
    assert "test accuracy on 4 images" in out


def test_demo_runs(capsys):
    out = _run("demo", ["--epochs", "1"], capsys)
    assert re.search(r"held-out accuracy: 0\.\d+", out)


def test_resnet_on_idx_files_is_the_narrow_mnist_network(mnist_idx, capsys):
    out = _run("resnet", ["--data", str(mnist_idx), "--batch-size", "16", *TINY], capsys)
    assert "ResNet-8 (one block per stage)" in out and "32 training and 8 held-out images" in out
    assert "Add" in out and re.search(r"held-out accuracy: [0-9.]+", out)


def test_resnet_on_a_color_image_folder_is_resnet20(tmp_path, capsys):
    _image_folder(tmp_path, 8, "RGB", ["cat", "dog"], per_class=4)
    out = _run("resnet", ["--data", str(tmp_path), "--batch-size", "4", *TINY], capsys)
    assert "ResNet-20 on" in out and "8 training and 4 held-out images" in out
    assert out.count("(Add)") == 9  # three stages of three blocks


def test_two_inputs_trains_both_heads(capsys):
    out = _run("two_inputs", ["--epochs", "2", "--limit", "60", "--no-plot"], capsys)
    assert "'high_accuracy'" in out and "'val_progression_loss'" in out
    assert re.search(r"test MAE of the progression: [0-9.]+", out)
    assert re.search(r"test accuracy of 'above the median': [0-9.]+", out)


def test_sequential_mnist_reads_rows(mnist_idx, capsys):
    out = _run("sequential_mnist", ["--data", str(mnist_idx), "--units", "8", "--batch-size", "8", *TINY], capsys)
    assert "LSTM(8) on" in out and "32 training and 8 held-out sequences" in out
    assert "(None, 28, 28)" in out and re.search(r"held-out accuracy: [0-9.]+", out)


def test_char_lm_reports_perplexity_and_samples(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat. " * 40, encoding="utf-8")
    argv = ["--data", str(text), "--units", "8", "--length", "12", "--samples", "20", *TINY]
    out = _run("char_lm", argv, capsys)
    perplexity = float(re.search(r"held-out perplexity: ([0-9.]+)", out).group(1))
    assert 1.0 <= perplexity < 14  # 12 characters and two reserved ids: a uniform guess is 14
    samples = re.findall(r"--- sample at temperature ([0-9.]+) ---\n(.*)\n", out)
    assert [t for t, _ in samples] == ["0.5", "1.0"]
    assert all(s.startswith("The ") and len(s) == 24 for _, s in samples)


def test_char_lm_default_text_is_pythons_documentation(capsys):
    out = _run("char_lm", ["--limit", "3000", "--units", "8", "--length", "20", "--samples", "5", *TINY], capsys)
    assert re.search(r"held-out perplexity: [0-9.]+", out)


def _text_folder(root: pathlib.Path) -> pathlib.Path:
    rng = np.random.default_rng(0)
    words = {"pos": ["good", "great", "fun"], "neg": ["bad", "dull", "awful"]}
    filler = ["the", "film", "story", "was", "and", "a"]
    for split, n in (("train", 12), ("test", 4)):
        for label, own in words.items():
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                text = " ".join(rng.choice(filler + own, size=10))
                (root / split / label / f"{i}.txt").write_text(text, encoding="utf-8")
    (root / "train" / "unsup").mkdir()  # as aclImdb: left out with --classes
    (root / "train" / "unsup" / "0.txt").write_text("no label", encoding="utf-8")
    return root


@pytest.mark.parametrize("kind", ["lstm", "conv"])
def test_text_classification_on_a_folder(kind, tmp_path, capsys):
    data = _text_folder(tmp_path / "reviews")
    argv = ["--data", str(data), "--classes", "neg,pos", "--model", kind, "--length", "12", *TINY]
    out = _run("text_classification", argv, capsys)
    assert re.search(r"held-out accuracy: [0-9.]+", out)
    assert ("Bidirectional" in out) == (kind == "lstm") and ("Conv1D" in out) == (kind == "conv")
    assert len(re.findall(r"^(neg|pos) \([0-9.]+\) <- ", out, flags=re.M)) == 2  # the reloaded model, raw strings


def test_text_classification_without_data_says_what_it_needs(capsys):
    assert _example("text_classification").main(["--no-plot"]) == 1
    assert "needs --data" in capsys.readouterr().out


def _example_models():
    resnet = _example("resnet")
    two = _example("two_inputs")
    seq, lm, text = _example("sequential_mnist"), _example("char_lm"), _example("text_classification")
    rng = np.random.default_rng(0)
    mnist = (rng.random((8, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 8))
    cifar = (rng.random((8, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 8))
    ids = rng.integers(0, 12, (8, 10))
    ids[:3, 6:] = 0  # padding
    diabetes = (
        {"patient": rng.standard_normal((8, 4)), "serum": rng.standard_normal((8, 6))},
        {"progression": rng.standard_normal((8, 1)), "high": rng.integers(0, 2, (8, 1)).astype(float)},
    )
    return [
        ("resnet-8", lambda: resnet.resnet((28, 28, 1), 10, (16, 32, 64), 1, seed=0, steps=10), mnist),
        ("resnet-20", lambda: resnet.resnet((32, 32, 3), 10, (16, 32, 64), 3, seed=0, steps=10), cifar),
        ("two_inputs", lambda: two.build(seed=0), diabetes),
        ("sequential_mnist", lambda: seq.build(units=6, seed=0, steps=10), (mnist[0][..., 0], mnist[1])),
        ("char_lm", lambda: lm.build(12, 10, units=5, seed=0), (ids, rng.integers(0, 12, (8, 10)))),
        ("text_lstm", lambda: text.build("lstm", 12, 10, 2, seed=0), (ids, rng.integers(0, 2, 8))),
        ("text_conv", lambda: text.build("conv", 12, 10, 2, seed=0), (ids, rng.integers(0, 2, 8))),
    ]


MODEL_IDS = ["resnet-8", "resnet-20", "two_inputs", "sequential_mnist", "char_lm", "text_lstm", "text_conv"]


@pytest.mark.parametrize("index", range(len(MODEL_IDS)), ids=MODEL_IDS)
def test_every_example_model_saves_loads_and_resumes_bitwise(index, tmp_path):
    import neuro

    _, make, (x, y) = _example_models()[index]
    model = make()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "m.h5")
    loaded = neuro.Model.load(tmp_path / "m.h5")

    def host(p):
        return [neuro.to_numpy(a) for a in (p if isinstance(p, list) else [p])]

    for a, b in zip(host(loaded.predict(x)), host(model.predict(x)), strict=True):
        np.testing.assert_array_equal(a, b)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    loaded.fit(x, y, batch_size=4, epochs=1, verbose=0)
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
