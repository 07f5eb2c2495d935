"""A character-level language model: ``Embedding → GRU → Dense`` predicts each next character of a text.

The text is by default the documentation that every Python installation ships (the help topics of
``pydoc_data.topics``, about 460,000 characters), so nothing needs downloading; ``--data`` takes any UTF-8
text file instead. The text is cut into windows of ``--length`` characters; the model reads a window and
predicts, at every step, the character that follows (a sequence output: softmax cross-entropy over the last
axis, class-id targets ``(N, T)``). The last 10 % of the text is held out, and the script reports the
held-out *perplexity* ``exp(mean cross-entropy per character)``: how many characters the model is, on
average, hesitating between (a uniform guess over the vocabulary is its size; a good character model of
English is between 3 and 5).

After training it writes samples: starting from a prompt it draws one character at a time from the
predicted distribution at a *temperature* ``T`` (the probabilities raised to ``1/T`` and normalized; low
temperatures give the likeliest, more repetitive text, high ones more surprising text). The prompt is
encoded by the data set's vocabulary, which is padded at the front (id 0) to the window's length; the
embedding's ``mask_zero`` makes the GRU skip the padding, so a short prompt starts from a clean state.

    python examples/char_lm.py                       # under 2 minutes on two cores: perplexity 3.55
    python examples/char_lm.py --epochs 1 --limit 100000 --units 128
    python examples/char_lm.py --data some_book.txt --epochs 10
"""

from __future__ import annotations

import math
import pathlib
import sys
import tempfile

import _common
import numpy as np

from neuro import GRU, Dense, Embedding, Input, Model
from neuro.data import TextDataSet
from neuro.optimizers import Adam


def python_docs_text() -> str:
    """The help topics that ship with Python (``pydoc_data.topics``), in a fixed order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def build(vocabulary_size: int, length: int, units: int = 256, seed: int = 0) -> Model:
    """The language model.

    Args:
        vocabulary_size: tokens, padding and out-of-vocabulary ids included.
        length: characters per window.
        units: the GRU's state size.
        seed: seed of the weights and the shuffling.

    Returns:
        The model ``(N, length)`` int ids → ``(N, length, vocabulary_size)``, compiled with Adam
        (``global_clipnorm=1``) and softmax cross-entropy on its linear output.
    """
    ids = Input((length,), dtype="int64", name="ids")
    h = Embedding(vocabulary_size, 64, mask_zero=True, name="embedding")(ids)
    h = GRU(units, return_sequences=True, name="gru")(h)
    logits = Dense(vocabulary_size, name="next")(h)
    optimizer = Adam(2e-3, global_clipnorm=1.0)
    return Model(ids, logits, loss="softmax_crossentropy", optimizer=optimizer, seed=seed, name="char_lm")


def sample(
    model: Model, vocabulary: object, prompt: str, n: int, temperature: float, rng: np.random.Generator
) -> str:
    """Continue ``prompt`` by ``n`` characters drawn from the model at ``temperature``.

    Args:
        model: the trained language model.
        vocabulary: the data set's :class:`~neuro.data.Vocabulary` (it pads and truncates to the window).
        prompt: the text to continue.
        n: characters to draw.
        temperature: > 0; 1 draws from the model's own distribution.
        rng: the random generator of the draws.

    Returns:
        The prompt followed by the drawn characters.
    """
    text = prompt
    for _ in range(n):
        ids = vocabulary.encode(text)  # (1, length), the last characters, padded at the front
        p = np.asarray(model.predict(ids), dtype=np.float64)[0, -1]  # the next character's distribution
        logp = np.log(np.maximum(p, 1e-300)) / temperature
        q = np.exp(logp - logp.max())
        q[:2] = 0.0  # never padding nor out-of-vocabulary
        k = int(rng.choice(len(q), p=q / q.sum()))
        text += vocabulary.decode([k])[0]
    return text


def main(argv: list[str] | None = None) -> int:
    """Train the language model, report the held-out perplexity and print samples.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``).

    Returns:
        0.
    """
    p = _common.parser(
        "char_lm",
        "A character-level GRU language model.",
        epochs=10,
        data_help="a UTF-8 text file (default: Python's own documentation, pydoc_data.topics)",
    )
    p.add_argument("--units", type=_common.positive_int, default=256, help="GRU units (default 256)")
    p.add_argument("--length", type=_common.positive_int, default=100, help="characters per window (100)")
    p.add_argument("--batch-size", type=_common.positive_int, default=32, help="windows per step (32)")
    p.add_argument("--samples", type=int, default=300, help="characters to sample per temperature (300)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.data
        if path is None:
            text = python_docs_text()
            if args.limit:
                text = text[: args.limit]
            path = pathlib.Path(tmp) / "python_docs.txt"
            path.write_text(text, encoding="utf-8")
        data = TextDataSet.from_file(path, sequence_length=args.length, split="character", valid_frac=0.1)
    vocabulary = data.vocabulary
    print(f"{data!r}: {len(vocabulary)} ids ({len(vocabulary) - 2} characters, padding, out-of-vocabulary)")
    model = build(len(vocabulary), args.length, args.units, args.seed)
    model.summary()
    history = model.fit(data, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    loss = model.evaluate(data.valid)["loss"]
    print(f"held-out perplexity: {math.exp(loss):.2f} (cross-entropy {loss:.4f} nats per character)")
    rng = np.random.default_rng(args.seed)
    for temperature in (0.5, 1.0):
        text = sample(model, vocabulary, "The ", args.samples, temperature, rng)
        print(f"--- sample at temperature {temperature} ---\n{text}\n")
    _common.plot(history, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
