"""Keyword arguments as Keras spells them: old names that still work for a while, and wrong names that get
told the right one.

Every class of neuro's families (layers, losses, optimizers, schedules, initializers, regularizers,
callbacks, models) derives from :class:`KeywordChecked`, which wraps each ``__init__`` a class defines:

- an old spelling the class lists in ``renamed_keywords`` (``{"stride": "strides"}``) is passed on under its
  new name, with a :class:`DeprecationWarning` that names the new spelling; inside :func:`quiet` (which every
  ``from_config`` enters, so model files written with the old keys load) the warning is left out;
- a keyword that no ``__init__`` of the chain takes is a :class:`TypeError` that suggests the closest valid
  name (:func:`difflib.get_close_matches`, and a table of other libraries' spellings such as PyTorch's
  ``lr``), and lists the valid ones.

The check is made by the ``__init__`` that would fail: an ``__init__`` taking ``**kwargs`` passes them on, and
the first one without ``**kwargs`` (the base class's) checks what reaches it against the names of every
``__init__`` the call went through, so a subclass of yours may take and consume keywords of its own.
:func:`checked` does the same for a method (``fit``, ``compile``, …).
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import inspect
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: Spellings of other libraries (PyTorch, Keras 2) and the names neuro takes instead (suggested when taken).
FOREIGN: dict[str, tuple[str, ...]] = {
    "lr": ("learning_rate",),
    "eps": ("epsilon",),
    "betas": ("beta_1", "beta_2"),
    "alpha": ("rho",),
    "p": ("rate",),
    "kernel_init": ("kernel_initializer",),
    "bias_init": ("bias_initializer",),
    "out_features": ("units",),
    "out_channels": ("filters",),
    "epoch": ("epochs",),
    "nb_epoch": ("epochs",),
    "gamma": ("decay_rate",),
    "T_max": ("decay_steps",),
}

#: Keywords of other libraries that neuro answers with advice rather than a name.
HINTS: dict[str, str] = {
    "input_shape": "a layer takes no input shape: start the model with neuro.Input(shape), or give "
    "Network(input_shape=...)",
    "input_dim": "a layer takes no input size: start the model with neuro.Input((input_dim,)), or give "
    "Network(input_shape=(input_dim,))",
    "in_features": "a layer learns its input size when it is built: start the model with neuro.Input(shape)",
    "in_channels": "a layer learns its input size when it is built: start the model with neuro.Input(shape)",
}

_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("neuro_quiet_renames", default=False)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Inside the block, old keyword spellings are renamed without a warning (a file being loaded)."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


def suggestion(name: str, valid: Iterable[str]) -> str:
    """The hint for an unknown keyword: ``"; did you mean 'x'?"`` or ``""``.

    Args:
        name: the keyword that was given.
        valid: the keywords that are taken.

    Returns:
        The hint, starting with ``"; "``, or an empty string when nothing is close.
    """
    valid = list(valid)
    if name in HINTS:
        return f"; {HINTS[name]}."
    foreign = [v for v in FOREIGN.get(name, ()) if v in valid]
    if foreign:
        return f"; did you mean {' and '.join(repr(v) for v in foreign)}?"
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    if not close:  # a prefix or a part of a longer name ("decay" for "decay_rate")
        close = [v for v in valid if v.startswith(name) or name in v.split("_")][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


def unexpected(owner: str, name: str, valid: Iterable[str]) -> TypeError:
    """The error for a keyword nothing takes, with a suggestion and the valid names.

    Args:
        owner: what was called (``"Adam"``, ``"Model.fit"``).
        name: the keyword that was given.
        valid: the keywords that are taken.

    Returns:
        The TypeError (to raise).
    """
    valid = list(valid)
    text = f"{owner}() got an unexpected keyword argument {name!r}{suggestion(name, valid)}"
    if not text.endswith(("?", ".")):
        text += "."
    if not valid:
        hint = " (the model's seed= seeds every initializer)" if name == "seed" else ""
        return TypeError(f"{text} It takes no arguments{hint}.")
    return TypeError(f"{text} It takes: {', '.join(valid)}")


def _names(fn: Callable[..., Any]) -> tuple[list[str], bool]:
    """The keyword names ``fn`` takes (``self`` left out) and whether it takes ``**kwargs``."""
    params = list(inspect.signature(fn).parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def rename(owner: str, kwargs: dict[str, Any], renames: dict[str, str], stacklevel: int = 3) -> None:
    """Move old spellings in ``kwargs`` to their new names, in place (warning unless :func:`quiet`).

    Args:
        owner: what was called, for the messages.
        kwargs: the keyword arguments given.
        renames: ``{old name: new name}``.
        stacklevel: where the warning points (the caller of the wrapped function by default).

    Raises:
        TypeError: when both spellings are given.
    """
    for old, new in renames.items():
        if old not in kwargs:
            continue
        if new in kwargs:
            raise TypeError(f"{owner}() got both {new!r} and its old spelling {old!r}; give only {new}=")
        if not _quiet.get():
            warnings.warn(
                f"{owner}({old}=...) is deprecated and will be removed in the next release; use {new}= "
                "(Keras's name)",
                DeprecationWarning,
                stacklevel=stacklevel,
            )
        kwargs[new] = kwargs.pop(old)


def _chain_names(cls: type, owner: type) -> list[str]:
    """Keyword names of every ``__init__`` from ``cls`` down to ``owner`` (the one that checks)."""
    names: list[str] = []
    for c in cls.__mro__:
        init = c.__dict__.get("__init__")
        if init is not None:
            for n in _names(init)[0]:
                if n not in names:
                    names.append(n)
        if c is owner:
            break
    return names


def _wrap_init(cls: type) -> None:
    init = cls.__dict__.get("__init__")
    if init is None or getattr(init, "_keyword_checked", False):
        return
    own, var_kw = _names(init)

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        kind = type(self)
        renames = getattr(cls, "renamed_keywords", None)
        if renames and kwargs:
            rename(kind.__name__, kwargs, renames)
        if not var_kw and kwargs:
            for k in kwargs:
                if k not in own:
                    raise unexpected(kind.__name__, k, _chain_names(kind, cls))
        init(self, *args, **kwargs)

    __init__._keyword_checked = True  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[misc]


class KeywordChecked:
    """Mixin of the family base classes: each subclass's ``__init__`` renames old keywords and explains
    unknown ones (see the module docstring).

    Attributes:
        renamed_keywords: ``{old spelling: new name}`` of the constructor's deprecated keywords (inherited by
            subclasses).
    """

    renamed_keywords: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _wrap_init(cls)


def too_many_positional(owner: str, positional: list[str], keywords: list[str], given: int) -> TypeError:
    """The error for more positional arguments than a function takes, naming those it takes by position and
    those that are keywords.

    Args:
        owner: what was called (``"Model.fit"``).
        positional: the names it takes by position, in order (``self`` left out).
        keywords: the names it takes only as keywords.
        given: how many positional arguments were given (``self`` left out).

    Returns:
        The TypeError (to raise).
    """
    names = ", ".join(positional[:-1]) + f" and {positional[-1]}" if len(positional) > 1 else positional[0]
    return TypeError(
        f"{owner}() takes {names} by position ({len(positional)} at most), got {given} positional "
        f"arguments; the others are keywords: {', '.join(k + '=' for k in keywords)}"
    )


def checked(renames: dict[str, str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a method so that an unknown keyword suggests the closest valid one (and old spellings in
    ``renames`` are renamed with a DeprecationWarning), and too many positional arguments name those that
    are keywords.

    Args:
        renames: ``{old spelling: new name}``, if any.

    Returns:
        The decorator.
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        own, var_kw = _names(fn)
        name = fn.__qualname__
        params = list(inspect.signature(fn).parameters.values())
        by_position = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        keyword_only = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
        var_pos = any(p.kind is p.VAR_POSITIONAL for p in params)
        skip = 1 if by_position[:1] == ["self"] else 0

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not var_pos and keyword_only and len(args) > len(by_position):
                raise too_many_positional(name, by_position[skip:], keyword_only, len(args) - skip)
            if renames and kwargs:
                rename(name, kwargs, renames)
            if not var_kw:
                for k in kwargs:
                    if k not in own:
                        raise unexpected(name, k, own)
            return fn(*args, **kwargs)

        return wrapper

    return deco


class renamed_attribute:  # noqa: N801 - used like ``property``
    """A read-only attribute under its old name, reading the new one with a DeprecationWarning.

    Args:
        new: the attribute's new name.
    """

    def __init__(self, new: str) -> None:
        self.new = new
        self.old = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.old = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        warnings.warn(
            f"{type(obj).__name__}.{self.old} is deprecated and will be removed in the next release; read "
            f".{self.new} (Keras's name)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(obj, self.new)
