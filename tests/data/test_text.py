"""TextDataSet and Vocabulary: folder and language-model layouts, the vocabulary's order and config, bad input."""

from __future__ import annotations

import json
import os
import re
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neuro.data.text as text_mod
from neuro.data import DataSet, TextDataSet, Vocabulary
from neuro.data.text import MAX_SEQUENCE_LENGTH, MAX_TOKENS, TextSplit

SETTINGS = settings(
    max_examples=int(os.environ.get("NEURO_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _write(path, content: bytes | str):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def _reviews(root):
    _write(root / "pos" / "a.txt", "Good movie, GOOD acting!\n")
    _write(root / "pos" / "b.txt", "great fun")
    _write(root / "neg" / "a.txt", "bad movie\nbad")
    return root


# -- folders of class folders ---------------------------------------------------------------------------------
def test_from_dir_classes_rows_and_vocabulary(tmp_path):
    data = TextDataSet.from_dir(_reviews(tmp_path), sequence_length=5)
    assert isinstance(data, DataSet) and data.class_names == ["neg", "pos"]
    assert data.test is None and len(data.valid) == 0 and data.input_shape == (5,)
    # most frequent first (bad 3; good, movie 2 in code-point order), then the ones in code-point order
    assert data.vocabulary.tokens == ["", "[UNK]", "bad", "good", "movie", "!", ",", "acting", "fun", "great"]
    x, y = data.train.arrays()
    assert x.dtype == np.int64 and y.dtype == np.int64
    np.testing.assert_array_equal(x, [[2, 4, 2, 0, 0], [3, 4, 6, 3, 7], [9, 8, 0, 0, 0]])
    np.testing.assert_array_equal(y, [0, 1, 1])
    assert data.vocabulary.decode(x) == ["bad movie bad", "good movie , good acting", "great fun"]
    np.testing.assert_array_equal(data.vocabulary.encode(["bad movie\nbad", "great fun"]), x[[0, 2]])
    assert repr(data) == (
        "TextDataSet(train=3, valid=0, test=None, input_shape=(5,), classes=2, vocabulary=10 word tokens)"
    )


def test_from_dir_batches_are_int64_in_order(tmp_path):
    data = TextDataSet.from_dir(_reviews(tmp_path), sequence_length=3)
    batches = list(data.train.batches(np.array([2, 0, 1]), 2))
    assert [len(b[0]) for b in batches] == [2, 1]
    x, y = data.train.arrays()
    np.testing.assert_array_equal(batches[0][0], x[[2, 0]])
    np.testing.assert_array_equal(batches[1][1], y[[1]])
    assert all(b[0].dtype == np.int64 and b[1].dtype == np.int64 for b in batches)
    with pytest.raises(
        ValueError, match=re.escape("order must hold indices in [0, 2], got values in [0, 3]")
    ):
        list(data.train.batches(np.array([0, 3]), 2))


def test_from_dir_class_names_choose_and_order_folders(tmp_path):
    _reviews(tmp_path)
    _write(tmp_path / "unsup" / "z.txt", "zzz zzz zzz zzz")
    data = TextDataSet.from_dir(tmp_path, sequence_length=4, class_names=["pos", "neg"])
    assert data.class_names == ["pos", "neg"] and "zzz" not in data.vocabulary.tokens
    np.testing.assert_array_equal(data.train.arrays()[1], [0, 0, 1])
    with pytest.raises(
        ValueError, match=re.escape(f"class 'x' of class_names has no folder in {str(tmp_path)!r}")
    ):
        TextDataSet.from_dir(tmp_path, sequence_length=4, class_names=["x"])


def test_from_dir_train_and_test_folders(tmp_path):
    _reviews(tmp_path / "train")
    _write(tmp_path / "test" / "pos" / "t.txt", "good unseen")
    _write(tmp_path / "test" / "neg" / "t.txt", "bad")
    data = TextDataSet.from_dir(tmp_path, sequence_length=3)
    assert data.class_names == ["neg", "pos"] and len(data.train) == 3
    x, y = data.test.arrays()
    np.testing.assert_array_equal(x, [[2, 0, 0], [3, 1, 0]])  # 'unseen' is out of vocabulary
    np.testing.assert_array_equal(y, [0, 1])
    assert "unseen" not in data.vocabulary.tokens and repr(data).startswith(
        "TextDataSet(train=3, valid=0, test=2"
    )


def test_from_dir_class_names_in_a_test_folder(tmp_path):
    _reviews(tmp_path / "train")
    _write(tmp_path / "train" / "unsup" / "u.txt", "no label")
    _write(tmp_path / "test" / "pos" / "t.txt", "good")
    (tmp_path / "test" / "unsup").mkdir()  # ignored, even empty
    data = TextDataSet.from_dir(tmp_path, sequence_length=2, class_names=["neg", "pos"])
    np.testing.assert_array_equal(data.test.arrays()[1], [1])  # a test folder may lack a class
    with pytest.raises(ValueError, match=re.escape("class folder")):
        TextDataSet.from_dir(tmp_path, sequence_length=2)  # without class_names, the empty folder counts


def test_from_dir_test_class_must_be_a_training_class(tmp_path):
    _reviews(tmp_path / "train")
    _write(tmp_path / "test" / "other" / "t.txt", "x")
    with pytest.raises(ValueError, match=re.escape("class 'other' of test folder")):
        TextDataSet.from_dir(tmp_path, sequence_length=3)


def test_from_dir_valid_split_is_seeded_and_not_in_the_vocabulary(tmp_path):
    for i in range(10):
        _write(tmp_path / ("a" if i < 5 else "b") / f"{i}.txt", f"word{i} common")
    data = TextDataSet.from_dir(tmp_path, sequence_length=2, valid_frac=0.3, seed=4)
    again = TextDataSet.from_dir(tmp_path, sequence_length=2, valid_frac=0.3, seed=4)
    assert len(data.train) == 7 and len(data.valid) == 3
    xv, yv = data.valid.arrays()
    np.testing.assert_array_equal(xv, again.valid.arrays()[0])
    np.testing.assert_array_equal(xv[:, 0], [1, 1, 1])  # the valid files' own words are unknown
    np.testing.assert_array_equal(xv[:, 1], [2, 2, 2])  # 'common' is the most frequent training token
    assert len(data.vocabulary) == 2 + 1 + 7
    trained = {w for w in data.vocabulary.tokens if w.startswith("word")}
    assert len(trained) == 7 and len(set(yv.tolist())) >= 1


@pytest.mark.parametrize(
    "pad, truncate, short, long",
    [
        ("post", "post", [2, 3, 0, 0], [2, 3, 4, 5]),
        ("pre", "post", [0, 0, 2, 3], [2, 3, 4, 5]),
        ("post", "pre", [2, 3, 0, 0], [4, 5, 6, 7]),
        ("pre", "pre", [0, 0, 2, 3], [4, 5, 6, 7]),
    ],
)
def test_padding_and_truncation_sides(tmp_path, pad, truncate, short, long):
    _write(tmp_path / "a" / "1.txt", "a b")
    _write(tmp_path / "b" / "2.txt", "a b c d e f")
    data = TextDataSet.from_dir(tmp_path, sequence_length=4, pad=pad, truncate=truncate, max_tokens=20)
    np.testing.assert_array_equal(data.train.arrays()[0], [short, long])
    np.testing.assert_array_equal(data.vocabulary.encode(["a b", "a b c d e f"]), [short, long])


def test_truncation_of_long_files_read_in_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr(text_mod, "_CHUNK_BYTES", 7)
    words = " ".join(f"w{i:02d}" for i in range(40)) + "\n"
    _write(tmp_path / "a" / "1.txt", words.replace(" ", "\n"))
    for truncate in ("post", "pre"):
        data = TextDataSet.from_dir(tmp_path, sequence_length=5, truncate=truncate)
        assert data.vocabulary.decode(data.train.arrays()[0]) == [
            " ".join(words.split()[:5] if truncate == "post" else words.split()[-5:])
        ]
        assert len(data.vocabulary) == 42  # every token of the file is counted, not only those kept


def test_character_tokens_and_lower(tmp_path):
    _write(tmp_path / "a" / "1.txt", "AbA\n")
    data = TextDataSet.from_dir(tmp_path, sequence_length=5, split="character", lower=False)
    assert data.vocabulary.tokens == ["", "[UNK]", "A", "\n", "b"]
    np.testing.assert_array_equal(data.train.arrays()[0], [[2, 4, 2, 3, 0]])
    lower = TextDataSet.from_dir(tmp_path, sequence_length=5, split="character")
    assert lower.vocabulary.tokens == ["", "[UNK]", "a", "\n", "b"]


# -- one text file for language modelling ----------------------------------------------------------------------
def test_from_file_windows_and_next_tokens(tmp_path):
    path = _write(tmp_path / "lm.txt", "abcabcab")
    data = TextDataSet.from_file(path, sequence_length=3, stride=2)
    assert data.vocabulary.tokens == ["", "[UNK]", "a", "b", "c"] and data.class_names is None
    x, y = data.train.arrays()
    # the ids of 'abcabcab' are 2 3 4 2 3 4 2 3; windows start at 0, 2, 4 (4 + 3 + 1 <= 8)
    np.testing.assert_array_equal(x, [[2, 3, 4], [4, 2, 3], [3, 4, 2]])
    np.testing.assert_array_equal(y, [[3, 4, 2], [2, 3, 4], [4, 2, 3]])
    assert x.dtype == np.int64 and y.dtype == np.int64 and len(data.valid) == 0
    default = TextDataSet.from_file(path, sequence_length=3)  # stride = sequence_length
    np.testing.assert_array_equal(default.train.arrays()[0], [[2, 3, 4], [2, 3, 4]])
    batch = next(data.train.batches(np.array([2, 0]), 5))
    np.testing.assert_array_equal(batch[0], x[[2, 0]])
    np.testing.assert_array_equal(batch[1], y[[2, 0]])


def test_from_file_valid_tail_does_not_overlap_training(tmp_path):
    path = _write(tmp_path / "lm.txt", "hello world\nhello\n")  # 18 characters
    data = TextDataSet.from_file(path, sequence_length=4, stride=2, valid_frac=0.4)
    # 7 tokens held out ('\nhello\n'); the vocabulary knows only 'hello world'
    assert data.vocabulary.tokens == ["", "[UNK]", "l", "o", " ", "d", "e", "h", "r", "w"]
    x, y = data.train.arrays()
    assert data.vocabulary.decode(x) == ["hell", "llo ", "o wo", "worl"]
    assert data.vocabulary.decode(y)[-1] == "orld"
    xv, yv = data.valid.arrays()
    np.testing.assert_array_equal(xv, [[1, 7, 6, 2], [6, 2, 2, 3]])
    np.testing.assert_array_equal(yv, [[7, 6, 2, 2], [2, 2, 3, 1]])
    assert repr(data.valid) == "TextSplit(2 windows, input_shape=(4,))"


def test_from_file_words_and_prompt_encoding(tmp_path):
    path = _write(tmp_path / "lm.txt", "The cat sat. The cat ran.\nThe end.")
    data = TextDataSet.from_file(path, sequence_length=3, split="word", lower=True)
    vocab = data.vocabulary
    assert vocab.tokens[:5] == ["", "[UNK]", ".", "the", "cat"]
    assert len(data.train) == (11 - 1) // 3
    # a prompt is padded and truncated at the start, so its last token ends the row
    np.testing.assert_array_equal(vocab.encode("the cat"), [[0, 3, 4]])
    np.testing.assert_array_equal(vocab.encode("sat the cat ran"), [[3, 4, vocab.tokens.index("ran")]])


def test_from_file_too_few_tokens(tmp_path):
    path = _write(tmp_path / "lm.txt", "abcd")
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{str(path)!r} holds 4 character tokens, fewer than sequence_length + 1 = 5 (one window and its next token)"
        ),
    ):
        TextDataSet.from_file(path, sequence_length=4)
    assert len(TextDataSet.from_file(path, sequence_length=3).train) == 1
    long = _write(tmp_path / "long.txt", "abcdefghij")
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"valid_frac=0.2 holds out 2 of the 10 character tokens of {str(long)!r}, fewer than sequence_length + 1 = 4"
        ),
    ):
        TextDataSet.from_file(long, sequence_length=3, valid_frac=0.2)
    with pytest.raises(
        ValueError, match=re.escape("holds 2 character tokens for training (valid_frac=0.8 holds out 8)")
    ):
        TextDataSet.from_file(long, sequence_length=3, valid_frac=0.8)


def test_text_data_sets_have_no_input_scaling(tmp_path):
    data = TextDataSet.from_file(_write(tmp_path / "lm.txt", "abcabc"), sequence_length=2)
    with pytest.raises(ValueError, match="TextDataSet holds token ids, which are not scaled"):
        data.standardize_input()
    with pytest.raises(ValueError, match="needs float regression targets"):
        data.normalize_output()


# -- the vocabulary ----------------------------------------------------------------------------------------------
def test_vocabulary_order_reserved_ids_and_max_tokens():
    vocab = Vocabulary.build(["b a c", "c b", "c"], max_tokens=4)
    assert vocab.tokens == ["", "[UNK]", "c", "b"] and len(vocab) == 4
    np.testing.assert_array_equal(vocab.token_ids("a b c"), [1, 3, 2])
    tie = Vocabulary.build(["z y x", "x y z", "é a"], max_tokens=100)
    assert tie.tokens[2:] == ["x", "y", "z", "a", "é"]  # count, then code-point order
    # the order texts are read in does not matter
    assert Vocabulary.build(["y x", "x y"]) == Vocabulary.build(["x y", "y x"])


def test_vocabulary_skips_words_that_cannot_be_tokens():
    vocab = Vocabulary.build(["x" * 257, "x" * 256, "[UNK] [UNK] a"], pattern=r"\S+", lower=False)
    assert vocab.tokens == ["", "[UNK]", "a", "x" * 256]
    np.testing.assert_array_equal(vocab.token_ids("[UNK] " + "x" * 257), [1, 1])


def test_word_pattern_lines_and_empty_matches():
    vocab = Vocabulary.build(["ab cd\nef"], pattern=r"\w*", lower=False, sequence_length=4)
    assert vocab.tokens[2:] == ["ab", "cd", "ef"]
    grouped = Vocabulary.build(["a-b c-d"], pattern=r"(\w)-(\w)")  # the whole match is the token
    assert grouped.tokens[2:] == ["a-b", "c-d"]
    spans = Vocabulary.build(["a b\nc d"], pattern=r"[^\n]+ ?\w?")  # tokens never span a line break
    assert spans.tokens[2:] == ["a b", "c d"]


@pytest.mark.parametrize("split", ["word", "character"])
def test_encode_decode_round_trip(split):
    texts = ["The quick brown fox.", "jumps over the lazy dog!", ""]
    vocab = Vocabulary.build(texts, split=split, sequence_length=40)
    ids = vocab.encode(texts)
    assert ids.shape == (3, 40) and ids.dtype == np.int64
    expected = (
        ["the quick brown fox .", "jumps over the lazy dog !", ""]
        if split == "word"
        else [t.lower() for t in texts]
    )
    assert vocab.decode(ids) == expected
    assert vocab.decode(ids[0]) == expected[:1]
    assert vocab.decode(np.array([[2, 1, 0]])) == [
        vocab.tokens[2] + (" " if split == "word" else "") + "[UNK]"
    ]


def test_encode_without_sequence_length_and_bad_arguments():
    vocab = Vocabulary(["a", "b"])
    np.testing.assert_array_equal(vocab.encode("b a c b"), [[3, 2, 1, 3]])
    np.testing.assert_array_equal(vocab.encode(["a"]), [[2]])
    assert vocab.encode("").shape == (1, 0)
    with pytest.raises(ValueError, match=re.escape("encoding 2 texts needs a sequence_length")):
        vocab.encode(["a", "b"])
    with pytest.raises(TypeError, match=re.escape("texts must be strings, got int at index 1")):
        vocab.encode(["a", 3])
    with pytest.raises(TypeError, match="texts must be a string or a sequence of strings, got int"):
        vocab.encode(3)
    fixed = Vocabulary(["a", "b"], sequence_length=2)
    assert fixed.encode([]).shape == (0, 2)
    np.testing.assert_array_equal(fixed.encode(np.array(["a", "b a"])), [[2, 0], [3, 2]])
    with pytest.raises(
        ValueError, match=re.escape("ids must lie in [0, 3] (the vocabulary's size), got values in [0, 4]")
    ):
        vocab.decode([0, 4])
    with pytest.raises(ValueError, match="ids must be integers"):
        vocab.decode([0.5])


def test_vocabulary_arguments_are_checked():
    with pytest.raises(ValueError, match=re.escape("max_tokens must be an integer in [3, 1000000]")):
        Vocabulary.build(["a"], max_tokens=2)
    with pytest.raises(
        ValueError, match=re.escape("sequence_length must be None or an integer in [1, 1000000], got 0")
    ):
        Vocabulary(["a"], sequence_length=0)
    with pytest.raises(ValueError, match=re.escape("split must be 'character' or 'word', got 'chars'")):
        Vocabulary(["a"], split="chars")
    with pytest.raises(ValueError, match="texts hold no tokens to build a vocabulary from"):
        Vocabulary.build(["  ", "\n"])
    with pytest.raises(TypeError, match="texts must be strings, got bytes at index 0"):
        Vocabulary.build([b"a"])


def test_config_round_trip_is_plain_json():
    vocab = Vocabulary.build(
        ["Hello, world", "hello"], split="word", sequence_length=7, pad="pre", truncate="pre", pattern=r"\w+"
    )
    config = vocab.get_config()
    assert config == {
        "split": "word",
        "lower": True,
        "pattern": r"\w+",
        "sequence_length": 7,
        "pad": "pre",
        "truncate": "pre",
        "tokens": ["hello", "world"],
    }
    again = Vocabulary.from_config(json.loads(json.dumps(config)))
    assert again == vocab and again.tokens == vocab.tokens
    np.testing.assert_array_equal(again.encode(["world hello x"]), vocab.encode(["world hello x"]))
    chars = Vocabulary.build("abca", split="character")
    assert Vocabulary.from_config(chars.get_config()) == chars
    assert repr(chars) == "Vocabulary(5 tokens, split='character', lower=True, sequence_length=None)"


def _config(**change):
    config = Vocabulary(["a", "b"], sequence_length=4).get_config()
    config.update(change)
    return config


def _without(key):
    config = _config()
    del config[key]
    return config


_KEY = "vocabulary config key"


@pytest.mark.parametrize(
    "config, message",
    [
        ([1, 2], "vocabulary config must be a dict, got list"),
        (_config(extra=1), "vocabulary config has unknown keys [\"'extra'\"]"),
        (_without("tokens"), "vocabulary config is missing the key 'tokens'"),
        (_without("pad"), "vocabulary config is missing the key 'pad'"),
        (_config(split="bytes"), f"{_KEY} 'split' must be 'character' or 'word', got 'bytes'"),
        (_config(lower="yes"), f"{_KEY} 'lower' must be True or False, got 'yes'"),
        (_config(lower=1), f"{_KEY} 'lower' must be True or False, got 1"),
        (
            _config(pattern=""),
            f"{_KEY} 'pattern' must be a regular expression of 1 to 1000 characters, got ''",
        ),
        (_config(pattern=5), f"{_KEY} 'pattern' must be a regular expression of 1 to 1000 characters, got 5"),
        (
            _config(pattern="a" * 1001),
            f"{_KEY} 'pattern' must be a regular expression of 1 to 1000 characters",
        ),
        (
            _config(pattern="(ab"),
            f"{_KEY} 'pattern' is not a valid regular expression (missing ), unterminated subpattern at position 0): '(ab'",
        ),
        (
            _config(sequence_length=0),
            f"{_KEY} 'sequence_length' must be None or an integer in [1, 1000000], got 0",
        ),
        (
            _config(sequence_length=MAX_SEQUENCE_LENGTH + 1),
            f"{_KEY} 'sequence_length' must be None or an integer in [1, 1000000], got 1000001",
        ),
        (
            _config(sequence_length=4.0),
            f"{_KEY} 'sequence_length' must be None or an integer in [1, 1000000], got 4.0",
        ),
        (
            _config(sequence_length=True),
            f"{_KEY} 'sequence_length' must be None or an integer in [1, 1000000], got True",
        ),
        (_config(pad="both"), f"{_KEY} 'pad' must be 'pre' or 'post', got 'both'"),
        (_config(truncate=None), f"{_KEY} 'truncate' must be 'pre' or 'post', got None"),
        (_config(tokens="ab"), f"{_KEY} 'tokens' must be a list of strings, got str"),
        (_config(tokens={"a": 2}), f"{_KEY} 'tokens' must be a list of strings, got dict"),
        (_config(tokens=[]), f"{_KEY} 'tokens' must hold at least one token"),
        (
            _config(tokens=["a", ""]),
            f"{_KEY} 'tokens' item 1 must be a string of 1 to 256 characters, got ''",
        ),
        (_config(tokens=["a", 7]), f"{_KEY} 'tokens' item 1 must be a string of 1 to 256 characters, got 7"),
        (
            _config(tokens=["x" * 257]),
            f"{_KEY} 'tokens' item 0 must be a string of 1 to 256 characters, got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…",
        ),
        (
            _config(tokens=["a", "[UNK]"]),
            f"{_KEY} 'tokens' item 1 is '[UNK]', the out-of-vocabulary token (id 1), which is reserved",
        ),
        (_config(tokens=["a", "b", "a"]), f"{_KEY} 'tokens' holds 'a' twice (items 0 and 2)"),
        (_config(tokens=["a\ud800"]), f"{_KEY} 'tokens' item 0 holds a lone surrogate, which is not text"),
        (
            _config(split="character", tokens=["a", "bc"]),
            f"{_KEY} 'tokens' item 1 must be one character, got 'bc'",
        ),
    ],
)
def test_from_config_refuses_bad_configs(config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Vocabulary.from_config(config)


def test_from_config_refuses_too_many_tokens():
    tokens = [str(i) for i in range(MAX_TOKENS - 1)]
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{_KEY} 'tokens' holds 999999 tokens, more than 999998 (MAX_TOKENS=1000000 counts the reserved ids 0 and 1)"
        ),
    ):
        Vocabulary.from_config(_config(tokens=tokens))
    assert len(Vocabulary.from_config(_config(tokens=tokens[:-1]))) == MAX_TOKENS


# -- bad input ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [1, 2, 3, 1000])
@pytest.mark.parametrize(
    "content, encoding, offset, reason",
    [
        (b"abc\xffdef", "utf-8", 3, "invalid start byte"),
        (b"\xef\xbb\xbfabcdefg\xff", "utf-8", 10, "invalid start byte"),  # the BOM counts
        (b"ab\xe2\x82", "utf-8", 2, "unexpected end of data"),
        ("hé".encode("utf-16") + b"x", "utf-16", 6, "truncated data"),
        (b"ab\x80", "ascii", 2, "ordinal not in range(128)"),
    ],
)
def test_bad_bytes_name_the_file_and_offset(tmp_path, monkeypatch, chunk, content, encoding, offset, reason):
    monkeypatch.setattr(text_mod, "_CHUNK_BYTES", chunk)
    path = _write(tmp_path / "bad.txt", content + b"\n" * 0)
    shown = encoding
    with pytest.raises(
        ValueError, match=re.escape(f"{str(path)!r} is not {shown} text: {reason} at byte {offset}")
    ):
        TextDataSet.from_file(path, sequence_length=1, encoding=encoding)
    _write(tmp_path / "d" / "c" / "bad.txt", content)
    with pytest.raises(
        ValueError, match=re.escape(f"bad.txt' is not {shown} text: {reason} at byte {offset}")
    ):
        TextDataSet.from_dir(tmp_path / "d", sequence_length=1, encoding=encoding, split="character")


def test_bad_bytes_in_validation_and_test_files_are_found_too(tmp_path):
    _reviews(tmp_path / "train")
    _write(tmp_path / "test" / "pos" / "t.txt", b"good \xc3\x28")
    with pytest.raises(
        ValueError, match=re.escape("t.txt' is not utf-8 text: invalid continuation byte at byte 5")
    ):
        TextDataSet.from_dir(tmp_path, sequence_length=3)


def test_other_encodings_and_the_byte_order_mark(tmp_path):
    latin = _write(tmp_path / "latin.txt", "café olé".encode("latin-1"))
    with pytest.raises(ValueError, match="is not utf-8 text: invalid continuation byte at byte 3"):
        TextDataSet.from_file(latin, sequence_length=2)
    data = TextDataSet.from_file(latin, sequence_length=2, encoding="latin-1")
    assert "é" in data.vocabulary.tokens
    bom = _write(tmp_path / "bom.txt", b"\xef\xbb\xbfabab")
    assert "\ufeff" not in TextDataSet.from_file(bom, sequence_length=2).vocabulary.tokens
    utf16 = _write(tmp_path / "u16.txt", "abab".encode("utf-16"))
    from_utf16 = TextDataSet.from_file(utf16, sequence_length=2, encoding="utf-16")
    assert from_utf16.vocabulary.tokens[2:] == ["a", "b"]
    escaped = _write(tmp_path / "esc.txt", b"ab\\ud800ab")
    with pytest.raises(
        ValueError, match=re.escape("to a lone surrogate U+D800 at character 2, which is not text")
    ):
        TextDataSet.from_file(escaped, sequence_length=2, encoding="unicode_escape")
    for bad in ("no-such-codec", "base64"):
        with pytest.raises(
            ValueError, match=re.escape(f"encoding {bad!r} is not a text encoding Python knows")
        ):
            TextDataSet.from_file(latin, sequence_length=2, encoding=bad)


def test_empty_files_and_folders(tmp_path):
    empty = _write(tmp_path / "empty.txt", b"")
    with pytest.raises(ValueError, match=re.escape(f"{str(empty)!r} holds no text (an empty file)")):
        TextDataSet.from_file(empty, sequence_length=2)
    with pytest.raises(ValueError, match=re.escape("holds no text (an empty file)")):
        TextDataSet.from_file(_write(tmp_path / "bom.txt", b"\xef\xbb\xbf"), sequence_length=2)
    root = tmp_path / "r"
    _write(root / "a" / "1.txt", "x y")
    _write(root / "b" / "1.txt", b"")
    with pytest.raises(ValueError, match=re.escape("1.txt' holds no text (an empty file)")):
        TextDataSet.from_dir(root, sequence_length=2)
    os.remove(root / "b" / "1.txt")
    _write(root / "b" / "notes.md", "not a text file")
    _write(root / "b" / ".hidden.txt", "hidden")
    with pytest.raises(ValueError, match=re.escape(f"class folder {str(root / 'b')!r} holds no .txt files")):
        TextDataSet.from_dir(root, sequence_length=2)
    flat = tmp_path / "flat"
    _write(flat / "1.txt", "x")
    with pytest.raises(ValueError, match=re.escape(f"path folder {str(flat)!r} holds no class sub-folders")):
        TextDataSet.from_dir(flat, sequence_length=2)
    (tmp_path / "t" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match=re.escape("train folder")):
        TextDataSet.from_dir(tmp_path / "t", sequence_length=2)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        TextDataSet.from_dir(tmp_path / "missing", sequence_length=2)
    with pytest.raises(FileNotFoundError):
        TextDataSet.from_file(tmp_path / "missing.txt", sequence_length=2)
    spaces = tmp_path / "s"
    _write(spaces / "a" / "1.txt", "  \n ")
    with pytest.raises(
        ValueError, match=re.escape(f"the training texts under {str(spaces)!r} hold no tokens")
    ):
        TextDataSet.from_dir(spaces, sequence_length=2)


def test_size_bound(tmp_path, monkeypatch):
    path = _write(tmp_path / "lm.txt", "abcdefghij")
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{str(path)!r} is 10 bytes, more than max_file_bytes=9; pass a larger max_file_bytes to read it"
        ),
    ):
        TextDataSet.from_file(path, sequence_length=2, max_file_bytes=9)
    assert len(TextDataSet.from_file(path, sequence_length=2, max_file_bytes=10).train) == 4
    _write(tmp_path / "d" / "a" / "1.txt", "abcdefghij")
    with pytest.raises(ValueError, match="is 10 bytes, more than max_file_bytes=9"):
        TextDataSet.from_dir(tmp_path / "d", sequence_length=2, max_file_bytes=9)

    real_fstat = os.fstat  # a file that grows after its size was checked is stopped at the bound

    def small_fstat(fd):
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, *st[1:6], 1, *st[7:]))

    monkeypatch.setattr(text_mod.os, "fstat", small_fstat)
    monkeypatch.setattr(text_mod, "_CHUNK_BYTES", 4)
    with pytest.raises(
        ValueError, match=re.escape("holds more than max_file_bytes=9 bytes (it grew while read)")
    ):
        TextDataSet.from_file(path, sequence_length=2, max_file_bytes=9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sequence_length": 0}, "sequence_length must be an integer in [1, 1000000], got 0"),
        ({"sequence_length": None}, "sequence_length must be an integer in [1, 1000000], got None"),
        (
            {"max_tokens": 2},
            "max_tokens must be an integer in [3, 1000000] (it counts the padding and out-of-vocabulary ids 0 and 1), got 2",
        ),
        ({"max_tokens": MAX_TOKENS + 1}, "max_tokens must be an integer in [3, 1000000]"),
        ({"max_tokens": 10.0}, "max_tokens must be an integer in [3, 1000000]"),
        ({"stride": 0}, "stride must be a positive integer, got 0"),
        ({"max_file_bytes": -1}, "max_file_bytes must be a positive integer, got -1"),
        ({"split": "line"}, "split must be 'character' or 'word', got 'line'"),
        ({"lower": None}, "lower must be True or False, got None"),
        ({"pad": "left"}, "pad must be 'pre' or 'post', got 'left'"),
        ({"valid_frac": 1.0}, "valid_frac must be in [0, 1), got 1.0"),
        ({"encoding": ""}, "encoding must be the name of a text encoding such as 'utf-8', got ''"),
        ({"pattern": "["}, "pattern is not a valid regular expression"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    path = _write(tmp_path / "lm.txt", "abcdefghij")
    _write(tmp_path / "d" / "a" / "1.txt", "abc")
    args = {"sequence_length": 2, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        TextDataSet.from_file(path, **args)
    if "stride" in args:
        return  # only from_file has a stride
    with pytest.raises(ValueError, match=re.escape(message)):
        TextDataSet.from_dir(tmp_path / "d", **args)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_special_files_are_refused_and_links_followed(tmp_path):
    root = tmp_path / "r"
    _write(root / "a" / "1.txt", "x y")
    target = _write(tmp_path / "elsewhere.txt", "z")
    (root / "b").mkdir()
    os.symlink(target, root / "b" / "link.txt")
    data = TextDataSet.from_dir(root, sequence_length=2)
    assert data.vocabulary.tokens[2:] == ["x", "y", "z"]
    os.mkfifo(root / "b" / "pipe.txt")
    start = time.monotonic()
    with pytest.raises(ValueError, match=re.escape("pipe.txt' is a named pipe, expected a regular file")):
        TextDataSet.from_dir(root, sequence_length=2)
    with pytest.raises(ValueError, match="is a named pipe"):
        TextDataSet.from_file(root / "b" / "pipe.txt", sequence_length=2)
    assert time.monotonic() - start < 5


def test_text_split_checks_its_arrays():
    with pytest.raises(ValueError, match="ids must be integers"):
        TextSplit(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match=re.escape("rows need ids (N, sequence_length) and targets (N,)")):
        TextSplit(np.zeros((2, 3), dtype=np.int32), np.zeros(3))
    with pytest.raises(
        ValueError, match=re.escape("windows of 3 tokens and their targets must lie in the 4 ids")
    ):
        TextSplit(np.arange(4), starts=[1], sequence_length=3)
    split = TextSplit(np.arange(5), starts=[0, 1], sequence_length=3)
    assert split.windows and split.input_shape == (3,) and len(split) == 2


def test_long_lines_are_cut_at_whitespace_then_punctuation(tmp_path, monkeypatch):
    monkeypatch.setattr(text_mod, "_CHUNK_BYTES", 3)
    monkeypatch.setattr(text_mod, "_MAX_PIECE_CHARS", 4)
    content = "aaa bbbb,cccc.dd ee\nffff"
    path = _write(tmp_path / "c.txt", content)
    data = TextDataSet.from_file(path, sequence_length=1, split="word")
    assert data.vocabulary == Vocabulary.build(
        content, lower=False, sequence_length=1, pad="pre", truncate="pre"
    )
    assert data.vocabulary.decode(data.train.arrays()[0][:, 0]) == ["aaa bbbb , cccc . dd ee"]


# -- chunking does not change the result; hostile bytes ---------------------------------------------------------------
_TEXT = st.text(alphabet=st.sampled_from(list("ab Cé,\n\r\t.!x€")), max_size=60)


@SETTINGS
@given(text=_TEXT, chunk=st.integers(1, 9), split=st.sampled_from(["word", "character"]))
def test_reading_in_pieces_matches_encoding_in_memory(tmp_path, monkeypatch, text, chunk, split):
    path = _write(tmp_path / "c.txt", text + "abc xyz")
    monkeypatch.setattr(text_mod, "_CHUNK_BYTES", chunk)
    data = TextDataSet.from_file(path, sequence_length=1, stride=1, split=split)
    vocab = data.vocabulary
    assert vocab == Vocabulary.build(
        [text + "abc xyz"], split=split, lower=False, sequence_length=1, pad="pre", truncate="pre"
    )
    ids = vocab.token_ids(text + "abc xyz")
    x, y = data.train.arrays()
    np.testing.assert_array_equal(x[:, 0], ids[:-1])
    np.testing.assert_array_equal(y[:, 0], ids[1:])


@SETTINGS
@given(
    data=st.binary(max_size=300),
    split=st.sampled_from(["word", "character"]),
    encoding=st.sampled_from(["utf-8", "utf-16", "latin-1", "ascii", "cp1252", "shift_jis"]),
    chunk=st.sampled_from([3, 64, 2**20]),
)
def test_arbitrary_bytes_give_a_data_set_or_a_clean_error(
    tmp_path, monkeypatch, data, split, encoding, chunk
):
    monkeypatch.setattr(text_mod, "_CHUNK_BYTES", chunk)
    path = _write(tmp_path / "h" / "c" / "x.txt", data)
    _write(tmp_path / "h" / "d" / "y.txt", "fine text")
    start = time.monotonic()
    try:
        lm = TextDataSet.from_file(path, sequence_length=2, split=split, encoding=encoding, valid_frac=0.2)
    except ValueError as exc:
        assert str(path) in str(exc) or "valid_frac" in str(exc)
    else:
        x, y = lm.train.arrays()
        assert x.dtype == np.int64 and x.shape[1] == 2 and len(x) >= 1
        assert 0 <= x.min() and x.max() < len(lm.vocabulary) and y.max() < len(lm.vocabulary)
    try:
        folder = TextDataSet.from_dir(tmp_path / "h", sequence_length=4, split=split, encoding=encoding)
    except ValueError as exc:
        assert "x.txt" in str(exc)
    else:
        x, y = folder.train.arrays()
        assert x.shape == (2, 4) and x.max() < len(folder.vocabulary)
        Vocabulary.from_config(json.loads(json.dumps(folder.vocabulary.get_config())))
    assert time.monotonic() - start < 10


@SETTINGS
@given(
    config=st.dictionaries(
        st.sampled_from(["split", "lower", "pattern", "sequence_length", "pad", "truncate", "tokens", "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-5, 2**40),
            st.floats(),
            st.text(max_size=5),
            st.lists(st.one_of(st.text(max_size=3), st.integers()), max_size=5),
        ),
    )
)
def test_random_configs_are_refused_with_value_error(config):
    base = _config()
    base.update(config)
    try:
        vocab = Vocabulary.from_config(base)
    except ValueError:
        pass
    else:
        assert Vocabulary.from_config(vocab.get_config()) == vocab


def test_neuro_data_loads_its_readers_on_first_use():
    """`import neuro` does not import the image, CSV and text readers; their names and modules still resolve."""
    import subprocess
    import sys

    code = (
        "import sys, neuro\n"
        "lazy = ['neuro.data.images', 'neuro.data.csv', 'neuro.data.text', 'neuro.data.tabular']\n"
        "assert not [m for m in lazy if m in sys.modules], [m for m in lazy if m in sys.modules]\n"
        "from neuro.data import ImageDataSet, Vocabulary, load_csv\n"
        "assert neuro.data.mnist.load_idx is neuro.data.load_idx\n"
        "assert neuro.data.text.Vocabulary is Vocabulary and 'ImageDataSet' in dir(neuro.data)\n"
        "try:\n    neuro.data.nothing\nexcept AttributeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "module 'neuro.data' has no attribute 'nothing'"
