"""Method names to classes: built-ins, entry points, and ``module:Class`` specs.

The built-in methods are listed here; they never import the registry (no
import circle). ``register_method`` adds a user's class in this process.
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import entry_points
from typing import Callable

from ..errors import ConfigError, describe, invalid
from ..names import DENSE, RANDOM, RANDOM_SEARCH
from .base import Method
from .dense import Dense
from .fisher import Fisher
from .grasp import Grasp
from .magnitude import Magnitude
from .random import RandomMask
from .random_search import RandomSearch
from .snip import Snip
from .synflow import SynFlow
from .taylor import Taylor

ENTRY_POINT_GROUP = "sparsebench.methods"
#: The methods that come with sparsebench.
BUILTIN: dict[str, type[Method]] = {
    DENSE: Dense, RANDOM: RandomMask, RANDOM_SEARCH: RandomSearch,
    # node-level scores at initialization (methods/node_scores.py)
    "magnitude": Magnitude, "snip": Snip, "grasp": Grasp, "synflow": SynFlow, "taylor": Taylor, "fisher": Fisher,
}
_METHODS: dict[str, type[Method]] = dict(BUILTIN)


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: make a ``Method`` subclass selectable as ``name``."""

    def decorate(cls: type[Method]) -> type[Method]:
        _METHODS[name] = cls
        return cls

    return decorate


def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def method_names() -> list[str]:
    """Registered and entry-point method names."""
    return sorted(set(_METHODS) | set(_entry_points()))


def _allowed() -> str:
    return "one of " + ", ".join(method_names()) + ", or module:Class"


def get_method(name: str) -> type[Method]:
    """The class behind a method name or a ``module:Class`` spec."""
    if name in _METHODS:
        return _METHODS[name]
    eps = _entry_points()
    if name in eps:
        return _checked(name, _load(name, eps[name].load))
    if ":" in name:
        module_name, _, attr = name.partition(":")
        return _checked(name, _load(name, lambda: getattr(importlib.import_module(module_name), attr)))
    raise invalid("method", name, _allowed())


def validate_method_name(name: str) -> None:
    get_method(name)


def _load(name: str, loader: Callable[[], object]) -> object:
    try:
        return loader()
    except Exception as exc:  # user code: any failure to import is a bad --methods value
        raise ConfigError(f"method: cannot load {name!r} ({describe(exc)}); allowed: {_allowed()}") from None


def _checked(name: str, obj: object) -> type[Method]:
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        raise ConfigError(f"method: {name!r} is not a sparsebench.methods.Method subclass")
    if inspect.isabstract(obj):
        raise ConfigError(f"method: {name!r} is abstract; allowed: a Method subclass that implements select()")
    return obj
