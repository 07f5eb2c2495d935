"""A model with two inputs and two outputs, on scikit-learn's bundled diabetes data (no download).

The 442 patients' measurements come in two groups, and each gets its own branch: the *patient* (age, sex,
body-mass index, blood pressure) and the *blood serum* (six measurements, s1–s6). The branches are joined
(``Concatenate``) and two heads answer two questions at once: the disease progression one year later (a
number: mean squared error) and whether it will be above the training patients' median (a yes/no:
binary cross-entropy), the second loss weighted 0.5; an L2 penalty on the kernels keeps the small data
(353 training patients) from being learnt by heart. Written with the functional API::

    patient, serum = Input((4,), name="patient"), Input((6,), name="serum")
    joined = Concatenate()([Dense(16, "relu")(patient), Dense(16, "relu")(serum)])
    h = Dense(16, activation="relu")(joined)
    model = Model([patient, serum], [Dense(1, name="progression")(h), Dense(1, "sigmoid", name="high")(h)],
                  loss=["mse", "binary_crossentropy"], loss_weights=[1.0, 0.5], ...)

``fit`` takes the inputs as a dict keyed by the ``Input`` names and the targets as a dict keyed by the output
names; the History has ``loss``, ``progression_loss``, ``high_loss`` and ``high_accuracy``. Run:

    python examples/two_inputs.py

It prints the test error of the progression in its own units and the test accuracy of the yes/no head
(about 46 and 0.73 with the defaults, in a few seconds).
"""

from __future__ import annotations

import sys

import _common
import numpy as np

import neuro
from neuro import Concatenate, Dense, Input, Model
from neuro.data import train_test_split
from neuro.optimizers import Adam
from neuro.regularizers import L2

PATIENT = slice(0, 4)  # age, sex, bmi, bp
SERUM = slice(4, 10)  # s1 … s6


def build(seed: int) -> Model:
    """The two-input, two-output model.

    Args:
        seed: seed of the weights and the shuffling.

    Returns:
        The compiled model.
    """
    patient, serum = Input((4,), name="patient"), Input((6,), name="serum")
    joined = Concatenate()([Dense(16, activation="relu")(patient), Dense(16, activation="relu")(serum)])
    h = Dense(16, activation="relu")(joined)
    progression = Dense(1, name="progression")(h)
    high = Dense(1, activation="sigmoid", name="high")(h)
    return Model(
        [patient, serum],
        [progression, high],
        loss=["mse", "binary_crossentropy"],
        loss_weights=[1.0, 0.5],
        optimizer=Adam(0.003),
        regularizer=L2(0.01),
        seed=seed,
        name="diabetes",
    )


def main(argv: list[str] | None = None) -> int:
    """Train on the diabetes data and print the test figures.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``).

    Returns:
        0.
    """
    p = _common.parser(
        "two_inputs",
        "Two inputs (patient, serum) and two outputs (progression, above the median) on the diabetes data.",
        epochs=60,
        data_help="unused: the data ships with scikit-learn",
    )
    args = p.parse_args(argv)
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(scaled=False)
    x, y = bunch.data.astype(np.float64), bunch.target.astype(np.float64)
    rows = _common.take(args.limit, len(x), args.seed)
    if rows is not None:
        x, y = x[rows], y[rows]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=args.seed)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-12  # statistics of the training patients
    y_mean, y_std = y_train.mean(), y_train.std()
    median = float(np.median(y_train))

    def inputs(a: np.ndarray) -> dict[str, np.ndarray]:
        z = (a - mean) / std
        return {"patient": z[:, PATIENT], "serum": z[:, SERUM]}

    def targets(t: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "progression": ((t - y_mean) / y_std)[:, None],
            "high": (t > median).astype(np.float64)[:, None],
        }

    print(f"diabetes: {len(x_train)} training and {len(x_test)} test patients; median progression {median:g}")
    model = build(args.seed)
    model.summary()
    history = model.fit(
        inputs(x_train),
        targets(y_train),
        batch_size=32,
        epochs=args.epochs,
        validation_data=(inputs(x_test), targets(y_test)),
        verbose=0,
    )
    last = {k: round(v[-1], 4) for k, v in history.history.items()}
    print(f"after {args.epochs} epochs: {last}")
    pred = model.predict(inputs(x_test))
    progression = neuro.to_numpy(pred[0])[:, 0] * y_std + y_mean
    high = neuro.to_numpy(pred[1])[:, 0] >= 0.5
    mae = float(np.abs(progression - y_test).mean())
    accuracy = float((high == (y_test > median)).mean())
    print(f"test MAE of the progression: {mae:.1f} (its standard deviation: {y_test.std():.1f})")
    print(f"test accuracy of 'above the median': {accuracy:.3f}")
    _common.plot(history, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
