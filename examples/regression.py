"""Regression on scikit-learn's bundled diabetes data, read from CSV files into a TabularDataSet.

The 442 patients' ten measurements (inputs) and their disease progression one year later (output) are
written out as CSV files (inputs, outputs; a fifth of the patients as a separate test pair), read back with
:meth:`neuro.data.TabularDataSet.from_csv`, standardised (statistics of the training split only) and fitted by
Dense 32 ReLU → Dense 16 ReLU → Dense 1 with mean squared error and Adam 0.01. The network keeps the
scalers, so ``predict`` takes raw inputs and returns progression in its original units. Early stopping on
the validation loss keeps the weights of the best epoch. Run:

    python examples/regression.py

It prints the test error in the original units.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import _common
import numpy as np

import neuro
from neuro import Dense, Network
from neuro.callbacks import EarlyStopping
from neuro.data import TabularDataSet, train_test_split
from neuro.optimizers import Adam


def write_csv(folder: pathlib.Path, limit: int | None, seed: int) -> dict[str, pathlib.Path]:
    """Write the diabetes data as four CSV files with a header row: train and test inputs and outputs.

    Args:
        folder: where to write.
        limit: use only this many patients (``None``: all 442).
        seed: seed of the subset and of the train / test split.

    Returns:
        The paths by name: ``inputs``, ``outputs``, ``test_inputs``, ``test_outputs``.
    """
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(scaled=False)  # the measurements in their own units (age in years, ...)
    x, y = bunch.data, bunch.target.reshape(-1, 1)
    rows = _common.take(limit, len(x), seed)
    if rows is not None:
        x, y = x[rows], y[rows]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=seed)
    paths = {}
    for name, values, header in (
        ("inputs", x_train, bunch.feature_names),
        ("outputs", y_train, ["progression"]),
        ("test_inputs", x_test, bunch.feature_names),
        ("test_outputs", y_test, ["progression"]),
    ):
        paths[name] = folder / f"{name}.csv"
        np.savetxt(paths[name], values, delimiter=",", header=",".join(header), comments="", fmt="%.6g")
    return paths


def main(argv: list[str] | None = None) -> int:
    """Fit the diabetes data and print the test error in the original units.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status (0).
    """
    p = _common.parser(
        "regression", "Regression on the diabetes data.", epochs=200, data_help="unused: the data is bundled"
    )
    p.add_argument("--valid-frac", type=float, default=0.2, help="share held out for validation (0.2)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_csv(pathlib.Path(tmp), args.limit, args.seed)
        data = TabularDataSet.from_csv(
            paths["inputs"],
            paths["outputs"],
            valid_frac=args.valid_frac,
            test_path=(paths["test_inputs"], paths["test_outputs"]),
            seed=args.seed,
        )
    data = data.standardize_input().standardize_output()
    print(f"{data!r}; features {data.feature_names}")

    net = Network(input_shape=data.input_shape, loss="mse", optimizer=Adam(0.01), seed=args.seed)
    net.add(Dense(32, activation="relu"))
    net.add(Dense(16, activation="relu"))
    net.add(Dense(1))
    net.summary()
    # the validation loss turns up after a few epochs on 282 patients: stop there, keep the best weights
    stop = EarlyStopping(patience=10, restore_best_weights=True)
    history = net.fit(data, batch_size=32, epochs=args.epochs, metrics=("mae",), callbacks=[stop], verbose=0)
    at = stop.best_epoch or 0
    best = {k: round(v[at], 4) for k, v in history.history.items()}
    print(f"ran {len(history.epoch)} epochs; the best, epoch {at + 1}, in standardised units: {best}")

    x_test, y_test = data.test.arrays()  # raw inputs and progression, as in the CSV files
    pred = neuro.to_numpy(net.predict(x_test))  # the network applies its scalers both ways
    error = pred - y_test
    mae = float(np.abs(error).mean())
    rmse = float(np.sqrt((error**2).mean()))
    spread = float(y_test.std())
    print(
        f"test error on {len(y_test)} patients, in progression units: MAE {mae:.1f}, RMSE {rmse:.1f} "
        f"(the targets' standard deviation is {spread:.1f})"
    )
    _common.plot(history, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
