"""A vocabulary travels with the model: ``fit`` on a TextDataSet adopts it, ``predict`` / ``predict_class`` /
``evaluate`` take raw texts, the model file keeps it and the loader checks it (a stranger's word pattern is
refused unless trusted; mutated vocabularies load or raise ModelFileError in bounded time)."""

from __future__ import annotations

import json
import shutil
import time

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuro import LSTM, Dense, Embedding, GlobalAveragePooling1D, Input, Model, ModelFileError
from neuro.data import TextDataSet
from neuro.data.text import SAFE_PATTERNS, Vocabulary

LENGTH = 8
POSITIVE = ["a good film", "great fun and good acting", "good good good", "i loved it", "great story"]
NEGATIVE = ["a bad film", "boring and bad acting", "bad bad", "i hated it", "awful story"]


def _folder(root):
    for label, texts in (("neg", NEGATIVE), ("pos", POSITIVE)):
        (root / label).mkdir(parents=True)
        for i, text in enumerate(texts):
            (root / label / f"{i}.txt").write_text(text, encoding="utf-8")
    return root


def _model(vocab_size, seed=0):
    ids = Input((LENGTH,), dtype="int64", name="ids")
    h = Embedding(vocab_size, 6, mask_zero=True)(ids)
    h = GlobalAveragePooling1D()(LSTM(5, return_sequences=True)(h))
    return Model(ids, Dense(2, activation="softmax")(h), loss="crossentropy", optimizer="adam", seed=seed)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = _folder(tmp_path_factory.mktemp("texts"))
    data = TextDataSet.from_dir(root, sequence_length=LENGTH)
    model = _model(len(data.vocabulary))
    model.fit(data, batch_size=4, epochs=3, verbose=0)
    path = tmp_path_factory.mktemp("model") / "text.h5"
    model.save(path)
    return model, data, path


def test_fit_adopts_the_vocabulary_and_predict_takes_texts(trained):
    model, data, _ = trained
    assert model.vocabulary == data.vocabulary
    texts = ["A GOOD film!", "bad acting", "never seen words"]
    ids = data.vocabulary.encode(texts)
    np.testing.assert_array_equal(model.predict(texts), model.predict(ids))
    np.testing.assert_array_equal(model.predict(np.array(texts)), model.predict(ids))
    np.testing.assert_array_equal(model.predict(texts[0]), model.predict(ids[:1]))
    np.testing.assert_array_equal(model.predict_class(texts), model.predict_class(ids))
    assert model.predict_class("good")[0] in ("neg", "pos")
    x, y = data.train.arrays()
    words = data.vocabulary.decode(x)
    assert model.evaluate(words, y)["loss"] == pytest.approx(model.evaluate(x, y)["loss"], rel=1e-6)


def test_the_loaded_model_predicts_from_texts(trained):
    model, data, path = trained
    loaded = Model.load(path)
    assert loaded.vocabulary == data.vocabulary
    texts = ["great fun", "awful boring film", ""]
    np.testing.assert_array_equal(loaded.predict(texts), model.predict(texts))


def test_texts_without_a_vocabulary_are_a_clear_error():
    model = _model(10)
    with pytest.raises(TypeError, match=r"x holds texts, but the model has no vocabulary to encode them"):
        model.predict(["a text"])


def test_a_vocabulary_that_does_not_fit_the_model_is_refused():
    model = _model(5)
    with pytest.raises(ValueError, match=r"sequence_length=3 tokens, but the model's input takes 8"):
        model.vocabulary = Vocabulary(["a", "b"], sequence_length=3)
    with pytest.raises(ValueError, match=r"the vocabulary has 6 ids, but Embedding 'embedding' takes ids in "
                                         r"\[0, 4\] \(input_dim=5\)"):
        model.vocabulary = Vocabulary(["a", "b", "c", "d"], sequence_length=LENGTH)
    with pytest.raises(TypeError, match=r"vocabulary must be a neuro.data.Vocabulary or None, got dict"):
        model.vocabulary = {"a": 2}
    x = Input((4,))
    floats = Model(x, Dense(1)(x), loss="mse", optimizer="sgd")
    with pytest.raises(ValueError, match=r"one integer input of shape \(None, sequence_length\); this model's "
                                         r"inputs are \[\(None, 4\)\] of types \['float'\]"):
        floats.vocabulary = Vocabulary(["a"], sequence_length=4)
    free = _model(10)
    free.vocabulary = Vocabulary(["a", "b"], pad="pre")  # no sequence_length: the model's 8
    ids = np.array([[0, 0, 0, 0, 0, 2, 3, 2], [0, 0, 0, 0, 0, 0, 0, 1]])
    np.testing.assert_array_equal(free.predict(["a b a", "c"]), free.predict(ids))


def _with_vocabulary(path, tmp_path, change):
    bad = tmp_path / "edited.h5"
    shutil.copy(path, bad)
    with h5py.File(bad, "a") as f:
        cfg = json.loads(f.attrs["config"])
        change(cfg["vocabulary"])
        f.attrs["config"] = json.dumps(cfg)
    return bad


def test_a_strangers_word_pattern_is_refused_unless_trusted(trained, tmp_path):
    _, _, path = trained
    evil = "(\\w+)+$"  # catastrophic backtracking on a long word followed by a space
    bad = _with_vocabulary(path, tmp_path, lambda v: v.update(pattern=evil))
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"config.vocabulary.*not one of the word patterns a file may carry"):
        Model.load(bad)
    assert time.perf_counter() - start < 5
    assert Model.load(bad, trust_pattern=True).vocabulary.pattern == evil
    safe = _with_vocabulary(path, tmp_path, lambda v: v.update(pattern=r"\S+"))
    assert Model.load(safe).vocabulary.pattern in SAFE_PATTERNS


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda v: v.update(sequence_length=5), r"sequence_length=5 tokens, but the model's input takes 8"),
        (lambda v: v["tokens"].extend(f"w{i}" for i in range(60)), r"but Embedding 'embedding' takes ids"),
        (lambda v: v.update(tokens=["a", "a"]), r"tokens"),
        (lambda v: v.update(split="bytes"), r"split"),
        (lambda v: v.pop("pad"), r"missing the key 'pad'"),
        (lambda v: v.update(extra=1), r"unknown keys"),
    ],
)
def test_bad_vocabularies_are_refused(trained, tmp_path, change, message):
    _, _, path = trained
    with pytest.raises(ModelFileError, match=message):
        Model.load(_with_vocabulary(path, tmp_path, change))


def _json_values():
    return st.recursive(
        st.none() | st.booleans() | st.integers(-3, 2**40) | st.text(max_size=6)
        | st.sampled_from(["word", "character", "pre", "post", "[UNK]", r"\w+"]),
        lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=4), children, max_size=3),
        max_leaves=10,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_vocabularies_load_or_raise_model_file_error(trained, tmp_path, data):
    _, _, path = trained
    with h5py.File(path, "r") as f:
        vocabulary = json.loads(f.attrs["config"])["vocabulary"]
    key = data.draw(st.sampled_from(sorted(vocabulary)))
    value = data.draw(_json_values())

    def change(v):
        if key == "tokens" and isinstance(value, int) and value >= 0:
            v["tokens"] = v["tokens"][: value % (len(v["tokens"]) + 1)]
        else:
            v[key] = value

    bad = _with_vocabulary(path, tmp_path, change)
    start = time.perf_counter()
    try:
        model = Model.load(bad)
    except ModelFileError:
        pass
    else:  # a change that still makes a vocabulary of the model: it must encode and predict
        model.predict(["a good film", "x"])
    assert time.perf_counter() - start < 5
