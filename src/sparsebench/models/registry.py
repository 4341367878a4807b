"""Parent family names to classes: the built-in families listed here, third-party ones by entry point.

The registry imports its members; a member never imports the registry (no
import circle). A package adds a family through the entry-point group
``sparsebench.parents``, naming a ``ParentFamily`` subclass:

    [project.entry-points."sparsebench.parents"]
    my-net = "mypkg.family:MyNet"
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import Any, Mapping

from ..errors import ConfigError, describe, invalid
from .base import ParentFamily
from .cnn import CNN
from .cnn1d import CNN1d
from .mlp import MLP

ENTRY_POINT_GROUP = "sparsebench.parents"
DEFAULT_FAMILY = MLP.name
#: The families that come with sparsebench.
BUILTIN: dict[str, type[ParentFamily]] = {MLP.name: MLP, CNN1d.name: CNN1d, CNN.name: CNN}


def family_name(config: Any) -> str:
    """The family a config (an ``ExperimentConfig`` or its stored plain values) names.

    The one place that reads it: configs stored before families existed name none, and are MLPs.
    """
    if isinstance(config, Mapping):
        return config.get("parent", DEFAULT_FAMILY)
    return getattr(config, "parent", DEFAULT_FAMILY)


def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def family_names() -> list[str]:
    """Built-in and installed family names.

    >>> "mlp" in family_names()
    True
    """
    return sorted(set(BUILTIN) | set(_entry_points()))


def get_family(name: str) -> type[ParentFamily]:
    """The class of the family called ``name``; an unknown name is refused in one line.

    >>> get_family("mlp").__name__
    'MLP'
    """
    if name in BUILTIN:
        return BUILTIN[name]
    eps = _entry_points()
    if name not in eps:
        raise invalid("parent", name, "one of " + ", ".join(family_names()))
    try:
        cls = eps[name].load()
    except Exception as exc:  # a third party's code: any failure to import is a bad family name
        raise ConfigError(f"parent: cannot load {name!r} ({describe(exc)}); allowed: one of {', '.join(family_names())}") from None
    if not (isinstance(cls, type) and issubclass(cls, ParentFamily)) or inspect.isabstract(cls):
        raise ConfigError(f"parent: {name!r} is not a sparsebench.models.ParentFamily subclass that implements every method")
    return cls


def family_for(config: Any, example_shape: tuple[int, ...], n_classes: int) -> ParentFamily:
    """The parent of ``config`` for data whose examples have ``example_shape``; refused in one line
    if the family cannot take that shape."""
    values = config if isinstance(config, Mapping) else config.to_dict()
    family = get_family(family_name(config))
    family.check_shape(tuple(example_shape))
    return family.from_config(values, tuple(example_shape), n_classes)
