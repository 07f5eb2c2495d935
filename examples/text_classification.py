"""Text classification: ``Embedding → Bidirectional(LSTM)`` (or ``Conv1D``) on a folder of labelled texts.

``--data`` is a folder of class folders of ``.txt`` files, the layout of Keras's
``text_dataset_from_directory``: ``data/<class>/*.txt``, or ``data/train/<class>/*.txt`` with an optional
``data/test/<class>/*.txt``. The IMDB reviews (``aclImdb``, from https://ai.stanford.edu/~amaas/data/sentiment/)
have that layout; pass ``--classes neg,pos`` to leave out its unlabelled ``train/unsup`` folder.

Texts are lower-cased and cut into words; the 20,000 most frequent words of the training texts form the
vocabulary (0 pads, 1 stands for any other word), and each review is padded or truncated to ``--length``
words. Two models:

- ``--model lstm`` (default): ``Embedding(mask_zero=True) → Bidirectional(LSTM(32)) → Dense(softmax)``.
  The mask makes both directions skip the padding: the forward LSTM's last state is that of the review's
  last word, the backward one starts at it.
- ``--model conv``: ``Embedding → Conv1D(64, 5, relu) → GlobalMaxPool1D → Dense(softmax)``: which 5-word
  phrases occur anywhere in the text (faster; no mask, since a convolution mixes padding into its windows).

The model keeps the vocabulary (``fit`` on the data set hands it over), so after saving and loading it
classifies raw strings, as the script shows at the end.

    python examples/text_classification.py --data aclImdb --classes neg,pos --epochs 3
    python examples/text_classification.py --data my_texts --model conv
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import _common

from neuro import (
    LSTM,
    Bidirectional,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    GlobalMaxPool1D,
    Input,
    Model,
)
from neuro.data import TextDataSet
from neuro.optimizers import Adam


def build(kind: str, vocabulary_size: int, length: int, n_classes: int, seed: int = 0) -> Model:
    """The classifier.

    Args:
        kind: ``"lstm"`` or ``"conv"``.
        vocabulary_size: ids of the vocabulary (padding and out-of-vocabulary included).
        length: words per text.
        n_classes: classes of the softmax.
        seed: seed of the weights, dropout and shuffling.

    Returns:
        The model ``(N, length)`` int ids → ``(N, n_classes)``, compiled with Adam and cross-entropy.
    """
    ids = Input((length,), dtype="int64", name="words")
    if kind == "lstm":
        h = Embedding(vocabulary_size, 64, mask_zero=True, name="embedding")(ids)
        h = Bidirectional(LSTM(32), name="bilstm")(h)
    else:
        h = Embedding(vocabulary_size, 64, name="embedding")(ids)
        h = GlobalMaxPool1D()(Conv1D(64, 5, activation="relu", name="phrases")(h))
    h = Dropout(0.3)(h)
    out = Dense(n_classes, activation="softmax", name="label")(h)
    return Model(ids, out, loss="crossentropy", optimizer=Adam(2e-3, clipnorm=1.0), seed=seed, name=kind)


def main(argv: list[str] | None = None) -> int:
    """Train the classifier, report the test accuracy and classify a few strings with the reloaded model.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``).

    Returns:
        0, or 1 without ``--data``.
    """
    p = _common.parser(
        "text_classification",
        "Embedding + Bidirectional LSTM (or Conv1D) on a folder of labelled text files.",
        epochs=3,
        data_help="folder of class folders of .txt files (e.g. aclImdb)",
    )
    p.add_argument("--model", choices=("lstm", "conv"), default="lstm", help="the network (default lstm)")
    p.add_argument("--length", type=_common.positive_int, default=200, help="words per text (default 200)")
    p.add_argument("--classes", default=None, help="comma-separated class folders to read (default all)")
    p.add_argument("--batch-size", type=_common.positive_int, default=32, help="texts per step (32)")
    args = p.parse_args(argv)
    if args.data is None:
        print(
            "text_classification needs --data: a folder of class folders of .txt files, for example the IMDB "
            "reviews (aclImdb, https://ai.stanford.edu/~amaas/data/sentiment/) with --classes neg,pos"
        )
        return 1
    classes = None if args.classes is None else [c.strip() for c in args.classes.split(",")]
    data = TextDataSet.from_dir(
        args.data, sequence_length=args.length, class_names=classes, valid_frac=0.1, seed=args.seed
    )
    vocabulary = data.vocabulary
    data = _common.limit_data_set(data, args.limit, args.seed)
    data.vocabulary = vocabulary  # a limited data set is a plain DataSet: give it the vocabulary again
    print(data)
    names = data.class_names
    model = build(args.model, len(vocabulary), args.length, len(names), args.seed)
    model.summary()
    history = model.fit(data, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    held_out = data.test if data.test is not None and len(data.test) else data.valid
    result = model.evaluate(held_out)
    print(f"held-out accuracy: {result['accuracy']:.4f} (loss {result['loss']:.4f})")
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "text_classifier.h5"
        model.save(path)
        loaded = Model.load(path)  # the vocabulary comes with it
    texts = [
        "A wonderful film: the acting is superb and the story moved me.",
        "Dull, predictable and far too long. I want my two hours back.",
    ]
    labels, probabilities = loaded.predict_class(texts)
    for text, label, prob in zip(texts, labels, probabilities, strict=True):
        print(f"{label} ({prob:.2f}) <- {text}")
    _common.plot(history, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
