"""scikit-learn estimators around a function that builds a neuro model (as scikeras wraps Keras).

:class:`NeuroClassifier` and :class:`NeuroRegressor` take a *build function* that returns a compiled neuro
:class:`~neuro.models.Network` or :class:`~neuro.models.Model` (one input, one output, a loss and an
optimizer). Each ``fit`` calls it anew with the parameters its signature names and trains the result, so the
estimators follow scikit-learn's contract: ``get_params``/``set_params``, ``clone``, ``Pipeline``,
``GridSearchCV``, ``cross_val_score`` and pickling work on them::

    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import neuro
    from neuro.sklearn import NeuroClassifier

    def build(n_features_in_, n_classes_, units=32, seed=None):
        net = neuro.Network((n_features_in_,), "sparse_categorical_crossentropy", "adam", seed=seed)
        return net.add(neuro.Dense(units, "relu")).add(neuro.Dense(n_classes_, "softmax"))

    pipe = make_pipeline(StandardScaler(), NeuroClassifier(build, epochs=20, random_state=0))
    search = GridSearchCV(pipe, {"neuroclassifier__model__units": [16, 64]}).fit(x, y)

**What the build function receives.** Every parameter it names, from:

- the *meta parameters* the data determine: ``n_features_in_``; for the classifier ``n_classes_`` and
  ``classes_``; for the regressor ``n_outputs_`` (the number of target columns); ``meta`` (a dict of all
  of them);
- ``seed``: an integer drawn from ``random_state`` (the integer itself when ``random_state`` is one), or
  ``None`` without a ``random_state``;
- the keyword arguments given to the estimator beyond its own (``NeuroClassifier(build, units=64)``) and
  those routed to the model with the ``model__`` prefix (``model__units=64``, which wins over ``units``).
  With ``**kwargs`` in its signature it receives all of these.

A parameter the build function does not take is an error (with the closest name it does take), and so is a
parameter it needs that nobody gives. Parameters prefixed ``fit__`` go to the model's ``fit``
(``fit__shuffle``, ``fit__class_weight``, ``fit__metrics``...) and ``predict__`` ones to ``predict``
(``predict__batch_size``); keyword arguments of the estimator's ``fit`` go to the model's ``fit`` as well.

**Reproducibility.** With an integer ``random_state`` a fit is bitwise reproducible when the build function
takes ``seed`` and gives it to the model (``Network(..., seed=seed)``): the seed draws the initial weights,
and the model's generator, continued, draws the shuffling and the dropout masks. A build function without
``seed`` gets its model's generator reset from ``random_state`` before training (shuffling and dropout are
then reproducible), but the initial weights are not, and a ``UserWarning`` says so (unless the model has a
seed of its own).

**Pickling.** ``pickle.dumps(estimator)`` stores the fitted model as the bytes of a neuro model file
(:mod:`neuro.io`), never as a pickled object, and unpickling reads those bytes back with
:func:`neuro.io.load`, which builds only neuro's registered classes and executes nothing from the file. The
rest of the pickle (the estimator's parameters, such as the build function, which pickles by reference) is an
ordinary pickle, to be trusted as any pickle. The unpickled model is on the CPU.

Needs scikit-learn 1.6 or newer: ``pip install 'neuro[sklearn]'``. ``import neuro`` does not import
scikit-learn; only ``import neuro.sklearn`` does.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # scikit-learn missing, or older than 1.6 (validate_data is new in 1.6)
    raise ImportError(
        "neuro.sklearn needs scikit-learn 1.6 or newer: pip install 'neuro[sklearn]' "
        f"({type(exc).__name__}: {exc})"
    ) from exc

from neuro import backend
from neuro import io as neuro_io
from neuro import losses as losses_mod
from neuro.models.model import Model

__all__ = ["NeuroClassifier", "NeuroRegressor"]

#: The prefixes that route a parameter: to the build function, to the model's fit, to its predict.
ROUTING_PREFIXES = ("model", "fit", "predict")

#: The key under which a pickled estimator holds its fitted model, as the bytes of a neuro model file.
_MODEL_FILE_KEY = "_neuro_model_file"

_DTYPES = (np.float64, np.float32)


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


def _signature_text(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    try:
        return f"{name}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return name


def _closest(name: str, choices: Sequence[str]) -> str:
    match = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {match[0]!r}?" if match else ""


def _model_to_bytes(model: Model) -> bytes:
    """The bytes of the neuro model file (:func:`neuro.io.save`) that holds ``model``.

    Args:
        model: a neuro model.

    Returns:
        The file's bytes, which :func:`_model_from_bytes` reads back.
    """
    with tempfile.TemporaryDirectory(prefix="neuro-sklearn-") as folder:
        path = os.path.join(folder, "model.h5")
        neuro_io.save(model, path)
        with open(path, "rb") as f:
            return f.read()


def _model_from_bytes(data: bytes) -> Model:
    """Read a model from the bytes of a neuro model file with :func:`neuro.io.load` (nothing is executed).

    Args:
        data: what :func:`_model_to_bytes` returned.

    Returns:
        The model, on the CPU.

    Raises:
        TypeError: when ``data`` is not bytes.
        neuro.ModelFileError: when the bytes are not a valid neuro model file.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"a neuro model file must be given as bytes, got {type(data).__name__}")
    with tempfile.TemporaryDirectory(prefix="neuro-sklearn-") as folder:
        path = os.path.join(folder, "model.h5")
        with open(path, "wb") as f:
            f.write(data)
        return neuro_io.load(path)


def _check_arguments(kwargs: dict[str, Any], method: Callable[..., Any], what: str) -> None:
    allowed = [p for p in inspect.signature(method).parameters if p not in ("self", "x", "y")]
    for key in kwargs:
        if key not in allowed:
            raise TypeError(
                f"{key!r} is not an argument of the model's {what}{_closest(key, allowed)} "
                f"({what} takes {allowed})"
            )


class _NeuroEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameters, routing, building, fitting, pickling."""

    #: The meta parameters a build function may name (besides ``meta`` and ``seed``).
    _meta_names: tuple[str, ...] = ("n_features_in_",)

    def __init__(
        self,
        model: Callable[..., Model] | None = None,
        *,
        epochs: int = 10,
        batch_size: int = 32,
        verbose: int = 0,
        random_state: int | np.random.RandomState | None = None,
        validation_split: float = 0.0,
        callbacks: Sequence[Any] | None = None,
        **params: Any,
    ) -> None:
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.verbose = verbose
        self.random_state = random_state
        self.validation_split = validation_split
        self.callbacks = callbacks
        vars(self).update(params)
        self._user_params = set(params)

    # -- parameters ---------------------------------------------------------------------------------------
    def _extra_param_names(self) -> list[str]:
        """The keyword arguments given beyond the constructor's own, and the routed ones set later."""
        names = set(getattr(self, "_user_params", ()))
        names.update(k for k in vars(self) if k.partition("__")[0] in ROUTING_PREFIXES and "__" in k)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The estimator's parameters: the constructor's, the extra keyword arguments and the routed ones.

        Args:
            deep: also return the parameters of contained estimators (none here but sklearn's convention).

        Returns:
            ``{name: value}``.
        """
        out = super().get_params(deep=deep)
        for name in self._extra_param_names():
            out[name] = getattr(self, name)
        return out

    def set_params(self, **params: Any) -> _NeuroEstimator:
        """Set parameters: the constructor's, extra keyword arguments given to it, or routed ones
        (``model__units``, ``fit__shuffle``, ``predict__batch_size``), which may be new.

        Args:
            **params: ``{name: value}``.

        Returns:
            The estimator itself.

        Raises:
            ValueError: for a name that is none of these.
        """
        plain = {}
        for key, value in params.items():
            if "__" in key and key.partition("__")[0] in ROUTING_PREFIXES:
                setattr(self, key, value)
            else:
                plain[key] = value
        if plain:
            valid = self.get_params(deep=False)
            unknown = [k for k in plain if k.partition("__")[0] not in valid]
            if unknown:
                raise ValueError(
                    f"invalid parameter {unknown[0]!r} for {type(self).__name__}"
                    f"{_closest(unknown[0], list(valid))}"
                    f" The parameters are {sorted(valid)}; a new parameter for the build function is set as "
                    f"model__{unknown[0]}, one for the model's fit as fit__{unknown[0]}."
                )
            super().set_params(**plain)
        return self

    def _routed(self, prefix: str) -> dict[str, Any]:
        """The parameters routed with ``prefix__``, without the prefix."""
        head = prefix + "__"
        return {k[len(head) :]: v for k, v in self.get_params(deep=False).items() if k.startswith(head)}

    def _plain_extras(self) -> dict[str, Any]:
        """The extra keyword arguments given to the constructor (not routed)."""
        return {k: getattr(self, k) for k in sorted(getattr(self, "_user_params", ())) if "__" not in k}

    # -- building -----------------------------------------------------------------------------------------
    def _check_build_function(self) -> Callable[..., Model]:
        fn = self.model
        if isinstance(fn, Model):
            raise TypeError(
                f"model must be a function that builds and returns a new neuro model, got a "
                f"{type(fn).__name__} instance; wrap its construction in a function: "
                "def build(n_features_in_, ...): return neuro.Network(...)"
            )
        if fn is None or not callable(fn):
            raise TypeError(
                "model must be a function that builds and returns a compiled neuro Network or Model "
                f"(as scikeras's model=), got {_describe(fn)}"
            )
        return fn

    def _seed(self) -> int | None:
        rs = self.random_state
        if rs is None:
            return None
        if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool):
            check_random_state(rs)  # sklearn's range check: [0, 2**32 - 1]
            return int(rs)
        return int(check_random_state(rs).randint(np.iinfo(np.int32).max))

    def _build(self, meta: dict[str, Any], seed: int | None) -> tuple[Model, bool]:
        """Call the build function with what it names; returns the checked model and whether it took
        ``seed`` from ``random_state``."""
        fn = self._check_build_function()
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            sig = None
        user = {**self._plain_extras(), **self._routed("model")}
        available = {**meta, "meta": dict(meta), "seed": seed, **user}
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        took_seed = False
        if sig is None:  # a builtin without a signature: give it the user's parameters only
            kwargs = dict(user)
        else:
            names = []
            var_kw = False
            for p in sig.parameters.values():
                if p.kind is p.VAR_KEYWORD:
                    var_kw = True
                    continue
                if p.kind is p.VAR_POSITIONAL:
                    continue
                names.append(p.name)
                if p.name not in available:
                    if p.default is p.empty:
                        given = sorted({*meta, "meta", "seed", *user})
                        raise TypeError(
                            f"the build function {_signature_text(fn)} needs {p.name!r}, which is neither a "
                            f"meta parameter nor given; it can take {given}: give "
                            f"{type(self).__name__}(..., model__{p.name}=...) or add a default"
                        )
                    continue
                if p.kind is p.POSITIONAL_ONLY:
                    args.append(available[p.name])
                else:
                    kwargs[p.name] = available[p.name]
                took_seed = took_seed or (p.name == "seed" and "seed" not in user)
            if var_kw:
                kwargs.update({k: v for k, v in user.items() if k not in kwargs and k not in names})
            else:
                unused = [k for k in user if k not in names]
                if unused:
                    raise ValueError(
                        f"parameter {unused[0]!r} given to {type(self).__name__} is not a parameter of the "
                        f"build function {_signature_text(fn)}{_closest(unused[0], names)} (parameters for "
                        "the model's fit are given as fit__<name>)"
                    )
        built = fn(*args, **kwargs)
        self._check_model(built, fn, meta)
        return built, took_seed

    def _check_model(self, built: Any, fn: Callable[..., Any], meta: dict[str, Any]) -> None:
        where = f"the build function {_signature_text(fn)}"
        if not isinstance(built, Model):
            raise TypeError(f"{where} must return a neuro Network or Model, got {_describe(built)}")
        if built.optimizer is None or not built.losses:
            raise ValueError(
                f"{where} returned a model without a loss and an optimizer (loss={built.loss!r}, "
                f"optimizer={built.optimizer!r}); give them to the model (Network(input_shape, loss, "
                "optimizer)) or call model.compile(loss=..., optimizer=...) before returning it"
            )
        if len(built.input_shapes) != 1 or len(built.output_shapes) != 1:
            raise ValueError(
                f"{where} returned a model with {len(built.input_shapes)} inputs and "
                f"{len(built.output_shapes)} outputs; a scikit-learn estimator needs one of each"
            )
        shape = tuple(built.input_shapes[0])
        n = meta["n_features_in_"]
        if shape != (n,) and int(np.prod(shape)) != n:
            raise ValueError(
                f"{where} returned a model with input shape {shape}, but X has {n} features: the input "
                f"shape must be ({n},) (use n_features_in_), or a shape of {n} values in all"
            )

    def _fit_kwargs(self, extra: dict[str, Any]) -> dict[str, Any]:
        kwargs = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "verbose": self.verbose,
            "validation_split": self.validation_split,
            "callbacks": self.callbacks,
            **self._routed("fit"),
            **extra,
        }
        _check_arguments(kwargs, Model.fit, "fit")
        # each fit trains its own copies: callbacks keep a reference to the model they observed and their
        # state (an early stop's best epoch), and an estimator's parameters are never changed by fit
        if kwargs["callbacks"] is not None:
            kwargs["callbacks"] = copy.deepcopy(list(kwargs["callbacks"]))
        return self._adapt_fit_kwargs(kwargs)

    def _adapt_fit_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The model's fit arguments in the model's terms (the classifier maps class weights)."""
        return kwargs

    def _fit_model(self, X: np.ndarray, targets: np.ndarray, meta: dict[str, Any], fit_params: dict) -> None:
        seed = self._seed()
        fit_kwargs = self._fit_kwargs(fit_params)
        model, took_seed = self._build(meta, seed)
        if seed is not None and not took_seed:
            if model.seed is None:
                warnings.warn(
                    f"random_state={self.random_state!r} seeds the shuffling and dropout of "
                    f"{type(self).__name__} but not the initial weights: the build function "
                    f"{_signature_text(self.model)} takes no 'seed'; add one and pass it to the model "
                    "(neuro.Network(..., seed=seed)) for reproducible fits",
                    UserWarning,
                    stacklevel=3,
                )
            model.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
            model.to(model.device)  # the device generator follows the host generator again
        if fit_kwargs.get("validation_data") is not None:
            data = self._validation_data(fit_kwargs["validation_data"], model)
            fit_kwargs = {**fit_kwargs, "validation_data": data}
        history = model.fit(self._model_inputs(X, model), self._targets(targets, model), **fit_kwargs)
        self.model_ = model
        self.history_ = {k: list(v) for k, v in history.history.items()}

    def _targets(self, y: np.ndarray, model: Model) -> np.ndarray:
        """The targets as the model's head takes them."""
        return y

    def _validation_data(self, data: Any, model: Model) -> Any:
        """``validation_data=(X, y[, sample_weight])`` converted as the training data is: X checked and
        shaped for the model's input, y encoded as the training targets (a classifier's labels as class
        indices). Anything else goes to the model's ``fit`` as it is (which names what is wrong)."""
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            return data
        xv, yv, *rest = data
        xv = validate_data(self, xv, reset=False, dtype=_DTYPES)
        yv = np.asarray(yv)
        if len(yv) != len(xv):
            raise ValueError(
                f"validation_data must hold as many targets as samples ({len(xv)}), got {len(yv)}"
            )
        return (self._model_inputs(xv, model), self._targets(self._encode(yv), model), *rest)

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Targets given beside the training ones (``validation_data``) as ``fit`` encodes its own."""
        return y

    @staticmethod
    def _model_inputs(X: np.ndarray, model: Model) -> np.ndarray:
        shape = tuple(model.input_shapes[0])
        return X if X.shape[1:] == shape else X.reshape((len(X), *shape))

    def _raw_predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=_DTYPES)
        kwargs = self._routed("predict")
        _check_arguments(kwargs, Model.predict, "predict")
        out = self.model_.predict(self._model_inputs(X, self.model_), **kwargs)
        return np.asarray(backend.to_numpy(out), dtype=np.float64).reshape(len(X), -1)

    # -- pickling -----------------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            state[_MODEL_FILE_KEY] = _model_to_bytes(model)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        data = state.pop(_MODEL_FILE_KEY, None)
        if data is not None:
            state["model_"] = _model_from_bytes(data)
        super().__setstate__(state)


class NeuroClassifier(ClassifierMixin, _NeuroEstimator):
    """A scikit-learn classifier that trains the neuro model a build function returns.

    Args:
        model: the build function: called at each ``fit`` with the parameters its signature names
            (``n_features_in_``, ``n_classes_``, ``classes_``, ``meta``, ``seed``, and the extra or
            ``model__`` keyword arguments; see :mod:`neuro.sklearn`), it returns a compiled neuro ``Network``
            or ``Model`` with one input of ``n_features_in_`` values and one output: ``n_classes_`` units
            with a categorical loss (``"sparse_categorical_crossentropy"``, ``"softmax_crossentropy"``), or,
            for two classes, one sigmoid unit with ``"binary_crossentropy"``.
        epochs: passes over the training data.
        batch_size: samples per update.
        verbose: the model's ``fit`` verbosity (0 silent).
        random_state: an integer for bitwise reproducible fits (given to the build function as ``seed``),
            a ``numpy.random.RandomState``, or ``None``.
        validation_split: the fraction of the samples, from the end, held out for validation in each fit.
        callbacks: neuro callbacks for the model's ``fit``; each fit uses deep copies of them.
        **params: parameters for the build function (``units=64`` or ``model__units=64``), for the
            model's fit (``fit__shuffle=False``) and for its predict (``predict__batch_size=1024``).

    Attributes:
        model_: the fitted neuro model.
        classes_: the class labels, sorted (any labels ``numpy.unique`` sorts: numbers, strings...).
        n_classes_: their number.
        n_features_in_: the number of features of ``X``.
        feature_names_in_: the column names of ``X``, when it was a DataFrame with string column names.
        history_: the model's training history, ``{"loss": [...], "accuracy": [...], ...}``.

    The model is trained on the class indices (``classes_[i]`` is class ``i``); ``predict`` returns the
    original labels.

    Example:
        >>> import neuro
        >>> from neuro.sklearn import NeuroClassifier
        >>> def build(n_features_in_, n_classes_, units=16, seed=None):
        ...     net = neuro.Network((n_features_in_,), "sparse_categorical_crossentropy", "adam", seed=seed)
        ...     return net.add(neuro.Dense(units, "relu")).add(neuro.Dense(n_classes_, "softmax"))
        >>> clf = NeuroClassifier(build, epochs=5, random_state=0, units=8)
        >>> clf.get_params()["units"]
        8
    """

    _meta_names = ("n_features_in_", "n_classes_", "classes_")

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = False
        tags.target_tags.single_output = True
        return tags

    def fit(self, X: Any, y: Any, **fit_params: Any) -> NeuroClassifier:
        """Build a new model with the build function and train it on ``(X, y)``.

        Args:
            X: samples ``(n_samples, n_features)``: an array, a list of rows or a DataFrame.
            y: the labels ``(n_samples,)``: any labels (integers, strings...), at least two classes.
            **fit_params: keyword arguments for the model's ``fit`` (``validation_data``, ``shuffle``...),
                over ``fit__`` parameters; ``class_weight`` is scikit-learn's: ``{label: weight}`` or
                ``"balanced"`` (``n_samples / (n_classes * count)``), given to the model by class index.

        Returns:
            The estimator itself, fitted.

        Raises:
            TypeError: for a ``model`` that is not a build function, a build function that returns no neuro
                model, or an argument the model's ``fit`` does not take.
            ValueError: for malformed data, fewer than two classes, continuous targets, a model without a
                loss and an optimizer, one whose input or output does not fit the data, or a
                ``class_weight`` key that is no label.
        """
        self._check_build_function()
        X, y = validate_data(self, X, y, dtype=_DTYPES, multi_output=False)
        check_classification_targets(y)
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y, got 1 class: {classes.tolist()}"
            )
        self.classes_ = classes
        self.n_classes_ = len(classes)
        meta = {"n_features_in_": self.n_features_in_, "n_classes_": self.n_classes_, "classes_": classes}
        self._fit_targets = encoded.astype(np.int64)
        try:
            self._fit_model(X, self._fit_targets, meta, fit_params)
        finally:
            del self._fit_targets
        return self

    def _check_model(self, built: Any, fn: Callable[..., Any], meta: dict[str, Any]) -> None:
        super()._check_model(built, fn, meta)
        k = meta["n_classes_"]
        loss = built.losses[0]
        width = int(np.prod(built.output_shapes[0]))
        categorical = loss.categorical and width == k
        binary = isinstance(loss, losses_mod.BinaryCrossEntropy) and width == 1 and k == 2
        if not (categorical or binary):
            raise ValueError(
                f"the build function {_signature_text(fn)} returned a model with output shape "
                f"{tuple(built.output_shapes[0])} and loss {type(loss).__name__}, but y has {k} classes: "
                f"a classifier's model needs {k} outputs (n_classes_) with a categorical loss "
                "('sparse_categorical_crossentropy', 'softmax_crossentropy')"
                + (", or one sigmoid output with 'binary_crossentropy'" if k == 2 else "")
            )

    def _adapt_fit_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``class_weight`` as scikit-learn has it (``{label: weight}`` or ``"balanced"``), by class index."""
        weights = kwargs.get("class_weight")
        if weights is None:
            return kwargs
        labels = self.classes_.tolist()
        if isinstance(weights, str) and weights == "balanced":
            encoded = self._fit_targets
            by_index = len(encoded) / (len(labels) * np.bincount(encoded, minlength=len(labels)))
            return {**kwargs, "class_weight": {i: float(w) for i, w in enumerate(by_index)}}
        if not isinstance(weights, dict):
            raise TypeError(
                f"class_weight must be a dict {{label: weight}} or 'balanced', got {_describe(weights)}"
            )
        unknown = [k for k in weights if k not in labels]
        if unknown:
            raise ValueError(
                f"class_weight has keys {unknown} that are no class label; the classes are {labels}"
            )
        return {**kwargs, "class_weight": {labels.index(k): w for k, w in weights.items()}}

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Labels as indices into ``classes_`` (labels of no class are refused)."""
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
        known = np.isin(y, self.classes_)
        if y.ndim != 1 or not known.all():
            raise ValueError(
                f"validation_data's labels must be labels of the training data {self.classes_.tolist()}, got "
                + (f"shape {y.shape}" if y.ndim != 1 else f"{np.unique(y[~known]).tolist()[:10]}")
            )
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _targets(self, y: np.ndarray, model: Model) -> np.ndarray:
        """Class indices ``(N,)`` for a categorical loss, ``(N, 1)`` zeros and ones for one sigmoid output."""
        if int(np.prod(model.output_shapes[0])) == 1:
            return y.reshape(-1, 1).astype(model.dtype)
        return y

    def predict_proba(self, X: Any) -> np.ndarray:
        """The probability of each class, in the order of ``classes_``.

        Args:
            X: samples ``(n_samples, n_features)``.

        Returns:
            ``(n_samples, n_classes_)`` float64 probabilities (from a single sigmoid output ``p``: the
            columns ``1 - p`` and ``p``).

        Raises:
            sklearn.exceptions.NotFittedError: before ``fit``.
            ValueError: for malformed ``X`` or a different number of features than in ``fit``.
        """
        p = self._raw_predict(X)
        if p.shape[1] == 1:
            return np.hstack([1.0 - p, p])
        return p / p.sum(axis=1, keepdims=True)  # rows of float32 probabilities sum to 1 in float64 too

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample, as one of the original labels.

        Args:
            X: samples ``(n_samples, n_features)``.

        Returns:
            ``(n_samples,)`` labels from ``classes_``.

        Raises:
            sklearn.exceptions.NotFittedError: before ``fit``.
            ValueError: for malformed ``X`` or a different number of features than in ``fit``.
        """
        proba = self.predict_proba(X)  # first: before fit it raises NotFittedError
        return self.classes_[np.argmax(proba, axis=1)]


class NeuroRegressor(RegressorMixin, _NeuroEstimator):
    """A scikit-learn regressor that trains the neuro model a build function returns.

    Args:
        model: the build function: called at each ``fit`` with the parameters its signature names
            (``n_features_in_``, ``n_outputs_``, ``meta``, ``seed``, and the extra or ``model__`` keyword
            arguments; see :mod:`neuro.sklearn`), it returns a compiled neuro ``Network`` or ``Model`` with
            one input of ``n_features_in_`` values and one output of ``n_outputs_`` values (the number of
            target columns; 1 for a 1-d ``y``), with a regression loss such as ``"mse"``.
        epochs: passes over the training data.
        batch_size: samples per update.
        verbose: the model's ``fit`` verbosity (0 silent).
        random_state: an integer for bitwise reproducible fits (given to the build function as ``seed``),
            a ``numpy.random.RandomState``, or ``None``.
        validation_split: the fraction of the samples, from the end, held out for validation in each fit.
        callbacks: neuro callbacks for the model's ``fit``; each fit uses deep copies of them.
        **params: parameters for the build function (``units=64`` or ``model__units=64``), for the
            model's fit (``fit__shuffle=False``) and for its predict (``predict__batch_size=1024``).

    Attributes:
        model_: the fitted neuro model.
        n_outputs_: the number of target columns.
        n_features_in_: the number of features of ``X``.
        feature_names_in_: the column names of ``X``, when it was a DataFrame with string column names.
        history_: the model's training history, ``{"loss": [...], ...}``.

    ``score`` is R² (averaged over the outputs). Targets are used as given: scale them (for example with
    ``sklearn.compose.TransformedTargetRegressor``) when their range is far from 1.

    Example:
        >>> import neuro
        >>> from neuro.sklearn import NeuroRegressor
        >>> def build(n_features_in_, n_outputs_, seed=None):
        ...     net = neuro.Network((n_features_in_,), "mse", "adam", seed=seed)
        ...     return net.add(neuro.Dense(16, "relu")).add(neuro.Dense(n_outputs_))
        >>> NeuroRegressor(build, epochs=5, random_state=0).get_params()["epochs"]
        5
    """

    _meta_names = ("n_features_in_", "n_outputs_")

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def fit(self, X: Any, y: Any, **fit_params: Any) -> NeuroRegressor:
        """Build a new model with the build function and train it on ``(X, y)``.

        Args:
            X: samples ``(n_samples, n_features)``: an array, a list of rows or a DataFrame.
            y: numeric targets ``(n_samples,)`` or ``(n_samples, n_outputs)``.
            **fit_params: keyword arguments for the model's ``fit`` (``validation_data``, ``shuffle``...),
                over ``fit__`` parameters.

        Returns:
            The estimator itself, fitted.

        Raises:
            TypeError: for a ``model`` that is not a build function, a build function that returns no neuro
                model, or an argument the model's ``fit`` does not take.
            ValueError: for malformed data, a model without a loss and an optimizer, or one whose input or
                output does not fit the data.
        """
        self._check_build_function()
        X, y = validate_data(self, X, y, dtype=_DTYPES, multi_output=True, y_numeric=True)
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] == 0):
            raise ValueError(f"y must have shape (n_samples,) or (n_samples, n_outputs > 0), got {y.shape}")
        self.n_outputs_ = 1 if y.ndim == 1 else int(y.shape[1])
        self._y_ndim = y.ndim
        meta = {"n_features_in_": self.n_features_in_, "n_outputs_": self.n_outputs_}
        self._fit_model(X, y.reshape(len(y), self.n_outputs_), meta, fit_params)
        return self

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Numbers ``(N, n_outputs_)``, as the training targets (objects that are numbers, as scikit-learn's
        ``y_numeric``, become float64)."""
        if y.dtype.kind == "O":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError):
                pass  # refused below, naming the dtype
        if y.dtype.kind not in "biuf" or y.size != len(y) * self.n_outputs_:
            raise ValueError(
                f"validation_data's targets must be numbers of shape (n_samples,) or (n_samples, "
                f"{self.n_outputs_}), got {y.dtype} of shape {y.shape}"
            )
        return y.reshape(len(y), self.n_outputs_)

    def _check_model(self, built: Any, fn: Callable[..., Any], meta: dict[str, Any]) -> None:
        super()._check_model(built, fn, meta)
        shape = tuple(built.output_shapes[0])
        k = meta["n_outputs_"]
        if shape != (k,):
            raise ValueError(
                f"the build function {_signature_text(fn)} returned a model with output shape {shape}, but y "
                f"has {k} target column{'s' if k != 1 else ''}: the output shape must be ({k},) "
                "(use n_outputs_)"
            )
        if built.losses[0].categorical:
            raise ValueError(
                f"the build function {_signature_text(fn)} returned a model with the categorical loss "
                f"{type(built.losses[0]).__name__}; a regressor needs a regression loss such as 'mse'"
            )

    def predict(self, X: Any) -> np.ndarray:
        """The model's predictions.

        Args:
            X: samples ``(n_samples, n_features)``.

        Returns:
            float64 predictions shaped as ``y`` was in ``fit``: ``(n_samples,)`` or
            ``(n_samples, n_outputs_)``.

        Raises:
            sklearn.exceptions.NotFittedError: before ``fit``.
            ValueError: for malformed ``X`` or a different number of features than in ``fit``.
        """
        p = self._raw_predict(X)
        return p.ravel() if self._y_ndim == 1 else p
