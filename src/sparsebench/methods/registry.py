"""Method names to classes: built-ins, entry points, and ``module:Class`` specs.

The built-in methods are listed here; they never import the registry (no
import circle). ``register_method`` adds a user's class in this process.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from importlib.metadata import entry_points
from typing import Any, Callable, Mapping

from ..errors import ConfigError, SparsebenchError, describe, invalid, show
from ..names import DENSE, RANDOM, RANDOM_SEARCH
from .base import MAX_PROBES, Method
from .dense import Dense
from .evolution import Evolution
from .fisher import Fisher
from .grasp import Grasp
from .magnitude import Magnitude
from .random import RandomMask
from .random_search import RandomSearch
from .snip import Snip
from .synflow import SynFlow
from .taylor import Taylor
from .trained_search import TrainedSearch

ENTRY_POINT_GROUP = "sparsebench.methods"
#: The methods that come with sparsebench.
BUILTIN: dict[str, type[Method]] = {
    DENSE: Dense, RANDOM: RandomMask, RANDOM_SEARCH: RandomSearch,
    # node-level scores at initialization (methods/node_scores.py)
    "magnitude": Magnitude, "snip": Snip, "grasp": Grasp, "synflow": SynFlow, "taylor": Taylor, "fisher": Fisher,
    # searches over candidate masks besides random-search: by a score at initialization, or by brief training
    "evolution": Evolution, "trained-search": TrainedSearch,
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


# -- parameters and labels ---------------------------------------------------------------------
#: What a ``[methods.LABEL]`` label may be: a name results can print, and the CLI can split
#: (no ``,``, ``=``, ``(`` or spaces). List-form names (``module:Class`` too) are labels as they are.
LABEL_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,63}")
#: The canonical parameters of a method at its defaults.
NO_PARAMS = "{}"
#: The parameter that has a method's other candidates trained as probes (``plan.WorkGroup.probes_for``).
PROBE = "probe"


def method_parameters(cls: type[Method]) -> dict[str, inspect.Parameter]:
    """The parameters a method's constructor takes by keyword (what a ``[methods.LABEL]`` table may set)."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # a class whose signature cannot be read takes none we can check
        return {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name: p for name, p in signature.parameters.items() if p.kind in kinds}


def _takes_any_keyword(cls: type[Method]) -> bool:
    """Whether the constructor takes ``**kwargs`` (then it, not its signature, says which names it refuses)."""
    try:
        return any(p.kind == inspect.Parameter.VAR_KEYWORD for p in inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return False


def config_defaults(cls: type[Method], flat: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments a method takes from the config's flat keys (``Method.CONFIG_DEFAULTS``)."""
    return {param: flat[key] for param, key in getattr(cls, "CONFIG_DEFAULTS", {}).items() if key in flat}


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same kind (``True`` is not ``1``; ``1`` is ``1.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _plain_value(value: Any) -> Any:
    """A parameter value as JSON holds it (tuples as lists)."""
    return [_plain_value(v) for v in value] if isinstance(value, (list, tuple)) else value


def canonical_params(label: str, name: str, params: Mapping[str, Any], flat: Mapping[str, Any]) -> str:
    """``params`` of method ``name`` as canonical JSON: checked against its constructor (unknown names and bad
    values refused in one line), with those at their default left out, keys sorted; ``"{}"`` at its defaults.

    ``flat`` holds the config's flat keys, the defaults of ``CONFIG_DEFAULTS`` parameters.
    """
    cls = get_method(name)
    accepted = method_parameters(cls)
    for key in params:
        if key not in accepted and not _takes_any_keyword(cls):
            allowed = "one of " + ", ".join(accepted) if accepted else f"none ({name} takes no parameters)"
            raise invalid(f"method {label!r} parameter", key, allowed)
    defaults = {k: p.default for k, p in accepted.items() if p.default is not inspect.Parameter.empty}
    defaults.update(config_defaults(cls, flat))
    explicit = {k: _plain_value(v) for k, v in params.items() if not (k in defaults and _same(v, defaults[k]))}
    # The plan reads a method's probe count from its canonical parameters (plan.WorkGroup.probes_for), so a
    # count is checked here for every method, and one a constructor defaults to other than 0 is written out.
    if PROBE in accepted and PROBE not in explicit and PROBE not in getattr(cls, "CONFIG_DEFAULTS", {}):
        if defaults.get(PROBE) not in (None, 0):
            explicit[PROBE] = defaults[PROBE]
    if PROBE in explicit:
        probe = explicit[PROBE]
        if isinstance(probe, bool) or not isinstance(probe, int) or not 0 <= probe <= MAX_PROBES:
            raise invalid(f"method {label!r} parameter probe", probe,
                          f"an integer in [0, {MAX_PROBES}] (how many of its other candidates are also trained)")
    try:
        text = json.dumps(explicit, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        raise invalid(f"method {label!r} parameters", show(dict(params)),
                      "TOML values: strings, numbers, booleans and lists of them") from None
    if explicit:
        make_method(label, name, text, flat)  # bad values are refused now, not at selection
    return text


def make_method(label: str, name: str, params: str, flat: Mapping[str, Any]) -> Method:
    """An instance of method ``name`` with its canonical ``params`` (JSON) over the flat keys' defaults;
    a constructor that refuses them (``TypeError``, ``ValueError``, a sparsebench error) is one line."""
    cls = get_method(name)
    kwargs = {**config_defaults(cls, flat), **json.loads(params)}
    try:
        return cls(**kwargs)
    except SparsebenchError as exc:  # our own one-line refusal of a value ("score: got 'x'; allowed: ...")
        raise ConfigError(f"method {label!r} ({name}) parameter {' '.join(str(exc).split())}") from None
    except Exception as exc:  # TypeError, ValueError; any failure of a user's constructor is one line too
        if cls.__module__.split(".")[0] == "sparsebench" and not isinstance(exc, (TypeError, ValueError)):
            raise  # our own bug: a traceback
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise ConfigError(f"method {label!r}: {name}({shown}) refused its parameters ({describe(exc)}); "
                          f"allowed: the parameters {cls.__qualname__} documents") from None


def check_label(label: Any, name: str) -> None:
    """A ``[methods.LABEL]`` label: a plain name; a registered method's name labels only that method."""
    if not isinstance(label, str) or not LABEL_PATTERN.fullmatch(label):
        raise invalid("method label", label, "letters, digits and _ . : + - (at most 64, not starting with a symbol)")
    if label != name and label in method_names():
        raise invalid(f"method label {label!r}", f"method {name!r}",
                      f"method {label!r} (a registered method's name labels only that method), or another label")
