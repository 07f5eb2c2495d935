"""Text data: a :class:`Vocabulary` of tokens and :class:`TextDataSet` (class folders, or one text file).

Tokens are characters (``split="character"``: every character, spaces and line breaks included) or words
(``split="word"``: the matches of a regular expression, by default :data:`DEFAULT_PATTERN`, a run of word
characters or one punctuation character). Text is lower-cased first when ``lower`` is true. Words never span
a line break: the pattern is applied to each line (the text between two ``"\\n"``) on its own, in memory as
in files. Matches of the empty string are skipped.

The vocabulary maps tokens to int64 ids: **0 is padding** and **1 is out-of-vocabulary** (``"[UNK]"``), and
the tokens of the training texts follow from id 2, most frequent first; tokens of equal count are ordered by
their code points (Python's string order), so a vocabulary does not depend on the order its texts were read
in. ``max_tokens`` counts the two reserved ids. A word longer than :data:`MAX_TOKEN_CHARS` characters, and
the text ``"[UNK]"`` itself, never enter a vocabulary (they encode as 1). A vocabulary's configuration
(:meth:`Vocabulary.get_config`) is plain JSON, saved in model files; :meth:`Vocabulary.from_config` checks
every key of it, so a model file from a stranger cannot smuggle in an unbounded vocabulary.

Reading files: each file is decoded strictly with the given encoding, 1 MiB at a time, so a large file never
needs its size in memory beyond the token ids kept (4 bytes a token while reading). A byte that is not text
in that encoding is an error naming the file and the byte offset; a file larger than ``max_file_bytes``, a
file without text, a folder without class folders and a class folder without ``.txt`` files are refused.
With ``encoding="utf-8"`` a leading byte-order mark is dropped. A line longer than 2**20 characters is
tokenized in pieces cut at whitespace (or, without any, after punctuation), so the default pattern's words
are never cut; only a run of over a million word characters is cut where a read ends. Line endings are kept
as they are (a ``"\\r"`` is a character token). Files and folders whose names start with ``.`` are ignored;
symbolic links are followed; special files (pipes, devices) are refused without being opened.
"""

from __future__ import annotations

import codecs
import math
import os
import pathlib
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from neuro.data._files import open_regular
from neuro.data.dataset import DataSet, Split, check_batch_size, check_fraction, check_order, split_indices

MAX_TOKENS = 1_000_000
"""Largest vocabulary size (``max_tokens``, the two reserved ids included)."""

MAX_TOKEN_CHARS = 256
"""Longest token, in characters; longer words are out of vocabulary."""

MAX_SEQUENCE_LENGTH = 1_000_000
"""Largest ``sequence_length``."""

MAX_PATTERN_CHARS = 1000
"""Longest word ``pattern``, in characters."""

DEFAULT_PATTERN = r"\w+|[^\w\s]"
"""The default word token: a run of letters, digits and underscores, or one other non-space character."""

SAFE_PATTERNS = frozenset(
    {
        DEFAULT_PATTERN,
        r"\w+",
        r"\S+",
        r"[^\s]+",
        r"\w+|\S",
        r"[^\W\d_]+",
        r"[A-Za-z]+",
        r"[a-z]+",
        r"[A-Za-z0-9]+",
        r"\w+(?:'\w+)?|[^\w\s]",
    }
)
"""Word patterns a model file may carry without ``trust_pattern``: each matches in time linear in the text
(no nested or overlapping repetitions). A pattern from a stranger could take exponential time on some text
(catastrophic backtracking), so :meth:`Vocabulary.from_config` refuses other patterns of word vocabularies
unless told to trust them."""

DEFAULT_MAX_FILE_BYTES = 2**30
"""Largest text file read (1 GiB) unless ``max_file_bytes`` says otherwise."""

PAD_ID = 0
"""The id of padding."""

OOV_ID = 1
"""The id of a token that is not in the vocabulary."""

OOV_TOKEN = "[UNK]"
"""How :meth:`Vocabulary.decode` writes an out-of-vocabulary id."""

SPLITS = ("character", "word")
SIDES = ("pre", "post")

_CHUNK_BYTES = 2**20  # bytes read (and decoded) at a time
_MAX_PIECE_CHARS = 2**20  # a line longer than this is cut at whitespace while reading a file
_CONFIG_KEYS = ("split", "lower", "pattern", "sequence_length", "pad", "truncate", "tokens")
_SURROGATE = re.compile("[\ud800-\udfff]")
_UP_TO_LAST_SPACE = re.compile(r".*\s", re.S)  # greedy: backtracks from the end, linear
_UP_TO_LAST_NON_WORD = re.compile(r".*\W", re.S)
_UNICODE_END = 0x110000


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_split(value: Any, label: str) -> str:
    if not isinstance(value, str) or value not in SPLITS:
        raise ValueError(f"{label} must be 'character' or 'word', got {_short(value)}")
    return value


def _check_bool(value: Any, label: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{label} must be True or False, got {_short(value)}")
    return bool(value)


def _check_side(value: Any, label: str) -> str:
    if not isinstance(value, str) or value not in SIDES:
        raise ValueError(f"{label} must be 'pre' or 'post', got {_short(value)}")
    return value


def _check_pattern(value: Any, label: str) -> re.Pattern:
    if not isinstance(value, str) or not value or len(value) > MAX_PATTERN_CHARS:
        raise ValueError(
            f"{label} must be a regular expression of 1 to {MAX_PATTERN_CHARS} characters, "
            f"got {_short(value)}"
        )
    try:
        return re.compile(value)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        raise ValueError(f"{label} is not a valid regular expression ({exc}): {_short(value)}") from None


def _check_sequence_length(value: Any, label: str, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if not _is_int(value) or not 1 <= value <= MAX_SEQUENCE_LENGTH:
        what = "None or an integer" if optional else "an integer"
        raise ValueError(f"{label} must be {what} in [1, {MAX_SEQUENCE_LENGTH}], got {_short(value)}")
    return int(value)


def _check_max_tokens(value: Any) -> int:
    if not _is_int(value) or not 3 <= value <= MAX_TOKENS:
        raise ValueError(
            f"max_tokens must be an integer in [3, {MAX_TOKENS}] (it counts the padding and "
            f"out-of-vocabulary ids 0 and 1), got {_short(value)}"
        )
    return int(value)


def _check_positive(value: Any, name: str) -> int:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {_short(value)}")
    return int(value)


def _check_encoding(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"encoding must be the name of a text encoding such as 'utf-8', got {_short(value)}")
    try:
        info = codecs.lookup(value)
    except LookupError as exc:
        raise ValueError(f"encoding {value!r} is not a text encoding Python knows: {exc}") from None
    if not getattr(info, "_is_text_encoding", True):  # base64, zlib, rot13...: bytes-to-bytes codecs
        raise ValueError(
            f"encoding {value!r} is not a text encoding Python knows: {info.name!r} is not a text encoding"
        )
    return "utf-8-sig" if info.name == "utf-8" else value


def _check_tokens(value: Any, split: str, label: str) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{label} must be a list of strings, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{label} must hold at least one token")
    if len(value) > MAX_TOKENS - 2:
        raise ValueError(
            f"{label} holds {len(value)} tokens, more than {MAX_TOKENS - 2} (MAX_TOKENS={MAX_TOKENS} counts "
            "the reserved ids 0 and 1)"
        )
    longest = 1 if split == "character" else MAX_TOKEN_CHARS
    seen: dict[str, int] = {}
    for i, token in enumerate(value):
        if not isinstance(token, str) or not 1 <= len(token) <= longest:
            what = "one character" if split == "character" else f"a string of 1 to {longest} characters"
            raise ValueError(f"{label} item {i} must be {what}, got {_short(token)}")
        if token == OOV_TOKEN:
            raise ValueError(
                f"{label} item {i} is {OOV_TOKEN!r}, the out-of-vocabulary token (id {OOV_ID}), which is "
                "reserved"
            )
        if _SURROGATE.search(token):
            raise ValueError(f"{label} item {i} holds a lone surrogate, which is not text: {_short(token)}")
        if token in seen:
            raise ValueError(f"{label} holds {_short(token)} twice (items {seen[token]} and {i})")
        seen[token] = i
    return [str(t) for t in value]


class _Tokenizer:
    """Cuts text into tokens: characters, or the non-empty matches of a pattern on each line."""

    def __init__(self, split: str, lower: bool, pattern: re.Pattern) -> None:
        self.split = split
        self.lower = lower
        self.regex = pattern

    def normalize(self, text: str) -> str:
        return text.lower() if self.lower else text

    def words(self, text: str) -> list[str]:
        """The word tokens of already normalised text."""
        regex = self.regex
        out: list[str] = []
        for line in text.split("\n"):
            if regex.groups:
                out.extend(t for t in (m.group() for m in regex.finditer(line)) if t)
            else:
                out.extend(t for t in regex.findall(line) if t)
        return out

    def tokens(self, text: str) -> list[str]:
        text = self.normalize(text)
        return list(text) if self.split == "character" else self.words(text)


def _tokenizer(split: Any, lower: Any, pattern: Any) -> _Tokenizer:
    """A tokenizer from checked arguments (errors name them)."""
    split = _check_split(split, "split")
    return _Tokenizer(split, _check_bool(lower, "lower"), _check_pattern(pattern, "pattern"))


class _Counter:
    """Provisional ids and counts of the tokens of training texts, turned into a :class:`Vocabulary`.

    A character's provisional id is its code point; a word's is its order of first appearance from 1, with 0
    standing for every word that can never enter a vocabulary (too long, or the ``"[UNK]"`` text).
    """

    def __init__(self, tokenizer: _Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.chars = tokenizer.split == "character"
        self.table: dict[str, int] = {}
        self.words: list[str | None] = [None]
        self.counts = np.zeros(_UNICODE_END if self.chars else 1024, dtype=np.int64)

    def ids(self, text: str) -> np.ndarray:
        """Provisional int32 ids of the tokens of ``text`` (normalised here), recording new words."""
        text = self.tokenizer.normalize(text)
        if self.chars:
            return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int32)
        table, words = self.table, self.words
        out = []
        for token in self.tokenizer.words(text):
            pid = table.get(token)
            if pid is None:
                if len(token) > MAX_TOKEN_CHARS or token == OOV_TOKEN:
                    pid = 0
                else:
                    pid = table[token] = len(words)
                    words.append(token)
            out.append(pid)
        return np.asarray(out, dtype=np.int32)

    def size(self) -> int:
        return _UNICODE_END if self.chars else len(self.words)

    def count(self, pids: np.ndarray) -> None:
        if not pids.size:
            return
        if not self.chars and len(self.words) > len(self.counts):
            grown = np.zeros(max(len(self.words), 2 * len(self.counts)), dtype=np.int64)
            grown[: len(self.counts)] = self.counts
            self.counts = grown
        values, counts = np.unique(pids, return_counts=True)
        self.counts[values] += counts

    def set_counts(self, counts: np.ndarray) -> None:
        self.counts = counts.astype(np.int64, copy=False)

    def token(self, pid: int) -> str | None:
        return chr(pid) if self.chars else self.words[pid]

    def build(self, max_tokens: int) -> tuple[list[str], np.ndarray]:
        """The vocabulary's tokens (ids 2…) and the lookup array from provisional ids to final ids."""
        n = self.size()
        counts = np.zeros(n, dtype=np.int64)
        m = min(n, len(self.counts))
        counts[:m] = self.counts[:m]
        if not self.chars:
            counts[0] = 0  # words that never enter a vocabulary
        keep = max_tokens - 2
        candidates = np.flatnonzero(counts)
        if len(candidates) > keep:
            threshold = np.partition(counts[candidates], len(candidates) - keep)[len(candidates) - keep]
            candidates = candidates[counts[candidates] >= threshold]
        order = sorted(candidates.tolist(), key=lambda p: (-int(counts[p]), self.token(p)))[:keep]
        lookup = np.full(n, OOV_ID, dtype=np.int32)
        lookup[np.asarray(order, dtype=np.intp)] = np.arange(2, len(order) + 2, dtype=np.int32)
        return [self.token(p) for p in order], lookup  # type: ignore[misc]


def pad_sequences(
    sequences: Iterable[Any],
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: float = 0,
) -> np.ndarray:
    """Pad (or truncate) sequences of ids or values to one length, as Keras's ``pad_sequences``: one row per
    sequence, the padding before the values (``"pre"``, Keras's default) or after them.

    Args:
        sequences: sequences of numbers (token ids), or of arrays of one shape (the rows' steps).
        maxlen: the length of the rows; ``None``: the longest sequence's.
        dtype: the type of the result (``"int32"``, as Keras's); an integer type takes whole numbers only
            (a float id is refused, never truncated).
        padding: ``"pre"`` or ``"post"``: where the padding goes.
        truncating: ``"pre"`` or ``"post"``: which end of a longer sequence is dropped.
        value: the padding value (0: the padding id of :class:`Vocabulary` and of
            ``Embedding(mask_zero=True)``).

    Shape:
        ``n`` sequences → ``(n, maxlen, *step_shape)``.

    Returns:
        The padded rows.

    Raises:
        ValueError: for a ``padding`` or ``truncating`` other than ``"pre"``/``"post"``, a ``maxlen`` that is
            not a non-negative integer, steps of different shapes, or values the ``dtype`` cannot hold
            exactly (a fraction into an integer type).
        TypeError: for ``sequences`` that are not sequences of numbers.
    """
    padding = _check_side(padding, "padding")
    truncating = _check_side(truncating, "truncating")
    if maxlen is not None and (isinstance(maxlen, bool) or not _is_int(maxlen) or maxlen < 0):
        raise ValueError(f"maxlen must be a non-negative integer or None, got {maxlen!r}")
    try:
        items = list(sequences)
    except TypeError:
        kind = type(sequences).__name__
        raise TypeError(f"sequences must be an iterable of sequences, got {kind}") from None
    rows = []
    for i, q in enumerate(items):
        try:
            rows.append(np.asarray(q))
        except (TypeError, ValueError):  # ragged steps
            raise ValueError(
                f"sequences[{i}] must be a sequence of numbers or of steps of one shape"
            ) from None
    out_type = np.dtype(dtype)
    step: tuple[int, ...] | None = None
    for i, r in enumerate(rows):
        if r.ndim == 0:
            raise TypeError(f"sequences[{i}] must be a sequence, got {r.item()!r}")
        if r.dtype.kind not in "biuf":
            raise TypeError(f"sequences[{i}] must hold numbers, got dtype {r.dtype}")
        if len(r):
            if step is None:
                step = r.shape[1:]
            elif r.shape[1:] != step:
                raise ValueError(f"sequences[{i}] has steps of shape {r.shape[1:]}, the first ones {step}")
        if out_type.kind in "iu" and r.dtype.kind == "f" and not np.all(np.mod(r, 1) == 0):
            raise ValueError(f"sequences[{i}] holds fractions, which dtype {out_type.name} cannot hold")
    length = max((len(r) for r in rows), default=0) if maxlen is None else int(maxlen)
    out = np.full((len(rows), length, *(step or ())), value, dtype=out_type)
    for i, r in enumerate(rows):
        if not len(r) or not length:
            continue
        kept = r[:length] if truncating == "post" else r[max(len(r) - length, 0) :]
        if padding == "post":
            out[i, : len(kept)] = kept
        else:
            out[i, length - len(kept) :] = kept
    return out


def _fit_row(ids: np.ndarray, length: int, pad: str, truncate: str) -> np.ndarray:
    """Truncate or pad (with 0) a 1-D id array to ``length``."""
    if len(ids) > length:
        return ids[:length] if truncate == "post" else ids[len(ids) - length :]
    row = np.zeros(length, dtype=ids.dtype)
    if pad == "post":
        row[: len(ids)] = ids
    else:
        row[length - len(ids) :] = ids
    return row


class Vocabulary:
    """Tokens ↔ int64 ids, with the tokenizer settings the vocabulary was built with.

    Id 0 is padding, id 1 an out-of-vocabulary token, and ``tokens[k]`` has id ``k + 2``. Build one from
    texts with :meth:`build` (or get it from a :class:`TextDataSet`), or give the tokens directly.

    Args:
        tokens: the tokens of ids 2, 3, …: distinct non-empty strings of at most :data:`MAX_TOKEN_CHARS`
            characters (one character each for ``split="character"``), not ``"[UNK]"``; at most
            ``MAX_TOKENS - 2``.
        split: ``"character"`` or ``"word"``.
        lower: lower-case texts before cutting them into tokens.
        pattern: the regular expression of a word token (used with ``split="word"``; kept, unused, with
            ``"character"``).
        sequence_length: length of the rows :meth:`encode` returns (padded and truncated), or ``None`` to
            encode one text at its own length.
        pad: ``"post"`` pads with 0 after the tokens, ``"pre"`` before them.
        truncate: ``"post"`` drops tokens from the end of a long text, ``"pre"`` from its start.

    Raises:
        ValueError: naming the argument that is out of its bounds or of the wrong type.
    """

    def __init__(
        self,
        tokens: Sequence[str],
        *,
        split: str = "word",
        lower: bool = True,
        pattern: str = DEFAULT_PATTERN,
        sequence_length: int | None = None,
        pad: str = "post",
        truncate: str = "post",
    ) -> None:
        self._setup(tokens, split, lower, pattern, sequence_length, pad, truncate, lambda key: key)

    def _setup(
        self,
        tokens: Any,
        split: Any,
        lower: Any,
        pattern: Any,
        sequence_length: Any,
        pad: Any,
        truncate: Any,
        label: Any,
    ) -> None:
        self.split: str = _check_split(split, label("split"))
        self.lower: bool = _check_bool(lower, label("lower"))
        regex = _check_pattern(pattern, label("pattern"))
        self.pattern: str = str(pattern)
        self.sequence_length: int | None = _check_sequence_length(
            sequence_length, label("sequence_length"), optional=True
        )
        self.pad: str = _check_side(pad, label("pad"))
        self.truncate: str = _check_side(truncate, label("truncate"))
        self._tokens = _check_tokens(tokens, self.split, label("tokens"))
        self._ids = {t: i for i, t in enumerate(self._tokens, start=2)}
        self._tokenizer = _Tokenizer(self.split, self.lower, regex)

    @classmethod
    def build(
        cls,
        texts: str | Iterable[str],
        *,
        max_tokens: int = 20000,
        split: str = "word",
        lower: bool = True,
        pattern: str = DEFAULT_PATTERN,
        sequence_length: int | None = None,
        pad: str = "post",
        truncate: str = "post",
    ) -> Vocabulary:
        """Count the tokens of ``texts`` and keep the ``max_tokens - 2`` most frequent.

        Args:
            texts: one text or an iterable of texts.
            max_tokens: the vocabulary size, the ids 0 and 1 included: an integer in [3, :data:`MAX_TOKENS`].
            split: ``"character"`` or ``"word"``.
            lower: lower-case before cutting into tokens.
            pattern: the regular expression of a word token.
            sequence_length: the length :meth:`encode` pads and truncates to, or ``None``.
            pad: ``"post"`` or ``"pre"``.
            truncate: ``"post"`` or ``"pre"``.

        Returns:
            The vocabulary: most frequent tokens first, ties in code-point order.

        Raises:
            ValueError: for a bad argument (naming it), or texts without a single token.
            TypeError: when a text is not a string.
        """
        max_tokens = _check_max_tokens(max_tokens)
        tokenizer = _tokenizer(split, lower, pattern)
        counter = _Counter(tokenizer)
        for i, text in enumerate([texts] if isinstance(texts, str) else texts):
            if not isinstance(text, str):
                raise TypeError(f"texts must be strings, got {type(text).__name__} at index {i}")
            if _SURROGATE.search(text):
                raise ValueError(f"text {i} holds a lone surrogate, which is not text")
            counter.count(counter.ids(text))
        tokens, _ = counter.build(max_tokens)
        if not tokens:
            raise ValueError("texts hold no tokens to build a vocabulary from")
        return cls(
            tokens, split=split, lower=lower, pattern=pattern, sequence_length=sequence_length, pad=pad,
            truncate=truncate,
        )  # fmt: skip

    @property
    def tokens(self) -> list[str]:
        """Every token by id: ``["", "[UNK]", tokens of ids 2, 3, …]`` (as Keras's ``get_vocabulary``)."""
        return ["", OOV_TOKEN, *self._tokens]

    def __len__(self) -> int:
        return len(self._tokens) + 2

    def token_ids(self, text: str) -> np.ndarray:
        """Return the ids of the tokens of one text, neither padded nor truncated.

        Args:
            text: the text.

        Returns:
            int64 ids ``(tokens,)``; unknown tokens are 1.

        Raises:
            TypeError: when ``text`` is not a string.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        get = self._ids.get
        return np.fromiter((get(t, OOV_ID) for t in self._tokenizer.tokens(text)), dtype=np.int64)

    def encode(self, texts: str | Sequence[str]) -> np.ndarray:
        """Turn texts into rows of token ids, padded with 0 and truncated to ``sequence_length``.

        Args:
            texts: one text or a sequence of texts.

        Returns:
            int64 ids ``(N, sequence_length)`` (``N = 1`` for one text); with ``sequence_length=None``,
            ``(1, tokens)`` for one text.

        Raises:
            TypeError: when ``texts`` is not a string or a sequence of strings.
            ValueError: for several texts without a ``sequence_length``.
        """
        if isinstance(texts, str):
            texts = [texts]
        elif isinstance(texts, np.ndarray) and texts.dtype.kind == "U":
            texts = [str(t) for t in texts.reshape(-1)]
        elif not isinstance(texts, (list, tuple)):
            raise TypeError(f"texts must be a string or a sequence of strings, got {type(texts).__name__}")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts must be strings, got {type(text).__name__} at index {i}")
        length = self.sequence_length
        if length is None:
            if len(texts) != 1:
                raise ValueError(
                    f"encoding {len(texts)} texts needs a sequence_length (the vocabulary has none); "
                    "only one text is encoded at its own length"
                )
            return self.token_ids(texts[0])[None, :]
        out = np.zeros((len(texts), length), dtype=np.int64)
        for i, text in enumerate(texts):
            out[i] = _fit_row(self.token_ids(text), length, self.pad, self.truncate)
        return out

    def decode(self, ids: Any) -> list[str]:
        """Turn rows of ids back into texts: padding (0) dropped, 1 written ``"[UNK]"``.

        Tokens are joined with nothing (characters) or one space (words), so decoding the encoding of a
        text gives its lower-cased (when ``lower``) tokens, not necessarily its spacing.

        Args:
            ids: integer ids ``(N, L)``, or ``(L,)`` for one row.

        Returns:
            ``N`` texts.

        Raises:
            ValueError: for ids that are not integers in ``[0, len(self))`` or not 1-D or 2-D.
        """
        arr = np.asarray(ids)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or (arr.size and arr.dtype.kind not in "iu"):
            raise ValueError(f"ids must be integers (N, L) or (L,), got shape {arr.shape}, dtype {arr.dtype}")
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= len(self)):
            raise ValueError(
                f"ids must lie in [0, {len(self) - 1}] (the vocabulary's size), got values in "
                f"[{int(arr.min())}, {int(arr.max())}]"
            )
        vocab = self.tokens
        joiner = "" if self.split == "character" else " "
        return [joiner.join(vocab[i] for i in row.tolist() if i != PAD_ID) for row in arr]

    def get_config(self) -> dict[str, Any]:
        """Return the vocabulary as plain JSON: its settings and its tokens (those of ids 2, 3, …).

        Returns:
            ``{"split", "lower", "pattern", "sequence_length", "pad", "truncate", "tokens"}``, accepted by
            :meth:`from_config`.
        """
        return {
            "split": self.split,
            "lower": self.lower,
            "pattern": self.pattern,
            "sequence_length": self.sequence_length,
            "pad": self.pad,
            "truncate": self.truncate,
            "tokens": list(self._tokens),
        }

    @classmethod
    def from_config(cls, config: Any, trust_pattern: bool = True) -> Vocabulary:
        """Rebuild a vocabulary from :meth:`get_config`'s output, checking every key.

        Args:
            config: a dict with exactly the keys ``split`` (``"character"`` or ``"word"``), ``lower`` (bool),
                ``pattern`` (a regular expression of at most :data:`MAX_PATTERN_CHARS` characters),
                ``sequence_length`` (``None`` or an int in [1, :data:`MAX_SEQUENCE_LENGTH`]), ``pad`` and
                ``truncate`` (``"pre"`` or ``"post"``) and ``tokens`` (1 to ``MAX_TOKENS - 2`` distinct
                non-empty strings of at most :data:`MAX_TOKEN_CHARS` characters, one character each for
                ``"character"``, none of them ``"[UNK]"``).
            trust_pattern: accept any word pattern; ``False`` (what :func:`neuro.load` passes unless told
                otherwise) accepts only those of :data:`SAFE_PATTERNS` for ``split="word"`` (a character
                vocabulary never runs its pattern).

        Returns:
            The vocabulary.

        Raises:
            ValueError: naming the key that is missing, unknown, of the wrong type or out of its bounds, or a
                word pattern outside :data:`SAFE_PATTERNS` without ``trust_pattern``.
        """
        if not isinstance(config, dict):
            raise ValueError(f"vocabulary config must be a dict, got {type(config).__name__}")
        extra = sorted(_short(k) for k in config if k not in _CONFIG_KEYS)
        if extra:
            raise ValueError(f"vocabulary config has unknown keys {extra}; expected {list(_CONFIG_KEYS)}")
        for key in _CONFIG_KEYS:
            if key not in config:
                raise ValueError(f"vocabulary config is missing the key {key!r}")
        pattern = config["pattern"]
        if not trust_pattern and config["split"] == "word" and isinstance(pattern, str):
            if pattern not in SAFE_PATTERNS:
                raise ValueError(
                    f"vocabulary config key 'pattern' is {_short(pattern)}, not one of the word patterns a "
                    "file may carry (neuro.data.text.SAFE_PATTERNS): a regular expression from a stranger "
                    "could take exponential time on some texts; load with trust_pattern=True if you trust "
                    "the file"
                )
        self = cls.__new__(cls)
        self._setup(
            config["tokens"], config["split"], config["lower"], config["pattern"], config["sequence_length"],
            config["pad"], config["truncate"], lambda key: f"vocabulary config key {key!r}",
        )  # fmt: skip
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self.get_config() == other.get_config()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Vocabulary({len(self)} tokens, split={self.split!r}, lower={self.lower}, "
            f"sequence_length={self.sequence_length})"
        )


# -- reading files -------------------------------------------------------------------------------------------
def _read_pieces(
    path: str | os.PathLike, encoding: str, max_file_bytes: int, cut_lines: bool
) -> Iterator[str]:
    """Decode a file strictly, 1 MiB at a time; yield its text in pieces.

    With ``cut_lines`` a piece ends at a line break; in a line longer than ``_MAX_PIECE_CHARS``, after its
    last whitespace, else after its last non-word character, else (a run of word characters only) where the
    read ended.
    """
    name = os.fspath(path)
    try:
        fh = open_regular(path)
    except OSError as exc:  # a link that loops or leads nowhere, an unreadable file
        if isinstance(exc, FileNotFoundError) and not os.path.lexists(path):
            raise  # no such file at all: from_file's documented error
        raise ValueError(f"{name!r} cannot be read: {exc.strerror or exc}") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_file_bytes:
            raise ValueError(
                f"{name!r} is {size:,} bytes, more than max_file_bytes={max_file_bytes:,}; "
                "pass a larger max_file_bytes to read it"
            )
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        shown = "utf-8" if encoding == "utf-8-sig" else encoding
        total = 0
        chars = 0
        carry = ""
        while True:
            block = fh.read(_CHUNK_BYTES)
            total += len(block)
            if total > max_file_bytes:
                raise ValueError(
                    f"{name!r} holds more than max_file_bytes={max_file_bytes:,} bytes (it grew while read); "
                    "pass a larger max_file_bytes to read it"
                )
            final = not block
            try:
                text = decoder.decode(block, final=final)
            except UnicodeDecodeError as exc:
                offset = min(max(total - len(exc.object) + exc.start, 0), total)
                raise ValueError(
                    f"{name!r} is not {shown} text: {exc.reason} at byte {offset}; "
                    "pass the file's encoding= (for instance encoding='latin-1')"
                ) from None
            except (UnicodeError, ValueError, TypeError) as exc:
                raise ValueError(
                    f"{name!r} is not {shown} text: {exc} (in the bytes up to byte {total})"
                ) from None
            if not isinstance(text, str):  # pragma: no cover - text encodings return str
                raise ValueError(f"{name!r}: encoding {shown!r} did not decode to text")
            bad = _SURROGATE.search(text)
            if bad:
                raise ValueError(
                    f"{name!r} decodes (as {shown}) to a lone surrogate U+{ord(bad.group()):04X} at "
                    f"character {chars + bad.start()}, which is not text"
                )
            chars += len(text)
            if cut_lines:
                carry += text
                if final:
                    piece, carry = carry, ""
                else:
                    cut = carry.rfind("\n") + 1
                    if not cut and len(carry) > _MAX_PIECE_CHARS:
                        found = _UP_TO_LAST_SPACE.match(carry) or _UP_TO_LAST_NON_WORD.match(carry)
                        cut = found.end() if found else len(carry)
                    piece, carry = carry[:cut], carry[cut:]
            else:
                piece = text
            if piece:
                yield piece
            if final:
                break
        if chars == 0:
            raise ValueError(f"{name!r} holds no text (an empty file)")


def _is_dir(entry: os.DirEntry) -> bool:
    """Whether a folder entry is a folder (following a symbolic link).

    Raises:
        ValueError: naming the entry, when it cannot be followed (a link that loops).
    """
    try:
        return entry.is_dir()
    except OSError as exc:
        raise ValueError(f"{entry.path!r} cannot be read: {exc.strerror or exc}") from None


def _list_classes(
    root: pathlib.Path, class_names: list[str] | None, what: str, partial: bool = False
) -> list[tuple[str, list[str]]]:
    """``[(class, sorted .txt files)]`` of the class folders of ``root`` (those of ``class_names`` when given;
    ``partial``: those of them that ``root`` has)."""
    folders = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.name.startswith(".") and _is_dir(entry):
            folders[entry.name] = pathlib.Path(entry.path)
    if not folders:
        raise ValueError(
            f"{what} folder {str(root)!r} holds no class sub-folders (expected <class>/<file>.txt)"
        )
    if class_names is None:
        names = sorted(folders)
    else:
        names = [c for c in class_names if c in folders] if partial else class_names
    out = []
    for name in names:
        if name not in folders:
            raise ValueError(f"class {name!r} of class_names has no folder in {str(root)!r}")
        files = []
        for entry in sorted(os.scandir(folders[name]), key=lambda e: e.name):
            if entry.name.startswith(".") or os.path.splitext(entry.name)[1].lower() != ".txt":
                continue
            if _is_dir(entry):
                continue
            files.append(entry.path)  # special files are refused by open_regular, never opened
        if not files:
            raise ValueError(f"class folder {str(folders[name])!r} holds no .txt files")
        out.append((name, files))
    return out


def _check_class_names(value: Any) -> list[str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(c, str) and c for c in value)
        or len(set(value)) != len(value)
    ):
        raise ValueError(f"class_names must be None or a list of distinct folder names, got {_short(value)}")
    return list(value)


class TextSplit(Split):
    """A split of token ids: rows of a text folder, or windows of one text, handed out as int64 batches.

    Args:
        ids: int token ids, kept as given (int32 saves memory): ``(N, sequence_length)`` rows, or the 1-D
            token stream of a text when ``starts`` is given.
        targets: with rows, int64 class ids ``(N,)``; ``None`` with a stream (the targets are the windows
            shifted by one token).
        starts: with a stream, the first token of each window ``(N,)``; ``None`` with rows.
        sequence_length: with a stream, the window length; ``None`` with rows.

    Raises:
        ValueError: for arrays of the wrong shape or dtype, or windows outside the stream.
    """

    def __init__(
        self,
        ids: np.ndarray,
        targets: np.ndarray | None = None,
        starts: np.ndarray | None = None,
        sequence_length: int | None = None,
    ) -> None:
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise ValueError(f"ids must be integers, got dtype {ids.dtype}")
        if starts is None:
            if ids.ndim != 2 or targets is None or np.shape(targets) != (len(ids),):
                raise ValueError(
                    f"rows need ids (N, sequence_length) and targets (N,), got {ids.shape} and "
                    f"{None if targets is None else np.shape(targets)}"
                )
            self._length = ids.shape[1]
            self._targets = np.asarray(targets, dtype=np.int64)
            self._starts = None
        else:
            length = _check_sequence_length(sequence_length, "sequence_length", optional=False)
            starts = np.asarray(starts, dtype=np.int64)
            if ids.ndim != 1 or starts.ndim != 1 or targets is not None:
                raise ValueError(
                    f"windows need a 1-D ids stream, 1-D starts and no targets, got ids {ids.shape}, "
                    f"starts {starts.shape}"
                )
            if starts.size and (starts.min() < 0 or starts.max() + length + 1 > len(ids)):
                raise ValueError(
                    f"windows of {length} tokens and their targets must lie in the {len(ids)} ids"
                )
            self._length = length
            self._targets = None
            self._starts = starts
        self._ids = ids

    @property
    def windows(self) -> bool:
        """Whether the split cuts windows from a text (language modelling) rather than holding rows."""
        return self._starts is not None

    def __len__(self) -> int:
        return len(self._ids) if self._starts is None else len(self._starts)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(sequence_length,)``."""
        return (self._length,)

    def _batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._starts is None:
            return self._ids[rows].astype(np.int64), self._targets[rows]  # type: ignore[index]
        positions = self._starts[rows][:, None] + np.arange(self._length + 1)
        both = self._ids[positions].astype(np.int64)
        return both[:, :-1], both[:, 1:]

    def batches(
        self,
        order: np.ndarray,
        batch_size: int,
        augment: bool = False,
        rng: np.random.Generator | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(x, y)`` batches in the order of ``order`` (see :meth:`Split.batches`).

        Args:
            order: 1-D integer array of sample indices of this split.
            batch_size: samples per batch.
            augment: ignored (text has no augmentation).
            rng: ignored.

        Yields:
            ``(x, y)``: x int64 ids ``(B, sequence_length)``; y int64 class ids ``(B,)``, or for windows
            the next-token ids ``(B, sequence_length)``.

        Raises:
            ValueError: for a bad ``order`` or ``batch_size``.
        """
        order = check_order(order, len(self))
        batch_size = check_batch_size(batch_size)
        return (self._batch(order[s : s + batch_size]) for s in range(0, len(order), batch_size))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the whole split as int64 ``(x, y)``, in stored order.

        Returns:
            ``(x, y)`` with ``len(self)`` rows.
        """
        return self._batch(np.arange(len(self)))

    def _class_ids(self) -> np.ndarray | None:
        return self._targets

    def __repr__(self) -> str:
        kind = "windows" if self.windows else "texts"
        return f"TextSplit({len(self)} {kind}, input_shape={self.input_shape})"


class TextDataSet(DataSet):
    """Token ids from a folder of class folders of ``.txt`` files, or windows of one text file.

    Build one with :meth:`from_dir` (classification) or :meth:`from_file` (language modelling). See the
    module docstring for tokens, the vocabulary's order and what is refused. Batches are int64 token ids;
    the data set has no input scaling.

    Attributes:
        train: the training split (a :class:`TextSplit`).
        valid: the validation split (possibly empty).
        test: the test split (``None`` without a ``test/`` folder).
        class_names: the class folder names (class id = index), or ``None`` for a language model.
        vocabulary: the :class:`Vocabulary` built from the training split, which encodes new texts the same
            way.
    """

    vocabulary: Vocabulary | None = None

    @classmethod
    def from_dir(
        cls,
        path: str | os.PathLike,
        *,
        sequence_length: int,
        max_tokens: int = 20000,
        split: str = "word",
        lower: bool = True,
        pattern: str = DEFAULT_PATTERN,
        pad: str = "post",
        truncate: str = "post",
        class_names: Sequence[str] | None = None,
        valid_frac: float = 0.0,
        seed: int | None = 0,
        encoding: str = "utf-8",
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> TextDataSet:
        """Read ``path/<class>/*.txt``, or ``path/train/<class>/*.txt`` and an optional ``path/test/``.

        The layout of Keras's ``text_dataset_from_directory``: one folder per class, class names sorted
        (class id = position). When ``path`` holds a ``train/`` folder, it is read as the training folder and
        ``path/test/`` (if present) as the test folder, as :meth:`ImageDataSet.from_dir` does. Each file is
        one sample; files are read in sorted name order. The vocabulary is built from the training samples
        only (not the validation or test ones), counting every token of each text before it is truncated.

        Args:
            path: the folder.
            sequence_length: tokens per sample: longer texts are truncated, shorter ones padded with 0.
            max_tokens: the vocabulary size, ids 0 and 1 included, in [3, :data:`MAX_TOKENS`].
            split: ``"word"`` or ``"character"`` tokens.
            lower: lower-case texts first.
            pattern: the regular expression of a word token.
            pad: pad ``"post"`` (after the tokens) or ``"pre"``.
            truncate: drop the tokens beyond ``sequence_length`` at the end (``"post"``) or the start
                (``"pre"``).
            class_names: the class folders to read, in the order of their ids (other folders are ignored,
                and a test folder may lack some of them); ``None`` reads every one, sorted.
            valid_frac: share of the training files held out for validation, in [0, 1): the last
                ``valid_frac`` of a permutation seeded by ``seed``.
            seed: seed of the validation permutation.
            encoding: the files' text encoding (decoded strictly).
            max_file_bytes: largest file read, in bytes.

        Returns:
            The data set: x int64 ids ``(N, sequence_length)``, y int64 class ids ``(N,)``.

        Raises:
            FileNotFoundError: when ``path`` is not a folder.
            ValueError: for a bad argument (naming it), a folder without class folders, a class folder without
                ``.txt`` files, a test class that is not a training class, or a file that is special, too
                large, empty or not text in ``encoding`` (naming the file and, for a bad byte, its offset),
                or training texts without a single token.
        """
        length = _check_sequence_length(sequence_length, "sequence_length", optional=False)
        max_tokens = _check_max_tokens(max_tokens)
        tokenizer = _tokenizer(split, lower, pattern)
        pad, truncate = _check_side(pad, "pad"), _check_side(truncate, "truncate")
        class_names = _check_class_names(class_names)
        valid_frac = check_fraction(valid_frac, "valid_frac")
        encoding = _check_encoding(encoding)
        max_file_bytes = _check_positive(max_file_bytes, "max_file_bytes")

        root = pathlib.Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"path {str(root)!r} is not a folder")
        train_dir, test_dir = (root / "train", root / "test") if (root / "train").is_dir() else (root, None)
        classes = _list_classes(train_dir, class_names, "train" if test_dir is not None else "path")
        names = [c for c, _ in classes]
        files = [f for _, fs in classes for f in fs]
        labels = np.asarray([k for k, (_, fs) in enumerate(classes) for _ in fs], dtype=np.int64)
        test = None
        if test_dir is not None and test_dir.is_dir():
            test = _list_classes(test_dir, class_names, "test", partial=True)
            for c, _ in test:
                if c not in names:
                    raise ValueError(
                        f"class {c!r} of test folder {str(test_dir)!r} is not a class of the training folder "
                        f"(classes: {names})"
                    )

        train_idx, valid_idx = split_indices(len(files), valid_frac, seed)
        counter = _Counter(tokenizer)
        rows = np.zeros((len(files), length), dtype=np.int32)
        kept: list[np.ndarray] = []
        for i in train_idx.tolist():
            parts: list[np.ndarray] = []
            held = 0
            for piece in _read_pieces(files[i], encoding, max_file_bytes, tokenizer.split == "word"):
                pids = counter.ids(piece)
                counter.count(pids)
                if truncate == "post" and held >= length:
                    continue
                parts.append(pids)
                held += len(pids)
                if held > 2 * length:
                    joined = np.concatenate(parts)
                    parts = [joined[:length] if truncate == "post" else joined[-length:]]
                    held = len(parts[0])
            joined = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
            kept.append(joined[:length] if truncate == "post" else joined[max(len(joined) - length, 0) :])
        tokens, lookup = counter.build(max_tokens)
        if not tokens:
            raise ValueError(f"the training texts under {str(train_dir)!r} hold no tokens")
        vocabulary = Vocabulary(
            tokens, split=tokenizer.split, lower=tokenizer.lower, pattern=pattern, sequence_length=length,
            pad=pad, truncate=truncate,
        )  # fmt: skip
        for i, pids in zip(train_idx.tolist(), kept, strict=True):
            rows[i] = _fit_row(lookup[pids], length, pad, truncate)
        for i in valid_idx.tolist():
            rows[i] = _read_row(files[i], vocabulary, encoding, max_file_bytes)

        train = TextSplit(rows[train_idx], labels[train_idx])
        valid = TextSplit(rows[valid_idx], labels[valid_idx])
        test_split = None
        if test is not None:
            test_files = [f for _, fs in test for f in fs]
            test_labels = np.asarray([names.index(c) for c, fs in test for _ in fs], dtype=np.int64)
            test_rows = np.zeros((len(test_files), length), dtype=np.int32)
            for i, f in enumerate(test_files):
                test_rows[i] = _read_row(f, vocabulary, encoding, max_file_bytes)
            test_split = TextSplit(test_rows, test_labels)
        data = cls(train, valid, test_split, names)
        data.vocabulary = vocabulary
        return data

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        *,
        sequence_length: int,
        stride: int | None = None,
        max_tokens: int = 20000,
        split: str = "character",
        lower: bool = False,
        pattern: str = DEFAULT_PATTERN,
        pad: str = "pre",
        truncate: str = "pre",
        valid_frac: float = 0.0,
        encoding: str = "utf-8",
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> TextDataSet:
        """Read one text file for language modelling: windows of token ids and the tokens that follow.

        Sample ``i`` starts at token ``s = i·stride``: x holds tokens ``s … s + sequence_length - 1`` and y
        the tokens ``s + 1 … s + sequence_length`` (x shifted by one). With ``valid_frac``, the last
        ``round(tokens · valid_frac)`` tokens are held out and cut into validation windows the same way, so
        no training window (nor its targets) reaches into them; the vocabulary is built from the training
        tokens only.

        Args:
            path: the text file.
            sequence_length: tokens per window.
            stride: tokens between the starts of two windows; ``None`` means ``sequence_length`` (windows
                that do not overlap).
            max_tokens: the vocabulary size, ids 0 and 1 included, in [3, :data:`MAX_TOKENS`].
            split: ``"character"`` or ``"word"`` tokens.
            lower: lower-case the text first.
            pattern: the regular expression of a word token.
            pad: the vocabulary's padding side when it encodes a prompt (``"pre"``: the last token of a short
                prompt ends the row).
            truncate: the vocabulary's truncation side for a long prompt (``"pre"`` keeps its last tokens).
            valid_frac: share of the tokens, from the end of the text, held out for validation, in [0, 1).
            encoding: the file's text encoding (decoded strictly).
            max_file_bytes: largest file read, in bytes.

        Returns:
            The data set: x int64 ids ``(N, sequence_length)``, y int64 next-token ids
            ``(N, sequence_length)``; ``class_names`` is ``None``.

        Raises:
            FileNotFoundError: when the file does not exist.
            ValueError: for a bad argument (naming it); a file that is special, too large, empty or not
                text in ``encoding`` (naming it and, for a bad byte, its offset); or too few tokens for one
                training (or, with ``valid_frac``, one validation) window.
        """
        length = _check_sequence_length(sequence_length, "sequence_length", optional=False)
        stride = length if stride is None else _check_positive(stride, "stride")
        max_tokens = _check_max_tokens(max_tokens)
        tokenizer = _tokenizer(split, lower, pattern)
        pad, truncate = _check_side(pad, "pad"), _check_side(truncate, "truncate")
        valid_frac = check_fraction(valid_frac, "valid_frac")
        encoding = _check_encoding(encoding)
        max_file_bytes = _check_positive(max_file_bytes, "max_file_bytes")
        name = os.fspath(path)

        counter = _Counter(tokenizer)
        stream = np.empty(0, dtype=np.int32)
        n = 0
        for piece in _read_pieces(path, encoding, max_file_bytes, tokenizer.split == "word"):
            pids = counter.ids(piece)
            if n + len(pids) > len(stream):
                grown = np.empty(max(n + len(pids), 2 * len(stream), 1024), dtype=np.int32)
                grown[:n] = stream[:n]
                stream = grown
            stream[n : n + len(pids)] = pids
            n += len(pids)
        stream = stream[:n]
        n_valid = math.floor(n * valid_frac + 0.5) if valid_frac > 0 else 0
        n_train = n - n_valid
        if n_train < length + 1:
            raise ValueError(
                f"{name!r} holds {n_train} {tokenizer.split} tokens"
                + (f" for training (valid_frac={valid_frac} holds out {n_valid})" if n_valid else "")
                + f", fewer than sequence_length + 1 = {length + 1} (one window and its next token)"
            )
        if n_valid and n_valid < length + 1:
            raise ValueError(
                f"valid_frac={valid_frac} holds out {n_valid} of the {n} {tokenizer.split} tokens of "
                f"{name!r}, fewer than sequence_length + 1 = {length + 1} (one window and its next token); "
                "pass a larger valid_frac or 0"
            )
        counter.set_counts(np.bincount(stream[:n_train], minlength=counter.size()))
        tokens, lookup = counter.build(max_tokens)
        if not tokens:
            raise ValueError(
                f"{name!r} holds no tokens that can enter a vocabulary (words longer than {MAX_TOKEN_CHARS} "
                f"characters and {OOV_TOKEN!r} cannot)"
            )
        for s in range(0, n, _CHUNK_BYTES):
            stream[s : s + _CHUNK_BYTES] = lookup[stream[s : s + _CHUNK_BYTES]]
        vocabulary = Vocabulary(
            tokens, split=tokenizer.split, lower=tokenizer.lower, pattern=pattern, sequence_length=length,
            pad=pad, truncate=truncate,
        )  # fmt: skip
        train = TextSplit(stream, starts=np.arange(0, n_train - length, stride), sequence_length=length)
        valid = TextSplit(stream, starts=np.arange(n_train, n - length, stride) if n_valid else np.zeros(0),
                          sequence_length=length)  # fmt: skip
        data = cls(train, valid, None, None)
        data.vocabulary = vocabulary
        return data

    def _fit_input(self, kind: str, method: str) -> DataSet:
        raise ValueError(f"{type(self).__name__} holds token ids, which are not scaled (no {kind} of inputs)")

    def __repr__(self) -> str:
        test = "None" if self.test is None else str(len(self.test))
        classes = None if self.class_names is None else len(self.class_names)
        vocab = self.vocabulary
        about = "" if vocab is None else f", vocabulary={len(vocab)} {vocab.split} tokens"
        return (
            f"{type(self).__name__}(train={len(self.train)}, valid={len(self.valid)}, test={test}, "
            f"input_shape={self.input_shape}, classes={classes}{about})"
        )

    def _summary_rows(self) -> list[tuple[str, str]]:
        rows = super()._summary_rows()
        if getattr(self.train, "windows", False):
            rows[2] = ("targets", f"the next token of each position, {rows[1][1]}")
        vocab = self.vocabulary
        if vocab is not None:
            lower = ", lower-cased" if vocab.lower else ""
            rows.append(
                ("vocabulary", f"{len(vocab):,} {vocab.split} tokens{lower} (id 0 padding, 1 unknown)")
            )
        return rows


def _read_row(path: str, vocabulary: Vocabulary, encoding: str, max_file_bytes: int) -> np.ndarray:
    """The padded, truncated ids of one file, encoded with a finished vocabulary."""
    tokenizer = vocabulary._tokenizer
    get = vocabulary._ids.get
    length = vocabulary.sequence_length
    assert length is not None
    parts: list[np.ndarray] = []
    held = 0
    for piece in _read_pieces(path, encoding, max_file_bytes, tokenizer.split == "word"):
        if vocabulary.truncate == "post" and held >= length:
            continue  # keep reading: the whole file must be text
        ids = np.fromiter((get(t, OOV_ID) for t in tokenizer.tokens(piece)), dtype=np.int32)
        parts.append(ids)
        held += len(ids)
        if held > 2 * length:
            joined = np.concatenate(parts)
            parts = [joined[:length] if vocabulary.truncate == "post" else joined[-length:]]
            held = len(parts[0])
    joined = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    return _fit_row(joined, length, vocabulary.pad, vocabulary.truncate)
