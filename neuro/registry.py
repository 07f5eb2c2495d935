"""One name-normalising lookup for every family of neuro objects, and the ``register`` decorator.

Families: ``"layer"`` (activations included), ``"loss"``, ``"optimizer"``, ``"initializer"``,
``"regularizer"``, ``"schedule"``, ``"metric"`` and ``"model"``. Names are compared after
:func:`normalize`, which lower-cases them and drops ``_``, ``-`` and spaces, so ``"rms_prop"``,
``"RMSprop"`` and ``"rmsprop"`` name the same class everywhere.

Every registered class rebuilds itself with ``cls.from_config(obj.get_config())``, and a config that names
its class, ``{"class": "Dense", "config": {...}}`` (what :func:`serialize` writes), is turned back into an
object by :func:`deserialize`. A user's class joins a family with one decorator and then saves and loads
like a built-in::

    @neuro.register
    class Swish(neuro.Activation):
        ...

Nothing here imports the families: each module registers its classes when it is imported, so this module
sits on the ground floor and has no dependencies inside neuro.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

FAMILIES = ("layer", "loss", "optimizer", "initializer", "regularizer", "schedule", "metric", "model")

_classes: dict[str, dict[str, type]] = {f: {} for f in FAMILIES}
#: Classes a caller makes visible for a while (a loader's ``custom_objects``), looked up first by exact name.
_custom: contextvars.ContextVar[dict[str, type] | None] = contextvars.ContextVar(
    "neuro_custom_objects", default=None
)

#: For each family, its base class (set by the family's module), used to infer a user class's family.
_bases: dict[str, type] = {}


def normalize(name: str) -> str:
    """Return the lookup key of a name: lower case, without ``_``, ``-`` and spaces.

    Args:
        name: a class name or alias, for example ``"rms_prop"``.

    Returns:
        The key, for example ``"rmsprop"``.
    """
    return "".join(ch for ch in name.lower() if ch not in "_- ")


def set_base(family: str, base: type) -> None:
    """Declare the base class of a family (called once by the module that defines it).

    :func:`register` infers a class's family from this base, and :func:`get_class` accepts a class of
    :func:`custom_objects` only when it subclasses it.

    Args:
        family: one of :data:`FAMILIES`.
        base: the family's base class (for example :class:`neuro.losses.Loss`).
    """
    _bases[family] = base


def _family_of(cls: type) -> str:
    for family, base in _bases.items():
        if isinstance(cls, type) and issubclass(cls, base):
            return family
    raise TypeError(
        f"cannot register {getattr(cls, '__name__', cls)!r}: it must subclass one of "
        f"{sorted(b.__name__ for b in _bases.values())}"
    )


def register(cls: type | None = None, *, family: str | None = None, aliases: tuple[str, ...] = ()) -> Any:
    """Register a class under its class name (and ``aliases``) in its family; usable as a decorator.

    Args:
        cls: the class. When omitted, returns a decorator (``@register(aliases=("scaled_swish",))``).
        family: one of :data:`FAMILIES`; inferred from the base class when ``None``.
        aliases: more names for the class.

    Returns:
        The class itself.

    Raises:
        TypeError: when the family cannot be inferred.
        ValueError: for an unknown family, or a name already taken by another class.
    """

    def deco(c: type) -> type:
        fam = family or _family_of(c)
        if fam not in _classes:
            raise ValueError(f"family must be one of {list(FAMILIES)}, got {fam!r}")
        table = _classes[fam]
        for name in (c.__name__, *aliases):
            key = normalize(name)
            old = table.get(key)
            if (
                old is not None
                and old is not c
                and (old.__module__, old.__qualname__)
                != (
                    c.__module__,
                    c.__qualname__,
                )
            ):
                raise ValueError(
                    f"{fam} name {name!r} is already registered for {old.__module__}.{old.__qualname__}"
                )
            table[key] = c
        return c

    return deco if cls is None else deco(cls)


@contextlib.contextmanager
def custom_objects(classes: dict[str, type]) -> Iterator[None]:
    """Make ``classes`` (by exact class name) visible to every lookup inside the block, in this thread.

    Blocks nest: an inner block adds to (and may shadow) the classes of the outer one, which come back when it
    ends. The state is a context variable, so other threads and tasks do not see it.

    Args:
        classes: classes by the exact name a saved config uses for them.

    Yields:
        Nothing; the classes are visible until the block ends.
    """
    token = _custom.set({**(_custom.get() or {}), **classes})
    try:
        yield
    finally:
        _custom.reset(token)


def get_class(family: str, name: str) -> type:
    """Return the class registered under ``name`` in ``family`` (a class made visible by
    :func:`custom_objects` under that exact name first).

    Args:
        family: one of :data:`FAMILIES`.
        name: a class name or alias, compared after :func:`normalize` (custom classes by exact name, and only
            when they subclass the family's base).

    Returns:
        The class.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
        TypeError: when ``name`` is not a string.
    """
    if not isinstance(name, str):
        raise TypeError(f"{family} name must be a string, got {type(name).__name__}")
    custom = (_custom.get() or {}).get(name)
    base = _bases.get(family)
    if custom is not None and (base is None or (isinstance(custom, type) and issubclass(custom, base))):
        return custom
    cls = _classes[family].get(normalize(name))
    if cls is None:
        raise ValueError(f"{family} must be one of {names(family)}, got {name!r}")
    return cls


def names(family: str) -> list[str]:
    """The class names of a family (aliases left out), sorted.

    Args:
        family: one of :data:`FAMILIES`.

    Returns:
        The registered class names.
    """
    return sorted({c.__name__ for c in _classes[family].values()})


def serialize(obj: Any) -> dict[str, Any]:
    """Return ``{"class": class name, "config": obj.get_config()}``: plain JSON values.

    Args:
        obj: an instance of a registered class (anything with ``get_config()``).

    Returns:
        The spec that :func:`deserialize` turns back into an equal object.
    """
    return {"class": type(obj).__name__, "config": obj.get_config()}


def deserialize(family: str, spec: Any, classes: dict[str, type] | None = None) -> Any:
    """Build an object from what :func:`serialize` wrote, or from a bare name.

    Args:
        family: the family to look the class up in.
        spec: ``{"class": name, "config": {...}}`` or a name.
        classes: extra classes by name, looked up first.

    Raises:
        ValueError: for an unknown class or a malformed spec.
        TypeError: when the config does not fit the class's constructor.
    """
    if isinstance(spec, str):
        return _lookup(family, spec, classes)()
    if not isinstance(spec, dict) or set(spec) != {"class", "config"} or not isinstance(spec["config"], dict):
        raise ValueError(f"{family} spec must be {{'class': name, 'config': {{...}}}}, got {spec!r}")
    return _lookup(family, spec["class"], classes).from_config(spec["config"])


def _lookup(family: str, name: Any, classes: dict[str, type] | None) -> type:
    if classes and isinstance(name, str) and name in classes:
        return classes[name]
    return get_class(family, name)


def get(family: str, identifier: Any, base: type, *, default: Callable[[], Any] | None = None) -> Any:
    """Return an object of ``family`` from a name, a class, a serialized spec or an instance.

    Args:
        family: the family.
        identifier: a name, a class of the family (instantiated with no arguments), a spec dict, or an
            instance (returned as it is).
        base: the family's base class, to recognise instances and classes.
        default: called for ``None`` (``None`` is an error when not given).

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else.
    """
    if identifier is None and default is not None:
        return default()
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, base):
        return identifier()
    if isinstance(identifier, (str, dict)):
        return deserialize(family, identifier)
    article = "an" if base.__name__[0].lower() in "aeiou" else "a"
    raise TypeError(f"{family} must be a name or {article} {base.__name__}, got {type(identifier).__name__}")
